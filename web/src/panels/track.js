// The vehicle's recent track on the base map: Vehicle.CurrentLocation history joined by
// timestamp into a line, its live position appended from the stream.
import { api } from "../api.js";
import { createMap } from "../map/basemap.js";
import { SIG } from "../fleet.js";
import { fill, h, notice, select } from "../ui.js";

const SPANS = [["15m", "last 15 minutes"], ["1h", "last hour"], ["6h", "last 6 hours"]];

export function trackPanel(box, { vin, twin, subscribeVin, expose }) {
  let span = "15m";
  const mapBox = h("div", { class: "map track-map", role: "region", "aria-label": "Recent track" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  fill(box, h("h2", {}, "Recent track"),
    select("Track of the", SPANS, span, (v) => { span = v; load(); }, { id: "track-span" }), status, mapBox);
  let map = null;
  let line = [];
  const last = { lat: twin.reported[SIG.lat]?.value, lon: twin.reported[SIG.lon]?.value };

  function draw() {
    if (!map) return;
    map.getSource("track").setData({ type: "Feature", geometry: { type: "LineString", coordinates: line.length > 1 ? line : [] }, properties: {} });
    const here = typeof last.lat === "number" && typeof last.lon === "number" ? [last.lon, last.lat] : null;
    map.getSource("here").setData({ type: "FeatureCollection", features: here ? [{ type: "Feature", geometry: { type: "Point", coordinates: here }, properties: {} }] : [] });
  }

  async function load() {
    status.textContent = "Loading the track…";
    try {
      const data = await api(`/v1/vehicles/${encodeURIComponent(vin)}/history`, { params: { signals: `${SIG.lat},${SIG.lon}`, since: span, limit: 100000 } });
      const byTs = new Map();
      for (const p of data.points || []) {
        const at = byTs.get(p.ts) || {};
        at[p.path === SIG.lat ? "lat" : "lon"] = p.value;
        byTs.set(p.ts, at);
      }
      line = [...byTs.entries()].sort((a, b) => a[0] - b[0])
        .filter(([, p]) => typeof p.lat === "number" && typeof p.lon === "number")
        .map(([, p]) => [p.lon, p.lat]);
      status.textContent = line.length ? `${line.length} positions` : "No positions in this period.";
      draw();
      if (map && line.length > 1) {
        const lons = line.map((c) => c[0]);
        const lats = line.map((c) => c[1]);
        map.fitBounds([[Math.min(...lons), Math.min(...lats)], [Math.max(...lons), Math.max(...lats)]], { padding: 40, maxZoom: 17, animate: false });
      } else if (map && typeof last.lat === "number") {
        map.jumpTo({ center: [last.lon, last.lat], zoom: 16 });
      }
    } catch (err) {
      status.textContent = `The track could not be loaded: ${err.message}`;
    }
  }

  createMap(mapBox, { onRoadsError: (err) => box.prepend(notice(`The base map could not be loaded: ${err.message}`, "error")) })
    .then((created) => {
      map = created;
      map.addSource("track", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
      map.addSource("here", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
      map.addLayer({ id: "track", type: "line", source: "track", paint: { "line-color": "#1d4ed8", "line-width": 4, "line-opacity": 0.8 }, layout: { "line-cap": "round", "line-join": "round" } });
      map.addLayer({ id: "here", type: "circle", source: "here", paint: { "circle-color": "#0b7a3b", "circle-radius": 8, "circle-stroke-width": 2, "circle-stroke-color": "#ffffff" } });
      expose({ trackMap: map });
      load();
    });

  const off = subscribeVin("twin", (d) => {
    const s = d.signals || {};
    if (!(SIG.lat in s) && !(SIG.lon in s)) return;
    if (SIG.lat in s) last.lat = s[SIG.lat].value;
    if (SIG.lon in s) last.lon = s[SIG.lon].value;
    line.push([last.lon, last.lat]);
    draw();
  });
  return () => { off(); expose({ trackMap: null }); if (map) map.remove(); };
}
