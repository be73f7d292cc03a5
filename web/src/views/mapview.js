// Fleet map page: every vehicle at its live position, a side panel with search, filters,
// counts per state and a keyboard-reachable list (the map's markers are for the mouse).
import { createMap } from "../map/basemap.js";
import { VehicleLayer } from "../map/vehicles.js";
import { fleet, STATES, stateOf } from "../fleet.js";
import { session } from "../session.js";
import { fill, formatValue, h, notice, select } from "../ui.js";

const LIST_LIMIT = 100;

export function mapView(main, { navigate, expose }) {
  const filters = { search: "", model: "", state: "" };
  const counts = h("ul", { class: "state-counts", "aria-label": "Vehicles by state" });
  const list = h("ul", { class: "vehicle-list", "aria-label": "Vehicles" });
  const summary = h("p", { class: "summary", role: "status", "aria-live": "polite" });
  const modelBox = h("span");
  const mapError = h("div");
  const mapBox = h("div", { class: "map", id: "fleet-map", role: "region", "aria-label": "Fleet map" });

  const search = h("input", {
    type: "search", id: "vin-search", placeholder: "VIN or part of it", autocomplete: "off",
    oninput: (e) => { filters.search = e.target.value; redraw(); },
  });
  const panel = h("aside", { class: "side" },
    h("h1", {}, "Fleet"),
    h("label", { for: "vin-search", class: "field" }, "Search by VIN ", search),
    modelBox,
    select("State", [["", "All states"], ...STATES.map((s) => [s.id, s.label])], "",
      (v) => { filters.state = v; redraw(); }, { id: "state-filter" }),
    counts, summary, list);
  fill(main, h("div", { class: "map-page" }, panel, h("div", { class: "map-wrap" }, mapError, mapBox)));

  let layer = null;
  let map = null;
  let listTimer = null;
  let gone = false;

  function drawModels() {
    const models = fleet.models();
    fill(modelBox, select("Model", [["", "All models"], ...models.map((m) => [m, m])], filters.model,
      (v) => { filters.model = v; redraw(); }, { id: "model-filter" }));
  }

  function drawCounts(all) {
    const byState = Object.fromEntries(STATES.map((s) => [s.id, 0]));
    for (const v of all) byState[stateOf(v)] += 1;
    fill(counts, STATES.map((s) => h("li", {},
      h("button", {
        type: "button", class: filters.state === s.id ? "chip active" : "chip",
        "aria-pressed": String(filters.state === s.id),
        onclick: () => { filters.state = filters.state === s.id ? "" : s.id; document.getElementById("state-filter").value = filters.state; redraw(); },
      }, h("span", { class: "dot", style: `background:${s.color}` }), `${s.label} `, h("strong", {}, String(byState[s.id]))))));
  }

  function drawList(shown) {
    const brands = session.groupWide && !session.brand;
    fill(summary, fleet.loaded ? `${shown.length} of ${fleet.vehicles.size} vehicles shown` : "Loading the fleet…");
    fill(list, shown.slice(0, LIST_LIMIT).map((v) => {
      const state = STATES.find((s) => s.id === stateOf(v));
      const energy = typeof v.soc === "number" ? `${formatValue(v.soc)} % SoC` : typeof v.fuel === "number" ? `${formatValue(v.fuel)} % fuel` : "";
      return h("li", {},
        h("a", { href: `#/vehicle/${v.vin}`, "data-vin": v.vin },
          h("span", { class: "dot", style: `background:${state.color}`, title: state.label }),
          h("span", { class: "vin" }, v.vin),
          h("span", { class: "meta" }, [brands ? session.brandName(v.brand) : null, v.model, state.label,
            typeof v.speed === "number" ? `${formatValue(v.speed)} km/h` : null, energy].filter(Boolean).join(" · "))));
    }));
    if (shown.length > LIST_LIMIT) list.append(h("li", { class: "more" }, `and ${shown.length - LIST_LIMIT} more: narrow the search`));
  }

  const shownNow = () => fleet.filtered(filters);

  function redraw() {
    const shown = fleet.filtered(filters);
    if (layer) layer.update(shownNow);
    drawCounts([...fleet.vehicles.values()]);
    drawList(shown);
  }

  // The list and counts redraw at most once a second; the map once per animation frame.
  const offChange = fleet.onChange(() => {
    if (layer) layer.update(shownNow);
    if (!listTimer) listTimer = setTimeout(() => { listTimer = null; drawCounts([...fleet.vehicles.values()]); drawList(fleet.filtered(filters)); }, 1000);
  });

  drawModels();
  redraw();
  // The vehicles' layer is added as soon as the map's style is in (the roads and the
  // vehicles then arrive in whichever order their downloads finish).
  createMap(mapBox, {
    onRoadsError: (err) => fill(mapError, notice(`The base map could not be loaded: ${err.message}`, "error")),
    onStyleLoad: (created) => {
      if (gone) { created.remove(); return; }
      map = created;
      layer = new VehicleLayer(map, { onOpen: (vin) => navigate(`#/vehicle/${vin}`) });
      expose({ map, layer });
      redraw();
    },
  }).then(() => { if (!gone) expose({ mapReady: true }); });
  let models = "";
  const offLoaded = fleet.onLoad(() => {
    const now = fleet.models().join("|");
    if (now !== models) { models = now; drawModels(); }
    redraw();
  });

  return () => {
    gone = true;
    offChange();
    offLoaded();
    clearTimeout(listTimer);
    expose({ map: null, layer: null, mapReady: false });
    if (map) map.remove();
  };
}
