// The contract between the widgets' Python side and this front-end: every synced trait and
// custom message, typed (JSDoc) and stated as data that small validators check at runtime.
//
// nbtracker/notebook/contract.py states the same shapes as TypedDicts; tests/test_live.py checks
// that CONTRACT below equals what Python derives from them. Grammar (shared with Python):
//   "str" | "num" (finite) | "bool" | "any" | "null" | {const: v} | {list: S} | {map: S}
//   | {tuple: [S, ...]} | {oneOf: [S, ...]} | {fields: {name: S}, optional: [name, ...]}
// A dict with fields is closed: a key it does not name is an error.
//
// A value that breaks the contract is never thrown into the page: it is reported on the
// widget's element (`data-contract-errors`, a JSON list) and in the console, and the renderer
// gets a safe empty value (or the message is dropped) instead.

/** @typedef {[number[], number[]]} XY  xs and ys of one series, equal lengths */
/**
 * @typedef {Object} LiveInfo  LivePanel.info ({} until Python sets it)
 * @property {string} name
 * @property {string} id
 * @property {string} project
 * @property {string} state
 * @property {number} step
 * @property {number} started  unix seconds
 * @property {number} updated  unix seconds
 * @property {string} mode
 * @property {string} [upload]  an online run's upload state, in words
 * @property {Object<string, any>} [summary]  once the run is over
 * @property {string} [error]  a display problem on the Python side
 */
/** @typedef {{c: XY, t: XY}} SeriesSnapshot  committed points and the open tail */
/** @typedef {Object<string, SeriesSnapshot>} Snapshot  LivePanel.snapshot */
/** @typedef {Object<string, string>} XLabels  LivePanel.xlabels: metric -> its x metric ("step" when absent) */
/** @typedef {{reset: XY|null, append: XY|null, tail: XY}} SeriesDelta */
/** @typedef {{type: "points", series: Object<string, SeriesDelta>}} PointsMessage  Python -> LivePanel */
/** @typedef {{type: "static", model_id: string, bundle: Object<string, any>}} StaticMessage  Python -> LivePanel once finished: its static form */
/** @typedef {Object<string, any>} MediaRef  a logged media reference ({_type, path, sha256, size, ...}) */
/** @typedef {{step: number, ref: MediaRef}} MediaEntry */
/** @typedef {Object<string, MediaEntry[]>} MediaIndex  LivePanel.media: per media key, ascending steps */
/** @typedef {{reset: boolean, entries: MediaEntry[]}} MediaDelta */
/** @typedef {{type: "media", keys: Object<string, MediaDelta>}} MediaMessage  Python -> LivePanel: new media entries */
/** @typedef {{ts: number, d: Object<string, number>}} SystemSample */
/** @typedef {{title: string, text: string, level: string, ts?: number}} AlertEntry */
/** @typedef {{stream: string, text: string}} OutputChunk */
/** @typedef {{system: SystemSample[], alerts: AlertEntry[], info: Object<string, any>, output: OutputChunk[]}} Extras  LivePanel.extras */
/** @typedef {{type: "events", system: SystemSample[], alerts: AlertEntry[], info: Object<string, any>|null, output: OutputChunk[]}} EventsMessage  Python -> LivePanel: new samples and alerts; info null and output empty when unchanged (output replaces the lines shown) */
/** @typedef {{type: "fetch", path: string}} FetchRequest  LivePanel -> Python: send a media file */
/** @typedef {{type: "file", path: string, mime: string, size: number, error?: string}} FileMessage  Python -> LivePanel; buffers[0] is the file unless error */
/** @typedef {{type: "lib"}} LibRequest  widget -> Python: send the chart library */
/** @typedef {{type: "lib", hash: string}} LibReply  Python -> widget; buffers[0] is the bundle */
/** @typedef {{key: string, values: any[], missing: boolean[], differs: boolean}} DiffRow */
/** @typedef {{runs: string[], rows: DiffRow[]}} DiffTable */
/** @typedef {{key: string, label: string, kind: "text"|"number"}} RunColumn  RunTable.columns[i] */
/** @typedef {{v: any[]}|{d: any[], c: number|number[]}} EncodedColumn  RunTable.data[i]: values, or distinct values and codes */
/** @typedef {{type: "compare", ids: string[]}} CompareMessage  RunTable -> Python */
/** @typedef {{runs: string[], spec?: Object|null, error?: string|null, diff?: DiffTable}} Comparison  RunTable.comparison */
/** @typedef {Object<string, any>} ChartSpec  ChartView.spec: a vega-lite spec */
/** @typedef {{name: string, goal: string}} SweepMetric */
/** @typedef {{distribution: string, log: boolean, values: any[]|null}} ParamSpace  a categorical parameter's values in the config's order */
/**
 * @typedef {Object} SweepTrial
 * @property {number} number
 * @property {string} state  queued, running, finished, failed, crashed, interrupted, pruned
 * @property {string|null} run_id
 * @property {Object<string, any>} params  by dotted name; NaN and ±inf as text
 * @property {number|null} value  the metric's value
 * @property {number|null} started  unix seconds
 * @property {number|null} ended
 * @property {number|null} duration  seconds (a running trial's grows from `now`)
 * @property {string|null} exit  how it ended (user text)
 */
/**
 * @typedef {Object} SweepView  SweepPanel.sweep ({} until Python sets it): Sweep.view()
 * @property {string} id
 * @property {string} name
 * @property {string} project
 * @property {string} method
 * @property {string} state
 * @property {SweepMetric|null} metric
 * @property {string[]} parameters
 * @property {Object<string, ParamSpace>} space
 * @property {number} created
 * @property {number} now  the kernel's clock when the view was read
 * @property {number|null} run_cap
 * @property {number|null} grid_size
 * @property {number|null} remaining
 * @property {Object<string, number>} counts  trials by state
 * @property {number|null} best  the best trial's number
 * @property {Object<string, number>|null} importance  parameter -> share
 * @property {SweepTrial[]} trials
 * @property {number} [queued_hidden]  queued trials only counted, not listed
 * @property {number} [importance_trials]  finished trials the importance comes from
 * @property {string} [error]  why the last refresh failed
 */
/** @typedef {{type: "refresh", form: boolean}} RefreshRequest  SweepPanel -> Python: read the sweep again (form: send the static form even if unchanged) */
/** @typedef {{type: "refreshed", reply: boolean, form: Object<string, any>|null}} RefreshedMessage  Python -> SweepPanel; form: the static form now */

const num = "num", str = "str", bool = "bool", any = "any";
const list = (s) => ({ list: s });
const map = (s) => ({ map: s });
const oneOf = (...s) => ({ oneOf: s });
const fields = (f, optional = []) => ({ fields: f, optional: [...optional].sort() });
const nullable = (s) => oneOf(s, "null");
const empty = fields({});

const XY = { tuple: [list(num), list(num)] };
const LiveInfo = fields({
  name: str, id: str, project: str, state: str, step: num, started: num, updated: num, mode: str,
  upload: str, summary: map(any), error: str,
}, ["upload", "summary", "error"]);
const SeriesSnapshot = fields({ c: XY, t: XY });
const SeriesDelta = fields({ reset: nullable(XY), append: nullable(XY), tail: XY });
const MediaEntry = fields({ step: num, ref: map(any) });
const SystemSample = fields({ ts: num, d: map(num) });
const AlertEntry = fields({ title: str, text: str, level: str, ts: num }, ["ts"]);
const OutputChunk = fields({ stream: str, text: str });
const Extras = fields({ system: list(SystemSample), alerts: list(AlertEntry), info: map(any), output: list(OutputChunk) });
const DiffRow = fields({ key: str, values: list(any), missing: list(bool), differs: bool });
const DiffTable = fields({ runs: list(str), rows: list(DiffRow) });
const RunColumn = fields({ key: str, label: str, kind: oneOf({ const: "text" }, { const: "number" }) });
const EncodedColumn = oneOf(fields({ v: list(any) }), fields({ d: list(any), c: oneOf(num, list(num)) }));
const Comparison = fields({ runs: list(str), spec: nullable(map(any)), error: nullable(str), diff: DiffTable },
  ["spec", "error", "diff"]);

const SweepTrial = fields({
  number: num, state: str, run_id: nullable(str), params: map(any), value: nullable(num),
  started: nullable(num), ended: nullable(num), duration: nullable(num), exit: nullable(str),
});
const ParamSpace = fields({ distribution: str, log: bool, values: nullable(list(any)) });
const SweepView = fields({
  id: str, name: str, project: str, method: str, state: str, metric: nullable(fields({ name: str, goal: str })),
  parameters: list(str), space: map(ParamSpace), created: num, now: num, run_cap: nullable(num),
  grid_size: nullable(num), remaining: nullable(num), counts: map(num), best: nullable(num),
  importance: nullable(map(num)), trials: list(SweepTrial), queued_hidden: num, importance_trials: num, error: str,
}, ["queued_hidden", "importance_trials", "error"]);

export const CONTRACT = {
  common: { lib: str, lib_hash: str, uid: str },
  traits: {
    live: {
      info: oneOf(LiveInfo, empty), snapshot: map(SeriesSnapshot), xlabels: map(str),
      media: map(list(MediaEntry)), extras: oneOf(Extras, empty),
    },
    diff: { runs: list(str), rows: list(DiffRow), show_all: bool },
    runs: {
      columns: list(RunColumn), data: list(EncodedColumn), count: num, visible: list(str), group_by: str,
      comparison: oneOf(Comparison, empty), selected: list(str), sort_key: str, sort_desc: bool,
    },
    chart: { spec: map(any) },
    sweep: { sweep: oneOf(SweepView, empty) },
    library: { code: str },
  },
  toFrontend: {
    points: fields({ type: { const: "points" }, series: map(SeriesDelta) }),
    static: fields({ type: { const: "static" }, model_id: str, bundle: map(any) }),
    lib: fields({ type: { const: "lib" }, hash: str }),
    media: fields({ type: { const: "media" }, keys: map(fields({ reset: bool, entries: list(MediaEntry) })) }),
    events: fields({
      type: { const: "events" }, system: list(SystemSample), alerts: list(AlertEntry),
      info: nullable(map(any)), output: list(OutputChunk),
    }),
    file: fields({ type: { const: "file" }, path: str, mime: str, size: num, error: str }, ["error"]),
    refreshed: fields({ type: { const: "refreshed" }, reply: bool, form: nullable(map(any)) }),
  },
  toKernel: {
    compare: fields({ type: { const: "compare" }, ids: list(str) }),
    lib: fields({ type: { const: "lib" } }),
    fetch: fields({ type: { const: "fetch" }, path: str }),
    refresh: fields({ type: { const: "refresh" }, form: bool }),
  },
};

/** What is wrong with `v` as shape `s` (an empty list when it fits). */
export function check(s, v, path = "") {
  const at = path || "value";
  const kind = (x) => (x === null ? "null" : Array.isArray(x) ? "array" : typeof x);
  if (s === "any") return [];
  if (s === "str") return typeof v === "string" ? [] : [`${at}: expected a string, got ${kind(v)}`];
  if (s === "bool") return typeof v === "boolean" ? [] : [`${at}: expected true/false, got ${kind(v)}`];
  if (s === "null") return v === null ? [] : [`${at}: expected null, got ${kind(v)}`];
  if (s === "num") {
    if (typeof v !== "number") return [`${at}: expected a number, got ${kind(v)}`];
    return Number.isFinite(v) ? [] : [`${at}: ${v} is not a JSON number`];
  }
  if ("const" in s) return v === s.const ? [] : [`${at}: expected ${JSON.stringify(s.const)}, got ${JSON.stringify(v)}`];
  if (s.oneOf) {
    const tries = s.oneOf.map((a) => check(a, v, path));
    if (tries.some((t) => !t.length)) return [];
    return tries.reduce((a, b) => (b.length < a.length ? b : a));
  }
  if (s.list || s.tuple) {
    if (!Array.isArray(v)) return [`${at}: expected an array, got ${kind(v)}`];
    if (s.tuple) {
      if (v.length !== s.tuple.length) return [`${at}: expected ${s.tuple.length} items, got ${v.length}`];
      return s.tuple.flatMap((a, i) => check(a, v[i], `${path}[${i}]`));
    }
    if (s.list === "num") { // the hot case, a series: one tight loop, the errors only on a miss
      let ok = true;
      for (let i = 0; i < v.length && ok; i++) ok = typeof v[i] === "number" && Number.isFinite(v[i]);
      if (ok) return [];
    }
    const errs = [];
    for (let i = 0; i < v.length && errs.length <= 5; i++) errs.push(...check(s.list, v[i], `${path}[${i}]`));
    return errs;
  }
  if (kind(v) !== "object") return [`${at}: expected an object, got ${kind(v)}`];
  if (s.map) return Object.entries(v).flatMap(([k, x]) => check(s.map, x, `${path}.${k}`));
  const errs = [];
  for (const k of Object.keys(s.fields)) if (!(k in v) && !s.optional.includes(k)) errs.push(`${path}.${k}: missing`);
  for (const [k, x] of Object.entries(v)) {
    if (k in s.fields) errs.push(...check(s.fields[k], x, `${path}.${k}`));
    else errs.push(`${path}.${k}: not in the contract`);
  }
  return errs;
}

/** The shape of trait `name` of a widget `kind`, or undefined when the contract does not name it. */
export function traitShape(kind, name) {
  return CONTRACT.common[name] || (CONTRACT.traits[kind] || {})[name];
}

/** What is wrong with a custom message (`to` is "toFrontend" or "toKernel"). */
export function checkMessage(msg, to = "toFrontend") {
  const known = CONTRACT[to];
  const type = msg && typeof msg === "object" ? msg.type : undefined;
  if (!Object.prototype.hasOwnProperty.call(known, type)) {
    return [`unknown message type ${JSON.stringify(type)} (known: ${Object.keys(known).join(", ")})`];
  }
  return check(known[type], msg);
}

function emptyOf(s) {
  if (s.list || s.tuple) return [];
  if (s.map || s.fields || s.oneOf) return {};
  return s === "str" ? "" : s === "bool" ? false : null;
}

/**
 * Where a widget's contract errors go: the console, and `data-contract-errors` (the latest
 * few, as JSON) on every element attached. One per model, shared by its views.
 */
export function reporter(label) {
  const errors = [];
  const els = new Set();
  const show = (el) => { if (errors.length) el.dataset.contractErrors = JSON.stringify(errors); };
  return {
    errors,
    attach(el) { els.add(el); show(el); },
    detach(el) { els.delete(el); },
    report(where, errs) {
      console.warn(`nbtracker ${label}: ${where} breaks the widget contract:`, errs);
      errors.push(...errs.slice(0, 5).map((e) => `${where}: ${e}`));
      errors.splice(0, Math.max(0, errors.length - 20));
      for (const el of els) show(el);
    },
  };
}

/**
 * The model as a renderer should see it: `get` returns a trait only when it fits the
 * contract (else a safe empty value), custom messages that break it are dropped, and
 * outgoing messages are checked too (and still sent). Every breach goes to `rep`.
 */
export function guard(model, kind, rep) {
  const seen = new WeakMap(); // object value or message -> its errors, checked once
  function errorsOf(obj, fn) {
    if (obj === null || typeof obj !== "object") return fn();
    let errs = seen.get(obj);
    if (!errs) {
      errs = fn();
      seen.set(obj, errs);
      if (errs.length) rep.report(obj.type ? `message "${obj.type}"` : "a value", errs);
    }
    return errs;
  }
  const wrapped = new Map();
  return {
    ...model,
    get(name) {
      const v = model.get(name);
      const s = traitShape(kind, name);
      if (!s) return v;
      if (v === null || typeof v !== "object") {
        const errs = check(s, v);
        if (!errs.length) return v;
        rep.report(`trait "${name}"`, errs);
        return emptyOf(s);
      }
      let errs = seen.get(v);
      if (!errs) {
        errs = check(s, v);
        seen.set(v, errs);
        if (errs.length) rep.report(`trait "${name}"`, errs);
      }
      return errs.length ? emptyOf(s) : v;
    },
    on(name, fn) {
      if (name !== "msg:custom") return model.on(name, fn);
      const w = (msg, buffers) => {
        // anywidget's own request/response messages are not ours to check
        if (msg && typeof msg === "object" && !("type" in msg) && "id" in msg) return;
        if (!errorsOf(msg, () => checkMessage(msg, "toFrontend")).length) fn(msg, buffers);
      };
      wrapped.set(fn, w);
      return model.on(name, w);
    },
    off(name, fn) {
      const w = wrapped.get(fn);
      if (w) wrapped.delete(fn);
      return model.off(name, w || fn);
    },
    send(msg, callbacks, buffers) {
      // reported, but sent all the same: the kernel checks what it gets
      const errs = checkMessage(msg, "toKernel");
      if (errs.length) rep.report(`sending "${msg && msg.type}"`, errs);
      return model.send(msg, callbacks, buffers);
    },
  };
}
