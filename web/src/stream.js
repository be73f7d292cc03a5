// The platform's Server-Sent Events stream (/v1/stream), scoped to the token's tenant (and
// the brand filter). One connection per tab carries the fleet: `positions` (once a second,
// every vehicle that moved or changed state, in columns) instead of one `twin` event per
// vehicle message, and the rarer kinds (presence, event, dead_letter, command, alert, dtc,
// diag). A vehicle's page adds a second connection for that one vehicle's full `twin`
// changes (`subscribeTwin`), closed when the page is left.
import { session } from "./session.js";

/** The kinds the tab's connection asks for (`twin` only per vehicle: see subscribeTwin). */
export const KINDS = ["positions", "presence", "event", "dead_letter", "command", "alert", "dtc", "diag"];
export const POSITIONS_INTERVAL_S = 1;

const handlers = new Map(); // kind -> Set(fn)
const stateListeners = new Set();
const twins = new Map(); // vin -> {source, fns}
let source = null;
let state = "closed";
/** What arrived (for the benchmark and the curious): events, characters, time spent. */
export const counters = { events: 0, bytes: 0, lagged: 0, positions: 0, parseMs: 0, handleMs: 0, maxMs: 0 };

function setState(next) {
  state = next;
  for (const fn of stateListeners) fn(next);
}

export function onStreamState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/** Call fn(data) for every change of `kind` (one of KINDS); returns the unsubscribe function. */
export function subscribe(kind, fn) {
  if (kind === "twin") throw new Error("twin changes come per vehicle: use subscribeTwin(vin, fn)");
  if (!handlers.has(kind)) handlers.set(kind, new Set());
  handlers.get(kind).add(fn);
  return () => handlers.get(kind).delete(fn);
}

function streamUrl(params) {
  const q = new URLSearchParams({ access_token: session.token, ...params });
  if (session.brand && !params.vin) q.set("brand", session.brand);
  return `/v1/stream?${q}`;
}

/** Parse one event and hand it to `fns`, timing both (a positions event is the big one). */
function dispatch(message, fns) {
  counters.events += 1;
  counters.bytes += message.data.length;
  const started = performance.now();
  let data;
  try {
    data = JSON.parse(message.data);
  } catch {
    return; // not ours to show: the stream only carries JSON
  }
  const parsed = performance.now();
  if (data.lagged) counters.lagged += data.lagged;
  for (const fn of fns) fn(data);
  const done = performance.now();
  counters.parseMs += parsed - started;
  counters.handleMs += done - parsed;
  counters.maxMs = Math.max(counters.maxMs, done - started);
  if (message.type === "positions") counters.positions += 1;
}

/** (Re)connect with the current token and brand filter. */
export function connect() {
  closeMain();
  const src = new EventSource(streamUrl({ kinds: KINDS.join(","), interval: String(POSITIONS_INTERVAL_S) }));
  source = src;
  setState("connecting");
  src.addEventListener("ready", () => setState("live"));
  src.onerror = () => {
    // EventSource retries by itself; CLOSED means the server refused (e.g. 401).
    setState(src.readyState === EventSource.CLOSED ? "closed" : "reconnecting");
  };
  for (const kind of KINDS) {
    src.addEventListener(kind, (message) => dispatch(message, handlers.get(kind) || []));
  }
}

function closeMain() {
  if (source) source.close();
  source = null;
}

/** Close every connection of the tab (signing out). */
export function disconnect() {
  closeMain();
  for (const { source: twin } of twins.values()) twin.close();
  twins.clear();
  setState("closed");
}

/**
 * Call fn(data) for every twin change of vehicle `vin` (all its signals): its own connection
 * (`/v1/stream?vin=…&kinds=twin`), shared by the page's panels, closed with the last of them.
 */
export function subscribeTwin(vin, fn) {
  let entry = twins.get(vin);
  if (!entry) {
    const src = new EventSource(streamUrl({ vin, kinds: "twin" }));
    entry = { source: src, fns: new Set() };
    src.addEventListener("twin", (message) => dispatch(message, entry.fns));
    twins.set(vin, entry);
  }
  entry.fns.add(fn);
  return () => {
    entry.fns.delete(fn);
    if (entry.fns.size === 0 && twins.get(vin) === entry) {
      entry.source.close();
      twins.delete(vin);
    }
  };
}
