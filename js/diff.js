import { fmt, h } from "./common.js";

// ---------------------------------------------------------------------------------------
// ConfigDiff: rows {key, values: [...], missing: [...], differs}; "show all" toggles locally.

export function diffTable(runs, rows, showAll) {
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

export function renderConfigDiff({ model, el }) {
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
