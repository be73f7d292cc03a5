// Fleet overview: vehicles online and messages per second over time (the platform's fleet
// pulse), the battery SoC distribution (from the live fleet), vehicles per model and state,
// and DTCs by code and by model when the health API exists.
import { api, hasRoute } from "../api.js";
import { barChart, timeChart } from "../charts.js";
import { fleet, STATES, stateOf } from "../fleet.js";
import { session } from "../session.js";
import { fill, formatTime, h, notice, timeZone } from "../ui.js";

export function overviewView(main) {
  const boxes = {
    online: h("div", { class: "chart", id: "chart-online" }),
    rate: h("div", { class: "chart", id: "chart-rate" }),
    soc: h("div", { class: "chart", id: "chart-soc" }),
    models: h("div", { class: "chart", id: "chart-models" }),
    dtcCodes: h("div", { class: "chart", id: "chart-dtc-codes" }),
    dtcModels: h("div", { class: "chart", id: "chart-dtc-models" }),
  };
  const pulseNote = h("p", { class: "hint" });
  const tiles = h("div", { class: "tiles" });
  const dtcSection = h("section", { class: "panel" }, h("h2", {}, "DTCs"), notice("Loading…"));
  fill(main, h("div", { class: "page overview" },
    h("h1", {}, "Fleet overview"),
    tiles,
    h("div", { class: "grid2" },
      h("section", { class: "panel" }, h("h2", {}, "Vehicles online"), pulseNote, boxes.online),
      h("section", { class: "panel" }, h("h2", {}, "Messages per second"), boxes.rate),
      h("section", { class: "panel" }, h("h2", {}, "Battery state of charge"), h("p", { class: "hint" }, "Battery-electric and hybrid vehicles, by their last reported SoC."), boxes.soc),
      h("section", { class: "panel" }, h("h2", {}, "Vehicles by model"), boxes.models),
      dtcSection)));

  const online = timeChart(boxes.online, { label: "", unit: "vehicles", series: [{ label: "online", stroke: "#0b7a3b", width: 2 }, { label: "registered", stroke: "#6b7280" }] });
  const rate = timeChart(boxes.rate, { label: "", unit: "messages/s", series: [{ label: "messages/s", stroke: "#1d4ed8", width: 2 }] });
  const soc = barChart(boxes.soc, { label: "SoC in %", unit: "vehicles", color: "#7c3aed" });
  const models = barChart(boxes.models, { label: "", unit: "vehicles", color: "#1d4ed8" });
  const charts = [online, rate, soc, models];

  async function loadPulse() {
    try {
      const pulse = await api("/v1/fleet/pulse", { params: { brand: session.brand } });
      const xs = pulse.samples.map((s) => s.ts);
      online.set(xs, [pulse.samples.map((s) => s.online), pulse.samples.map((s) => s.vehicles)]);
      rate.set(xs, [pulse.samples.map((s) => s.messages_per_s)]);
      pulseNote.textContent = `Sampled every ${Math.round(pulse.interval_ms / 1000)} s since the platform started (${formatTime(pulse.since_ms)}); times in ${timeZone}.` +
        (pulse.samples.length < 2 ? " The first samples appear within a minute." : "");
    } catch (err) {
      pulseNote.textContent = `The fleet pulse could not be loaded: ${err.message}`;
    }
  }

  function drawFleet() {
    const vehicles = [...fleet.vehicles.values()];
    const bins = Array.from({ length: 10 }, () => 0);
    for (const v of vehicles) if (typeof v.soc === "number") bins[Math.min(9, Math.floor(v.soc / 10))] += 1;
    soc.set(bins.map((_, i) => `${i * 10}–${i * 10 + 10}`), bins);
    const byModel = new Map();
    for (const v of vehicles) byModel.set(v.model, (byModel.get(v.model) || 0) + 1);
    const sorted = [...byModel].sort((a, b) => b[1] - a[1]);
    models.set(sorted.map(([m]) => m || "unknown"), sorted.map(([, n]) => n));
    const byState = Object.fromEntries(STATES.map((s) => [s.id, 0]));
    for (const v of vehicles) byState[stateOf(v)] += 1;
    fill(tiles, h("div", { class: "tile" }, h("strong", {}, String(vehicles.length)), " vehicles"),
      STATES.map((s) => h("div", { class: "tile" }, h("span", { class: "dot", style: `background:${s.color}` }), h("strong", {}, String(byState[s.id])), ` ${s.label.toLowerCase()}`)));
  }

  async function loadDtcs() {
    if (!(await hasRoute("/v1/fleet/health"))) {
      fill(dtcSection, h("h2", {}, "DTCs"), notice("DTC health is not available on this platform yet."));
      return;
    }
    try {
      const health = await api("/v1/fleet/health", { params: { brand: session.brand } });
      fill(dtcSection, h("h2", {}, "Active DTCs by code"),
        h("p", { class: "hint" }, `${health.vehicles_with_codes} vehicles have active codes; ${health.critical.length} a critical one.`),
        boxes.dtcCodes, h("h2", {}, "Vehicles with active DTCs, by model"), boxes.dtcModels);
      const codes = barChart(boxes.dtcCodes, { unit: "vehicles", color: "#b3261e" });
      const perModel = barChart(boxes.dtcModels, { unit: "vehicles", color: "#e8590c" });
      const top = health.by_code.slice(0, 15);
      codes.set(top.map((c) => c.code), top.map((c) => c.vehicles));
      perModel.set(health.by_model.map((m) => m.model || "unknown"), health.by_model.map((m) => m.vehicles));
      charts.push(codes, perModel);
    } catch (err) {
      fill(dtcSection, h("h2", {}, "DTCs"), notice(`DTC health could not be loaded: ${err.message}`, "error"));
    }
  }

  drawFleet();
  loadPulse();
  loadDtcs();
  const timer = setInterval(loadPulse, 10_000);
  let fleetTimer = null;
  const off = fleet.onChange(() => { if (!fleetTimer) fleetTimer = setTimeout(() => { fleetTimer = null; drawFleet(); }, 2000); });
  return () => { clearInterval(timer); clearTimeout(fleetTimer); off(); for (const c of charts) c.destroy(); };
}

