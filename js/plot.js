import { h, loadLib } from "./common.js";

// ---------------------------------------------------------------------------------------
// Charts logged by nbtracker.plot (wandb.plot's functions): a table whose reference names its
// chart — {_type: "table-file", path, nrows, ..., chart: {preset, kind, fields, string_fields}}.
// Drawn here with the bundled vega-lite (the page's chart library), offline; the table itself
// folds open under the chart. A finished run's static form draws the same presets as SVG
// (nbtracker/charts/custom.py). The table file arrives as {columns, data, nrows, sampled?}
// (nbtracker/notebook/extras.py: up to 20,000 rows, evenly spaced beyond).
//
// Column names never become vega field names (a "." or "[" in one would be read as a path):
// each row is copied to {x, y, g, i} fields; titles carry the names, as text.

/** preset -> [kind, required fields, optional fields] (Python: nbtracker/charts/presets.py) */
export const PRESETS = {
  "wandb/line/v0": ["line", ["x", "y"], ["stroke"]],
  "wandb/scatter/v0": ["scatter", ["x", "y"], []],
  "wandb/bar/v0": ["bar", ["label", "value"], []],
  "wandb/histogram/v0": ["histogram", ["value"], []],
  "wandb/lineseries/v0": ["line_series", ["step", "lineKey", "lineVal"], []],
  "wandb/confusion_matrix/v0": ["confusion_matrix", ["Actual", "Predicted", "nPredictions"], []],
  "wandb/confusion_matrix/v1": ["confusion_matrix", ["Actual", "Predicted", "nPredictions"], []],
  "wandb/area-under-curve/v0": ["curve", ["x", "y"], ["class"]],
};

export const chartKind = (chart) => (chart && PRESETS[chart.preset] ? PRESETS[chart.preset][0] : "custom");
const SVG_ROWS = 5000; // more rows are drawn on a canvas
const num = (v) => typeof v === "number" && Number.isFinite(v);

function base(title, rows) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    autosize: { type: "pad", resize: true },
    title: { text: title, fontSize: 12, anchor: "start", fontWeight: "normal" },
    data: { values: rows },
    config: {
      view: { stroke: null }, axis: { labelFontSize: 10, titleFontSize: 10 },
      legend: { labelFontSize: 10, titleFontSize: 10, labelLimit: 160 },
    },
  };
}

/**
 * The vega-lite spec of a chart of `body` (the table as sent), or {error}. `fields` map the
 * preset's fields to column names; a column the table lacks is an error shown in the card.
 */
export function chartSpec(chart, body, key) {
  const kind = chartKind(chart);
  const fields = (chart && typeof chart.fields === "object" && chart.fields) || {};
  const strings = (chart && typeof chart.string_fields === "object" && chart.string_fields) || {};
  const title = String(strings.title || key);
  const cols = (body.columns || []).map(String);
  const [, required, optional] = PRESETS[chart.preset];
  const at = {};
  for (const f of [...required, ...optional]) {
    const name = fields[f];
    if (name == null) {
      if (required.includes(f)) return { error: `the chart names no column for its field "${f}"` };
      continue;
    }
    const j = cols.indexOf(String(name));
    if (j < 0) return { error: `field "${f}" names column "${name}", which the table does not have` };
    at[f] = j;
  }
  const src = body.data || [];
  const pick = (f) => (r) => (at[f] === undefined ? null : r[at[f]]);
  const name = (f) => (fields[f] == null ? null : String(fields[f]));
  const rowsOf = (fx, fy, fg) => src.map((r, i) => ({ x: pick(fx)(r), y: fy ? pick(fy)(r) : null, g: fg ? pick(fg)(r) : null, i }));
  const group = (title) => ({ field: "g", type: "nominal", title, legend: { orient: "bottom", columns: 4 } });
  const tooltip = (xt, yt, gt) => [{ field: "x", title: xt }, { field: "y", title: yt }, ...(gt !== undefined ? [{ field: "g", title: gt }] : [])];
  let spec, rows;
  if (kind === "line" || kind === "scatter" || kind === "line_series" || kind === "curve") {
    const [fx, fy, fg] = {
      line: ["x", "y", "stroke"], scatter: ["x", "y", null], line_series: ["step", "lineVal", "lineKey"], curve: ["x", "y", "class"],
    }[kind];
    rows = rowsOf(fx, fy, fg && at[fg] !== undefined ? fg : null);
    const numeric = rows.every((r) => r.x == null || num(r.x));
    const xTitle = kind === "line_series" ? String(strings.xname || "x") : kind === "curve" ? String(strings["x-axis-title"] || name(fx)) : name(fx);
    const yTitle = kind === "line_series" ? null : kind === "curve" ? String(strings["y-axis-title"] || name(fy)) : name(fy);
    const grouped = fg && at[fg] !== undefined;
    spec = {
      ...base(title, rows), width: 320, height: 200,
      mark: kind === "scatter" ? { type: "point", filled: true, size: 28, opacity: 0.85 }
        : { type: "line", strokeWidth: 1.5, point: rows.length <= 40 },
      encoding: {
        x: numeric ? { field: "x", type: "quantitative", title: xTitle, scale: { zero: kind === "curve" } }
          : { field: "x", type: "ordinal", title: xTitle, sort: null },
        y: { field: "y", type: "quantitative", title: yTitle, scale: { zero: kind === "curve" } },
        tooltip: tooltip(xTitle, yTitle || name(fy), grouped ? name(fg) : undefined),
      },
    };
    if (grouped) spec.encoding.color = group(kind === "line_series" ? null : name(fg));
    if (kind === "curve") spec.encoding.order = { field: "i", type: "quantitative" }; // the table's order
  } else if (kind === "bar") {
    rows = rowsOf("label", "value", null);
    spec = {
      ...base(title, rows), width: 320, height: { step: rows.length > 40 ? 10 : 16 },
      mark: { type: "bar", color: "#4c78a8" },
      encoding: {
        y: { field: "x", type: "nominal", sort: null, title: name("label"), axis: { labelLimit: 140 } },
        x: { field: "y", type: "quantitative", aggregate: "sum", title: name("value") },
        tooltip: [{ field: "x", title: name("label") }, { field: "y", aggregate: "sum", title: name("value") }],
      },
    };
  } else if (kind === "histogram") {
    rows = rowsOf("value", null, null);
    spec = {
      ...base(title, rows), width: 320, height: 180,
      mark: { type: "bar", color: "#4c78a8" },
      encoding: {
        x: { field: "x", type: "quantitative", bin: { maxbins: 40 }, title: name("value") },
        y: { aggregate: "count", type: "quantitative", title: "count" },
      },
    };
  } else if (kind === "confusion_matrix") {
    rows = src.map((r, i) => ({ y: r[at.Actual], x: r[at.Predicted], c: r[at.nPredictions], i }));
    const classes = new Set(rows.flatMap((r) => [String(r.y), String(r.x)]));
    const n = classes.size;
    const cell = Math.max(10, Math.min(40, Math.floor(360 / Math.max(n, 1))));
    const top = Math.max(0, ...rows.map((r) => (num(r.c) ? r.c : 0)));
    const enc = {
      x: { field: "x", type: "nominal", sort: null, title: name("Predicted") },
      y: { field: "y", type: "nominal", sort: null, title: name("Actual") },
    };
    const layers = [{
      mark: { type: "rect", stroke: "#fff", strokeWidth: 1 },
      encoding: {
        ...enc, color: { field: "c", type: "quantitative", title: name("nPredictions"), scale: { scheme: "blues" } },
        tooltip: [{ field: "y", title: name("Actual") }, { field: "x", title: name("Predicted") }, { field: "c", title: name("nPredictions") }],
      },
    }];
    if (cell >= 18) {
      layers.push({
        mark: { type: "text", fontSize: cell >= 30 ? 11 : 9 },
        encoding: {
          ...enc, text: { field: "c", type: "quantitative" },
          color: { condition: { test: `datum.c > ${top / 2}`, value: "#fff" }, value: "#333" },
        },
      });
    }
    spec = { ...base(title, rows), width: { step: cell }, height: { step: cell }, layer: layers };
  }
  return { spec, rows, kind };
}

/**
 * A chart's card body: the chart (vega-lite), a note when not every row is drawn, and the table
 * folded under it (`drawTable(st, ref)`, made when opened). A preset we do not draw shows the
 * table with one line saying so.
 */
export function drawChart(st, ref, key, drawTable) {
  const chart = ref.chart || {};
  const kind = chartKind(chart);
  const box = h("div", { class: "nbt-plot", "data-chart": kind });
  if (kind === "custom") {
    box.append(h("div", { class: "nbt-hint nbt-plot-note", text: `custom chart preset "${String(chart.preset)}" is not drawn here; its table is below` }),
      drawTable(st, ref));
    return box;
  }
  const view = h("div", { class: "nbt-plot-view" });
  const note = h("div", { class: "nbt-hint nbt-plot-note" });
  const data = h("details", { class: "nbt-plot-data" }, h("summary", { text: `data · ${ref.nrows ?? "?"} rows` }));
  let table = null;
  data.addEventListener("toggle", () => { if (data.open && !table) data.append((table = drawTable(st, ref))); });
  box.append(view, note, data);
  Promise.all([st.file(ref.path).then((f) => f.blob.text()), loadLib(st.model)]).then(async ([text, lib]) => {
    const body = JSON.parse(text);
    const made = chartSpec(chart, body, key);
    if (made.error) {
      view.replaceChildren(h("div", { class: "nbt-media-error", text: `chart not drawn: ${made.error}` }));
      data.open = true;
      return;
    }
    const res = await lib.vegaEmbed(view, made.spec, { actions: false, renderer: made.rows.length > SVG_ROWS ? "canvas" : "svg" });
    if (view.dataset.gone) { res.view.finalize(); return; } // the card moved on meanwhile
    view.nbtView = res.view; // for tests, debugging and finalizeCharts
    box.dataset.rows = String(made.rows.length);
    const total = body.nrows ?? made.rows.length;
    if (total > made.rows.length) note.textContent = `${made.rows.length} of ${total} rows drawn` + (body.sampled ? " (evenly spaced)" : "");
  }).catch((e) => {
    view.replaceChildren(h("div", { class: "nbt-media-error", text: String((e && e.message) || e) }));
  });
  return box;
}

/** Release the vega views of the charts under `el` (a card about to show another step). */
export function finalizeCharts(el) {
  for (const v of el.querySelectorAll(".nbt-plot-view")) {
    v.dataset.gone = "1"; // a view still being made is released when it is ready
    if (v.nbtView) v.nbtView.finalize();
  }
}
