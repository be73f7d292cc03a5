// Vehicle page: identity (VIN decoded, brand, model, year, owners), online state, the twin,
// history charts, the recent track, and the feature slots (DTCs, alerts, commands,
// diagnostics, audit log) that mount when their APIs exist.
import { all, api } from "../api.js";
import { session } from "../session.js";
import { subscribe, subscribeTwin } from "../stream.js";
import { fill, formatTime, h, notice } from "../ui.js";
import { vinParts } from "../vin.js";
import { featureSlot } from "../panels/feature.js";
import { historyPanel } from "../panels/history.js";
import { signalsPanel } from "../panels/signals.js";
import { trackPanel } from "../panels/track.js";
import { VEHICLE_FEATURES } from "../panels/registry.js";

export function vehicleView(main, { params, expose }) {
  const vin = decodeURIComponent(params[0] || "").toUpperCase();
  fill(main, h("div", { class: "page" }, h("p", {}, `Loading ${vin}…`)));
  const cleanups = [];
  let gone = false;

  /** Stream changes of this vehicle only (its twin changes come on a connection of its own). */
  const subscribeVin = (kind, fn) => {
    const off = kind === "twin" ? subscribeTwin(vin, fn) : subscribe(kind, (d) => { if (d.vin === vin) fn(d); });
    cleanups.push(off);
    return off;
  };

  (async () => {
    let twin;
    try {
      twin = await api(`/v1/vehicles/${encodeURIComponent(vin)}/twin`);
    } catch (err) {
      const words = err.status === 404 ? `No vehicle ${vin} in your fleet.` : `The vehicle could not be loaded: ${err.message}`;
      fill(main, h("div", { class: "page" }, h("p", {}, h("a", { href: "#/map" }, "← Fleet map")), notice(words, "error")));
      return;
    }
    if (gone) return;
    const v = twin.vehicle;
    const owners = await ownersOf(v).catch(() => null);
    const online = h("span", { class: `badge ${twin.online ? "online" : "offline"}`, id: "online-state" });
    const setOnline = (on, since) => {
      online.className = `badge ${on ? "online" : "offline"}`;
      online.textContent = on ? "online" : "offline";
      online.title = since ? `since ${formatTime(since)}` : "";
    };
    setOnline(twin.online, twin.online_since_ms);
    subscribeVin("presence", (d) => setOnline(Boolean(d.online), Date.now()));
    subscribeVin("twin", () => { if (online.textContent !== "online") setOnline(true, Date.now()); });

    const slots = {
      signals: h("section", { class: "panel signals-panel", "aria-label": "Signals" }),
      history: h("section", { class: "panel", "aria-label": "History" }),
      track: h("section", { class: "panel", "aria-label": "Recent track" }),
    };
    const features = VEHICLE_FEATURES.map((f) => [f, h("section", { class: `panel feature-${f.id}`, "aria-label": f.title, id: `panel-${f.id}` })]);
    fill(main, h("div", { class: "page vehicle-page" },
      h("p", {}, h("a", { href: "#/map" }, "← Fleet map")),
      h("header", { class: "vehicle-head" },
        h("h1", {}, `${v.manufacturer || session.brandName(v.brand)} ${v.model || ""}`.trim(), " ", online),
        h("dl", { class: "identity" },
          item("VIN", h("code", { id: "vin" }, v.vin)),
          item("Brand", session.brandName(v.brand)),
          item("Model", v.model || "—"),
          item("Model year", v.model_year ?? "unknown"),
          item("Manufacturer (from VIN)", v.manufacturer || "unknown"),
          item("Owners", owners === null ? "—" : owners.length ? owners.map((o) => `${o.name} <${o.email}>`).join(", ") : "none"),
          item("Registered", formatTime(v.created_ms))),
        h("details", { class: "vin-parts" }, h("summary", {}, "VIN decoded"),
          h("dl", { class: "identity" }, vinParts(v.vin).map(([k, val]) => item(k, h("code", {}, val)))))),
      h("div", { class: "vehicle-grid" },
        h("div", { class: "col" }, slots.track, slots.history, ...features.filter(([f]) => f.column === "main").map(([, el]) => el)),
        h("div", { class: "col" }, ...features.filter(([f]) => f.column === "side").map(([, el]) => el), slots.signals))));

    const ctx = { vin, vehicle: v, twin, subscribeVin, expose };
    cleanups.push(trackPanel(slots.track, ctx));
    for (const [feature, el] of features) cleanups.push(featureSlot(el, feature, ctx));
    historyPanel(slots.history, ctx).then((off) => cleanups.push(off));
    signalsPanel(slots.signals, ctx).then((off) => cleanups.push(off));
  })();

  return () => { gone = true; for (const off of cleanups.splice(0)) off(); };
}

function item(label, value) {
  return h("div", {}, h("dt", {}, label), h("dd", {}, value));
}

async function ownersOf(v) {
  if (!v.owners.length) return [];
  const owners = await all("/v1/owners", { brand: v.brand });
  return owners.filter((o) => v.owners.includes(o.id));
}

