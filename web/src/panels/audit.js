// The audit log of this vehicle: who did what, when, and the outcome (GET /v1/audit).
import { api } from "../api.js";
import { fill, formatTime, h, notice } from "../ui.js";

export async function auditPanel(box, { vin, subscribeVin }) {
  const body = h("tbody");
  const status = h("p", { class: "hint", role: "status" });
  fill(box, h("h2", {}, "Audit log"), status,
    h("table", {}, h("thead", {}, h("tr", {}, ["When", "Who", "Action", "Command", "Detail"].map((c) => h("th", { scope: "col" }, c)))), body));

  async function load() {
    try {
      const page = await api("/v1/audit", { params: { vin, since: "30d", limit: 1000 } });
      const items = [...page.items].sort((a, b) => b.at_ms - a.at_ms).slice(0, 30);
      fill(body, items.map((a) => h("tr", {}, h("td", {}, formatTime(a.at_ms)), h("td", {}, a.caller), h("td", {}, a.action), h("td", {}, a.name || "—"), h("td", {}, a.detail))));
      status.textContent = items.length ? "Last 30 days, newest first." : "Nothing recorded for this vehicle in the last 30 days.";
    } catch (err) {
      fill(body, h("tr", {}, h("td", { colspan: 5 }, notice(`The audit log could not be loaded: ${err.message}`, "error"))));
    }
  }
  let timer = null;
  const off = subscribeVin("command", () => { clearTimeout(timer); timer = setTimeout(load, 500); });
  await load();
  return () => { off(); clearTimeout(timer); };
}
