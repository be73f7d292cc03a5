// The live fleet as the map and the lists see it: one record per vehicle, loaded from the
// fleet overview (/v1/fleet) and kept current from the stream (twin position, speed, SoC,
// charging; presence; and, when those features exist, DTC and alert changes).
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
    this.listeners = new Set();
    this.loadListeners = new Set();
    this.unsubscribe = [];
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

  /** Load every vehicle the token sees (within the brand filter), then follow the stream. */
  async load() {
    const brand = session.brand || undefined;
    const [entries, charging] = await Promise.all([
      all("/v1/fleet", { brand }),
      all("/v1/fleet", { brand, where: `${SIG.charging}=true` }).catch(() => []),
    ]);
    const chargingVins = new Set(charging.map((e) => e.vin));
    this.vehicles.clear();
    for (const e of entries) {
      const s = e.signals || {};
      this.vehicles.set(e.vin, {
        vin: e.vin,
        brand: e.brand,
        model: e.model,
        online: e.online,
        lat: s[SIG.lat],
        lon: s[SIG.lon],
        speed: s[SIG.speed],
        soc: s[SIG.soc],
        fuel: s[SIG.fuel],
        charging: chargingVins.has(e.vin),
        critical: false,
        alerts: 0,
        openAlerts: new Set(),
        updated: null,
      });
    }
    await this.loadFeatures(brand);
    this.changed();
    for (const fn of this.loadListeners) fn(this);
  }

  /** DTC health and open alerts, when the platform has those features. */
  async loadFeatures(brand) {
    if (await hasRoute("/v1/fleet/health")) {
      try {
        const health = await api("/v1/fleet/health", { params: { brand } });
        for (const c of health.critical) {
          const v = this.vehicles.get(c.vin);
          if (v) v.critical = true;
        }
      } catch (err) {
        console.warn("fleet health not loaded", err);
      }
    }
    if (await hasRoute("/v1/alerts")) {
      try {
        for (const alert of await all("/v1/alerts", { brand, state: "open" })) {
          this.vehicles.get(alert.vin)?.openAlerts.add(alert.id);
        }
        for (const v of this.vehicles.values()) v.alerts = v.openAlerts.size;
      } catch (err) {
        console.warn("alerts not loaded", err);
      }
    }
  }

  follow() {
    this.stop();
    this.unsubscribe = [
      subscribe("twin", (d) => this.applyTwin(d)),
      subscribe("presence", (d) => this.update(d.vin, { online: Boolean(d.online) })),
      subscribe("dtc", (d) => this.refreshHealth(d.vin)),
      subscribe("alert", (d) => this.applyAlert(d)),
    ];
  }

  stop() {
    for (const off of this.unsubscribe) off();
    this.unsubscribe = [];
  }

  applyTwin(d) {
    const v = this.vehicles.get(d.vin);
    if (!v) return;
    const s = d.signals || {};
    for (const [key, path] of Object.entries(SIG)) {
      if (path in s) v[key] = s[path].value;
    }
    v.online = true; // a vehicle that sends telemetry is connected
    v.updated = Date.now();
    this.changed();
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
