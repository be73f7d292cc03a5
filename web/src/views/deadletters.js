// Dead letters: refused messages by reason, each with its raw payload shown as text (never
// as markup), newest first, with paging; new ones arriving on the stream are counted.
import { api } from "../api.js";
import { session } from "../session.js";
import { subscribe } from "../stream.js";
import { fill, formatTime, h, notice, timeZone } from "../ui.js";

export function deadLettersView(main) {
  const state = { reason: "", vin: "", next: null };
  const summary = h("div", { class: "reasons" });
  const rows = h("tbody");
  const more = h("button", { type: "button", hidden: true, onclick: () => load(true) }, "Load more");
  const fresh = h("button", { type: "button", hidden: true, onclick: () => { arrived = 0; reload(); } });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const vinInput = h("input", { type: "search", id: "dl-vin", placeholder: "any vehicle", onchange: (e) => { state.vin = e.target.value.trim(); reload(); } });
  let arrived = 0;

  fill(main, h("div", { class: "page" },
    h("h1", {}, "Dead letters"),
    h("p", { class: "hint" }, `Messages and values the platform refused, with the reason and the raw payload. Times in ${timeZone}.`),
    summary,
    h("div", { class: "controls" }, h("label", { for: "dl-vin", class: "field" }, "VIN ", vinInput), fresh),
    status,
    h("table", { class: "dead-letters" },
      h("thead", {}, h("tr", {}, ["Received", "Vehicle", "Topic", "Reason", "Detail", "Payload"].map((c) => h("th", { scope: "col" }, c)))),
      rows),
    more));

  async function loadSummary() {
    try {
      const counts = await api("/v1/dead-letters/summary", { params: { brand: session.brand } });
      const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
      fill(summary, h("h2", {}, "By reason"), entries.length === 0 ? h("p", {}, "No dead letters: every message was accepted.") :
        h("ul", { class: "chips" },
          h("li", {}, h("button", { type: "button", class: state.reason ? "chip" : "chip active", "aria-pressed": String(!state.reason), onclick: () => { state.reason = ""; reload(); } }, "all reasons")),
          entries.map(([reason, n]) => h("li", {}, h("button", {
            type: "button", class: state.reason === reason ? "chip active" : "chip", "aria-pressed": String(state.reason === reason),
            onclick: () => { state.reason = reason; reload(); },
          }, `${reason} `, h("strong", {}, String(n)))))));
    } catch (err) {
      fill(summary, notice(`The summary could not be loaded: ${err.message}`, "error"));
    }
  }

  async function load(append = false) {
    status.textContent = "Loading…";
    try {
      const page = await api("/v1/dead-letters", { params: { brand: session.brand, reason: state.reason, vin: state.vin, cursor: append ? state.next : undefined, limit: 50 } });
      if (!append) rows.replaceChildren();
      for (const d of page.items) rows.append(row(d));
      state.next = page.next;
      more.hidden = !page.next;
      status.textContent = rows.children.length ? `${rows.children.length} shown` : "No dead letters match.";
    } catch (err) {
      status.textContent = "";
      rows.replaceChildren(h("tr", {}, h("td", { colspan: 6 }, notice(`Dead letters could not be loaded: ${err.message}`, "error"))));
    }
  }

  function reload() {
    fresh.hidden = true;
    loadSummary();
    load(false);
  }

  const off = subscribe("dead_letter", () => {
    arrived += 1;
    fresh.hidden = false;
    fresh.textContent = `${arrived} new — show`;
  });
  reload();
  return off;
}

function row(d) {
  const payload = d.payload_encoding === "base64" ? `(binary, base64) ${d.payload}` : d.payload;
  return h("tr", {},
    h("td", {}, formatTime(d.received_ms)),
    h("td", {}, d.vin ? h("a", { href: `#/vehicle/${d.vin}` }, d.vin) : "unknown", d.brand ? h("div", { class: "meta" }, session.brandName(d.brand)) : null),
    h("td", {}, h("code", {}, d.topic)),
    h("td", {}, h("span", { class: "reason" }, d.reason)),
    h("td", {}, d.detail),
    h("td", {}, h("pre", { class: "payload", tabindex: "0" }, payload)));
}
