// The alert rule editor: the tenant's rules, a form for a signal rule (path op threshold,
// held for N seconds) or a DTC rule (dtc.raised at a minimum severity), and delete.
import { all, api } from "../api.js";
import { session } from "../session.js";
import { fill, h, notice } from "../ui.js";

const OPS = ["<", "<=", ">", ">=", "==", "!="];

export async function rulesEditor(box) {
  const body = h("tbody");
  const message = h("div", { role: "alert" });
  const kind = h("select", { id: "rule-kind", onchange: () => drawCondition() }, h("option", { value: "signal" }, "a signal crosses a threshold"), h("option", { value: "dtc" }, "a DTC is raised"));
  const condition = h("div", { class: "controls" });
  const name = h("input", { id: "rule-name", required: true, placeholder: "coolant hot" });
  const severity = h("select", { id: "rule-severity" }, ["info", "warning", "critical"].map((s) => h("option", { value: s, selected: s === "warning" }, s)));
  const brand = session.groupWide ? h("select", { id: "rule-brand" }, session.brands.map((b) => h("option", { value: b.id, selected: b.id === session.brand }, b.name))) : null;
  const form = h("form", { class: "rule-form", onsubmit: create },
    h("div", { class: "controls" },
      h("label", { for: "rule-name", class: "field" }, "Name ", name),
      h("label", { for: "rule-severity", class: "field" }, "Severity ", severity),
      brand ? h("label", { for: "rule-brand", class: "field" }, "Brand ", brand) : null,
      h("label", { for: "rule-kind", class: "field" }, "When ", kind)),
    condition, h("button", { type: "submit" }, "Add rule"));
  fill(box, h("h2", {}, "Alert rules"), message,
    h("table", {}, h("thead", {}, h("tr", {}, ["Rule", "Severity", "Condition", "Brand", ""].map((c) => h("th", { scope: "col" }, c)))), body),
    h("h3", {}, "New rule"), form);

  function drawCondition() {
    if (kind.value === "signal") {
      fill(condition,
        h("label", { for: "rule-path", class: "field" }, "Signal ", h("input", { id: "rule-path", required: true, size: 48, placeholder: "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current" })),
        h("label", { for: "rule-op", class: "field" }, "is ", h("select", { id: "rule-op" }, OPS.map((o) => h("option", { value: o }, o)))),
        h("label", { for: "rule-threshold", class: "field" }, "Threshold ", h("input", { id: "rule-threshold", required: true, size: 8 })),
        h("label", { for: "rule-for", class: "field" }, "for (s) ", h("input", { id: "rule-for", type: "number", min: 0, value: 0, size: 5 })));
    } else {
      fill(condition, h("label", { for: "rule-dtc-severity", class: "field" }, "Minimum DTC severity ",
        h("select", { id: "rule-dtc-severity" }, ["info", "warning", "critical"].map((s) => h("option", { value: s, selected: s === "critical" }, s)))));
    }
  }

  function describe(r) {
    if (r.signal) return `${r.signal.path} ${r.signal.op} ${r.signal.threshold}${r.signal.for_s ? ` for ${r.signal.for_s} s` : ""}`;
    if (r.event) return `${r.event.type}${r.event.severity ? ` (${r.event.severity} or worse)` : ""}`;
    return "";
  }

  async function load() {
    const rules = await all("/v1/alert-rules", { brand: session.brand });
    fill(body, rules.length === 0 ? h("tr", {}, h("td", { colspan: 5 }, "No rules yet.")) : rules.map((r) => h("tr", { "data-rule-id": r.id },
      h("td", {}, r.name), h("td", {}, r.severity), h("td", {}, h("code", {}, describe(r))), h("td", {}, session.brandName(r.brand)),
      h("td", {}, h("button", { type: "button", "aria-label": `Delete rule ${r.name}`, onclick: () => remove(r) }, "Delete")))));
  }

  async function create(event) {
    event.preventDefault();
    fill(message);
    const spec = { name: name.value.trim(), severity: severity.value, brand: brand ? brand.value : undefined };
    if (kind.value === "signal") {
      const raw = condition.querySelector("#rule-threshold").value.trim();
      const threshold = raw === "true" || raw === "false" ? raw === "true" : Number.isNaN(Number(raw)) ? raw : Number(raw);
      spec.signal = { path: condition.querySelector("#rule-path").value.trim(), op: condition.querySelector("#rule-op").value, threshold, for_s: Number(condition.querySelector("#rule-for").value || 0) };
    } else {
      spec.event = { type: "dtc.raised", severity: condition.querySelector("#rule-dtc-severity").value };
    }
    try {
      await api("/v1/alert-rules", { method: "POST", body: spec });
      form.reset();
      drawCondition();
      await load();
    } catch (err) {
      fill(message, notice(`The rule was not added: ${err.detail || err.message}`, "error"));
    }
  }

  async function remove(rule) {
    try {
      await api(`/v1/alert-rules/${rule.id}`, { method: "DELETE" });
      await load();
    } catch (err) {
      fill(message, notice(`The rule was not deleted: ${err.message}`, "error"));
    }
  }

  drawCondition();
  await load();
}
