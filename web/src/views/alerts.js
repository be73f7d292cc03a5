// Alerts page: open, acknowledged and resolved alerts across the fleet, acknowledge, and
// the rule editor. Mounts when the platform has the alerts API (/v1/alerts).
import { featureSlot } from "../panels/feature.js";
import { alertsPage } from "../panels/alerts.js";
import { rulesEditor } from "../panels/rules.js";
import { h, fill } from "../ui.js";

export function alertsView(main, ctx) {
  const box = h("section", { class: "panel" });
  const rules = h("section", { class: "panel" });
  fill(main, h("div", { class: "page" }, h("h1", {}, "Alerts"), box, rules));
  const offRules = featureSlot(rules, {
    title: "Alert rules",
    route: "/v1/alert-rules",
    missing: "Alert rules are not available on this platform yet.",
    mount: rulesEditor,
  }, ctx);
  const offAlerts = featureSlot(box, {
    title: "Alerts across the fleet",
    route: "/v1/alerts",
    missing: "Alerts are not available on this platform yet: this page shows open, acknowledged and resolved alerts and the rule editor once the alerts API is installed.",
    mount: alertsPage,
  }, ctx);
  return () => { offRules(); offAlerts(); };
}
