// The live fleet as the map and the lists see it: one record per vehicle, loaded in one
// compact snapshot (/v1/fleet/positions) and kept current from the stream's `positions`
// events (once a second, every vehicle that moved or changed state), `presence`, and, when
// those features exist, DTC and alert changes.
import { all, api, hasRoute } from "./api.js";
import { session } from "./session.js";
import { subscribe } from "./stream.js";

export const SIG = {
  lat: "Vehicle.CurrentLocation.Latitude",
  lon: "Vehicle.CurrentLocation.Longitude",
  speed: "Vehicle.Speed",
  soc: "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
  fuel: "Vehicle.Powertrain.FuelSystem.RelativeLevel",
  charging: "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
};
/** The columns of a snapshot and of a positions event that update a vehicle's record. */
const NUMBERS = ["lat", "lon", "heading", "speed", "soc", "fuel"];
const FLAGS = ["online", "charging"];
const RELOAD_FOR_NEW_MS = 30_000; // a vehicle registered since the load: reload at most this often
/** The states a vehicle is coloured by, most urgent first (a vehicle shows the first that holds). */
export const STATES = [
  { id: "critical", label: "Critical DTC", color: "#b3261e" },
  { id: "alert", label: "Alert open", color: "#e8590c" },
  { id: "offline", label: "Offline", color: "#6b7280" },
  { id: "charging", label: "Charging", color: "#7c3aed" },
  { id: "moving", label: "Moving", color: "#0b7a3b" },
  { id: "parked", label: "Parked", color: "#1d4ed8" },
];

export function stateOf(v) {
  if (v.critical) return "critical";
  if (v.alerts > 0) return "alert";
  if (!v.online) return "offline";
  if (v.charging) return "charging";
  if ((v.speed || 0) > 0.5) return "moving";
  return "parked";
}

export class FleetStore {
  constructor() {
    this.vehicles = new Map(); // vin -> record
    this.version = 0; // bumps on every change, so views redraw only when needed
    this.loaded = false;
    this.listeners = new Set();
    this.loadListeners = new Set();
    this.unsubscribe = [];
    this.pending = null; // positions events that arrive while a load runs, applied after it
    this.generation = 0; // of loads: a newer one (the brand filter changed) replaces an older
    this.lastReload = 0;
    this.stats = { batches: 0, rows: 0, applyMs: 0, maxApplyMs: 0 };
  }

  /** Called after a (re)load of the whole fleet, not for every live change. */
  onLoad(fn) {
    this.loadListeners.add(fn);
    return () => this.loadListeners.delete(fn);
  }

  onChange(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  changed() {
    this.version += 1;
    for (const fn of this.listeners) fn(this);
  }

  /** Load every vehicle the token sees (within the brand filter) in one snapshot. Live
   * positions that arrive meanwhile are kept and applied after it, so none is lost. */
  async load() {
    const brand = session.brand || undefined;
    const generation = ++this.generation;
    this.pending = this.pending || [];
    this.lastReload = Date.now();
    try {
      const features = this.loadFeatures(brand);
      const snap = await api("/v1/fleet/positions", { params: { brand } });
      const found = await features;
      if (generation !== this.generation) return;
      performance.mark("ac:fleet-fetched");
      this.vehicles.clear();
      for (let i = 0; i < snap.n; i += 1) {
        const v = {
          vin: snap.vin[i], brand: snap.brand[i], model: snap.model[i],
          lat: null, lon: null, heading: null, speed: null, soc: null, fuel: null,
          online: false, charging: false,
          critical: false, alerts: 0, openAlerts: new Set(), updated: null,
        };
        for (const key of NUMBERS) v[key] = snap[key][i];
        for (const key of FLAGS) v[key] = Boolean(snap[key][i]);
        this.vehicles.set(v.vin, v);
      }
      this.applyFeatures(found);
    } finally {
      if (generation === this.generation) {
        const queued = this.pending;
        this.pending = null;
        for (const d of queued) this.applyPositions(d, false);
      }
    }
    if (generation !== this.generation) return;
    this.loaded = true;
    performance.mark("ac:fleet-loaded");
    this.changed();
    for (const fn of this.loadListeners) fn(this);
  }

  /** DTC health and open alerts, when the platform has those features (fetched alongside
   * the snapshot; applied to it). */
  async loadFeatures(brand) {
    const [critical, alerts] = await Promise.all([
      hasRoute("/v1/fleet/health").then((has) => has ? api("/v1/fleet/health", { params: { brand } }) : null)
        .then((health) => (health ? health.critical.map((c) => c.vin) : []))
        .catch((err) => { console.warn("fleet health not loaded", err); return []; }),
      hasRoute("/v1/alerts").then((has) => (has ? all("/v1/alerts", { brand, state: "open" }) : []))
        .catch((err) => { console.warn("alerts not loaded", err); return []; }),
    ]);
    return { critical, alerts };
  }

  applyFeatures({ critical, alerts }) {
    for (const vin of critical) {
      const v = this.vehicles.get(vin);
      if (v) v.critical = true;
    }
    for (const alert of alerts) this.vehicles.get(alert.vin)?.openAlerts.add(alert.id);
    for (const v of this.vehicles.values()) v.alerts = v.openAlerts.size;
  }

  follow() {
    this.stop();
    this.unsubscribe = [
      subscribe("positions", (d) => this.applyPositions(d)),
      subscribe("presence", (d) => this.update(d.vin, { online: Boolean(d.online) })),
      subscribe("dtc", (d) => this.refreshHealth(d.vin)),
      subscribe("alert", (d) => this.applyAlert(d)),
    ];
  }

  stop() {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
  }

  /**
   * One `positions` event: columns (vin, lat, lon, heading, speed, soc, fuel, online,
   * charging) of every vehicle that changed; null means "no news" for that field.
   */
  applyPositions(d, notify = true) {
    if (this.pending) {
      this.pending.push(d);
      return;
    }
    const started = performance.now();
    const now = Date.now();
    let unknown = 0;
    for (let i = 0; i < d.n; i += 1) {
      const v = this.vehicles.get(d.vin[i]);
      if (!v) {
        unknown += 1;
        continue;
      }
      for (const key of NUMBERS) {
        const value = d[key][i];
        if (value !== null) v[key] = value;
      }
      for (const key of FLAGS) {
        const value = d[key][i];
        if (value !== null) v[key] = Boolean(value);
      }
      v.updated = now;
    }
    const took = performance.now() - started;
    const s = this.stats;
    s.batches += 1;
    s.rows += d.n;
    s.applyMs += took;
    s.maxApplyMs = Math.max(s.maxApplyMs, took);
    // A vehicle registered after the load: fetch the fleet again (not more than twice a minute).
    if (unknown && now - this.lastReload > RELOAD_FOR_NEW_MS) this.load().catch(() => {});
    if (notify) this.changed();
  }

  /** An alert opened, was acknowledged or resolved: "alert open" means not yet acknowledged. */
  applyAlert(d) {
    const v = this.vehicles.get(d.vin);
    if (!v) return;
    if (d.state === "open") v.openAlerts.add(d.id);
    else v.openAlerts.delete(d.id);
    v.alerts = v.openAlerts.size;
    this.changed();
  }

  /** The active DTC set changed: ask for the vehicle's worst severity (rare, so one call). */
  async refreshHealth(vin) {
    if (!this.vehicles.has(vin)) return;
    try {
      const health = await api(`/v1/vehicles/${encodeURIComponent(vin)}/health`);
      this.update(vin, { critical: health.worst === "critical" });
    } catch (err) {
      console.warn("health of", vin, "not loaded", err);
    }
  }

  update(vin, fields) {
    const v = this.vehicles.get(vin);
    if (!v) return;
    Object.assign(v, fields);
    this.changed();
  }

  /** Vehicles that pass the side panel's filters. */
  filtered({ search = "", model = "", state = "" } = {}) {
    const needle = search.trim().toUpperCase();
    const out = [];
    for (const v of this.vehicles.values()) {
      if (needle && !v.vin.includes(needle)) continue;
      if (model && v.model !== model) continue;
      if (state && stateOf(v) !== state) continue;
      out.push(v);
    }
    return out;
  }

  models() {
    return [...new Set([...this.vehicles.values()].map((v) => v.model))].sort();
  }
}

/** The one fleet store of the tab (shared by the map, the overview and the lists). */
export const fleet = new FleetStore();

/** The registry's view of one vehicle, for pages that open a VIN directly. */
export function vehicle(vin) {
  return api(`/v1/vehicles/${encodeURIComponent(vin)}`);
}
