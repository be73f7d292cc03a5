// Small DOM and formatting helpers shared by every view. Text always goes in through
// textContent (never innerHTML), so payloads and names from vehicles cannot inject markup.

/** Create an element: h("button", {type: "button", onclick}, "Lock"). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.className = value;
    } else if (key === "dataset") {
      Object.assign(node.dataset, value);
    } else if (value === true) {
      node.setAttribute(key, "");
    } else {
      node.setAttribute(key, String(value));
    }
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of `node`. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

/** A time in the browser's time zone, with the zone's short name. */
export function formatTime(ms) {
  if (ms === null || ms === undefined) return "—";
  return timeFormat.format(new Date(ms));
}

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** "12 s ago", "3 min ago", "2 h ago", "4 d ago". */
export function formatAge(ms, now = Date.now()) {
  if (ms === null || ms === undefined) return "—";
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// Number formats by fraction digits, made once (toLocaleString makes one per call: slow
// when the fleet list formats hundreds of values a second).
const numberFormats = new Map([0, 1, 2, 4].map((d) => [d, new Intl.NumberFormat(undefined, { maximumFractionDigits: d })]));

/** A signal value for people: numbers rounded to the precision that matters. */
export function formatValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return numberFormats.get(0).format(value);
    const abs = Math.abs(value);
    const digits = abs >= 100 ? 1 : abs >= 1 ? 2 : 4;
    return numberFormats.get(digits).format(value);
  }
  if (Array.isArray(value)) return value.map(formatValue).join(", ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** A labelled <select>: options are [value, text] pairs. */
export function select(label, options, value, onchange, attrs = {}) {
  const id = attrs.id || `sel-${Math.random().toString(36).slice(2, 9)}`;
  const sel = h("select", { id, onchange: (e) => onchange(e.target.value) },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
  return h("label", { for: id, class: attrs.class || "field" }, label, " ", sel);
}

/** A message in words, for errors and empty states, announced to screen readers. */
export function notice(text, kind = "info") {
  return h("p", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** Run `fn` at most once per animation frame, however often `schedule()` is called. */
export function frameBatcher(fn) {
  let pending = false;
  return function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}
