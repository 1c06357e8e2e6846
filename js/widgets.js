// nbtracker's notebook widgets: LivePanel, RunTable, ConfigDiff, ChartView.
//
// Every widget model carries this small module. The charting library (vega + vega-lite +
// vega-embed, ~0.9 MB) travels once per page in a separate ChartLibrary model; widgets that
// draw charts name it in their `lib` trait and import it from there (see loadLib), so a
// notebook with twenty panels holds one copy of it, not twenty.
//
// Everything user-supplied (run names, config values, tags) is put on the page as text
// (textContent), never as HTML.

const LIB_KEY = "__nbtrackerChartLib";

function loadLib(model) {
  if (!globalThis[LIB_KEY]) {
    globalThis[LIB_KEY] = (async () => {
      const ref = String(model.get("lib") || "");
      const id = ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : ref;
      const libModel = await model.widget_manager.get_model(id);
      const code = libModel.get("code");
      const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
      try {
        return await import(/* webpackIgnore: true */ url);
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    globalThis[LIB_KEY].catch(() => { globalThis[LIB_KEY] = null; });
  }
  return globalThis[LIB_KEY];
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("data-")) el.setAttribute(k, v);
    else el[k] = v;
  }
  for (const c of children) if (c != null) el.append(c);
  return el;
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function duration(s) {
  s = Math.max(0, Math.floor(s));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh ? `${hh}h${String(mm).padStart(2, "0")}m` : mm ? `${mm}m${String(ss).padStart(2, "0")}s` : `${ss}s`;
}

// ---------------------------------------------------------------------------------------
// LivePanel: per-model store of series, filled from the saved snapshot and from deltas.

function panelStore(model) {
  if (!model.__nbt) {
    const store = { series: new Map(), listeners: new Set() };
    const snap = model.get("snapshot") || {};
    for (const [key, xy] of Object.entries(snap)) {
      store.series.set(key, { committed: zip(xy), tail: [], version: 1 });
    }
    model.on("msg:custom", (msg) => {
      if (!msg || msg.type !== "points") return;
      const changed = {};
      for (const [key, d] of Object.entries(msg.series || {})) {
        let s = store.series.get(key);
        if (!s) store.series.set(key, (s = { committed: [], tail: [], version: 0 }));
        const change = { reset: null, append: [], tail: zip(d.tail) };
        if (d.reset) {
          s.committed = zip(d.reset);
          change.reset = s.committed;
        } else if (d.append) {
          const pts = zip(d.append);
          s.committed.push(...pts);
          change.append = pts;
        }
        s.tail = change.tail;
        s.version += 1;
        changed[key] = change;
      }
      for (const fn of store.listeners) fn(changed);
    });
    model.on("change:snapshot", () => {
      const snap = model.get("snapshot") || {};
      const changed = {};
      for (const [key, xy] of Object.entries(snap)) {
        const pts = zip(xy);
        let s = store.series.get(key);
        if (!s) store.series.set(key, (s = { committed: [], tail: [], version: 0 }));
        s.committed = pts;
        s.tail = [];
        s.version += 1;
        changed[key] = { reset: pts, append: [], tail: [] };
      }
      for (const fn of store.listeners) fn(changed);
    });
    model.__nbt = store;
  }
  return model.__nbt;
}

function zip(xy) {
  if (!xy) return [];
  const [xs, ys] = xy;
  const out = new Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = { x: xs[i], y: ys[i] };
  return out;
}

function lineSpec(key, xTitle) {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    width: 250, height: 140,
    autosize: { type: "pad", resize: true },
    title: { text: key, fontSize: 12, anchor: "start", fontWeight: "normal" },
    data: { name: "points" },
    mark: { type: "line", clip: true, strokeWidth: 1.5 },
    encoding: {
      x: { field: "x", type: "quantitative", title: xTitle, axis: { tickCount: 5, labelFlush: true } },
      y: { field: "y", type: "quantitative", title: null, scale: { zero: false }, axis: { tickCount: 5 } },
    },
    config: { view: { stroke: null }, axis: { labelFontSize: 10, titleFontSize: 10 } },
  };
}

function renderLivePanel({ model, el }) {
  const store = panelStore(model);
  const root = h("div", { class: "nbt-live", "data-state": "", "data-points": "0", "data-charts": "0" });
  const header = h("div", { class: "nbt-head" });
  const title = h("span", { class: "nbt-name" });
  const badge = h("span", { class: "nbt-state" });
  const stats = h("span", { class: "nbt-stats" });
  header.append(title, badge, stats);
  const groups = h("div", { class: "nbt-groups" });
  const summary = h("div", { class: "nbt-summary" });
  const status = h("div", { class: "nbt-status" });
  root.append(header, groups, summary, status);
  el.append(root);

  const charts = new Map(); // key -> {view, count, box}
  const sections = new Map(); // prefix -> grid element
  let disposed = false;
  let lib = null;

  function drawn() {
    let n = 0;
    for (const c of charts.values()) n += c.count;
    root.dataset.points = String(n);
    root.dataset.charts = String(charts.size);
  }

  function section(key) {
    const i = key.indexOf("/");
    const prefix = i > 0 ? key.slice(0, i) : "";
    let grid = sections.get(prefix);
    if (!grid) {
      const box = h("div", { class: "nbt-section" },
        prefix ? h("div", { class: "nbt-section-title", text: prefix + "/" }) : null);
      grid = h("div", { class: "nbt-grid" });
      box.append(grid);
      sections.set(prefix, grid);
      const order = [...sections.keys()].sort((a, b) => (a === "" ? -1 : b === "" ? 1 : a.localeCompare(b)));
      groups.replaceChildren(...order.map((p) => sections.get(p).parentElement));
    }
    return grid;
  }

  async function chartFor(key) {
    let c = charts.get(key);
    if (c) return c;
    const box = h("div", { class: "nbt-chart", "data-key": key });
    section(key).append(box);
    c = { view: null, count: 0, box, ready: null };
    charts.set(key, c);
    c.ready = (async () => {
      const res = await lib.vegaEmbed(box, lineSpec(key, model.get("xlabel") || "step"),
        { actions: false, renderer: "canvas" });
      c.view = res.view;
    })();
    await c.ready;
    return c;
  }

  async function apply(key, change) {
    const c = await chartFor(key);
    if (disposed) return;
    const cs = lib.vega.changeset();
    const rows = (pts, t) => pts.map((p) => ({ x: p.x, y: p.y, t }));
    if (change.reset) {
      cs.remove(() => true).insert([...rows(change.reset, 0), ...rows(change.tail, 1)]);
      c.count = change.reset.length + change.tail.length;
    } else {
      cs.remove((d) => d.t === 1).insert([...rows(change.append, 0), ...rows(change.tail, 1)]);
      c.count += change.append.length - (c.tailCount || 0) + change.tail.length;
    }
    c.tailCount = change.tail.length;
    await c.view.change("points", cs).runAsync();
    drawn();
  }

  let queue = Promise.resolve();
  function onChange(changed) {
    if (!lib) return; // the store has it; everything is drawn once the library is loaded
    queue = queue.then(() => Promise.all(Object.entries(changed).map(([k, v]) => apply(k, v))))
      .catch((e) => { status.textContent = "chart error: " + e; });
  }
  store.listeners.add(onChange);

  function showInfo() {
    const info = model.get("info") || {};
    title.textContent = info.name ? `${info.name}` : "";
    title.title = info.id ? `${info.project}/${info.id}` : "";
    badge.textContent = info.state || "";
    badge.className = "nbt-state nbt-state-" + (info.state || "none");
    root.dataset.state = info.state || "";
    root.dataset.step = String(info.step ?? "");
    const end = info.state === "running" ? Date.now() / 1000 : info.updated || Date.now() / 1000;
    const parts = [`step ${info.step ?? 0}`, duration(end - (info.started || end))];
    if (info.mode) parts.push(info.mode);
    if (info.upload) parts.push(info.upload);
    stats.textContent = parts.join(" · ");
    const s = info.summary;
    if (s && Object.keys(s).length && info.state !== "running") {
      const rows = Object.keys(s).sort().map((k) =>
        h("tr", {}, h("td", { text: k }), h("td", { text: fmt(s[k]) })));
      summary.replaceChildren(h("table", { class: "nbt-summary-table" }, h("tbody", {}, ...rows)));
    } else {
      summary.replaceChildren();
    }
  }
  showInfo();
  model.on("change:info", showInfo);
  const timer = setInterval(showInfo, 1000);

  loadLib(model).then((m) => {
    lib = m;
    const all = {};
    for (const [key, s] of store.series) all[key] = { reset: s.committed, append: [], tail: s.tail };
    onChange(all);
  }).catch((e) => { status.textContent = "could not load the chart library: " + e; });

  return () => {
    disposed = true;
    clearInterval(timer);
    store.listeners.delete(onChange);
    model.off("change:info", showInfo);
    for (const c of charts.values()) c.view && c.view.finalize();
  };
}

// ---------------------------------------------------------------------------------------
// ConfigDiff: rows {key, values: [...], missing: [...], differs}; "show all" toggles locally.

function diffTable(runs, rows, showAll) {
  const head = h("tr", {}, h("th", { text: "key" }), ...runs.map((r) => h("th", { text: r })));
  const body = [];
  for (const r of rows) {
    if (!showAll && !r.differs) continue;
    const tr = h("tr", { "data-key": r.key, class: r.differs ? "nbt-differs" : "" }, h("td", { class: "nbt-key", text: r.key }));
    r.values.forEach((v, i) => {
      const missing = r.missing && r.missing[i];
      tr.append(h("td", { class: missing ? "nbt-missing" : "", text: missing ? "missing" : fmt(v) }));
    });
    body.push(tr);
  }
  if (!body.length) body.push(h("tr", {}, h("td", { colSpan: runs.length + 1, class: "nbt-empty", text: showAll ? "no config" : "no differences" })));
  return h("table", { class: "nbt-table" }, h("thead", {}, head), h("tbody", {}, ...body));
}

function renderConfigDiff({ model, el }) {
  const root = h("div", { class: "nbt-diff" });
  const toggle = h("input", { type: "checkbox", class: "nbt-show-all" });
  const label = h("label", { class: "nbt-toggle" }, toggle, " show all keys");
  const box = h("div");
  root.append(label, box);
  el.append(root);
  function draw() {
    toggle.checked = !!model.get("show_all");
    const rows = model.get("rows") || [];
    root.dataset.differs = String(rows.filter((r) => r.differs).length);
    box.replaceChildren(diffTable(model.get("runs") || [], rows, toggle.checked));
  }
  toggle.addEventListener("change", () => { model.set("show_all", toggle.checked); model.save_changes(); draw(); });
  model.on("change:rows", draw);
  model.on("change:show_all", draw);
  draw();
  return () => { model.off("change:rows", draw); model.off("change:show_all", draw); };
}

// ---------------------------------------------------------------------------------------
// RunTable: sortable, filterable; selected runs compared below on request.

function renderRunTable({ model, el }) {
  const root = h("div", { class: "nbt-runs" });
  const filter = h("input", { class: "nbt-filter", type: "search", placeholder: "filter runs…" });
  const compare = h("button", { class: "nbt-compare", text: "Compare selected" });
  const count = h("span", { class: "nbt-count" });
  const bar = h("div", { class: "nbt-bar" }, filter, compare, count);
  const tableBox = h("div", { class: "nbt-table-box" });
  const comparison = h("div", { class: "nbt-comparison" });
  root.append(bar, tableBox, comparison);
  el.append(root);
  let sortKey = model.get("sort_key") || "created";
  let sortDesc = model.get("sort_desc") ?? true;
  let selected = new Set(model.get("selected") || []);

  function cmp(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined || a === "") return 1;
    if (b === null || b === undefined || b === "") return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  function draw() {
    const cols = model.get("columns") || [];
    let rows = [...(model.get("rows") || [])];
    const q = filter.value.trim().toLowerCase();
    if (q) rows = rows.filter((r) => cols.some((c) => fmt(r[c.key]).toLowerCase().includes(q)));
    rows.sort((a, b) => {
      const d = cmp(a[sortKey], b[sortKey]);
      const missing = a[sortKey] == null || a[sortKey] === "" || b[sortKey] == null || b[sortKey] === "";
      return missing ? d : sortDesc ? -d : d;
    });
    const head = h("tr", {}, h("th", {}),
      ...cols.map((c) => {
        const th = h("th", { "data-key": c.key, class: "nbt-sortable", text: c.label + (c.key === sortKey ? (sortDesc ? " ▼" : " ▲") : "") });
        th.addEventListener("click", () => {
          if (sortKey === c.key) sortDesc = !sortDesc; else { sortKey = c.key; sortDesc = false; }
          draw();
        });
        return th;
      }));
    const body = rows.map((r) => {
      const cb = h("input", { type: "checkbox", class: "nbt-select", checked: selected.has(r.id) });
      cb.addEventListener("change", () => {
        if (cb.checked) selected.add(r.id); else selected.delete(r.id);
        model.set("selected", [...selected]);
        model.save_changes();
        count.textContent = `${selected.size} selected`;
      });
      return h("tr", { class: "nbt-run", "data-id": r.id },
        h("td", {}, cb), ...cols.map((c) => h("td", { class: c.kind === "number" ? "nbt-num" : "", text: fmt(r[c.key]) })));
    });
    tableBox.replaceChildren(h("table", { class: "nbt-table" }, h("thead", {}, head), h("tbody", {}, ...body)));
    root.dataset.rows = String(rows.length);
    root.dataset.sortKey = sortKey;
    count.textContent = `${selected.size} selected`;
  }

  let views = [];
  async function drawComparison() {
    const c = model.get("comparison") || {};
    for (const v of views) v.finalize();
    views = [];
    comparison.replaceChildren();
    if (!c.runs) return;
    comparison.dataset.runs = String(c.runs.length);
    if (c.spec) {
      const chartBox = h("div", { class: "nbt-compare-chart" });
      comparison.append(chartBox);
      try {
        const lib = await loadLib(model);
        const res = await lib.vegaEmbed(chartBox, c.spec, { actions: false, renderer: "canvas" });
        views.push(res.view);
      } catch (e) {
        chartBox.textContent = "chart error: " + e;
      }
    }
    if (c.diff) {
      comparison.append(h("div", { class: "nbt-diff" }, diffTable(c.diff.runs, c.diff.rows, false)));
    }
  }

  filter.addEventListener("input", draw);
  compare.addEventListener("click", () => {
    model.send({ type: "compare", ids: [...selected] });
  });
  const onSel = () => { selected = new Set(model.get("selected") || []); draw(); };
  model.on("change:rows", draw);
  model.on("change:selected", onSel);
  model.on("change:comparison", drawComparison);
  draw();
  drawComparison();
  return () => {
    model.off("change:rows", draw);
    model.off("change:selected", onSel);
    model.off("change:comparison", drawComparison);
    for (const v of views) v.finalize();
  };
}

// ---------------------------------------------------------------------------------------
// ChartView: a static vega-lite spec (an altair chart) drawn with the bundled library.

function renderChartView({ model, el }) {
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

const RENDERERS = {
  live: renderLivePanel,
  diff: renderConfigDiff,
  runs: renderRunTable,
  chart: renderChartView,
  library: () => undefined,
};

export default {
  initialize({ model }) {
    if (model.get("_kind") === "live") panelStore(model);
  },
  render(ctx) {
    const fn = RENDERERS[ctx.model.get("_kind")];
    return fn ? fn(ctx) : undefined;
  },
};
