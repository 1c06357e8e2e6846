import { fmt, h, loadLib } from "./common.js";
import { drawChart, finalizeCharts } from "./plot.js";

// ---------------------------------------------------------------------------------------
// What a live panel shows beyond scalars: media (a step slider per key), alerts, system
// metrics, code and environment, console output (Python side: nbtracker/notebook/extras.py).
//
// The media index and the rest arrive as the `media` and `extras` traits (checkpoints) and as
// `media` / `events` messages (deltas between). Files arrive as binary buffers of `file`
// messages: pushed by the kernel for each key's latest step, or asked for (`fetch`) when a view
// needs one it does not have. They become Blob URLs, cached per model (revoked when evicted),
// so nothing is fetched from a server route and everything works offline.
//
// User content is text or sandboxed: captions, labels, column names and cells are set with
// textContent; HTML goes into an <iframe sandbox=""> (no scripts, an opaque origin) via srcdoc.

const MAX_FILES = 400; // blob URLs kept per model (least recently used go first)
const MAX_BYTES = 256 * 2 ** 20; // and the bytes they hold
const PAGE = 25; // table rows per page
const MAX_POINTS = 30000; // 3-D points drawn

const u8 = (b) => (b instanceof ArrayBuffer ? new Uint8Array(b) : new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

/** One per model (made in `initialize`): the media index, the extras and the file cache. */
export function extrasStore(model) {
  const st = {
    media: new Map(), // key -> [{step, ref}]
    system: [], alerts: [], info: {}, output: [],
    files: new Map(), // path -> {blob, url, mime}
    bytes: 0, // held in `files`
    waiting: new Map(), // path -> [{resolve, reject}]
    listeners: new Set(),
    model, // for the chart library (charts of nbtracker.plot)
  };
  const notify = (what) => { for (const fn of st.listeners) fn(what); };
  function fromTraits() {
    const media = model.get("media") || {};
    st.media = new Map(Object.entries(media).map(([k, v]) => [k, v.slice()]));
    const ex = model.get("extras") || {};
    st.system = (ex.system || []).slice();
    st.alerts = (ex.alerts || []).slice();
    st.info = ex.info || {};
    st.output = (ex.output || []).slice();
  }
  fromTraits();
  model.on("change:media", () => { fromTraits(); notify({ media: [...st.media.keys()], extras: false }); });
  model.on("change:extras", () => { fromTraits(); notify({ media: [], extras: true, system: true }); });
  model.on("msg:custom", (msg, buffers) => {
    if (msg.type === "media") {
      for (const [key, d] of Object.entries(msg.keys)) {
        const prev = st.media.get(key) || [];
        st.media.set(key, d.reset ? d.entries.slice() : prev.concat(d.entries));
      }
      notify({ media: Object.keys(msg.keys), extras: false });
    } else if (msg.type === "events") {
      st.system.push(...msg.system);
      if (st.system.length > 5000) st.system.splice(0, st.system.length - 5000);
      st.alerts.push(...msg.alerts);
      if (msg.info) st.info = msg.info;
      if (msg.output.length) st.output = msg.output.slice();
      notify({ media: [], extras: true, system: msg.system.length > 0, newSystem: msg.system });
    } else if (msg.type === "file") {
      const waiting = st.waiting.get(msg.path) || [];
      st.waiting.delete(msg.path);
      if (msg.error || !buffers || !buffers.length) {
        for (const w of waiting) w.reject(new Error(msg.error || "no data"));
        return;
      }
      let f = st.files.get(msg.path);
      if (!f) {
        // logged HTML is never a document of this page's origin, even if its URL were opened
        const type = msg.mime === "text/html" ? "text/plain" : msg.mime;
        const blob = new Blob([u8(buffers[0])], { type });
        f = { blob, mime: msg.mime, url: URL.createObjectURL(blob) };
        st.files.set(msg.path, f);
        st.bytes += blob.size;
        while (st.files.size > 1 && (st.files.size > MAX_FILES || st.bytes > MAX_BYTES)) {
          const [oldest, old] = st.files.entries().next().value;
          URL.revokeObjectURL(old.url);
          st.files.delete(oldest);
          st.bytes -= old.blob.size;
        }
      }
      for (const w of waiting) w.resolve(f);
    }
  });
  /** The file at `path` (a ref's path): {blob, url, mime}; asks the kernel when not here. */
  st.file = (path) => {
    const f = st.files.get(path);
    if (f) { // most recently used: last in the map
      st.files.delete(path);
      st.files.set(path, f);
      return Promise.resolve(f);
    }
    return new Promise((resolve, reject) => {
      const w = st.waiting.get(path);
      if (w) { w.push({ resolve, reject }); return; }
      st.waiting.set(path, [{ resolve, reject }]);
      model.send({ type: "fetch", path });
    });
  };
  return st;
}

// ---------------------------------------------------------------------------------------
// Drawing one media value

const KINDS = {
  "image-file": "image", "media-list": "list", "histogram": "histogram", "table-file": "table",
  "audio-file": "audio", "video-file": "video", "html-file": "html", "object3D-file": "points",
  "plotly-file": "plotly", "classes": "classes",
};
const kindOf = (ref) => (ref && ref._type === "table-file" && ref.chart && typeof ref.chart === "object" ? "chart"
  : KINDS[ref && ref._type] || "other");
const PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0", "#f032e6",
  "#bcf60c", "#fabebe", "#008080", "#e6beff", "#9a6324", "#800000", "#aaffc3", "#808000", "#000075"];
const SVGNS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs = {}) => {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
};
const caption = (ref) => (ref && ref.caption != null ? h("div", { class: "nbt-caption", text: String(ref.caption) }) : null);
const failed = (el, e) => el.replaceChildren(h("div", { class: "nbt-media-error", text: String(e && e.message || e) }));

/** An image with its masks and boxes drawn over it. */
function drawImage(st, ref, thumb = false) {
  const img = h("img", { class: thumb ? "nbt-thumb" : "nbt-img", alt: ref.caption != null ? String(ref.caption) : "" });
  img.dataset.path = String(ref.path);
  const wrap = h("div", { class: "nbt-img-wrap" }, img);
  const box = h("figure", { class: "nbt-figure" }, wrap, thumb ? null : caption(ref));
  st.file(ref.path).then((f) => {
    img.onload = () => {
      const w = img.naturalWidth, ht = img.naturalHeight;
      if (!thumb) { // small images scaled up (pixelated), large ones down
        const k = w < 128 ? Math.ceil(128 / w) : 1;
        img.style.width = `${Math.min(w * k, 360)}px`;
      }
      if (!thumb) overlays(st, ref, wrap, w, ht);
    };
    img.src = f.url;
  }, (e) => failed(wrap, e));
  return box;
}

function overlays(st, ref, wrap, w, ht) {
  if (ref.boxes && typeof ref.boxes === "object") {
    const layer = svg("svg", { class: "nbt-boxes", viewBox: `0 0 ${w} ${ht}`, preserveAspectRatio: "none" });
    for (const group of Object.values(ref.boxes)) {
      const labels = (group && group.class_labels) || {};
      for (const b of (group && group.box_data) || []) {
        const p = b.position || {};
        let x0 = p.minX, x1 = p.maxX, y0 = p.minY, y1 = p.maxY;
        if (p.middle) { x0 = p.middle[0] - p.width / 2; x1 = x0 + p.width; y0 = p.middle[1] - p.height / 2; y1 = y0 + p.height; }
        if (![x0, x1, y0, y1].every(Number.isFinite)) continue;
        if (b.domain !== "pixel") { x0 *= w; x1 *= w; y0 *= ht; y1 *= ht; }
        const color = PALETTE[(b.class_id | 0) % PALETTE.length];
        layer.append(svg("rect", { x: x0, y: y0, width: x1 - x0, height: y1 - y0, fill: "none", stroke: color, "stroke-width": Math.max(1, w / 150), "vector-effect": "non-scaling-stroke" }));
        const label = b.box_caption ?? labels[b.class_id];
        if (label != null) {
          const t = svg("text", { x: x0 + 1, y: y0 - 2 < 6 ? y0 + 8 : y0 - 2, fill: color, "font-size": Math.max(6, ht / 18) });
          t.textContent = String(label);
          layer.append(t);
        }
      }
    }
    wrap.append(layer);
  }
  for (const m of Object.values(ref.masks && typeof ref.masks === "object" ? ref.masks : {})) {
    if (!m || typeof m.path !== "string") continue;
    st.file(m.path).then(async (f) => {
      const bmp = await createImageBitmap(f.blob);
      const c = h("canvas", { class: "nbt-mask", width: bmp.width, height: bmp.height });
      const ctx = c.getContext("2d");
      ctx.drawImage(bmp, 0, 0);
      const px = ctx.getImageData(0, 0, bmp.width, bmp.height);
      const d = px.data;
      for (let i = 0; i < d.length; i += 4) {
        const v = d[i];
        if (!v) { d[i + 3] = 0; continue; }
        const col = PALETTE[v % PALETTE.length];
        d[i] = parseInt(col.slice(1, 3), 16); d[i + 1] = parseInt(col.slice(3, 5), 16);
        d[i + 2] = parseInt(col.slice(5, 7), 16); d[i + 3] = 110;
      }
      ctx.putImageData(px, 0, 0);
      wrap.append(c);
    }).catch(() => undefined);
  }
}

function drawAudio(st, ref) {
  const audio = h("audio", { controls: true, preload: "metadata", class: "nbt-audio" });
  audio.dataset.path = String(ref.path);
  const box = h("figure", { class: "nbt-figure" }, audio, caption(ref));
  st.file(ref.path).then((f) => { audio.src = f.url; }, (e) => failed(box, e));
  return box;
}

function drawVideo(st, ref) {
  const moving = ["mp4", "webm", "ogg", "ogv"].includes(String(ref.format || "").toLowerCase());
  const el = moving ? h("video", { controls: true, muted: true, loop: true, class: "nbt-video" })
    : h("img", { class: "nbt-img" });
  el.dataset.path = String(ref.path);
  const box = h("figure", { class: "nbt-figure" }, el, caption(ref));
  if (!moving) el.onload = () => { const w = el.naturalWidth; el.style.width = `${Math.min(w < 128 ? w * Math.ceil(128 / w) : w, 360)}px`; };
  st.file(ref.path).then((f) => { el.src = f.url; }, (e) => failed(box, e));
  return box;
}

function drawHtml(st, ref) {
  const frame = h("iframe", { class: "nbt-html", title: "logged HTML (sandboxed)" });
  frame.setAttribute("sandbox", ""); // no scripts, no forms, an opaque origin
  frame.setAttribute("referrerpolicy", "no-referrer");
  frame.dataset.path = String(ref.path);
  const box = h("div", { class: "nbt-html-box" }, frame);
  st.file(ref.path).then((f) => f.blob.text()).then((text) => { frame.srcdoc = text; }, (e) => failed(box, e));
  return box;
}

function download(f, name) {
  return h("a", { href: f.url, download: name, class: "nbt-download", text: `download ${name}` });
}

// 3-D points: a projected scatter, dragged to rotate (no WebGL)
function drawPoints(st, ref) {
  const box = h("div", { class: "nbt-points" });
  st.file(ref.path).then(async (f) => {
    const fmtName = String(ref.format || "").toLowerCase();
    let pts = [];
    if (fmtName === "pts.json" || fmtName === "json") pts = (JSON.parse(await f.blob.text()).points || []);
    else if (fmtName === "obj") {
      for (const line of (await f.blob.text()).split("\n")) {
        if (line.startsWith("v ")) pts.push(line.trim().split(/\s+/).slice(1, 4).map(Number));
      }
    } else {
      box.replaceChildren(h("div", { text: `3-D model (${fmtName}, ${f.blob.size} bytes)` }), download(f, String(ref.path).split("/").pop()));
      return;
    }
    scatter3d(box, pts);
  }, (e) => failed(box, e));
  return box;
}

function scatter3d(box, all) {
  const step = Math.max(1, Math.ceil(all.length / MAX_POINTS));
  const pts = all.filter((p, i) => i % step === 0 && Array.isArray(p) && p.length >= 3 && p.slice(0, 3).every(Number.isFinite));
  const size = 320;
  const c = h("canvas", { class: "nbt-points-canvas", width: size, height: size });
  c.dataset.points = String(pts.length);
  box.replaceChildren(c, h("div", { class: "nbt-hint", text: `${all.length} points · drag to rotate` }));
  if (!pts.length) return;
  const mid = [0, 1, 2].map((a) => { let lo = Infinity, hi = -Infinity; for (const p of pts) { lo = Math.min(lo, p[a]); hi = Math.max(hi, p[a]); } return [(lo + hi) / 2, hi - lo]; });
  const scale = (size * 0.42) / (Math.max(...mid.map((m) => m[1])) / 2 || 1);
  let yaw = 0.6, pitch = 0.4;
  const colorOf = (p, depth) => {
    if (p.length >= 6) return `rgb(${p[3] | 0},${p[4] | 0},${p[5] | 0})`;
    if (p.length === 4) return PALETTE[Math.abs(p[3] | 0) % PALETTE.length];
    const l = Math.round(30 + 40 * depth);
    return `hsl(215,70%,${l}%)`;
  };
  function draw() {
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, size, size);
    const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
    const proj = pts.map((p) => {
      const x = p[0] - mid[0][0], y = p[1] - mid[1][0], z = p[2] - mid[2][0];
      const x1 = cy * x + sy * z, z1 = -sy * x + cy * z;
      const y2 = cp * y - sp * z1, z2 = sp * y + cp * z1;
      return [size / 2 + x1 * scale, size / 2 - y2 * scale, z2, p];
    }).sort((a, b) => a[2] - b[2]);
    const zs = proj.length ? [proj[0][2], proj[proj.length - 1][2]] : [0, 1];
    for (const [x, y, z, p] of proj) {
      ctx.fillStyle = colorOf(p, (z - zs[0]) / ((zs[1] - zs[0]) || 1));
      ctx.fillRect(x - 1, y - 1, 2.5, 2.5);
    }
  }
  let drag = null;
  c.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; c.setPointerCapture(e.pointerId); });
  c.addEventListener("pointermove", (e) => {
    if (!drag) return;
    yaw += (e.clientX - drag[0]) * 0.01;
    pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag[1]) * 0.01));
    drag = [e.clientX, e.clientY];
    draw();
  });
  c.addEventListener("pointerup", () => { drag = null; });
  draw();
}

// plotly figures: scatter/line and bar traces drawn simply as SVG (no plotly.js)
const TYPED = { f8: Float64Array, f4: Float32Array, i4: Int32Array, i2: Int16Array, i1: Int8Array, u4: Uint32Array, u2: Uint16Array, u1: Uint8Array };
function plotlyArray(v) {
  if (Array.isArray(v)) return v;
  if (v && typeof v === "object" && typeof v.bdata === "string" && TYPED[v.dtype]) {
    const bin = atob(v.bdata);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return Array.from(new TYPED[v.dtype](bytes.buffer));
  }
  return null;
}

function drawPlotly(st, ref) {
  const box = h("div", { class: "nbt-plotly" });
  st.file(ref.path).then(async (f) => {
    const fig = JSON.parse(await f.blob.text());
    const traces = Array.isArray(fig.data) ? fig.data : [];
    const shown = [];
    for (const t of traces) {
      const type = t.type || "scatter";
      let y = plotlyArray(t.y);
      let x = plotlyArray(t.x);
      if (!y || !["scatter", "scattergl", "bar"].includes(type)) continue;
      if (!x) x = y.map((_, i) => i);
      shown.push({ type, x, y, mode: String(t.mode || (y.length > 20 ? "lines" : "lines+markers")), name: t.name });
    }
    const title = fig.layout && fig.layout.title;
    const titleText = typeof title === "string" ? title : title && title.text;
    const head = h("div", { class: "nbt-plotly-head", text: `plotly figure: ${traces.length} trace${traces.length === 1 ? "" : "s"}` + (titleText ? ` — ${titleText}` : "") });
    box.replaceChildren(head);
    if (shown.length) box.append(plotlySvg(shown));
    box.append(download(f, "figure.json"));
  }, (e) => failed(box, e));
  return box;
}

function plotlySvg(traces) {
  const W = 360, H = 220, L = 44, B = 22, T = 8, R = 8;
  const cat = traces.some((t) => t.x.some((v) => typeof v !== "number"));
  const cats = cat ? [...new Set(traces.flatMap((t) => t.x.map(String)))] : [];
  const xv = (v) => (cat ? cats.indexOf(String(v)) : Number(v));
  const xs = traces.flatMap((t) => t.x.map(xv)), ys = traces.flatMap((t) => t.y.map(Number)).filter(Number.isFinite);
  const bars = traces.some((t) => t.type === "bar");
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys, bars ? 0 : Infinity), Math.max(...ys, bars ? 0 : -Infinity)];
  if (bars || cat) { x0 -= 0.5; x1 += 0.5; }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const sx = (v) => L + ((xv(v) - x0) / (x1 - x0)) * (W - L - R);
  const sy = (v) => H - B - ((v - y0) / (y1 - y0)) * (H - B - T);
  const s = svg("svg", { width: W, height: H, class: "nbt-plotly-svg" });
  s.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#999" }), svg("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#999" }));
  const label = (x, y, text, anchor) => { const t = svg("text", { x, y, "font-size": 10, fill: "#666", "text-anchor": anchor }); t.textContent = text; s.append(t); };
  label(L - 4, T + 8, fmt(y1), "end"); label(L - 4, H - B, fmt(y0), "end");
  label(L, H - 6, cat ? cats[0] : fmt(x0), "start"); label(W - R, H - 6, cat ? cats[cats.length - 1] : fmt(x1), "end");
  const nb = traces.filter((t) => t.type === "bar").length;
  let bi = 0;
  traces.forEach((t, i) => {
    const color = PALETTE[i % PALETTE.length];
    if (t.type === "bar") {
      const bw = ((W - L - R) / (x1 - x0)) * 0.8 / nb;
      t.x.forEach((x, j) => {
        const v = Number(t.y[j]);
        if (!Number.isFinite(v)) return;
        const cx = sx(x) - (bw * nb) / 2 + bi * bw;
        s.append(svg("rect", { x: cx, y: Math.min(sy(v), sy(0)), width: bw, height: Math.abs(sy(v) - sy(0)), fill: color }));
      });
      bi += 1;
      return;
    }
    if (t.mode.includes("lines")) {
      const d = t.x.map((x, j) => `${j ? "L" : "M"}${sx(x).toFixed(1)},${sy(Number(t.y[j])).toFixed(1)}`).join("");
      s.append(svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.5 }));
    }
    if (t.mode.includes("markers")) for (let j = 0; j < t.x.length; j++) s.append(svg("circle", { cx: sx(t.x[j]), cy: sy(Number(t.y[j])), r: 2.5, fill: color }));
  });
  return s;
}

// histograms over steps: a heat-map (step × value, counts normalised per step) and, below it,
// the histogram of the step under the pointer (the latest by default) as bars
function drawHeat(entries) {
  const W = 360, H = 150, L = 48, B = 18;
  const box = h("div", { class: "nbt-heat" });
  const heat = h("canvas", { class: "nbt-heat-map", width: W, height: H });
  const bars = h("canvas", { class: "nbt-heat-bars", width: W, height: 70 });
  const label = h("div", { class: "nbt-hint" });
  box.append(heat, label, bars);
  const hs = entries.filter((e) => Array.isArray(e.ref.bins) && Array.isArray(e.ref.values) && e.ref.values.length);
  heat.dataset.steps = String(hs.length);
  if (!hs.length) return box;
  let lo = Infinity, hi = -Infinity;
  for (const e of hs) { lo = Math.min(lo, e.ref.bins[0]); hi = Math.max(hi, e.ref.bins[e.ref.bins.length - 1]); }
  if (!(hi > lo)) { hi = lo + 1; }
  const ctx = heat.getContext("2d");
  const pw = W - L, ph = H - B;
  const cw = pw / hs.length;
  const yOf = (v) => ph - ((v - lo) / (hi - lo)) * ph;
  hs.forEach((e, i) => {
    const { bins, values } = e.ref;
    const max = Math.max(...values.map(Number)) || 1;
    for (let j = 0; j < values.length; j++) {
      const a = Number(values[j]) / max;
      if (!(a > 0)) continue;
      ctx.fillStyle = `rgba(30,64,175,${(0.08 + 0.92 * a).toFixed(3)})`;
      const y1 = yOf(bins[j + 1]), y0 = yOf(bins[j]);
      ctx.fillRect(L + i * cw, y1, Math.max(cw, 1), Math.max(y0 - y1, 1));
    }
  });
  ctx.fillStyle = "#666"; ctx.font = "10px sans-serif"; ctx.textAlign = "right";
  ctx.fillText(fmt(hi), L - 4, 10); ctx.fillText(fmt(lo), L - 4, ph);
  ctx.textAlign = "left"; ctx.fillText(`step ${hs[0].step}`, L, H - 4);
  ctx.textAlign = "right"; ctx.fillText(`step ${hs[hs.length - 1].step}`, W, H - 4);
  function showBars(i) {
    const e = hs[i];
    const b = bars.getContext("2d");
    b.clearRect(0, 0, W, 70);
    const { bins, values } = e.ref;
    const max = Math.max(...values.map(Number)) || 1;
    const x = (v) => L + ((v - lo) / (hi - lo)) * pw;
    b.fillStyle = "#4363d8";
    for (let j = 0; j < values.length; j++) {
      const hgt = (Number(values[j]) / max) * 64;
      b.fillRect(x(bins[j]), 68 - hgt, Math.max(x(bins[j + 1]) - x(bins[j]) - 0.5, 0.5), hgt);
    }
    label.textContent = `step ${e.step}: ${values.reduce((s, v) => s + Number(v), 0)} values in [${fmt(bins[0])}, ${fmt(bins[bins.length - 1])}]`;
    bars.dataset.step = String(e.step);
  }
  heat.addEventListener("mousemove", (ev) => {
    const r = heat.getBoundingClientRect();
    const i = Math.floor(((ev.clientX - r.left) * (W / r.width) - L) / cw);
    if (i >= 0 && i < hs.length) showBars(i);
  });
  heat.addEventListener("mouseleave", () => showBars(hs.length - 1));
  showBars(hs.length - 1);
  return box;
}

// what JSON cannot hold, named in a table's "nf" at its place (store/recordlog.py `pack`):
// NaN and ±inf as those numbers, an integer too large for a JSON number as its digits (text)
const NONFINITE = { nan: NaN, inf: Infinity, "-inf": -Infinity };
function unpackNf(v, nf) {
  if (typeof nf === "string") return nf in NONFINITE ? NONFINITE[nf] : /^-?\d+$/.test(nf) ? nf : v;
  if (!nf || typeof nf !== "object" || !v || typeof v !== "object") return v;
  const out = Array.isArray(v) ? v.slice() : { ...v };
  for (const [k, n] of Object.entries(nf)) if (Object.prototype.hasOwnProperty.call(out, k)) out[k] = unpackNf(out[k], n);
  return out;
}
const nonfinite = (x) => (typeof x === "number" && !Number.isFinite(x) ? (x !== x ? "NaN" : x > 0 ? "inf" : "-inf") : x);
// a cell's text: NaN, inf and -inf as such, also inside a list or dict
const cellText = (v) => (typeof v === "number" && !Number.isFinite(v) ? nonfinite(v)
  : v && typeof v === "object" ? JSON.stringify(v, (k, x) => nonfinite(x)) : fmt(v));

// tables: sortable (click a header), paged, image cells as thumbnails
function drawTable(st, ref) {
  const box = h("div", { class: "nbt-media-table" });
  st.file(ref.path).then(async (f) => {
    const body = JSON.parse(await f.blob.text());
    const cols = body.columns || [];
    const rows = unpackNf(body.data || [], body.nf).map((r, i) => ({ r, i }));
    let sortCol = -1, desc = false, page = 0;
    const info = h("span", { class: "nbt-count" });
    const prev = h("button", { type: "button", text: "‹ prev" });
    const next = h("button", { type: "button", text: "next ›" });
    const thead = h("tr");
    const tbody = h("tbody");
    const table = h("table", { class: "nbt-table nbt-cells" }, h("thead", {}, thead), tbody);
    cols.forEach((c, j) => {
      const th = h("th", { class: "nbt-sortable", text: String(c) });
      th.dataset.col = String(j);
      th.addEventListener("click", () => {
        desc = sortCol === j ? !desc : false;
        sortCol = j;
        page = 0;
        sort();
        draw();
      });
      thead.append(th);
    });
    // no value and NaN sort last
    const key = (v) => (v == null || v !== v ? null : typeof v === "object" ? String(v.caption ?? v.path ?? JSON.stringify(v)) : v);
    function sort() {
      rows.sort((a, b) => {
        const x = key(a.r[sortCol]), y = key(b.r[sortCol]);
        if (x === y) return a.i - b.i;
        if (x === null) return 1;
        if (y === null) return -1;
        const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
        return desc ? -c : c;
      });
      for (const th of thead.children) th.dataset.sort = +th.dataset.col === sortCol ? (desc ? "desc" : "asc") : "";
    }
    function cell(v) {
      const td = h("td");
      if (v && typeof v === "object" && typeof v._type === "string") {
        if (v._type === "image-file") td.append(drawImage(st, v, true));
        else td.append(h("span", { class: "nbt-missing", text: `[${kindOf(v)}]` }));
      } else {
        td.textContent = cellText(v);
        if (typeof v === "number") td.className = "nbt-num";
      }
      return td;
    }
    function draw() {
      const n = rows.length, a = page * PAGE, b = Math.min(n, a + PAGE);
      tbody.replaceChildren(...rows.slice(a, b).map(({ r }) => h("tr", {}, ...r.map(cell))));
      info.textContent = `rows ${n ? a + 1 : 0}–${b} of ${body.nrows ?? n}` + (body.nrows > n ? (body.sampled ? ` (${n} evenly spaced here)` : ` (the first ${n} here)`) : "");
      prev.disabled = page === 0;
      next.disabled = b >= n;
    }
    prev.addEventListener("click", () => { page = Math.max(0, page - 1); draw(); });
    next.addEventListener("click", () => { page += 1; draw(); });
    box.replaceChildren(table, h("div", { class: "nbt-bar" }, prev, next, info));
    draw();
  }, (e) => failed(box, e));
  return box;
}

// a class set (nbtracker.Classes): its ids and names as a line of text
function drawClasses(ref) {
  const cs = (Array.isArray(ref.class_set) ? ref.class_set : []).filter((c) => c && typeof c === "object");
  const shown = cs.slice(0, 50).map((c) => `${c.id}: ${String(c.name).slice(0, 200)}`).join(", ");
  const more = cs.length > 50 ? ` and ${cs.length - 50} more` : "";
  return h("div", { class: "nbt-caption", text: `${cs.length} classes: ${shown}${more}` });
}

function drawOne(st, ref, key = "") {
  switch (kindOf(ref)) {
    case "chart": return drawChart(st, ref, key, drawTable);
    case "image": return drawImage(st, ref);
    case "audio": return drawAudio(st, ref);
    case "video": return drawVideo(st, ref);
    case "html": return drawHtml(st, ref);
    case "points": return drawPoints(st, ref);
    case "plotly": return drawPlotly(st, ref);
    case "table": return drawTable(st, ref);
    case "list": return h("div", { class: "nbt-media-list" }, ...(ref.items || []).map((r) => drawOne(st, r)));
    case "classes": return drawClasses(ref);
    default: return h("div", { class: "nbt-missing", text: `${(ref && ref._type) || "value"} (not shown here)` });
  }
}

/** A media key's card: its value at the chosen step (the latest unless the slider moved). */
function mediaCard(st, key) {
  const card = h("div", { class: "nbt-media", "data-key": key });
  const slider = h("input", { type: "range", min: "0", value: "0", class: "nbt-step", title: `step of ${key}` });
  slider.setAttribute("aria-label", `step of ${key}`);
  const stepLabel = h("span", { class: "nbt-step-label" });
  const bar = h("div", { class: "nbt-media-bar" }, h("span", { class: "nbt-media-key", text: key }), slider, stepLabel);
  const body = h("div", { class: "nbt-media-body" });
  card.append(bar, body);
  let pinned = null; // the step the user chose (new steps do not move the slider), or null
  let shown = null; // what the body shows (a signature)
  slider.addEventListener("input", () => {
    const entries = st.media.get(key) || [];
    const i = Math.min(+slider.value, entries.length - 1);
    pinned = i < entries.length - 1 ? entries[i].step : null;
    update();
  });
  function update() {
    const entries = st.media.get(key) || [];
    if (!entries.length) return;
    const last = entries[entries.length - 1];
    const kind = kindOf(last.ref);
    card.dataset.kind = kind;
    if (kind === "histogram") {
      slider.hidden = true;
      stepLabel.textContent = `${entries.length} step${entries.length === 1 ? "" : "s"}`;
      const sig = `${entries.length}:${entries[0].step}:${last.step}`;
      if (shown !== sig) body.replaceChildren(drawHeat(entries));
      shown = sig;
      return;
    }
    slider.max = String(entries.length - 1);
    slider.hidden = entries.length < 2;
    let at = entries.length - 1;
    if (pinned !== null) { // the same step, or the one before it when the index was thinned
      while (at > 0 && entries[at].step > pinned) at -= 1;
    }
    slider.value = String(at);
    const e = entries[Math.min(+slider.value, entries.length - 1)];
    stepLabel.textContent = `step ${e.step}` + (entries.length > 1 ? ` (${+slider.value + 1} of ${entries.length})` : "");
    card.dataset.step = String(e.step);
    // the same value again (a checkpoint's copy of the index) is not drawn again
    const sig = `${e.step}:${e.ref.sha256 || e.ref.path || JSON.stringify(e.ref)}`;
    if (shown === sig) return;
    shown = sig;
    finalizeCharts(body);
    body.replaceChildren(drawOne(st, e.ref, key));
  }
  return { card, update };
}

// ---------------------------------------------------------------------------------------
// The panel's sections

// a chart per group (cpu, memory, disk, network, gpu.N), and per unit within it
function systemGroup(key) {
  const m = /^gpu\.(\d+)\./.exec(key);
  let g = m ? `gpu.${m[1]}` : null;
  const k = key.replace(/^proc\./, "");
  if (!g) for (const name of ["cpu", "memory", "disk", "network"]) if (k === name || k.startsWith(name + ".")) g = name;
  if (!g) g = k.split(".")[0];
  const unit = /MB$/.test(key) || /^disk\.(in|out)$/.test(key) ? "MB"
    : /^network\./.test(key) ? "bytes" : /temp$/.test(key) ? "°C" : /Watts$/.test(key) ? "W"
      : /threads$/.test(key) ? "threads" : /count$/.test(key) ? "count" : "";
  return unit ? `${g} (${unit})` : g;
}

const INFO_FIELDS = [
  ["python", (i) => i.python], ["host", (i) => i.host], ["platform", (i) => i.platform],
  ["git commit", (i) => i.git && i.git.commit], ["git branch", (i) => i.git && i.git.branch],
  ["git dirty", (i) => i.git && i.git.dirty], ["git remote", (i) => i.git && i.git.remote],
  ["notebook", (i) => i.notebook && i.notebook.path],
  ["command", (i) => (Array.isArray(i.argv) ? i.argv.join(" ") : i.argv)],
  ["cwd", (i) => i.cwd], ["executable", (i) => i.executable],
];

/**
 * Alerts, media, system, info and output sections of a live panel view. `lineSpec(title, x)`
 * is the panel's chart spec; `started()` the run's start (unix seconds) for system runtimes.
 */
export function renderExtras({ model, st, lineSpec, started }) {
  const alerts = h("div", { class: "nbt-alerts" });
  const media = h("div", { class: "nbt-media-section" });
  const system = h("details", { class: "nbt-system nbt-fold", "data-samples": "0" });
  const sysSummary = h("summary", { text: "system" });
  const sysGrid = h("div", { class: "nbt-grid" });
  system.append(sysSummary, sysGrid);
  const info = h("details", { class: "nbt-info nbt-fold" }, h("summary", { text: "info" }));
  const output = h("details", { class: "nbt-output nbt-fold" }, h("summary", { text: "output" }));
  const pre = h("pre", { class: "nbt-output-text" });
  output.append(pre);
  const cards = new Map();
  const dismissed = new Set();
  let disposed = false;

  function showAlerts() {
    const id = (a) => `${a.ts}|${a.level}|${a.title}|${a.text}`;
    const items = st.alerts.filter((a) => !dismissed.has(id(a))).reverse();
    alerts.replaceChildren(...items.map((a) => {
      const level = ["INFO", "WARN", "ERROR"].includes(a.level) ? a.level : "INFO";
      const close = h("button", { type: "button", class: "nbt-alert-close", title: "dismiss", text: "×" });
      close.addEventListener("click", () => { dismissed.add(id(a)); showAlerts(); });
      return h("div", { class: `nbt-alert nbt-alert-${level.toLowerCase()}`, "data-level": level },
        h("span", { class: "nbt-alert-level", text: level }),
        h("strong", { class: "nbt-alert-title", text: a.title }),
        a.text ? h("span", { class: "nbt-alert-text", text: a.text }) : null,
        a.ts ? h("span", { class: "nbt-alert-time", text: new Date(a.ts * 1000).toLocaleTimeString() }) : null,
        close);
    }));
  }

  const mediaTitle = h("div", { class: "nbt-media-title", text: "media" });
  const mediaGroups = h("div", { class: "nbt-media-groups" });
  const prefixOf = (key) => { const i = key.indexOf("/"); return i > 0 ? key.slice(0, i) : ""; };
  function showMedia(keys) {
    const all = [...st.media.keys()].sort();
    let added = false;
    for (const key of all) {
      let c = cards.get(key);
      if (!c) {
        cards.set(key, (c = mediaCard(st, key)));
        added = true;
      }
      if (!keys || keys.includes(key)) c.update();
    }
    // cards move only when a key is added (a media element taken out of the page stops
    // playing); keys with a prefix ("gradients/…") are grouped under it, as the charts are
    if (added) {
      const byPrefix = new Map();
      for (const k of all) {
        const p = prefixOf(k);
        if (!byPrefix.has(p)) byPrefix.set(p, []);
        byPrefix.get(p).push(k);
      }
      const order = [...byPrefix.keys()].sort((x, y) => (x === "" ? -1 : y === "" ? 1 : x.localeCompare(y)));
      order.forEach((p, gi) => {
        let group = mediaGroups.querySelector(`:scope > [data-prefix="${CSS.escape(p)}"]`);
        if (!group) {
          group = h("div", { class: "nbt-media-group", "data-prefix": p },
            p ? h("div", { class: "nbt-media-prefix", text: p + "/" }) : null, h("div", { class: "nbt-media-grid" }));
        }
        if (mediaGroups.children[gi] !== group) mediaGroups.insertBefore(group, mediaGroups.children[gi] || null);
        const grid = group.lastChild;
        byPrefix.get(p).forEach((k, i) => {
          const card = cards.get(k).card;
          if (grid.children[i] !== card) grid.insertBefore(card, grid.children[i] || null);
        });
      });
    }
    media.hidden = !all.length;
  }
  media.append(mediaTitle, mediaGroups);

  function showInfo() {
    const i = st.info || {};
    const rows = INFO_FIELDS.map(([name, get]) => [name, get(i)]).filter(([, v]) => v != null && v !== "");
    info.hidden = !rows.length;
    info.replaceChildren(h("summary", { text: "info" }), h("table", { class: "nbt-summary-table" },
      h("tbody", {}, ...rows.map(([k, v]) => h("tr", {}, h("td", { text: k }), h("td", { text: fmt(v) }))))));
  }

  function showOutput() {
    output.hidden = !st.output.length;
    output.firstChild.textContent = `output (last ${st.output.length} lines)`;
    pre.replaceChildren(...st.output.map((c) => h("span", { class: c.stream === "stderr" ? "nbt-stderr" : "", text: c.text + "\n" })));
  }

  // system: one chart per group, made when the section is first opened
  const charts = new Map(); // group -> {view, ready}
  let lib = null;
  function sysRows(samples) {
    const t0 = started();
    const by = new Map();
    for (const s of samples) {
      for (const [k, y] of Object.entries(s.d)) {
        const g = systemGroup(k);
        if (!by.has(g)) by.set(g, []);
        by.get(g).push({ x: s.ts - t0, y, k });
      }
    }
    return by;
  }
  async function drawSystem(samples, reset) {
    system.dataset.samples = String(st.system.length);
    sysSummary.textContent = `system (${st.system.length} samples)`;
    system.hidden = !st.system.length;
    if (!system.open || !st.system.length) return;
    if (!lib) lib = await loadLib(model);
    if (disposed) return;
    for (const [g, rows] of sysRows(reset ? st.system : samples)) {
      let c = charts.get(g);
      if (!c) {
        const chartBox = h("div", { class: "nbt-sys-chart", "data-key": g });
        sysGrid.append(chartBox);
        const spec = lineSpec(g, "runtime (s)");
        spec.encoding.color = { field: "k", type: "nominal", title: null, legend: { orient: "bottom", labelLimit: 200 } };
        c = { view: null, box: chartBox };
        c.ready = lib.vegaEmbed(chartBox, spec, { actions: false, renderer: "canvas" }).then((r) => { c.view = chartBox.nbtView = r.view; });
        charts.set(g, c);
        reset = true;
      }
      await c.ready;
      if (disposed) return;
      const cs = lib.vega.changeset();
      if (reset) cs.remove(() => true).insert(sysRows(st.system).get(g) || []);
      else cs.insert(rows);
      await c.view.change("points", cs).runAsync();
    }
  }
  let sysQueue = Promise.resolve();
  const queueSystem = (samples, reset) => {
    sysQueue = sysQueue.then(() => drawSystem(samples, reset)).catch((e) => console.warn("nbtracker: system chart", e));
  };
  system.addEventListener("toggle", () => queueSystem([], true));

  function onChange(what) {
    if (disposed) return;
    if (what.media.length) showMedia(what.media);
    if (what.extras) {
      showAlerts();
      showInfo();
      showOutput();
      if (what.system) queueSystem(what.newSystem || [], !what.newSystem);
    }
  }
  st.listeners.add(onChange);
  showAlerts();
  showMedia(null);
  showInfo();
  showOutput();
  queueSystem([], true);

  return {
    alerts, sections: [media, system, info, output],
    dispose() {
      disposed = true;
      st.listeners.delete(onChange);
      for (const c of charts.values()) if (c.view) c.view.finalize();
      finalizeCharts(media);
    },
  };
}
