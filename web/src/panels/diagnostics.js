// Remote diagnostics: request a UDS readout of the vehicle's ECUs (DTCs, VIN, software,
// odometer) and show each session's report, refreshed when the `diag` stream event says a
// session finished.
import { api } from "../api.js";
import { fill, formatTime, formatValue, h, notice } from "../ui.js";

const READS = [["dtcs", "DTCs"], ["vin", "VIN"], ["software", "software"], ["odometer", "odometer"]];

export async function diagnosticsPanel(box, { vin, subscribeVin }) {
  const list = h("div", { class: "diag-sessions" });
  const status = h("p", { role: "status", "aria-live": "polite" });
  const checks = READS.map(([id, label]) => h("label", { class: "check" }, h("input", { type: "checkbox", value: id, checked: true }), ` ${label}`));
  const button = h("button", { type: "submit" }, "Request readout");
  const form = h("form", { class: "controls", onsubmit: request },
    h("fieldset", {}, h("legend", {}, "Read"), checks), button);
  fill(box, h("h2", {}, "Remote diagnostics"), form, status, list);

  async function request(event) {
    event.preventDefault();
    const reads = checks.map((c) => c.querySelector("input")).filter((i) => i.checked).map((i) => i.value);
    if (!reads.length) { status.textContent = "Choose at least one thing to read."; return; }
    button.disabled = true;
    try {
      const s = await api(`/v1/vehicles/${encodeURIComponent(vin)}/diagnostics`, { method: "POST", body: { reads } });
      status.textContent = `Readout ${s.id} requested: waiting for the vehicle's ECUs…`;
      await load();
    } catch (err) {
      status.textContent = `The readout was refused: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  }

  async function load() {
    try {
      const page = await api(`/v1/vehicles/${encodeURIComponent(vin)}/diagnostics`, { params: { limit: 5 } });
      fill(list, page.items.length === 0 ? h("p", {}, "No readouts yet.") : page.items.map(session));
    } catch (err) {
      fill(list, notice(`Readouts could not be loaded: ${err.message}`, "error"));
    }
  }

  const off = subscribeVin("diag", (d) => { status.textContent = `Readout ${d.id} finished: ${d.status}.`; load(); });
  await load();
  return off;
}

function session(s) {
  const head = `${formatTime(s.created_ms)} · ${s.status} · by ${s.requested_by}`;
  if (!s.report) return h("details", { class: "diag" }, h("summary", {}, head), h("p", {}, s.error || "Waiting for the vehicle."));
  const sum = s.report.summary || {};
  return h("details", { class: "diag", open: true },
    h("summary", {}, head, ` · ${sum.positive ?? 0} answered, ${sum.no_response ?? 0} silent`,
      sum.active_dtcs?.length ? ` · active DTCs: ${sum.active_dtcs.join(", ")}` : ""),
    (s.report.ecus || []).map((ecu) => h("div", { class: "ecu" },
      h("h3", {}, `${ecu.ecu} ${ecu.address ? `(${ecu.address})` : ""}`, ecu.description ? h("span", { class: "meta" }, ` ${ecu.description}`) : null),
      h("ul", {}, ecu.results.map(result)))));
}

function result(r) {
  if (r.status === "negative") return h("li", {}, `${r.read}: refused by the ECU (${r.nrc_name || r.nrc})`);
  if (r.status !== "positive") return h("li", {}, `${r.read}: ${r.status.replace("_", " ")}${r.error ? ` (${r.error})` : ""}`);
  if (r.dtcs) {
    return h("li", {}, `${r.read}: ${r.dtcs.length ? "" : "no DTCs stored"}`,
      r.dtcs.length ? h("ul", {}, r.dtcs.map((d) => h("li", {}, h("code", {}, d.code), ` ${d.active ? "active" : "stored"}`, d.flags?.length ? ` (${d.flags.join(", ")})` : ""))) : null);
  }
  const skip = new Set(["read", "request", "response", "received_ms", "status"]);
  const fields = Object.entries(r).filter(([k]) => !skip.has(k));
  return h("li", {}, `${r.read}: `, fields.map(([k, v]) => `${k.replaceAll("_", " ")} ${formatValue(v)}`).join(", "));
}
