// The charting library, shipped to the browser once per page by the ChartLibrary widget.
export { default as vegaEmbed } from "vega-embed";
export * as vega from "vega";
