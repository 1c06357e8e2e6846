// Loading nbtracker's front-end library: vega, vega-lite, vega-embed and the widgets' own code,
// one bundle (static/vega.js) shipped to the page once by the ChartLibrary model.
//
// The chart library (vega + vega-lite + vega-embed) is loaded once per page (per frame: Colab
// gives every output its own) and cached there by the bundle's sha256, the widget's `lib_hash`.
// It comes from the ChartLibrary model named in the widget's `lib` trait; when that model cannot
// be resolved within LIB_WAIT_MS (an output frame with its own widget manager, as in Colab), the
// widget asks the kernel over its own comm and gets the bundle as a binary buffer.
const LIB_CACHE = "__nbtrackerChartLibs";
export const LIB_WAIT_MS = 1500;
const COMM_WAIT_MS = 60000;

/** The page's library cache: hash -> Promise<module>, and how many loads took which way. */
export function libCache() {
  if (!globalThis[LIB_CACHE]) globalThis[LIB_CACHE] = { byHash: new Map(), loads: { model: 0, comm: 0 } };
  return globalThis[LIB_CACHE];
}

export function loadLib(model) {
  const cache = libCache();
  const hash = String(model.get("lib_hash") || "");
  let p = cache.byHash.get(hash);
  if (!p) {
    p = (async () => {
      let code = await withTimeout(codeFromModel(model), LIB_WAIT_MS).catch(() => null);
      let way = "model";
      if (code == null) {
        code = await codeOverComm(model, hash);
        way = "comm";
      }
      const mod = await importCode(code);
      cache.loads[way] += 1;
      return mod;
    })();
    cache.byHash.set(hash, p);
    p.catch(() => { if (cache.byHash.get(hash) === p) cache.byHash.delete(hash); });
  }
  return p;
}

async function codeFromModel(model) {
  const ref = String(model.get("lib") || "");
  const id = ref.startsWith("IPY_MODEL_") ? ref.slice("IPY_MODEL_".length) : ref;
  if (!id) throw new Error("no library model");
  const libModel = await model.widget_manager.get_model(id);
  const code = libModel && libModel.get("code");
  if (!code) throw new Error("the library model holds no code");
  return code;
}

function codeOverComm(model, hash) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      model.off("msg:custom", onMsg);
      reject(new Error("the kernel did not send the chart library (is it running?)"));
    }, COMM_WAIT_MS);
    function onMsg(msg, buffers) {
      if (!msg || msg.type !== "lib") return;
      clearTimeout(timer);
      model.off("msg:custom", onMsg);
      const buf = buffers && buffers[0];
      if (!buf) return reject(new Error("the kernel sent no library"));
      const bytes = ArrayBuffer.isView(buf) ? new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) : new Uint8Array(buf);
      sha256(bytes).then((got) => {
        if (hash && got && got !== hash) reject(new Error(`the library received has hash ${got}, not ${hash}`));
        else resolve(bytes);
      }, reject);
    }
    model.on("msg:custom", onMsg);
    model.send({ type: "lib" });
  });
}

async function sha256(bytes) {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  if (!subtle) return null; // not a secure context: the size of the bundle is the only check
  const digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function importCode(code) {
  const url = URL.createObjectURL(new Blob([code], { type: "text/javascript" }));
  try {
    return await import(/* webpackIgnore: true */ url);
  } finally {
    URL.revokeObjectURL(url);
  }
}

function withTimeout(promise, ms) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error("timed out")), ms); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
