// What every widget model carries (static/widgets.js): a loader. It fetches the library —
// vega and the widgets' code, one bundle — from the ChartLibrary model (or, when that model
// cannot be reached, over the widget's own comm), once per page, and hands the widget to it.
//
// What happens to the model while the library loads — custom messages and changes of the
// `snapshot` trait, in the order they came — is logged, and replayed in that order once the
// widget has started from the state it had when the log began. So a live panel misses no
// point and applies none twice, however long the library takes.
import { loadLib } from "./loader.js";

const NOW = Symbol("now");

function catchingUp(model, initial) {
  let snapshot = initial; // the snapshot the widget sees while it starts and catches up
  const custom = [];
  const snaps = [];
  const wrapper = {
    ...model,
    get(name) {
      return name === "snapshot" && snapshot !== NOW ? snapshot : model.get(name);
    },
    on(name, callback, context) {
      model.on(name, callback, context);
      if (name === "msg:custom") custom.push(callback);
      else if (name === "change:snapshot") snaps.push(callback);
    },
  };
  function replay(log) {
    for (const [kind, a, b] of log) {
      if (kind === "msg") for (const fn of custom) fn(a, b);
      else {
        snapshot = a;
        for (const fn of snaps) fn();
      }
    }
    snapshot = NOW;
  }
  return { wrapper, replay };
}

export default {
  initialize({ model, ...rest }) {
    if (model.get("_kind") === "library") return undefined;
    const log = [];
    const initial = model.get("snapshot");
    const onMsg = (msg, buffers) => log.push(["msg", msg, buffers]);
    const onSnapshot = () => log.push(["snapshot", model.get("snapshot")]);
    model.on("msg:custom", onMsg);
    model.on("change:snapshot", onSnapshot);
    const stop = () => {
      model.off("msg:custom", onMsg);
      model.off("change:snapshot", onSnapshot);
    };
    let cleanup;
    let gone = false;
    loadLib(model).then((lib) => {
      stop();
      if (gone) return;
      const { wrapper, replay } = catchingUp(model, initial);
      cleanup = lib.widget.initialize({ ...rest, model: wrapper });
      replay(log);
      log.length = 0;
    }, (e) => {
      stop();
      console.warn("nbtracker: could not load the widgets' library", e);
    });
    return () => {
      gone = true;
      if (typeof cleanup === "function") cleanup();
    };
  },
  async render(ctx) {
    if (ctx.model.get("_kind") === "library") return undefined;
    let lib;
    try {
      lib = await loadLib(ctx.model);
    } catch (e) {
      ctx.el.textContent = "could not load nbtracker's chart library: " + e;
      return undefined;
    }
    return lib.widget.render(ctx);
  },
};
