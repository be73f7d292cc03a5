// Active DTCs of the vehicle with description and severity (GET /v1/vehicles/{vin}/health),
// refreshed on the `dtc` stream event.
import { api } from "../api.js";
import { fill, formatTime, h } from "../ui.js";

export async function dtcsPanel(box, { vin, subscribeVin }) {
  const list = h("div");
  fill(box, h("h2", {}, "Active DTCs"), list);

  async function load() {
    const health = await api(`/v1/vehicles/${encodeURIComponent(vin)}/health`);
    const active = health.active;
    fill(list, active.length === 0 ? h("p", {}, "No active trouble codes.") :
      h("table", {}, h("thead", {}, h("tr", {}, ["Code", "Severity", "Description", "Since"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, active.map((d) => h("tr", {},
          h("td", {}, h("code", {}, d.code)),
          h("td", {}, h("span", { class: `severity-${String(d.severity).toLowerCase()}` }, String(d.severity))),
          h("td", {}, d.description || `${d.system}${d.subsystem ? `, ${d.subsystem}` : ""} (no description in the catalog)`),
          h("td", {}, formatTime(d.since_ms)))))));
  }
  const off = subscribeVin("dtc", () => load().catch(() => {}));
  await load();
  return off;
}
