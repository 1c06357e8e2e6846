import { fmt, h, loadLib } from "./common.js";
import { diffTable } from "./diff.js";

// ---------------------------------------------------------------------------------------
// RunTable: sortable, filterable; selected runs compared below on request.

export function renderRunTable({ model, el }) {
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
