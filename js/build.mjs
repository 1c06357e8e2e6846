// Bundles the widget front-end into ../nbtracker/static/:
//   vega.js     vega + vega-lite + vega-embed, loaded once per page (see lib.js)
//   widgets.js  nbtracker's widgets (small; each widget model carries a copy)
//   widgets.css their styles
import * as esbuild from "esbuild";

const common = { bundle: true, format: "esm", minify: true, target: "es2020", logLevel: "warning" };
await esbuild.build({ ...common, entryPoints: ["vega.js"], outfile: "../nbtracker/static/vega.js" });
await esbuild.build({ ...common, entryPoints: ["widgets.js"], outfile: "../nbtracker/static/widgets.js" });
await esbuild.build({ ...common, entryPoints: ["widgets.css"], outfile: "../nbtracker/static/widgets.css" });
