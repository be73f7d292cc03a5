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

  // One chip per state, made once and updated in place (a chip that has the keyboard focus
  // keeps it while the counts change every second).
  const chips = STATES.map((s) => {
    const count = h("strong", {}, "0");
    const button = h("button", {
      type: "button", class: "chip", "aria-pressed": "false",
      onclick: () => { filters.state = filters.state === s.id ? "" : s.id; document.getElementById("state-filter").value = filters.state; redraw(); },
    }, h("span", { class: "dot", style: `background:${s.color}` }), `${s.label} `, count);
    return { state: s.id, button, count, li: h("li", {}, button) };
  });
  fill(counts, chips.map((c) => c.li));

  function drawCounts(all) {
    const byState = Object.fromEntries(STATES.map((s) => [s.id, 0]));
    for (const v of all) byState[stateOf(v)] += 1;
    for (const c of chips) {
      const active = filters.state === c.state;
      c.button.className = active ? "chip active" : "chip";
      c.button.setAttribute("aria-pressed", String(active));
      const text = String(byState[c.state]);
      if (c.count.textContent !== text) c.count.textContent = text;
    }
  }

  // The list's rows are kept per VIN and only their changed texts are written: redrawn
  // every second, 100 rows built afresh cost tens of milliseconds on a slow machine.
  const rows = new Map(); // vin -> {li, dot, meta}
  const more = h("li", { class: "more" });

  function row(v) {
    let r = rows.get(v.vin);
    if (!r) {
      const dot = h("span", { class: "dot" });
      const meta = h("span", { class: "meta" });
      const li = h("li", {}, h("a", { href: `#/vehicle/${v.vin}`, "data-vin": v.vin }, dot, h("span", { class: "vin" }, v.vin), meta));
      r = { li, dot, meta, state: "", text: "" };
      rows.set(v.vin, r);
    }
    const state = STATES.find((s) => s.id === stateOf(v));
    if (r.state !== state.id) {
      r.state = state.id;
      r.dot.style.background = state.color;
      r.dot.title = state.label;
    }
    const brands = session.groupWide && !session.brand;
    const energy = typeof v.soc === "number" ? `${formatValue(v.soc)} % SoC` : typeof v.fuel === "number" ? `${formatValue(v.fuel)} % fuel` : "";
    const text = [brands ? session.brandName(v.brand) : null, v.model, state.label,
      typeof v.speed === "number" ? `${formatValue(v.speed)} km/h` : null, energy].filter(Boolean).join(" · ");
    if (r.text !== text) {
      r.text = text;
      r.meta.textContent = text;
    }
    return r.li;
  }

  function drawList(shown) {
    const summaryText = fleet.loaded ? `${shown.length} of ${fleet.vehicles.size} vehicles shown` : "Loading the fleet…";
    if (summary.textContent !== summaryText) summary.textContent = summaryText;
    const items = shown.slice(0, LIST_LIMIT).map(row);
    if (shown.length > LIST_LIMIT) {
      more.textContent = `and ${shown.length - LIST_LIMIT} more: narrow the search`;
      items.push(more);
    }
    const same = items.length === list.children.length && items.every((li, i) => list.children[i] === li);
    if (!same) list.replaceChildren(...items);
    if (rows.size > 4 * LIST_LIMIT) {
      const keep = new Set(shown.slice(0, LIST_LIMIT).map((v) => v.vin));
      for (const vin of rows.keys()) if (!keep.has(vin)) rows.delete(vin);
    }
  }

  const shownNow = () => fleet.filtered(filters);

  function redraw() {
    const shown = fleet.filtered(filters);
    if (layer) layer.update(shownNow);
    drawCounts([...fleet.vehicles.values()]);
    drawList(shown);
  }

  // The list and counts redraw at most once a second (timed, for the benchmark); the map
  // once per animation frame.
  const listStats = { redraws: 0, totalMs: 0, maxMs: 0 };
  function redrawLists() {
    const started = performance.now();
    listTimer = null;
    drawCounts([...fleet.vehicles.values()]);
    drawList(fleet.filtered(filters));
    const took = performance.now() - started;
    listStats.redraws += 1;
    listStats.totalMs += took;
    listStats.maxMs = Math.max(listStats.maxMs, took);
  }
  expose({ listStats });
  const offChange = fleet.onChange(() => {
    if (layer) layer.update(shownNow);
    if (!listTimer) listTimer = setTimeout(redrawLists, 1000);
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
      // The vehicles already loaded go in with the layer (not one animation frame later).
      layer = new VehicleLayer(map, { onOpen: (vin) => navigate(`#/vehicle/${vin}`), source: shownNow });
      expose({ map, layer });
      drawCounts([...fleet.vehicles.values()]);
      drawList(fleet.filtered(filters));
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
