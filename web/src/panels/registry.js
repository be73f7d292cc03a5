// The vehicle page's feature slots: each names the API route that must exist for it to
// mount (probed in /openapi.json), what to say while it does not, and where it sits.
import { alertsForVehicle } from "./alerts.js";
import { auditPanel } from "./audit.js";
import { commandsPanel } from "./commands.js";
import { diagnosticsPanel } from "./diagnostics.js";
import { dtcsPanel } from "./dtcs.js";

export const VEHICLE_FEATURES = [
  { id: "commands", title: "Commands", column: "side", route: "/v1/vehicles/{vin}/commands", method: "post", mount: commandsPanel,
    missing: "Remote commands are not available on this platform yet." },
  { id: "dtcs", title: "Active DTCs", column: "side", route: "/v1/vehicles/{vin}/health", mount: dtcsPanel,
    missing: "DTC health is not available on this platform yet." },
  { id: "alerts", title: "Open alerts", column: "side", route: "/v1/alerts", mount: alertsForVehicle,
    missing: "Alerts are not available on this platform yet." },
  { id: "diagnostics", title: "Remote diagnostics", column: "main", route: "/v1/vehicles/{vin}/diagnostics", method: "post", mount: diagnosticsPanel,
    missing: "Remote diagnostics are not available on this platform yet." },
  { id: "audit", title: "Audit log", column: "main", route: "/v1/audit", mount: auditPanel,
    missing: "The audit log is not available on this platform yet." },
];
