// The operator API, called with the session's bearer token. Errors become ApiError with
// the RFC 9457 problem's title and detail, so views can show them in words.
import { session } from "./session.js";

export class ApiError extends Error {
  constructor(status, title, detail, fields = {}) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.fields = fields; // machine-readable extras of the problem, e.g. a refusal's `reason`
  }
}

const authListeners = new Set();
/** Called with an ApiError when the token is refused (401): expired, revoked or unknown. */
export function onAuthFailure(fn) {
  authListeners.add(fn);
}

/** Query string from an object; arrays repeat the key, empty values are left out. */
export function query(params = {}) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) q.append(key, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** GET/POST/... `path` (e.g. "/v1/fleet"); resolves to parsed JSON (null for 204). */
export async function api(path, { method = "GET", body, params, token, signal } = {}) {
  const headers = { Authorization: `Bearer ${token || session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path + query(params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The platform cannot be reached", "check that Autocloud is running");
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const error = problemOf(response.status, data);
    if (response.status === 401 && !token) for (const fn of authListeners) fn(error);
    throw error;
  }
  return data;
}

function problemOf(status, data) {
  if (data && typeof data === "object") {
    const detail = Array.isArray(data.detail)
      ? data.detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ")
      : data.detail;
    return new ApiError(status, data.title || `HTTP ${status}`, detail || "", data);
  }
  return new ApiError(status, `HTTP ${status}`, typeof data === "string" ? data.slice(0, 200) : "");
}

/** Every page of a cursor-paginated list (stops at `max` items). */
export async function all(path, params = {}, max = 100_000) {
  const items = [];
  let cursor;
  do {
    const page = await api(path, { params: { ...params, cursor, limit: 1000 } });
    items.push(...page.items);
    cursor = page.next;
  } while (cursor && items.length < max);
  return items;
}

/** The platform's OpenAPI paths, fetched once: features appear when their routes exist. */
let paths;
export async function hasRoute(path, method = "get") {
  if (!paths) {
    paths = fetch("/openapi.json")
      .then((r) => (r.ok ? r.json() : { paths: {} }))
      .then((doc) => doc.paths || {})
      .catch(() => ({}));
  }
  const found = (await paths)[path];
  return Boolean(found && found[method]);
}
