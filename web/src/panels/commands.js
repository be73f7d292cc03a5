// Remote commands: one button per command of the platform's catalog (a small form for those
// with parameters), and each command's lifecycle live from the `command` stream events:
// queued → sent → delivered → succeeded, or failed / rejected / expired with the reason.
// A refusal by the platform (interlock, role, rate limit) is shown in words.
import { api } from "../api.js";
import { fill, formatTime, h, notice } from "../ui.js";

const STATE_WORDS = {
  queued: "queued (waiting for the vehicle)", sent: "sent", delivered: "accepted by the vehicle",
  succeeded: "succeeded", failed: "failed", rejected: "rejected by the vehicle", expired: "expired",
};

export async function commandsPanel(box, { vin, subscribeVin }) {
  const catalog = await api("/v1/commands/catalog");
  const commands = new Map(); // id -> command
  const lifecycle = h("ul", { class: "lifecycle", "aria-label": "Commands of this vehicle", "aria-live": "polite" });
  const message = h("div", { role: "alert" });
  const simple = catalog.filter((c) => c.params.every((p) => !p.required));
  const withParams = catalog.filter((c) => c.params.length > 0);
  const paramBox = h("div");
  let chosen = withParams[0];

  fill(box, h("h2", {}, "Commands"),
    h("div", { class: "controls", role: "group", "aria-label": "Send a command" },
      simple.map((c) => h("button", { type: "button", "data-command": c.name, title: c.summary, onclick: () => send(c.name, {}) }, c.name.replaceAll("_", " ")))),
    withParams.length ? h("form", { class: "controls", onsubmit: (e) => { e.preventDefault(); send(chosen.name, readParams()); } },
      h("label", { class: "field" }, "Command ", h("select", { id: "command-name", onchange: (e) => { chosen = withParams.find((c) => c.name === e.target.value); drawParams(); } },
        withParams.map((c) => h("option", { value: c.name }, c.name.replaceAll("_", " "))))),
      paramBox, h("button", { type: "submit" }, "Send")) : null,
    message, h("h3", {}, "Recent commands"), lifecycle);

  function drawParams() {
    fill(paramBox, chosen.params.map((p) => {
      const id = `param-${p.name}`;
      const unit = p.unit ? ` (${p.unit})` : "";
      const input = p.type === "boolean"
        ? h("input", { id, type: "checkbox", name: p.name, checked: p.default === true })
        : h("input", { id, type: "number", name: p.name, min: p.min ?? undefined, max: p.max ?? undefined, step: p.type === "integer" ? 1 : "any", value: p.default ?? "", required: p.required });
      return h("label", { for: id, class: "field", title: p.description }, `${p.name.replaceAll("_", " ")}${unit} `, input);
    }));
  }

  function readParams() {
    const params = {};
    for (const p of chosen.params) {
      const input = paramBox.querySelector(`[name="${p.name}"]`);
      if (p.type === "boolean") params[p.name] = input.checked;
      else if (input.value !== "") params[p.name] = Number(input.value);
    }
    return params;
  }

  async function send(name, params) {
    fill(message);
    try {
      const command = await api(`/v1/vehicles/${encodeURIComponent(vin)}/commands`, { method: "POST", body: { name, params, idempotency_key: crypto.randomUUID() } });
      upsert(command);
    } catch (err) {
      const reason = err.fields?.reason ? ` (${err.fields.reason})` : "";
      const words = err.status === 409 ? `“${name}” was refused${reason}: ${err.detail}`
        : err.status === 403 ? `You may not send “${name}”: ${err.detail}`
        : err.status === 429 ? `Too many commands: ${err.detail}` : `“${name}” could not be sent: ${err.message}`;
      fill(message, notice(words, "error"));
    }
  }

  function upsert(c) {
    const known = commands.get(c.id);
    if (known && order(known.state) > order(c.state)) return; // an older event arrived late
    commands.set(c.id, c);
    draw();
  }

  function draw() {
    const recent = [...commands.values()].sort((a, b) => b.issued_ms - a.issued_ms).slice(0, 10);
    fill(lifecycle, recent.length === 0 ? h("li", {}, "No commands sent to this vehicle yet.") : recent.map((c) =>
      h("li", { "data-command-id": c.id, "data-state": c.state },
        h("strong", {}, c.name.replaceAll("_", " ")), " — ",
        h("span", { class: `state state-${c.state}` }, STATE_WORDS[c.state] || c.state),
        c.reason ? h("span", { class: "reason" }, `: ${c.reason}`) : null,
        h("div", { class: "meta" }, `${formatTime(c.issued_ms)} by ${c.caller}`, timing(c)))));
  }

  const page = await api(`/v1/vehicles/${encodeURIComponent(vin)}/commands`, { params: { limit: 10 } });
  for (const c of page.items) commands.set(c.id, c);
  if (withParams.length) drawParams();
  draw();
  return subscribeVin("command", upsert);
}

const ORDER = ["queued", "sent", "delivered", "succeeded", "failed", "rejected", "expired"];
function order(state) {
  return Math.min(ORDER.indexOf(state), 3);
}

function timing(c) {
  const t = c.timings || {};
  if (t.finished_ms && t.queued_ms) return ` · took ${((t.finished_ms - t.queued_ms) / 1000).toFixed(1)} s`;
  return "";
}
