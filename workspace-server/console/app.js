// The yoi console: Runtimes, Workers and a chat with one Worker at a time.
// Plain ES modules, no build step; served from the binary.

import { api, ApiError } from "./api.js";

const PAGE = 50;
const $ = (id) => document.getElementById(id);

/** What the console knows. One Worker is open at a time. */
const state = {
  runtimes: new Map(), // runtime_id -> RuntimeView
  open: null, // { runtimeId, workerId, caps, entries: Map, first, source, fromSnapshot: Set }
  workersCursor: null, // next_cursor of the Worker list's last page
};

function notice(text, isError = false) {
  const el = $("notice");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

function fail(err) {
  if (err instanceof ApiError && err.status === 401) return showSignIn();
  notice(err.message, true);
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

// ---- sign-in ----

async function start() {
  try {
    const session = await api.session();
    if (!session.signed_in) return showSignIn();
    // Only a signed-in session with a token behind it can sign out.
    $("sign-out").hidden = !session.token_required;
    $("signed-out").hidden = true;
    $("console").hidden = false;
    await Promise.all([loadRuntimes(), loadWorkers()]);
    const wanted = new URLSearchParams(location.hash.slice(1));
    if (wanted.get("runtime") && wanted.get("worker")) {
      await openWorker(wanted.get("runtime"), wanted.get("worker"));
    }
  } catch (err) {
    fail(err);
  }
}

function showSignIn() {
  closeStream();
  $("sign-out").hidden = true;
  $("console").hidden = true;
  $("signed-out").hidden = false;
  $("token").focus();
}

$("sign-in").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    await api.signIn($("token").value);
    $("token").value = "";
    await start();
  } catch (err) {
    $("sign-in-error").textContent =
      err.status === 401 ? "That token is not right." : err.message;
  }
});

$("sign-out").addEventListener("click", async () => {
  await api.signOut().catch(() => {});
  showSignIn();
});

// ---- Runtimes ----

const CAPABILITY_FLAGS = [
  "create_worker", "send_input", "busy_queue", "busy_interrupt", "stop", "cancel",
  "delete_worker", "transcript", "events_subscribe", "persistent_store", "list_profiles",
  "update_worker", "rollback", "fork_worker", "search_workers",
];

async function loadRuntimes() {
  const list = await api.runtimes();
  state.runtimes = new Map(list.items.map((rt) => [rt.runtime_id, rt]));
  $("runtimes").replaceChildren(
    ...list.items.map((rt) => {
      const readOnly = rt.implementation === "local_compat" ? " · read-only" : "";
      const caps = CAPABILITY_FLAGS.filter((flag) => rt.capabilities[flag]).join(", ");
      return el(
        "li",
        { className: "runtime" },
        el("strong", { textContent: rt.display_name }),
        el("div", {
          className: "small",
          textContent: `${rt.runtime_id} · ${rt.implementation} · ${rt.status.state}${readOnly}`,
        }),
        el(
          "details",
          { className: "caps" },
          el("summary", { textContent: "What it can do" }),
          el("div", { textContent: caps || "no operations" }),
        ),
      );
    }),
  );
  const creatable = list.items.filter((rt) => rt.capabilities.create_worker);
  $("create-runtime").replaceChildren(
    ...creatable.map((rt) => el("option", { value: rt.runtime_id, textContent: rt.display_name })),
  );
  $("create").hidden = creatable.length === 0;
  await loadProfiles();
}

async function loadProfiles() {
  const runtime = state.runtimes.get($("create-runtime").value);
  const select = $("create-profile");
  if (!runtime || !runtime.capabilities.list_profiles) {
    select.replaceChildren(el("option", { value: "", textContent: "(the Runtime's default)" }));
    return;
  }
  const profiles = await api.profiles(runtime.runtime_id);
  select.replaceChildren(
    ...profiles.items.map((p) =>
      el("option", {
        value: p.name,
        selected: p.default,
        textContent: `${p.name} (${p.backend}${p.default ? ", default" : ""})`,
      }),
    ),
  );
}

$("create-runtime").addEventListener("change", () => loadProfiles().catch(fail));

$("diagnostics-box").addEventListener("toggle", async (event) => {
  if (!event.target.open) return;
  try {
    const view = await api.diagnostics();
    const items = view.items.flatMap((source) =>
      source.diagnostics.length === 0
        ? [el("li", { textContent: `${source.runtime_id}: ${source.status}, nothing to report` })]
        : source.diagnostics.map((d) =>
            el("li", { textContent: `${source.runtime_id}: ${d.level} ${d.code}: ${d.message}` }),
          ),
    );
    $("diagnostics").replaceChildren(...items);
  } catch (err) {
    fail(err);
  }
});

// ---- Workers ----

/** The query of the filter form, or an error naming what to fix. */
function filterParams() {
  const params = new URLSearchParams();
  for (const pair of $("filter-metadata").value.split(/\s+/).filter(Boolean)) {
    const at = pair.indexOf("=");
    if (at < 1) throw new Error(`Write metadata filters as key=value ("${pair}" is not).`);
    params.append(`metadata.${pair.slice(0, at)}`, pair.slice(at + 1));
  }
  if ($("filter-state").value) params.set("state", $("filter-state").value);
  const [sort, order] = $("filter-order").value.split(":");
  params.set("sort", sort);
  params.set("order", order);
  return params;
}

/** Lists Workers for the filter form: the first page, or with `more` the
 * next one after the last (the server's composite cursor). */
async function loadWorkers(more = false) {
  const params = filterParams();
  if (more && state.workersCursor) params.set("cursor", state.workersCursor);
  const list = await api.workers(params);
  state.workersCursor = list.next_cursor;
  $("workers-more").hidden = !list.next_cursor;
  const notes = [];
  if (list.skipped.length) notes.push(`Not searched (cannot filter): ${list.skipped.join(", ")}.`);
  if (list.unavailable.length) notes.push(`Unavailable: ${list.unavailable.join(", ")}.`);
  $("workers-note").textContent = notes.join(" ");
  $("workers-note").hidden = notes.length === 0;
  const current = state.open && `${state.open.runtimeId}/${state.open.workerId}`;
  const items = list.items.map((w) => {
      const key = `${w.runtime_id}/${w.worker_id}`;
      const button = el("button", {
        type: "button",
        textContent: `${w.display_name} · ${w.state}`,
        title: key,
      });
      button.setAttribute("aria-current", String(key === current));
      button.addEventListener("click", () => openWorker(w.runtime_id, w.worker_id).catch(fail));
      return el("li", {}, button);
  });
  if (more) {
    $("workers").append(...items);
  } else {
    $("workers").replaceChildren(...items);
  }
  if (!more && list.items.length === 0) {
    const filtered = $("filter-metadata").value.trim() || $("filter-state").value;
    const text = filtered ? "No Worker matches." : "No Workers yet.";
    $("workers").append(el("li", { className: "small", textContent: text }));
  }
}

$("filter").addEventListener("submit", (event) => {
  event.preventDefault();
  loadWorkers().catch(fail);
});

$("workers-more").addEventListener("click", () => loadWorkers(true).catch(fail));

$("refresh").addEventListener("click", () =>
  Promise.all([loadRuntimes(), loadWorkers()]).catch(fail),
);

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const request = {};
  if ($("create-profile").value) request.profile = $("create-profile").value;
  if ($("create-name").value.trim()) request.display_name = $("create-name").value.trim();
  try {
    const detail = await api.create($("create-runtime").value, request);
    $("create-name").value = "";
    await openWorker(detail.runtime_id, detail.worker_id);
    await loadWorkers();
    $("input-text").focus();
  } catch (err) {
    fail(err);
  }
});

// ---- one Worker ----

function closeStream() {
  if (state.open?.source) state.open.source.close();
}

async function openWorker(runtimeId, workerId) {
  closeStream();
  const caps = state.runtimes.get(runtimeId)?.capabilities ?? {};
  // The cursor first, then the transcript: the stream then replays
  // whatever the snapshot might have missed.
  const detail = await api.worker(runtimeId, workerId);
  const open = {
    runtimeId,
    workerId,
    caps,
    entries: new Map(),
    first: 0,
    source: null,
    fromSnapshot: new Set(),
    stopped: detail.state === "stopped",
    // Streams closed for good in a row, for the back-off of `resync`.
    failures: 0,
  };
  state.open = open;
  $("empty-hint").hidden = true;
  history.replaceState(null, "", `#runtime=${encodeURIComponent(runtimeId)}&worker=${encodeURIComponent(workerId)}`);
  showIdentity(detail);
  $("transcript").replaceChildren();
  showWorkerState(detail.state);
  if (caps.transcript) {
    const probe = await api.transcript(runtimeId, workerId, 0, 1);
    const start = Math.max(probe.start, probe.total - PAGE);
    await loadEntries(open, start, PAGE, true);
    open.first = start;
  }
  updateOlder(open);
  if (caps.events_subscribe) subscribe(open, detail.last_cursor);
  await loadWorkers();
}

/** The Worker's name and metadata pairs. */
function showIdentity(detail) {
  $("chat-title").textContent = detail.display_name;
  const pairs = Object.entries(detail.metadata ?? {});
  $("metadata").textContent = pairs.map(([key, value]) => `${key}: ${value}`).join(" · ");
}

function showWorkerState(workerState) {
  const open = state.open;
  $("worker-state").textContent = workerState;
  const live = !["stopping", "stopped", "failed"].includes(workerState);
  $("input").hidden = !(open?.caps.send_input && live);
  $("cancel").hidden = !(open?.caps.cancel && workerState === "running");
  $("stop").hidden = !(open?.caps.stop && live);
  $("delete").hidden = !open?.caps.delete_worker;
  $("rename").hidden = !open?.caps.update_worker;
  $("rollback").hidden = !(open?.caps.rollback && workerState === "idle");
  $("on-busy").querySelector('[value="queue"]').disabled = !open?.caps.busy_queue;
  $("on-busy").querySelector('[value="interrupt"]').disabled = !open?.caps.busy_interrupt;
}

async function loadEntries(open, start, limit, snapshot) {
  const page = await api.transcript(open.runtimeId, open.workerId, start, limit);
  if (state.open !== open) return;
  for (const entry of page.entries) {
    open.entries.set(entry.index, entry);
    if (snapshot && entry.status === "partial") open.fromSnapshot.add(entry.index);
    else open.fromSnapshot.delete(entry.index);
    render(entry);
  }
}

function updateOlder(open) {
  $("older").hidden = !(open.caps.transcript && open.first > 0);
}

$("older").addEventListener("click", async () => {
  const open = state.open;
  const start = Math.max(0, open.first - PAGE);
  await loadEntries(open, start, open.first - start, false).catch(fail);
  open.first = start;
  updateOlder(open);
});

/** Draws or redraws one entry, in index order. */
function render(entry) {
  const list = $("transcript");
  const id = `entry-${entry.index}`;
  let node = document.getElementById(id);
  if (!node) {
    node = el("li", { id }, el("span", { className: "meta" }), el("span", { className: "text" }));
    if (state.open?.caps.fork_worker) {
      const fork = el("button", {
        type: "button",
        className: "fork",
        textContent: "Fork from here",
        title: "A new Worker with this conversation up to and including this entry",
      });
      fork.addEventListener("click", () => forkAt(entry.index + 1));
      node.append(fork);
    }
  }
  node.className = `entry ${entry.role} ${entry.status}`;
  node.dataset.index = entry.index;
  node.querySelector(".meta").textContent =
    `${entry.role}${entry.status === "complete" ? "" : ` · ${entry.status}`}`;
  node.querySelector(".text").textContent = entry.text;
  if (!node.isConnected) {
    const later = [...list.children].find((child) => Number(child.dataset.index) > entry.index);
    list.insertBefore(node, later ?? null);
    node.scrollIntoView({ block: "nearest" });
  }
}

/** Opens `open`'s Worker again (transcript and stream), after its stream
 * was closed for good; says "stream ended" if the Worker stopped or is
 * gone, and tries again later, backing off, while the server or its
 * Runtime cannot answer. */
async function resync(open) {
  if (state.open !== open) return;
  // openWorker replaces `state.open` as it starts: what counts is that
  // the same Worker is still the one shown.
  const shown = () =>
    state.open?.runtimeId === open.runtimeId && state.open?.workerId === open.workerId;
  try {
    const detail = await api.worker(open.runtimeId, open.workerId);
    if (state.open !== open) return;
    if (detail.state === "stopped") {
      showWorkerState("stopped");
      $("stream-state").textContent = "stream ended";
      return;
    }
    await openWorker(open.runtimeId, open.workerId);
    // Still counting, so a stream that keeps failing backs off.
    if (state.open) state.open.failures = open.failures;
  } catch (err) {
    if (!shown()) return;
    if (err instanceof ApiError && err.status < 500) {
      // Gone (deleted, or lost with a memory store), or signed out.
      $("stream-state").textContent = "stream ended";
      return fail(err);
    }
    const current = state.open;
    const wait = Math.min(1000 * 2 ** open.failures, 30_000);
    current.failures = open.failures + 1;
    setTimeout(() => resync(current), wait);
  }
}

function subscribe(open, after) {
  const source = new EventSource(api.streamUrl(open.runtimeId, open.workerId, after));
  open.source = source;
  const streamState = (text) => {
    if (state.open === open) $("stream-state").textContent = text;
  };
  streamState("connecting…");
  source.addEventListener("open", () => {
    open.failures = 0;
    streamState("live");
  });
  source.addEventListener("error", () => {
    // EventSource reconnects by itself after a dropped connection,
    // resuming after the last id. An answer that is not a stream closes it
    // for good: a 204 (the Worker stopped), or an error (its cursor expired
    // in a restart, the Runtime is down for now). Then start again from
    // what the server has, unless the Worker stopped.
    if (source.readyState === EventSource.CLOSED && open.stopped) {
      streamState("stream ended");
      return;
    }
    streamState("reconnecting…");
    if (source.readyState !== EventSource.CLOSED) return;
    const wait = Math.min(1000 * 2 ** open.failures, 30_000);
    open.failures += 1;
    setTimeout(() => resync(open), wait);
  });
  const on = (kind, handle) =>
    source.addEventListener(kind, (message) => {
      if (state.open === open) handle(JSON.parse(message.data));
    });
  const refetch = (index) => loadEntries(open, index, PAGE, false).catch(fail);
  on("input_accepted", (event) => refetch(event.transcript_index));
  on("turn_started", (event) => {
    const entry = { index: event.transcript_index, role: "assistant", text: "", status: "partial" };
    if (!open.entries.has(entry.index)) {
      open.entries.set(entry.index, entry);
      render(entry);
    }
  });
  on("text_delta", (event) => {
    const entry = open.entries.get(event.transcript_index);
    // Text the snapshot already had cannot be told apart from new text;
    // the end of the turn redraws it from the transcript.
    if (!entry || open.fromSnapshot.has(entry.index)) return;
    entry.text += event.delta;
    render(entry);
  });
  for (const kind of ["turn_completed", "turn_failed", "turn_cancelled"]) {
    on(kind, (event) => refetch(event.transcript_index));
  }
  on("state_changed", (event) => {
    showWorkerState(event.to);
    loadWorkers().catch(fail);
  });
  on("worker_updated", (event) => {
    showIdentity(event);
    loadWorkers().catch(fail);
  });
  on("worker_stopped", () => {
    showWorkerState("stopped");
    source.close();
    streamState("stream ended");
  });
  on("stream_error", (problem) => {
    notice(problem.detail ?? "the event stream failed", true);
  });
}

// The input being sent, until it is accepted: sending the same text to the
// same Worker again (after an error, or a second Enter while the first is
// on its way) reuses its client_input_id, so the server records it once.
let unsent = null;

function clientInputId(open, text) {
  if (unsent?.runtimeId !== open.runtimeId || unsent.workerId !== open.workerId || unsent.text !== text) {
    // getRandomValues, not randomUUID: the latter needs a secure context,
    // which a console on a LAN address over http is not.
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    const id = "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    unsent = { runtimeId: open.runtimeId, workerId: open.workerId, text, id };
  }
  return unsent.id;
}

$("input").addEventListener("submit", async (event) => {
  event.preventDefault();
  const open = state.open;
  const text = $("input-text").value;
  if (!open || !text.trim()) return;
  const id = clientInputId(open, text);
  try {
    await api.input(open.runtimeId, open.workerId, text, $("on-busy").value, id);
    if (unsent?.id === id) unsent = null;
    if ($("input-text").value === text) $("input-text").value = "";
    notice("");
  } catch (err) {
    fail(err);
  }
});

$("input-text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("input").requestSubmit();
  }
});

for (const [id, action] of [
  ["cancel", api.cancel],
  ["stop", api.stop],
]) {
  $(id).addEventListener("click", async () => {
    const open = state.open;
    try {
      const detail = await action(open.runtimeId, open.workerId);
      showWorkerState(detail.state);
    } catch (err) {
      fail(err);
    }
  });
}

$("rename").addEventListener("click", () => {
  $("rename-form").hidden = false;
  $("rename-name").value = $("chat-title").textContent;
  $("rename-name").select();
});

$("rename-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const open = state.open;
  try {
    const detail = await api.update(open.runtimeId, open.workerId, {
      display_name: $("rename-name").value,
    });
    showIdentity(detail);
    $("rename-form").hidden = true;
    await loadWorkers();
  } catch (err) {
    fail(err);
  }
});

/** Forks the open Worker before transcript index `at`, and opens the fork. */
async function forkAt(at) {
  const open = state.open;
  try {
    const fork = await api.fork(open.runtimeId, open.workerId, at);
    await openWorker(fork.runtime_id, fork.worker_id);
  } catch (err) {
    fail(err);
  }
}

$("rollback").addEventListener("click", async () => {
  const open = state.open;
  try {
    await api.rollback(open.runtimeId, open.workerId, 1);
    // Redraw from the transcript: the taken-back entries changed status.
    await loadEntries(open, open.first, PAGE * 4, false);
  } catch (err) {
    fail(err);
  }
});

$("delete").addEventListener("click", async () => {
  const open = state.open;
  if (!confirm(`Delete ${$("chat-title").textContent} and its transcript?`)) return;
  try {
    closeStream();
    await api.remove(open.runtimeId, open.workerId);
    state.open = null;
    $("chat-title").textContent = "No Worker selected";
    $("empty-hint").hidden = false;
    $("transcript").replaceChildren();
    for (const id of ["input", "cancel", "stop", "delete", "older", "rename", "rename-form", "rollback"]) {
      $(id).hidden = true;
    }
    $("metadata").textContent = "";
    $("worker-state").textContent = "";
    $("stream-state").textContent = "";
    history.replaceState(null, "", location.pathname);
    await loadWorkers();
  } catch (err) {
    fail(err);
  }
});

start();
