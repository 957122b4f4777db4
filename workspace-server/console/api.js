// The console's HTTP client: same-origin fetches with the session cookie.
// State-changing requests carry X-Yoi-Csrf, the proof the server asks of
// cookie-authenticated requests, and a JSON content type.

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.code = problem?.code || "http_error";
  }
}

async function call(method, path, body) {
  const headers = { accept: "application/json" };
  if (method !== "GET") {
    headers["x-yoi-csrf"] = "1";
    headers["content-type"] = "application/json";
  }
  const response = await fetch(path, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

const enc = encodeURIComponent;
const workerPath = (runtimeId, workerId) =>
  `/api/runtimes/${enc(runtimeId)}/workers/${enc(workerId)}`;

export const api = {
  session: () => call("GET", "/api/session"),
  signIn: (token) => call("POST", "/api/session", { token }),
  signOut: () => call("DELETE", "/api/session"),
  runtimes: () => call("GET", "/api/runtimes"),
  diagnostics: () => call("GET", "/api/diagnostics"),
  profiles: (runtimeId) => call("GET", `/api/runtimes/${enc(runtimeId)}/profiles`),
  /** `params`: a URLSearchParams of filters, sort, order and cursor. */
  workers: (params) => call("GET", `/api/workers?${params ?? ""}`),
  worker: (runtimeId, workerId) => call("GET", workerPath(runtimeId, workerId)),
  create: (runtimeId, request) =>
    call("POST", `/api/runtimes/${enc(runtimeId)}/workers`, request),
  /** `clientInputId`: the same id for a resend of the same text, so that
   * an input the server recorded before the answer was lost is not
   * recorded twice. */
  input: (runtimeId, workerId, text, onBusy, clientInputId) =>
    call("POST", `${workerPath(runtimeId, workerId)}/input`, {
      text,
      on_busy: onBusy,
      client_input_id: clientInputId,
    }),
  cancel: (runtimeId, workerId) => call("POST", `${workerPath(runtimeId, workerId)}/cancel`),
  stop: (runtimeId, workerId) => call("POST", `${workerPath(runtimeId, workerId)}/stop`),
  remove: (runtimeId, workerId) => call("DELETE", workerPath(runtimeId, workerId)),
  update: (runtimeId, workerId, patch) => call("PATCH", workerPath(runtimeId, workerId), patch),
  rollback: (runtimeId, workerId, turns) =>
    call("POST", `${workerPath(runtimeId, workerId)}/rollback`, { turns }),
  fork: (runtimeId, workerId, at) =>
    call("POST", `${workerPath(runtimeId, workerId)}/fork`, { at }),
  transcript: (runtimeId, workerId, start, limit) =>
    call("GET", `${workerPath(runtimeId, workerId)}/transcript?start=${start}&limit=${limit}`),
  streamUrl: (runtimeId, workerId, after) =>
    `${workerPath(runtimeId, workerId)}/events/stream` + (after ? `?after=${enc(after)}` : ""),
};
