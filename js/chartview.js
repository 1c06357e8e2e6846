import { h, loadLib } from "./common.js";

// ---------------------------------------------------------------------------------------
// ChartView: a static vega-lite spec (an altair chart) drawn with the bundled library.

export function renderChartView({ model, el }) {
  const root = h("div", { class: "nbt-chartview" });
  el.append(root);
  let view = null;
  async function draw() {
    if (view) view.finalize();
    try {
      const lib = await loadLib(model);
      const res = await lib.vegaEmbed(root, model.get("spec"), { actions: false, renderer: "canvas" });
      view = res.view;
      root.dataset.ready = "1";
    } catch (e) {
      root.textContent = "chart error: " + e;
    }
  }
  model.on("change:spec", draw);
  draw();
  return () => { model.off("change:spec", draw); if (view) view.finalize(); };
}
