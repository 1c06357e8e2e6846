import { duration, fmt, h, loadLib } from "./common.js";
import { extrasStore, renderExtras } from "./media.js";

// ---------------------------------------------------------------------------------------
// LivePanel: one store of series per model (made once, in `initialize`; see widgets.js), filled
// from the `snapshot` trait and from `points` messages; every view draws from it.

/** @param model the model, guarded by the contract (contract.js) */
export function panelStore(model) {
  const store = { series: new Map(), listeners: new Set(), extras: extrasStore(model) };
  const notify = (changed) => { for (const fn of store.listeners) fn(changed); };
  function fromSnapshot() {
    const changed = {};
    for (const [key, snap] of Object.entries(model.get("snapshot"))) {
      let s = store.series.get(key);
      if (!s) store.series.set(key, (s = { committed: [], tail: [], version: 0 }));
      s.committed = zip(snap.c);
      s.tail = zip(snap.t);
      s.version += 1;
      changed[key] = { reset: s.committed, append: [], tail: s.tail };
    }
    return changed;
  }
  fromSnapshot();
  model.on("msg:custom", (msg) => {
    if (msg.type !== "points") return;
    const changed = {};
    for (const [key, d] of Object.entries(msg.series)) {
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
    notify(changed);
  });
  model.on("change:snapshot", () => notify(fromSnapshot()));
  return store;
}

function zip(xy) {
  if (!xy) return [];
  const [xs, ys] = xy;
  const out = new Array(xs.length);
  for (let i = 0; i < xs.length; i++) out[i] = { x: xs[i], y: ys[i] };
  return out;
}

export function lineSpec(key, xTitle) {
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

export function renderLivePanel({ model, el, store }) {
  const root = h("div", { class: "nbt-live", "data-state": "", "data-points": "0", "data-charts": "0" });
  const header = h("div", { class: "nbt-head" });
  const title = h("span", { class: "nbt-name" });
  const badge = h("span", { class: "nbt-state" });
  const stats = h("span", { class: "nbt-stats" });
  header.append(title, badge, stats);
  const groups = h("div", { class: "nbt-groups" });
  const summary = h("div", { class: "nbt-summary" });
  const status = h("div", { class: "nbt-status" });
  // alerts, media, system, info, output (media.js)
  const extras = renderExtras({
    model, st: store.extras, lineSpec, started: () => (model.get("info") || {}).started || 0,
  });
  root.append(header, extras.alerts, groups, ...extras.sections, summary, status);
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

  // a metric's x-axis: the metric Python named for it (define_metric step_metric), else "step"
  const xTitle = (key) => model.get("xlabels")[key] || "step";

  function embed(c, key) {
    c.xTitle = xTitle(key);
    c.box.replaceChildren();
    c.ready = lib.vegaEmbed(c.box, lineSpec(key, c.xTitle), { actions: false, renderer: "canvas" })
      .then((res) => { c.view = c.box.nbtView = res.view; }); // the view, for tests and debugging
    return c.ready;
  }

  async function chartFor(key) {
    let c = charts.get(key);
    if (!c) {
      const box = h("div", { class: "nbt-chart", "data-key": key });
      section(key).append(box);
      c = { view: null, count: 0, tailCount: 0, box, ready: null, xTitle: null };
      charts.set(key, c);
      embed(c, key);
    }
    await c.ready;
    return c;
  }

  async function retitle() {
    for (const [key, c] of charts) {
      if (disposed || c.xTitle === xTitle(key)) continue;
      await c.ready;
      c.view.finalize();
      c.view = null;
      await embed(c, key);
      const s = store.series.get(key);
      await apply(key, { reset: s ? s.committed : [], append: [], tail: s ? s.tail : [] });
    }
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
  const onXlabels = () => {
    if (!lib) return; // charts are made once the library is loaded, with the titles of then
    queue = queue.then(retitle).catch((e) => { status.textContent = "chart error: " + e; });
  };
  model.on("change:xlabels", onXlabels);

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
    extras.dispose();
    clearInterval(timer);
    store.listeners.delete(onChange);
    model.off("change:info", showInfo);
    model.off("change:xlabels", onXlabels);
    for (const c of charts.values()) c.view && c.view.finalize();
  };
}
