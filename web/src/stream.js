// One live connection per tab to the platform's Server-Sent Events stream (/v1/stream),
// scoped to the token's tenant (and the brand filter). Views subscribe by kind: twin,
// presence, event, dead_letter, and the feature kinds command, alert, dtc, diag.
import { session } from "./session.js";

const handlers = new Map(); // kind -> Set(fn)
const stateListeners = new Set();
let source = null;
let state = "closed";
export const counters = { events: 0, bytes: 0, lagged: 0 };

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(next);
}

export function onStreamState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/** Call fn(data) for every change of `kind`; returns the unsubscribe function. */
export function subscribe(kind, fn) {
  if (!handlers.has(kind)) {
    handlers.set(kind, new Set());
    if (source) listen(source, kind);
  }
  handlers.get(kind).add(fn);
  return () => handlers.get(kind).delete(fn);
}

function listen(src, kind) {
  src.addEventListener(kind, (message) => {
    counters.events += 1;
    counters.bytes += message.data.length;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return; // not ours to show: the stream only carries JSON
    }
    if (data.lagged) counters.lagged += data.lagged;
    for (const fn of handlers.get(kind) || []) fn(data);
  });
}

/** (Re)connect with the current token and brand filter. */
export function connect() {
  disconnect();
  const params = new URLSearchParams({ access_token: session.token });
  if (session.brand) params.set("brand", session.brand);
  const src = new EventSource(`/v1/stream?${params}`);
  source = src;
  setState("connecting");
  src.addEventListener("ready", () => setState("live"));
  src.onerror = () => {
    // EventSource retries by itself; CLOSED means the server refused (e.g. 401).
    setState(src.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  for (const kind of handlers.keys()) listen(src, kind);
}

export function disconnect() {
  if (source) source.close();
  source = null;
  setState("closed");
}
