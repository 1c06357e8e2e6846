// nbtracker's notebook widgets: LivePanel, RunTable, ConfigDiff, ChartView.
//
// Every widget model carries this small module. The charting library (vega + vega-lite +
// vega-embed, ~0.9 MB) travels once per page in a separate ChartLibrary model; widgets that
// draw charts name it in their `lib` trait and import it from there (see loadLib), so a
// notebook with twenty panels holds one copy of it, not twenty.
//
// Everything user-supplied (run names, config values, tags) is put on the page as text
// (textContent), never as HTML.

import { renderChartView } from "./chartview.js";
import { renderConfigDiff } from "./diff.js";
import { panelStore, renderLivePanel } from "./live.js";
import { renderRunTable } from "./runtable.js";
import { listenForStatic } from "./swap.js";

const RENDERERS = {
  live: renderLivePanel,
  diff: renderConfigDiff,
  runs: renderRunTable,
  chart: renderChartView,
  library: () => undefined,
};

export default {
  initialize({ model }) {
    if (model.get("_kind") === "live") {
      panelStore(model);
      listenForStatic(model);
    }
  },
  render(ctx) {
    const fn = RENDERERS[ctx.model.get("_kind")];
    return fn ? fn(ctx) : undefined;
  },
};
