// A slot on a page for a capability that arrives with its API (commands, DTCs, alerts,
// diagnostics, audit log). The slot asks the platform's OpenAPI document whether the
// route exists: if it does, the panel mounts; if not, the slot says so in words.
import { hasRoute } from "../api.js";
import { fill, h, notice } from "../ui.js";

export function featureSlot(box, { title, route, method = "get", missing, mount }, ctx) {
  fill(box, h("h2", {}, title), notice("Loading…"));
  let unmount = () => {};
  let gone = false;
  hasRoute(route, method).then(async (present) => {
    if (gone) return;
    if (!present) {
      fill(box, h("h2", {}, title), notice(missing));
      return;
    }
    try {
      unmount = (await mount(box, ctx)) || (() => {});
      if (gone) unmount();
    } catch (err) {
      fill(box, h("h2", {}, title), notice(`${title} could not be loaded: ${err.message}`, "error"));
    }
  });
  return () => { gone = true; unmount(); };
}
