// Shared by every widget: loading the chart library, building elements, formatting values.
//
// Everything user-supplied (run names, config values, tags) is put on the page as text
// (textContent), never as HTML.

const LIB_KEY = "__nbtrackerChartLib";

export function loadLib(model) {
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

export function h(tag, attrs = {}, ...children) {
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

export function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e6) ? v.toExponential(3) : String(+v.toPrecision(5));
  }
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

export function duration(s) {
  s = Math.max(0, Math.floor(s));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh ? `${hh}h${String(mm).padStart(2, "0")}m` : mm ? `${mm}m${String(ss).padStart(2, "0")}s` : `${ss}s`;
}
