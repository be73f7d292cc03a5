// Charts on uPlot: a time series with a min–max band (history buckets) that zooms by
// dragging, and bar charts for distributions. Times are shown in the browser's time zone.
import uPlot from "uplot";

function width(el) {
  return Math.max(280, Math.floor(el.getBoundingClientRect().width) - 8);
}

/** Keep a chart as wide as its container. */
function fit(chart, el) {
  const observer = new ResizeObserver(() => chart.setSize({ width: width(el), height: chart.height }));
  observer.observe(el);
  return () => observer.disconnect();
}

/**
 * A time series chart in `el`. `onZoom(fromMs, toMs)` is called when the operator drags
 * over a range. Call `.set(xs, seriesList)` with times in ms and series of numbers/null.
 */
export function timeChart(el, { label, unit, series, height = 240, onZoom, band }) {
  const opts = {
    width: width(el),
    height,
    title: label,
    scales: { x: { time: true } },
    axes: [{}, { label: unit || "", size: 60 }],
    series: [{ label: "time" }, ...series.map((s) => ({ spanGaps: false, width: 1.5, points: { show: false }, ...s }))],
    bands: band ? [{ series: band, fill: "rgba(29, 78, 216, 0.12)" }] : [],
    cursor: { drag: { x: true, y: false, setScale: !onZoom } },
    hooks: {
      setSelect: [
        (u) => {
          if (!onZoom || u.select.width < 4) return;
          const from = u.posToVal(u.select.left, "x") * 1000;
          const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
          u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
          onZoom(Math.round(from), Math.round(to));
        },
      ],
    },
  };
  const data = [[], ...series.map(() => [])];
  const chart = new uPlot(opts, data, el);
  const unfit = fit(chart, el);
  return {
    chart,
    set(xs, values) {
      chart.setData([xs.map((x) => x / 1000), ...values]);
    },
    destroy() {
      unfit();
      chart.destroy();
    },
  };
}

/** A bar chart of counts per category (labels along x). */
export function barChart(el, { label, unit, color = "#1d4ed8", height = 220 }) {
  let labels = [];
  const opts = {
    width: width(el),
    height,
    title: label,
    scales: {
      x: { time: false, range: () => [-0.5, Math.max(0.5, labels.length - 0.5)] },
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
    },
    axes: [
      { splits: () => labels.map((_, i) => i), values: (u, splits) => splits.map((i) => labels[i] ?? ""), gap: 4 },
      { label: unit || "", size: 50 },
    ],
    series: [
      { label: "category", value: (u, i) => labels[i] ?? "" },
      { label: unit || "count", fill: color, stroke: color, paths: uPlot.paths.bars({ size: [0.7, 60] }), points: { show: false } },
    ],
    cursor: { drag: { x: false, y: false } },
  };
  const chart = new uPlot(opts, [[], []], el);
  const unfit = fit(chart, el);
  return {
    chart,
    set(categories, counts) {
      labels = categories;
      chart.setData([categories.map((_, i) => i), counts]);
    },
    destroy() {
      unfit();
      chart.destroy();
    },
  };
}
