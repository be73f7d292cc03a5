// The fleet on a map: one GeoJSON point per vehicle, coloured by state, clustered when
// zoomed out (clusters are red when they hold a vehicle with a critical DTC, orange with
// an open alert). `update()` may be called for every stream event: the source is rebuilt
// at most once per animation frame.
//
// First render: on a machine without a GPU (WebGL on the CPU) each shader program costs a
// fraction of a second to compile. Clusters and vehicles share one program (the same kinds
// of paint expressions), and the clusters' count labels (text: glyphs, collision, another
// program) are added once the vehicles have been drawn, so the cars show up first.
import { fleet, stateOf } from "../fleet.js";
import { frameBatcher } from "../ui.js";
import { maplibregl } from "./basemap.js";
import { LABEL_FONT, stateColor } from "./style.js";

const is = (state) => ["case", ["==", ["get", "state"], state], 1, 0];
const CLUSTER_RADIUS = ["step", ["get", "point_count"], 14, 20, 18, 100, 24, 1000, 30];
// Both radii depend on zoom and feature, so both layers use the same compiled program.
const clusterRadius = ["interpolate", ["linear"], ["zoom"], 12, CLUSTER_RADIUS, 18, CLUSTER_RADIUS];
const vehicleRadius = ["interpolate", ["linear"], ["zoom"], 12, ["coalesce", ["get", "radius"], 5], 18, ["coalesce", ["get", "radius"], 9]];

export class VehicleLayer {
  /**
   * `source()` returns the vehicles to show (records of the fleet store). Those already
   * loaded go into the source as it is created: no empty first load in the worker and no
   * wait for the next animation frame before the vehicles start on their way to the map.
   */
  constructor(map, { onOpen, source = null }) {
    this.map = map;
    this.source = source;
    this.features = new Map(); // vin -> its GeoJSON feature
    this.stats = { batches: 0, lastBuildMs: 0, maxBuildMs: 0, totalBuildMs: 0 };
    const started = performance.now();
    const features = this.build();
    map.addSource("vehicles", {
      type: "geojson",
      data: { type: "FeatureCollection", features },
      cluster: true,
      clusterRadius: 40,
      clusterMaxZoom: 14,
      clusterProperties: { critical: ["+", is("critical")], alert: ["+", is("alert")] },
    });
    map.addLayer({
      id: "clusters",
      type: "circle",
      source: "vehicles",
      filter: ["has", "point_count"],
      paint: {
        "circle-color": ["case", [">", ["get", "critical"], 0], "#b3261e", [">", ["get", "alert"], 0], "#e8590c", "#1e3a5f"],
        "circle-radius": clusterRadius,
        "circle-stroke-width": 2,
        "circle-stroke-color": "#ffffff",
        "circle-opacity": 0.9,
      },
    });
    map.addLayer({
      id: "vehicles",
      type: "circle",
      source: "vehicles",
      filter: ["!", ["has", "point_count"]],
      paint: {
        "circle-color": stateColor(),
        "circle-radius": vehicleRadius,
        "circle-stroke-width": 1.5,
        "circle-stroke-color": "#ffffff",
      },
    });
    this.labelled = false;
    this.schedule = frameBatcher(() => this.flush());
    this.bindEvents(onOpen);
    this.built(features, started);
  }

  /** The clusters' count labels, once the vehicles are on the map (see the top). */
  addLabels() {
    if (this.labelled || !this.map.getLayer("clusters")) return;
    this.labelled = true;
    this.map.addLayer({
      id: "cluster-count",
      type: "symbol",
      source: "vehicles",
      filter: ["has", "point_count"],
      layout: { "text-field": ["get", "point_count_abbreviated"], "text-font": LABEL_FONT, "text-size": 12, "text-allow-overlap": true },
      paint: { "text-color": "#ffffff" },
    });
  }

  bindEvents(onOpen) {
    const map = this.map;
    const popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 10 });
    map.on("click", "vehicles", (e) => onOpen(e.features[0].properties.vin));
    map.on("click", "clusters", async (e) => {
      const feature = e.features[0];
      const zoom = await map.getSource("vehicles").getClusterExpansionZoom(feature.properties.cluster_id);
      map.easeTo({ center: feature.geometry.coordinates, zoom });
    });
    map.on("mouseenter", "vehicles", (e) => {
      map.getCanvas().style.cursor = "pointer";
      const p = e.features[0].properties;
      const model = fleet.vehicles.get(p.vin)?.model || "";
      popup.setLngLat(e.features[0].geometry.coordinates).setText(`${p.vin} · ${model} · ${p.state}`).addTo(map);
    });
    map.on("mouseleave", "vehicles", () => {
      map.getCanvas().style.cursor = "";
      popup.remove();
    });
    map.on("mouseenter", "clusters", () => (map.getCanvas().style.cursor = "pointer"));
    map.on("mouseleave", "clusters", () => (map.getCanvas().style.cursor = ""));
  }

  /**
   * Show the vehicles `source()` returns (records of the fleet store), on the next animation
   * frame: however many stream events arrive in between, the source is rebuilt once.
   */
  update(source) {
    this.source = source;
    this.schedule();
  }

  flush() {
    const started = performance.now();
    const features = this.build();
    const source = this.map.getSource("vehicles");
    if (source) source.setData({ type: "FeatureCollection", features });
    this.built(features, started);
  }

  /**
   * The features of the vehicles `source()` returns. One feature object per vehicle, kept
   * and updated: no 10,000 new objects a second. Its properties are only what the map's
   * layers and events read (the worker gets a copy of every one at every update).
   */
  build() {
    const features = [];
    const cache = this.features;
    for (const v of this.source ? this.source() : []) {
      if (typeof v.lat !== "number" || typeof v.lon !== "number") continue;
      let f = cache.get(v.vin);
      if (!f) {
        f = { type: "Feature", geometry: { type: "Point", coordinates: [0, 0] }, properties: { vin: v.vin, state: "" } };
        cache.set(v.vin, f);
      }
      f.geometry.coordinates[0] = v.lon;
      f.geometry.coordinates[1] = v.lat;
      f.properties.state = stateOf(v);
      features.push(f);
    }
    return features;
  }

  /** Bookkeeping after `features` went to the source: the first-render mark, the stats. */
  built(features, started) {
    if (features.length && !this.drawnOnce) {
      this.drawnOnce = true;
      performance.mark("ac:vehicles-set");
      // When the map has drawn them (idle), or after a while if updates keep it busy.
      this.map.once("idle", () => this.addLabels());
      setTimeout(() => this.addLabels(), 1500);
    }
    const took = performance.now() - started;
    const s = this.stats;
    s.batches += 1;
    s.lastBuildMs = took;
    s.totalBuildMs += took;
    s.maxBuildMs = Math.max(s.maxBuildMs, took);
    s.shown = features.length;
  }
}
