// The platform's signal catalog (/v1/signals): unit, datatype and description per VSS path,
// fetched once per tab.
import { api } from "./api.js";

let catalog = null;

export function signalCatalog() {
  if (!catalog) {
    catalog = api("/v1/signals")
      .then((page) => new Map(page.items.map((s) => [s.path, s])))
      .catch((err) => {
        catalog = null;
        throw err;
      });
  }
  return catalog;
}

const UNIT_LABELS = { "km/h": "km/h", percent: "%", celsius: "°C", Celsius: "°C", "m/s^2": "m/s²", h: "h", Nm: "N·m", m: "m", km: "km", kW: "kW", W: "W", V: "V", A: "A", kWh: "kWh", degrees: "°", l: "l", rpm: "rpm", s: "s", kPa: "kPa", mm: "mm", Wh: "Wh", "l/100km": "l/100 km" };

/** A unit as people write it (VSS spells some out: percent, celsius). */
export function unitLabel(unit) {
  if (!unit) return "";
  return UNIT_LABELS[unit] || unit;
}

/** "Vehicle.Cabin.Door.Row1.IsLocked" -> ["Cabin", "Door.Row1.IsLocked"]: VSS branch and rest. */
export function branchOf(path) {
  const parts = path.split(".");
  if (parts.length <= 2) return ["Vehicle", parts.slice(1).join(".") || path];
  return [parts[1], parts.slice(2).join(".")];
}
