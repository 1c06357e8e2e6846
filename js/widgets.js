// nbtracker's notebook widgets: LivePanel, RunTable, ConfigDiff, ChartView, SweepPanel.
//
// This code is part of the library every page loads once (lib.js: with vega, vega-lite and
// vega-embed, ~0.9 MB), carried by the ChartLibrary model; every widget model carries only the
// loader (boot.js), which names that model in its `lib` trait and imports the library from it,
// or over its own comm when that model is out of reach (see loader.js). So a notebook with
// twenty panels holds one copy of it, not twenty.
//
// What Python sends is checked against the contract (contract.js) before a renderer sees it.
// State that outlives a view (a live panel's points) lives here, one per model, keyed by the
// model's `uid` trait: anywidget hands every view its own model proxy, so nothing hung on a
// proxy is shared by two views of one widget.
//
// Everything user-supplied (run names, config values, tags) is put on the page as text
// (textContent), never as HTML.

import { renderChartView } from "./chartview.js";
import { guard, reporter } from "./contract.js";
import { renderConfigDiff } from "./diff.js";
import { panelStore, renderLivePanel } from "./live.js";
import { renderRunTable } from "./runtable.js";
import { leaveStatic, listenForStatic, saveStaticForms } from "./swap.js";
import { renderSweepPanel, sweepStore } from "./sweep.js";

const RENDERERS = {
  live: renderLivePanel,
  diff: renderConfigDiff,
  runs: renderRunTable,
  chart: renderChartView,
  sweep: renderSweepPanel,
  library: () => undefined,
};

const MODELS = new Map(); // uid -> {rep, store}

function modelState(model) {
  const kind = model.get("_kind");
  const uid = model.get("uid");
  let state = uid ? MODELS.get(uid) : undefined;
  if (!state) {
    const rep = reporter(kind);
    // the store listens through the proxy it was made with: made in `initialize`, it lives as
    // long as the model; made by a view (no uid: a widget saved by an older version), with it
    let store = null;
    if (kind === "live") {
      const checked = guard(model, kind, rep);
      store = panelStore(checked);
      listenForStatic(checked);
    } else if (kind === "sweep") {
      store = sweepStore(guard(model, kind, rep));
    }
    state = { rep, store };
    if (uid) MODELS.set(uid, state);
  }
  return state;
}

export default {
  initialize({ model }) {
    modelState(model);
    const uid = model.get("uid"); // also the model's id: the kernel makes it so
    const kind = model.get("_kind");
    const leave = kind === "chart" || kind === "runs" || kind === "sweep";
    // the kernel restarted or went away: the model can no longer draw, its static form stays
    const onLive = () => {
      Promise.resolve(model.widget_manager.get_model(uid))
        .then((real) => { if (real && real.comm_live === false) leaveStatic(model, uid); })
        .catch(() => undefined);
    };
    if (leave) {
      model.on("comm_live_update", onLive);
      try {
        saveStaticForms(model);
      } catch (e) {
        console.warn("nbtracker: could not arrange for static forms to be saved", e);
      }
    }
    return () => {
      if (uid) MODELS.delete(uid);
      if (leave) {
        model.off("comm_live_update", onLive);
        try {
          leaveStatic(model, uid); // closed from the kernel
        } catch (e) {
          console.warn("nbtracker: could not leave a static form in place of a closed widget", e);
        }
      }
    };
  },
  render({ model, el, ...rest }) {
    const kind = model.get("_kind");
    const { rep, store } = modelState(model);
    rep.attach(el);
    const fn = RENDERERS[kind];
    const cleanup = fn ? fn({ ...rest, model: guard(model, kind, rep), el, store }) : undefined;
    return () => {
      rep.detach(el);
      if (typeof cleanup === "function") cleanup();
    };
  },
};
