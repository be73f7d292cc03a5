// A MapLibre map on the platform's own roads. The road GeoJSON is fetched once per tab with
// the operator's token and shared by every map on the page (fleet map, vehicle track).
import * as maplibregl from "maplibre-gl";
import { api, ApiError } from "../api.js";
import { session } from "../session.js";
import { baseStyle } from "./style.js";

maplibregl.setWorkerUrl(new URL("maplibre-gl-worker.mjs", import.meta.url).href);
// Start MapLibre's workers while the operator signs in, not when the first map is made.
maplibregl.prewarm();

let roads = null;

/** The roads FeatureCollection (with `bbox`), fetched once. */
export function loadRoads() {
  if (!roads) {
    roads = fetch("map/roads.geojson", { headers: { Authorization: `Bearer ${session.token}` } })
      .then(async (r) => {
        if (!r.ok) {
          const body = await r.json().catch(() => ({}));
          throw new ApiError(r.status, body.title || "No base map", body.detail || "");
        }
        return r.json();
      })
      .catch((err) => {
        roads = null; // try again next time
        throw err;
      });
  }
  return roads;
}

/**
 * Create a map in `container`; resolves once the style and roads are in. `onStyleLoad(map)`
 * runs as soon as the style is (layers added there are drawn with the roads' first frame).
 */
export async function createMap(container, { onRoadsError, onStyleLoad } = {}) {
  performance.mark("ac:map-create");
  const map = new maplibregl.Map({
    container,
    style: baseStyle(),
    center: [0, 0],
    zoom: 1,
    attributionControl: { compact: true, customAttribution: "Roads © OpenStreetMap contributors" },
    fadeDuration: 0,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  const roadData = loadRoads(); // fetched while the style loads
  let roadsIn = false; // settled before the style (a flag: a race would be a tick late)
  roadData.then(() => (roadsIn = true), () => (roadsIn = true)); // errors handled below
  await new Promise((resolve) => map.once("load", resolve));
  performance.mark("ac:map-load");
  // Roads already here (the usual case): they go to the worker first and the map is
  // fitted before `onStyleLoad` adds its layers, so those start at the right place.
  const early = roadsIn;
  if (!early && onStyleLoad) onStyleLoad(map);
  try {
    const data = await roadData;
    map.getSource("roads").setData(data);
    if (data.bbox) map.fitBounds(data.bbox, { padding: 20, animate: false });
    performance.mark("ac:roads");
  } catch (err) {
    if (onRoadsError) onRoadsError(err);
  }
  if (early && onStyleLoad) onStyleLoad(map);
  return map;
}

export { maplibregl, api };
