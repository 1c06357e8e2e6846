// Bundles the widget front-end into ../nbtracker/static/:
//   vega.js     lib.js: vega + vega-lite + vega-embed and the widgets' code, loaded once per page
//   widgets.js  boot.js: the loader each widget model carries (a few KB)
//   widgets.css their styles
import * as esbuild from "esbuild";

const common = { bundle: true, format: "esm", minify: true, target: "es2020", logLevel: "warning" };
await esbuild.build({ ...common, entryPoints: ["lib.js"], outfile: "../nbtracker/static/vega.js" });
await esbuild.build({ ...common, entryPoints: ["boot.js"], outfile: "../nbtracker/static/widgets.js" });
await esbuild.build({ ...common, entryPoints: ["widgets.css"], outfile: "../nbtracker/static/widgets.css" });
