// The base map style: roads of the platform's OSM extract (served at /dashboard/map/),
// drawn by class, with street names at close zoom. No `glyphs` URL: MapLibre renders the
// labels itself with the "Noto Sans" font that the dashboard serves (see app.css).
import { STATES } from "../fleet.js";

const ROADS = [
  // class, colour, casing, width at z12, width at z18
  ["path", "#ffffff", "#c9c3b8", 0.5, 3],
  ["service", "#ffffff", "#c9c3b8", 0.5, 6],
  ["minor", "#ffffff", "#bdb6aa", 1, 12],
  ["tertiary", "#fffbe0", "#c9b97a", 1.5, 16],
  ["secondary", "#fff1b8", "#c4a44a", 2, 18],
  ["primary", "#ffd98a", "#c08a2a", 2.5, 20],
  ["trunk", "#f9b47a", "#b86a2a", 3, 22],
  ["motorway", "#f08c6a", "#a04a2a", 3.5, 24],
];

const width = (w12, w18) => ["interpolate", ["exponential", 1.6], ["zoom"], 12, w12, 18, w18];

export const LABEL_FONT = ["Noto Sans Regular"];

export function baseStyle() {
  const layers = [{ id: "background", type: "background", paint: { "background-color": "#f2efe9" } }];
  for (const [cls, , casing, w12, w18] of ROADS) {
    layers.push({
      id: `road-${cls}-casing`,
      type: "line",
      source: "roads",
      filter: ["==", ["get", "class"], cls],
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": casing, "line-width": width(w12 + 1, w18 + 2) },
    });
  }
  for (const [cls, colour, , w12, w18] of ROADS) {
    layers.push({
      id: `road-${cls}`,
      type: "line",
      source: "roads",
      filter: ["==", ["get", "class"], cls],
      layout: { "line-cap": "round", "line-join": "round" },
      paint: {
        "line-color": colour,
        "line-width": width(w12, w18),
        "line-opacity": ["case", ["to-boolean", ["get", "tunnel"]], 0.45, 1],
      },
    });
  }
  layers.push({
    id: "road-labels",
    type: "symbol",
    source: "roads",
    minzoom: 14.5,
    filter: ["any", ["has", "name"], ["has", "ref"]],
    layout: {
      "symbol-placement": "line",
      "text-field": ["coalesce", ["get", "name"], ["get", "ref"]],
      "text-font": LABEL_FONT,
      "text-size": ["interpolate", ["linear"], ["zoom"], 14.5, 10, 18, 14],
      "text-max-angle": 30,
      "symbol-spacing": 300,
    },
    paint: { "text-color": "#3b3b3b", "text-halo-color": "#ffffff", "text-halo-width": 1.5 },
  });
  return {
    version: 8,
    sources: { roads: { type: "geojson", data: { type: "FeatureCollection", features: [] } } },
    layers,
  };
}

/** MapLibre colour expression: the vehicle's `state` property to its colour. */
export function stateColor() {
  return ["match", ["get", "state"], ...STATES.flatMap((s) => [s.id, s.color]), "#000000"];
}
