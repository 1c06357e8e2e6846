// A finished panel becomes static in the document itself.
//
// The kernel replaces a finished panel's output with its static form through the output's
// display_id. JupyterLab and Notebook 7 deliver that update only to the cell that sent it, so a
// panel shown in one cell and finished from another would stay a widget, and a notebook saved
// without widget state would show "model not found" where its charts were. So the kernel also
// sends the panel {type: "static", model_id, bundle}, and the panel's front-end replaces every
// output of the open document that shows it with that bundle — the document then saves the
// static form. Front-ends without a document model here (VS Code, Colab, the classic notebook
// handle the display update themselves) are left alone.

const WIDGET_VIEW = "application/vnd.jupyter.widget-view+json";

// model id -> the latest static form the kernel sent for a widget whose static form changes
// while it lives (a sweep panel): saved, and left behind, instead of the one it was shown with
const LATEST = new Map();

export function setLatestForm(modelId, bundle) {
  if (modelId && bundle && typeof bundle === "object") LATEST.set(modelId, bundle);
}

export function latestForm(modelId) {
  return LATEST.get(modelId);
}

function notebookModel(model) {
  try {
    const manager = model.widget_manager;
    const context = manager && (manager.context || manager._context);
    if (!context || context.isDisposed) return null;
    const nb = context.model;
    return nb && nb.cells && !nb.isDisposed ? nb : null;
  } catch (e) {
    return null;
  }
}

function eachOutput(nb, fn) {
  const cells = nb.cells;
  for (let c = 0; c < cells.length; c++) {
    const outputs = cells.get(c).outputs;
    if (!outputs) continue;
    for (let i = 0; i < outputs.length; i++) fn(outputs, i, outputs.get(i).data || {});
  }
}

/** Replace the outputs showing widget `msg.model_id` by `msg.bundle`; returns how many. */
export function replaceOutputs(model, msg) {
  const nb = notebookModel(model);
  if (!nb || !msg || !msg.model_id || !msg.bundle) return 0;
  let replaced = 0;
  eachOutput(nb, (outputs, i, data) => {
    const view = data[WIDGET_VIEW];
    if (view && view.model_id === msg.model_id) {
      outputs.set(i, { output_type: "display_data", data: msg.bundle, metadata: {} });
      replaced += 1;
    }
  });
  return replaced;
}

/**
 * A comparison or run table whose model is gone (the kernel restarted or shut down, or the
 * widget was closed) can no longer draw: its outputs keep only the static form they carry
 * beside the widget view, so the document shows — and saves — charts instead of
 * "model not found". Returns how many outputs were changed.
 */
export function leaveStatic(model, modelId) {
  const nb = notebookModel(model);
  if (!nb || !modelId) return 0;
  let changed = 0;
  const latest = LATEST.get(modelId);
  eachOutput(nb, (outputs, i, data) => {
    const view = data[WIDGET_VIEW];
    if (view && view.model_id === modelId && (latest || data["text/html"])) {
      const rest = latest ? { ...latest } : { ...data };
      delete rest[WIDGET_VIEW];
      outputs.set(i, { output_type: "display_data", data: rest, metadata: {} });
      changed += 1;
    }
  });
  return changed;
}

export function listenForStatic(model) {
  model.on("msg:custom", (msg) => {
    if (msg && msg.type === "static") {
      try {
        replaceOutputs(model, msg);
      } catch (e) {
        console.warn("nbtracker: could not replace a finished panel's output", e);
      }
    }
  });
}

/**
 * What the document saves: an output of ours that carries its static form beside a widget view
 * (a comparison, a run table, a sweep panel) is written to the file without the view — a sweep
 * panel with the latest form the kernel sent. The open page keeps
 * the live widget; the file — reopened later without the kernel or widget state, in any
 * viewer — shows the static form rather than "model not found". Installed once per document,
 * on its serialisation only (the document itself is not changed).
 */
export function saveStaticForms(model) {
  const nb = notebookModel(model);
  if (!nb || nb.__nbtrackerSavesStatic || typeof nb.toJSON !== "function") return false;
  const toJSON = nb.toJSON;
  nb.toJSON = function (...args) {
    const json = toJSON.apply(this, args);
    try {
      for (const cell of (json && json.cells) || []) {
        for (const out of cell.outputs || []) {
          const data = out.data;
          const html = data && data["text/html"];
          const text = Array.isArray(html) ? html.join("") : html;
          const latest = data && data[WIDGET_VIEW] && LATEST.get(data[WIDGET_VIEW].model_id);
          if (latest) {
            out.data = { ...latest };
            delete out.data[WIDGET_VIEW];
          } else if (data && data[WIDGET_VIEW] && typeof text === "string" && text.includes("nbt-static")) {
            const rest = { ...data }; // a copy: the output's own data may be this very object
            delete rest[WIDGET_VIEW];
            out.data = rest;
          }
        }
      }
    } catch (e) {
      console.warn("nbtracker: could not save the static forms", e);
    }
    return json;
  };
  nb.__nbtrackerSavesStatic = true;
  return true;
}

