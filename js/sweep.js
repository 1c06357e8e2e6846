import { duration, fmt, h } from "./common.js";
import { setLatestForm } from "./swap.js";

// ---------------------------------------------------------------------------------------
// SweepPanel: a sweep's trials (a sortable table), the best so far, parallel coordinates (drag
// along an axis to select a range; the table shows the trials selected), the metric against
// each parameter, and the parameters' importance. Drawn as SVG and HTML here, with no library.
//
// Trait: sweep (SweepView, contract.js). While a view is on the page the panel asks the kernel
// for a refresh every POLL_MS (IDLE_POLL_MS once the sweep is over), one request at a time:
// {type: "refresh", form}; the kernel answers {type: "refreshed", reply: true, form} when it is
// idle, and sends {type: "refreshed", reply: false, form} when it refreshed on its own (an agent
// running in it). `form`, the panel's static form now, is what the document saves in place of
// the widget view (swap.js).
//
// Axes follow nbtracker/charts/sweep_svg.py (the static form): numeric when every value is a
// number, log when the parameter's distribution is a log one and every value is positive,
// categorical otherwise; missing, NaN and infinite values sit on a "–" slot under the axis.
//
// Test hooks on the root element: data-sweep (its id), data-trials, data-shown (table rows),
// data-best, data-state, data-axes, data-lines, data-refreshes, data-selected, data-form (the
// first line of the latest static form received).

export const POLL_MS = 3000;
export const IDLE_POLL_MS = 15000;
const STALE_MS = 120000; // a request unanswered this long is given up (the kernel restarted)
const SVGNS = "http://www.w3.org/2000/svg";
const BEST = "#e45756";
const NONE = "#bbbbbb";
const POINT = "#4c78a8";
const RAMP = ["#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989", "#482878", "#440154"];
const NONFINITE = new Set(["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"]);
const OVER = new Set(["finished", "cancelled", "stopped"]);

/** The per-model store (made in `initialize`): the refresh requests and what they bring. */
export function sweepStore(model) {
  const store = { views: 0, waiting: false, sentAt: 0, needForm: true, timer: null, refreshes: 0, listeners: new Set() };
  model.on("msg:custom", (msg) => {
    if (!msg || msg.type !== "refreshed") return;
    if (msg.reply) store.waiting = false;
    store.refreshes += 1;
    if (msg.form) setLatestForm(model.get("uid"), msg.form);
    for (const fn of store.listeners) fn(msg);
  });
  function interval() {
    const v = model.get("sweep") || {};
    const over = OVER.has(v.state) && !(v.counts && (v.counts.running || v.counts.queued));
    return over ? IDLE_POLL_MS : POLL_MS;
  }
  function tick() {
    store.timer = null;
    if (store.views <= 0) return;
    const hidden = typeof document !== "undefined" && document.hidden;
    if (!hidden && (!store.waiting || Date.now() - store.sentAt > STALE_MS)) {
      try {
        model.send({ type: "refresh", form: store.needForm });
        store.waiting = true;
        store.sentAt = Date.now();
        store.needForm = false;
      } catch (e) {
        // the comm is closed: the kernel is gone, the static form stays
      }
    }
    store.timer = setTimeout(tick, interval());
  }
  store.attach = () => {
    store.views += 1;
    if (!store.timer) store.timer = setTimeout(tick, interval());
  };
  store.detach = () => {
    store.views -= 1;
    if (store.views <= 0 && store.timer) { clearTimeout(store.timer); store.timer = null; }
  };
  return store;
}

// -- values and axes ---------------------------------------------------------------------

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
export const isMissing = (v) => v === null || v === undefined || (typeof v === "string" && NONFINITE.has(v));

/** A value as a category's label. */
export function label(v) {
  if (v === null || v === undefined) return "–";
  if (typeof v === "string") return v;
  if (isNum(v)) return fmt(v);
  return JSON.stringify(v);
}

/** About `count` round values (1, 2, 5 × 10^k) covering [lo, hi]. */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi <= lo) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let i = Math.ceil(lo / step - 1e-9); i <= Math.floor(hi / step + 1e-9); i++) out.push(+(i * step).toPrecision(12));
  return out;
}

/**
 * The axis of a parameter holding `values`; `space` is its entry in the view's `space`.
 * {name, kind: "num"|"log"|"cat", lo, hi, cats, marks, pos(v) -> 0..1 or null, ticks()}
 */
export function axisFor(name, values, space) {
  space = space || {};
  const present = values.filter((v) => !isMissing(v));
  const given = Array.isArray(space.values) ? space.values : [];
  let axis;
  if (!present.length || present.every(isNum)) {
    const log = !!space.log && present.length > 0 && present.every((v) => v > 0);
    const marks = given.length && given.length <= 12 && given.every(isNum) && (!log || given.every((v) => v > 0))
      ? [...new Set(given)].sort((a, b) => a - b) : [];
    // the axis spans the values the config offers, tried or not
    const xs = [...present, ...marks].map((v) => (log ? Math.log10(v) : v));
    axis = { name, kind: log ? "log" : "num", lo: xs.length ? Math.min(...xs) : 0, hi: xs.length ? Math.max(...xs) : 1, cats: [], marks };
  } else {
    const cats = [...new Set([...given.map(label), ...present.map(label)])];
    axis = { name, kind: "cat", lo: 0, hi: 1, cats, marks: [] };
  }
  const index = new Map(axis.cats.map((c, i) => [c, i]));
  axis.pos = (v) => {
    if (axis.kind === "cat") {
      if (v === null || v === undefined) return null;
      const i = index.get(label(v));
      if (i === undefined) return null;
      return axis.cats.length === 1 ? 0.5 : i / (axis.cats.length - 1);
    }
    if (!isNum(v) || (axis.kind === "log" && v <= 0)) return null;
    const x = axis.kind === "log" ? Math.log10(v) : v;
    const span = axis.hi - axis.lo;
    return span <= 0 ? 0.5 : (x - axis.lo) / span;
  };
  axis.ticks = () => {
    const inside = (t) => t[0] !== null && t[0] >= -1e-9 && t[0] <= 1 + 1e-9;
    if (axis.kind === "cat") {
      const step = Math.max(1, Math.ceil(axis.cats.length / 12));
      return axis.cats.map((c, i) => [axis.cats.length === 1 ? 0.5 : i / (axis.cats.length - 1), c]).filter((_, i) => i % step === 0);
    }
    if (axis.marks.length) {
      const shown = axis.marks.map((m) => [axis.pos(m), fmt(m)]).filter(inside);
      if (shown.length) return shown;
    }
    if (axis.kind === "log") {
      const lo = Math.floor(axis.lo), hi = Math.ceil(axis.hi);
      if (hi - lo < 1) return [[0.5, fmt(10 ** axis.lo)]];
      const stride = Math.max(1, Math.ceil((hi - lo) / 6));
      const steps = hi - lo <= 2 ? [1, 2, 5] : [1]; // a span of few decades takes 2 and 5 times each power of ten too
      const out = [];
      for (let e = lo; e <= hi; e += stride) for (const m of steps) out.push([axis.pos(m * 10 ** e), fmt(+(m * 10 ** e).toPrecision(12))]);
      return out.filter(inside);
    }
    if (axis.hi <= axis.lo) return [[0.5, fmt(axis.lo)]];
    return niceTicks(axis.lo, axis.hi, 5).map((t) => [axis.pos(t), fmt(t)]).filter(inside);
  };
  return axis;
}

/** Each value's place from worst (0) to best (1) (null where missing). */
export function goodness(values, goal) {
  const ok = values.filter(isNum);
  if (!ok.length) return values.map(() => null);
  const lo = Math.min(...ok), hi = Math.max(...ok);
  return values.map((v) => {
    if (!isNum(v)) return null;
    const t = hi === lo ? 1 : (v - lo) / (hi - lo);
    return goal === "maximize" ? t : 1 - t;
  });
}

export const color = (t) => (t === null ? NONE : RAMP[Math.min(RAMP.length - 1, Math.max(0, Math.round(t * (RAMP.length - 1))))]);

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

const short = (s, n = 16) => (s.length <= n ? s : s.slice(0, n - 1) + "…");

function trialTitle(t, names, metric) {
  const parts = [`trial ${t.number} (${t.state})`];
  for (const k of names) if (k in t.params) parts.push(`${k} = ${label(t.params[k])}`);
  if (metric) parts.push(`${metric.name} = ${t.value === null ? "–" : fmt(t.value)}`);
  return parts.join("\n");
}

// -- the panel -----------------------------------------------------------------------------

export function renderSweepPanel({ model, el, store }) {
  const root = h("div", { class: "nbt-sweep", "data-trials": "0", "data-refreshes": "0" });
  const title = h("span", { class: "nbt-name" });
  const badge = h("span", { class: "nbt-state" });
  const stats = h("span", { class: "nbt-stats" });
  const head = h("div", { class: "nbt-head" }, title, badge, stats);
  const best = h("div", { class: "nbt-sweep-best" });
  const status = h("div", { class: "nbt-status" });
  const parBox = h("div", { class: "nbt-parcoords" });
  const parNote = h("div", { class: "nbt-hint" });
  const scatters = h("div", { class: "nbt-scatters" });
  const importance = h("div", { class: "nbt-importance" });
  const tableBar = h("div", { class: "nbt-bar" });
  const tableBox = h("div", { class: "nbt-sweep-table-box" });
  const fold = (name, ...body) => h("details", { class: "nbt-fold", open: true, "data-section": name }, h("summary", { text: name }), ...body);
  root.append(head, best, status,
    fold("parallel coordinates", parNote, parBox),
    fold("metric against each parameter", scatters),
    fold("parameter importance", importance),
    fold("trials", tableBar, tableBox));
  el.append(root);

  let sortKey = "number", sortDesc = true;
  const brushes = new Map(); // axis index -> [lo, hi] in 0..1
  let state = null; // what the last draw computed: {view, trials, axes, rows, lines: Map(number -> path), rowsEl: Map}

  function selected(t) {
    if (!state || !brushes.size) return true;
    const r = state.rows.get(t.number);
    if (!r) return false;
    for (const [i, [lo, hi]] of brushes) {
      const p = r[i];
      if (p === null || p < lo || p > hi) return false;
    }
    return true;
  }

  // -- header and best --------------------------------------------------------------------
  function drawHead(v) {
    title.textContent = `sweep ${v.name || v.id || ""}`;
    title.title = `${v.project}/${v.id}`;
    badge.textContent = v.state || "";
    badge.className = "nbt-state nbt-state-" + (v.state || "none");
    const counts = v.counts || {};
    const total = Object.entries(counts).filter(([k]) => k !== "queued").reduce((a, [, n]) => a + n, 0);
    const order = ["running", "finished", "pruned", "failed", "crashed", "interrupted", "queued"];
    const parts = [...order.filter((k) => counts[k]), ...Object.keys(counts).filter((k) => !order.includes(k) && counts[k]).sort()]
      .map((k) => `${counts[k]} ${k}`);
    const bits = [v.method, v.metric ? `${v.metric.name} (${v.metric.goal})` : "no metric",
      `${total} trial${total === 1 ? "" : "s"}` + (parts.length ? `: ${parts.join(", ")}` : "")];
    if (v.remaining !== null && v.remaining !== undefined) bits.push(`${v.remaining} left`);
    bits.push(`${v.project}/${v.id}`);
    stats.textContent = bits.join(" · ");
    const b = (v.trials || []).find((t) => t.number === v.best);
    best.replaceChildren();
    if (!v.metric) best.textContent = "no metric: the sweep names none, so no trial is best";
    else if (!b) best.textContent = `best: no finished trial with ${v.metric.name} yet`;
    else {
      const params = (v.parameters || []).filter((k) => k in b.params).map((k) => `${k}=${label(b.params[k])}`).join(", ");
      best.append(h("b", { text: `best: trial ${b.number}` }), ` · ${v.metric.name} ${fmt(b.value)} (${v.metric.goal}) · ${params}` + (b.run_id ? ` · run ${b.run_id}` : ""));
    }
    status.textContent = v.error || "";
    root.dataset.state = v.state || "";
    root.dataset.sweep = v.id || "";
    root.dataset.best = v.best === null || v.best === undefined ? "" : String(v.best);
  }

  // -- parallel coordinates ---------------------------------------------------------------
  function drawParallel(v, trials, axes, names) {
    const n = axes.length;
    parBox.replaceChildren();
    brushesValid(n);
    if (!trials.length || !names.length) {
      parNote.textContent = names.length ? "the charts appear once a trial has run" : "the sweep varies no parameter";
      root.dataset.axes = "0";
      root.dataset.lines = "0";
      return new Map();
    }
    const padL = 64, padR = 64, padT = 30, padB = 30;
    let gap = 130;
    const avail = Math.max(360, (el.clientWidth || 900) - 20);
    if (n > 1 && padL + padR + gap * (n - 1) > avail) gap = Math.max(70, (avail - padL - padR) / (n - 1));
    const width = Math.max(360, padL + padR + gap * Math.max(1, n - 1));
    if (n > 1) gap = (width - padL - padR) / (n - 1);
    const height = 280, hh = height - padT - padB;
    const xs = axes.map((_, i) => (n > 1 ? padL + i * gap : width / 2));
    const missY = padT + hh + 14;
    const yOf = (p) => (p === null ? missY : padT + hh - p * hh);
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "nbt-parcoords-svg", "font-family": "sans-serif" });
    const linesG = svg("g", { fill: "none" });
    chart.append(linesG);
    const values = trials.map((t) => t.value);
    const good = v.metric ? goodness(values, v.metric.goal) : values.map(() => null);
    const lines = new Map();
    trials.forEach((t, k) => {
      const r = state.rows.get(t.number);
      const d = "M" + r.map((p, i) => `${xs[i].toFixed(1)} ${yOf(p).toFixed(1)}`).join("L");
      const isBest = t.number === v.best;
      const path = svg("path", {
        d, stroke: isBest ? BEST : v.metric ? color(good[k]) : POINT, "stroke-width": isBest ? 2.5 : 1.2,
        class: "nbt-line" + (isBest ? " nbt-best" : ""), "data-trial": t.number,
      });
      path.append(svg("title", {}, trialTitle(t, names, v.metric)));
      lines.set(t.number, path);
    });
    // the best on top
    for (const [num, p] of lines) if (num !== v.best) linesG.append(p);
    if (lines.has(v.best)) linesG.append(lines.get(v.best));
    linesG.addEventListener("mouseover", (ev) => hover(ev.target.dataset && ev.target.dataset.trial));
    linesG.addEventListener("mouseout", () => hover(null));
    const axesG = svg("g", { "font-size": 9, fill: "#333" });
    axes.forEach((a, i) => {
      const x = xs[i];
      const g = svg("g", { class: "nbt-axis", "data-axis": a.name, "data-kind": a.kind });
      g.append(svg("line", { x1: x, x2: x, y1: padT, y2: padT + hh, stroke: "#555" }));
      const t = svg("text", { x, y: padT - 12, "text-anchor": "middle", "font-size": 11, fill: "#222" }, short(a.name, 20));
      t.append(svg("title", {}, a.name + (a.kind === "log" ? " (log scale)" : "")));
      g.append(t);
      const side = i === n - 1 && n > 1 ? 1 : -1; // the last axis is labelled on its right
      for (const [p, lb] of a.ticks()) {
        const y = yOf(p);
        g.append(svg("line", { x1: x + 3 * side, x2: x, y1: y, y2: y, stroke: "#555" }));
        g.append(svg("text", { x: x + 5 * side, y: y + 3, "text-anchor": side > 0 ? "start" : "end", stroke: "#fff", "stroke-width": 3, "paint-order": "stroke" }, short(lb)));
      }
      g.append(svg("text", { x: x + 5 * side, y: missY + 3, "text-anchor": side > 0 ? "start" : "end", fill: "#999" }, "–"));
      // brushing: drag along the axis to keep the trials in that range
      const hit = svg("rect", { x: x - 10, y: padT - 4, width: 20, height: hh + 8, fill: "transparent", class: "nbt-brush-area", style: "cursor:ns-resize" });
      const band = svg("rect", { x: x - 7, width: 14, fill: "rgba(76,120,168,0.25)", stroke: "#4c78a8", class: "nbt-brush", visibility: "hidden" });
      const showBand = (lo, hi) => {
        band.setAttribute("y", yOf(hi).toFixed(1));
        band.setAttribute("height", Math.max(1, yOf(lo) - yOf(hi)).toFixed(1));
        band.setAttribute("visibility", "visible");
      };
      if (brushes.has(i)) showBand(...brushes.get(i));
      hit.addEventListener("pointerdown", (ev) => {
        ev.preventDefault();
        const box = chart.getBoundingClientRect();
        const scale = height / box.height;
        const at = (e) => Math.min(1, Math.max(0, (padT + hh - (e.clientY - box.top) * scale) / hh));
        const start = at(ev);
        let moved = false;
        const move = (e) => {
          const p = at(e);
          if (Math.abs(p - start) < 0.01) return;
          moved = true;
          showBand(Math.min(start, p), Math.max(start, p));
        };
        const up = (e) => {
          window.removeEventListener("pointermove", move);
          window.removeEventListener("pointerup", up);
          const p = at(e);
          if (moved && Math.abs(p - start) >= 0.01) brushes.set(i, [Math.min(start, p), Math.max(start, p)]);
          else { brushes.delete(i); band.setAttribute("visibility", "hidden"); }
          applySelection();
        };
        window.addEventListener("pointermove", move);
        window.addEventListener("pointerup", up);
      });
      g.append(band, hit);
      axesG.append(g);
    });
    chart.append(axesG);
    const legend = h("div", { class: "nbt-hint nbt-parcoords-legend" });
    if (v.metric) {
      const ok = values.filter(isNum);
      const bar = h("span", { class: "nbt-ramp", style: `background:linear-gradient(90deg,${RAMP.join(",")})` });
      const [worst, bestV] = ok.length ? (v.metric.goal === "maximize" ? [Math.min(...ok), Math.max(...ok)] : [Math.max(...ok), Math.min(...ok)]) : [null, null];
      legend.append(`${v.metric.name}: ${worst === null ? "–" : fmt(worst)} `, bar, ` ${bestV === null ? "–" : fmt(bestV)} (better) · grey: no value · red: best · drag along an axis to select`);
    } else legend.append("drag along an axis to select");
    parBox.append(h("div", { class: "nbt-parcoords-scroll" }, chart), legend);
    parNote.textContent = "";
    root.dataset.axes = String(n);
    root.dataset.lines = String(lines.size);
    return lines;
  }

  function brushesValid(n) {
    for (const i of [...brushes.keys()]) if (i >= n) brushes.delete(i);
  }

  let hovered = null;
  function hover(num) {
    if (!state) return;
    if (hovered !== null) {
      const p = state.lines.get(hovered), r = state.rowEls.get(hovered);
      if (p) p.classList.remove("nbt-hover");
      if (r) r.classList.remove("nbt-hover");
    }
    hovered = num === null || num === undefined || num === "" ? null : Number(num);
    if (hovered === null) return;
    const p = state.lines.get(hovered), r = state.rowEls.get(hovered);
    if (p) { p.classList.add("nbt-hover"); p.parentNode.append(p); }
    if (r) r.classList.add("nbt-hover");
  }

  // -- metric against each parameter --------------------------------------------------------
  function drawScatters(v, trials, axes, names) {
    scatters.replaceChildren();
    if (!v.metric) { scatters.append(h("div", { class: "nbt-hint", text: "the sweep names no metric" })); return; }
    const values = trials.map((t) => t.value);
    if (!values.some(isNum)) { scatters.append(h("div", { class: "nbt-hint", text: `no trial has a value of ${v.metric.name} yet` })); return; }
    const yAxis = axisFor(v.metric.name, values, {});
    if (yAxis.hi === yAxis.lo) { const pad = Math.abs(yAxis.lo) * 0.05 || 1; yAxis.lo -= pad; yAxis.hi += pad; }
    const width = 250, height = 180, padL = 46, padB = 30, padT = 8;
    const w = width - padL - 10, hh = height - padT - padB;
    names.forEach((name, k) => {
      const a = axes[k];
      const sx = (p) => padL + w * (a.kind === "cat" ? 0.08 + 0.84 * p : p);
      const sy = (p) => padT + hh - p * hh;
      const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "nbt-scatter", "data-param": name, "font-family": "sans-serif" });
      const g = svg("g", { "font-size": 9, fill: "#333" });
      for (const [p, lb] of yAxis.ticks()) {
        g.append(svg("line", { x1: padL, x2: padL + w, y1: sy(p), y2: sy(p), stroke: "#eee" }));
        g.append(svg("text", { x: padL - 4, y: sy(p) + 3, "text-anchor": "end" }, lb));
      }
      for (const [p, lb] of a.ticks()) {
        g.append(svg("line", { x1: sx(p), x2: sx(p), y1: padT + hh, y2: padT + hh + 3, stroke: "#888" }));
        g.append(svg("text", { x: sx(p), y: padT + hh + 13, "text-anchor": "middle" }, short(lb, 10)));
      }
      g.append(svg("path", { d: `M${padL} ${padT}V${padT + hh}H${padL + w}`, fill: "none", stroke: "#888" }));
      g.append(svg("text", { x: padL + w / 2, y: padT + hh + 26, "text-anchor": "middle", fill: "#555" }, short(name + (a.kind === "log" ? " (log)" : ""), 34)));
      const cy = padT + hh / 2;
      g.append(svg("text", { x: 8, y: cy, "text-anchor": "middle", fill: "#555", transform: `rotate(-90 8 ${cy})` }, short(v.metric.name, 24)));
      chart.append(g);
      const dots = svg("g", {});
      let bestDot = null;
      trials.forEach((t, i) => {
        let px = state.rows.get(t.number)[k];
        const py = yAxis.pos(t.value);
        if (px === null || py === null) return;
        if (a.kind === "cat") px = Math.min(1, Math.max(0, px + (((t.number * 0.618034) % 1) - 0.5) * 0.12 / Math.max(1, a.cats.length)));
        const isBest = t.number === v.best;
        const c = svg("circle", { cx: sx(px).toFixed(1), cy: sy(py).toFixed(1), r: isBest ? 4.5 : 3, fill: isBest ? BEST : POINT, "fill-opacity": isBest ? 1 : 0.6, class: isBest ? "nbt-best" : "", "data-trial": t.number });
        c.append(svg("title", {}, trialTitle(t, names, v.metric)));
        if (isBest) bestDot = c; else dots.append(c);
      });
      if (bestDot) dots.append(bestDot);
      chart.append(dots);
      scatters.append(chart);
    });
  }

  // -- importance ---------------------------------------------------------------------------
  function drawImportance(v) {
    importance.replaceChildren();
    const imp = v.importance;
    if (!v.metric) { importance.append(h("div", { class: "nbt-hint", text: "the sweep names no metric" })); return; }
    if (!imp || !Object.keys(imp).length) {
      importance.append(h("div", { class: "nbt-hint", text: `computed once 2 trials have finished with a value of ${v.metric.name}` }));
      return;
    }
    const items = Object.entries(imp).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const top = Math.max(...items.map(([, x]) => x)) || 1;
    for (const [name, x] of items) {
      importance.append(h("div", { class: "nbt-imp-row", "data-param": name, "data-share": String(x) },
        h("span", { class: "nbt-imp-name", text: name, title: name }),
        h("span", { class: "nbt-imp-track" }, h("span", { class: "nbt-imp-bar", style: `width:${(100 * Math.max(0, x) / top).toFixed(1)}%` })),
        h("span", { class: "nbt-imp-value", text: `${(100 * x).toFixed(1)}%` })));
    }
    if (v.importance_trials) importance.append(h("div", { class: "nbt-hint", text: `Optuna's parameter importance, from ${v.importance_trials} finished trials` }));
  }

  // -- the table ------------------------------------------------------------------------------
  function columns(v) {
    return [
      { key: "number", label: "#", num: true, get: (t) => t.number },
      { key: "state", label: "state", get: (t) => t.state },
      ...(v.parameters || []).map((k) => ({ key: "p:" + k, label: k, param: k, get: (t) => (k in t.params ? t.params[k] : null) })),
      { key: "value", label: v.metric ? v.metric.name : "metric", num: true, get: (t) => t.value },
      { key: "duration", label: "duration", num: true, get: (t) => liveDuration(t, v) },
      { key: "run_id", label: "run", get: (t) => t.run_id },
    ];
  }
  let shownAt = Date.now() / 1000; // the browser's clock when the view arrived
  function liveDuration(t, v) {
    if (t.state === "running" && isNum(t.started)) return Math.max(0, (v.now || shownAt) + (Date.now() / 1000 - shownAt) - t.started);
    return isNum(t.duration) ? t.duration : null;
  }
  const durText = (d) => (d === null ? "" : d < 10 ? `${d.toFixed(1)}s` : duration(d));
  const collator = new Intl.Collator(undefined, { numeric: true });
  function cmp(a, b) { // neither is missing (sorted last before)
    if (isNum(a) && isNum(b)) return a - b;
    return collator.compare(label(a), label(b));
  }

  function drawTable(v, trials) {
    const cols = columns(v);
    const rows = trials.filter(selected);
    const get = (cols.find((c) => c.key === sortKey) || cols[0]).get;
    rows.sort((a, b) => {
      const va = get(a), vb = get(b);
      const missingA = isMissing(va), missingB = isMissing(vb);
      if (missingA || missingB) return missingA === missingB ? b.number - a.number : missingA ? 1 : -1; // missing last
      const d = cmp(va, vb);
      return (sortDesc ? -d : d) || b.number - a.number;
    });
    const headRow = h("tr", {}, ...cols.map((c) => {
      const th = h("th", { class: "nbt-sortable", "data-key": c.key, title: c.label, text: c.label + (c.key === sortKey ? (sortDesc ? " ▼" : " ▲") : "") });
      th.addEventListener("click", () => {
        if (sortKey === c.key) sortDesc = !sortDesc; else { sortKey = c.key; sortDesc = c.key === "number"; }
        draw();
      });
      return th;
    }));
    const rowEls = new Map();
    const body = h("tbody");
    const frag = document.createDocumentFragment();
    for (const t of rows) {
      const isBest = t.number === v.best;
      const tr = h("tr", { class: "nbt-trial" + (isBest ? " nbt-best" : ""), "data-trial": String(t.number), "data-state": t.state });
      if (t.exit) tr.title = t.exit;
      for (const c of cols) {
        const val = c.get(t);
        const td = document.createElement("td");
        if (c.key === "state") td.append(h("span", { class: "nbt-state nbt-state-" + t.state, text: t.state }));
        else if (c.key === "duration") { td.textContent = durText(val); td.className = "nbt-num nbt-duration"; }
        else {
          td.textContent = val === null || val === undefined ? "" : c.param ? label(val) : fmt(val);
          if (c.num || isNum(val)) td.className = "nbt-num";
        }
        tr.append(td);
      }
      rowEls.set(t.number, tr);
      frag.append(tr);
    }
    body.append(frag);
    if (!rows.length) body.append(h("tr", { class: "nbt-empty" }, h("td", { colSpan: cols.length, text: trials.length ? "no trial in the range selected on the chart" : "no trial has run yet" })));
    body.addEventListener("mouseover", (ev) => { const tr = ev.target.closest && ev.target.closest("tr.nbt-trial"); hover(tr ? tr.dataset.trial : null); });
    body.addEventListener("mouseleave", () => hover(null));
    tableBox.replaceChildren(h("table", { class: "nbt-table nbt-sweep-table" }, h("thead", {}, headRow), body));
    tableBar.replaceChildren();
    const hidden = v.queued_hidden || 0;
    tableBar.append(h("span", { class: "nbt-count", text: `${rows.length} of ${trials.length} trials` + (hidden ? ` (and ${hidden} more queued)` : "") }));
    if (brushes.size) {
      const clear = h("button", { class: "nbt-clear-selection", type: "button", text: "clear selection" });
      clear.addEventListener("click", () => { brushes.clear(); draw(); });
      tableBar.append(clear);
    }
    root.dataset.shown = String(rows.length);
    root.dataset.selected = brushes.size ? String(rows.length) : "";
    return rowEls;
  }

  function applySelection() {
    if (!state) return;
    for (const t of state.trials) {
      const p = state.lines.get(t.number);
      if (p) p.classList.toggle("nbt-dim", !selected(t));
    }
    state.rowEls = drawTable(state.view, state.trials);
  }

  // -- drawing it all -------------------------------------------------------------------------
  function draw() {
    const t0 = performance.now();
    const v = model.get("sweep") || {};
    shownAt = Date.now() / 1000;
    if (!v.id) { stats.textContent = "reading the sweep…"; return; }
    drawHead(v);
    const names = v.parameters || [];
    const all = v.trials || [];
    const charted = all.filter((t) => t.state !== "queued");
    const axes = names.map((k) => axisFor(k, charted.map((t) => t.params[k] ?? null), (v.space || {})[k]));
    if (v.metric) axes.push(axisFor(v.metric.name, charted.map((t) => t.value), {}));
    const rows = new Map(charted.map((t) => [t.number, axes.map((a, i) => a.pos(i < names.length ? t.params[names[i]] ?? null : t.value))]));
    state = { view: v, trials: all, axes, rows, lines: new Map(), rowEls: new Map() };
    state.lines = drawParallel(v, charted, axes, names);
    drawScatters(v, charted, axes, names);
    drawImportance(v);
    state.rowEls = drawTable(v, all);
    for (const t of all) { const p = state.lines.get(t.number); if (p && !selected(t)) p.classList.add("nbt-dim"); }
    root.dataset.trials = String(all.length);
    root.dataset.drawMs = (performance.now() - t0).toFixed(1);
  }

  function tickDurations() { // a running trial's duration grows between refreshes
    if (!state) return;
    for (const t of state.trials) {
      if (t.state !== "running") continue;
      const tr = state.rowEls.get(t.number);
      const td = tr && tr.querySelector(".nbt-duration");
      if (td) td.textContent = durText(liveDuration(t, state.view));
    }
  }

  const onMsg = (msg) => {
    root.dataset.refreshes = String(store ? store.refreshes : 0);
    if (msg && msg.form && typeof msg.form["text/plain"] === "string") root.dataset.form = msg.form["text/plain"].split("\n")[0];
  };
  model.on("change:sweep", draw);
  if (store) { store.listeners.add(onMsg); store.attach(); }
  const timer = setInterval(tickDurations, 1000);
  draw();
  return () => {
    clearInterval(timer);
    model.off("change:sweep", draw);
    if (store) { store.listeners.delete(onMsg); store.detach(); }
  };
}
