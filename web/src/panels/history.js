// History of any numeric signal over a chosen range: min/avg/max buckets from the API
// (about 300 per view), zoomed by dragging over the chart (fetches finer buckets).
import { api } from "../api.js";
import { signalCatalog, unitLabel } from "../catalog.js";
import { timeChart } from "../charts.js";
import { fill, h, notice, select, timeZone } from "../ui.js";

const RANGES = [["15m", "last 15 minutes"], ["1h", "last hour"], ["6h", "last 6 hours"], ["24h", "last 24 hours"], ["7d", "last 7 days"]];
const SPAN_MS = { "15m": 900e3, "1h": 3600e3, "6h": 21600e3, "24h": 86400e3, "7d": 604800e3 };
const TARGET_BUCKETS = 300;

function bucketFor(spanMs) {
  const ms = Math.max(1000, Math.ceil(spanMs / TARGET_BUCKETS / 1000) * 1000);
  return `${Math.round(ms / 1000)}s`;
}

export async function historyPanel(box, { vin, twin }) {
  const catalog = await signalCatalog().catch(() => new Map());
  const numeric = Object.entries(twin.reported)
    .filter(([, s]) => typeof s.value === "number" || typeof s.value === "boolean")
    .map(([path]) => path)
    .sort();
  const state = { path: numeric.includes("Vehicle.Speed") ? "Vehicle.Speed" : numeric[0], range: "1h", from: null, to: null };
  const chartBox = h("div", { class: "chart" });
  const status = h("p", { class: "chart-status", role: "status", "aria-live": "polite" });
  const reset = h("button", { type: "button", hidden: true, onclick: () => { state.from = state.to = null; load(); } }, "Reset zoom");
  fill(box, h("h2", {}, "History"),
    numeric.length === 0 ? notice("No numeric signals reported yet.") : h("div", { class: "controls" },
      select("Signal", numeric.map((p) => [p, p]), state.path, (v) => { state.path = v; rebuild(); }, { id: "history-signal" }),
      select("Range", RANGES, state.range, (v) => { state.range = v; state.from = state.to = null; load(); }, { id: "history-range" }),
      reset),
    h("p", { class: "hint" }, `Drag across the chart to zoom in. Times in ${timeZone}.`),
    status, chartBox);
  if (numeric.length === 0) return () => {};

  let chart = null;
  let request = null;
  function rebuild() {
    if (chart) chart.destroy();
    const unit = unitLabel(catalog.get(state.path)?.unit);
    chart = timeChart(chartBox, {
      label: state.path, unit,
      series: [
        { label: `min${unit ? ` (${unit})` : ""}`, stroke: "rgba(29,78,216,0.35)" },
        { label: `average${unit ? ` (${unit})` : ""}`, stroke: "#1d4ed8", width: 2 },
        { label: `max${unit ? ` (${unit})` : ""}`, stroke: "rgba(29,78,216,0.35)" },
      ],
      band: [3, 1],
      onZoom: (from, to) => { state.from = from; state.to = to; load(); },
    });
    load();
  }

  async function load() {
    if (request) request.abort();
    request = new AbortController();
    const to = state.to ?? Date.now();
    const from = state.from ?? to - SPAN_MS[state.range];
    reset.hidden = state.from === null;
    const bucket = bucketFor(to - from);
    status.textContent = "Loading…";
    try {
      const data = await api(`/v1/vehicles/${encodeURIComponent(vin)}/history`, {
        params: { signals: state.path, since: String(from), until: String(to), bucket },
        signal: request.signal,
      });
      const buckets = data.buckets || [];
      chart.set(buckets.map((b) => b.start), [buckets.map((b) => b.min), buckets.map((b) => b.avg), buckets.map((b) => b.max)]);
      status.textContent = buckets.length ? `${buckets.length} buckets of ${bucket}` : "No values in this range.";
    } catch (err) {
      if (err.name !== "AbortError") status.textContent = `History could not be loaded: ${err.message}`;
    }
  }

  rebuild();
  return () => { if (request) request.abort(); if (chart) chart.destroy(); };
}
