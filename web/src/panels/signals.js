// The twin's reported signals, grouped by VSS branch, with unit and age; updated live.
import { branchOf, signalCatalog, unitLabel } from "../catalog.js";
import { fill, formatAge, formatTime, formatValue, h } from "../ui.js";

export async function signalsPanel(box, { twin, subscribeVin }) {
  const catalog = await signalCatalog().catch(() => new Map());
  const reported = { ...twin.reported }; // path -> {value, ts}
  const cells = new Map(); // path -> {value, age, row}

  function draw() {
    const groups = new Map();
    for (const path of Object.keys(reported).sort()) {
      const [branch, rest] = branchOf(path);
      if (!groups.has(branch)) groups.set(branch, []);
      groups.get(branch).push([path, rest]);
    }
    cells.clear();
    fill(box, h("h2", {}, "Signals"), groups.size === 0 ? h("p", {}, "This vehicle has reported no signals yet.") : null,
      [...groups].map(([branch, rows]) => h("details", { open: true, class: "signal-group" },
        h("summary", {}, `${branch} (${rows.length})`),
        h("table", { class: "signals" },
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Signal"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Unit"), h("th", { scope: "col" }, "Age"))),
          h("tbody", {}, rows.map(([path, rest]) => {
            const spec = catalog.get(path);
            const value = h("td", { class: "num" }, formatValue(reported[path].value));
            const age = h("td", { class: "age", title: formatTime(reported[path].ts) }, formatAge(reported[path].ts));
            const row = h("tr", { "data-path": path }, h("th", { scope: "row", title: spec?.description || path }, rest), value, h("td", {}, unitLabel(spec?.unit)), age);
            cells.set(path, { value, age, row });
            return row;
          }))))));
  }

  draw();
  const off = subscribeVin("twin", (d) => {
    let added = false;
    for (const [path, s] of Object.entries(d.signals || {})) {
      const known = reported[path];
      if (known && s.ts < known.ts) continue; // a late (store-and-forward) sample
      if (!known) added = true;
      reported[path] = s;
      const cell = cells.get(path);
      if (cell) {
        cell.value.textContent = formatValue(s.value);
        cell.age.title = formatTime(s.ts);
        cell.row.classList.remove("flash");
        void cell.row.offsetWidth; // restart the highlight animation
        cell.row.classList.add("flash");
      }
    }
    if (added) draw();
  });
  const timer = setInterval(() => {
    const now = Date.now();
    for (const [path, cell] of cells) cell.age.textContent = formatAge(reported[path].ts, now);
  }, 1000);
  return () => { off(); clearInterval(timer); };
}
