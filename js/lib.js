// The library every page loads once (static/vega.js): the charting library and the widgets'
// own code. Each widget model carries only the small loader (boot.js), so a notebook with many
// panels, tables and charts holds one copy of all of this, in the ChartLibrary model.
export { default as vegaEmbed } from "vega-embed";
export * as vega from "vega";
export { default as widget } from "./widgets.js";
