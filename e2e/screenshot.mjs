// Takes docs/console.png: the console with one chat, for the README.
// Usage: node screenshot.mjs BASE_URL  (a running `yoi serve` with a "slow" echo profile)

import { chromium } from "playwright-core";

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run"],
});
const page = await browser.newPage({ viewport: { width: 1100, height: 640 } });
await page.goto(base + "/");
await page.locator("#console:not([hidden])").waitFor();
await page.fill("#create-name", "release notes");
await page.click("#create button[type=submit]");
await page.locator("#input:not([hidden])").waitFor();
await page.fill("#input-text", "Summarise what changed in this release.");
await page.press("#input-text", "Enter");
await page.locator(".entry.assistant.complete").waitFor({ timeout: 15_000 });
await page.locator("#stream-state", { hasText: /^live$/ }).waitFor();
await page.screenshot({ path: new URL("../docs/console.png", import.meta.url).pathname });
await browser.close();
