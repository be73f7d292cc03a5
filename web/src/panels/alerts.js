// Alerts: the fleet-wide page (list by state, acknowledge, rule editor) and the vehicle
// page's open alerts. Both follow the `alert` stream events.
import { api } from "../api.js";
import { session } from "../session.js";
import { subscribe } from "../stream.js";
import { fill, formatTime, h, notice } from "../ui.js";

function alertRow(a, onAck) {
  return h("tr", { "data-alert-id": a.id, "data-state": a.state },
    h("td", {}, formatTime(a.opened_ms)),
    h("td", {}, a.vin ? h("a", { href: `#/vehicle/${a.vin}` }, a.vin) : "—"),
    h("td", {}, a.rule),
    h("td", {}, h("span", { class: `severity-${String(a.severity).toLowerCase()}` }, String(a.severity))),
    h("td", {}, a.state),
    h("td", {}, a.detail),
    h("td", {}, a.state === "open" ? h("button", { type: "button", onclick: () => onAck(a) }, "Acknowledge") : ""));
}

async function acknowledge(a, message) {
  try {
    await api(`/v1/alerts/${encodeURIComponent(a.id)}/ack`, { method: "POST", body: {} });
    return true;
  } catch (err) {
    fill(message, notice(`The alert could not be acknowledged: ${err.message}`, "error"));
    return false;
  }
}

export async function alertsPage(box) {
  let state = "open";
  const body = h("tbody");
  const message = h("div", { role: "alert" });
  const tabs = h("div", { class: "chips", role: "group", "aria-label": "Alert state" });
  fill(box, h("h2", {}, "Alerts across the fleet"), tabs, message,
    h("table", {}, h("thead", {}, h("tr", {}, ["Opened", "Vehicle", "Rule", "Severity", "State", "Detail", ""].map((c) => h("th", { scope: "col" }, c)))), body));

  function drawTabs() {
    fill(tabs, ["open", "acknowledged", "resolved"].map((s) => h("button", { type: "button", class: s === state ? "chip active" : "chip", "aria-pressed": String(s === state), onclick: () => { state = s; drawTabs(); load(); } }, s)));
  }
  async function load() {
    const page = await api("/v1/alerts", { params: { state, brand: session.brand, limit: 200 } });
    fill(body, page.items.length === 0 ? h("tr", {}, h("td", { colspan: 7 }, `No ${state} alerts.`)) :
      page.items.map((a) => alertRow(a, async (x) => { if (await acknowledge(x, message)) load(); })));
  }
  drawTabs();
  await load();
  return subscribe("alert", () => load().catch(() => {}));
}

export async function alertsForVehicle(box, { vin, subscribeVin }) {
  const body = h("tbody");
  const message = h("div", { role: "alert" });
  fill(box, h("h2", {}, "Open alerts"), message,
    h("table", {}, h("thead", {}, h("tr", {}, ["Opened", "Vehicle", "Rule", "Severity", "State", "Detail", ""].map((c) => h("th", { scope: "col" }, c)))), body));
  async function load() {
    const page = await api("/v1/alerts", { params: { vin, state: "open", limit: 50 } });
    fill(body, page.items.length === 0 ? h("tr", {}, h("td", { colspan: 7 }, "No open alerts.")) :
      page.items.map((a) => alertRow(a, async (x) => { if (await acknowledge(x, message)) load(); })));
  }
  await load();
  return subscribeVin("alert", () => load().catch(() => {}));
}
