// Sign in: paste an API token (issued with `autocloud tokens create` or POST /v1/tokens).
// It is checked against the platform before it is kept, and kept in sessionStorage only.
import { api } from "../api.js";
import { h, fill, notice } from "../ui.js";

export function signInView(main, { message, onSignedIn }) {
  const input = h("input", { id: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false", "aria-describedby": "token-help" });
  const error = h("div", { "aria-live": "assertive" });
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "signin", onsubmit: submit },
    h("h1", {}, "Autocloud operator dashboard"),
    h("label", { for: "token" }, "API token"),
    input,
    h("p", { id: "token-help", class: "hint" },
      "Paste a token issued for you (", h("code", {}, "autocloud tokens create --name … --brand …"),
      "). A brand token shows that brand's vehicles; a group token shows every brand. ",
      "The token stays in this browser tab only."),
    error, button);
  fill(main, form);
  if (message) fill(error, notice(message, "error"));
  input.focus();

  async function submit(event) {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    button.disabled = true;
    fill(error);
    try {
      const brands = await api("/v1/brands", { token });
      await onSignedIn(token, brands.items);
    } catch (err) {
      const words = err.status === 401
        ? "This token was not accepted: it is unknown, revoked or expired. Ask for a new one."
        : `Signing in failed: ${err.message}`;
      fill(error, notice(words, "error"));
      input.select();
    } finally {
      button.disabled = false;
    }
  }
}
