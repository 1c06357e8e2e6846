import { fmt, h, loadLib } from "./common.js";
import { diffTable } from "./diff.js";

// ---------------------------------------------------------------------------------------
// RunTable: thousands of runs. Sort, filter, group (collapsible, count and mean/min/max per
// numeric column), choose columns, export the visible rows as CSV — all here, on the columns
// Python sent once; only "Compare selected" asks the kernel.
//
// Traits: columns [{key, label, kind}], data [encoded column] (same order, see
// nbtracker/notebook/table.py), count, visible [key], group_by, sort_key, sort_desc, selected,
// comparison. Rows are virtualised: only the window in view (plus a margin) is in the DOM.

export const ROW_H = 24; // px; every body row has this height, so the window is arithmetic
const MAX_H = 540; // px; the scroll box grows up to this (max-height in widgets.css)
const OVERSCAN = 12; // rows drawn beyond each edge of the view
const PICKER_LIMIT = 300; // column picker entries drawn at once (search narrows it)

/** One column's values from its encoding: {v: [...]}, or {d: [...], c: [...] | code}. */
export function decodeColumn(enc, n) {
  if (!enc) return new Array(n).fill(null);
  if (enc.v) return enc.v;
  const d = enc.d || [];
  if (typeof enc.c === "number") return new Array(n).fill(d[enc.c] ?? null);
  const out = new Array(n);
  const c = enc.c || [];
  for (let i = 0; i < n; i++) out[i] = d[c[i]] ?? null;
  return out;
}

/** A CSV field (RFC 4180): quoted when it holds a comma, quote, CR/LF or edge spaces. */
export function csvField(v) {
  if (v === null || v === undefined) return "";
  let s = typeof v === "object" ? JSON.stringify(v) : String(v);
  // text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is kept as
  // text with a leading apostrophe; numbers are written as numbers
  if (typeof v !== "number" && /^[=+\-@\t\r]/.test(s)) s = "'" + s;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCSV(header, rows) {
  const lines = [header.map(csvField).join(",")];
  for (const r of rows) lines.push(r.map(csvField).join(","));
  return lines.join("\r\n") + "\r\n";
}

// no value, or NaN (sent as text): sorted last either way, grouped under "(none)"
const missing = (v) => v === null || v === undefined || v === "" || v === "NaN";
const collator = new Intl.Collator(undefined, { numeric: true });

function cmp(a, b) {
  if (typeof a === "number" && typeof b === "number") return a - b;
  return collator.compare(typeof a === "object" ? JSON.stringify(a) : String(a),
    typeof b === "object" ? JSON.stringify(b) : String(b));
}

export function renderRunTable({ model, el }) {
  const t0 = performance.now();
  const root = h("div", { class: "nbt-runs" });
  const filter = h("input", { class: "nbt-filter", type: "search", placeholder: "filter runs…" });
  const groupSel = h("select", { class: "nbt-group-by", title: "group rows by a column" });
  const picker = h("details", { class: "nbt-columns" });
  const exportBtn = h("button", { class: "nbt-export", text: "Export CSV", title: "the rows shown, in the columns shown" });
  const compare = h("button", { class: "nbt-compare", text: "Compare selected" });
  const count = h("span", { class: "nbt-count" });
  const link = h("span", { class: "nbt-csv" });
  const bar = h("div", { class: "nbt-bar" }, filter, h("label", { class: "nbt-group-label" }, "group by ", groupSel),
    picker, exportBtn, compare, count, link);
  const tableBox = h("div", { class: "nbt-table-box" });
  const comparison = h("div", { class: "nbt-comparison" });
  root.append(bar, tableBox, comparison);
  el.append(root);

  let sortKey = model.get("sort_key") || "created";
  let sortDesc = model.get("sort_desc") ?? true;
  let selected = new Set(model.get("selected") || []);
  const collapsed = new Set();

  // -- the columns ------------------------------------------------------------------------
  let cols = [], byKey = new Map(), n = 0, values = new Map(), texts = new Map(), lowers = new Map();
  function load() {
    cols = model.get("columns") || [];
    const data = model.get("data") || [];
    n = model.get("count") || 0;
    byKey = new Map(cols.map((c, i) => [c.key, { ...c, enc: data[i] }]));
    values = new Map();
    texts = new Map();
    lowers = new Map();
  }
  const col = (key) => {
    let v = values.get(key);
    if (!v) { v = decodeColumn(byKey.get(key)?.enc, n); values.set(key, v); }
    return v;
  };
  const text = (key) => { // shown text, for filtering and column widths
    let t = texts.get(key);
    if (!t) { t = col(key).map((v) => fmt(v)); texts.set(key, t); }
    return t;
  };
  const lower = (key) => {
    let t = lowers.get(key);
    if (!t) { t = text(key).map((s) => s.toLowerCase()); lowers.set(key, t); }
    return t;
  };
  const shownCols = () => {
    const want = new Set(model.get("visible") || []);
    const out = cols.filter((c) => want.has(c.key));
    return out.length ? out : cols.slice(0, 1);
  };

  // -- rows: filter, sort, group ----------------------------------------------------------
  let items = []; // {g: group} or {i: row index}, in display order
  let shown = []; // the columns drawn
  let rowsShown = 0;
  function compute() {
    shown = shownCols();
    let idx = Array.from({ length: n }, (_, i) => i);
    const q = filter.value.trim().toLowerCase();
    if (q) {
      const hay = shown.map((c) => lower(c.key));
      idx = idx.filter((i) => hay.some((t) => t[i].includes(q)));
    }
    if (byKey.has(sortKey)) {
      const v = col(sortKey);
      idx.sort((a, b) => {
        const ma = missing(v[a]), mb = missing(v[b]);
        if (ma || mb) return ma === mb ? a - b : ma ? 1 : -1; // missing last, either way
        const d = cmp(v[a], v[b]);
        return (sortDesc ? -d : d) || a - b;
      });
    }
    rowsShown = idx.length;
    const groupBy = model.get("group_by") || "";
    items = [];
    if (!groupBy || !byKey.has(groupBy)) {
      for (const i of idx) items.push({ i });
      return;
    }
    const gv = col(groupBy), gt = text(groupBy);
    const groups = new Map();
    for (const i of idx) {
      const label = missing(gv[i]) ? "" : gt[i];
      let g = groups.get(label);
      if (!g) { g = { label, value: gv[i], rows: [] }; groups.set(label, g); }
      g.rows.push(i);
    }
    const flip = sortKey === groupBy && sortDesc ? -1 : 1; // groups follow a sort by their key
    const ordered = [...groups.values()].sort((a, b) => {
      const ma = missing(a.value), mb = missing(b.value);
      return ma || mb ? (ma === mb ? 0 : ma ? 1 : -1) : flip * cmp(a.value, b.value);
    });
    for (const g of ordered) {
      items.push({ g });
      if (!collapsed.has(g.label)) for (const i of g.rows) items.push({ i });
    }
  }

  function stats(g, key) {
    g.stats ??= new Map();
    let s = g.stats.get(key);
    if (!s) {
      const v = col(key);
      let sum = 0, cnt = 0, min = Infinity, max = -Infinity;
      for (const i of g.rows) {
        const x = v[i];
        if (typeof x !== "number") continue;
        sum += x; cnt += 1;
        if (x < min) min = x;
        if (x > max) max = x;
      }
      s = cnt ? { mean: sum / cnt, min, max, n: cnt } : null;
      g.stats.set(key, s);
    }
    return s;
  }

  // -- drawing ----------------------------------------------------------------------------
  let body = null, table = null, win = [-1, -1];
  // Run rows are recycled: scrolling refills the same <tr>s with other runs' values.
  let pool = [], shownValues = [];
  function newRow() {
    const tr = h("tr", { class: "nbt-run" }, h("td", { class: "nbt-check" },
      h("input", { type: "checkbox", class: "nbt-select" })));
    for (let k = 0; k < shown.length; k++) tr.append(h("td"));
    return tr;
  }
  function fillRow(tr, i) {
    const id = col("id")[i];
    tr.dataset.id = id;
    const cells = tr.children;
    cells[0].firstChild.checked = selected.has(id);
    for (let k = 0; k < shown.length; k++) {
      const v = shownValues[k][i], td = cells[k + 1];
      const t = fmt(v), cls = typeof v === "number" ? "nbt-num" : "";
      if (td.textContent !== t) td.textContent = t;
      if (td.className !== cls) td.className = cls;
    }
    return tr;
  }
  tableBox.addEventListener("change", (ev) => { // one listener for every row's checkbox
    const cb = ev.target;
    if (!cb.classList || !cb.classList.contains("nbt-select")) return;
    const id = cb.closest("tr").dataset.id;
    if (cb.checked) selected.add(id); else selected.delete(id);
    model.set("selected", [...selected]);
    model.save_changes();
    showCount();
  });
  function groupEl(g) {
    const closed = collapsed.has(g.label);
    const groupBy = model.get("group_by");
    const tr = h("tr", { class: "nbt-group" + (closed ? " nbt-collapsed" : ""), "data-group": g.label, "data-count": String(g.rows.length) },
      h("td", { class: "nbt-toggle", text: closed ? "▸" : "▾" }));
    shown.forEach((c, k) => {
      if (k === 0) {
        const what = byKey.get(groupBy)?.label || groupBy;
        tr.append(h("td", { class: "nbt-group-name", text: `${what}: ${g.label === "" ? "(none)" : g.label} · ${g.rows.length} run${g.rows.length === 1 ? "" : "s"}` }));
        return;
      }
      const s = c.kind === "number" ? stats(g, c.key) : null;
      if (!s) { tr.append(h("td")); return; }
      const td = h("td", { class: "nbt-num nbt-stat", "data-key": c.key, "data-mean": String(s.mean), "data-min": String(s.min), "data-max": String(s.max),
        title: `mean ${fmt(s.mean)} · min ${fmt(s.min)} · max ${fmt(s.max)} (${s.n} runs)` },
      fmt(s.mean), h("span", { class: "nbt-range", text: ` ${fmt(s.min)}–${fmt(s.max)}` }));
      tr.append(td);
    });
    tr.addEventListener("click", () => {
      if (collapsed.has(g.label)) collapsed.delete(g.label); else collapsed.add(g.label);
      refresh(false);
    });
    return tr;
  }
  let above = null, below = null; // spacer rows standing for the rows not drawn
  function spacer() {
    return h("tr", { class: "nbt-spacer" }, h("td", { colSpan: shown.length + 1, style: "height:0;padding:0;border:0" }));
  }

  function widths() { // fixed widths from the longest text, so columns do not jump while scrolling
    const step = n > 2000 ? 7 : 1; // a sample is enough, and spares formatting every value
    return shown.map((c) => {
      const v = col(c.key);
      let longest = c.label.length + 2;
      for (let i = 0; i < n; i += step) { const len = fmt(v[i]).length; if (len > longest) longest = len; }
      if (c.kind === "number" && model.get("group_by")) longest = Math.max(longest, 20);
      return Math.min(320, Math.max(48, Math.round(longest * 7 + 18)));
    });
  }

  function drawHead() {
    const w = widths();
    const colgroup = h("colgroup", {}, h("col", { style: "width:28px" }), ...w.map((px) => h("col", { style: `width:${px}px` })));
    const head = h("tr", {}, h("th", {}),
      ...shown.map((c) => {
        const th = h("th", { "data-key": c.key, class: "nbt-sortable", title: c.key, text: c.label + (c.key === sortKey ? (sortDesc ? " ▼" : " ▲") : "") });
        th.addEventListener("click", () => {
          if (sortKey === c.key) sortDesc = !sortDesc; else { sortKey = c.key; sortDesc = false; }
          model.set("sort_key", sortKey);
          model.set("sort_desc", sortDesc);
          model.save_changes();
          refresh(false);
        });
        return th;
      }));
    body = h("tbody");
    above = spacer();
    below = spacer();
    pool = [];
    shownValues = shown.map((c) => col(c.key));
    table = h("table", { class: "nbt-table nbt-virtual", style: `width:${28 + w.reduce((a, b) => a + b, 0)}px` },
      colgroup, h("thead", {}, head), body);
    tableBox.replaceChildren(table);
  }

  function drawWindow(force) {
    const t = performance.now();
    const top = Math.max(0, tableBox.scrollTop - ROW_H); // less the header row
    const first = Math.floor(top / ROW_H), last = Math.ceil((top + MAX_H) / ROW_H);
    // the rows drawn still cover the view with a margin: nothing to do
    const covered = (win[0] === 0 || first - win[0] >= 2) && (win[1] === items.length || win[1] - last >= 2);
    if (!force && covered) return;
    const start = Math.max(0, first - OVERSCAN);
    const end = Math.min(items.length, last + OVERSCAN);
    win = [start, end];
    above.firstChild.style.height = `${start * ROW_H}px`;
    below.firstChild.style.height = `${(items.length - end) * ROW_H}px`;
    const nodes = [above];
    let j = 0;
    for (let k = start; k < end; k++) {
      const it = items[k];
      if (it.g) { nodes.push(groupEl(it.g)); continue; }
      const tr = pool[j] || (pool[j] = newRow());
      j += 1;
      nodes.push(fillRow(tr, it.i));
    }
    if (!items.length) {
      nodes.push(h("tr", { class: "nbt-empty" }, h("td", { colSpan: shown.length + 1, text: n ? "no runs match the filter" : "no runs" })));
    }
    nodes.push(below);
    const now = body.children;
    if (nodes.length !== now.length || nodes.some((x, q) => now[q] !== x)) body.replaceChildren(...nodes);
    root.dataset.rendered = String(end - start);
    root.dataset.first = String(start);
    root.dataset.drawMs = (performance.now() - t).toFixed(2);
  }

  function showCount() {
    count.textContent = `${rowsShown.toLocaleString()} of ${n.toLocaleString()} runs · ${selected.size} selected`;
  }

  function refresh(keepScroll = true) {
    const t = performance.now();
    compute();
    root.dataset.computeMs = (performance.now() - t).toFixed(1);
    const scroll = tableBox.scrollTop;
    drawHead();
    if (keepScroll) tableBox.scrollTop = scroll;
    drawWindow(true);
    root.dataset.rows = String(rowsShown);
    root.dataset.items = String(items.length);
    root.dataset.sortKey = sortKey;
    root.dataset.groupBy = model.get("group_by") || "";
    showCount();
  }

  let pending = false;
  tableBox.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; drawWindow(false); });
  });

  // -- group by, column picker ------------------------------------------------------------
  function drawGroupChoice() {
    const current = model.get("group_by") || "";
    groupSel.replaceChildren(h("option", { value: "", text: "—" }),
      ...cols.filter((c) => c.key !== "id").map((c) => h("option", { value: c.key, text: c.label, selected: c.key === current })));
    groupSel.value = current;
  }
  groupSel.addEventListener("change", () => {
    collapsed.clear();
    model.set("group_by", groupSel.value);
    model.save_changes();
    refresh(false);
  });

  const search = h("input", { type: "search", class: "nbt-column-search", placeholder: "find a column…" });
  const options = h("div", { class: "nbt-column-list" });
  const summary = h("summary", { class: "nbt-columns-summary" });
  picker.append(summary, h("div", { class: "nbt-column-panel" }, search, options));
  function drawPicker() {
    const want = new Set(model.get("visible") || []);
    summary.textContent = `Columns (${[...want].filter((k) => byKey.has(k)).length} of ${cols.length})`;
    if (!picker.open) return;
    const q = search.value.trim().toLowerCase();
    const match = cols.filter((c) => !q || c.key.toLowerCase().includes(q) || c.label.toLowerCase().includes(q));
    options.replaceChildren(...match.slice(0, PICKER_LIMIT).map((c) => {
      const box = h("input", { type: "checkbox", checked: want.has(c.key), "data-key": c.key });
      box.addEventListener("change", () => {
        const now = new Set(model.get("visible") || []);
        if (box.checked) now.add(c.key); else now.delete(c.key);
        model.set("visible", cols.map((x) => x.key).filter((k) => now.has(k)));
        model.save_changes();
        drawPicker();
        refresh();
      });
      return h("label", { class: "nbt-column-option", title: c.key }, box, " " + c.label);
    }), ...(match.length > PICKER_LIMIT ? [h("div", { class: "nbt-more", text: `… ${match.length - PICKER_LIMIT} more: type to narrow` })] : []));
  }
  picker.addEventListener("toggle", drawPicker);
  search.addEventListener("input", drawPicker);

  // -- CSV --------------------------------------------------------------------------------
  function exportCSV() {
    const groupBy = model.get("group_by") || "";
    const out = [...shown];
    if (groupBy && byKey.has(groupBy) && !out.some((c) => c.key === groupBy)) out.unshift(byKey.get(groupBy));
    const data = out.map((c) => col(c.key));
    const rows = [];
    for (const it of items) if (it.g === undefined) rows.push(data.map((v) => v[it.i]));
    const csv = toCSV(out.map((c) => c.label), rows);
    const before = link.querySelector("a");
    if (before) URL.revokeObjectURL(before.href);
    const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    const a = h("a", { class: "nbt-csv-link", href: url, download: "runs.csv", text: `runs.csv (${rows.length} rows)` });
    link.replaceChildren(a);
    root.dataset.csvRows = String(rows.length);
    a.click();
  }
  exportBtn.addEventListener("click", exportCSV);

  // -- comparison -------------------------------------------------------------------------
  let views = [];
  async function drawComparison() {
    const c = model.get("comparison") || {};
    for (const v of views) v.finalize();
    views = [];
    comparison.replaceChildren();
    if (!c.runs) return;
    comparison.dataset.runs = String(c.runs.length);
    if (c.error && !c.spec) comparison.append(h("div", { class: "nbt-status", text: c.error }));
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

  filter.addEventListener("input", () => refresh(false));
  compare.addEventListener("click", () => {
    model.send({ type: "compare", ids: [...selected] });
  });
  const onData = () => { load(); drawGroupChoice(); drawPicker(); refresh(); };
  const onView = () => { drawGroupChoice(); drawPicker(); refresh(); };
  const onSel = () => { selected = new Set(model.get("selected") || []); refresh(); };
  model.on("change:data", onData);
  model.on("change:visible", onView);
  model.on("change:group_by", onView);
  model.on("change:selected", onSel);
  model.on("change:comparison", drawComparison);
  load();
  drawGroupChoice();
  drawPicker();
  refresh();
  root.dataset.renderStart = String(Math.round(t0));
  requestAnimationFrame(() => { root.dataset.paintMs = String(Math.round(performance.now() - t0)); });
  drawComparison();
  return () => {
    model.off("change:data", onData);
    model.off("change:visible", onView);
    model.off("change:group_by", onView);
    model.off("change:selected", onSel);
    model.off("change:comparison", drawComparison);
    for (const v of views) v.finalize();
  };
}
