// The console end to end, in headless Chromium: a real `yoi serve`, a
// real browser, and a cross-origin page that tries to stop a Worker.
//
// Needs: the `yoi` binary (YOI_BIN, default ../target/debug/yoi) and
// Chromium (CHROMIUM, default /usr/bin/chromium). Run by .ci/run.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const YOI = process.env.YOI_BIN ?? new URL("../target/debug/yoi", import.meta.url).pathname;
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const TOKEN = "e2e-console-token";
const dir = mkdtempSync(join(tmpdir(), "yoi-e2e-"));
writeFileSync(join(dir, "token"), TOKEN);
writeFileSync(
  join(dir, "yoi.toml"),
  '[[profiles]]\nname = "slow"\nbackend = "echo"\necho_delay_ms = 1500\n',
);

let browser;
const servers = [];

/** Starts `yoi serve` on a free loopback port; resolves once it listens. */
function startServer(extraArgs = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(
      YOI,
      ["serve", "--memory", "--bind", "127.0.0.1:0", "--config", join(dir, "yoi.toml"), ...extraArgs],
      { env: { ...process.env, RUST_LOG: "info" }, stdio: ["ignore", "pipe", "inherit"] },
    );
    const server = { child, log: "" };
    servers.push(server);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      server.log += chunk;
      const match = server.log.match(/Console: (http:\/\/[^\s]+)\//);
      if (match && !server.base) {
        server.base = match[1];
        resolve(server);
      }
    });
    child.on("exit", (code) => reject(new Error(`yoi exited with ${code}: ${server.log}`)));
  });
}

async function api(server, method, path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(server.base + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json().catch(() => null) };
}

before(async () => {
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
});

after(async () => {
  await browser?.close();
  for (const server of servers) server.child.kill("SIGKILL");
});

/** Waits until the console shows this stream state. (Locators, not
 * waitForFunction: the console's CSP forbids eval, which that uses.) */
async function streamState(page, text) {
  await page.locator("#stream-state", { hasText: new RegExp(`^${text}$`) }).waitFor();
}

/** A server, and a page of its console with a new Worker (default
 * profile) open. */
async function newWorkerPage() {
  const server = await startServer();
  const page = await browser.newPage();
  await page.goto(server.base + "/");
  await page.waitForSelector("#console:not([hidden])");
  await page.click("#create button[type=submit]");
  await page.waitForSelector("#input:not([hidden])");
  return { server, page };
}

/** Creates a Worker with the slow profile, chats, and checks the reply streamed in. */
async function createAndChat(page) {
  await page.selectOption("#create-profile", "slow");
  await page.fill("#create-name", "browser chat");
  await page.click("#create button[type=submit]");
  await page.waitForSelector("#input:not([hidden])");
  await page.fill("#input-text", "hello from the browser");
  await page.press("#input-text", "Enter");
  // While the turn runs, the reply grows delta by delta.
  const running = page.locator(".entry.assistant.partial .text");
  await running.waitFor();
  await running.filter({ hasText: /./ }).waitFor();
  const partial = await running.textContent();
  const done = page.locator(".entry.assistant.complete .text");
  await done.waitFor({ timeout: 15_000 });
  const full = await done.textContent();
  assert.ok(full.includes("hello from the browser"), full);
  assert.ok(partial.length < full.length, `streamed in: "${partial}" before "${full}"`);
  return full;
}

test("chat in the console, reload, stop: the stream ends without reconnecting", async () => {
  const server = await startServer();
  const page = await browser.newPage();
  await page.goto(server.base + "/");
  await page.waitForSelector("#console:not([hidden])");
  assert.equal(await page.isVisible("#signed-out"), false, "no sign-in without a token");
  // A first run says what to do.
  assert.match(await page.textContent("#empty-hint"), /Create a Worker/);
  assert.equal(await page.isVisible("#empty-hint"), true);
  const reply = await createAndChat(page);
  await streamState(page, "live");
  assert.equal(await page.isVisible("#empty-hint"), false);

  // A reload shows the same transcript.
  await page.reload();
  await page.locator(".entry.assistant.complete .text").waitFor();
  const texts = await page.locator(".entry .text").allTextContents();
  assert.deepEqual(texts, ["hello from the browser", reply]);

  // Rename: the title and the list follow.
  await page.click("#rename");
  await page.fill("#rename-name", "renamed in the browser");
  await page.click("#rename-form button[type=submit]");
  await page.locator("#chat-title", { hasText: /^renamed in the browser$/ }).waitFor();
  await page.locator("#workers button", { hasText: "renamed in the browser" }).waitFor();

  // Fork from the first entry: the fork opens with just that entry.
  const sourceTitle = await page.textContent("#chat-title");
  await page.locator("#entry-0 .fork").click();
  await page.locator("#chat-title", { hasNotText: sourceTitle }).waitFor();
  await page.locator("#entry-0").waitFor();
  assert.equal(await page.locator(".entry").count(), 1);
  assert.equal(await page.textContent("#entry-0 .text"), "hello from the browser");
  // Back to the source for the rest.
  await page.locator("#workers button", { hasText: "renamed in the browser" }).click();
  await page.locator("#chat-title", { hasText: /^renamed in the browser$/ }).waitFor();
  await streamState(page, "live");

  // Take back the last turn: its entries stay, struck through.
  await page.click("#rollback");
  await page.locator(".entry.user.rolled_back").waitFor();
  await page.locator(".entry.assistant.rolled_back").waitFor();

  // Stop: the stream ends, and a reload does not start a reconnect loop.
  await page.click("#stop");
  await streamState(page, "stream ended");
  const streams = [];
  page.on("request", (request) => {
    if (request.url().includes("/events/stream")) streams.push(request.url());
  });
  await page.reload();
  await streamState(page, "stream ended");
  // EventSource would retry after its 3 s hint if the server did not say 204.
  await page.waitForTimeout(4_000);
  assert.equal(streams.length, 1, `one stream request, then none: ${streams.join(", ")}`);
  assert.equal(await page.textContent("#worker-state"), "stopped");
  await page.close();
});

test("an input whose answer was lost is sent again once, not twice", async () => {
  const { server, page } = await newWorkerPage();
  // The first send reaches the server, which records it, but the browser
  // never sees the answer: to the console it is a network error.
  let sent = 0;
  await page.route("**/input", async (route) => {
    sent += 1;
    await route.fetch();
    await route.abort("connectionreset");
  });
  await page.fill("#input-text", "only once, please");
  await page.press("#input-text", "Enter");
  await page.locator("#notice.error").filter({ hasText: /./ }).waitFor();
  assert.equal(sent, 1);
  await page.unroute("**/input");
  // The text is still there; the person sends it again.
  assert.equal(await page.inputValue("#input-text"), "only once, please");
  await page.press("#input-text", "Enter");
  await page.locator(".entry.assistant.complete").waitFor();
  const workers = await api(server, "GET", "/api/workers");
  const worker = workers.json.items[0].worker_id;
  const transcript = await api(
    server,
    "GET",
    `/api/runtimes/backend-internal/workers/${worker}/transcript`,
  );
  const users = transcript.json.entries.filter((e) => e.role === "user").map((e) => e.text);
  assert.deepEqual(users, ["only once, please"], JSON.stringify(transcript.json));
  assert.equal(await page.inputValue("#input-text"), "", "accepted: the box is emptied");
  // A new text is a new input, even when it repeats an earlier one.
  await page.fill("#input-text", "only once, please");
  await page.press("#input-text", "Enter");
  await page.locator(".entry.assistant.complete").nth(1).waitFor();
  assert.equal(await page.locator(".entry.user").count(), 2);
  await page.close();
});

test("a stream the server refuses for a while comes back by itself", async () => {
  const { page } = await newWorkerPage();
  await streamState(page, "live");
  // The event stream answers 503 (as for a remote Runtime that is down):
  // EventSource gives up for good on an answer that is not a stream.
  let refused = 0;
  const refuse = async (route) => {
    refused += 1;
    await route.fulfill({
      status: 503,
      contentType: "application/problem+json",
      body: JSON.stringify({ type: "urn:yoi:problem:runtime_unavailable", title: "Service Unavailable", status: 503, detail: "down for the test", code: "runtime_unavailable", runtime_id: "backend-internal", reason: "down for the test" }),
    });
  };
  await page.route("**/events/stream**", refuse);
  await page.reload();
  await streamState(page, "reconnecting…");
  // Tried again, backing off, not given up on.
  await page.locator("#stream-state", { hasText: /^reconnecting…$/ }).waitFor();
  while (refused < 2) await page.waitForTimeout(100);
  await page.unroute("**/events/stream**", refuse);
  await page.locator("#stream-state", { hasText: /^live$/ }).waitFor({ timeout: 15_000 });
  // And it is a working stream: a reply streams in.
  await page.fill("#input-text", "after the outage");
  await page.press("#input-text", "Enter");
  await page.locator(".entry.assistant.complete .text", { hasText: "after the outage" }).waitFor();
  await page.close();
});

test("find Workers by metadata and state, and page with More", async () => {
  const server = await startServer();
  const workers = "/api/runtimes/backend-internal/workers";
  const made = await Promise.all(
    Array.from({ length: 52 }, (_, n) =>
      api(server, "POST", workers, { display_name: `many ${n}`, metadata: { project: "many" } }),
    ),
  );
  assert.ok(made.every((r) => r.status === 201));
  const apollo = await api(server, "POST", workers, {
    display_name: "apollo notes",
    metadata: { project: "apollo", team: "a" },
  });
  assert.equal(apollo.status, 201);
  const page = await browser.newPage();
  await page.goto(server.base + "/");
  await page.waitForSelector("#console:not([hidden])");

  await page.fill("#filter-metadata", "project=apollo team=a");
  await page.click("#filter button[type=submit]");
  await page.locator("#workers button", { hasText: "apollo notes" }).waitFor();
  assert.equal(await page.locator("#workers button").count(), 1);
  assert.equal(await page.isVisible("#workers-more"), false);

  // Stopped only: none yet; then stop it and find it.
  await page.selectOption("#filter-state", "stopped");
  await page.click("#filter button[type=submit]");
  await page.locator("#workers li", { hasText: "No Worker matches." }).waitFor();
  const stop = await api(server, "POST", `${workers}/${apollo.json.worker_id}/stop`, undefined);
  assert.equal(stop.status, 200);
  await page.click("#filter button[type=submit]");
  await page.locator("#workers button", { hasText: "apollo notes" }).waitFor();

  // 52 matches: a page of 50, then More brings the last two, each once.
  await page.selectOption("#filter-state", "");
  await page.fill("#filter-metadata", "project=many");
  await page.selectOption("#filter-order", "created_at:desc");
  await page.click("#filter button[type=submit]");
  await page.locator("#workers-more:not([hidden])").waitFor();
  assert.equal(await page.locator("#workers button").count(), 50);
  assert.match(await page.textContent("#workers li:first-child button"), /^many \d+ · idle$/);
  await page.click("#workers-more");
  await page.locator("#workers-more[hidden]").waitFor({ state: "attached" });
  const names = await page.locator("#workers button").allTextContents();
  assert.equal(names.length, 52);
  assert.equal(new Set(names).size, 52);

  // On a wide window the page itself never scrolls: the long list scrolls
  // in the side bar, and a chosen Worker's message box stays in view.
  const overflow = await page.evaluate(() => {
    const side = document.querySelector(".side");
    return {
      page: document.scrollingElement.scrollHeight - window.innerHeight,
      side: side.scrollHeight - side.clientHeight,
    };
  });
  assert.ok(overflow.page <= 0, `the page scrolls by ${overflow.page}px`);
  assert.ok(overflow.side > 0, "the side bar holds more than it shows");
  await page.click("#workers li:last-child button");
  await page.waitForSelector("#input:not([hidden])");
  const send = await page.locator("#input button[type=submit]").boundingBox();
  const height = await page.evaluate(() => window.innerHeight);
  assert.ok(send.y + send.height <= height, `Send ends at ${send.y + send.height} of ${height}px`);

  // A filter that is not key=value is explained, not sent.
  await page.fill("#filter-metadata", "apollo");
  await page.click("#filter button[type=submit]");
  await page.locator("#notice", { hasText: "key=value" }).waitFor();
  await page.close();
});

test("with a token: sign in through the form, chat, sign out", async () => {
  const server = await startServer(["--token-file", join(dir, "token")]);
  const page = await browser.newPage();
  await page.goto(server.base + "/");
  await page.waitForSelector("#signed-out:not([hidden])");
  assert.equal(await page.isVisible("#sign-out"), false, "nothing to sign out of yet");
  await page.fill("#token", "not the token");
  await page.click("#sign-in button[type=submit]");
  await page.locator("#sign-in-error").filter({ hasText: /./ }).waitFor();
  await page.fill("#token", TOKEN);
  await page.click("#sign-in button[type=submit]");
  await page.waitForSelector("#console:not([hidden])");
  assert.equal(await page.isVisible("#sign-out"), true);
  // The session cookie is HttpOnly: scripts cannot read it.
  assert.equal(await page.evaluate(() => document.cookie.includes("yoi_session")), false);
  await createAndChat(page);
  await page.click("#sign-out");
  await page.waitForSelector("#signed-out:not([hidden])");
  assert.equal(await page.isVisible("#sign-out"), false, "signed out: the button goes");
  const status = await page.evaluate(() => fetch("/api/runtimes").then((r) => r.status));
  assert.equal(status, 401);
  await page.close();
});

test("a cross-origin page cannot stop a Worker", async () => {
  const server = await startServer();
  const created = await api(server, "POST", "/api/runtimes/backend-internal/workers", {});
  assert.equal(created.status, 201);
  const worker = created.json.worker_id;
  const stop = `${server.base}/api/runtimes/backend-internal/workers/${worker}/stop`;
  // Another origin on loopback: a different address and port.
  const evil = createServer((request, response) => {
    response.setHeader("content-type", "text/html");
    response.end(`<!doctype html>
      <form id="f" method="post" action="${stop}" enctype="text/plain">
        <input name="x" value="y"></form>
      <script>
        fetch(${JSON.stringify(stop)}, { method: "POST", mode: "no-cors" })
          .finally(() => { document.title = "fetched"; document.getElementById("f").submit(); });
      </script>`);
  });
  await new Promise((resolve) => evil.listen(0, "127.0.0.2", resolve));
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.2:${evil.address().port}/`);
  await page.waitForURL(stop);
  await page.close();
  evil.close();
  const detail = await api(server, "GET", `/api/runtimes/backend-internal/workers/${worker}`);
  assert.equal(detail.json.state, "idle", "the Worker was not stopped");
  // Both attempts reached the server and were refused before the handler.
  const refused = server.log
    .split("\n")
    .filter((line) => line.includes("/stop") && line.includes("status=403"));
  assert.equal(refused.length, 2, server.log);
});
