import { h, loadLib } from "./common.js";

// ---------------------------------------------------------------------------------------
// ChartView: a vega-lite spec (an altair chart, or a comparison) drawn with the bundled library.
//
// A comparison's spec names an x-interval selection per chart in `usermeta.nbtracker.zoom`.
// Dragging across a chart selects an x range; on release the widget asks Python for it,
// `{type: "zoom", x0, x1}`, and Python sends a new spec drawn from the full data of that range
// (not the old points magnified). "reset zoom" asks for the whole range: `{type: "zoom",
// x0: null, x1: null}`. Test hooks on the element: data-ready, data-range (the x range shown,
// JSON, empty for all of it), data-points and data-xspan (how many points the spec's curves
// and bands hold, and their smallest and largest x).

function nbtMeta(spec) {
  return (spec && spec.usermeta && spec.usermeta.nbtracker) || null;
}

function specPoints(spec) {
  let n = 0, lo = Infinity, hi = -Infinity;
  for (const rows of Object.values((spec && spec.datasets) || {})) {
    for (const r of rows) {
      const xs = Array.isArray(r.x) ? r.x : [r.x];
      n += xs.length;
      for (const x of xs) { if (x < lo) lo = x; if (x > hi) hi = x; }
    }
  }
  return { n, lo, hi };
}

export function renderChartView({ model, el }) {
  const root = h("div", { class: "nbt-chartview" });
  const reset = h("button", { class: "nbt-zoom-reset", type: "button", text: "reset zoom" });
  const hint = h("span", { class: "nbt-zoom-hint", text: "drag across a chart to zoom" });
  const bar = h("div", { class: "nbt-zoombar", style: "display:flex;gap:8px;align-items:center;color:#666" }, hint, reset);
  const chart = h("div", { class: "nbt-chartview-body" });
  root.append(bar, chart);
  el.append(root);
  let view = null;
  let brush = null; // the x range selected by the drag in progress
  bar.style.display = "none";

  reset.addEventListener("click", () => model.send({ type: "zoom", x0: null, x1: null }));
  // a drag ends with the pointer released: then ask for the range (not on every move)
  function release() {
    if (!brush) return;
    const [a, b] = brush;
    brush = null;
    if (b > a) {
      root.dataset.asked = JSON.stringify([a, b]);
      model.send({ type: "zoom", x0: a, x1: b });
    }
  }
  chart.addEventListener("pointerup", release);
  chart.addEventListener("mouseup", release);

  async function draw() {
    const spec = model.get("spec");
    const meta = nbtMeta(spec);
    root.dataset.ready = "0";
    try {
      const lib = await loadLib(model);
      const res = await lib.vegaEmbed(chart, spec, { actions: false, renderer: "canvas" });
      if (view) view.finalize();
      view = res.view;
      brush = null;
      for (const name of (meta && meta.zoom) || []) {
        view.addSignalListener(name, (_, value) => {
          const r = value && value.x;
          brush = Array.isArray(r) && r.length === 2 ? r.map(Number).sort((p, q) => p - q) : null;
        });
      }
      bar.style.display = meta && meta.zoom && meta.zoom.length ? "flex" : "none";
      reset.hidden = !(meta && meta.range);
      root.dataset.range = meta && meta.range ? JSON.stringify(meta.range) : "";
      const pts = specPoints(spec);
      root.dataset.points = String(pts.n);
      root.dataset.xspan = JSON.stringify([pts.lo, pts.hi]);
      root.dataset.ready = "1";
    } catch (e) {
      chart.textContent = "chart error: " + e;
    }
  }
  model.on("change:spec", draw);
  draw();
  return () => { model.off("change:spec", draw); if (view) view.finalize(); };
}
