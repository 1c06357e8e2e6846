"""nbtracker in the notebook: `%load_ext nbtracker`, live panels, run tables, config diffs and
run comparison — all drawn with the bundled charting library, with no network.

>>> nbtracker.runs_table("mnist")                      # sortable, filterable; select and compare
>>> nbtracker.compare("mnist/ab12cd34", "mnist/ef56gh78", metrics=["loss"], smooth=0.6)
>>> nbtracker.compare_view(*nbtracker.Api().runs("mnist"))  # any number; drag to zoom
>>> nbtracker.diff("baseline", "bigger-lr")           # differing config keys highlighted
>>> nbtracker.notebook.sweep_panel("k3x9q2ab")         # a sweep's trials, best, charts, importance
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .static import ConfigDiffView
from .table import run_rows, runs_table, table_static_html
from .widgets import ChartView, ConfigDiff, LivePanel, RunTable, SweepPanel, jsonable

__all__ = ["compare", "compare_view", "comparison_panels", "runs_table", "diff", "chart_view",
           "LivePanel", "RunTable", "ConfigDiff", "ConfigDiffView", "ChartView", "SweepPanel",
           "load_ipython_extension", "run_rows", "sweep_panel", "table_static_html"]

_X_AXES = {"step": "_step", "time": "_runtime", "runtime": "_runtime"}


def _api(api: Any = None):
    if api is not None:
        return api
    from ..api import Api

    return Api()


def _runs(refs: Iterable[Any], api: Any = None) -> list:
    a = _api(api)
    runs = [a.find(r) for r in refs]
    if not runs:
        raise ValueError("name at least one run")
    return runs


def _comparer(runs: tuple, api: Any, metrics: list[str] | None, group_by: str | None,
              smooth: float, x: str, width: int, height: int, limit: int):
    from ..charts.comparison import Comparer

    found = _runs(runs, api)
    x = _X_AXES.get(x, x)
    # runs on a team server come downsampled by the server, all in one request
    fetch = getattr(type(found[0]), "chart_histories", None)
    frames = fetch(found, metrics, x) if fetch is not None else None
    return Comparer(found, metrics=metrics, group_by=group_by, smooth=smooth, x=x, width=width,
                    height=height, limit=limit, frames=frames)


def compare(*runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
            smooth: float = 0.0, x: str = "step", api: Any = None, width: int = 480,
            height: int = 200, limit: int = 50):
    """Overlaid curves of several runs as an altair chart (restyle it, `.save()` it).

    Args:
        runs: run objects, "project/id", ids or unique names; any number of them.
        metrics: the metrics to draw, one chart each (default: the numeric ones every run logged).
        group_by: "group", "config.lr", ...: one mean line with a ±std band per group, computed
            from every logged point.
        smooth: TensorBoard's debiased EMA weight in [0, 1).
        x: "step", "time" or a logged metric ("epoch").
        width, height: of each chart, in pixels; curves hold about two points per pixel column
            (the minimum and maximum of each), so every spike shows.
        limit: at most this many curves per chart; beyond it, the runs with the best last value
            are drawn and the chart says so (group with `group_by` to see them all).

    `compare_view()` draws the same as a zoomable widget, without importing altair.

    >>> nbtracker.compare("mnist/ab12cd34", "mnist/ef56gh78", metrics=["loss"], smooth=0.6)
    """
    import altair as alt

    comp = _comparer(runs, api, metrics, group_by, smooth, x, width, height, limit).build()
    return alt.VConcatChart.from_dict(comp.spec(zoom=False), validate=False)


def compare_view(*runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
                 smooth: float = 0.0, x: str = "step", api: Any = None, width: int = 480,
                 height: int = 200, limit: int = 50) -> ChartView:
    """`compare()` as a widget: drag across a chart to zoom into that x range (redrawn from
    the full data, not magnified); "reset zoom" goes back. Arguments as for `compare()`.

    >>> nbtracker.compare_view(*api.runs("mnist"), metrics=["loss", "acc"])
    """
    from .static import comparison_bundle

    comparer = _comparer(runs, api, metrics, group_by, smooth, x, width, height, limit)
    comp = comparer.build()
    view = ChartView(spec=comp.spec())
    view.static = comparison_bundle(comp.panels(), comp.note or None, runs=len(runs))

    def on_msg(widget: ChartView, content: dict, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "zoom":
            return
        x0, x1 = content.get("x0"), content.get("x1")
        rng = None
        if isinstance(x0, (int, float)) and isinstance(x1, (int, float)) and x1 > x0:
            rng = (float(x0), float(x1))
        try:
            view.spec = comparer.build(x_range=rng).spec()
        except ValueError:  # nothing in that range: keep the chart as it is
            pass

    view.on_msg(on_msg)
    view.comparer = comparer
    return view


def comparison_panels(*runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
                      smooth: float = 0.0, x: str = "step", api: Any = None, width: int = 480,
                      height: int = 200, limit: int = 50) -> tuple[list, str]:
    """(list of `svg.Panel`, note) of the comparison `compare()` draws, from the same data:
    for the static form of a comparison (an SVG any viewer shows)."""
    comp = _comparer(runs, api, metrics, group_by, smooth, x, width, height, limit).build()
    return comp.panels(), comp.note


def diff_rows(runs: list, show_all: bool = True) -> tuple[list[str], list[dict]]:
    """(run labels, rows) for the ConfigDiff widget: every flattened config key with each run's
    value, whether it is missing there, and whether the runs differ."""
    from ..charts import MISSING, config_diff

    df = config_diff(runs, show_all=show_all)
    labels = [c for c in df.columns if c != "differs"]
    rows = []
    for key, row in df.iterrows():
        values, missing = [], []
        for c in labels:
            v = row[c]
            gone = v is MISSING or (isinstance(v, str) and v == MISSING)
            missing.append(bool(gone))
            values.append(None if gone else jsonable(v))
        rows.append({"key": str(key), "values": values, "missing": missing,
                     "differs": bool(row["differs"])})
    return labels, rows


def diff(*runs: Any, show_all: bool = False, api: Any = None) -> ConfigDiffView:
    """The config of several runs side by side: differing keys highlighted, nested keys
    flattened, missing keys shown as missing; the equal keys folded below (open with
    `show_all`). Plain HTML: it reads the same in every viewer, with or without a kernel."""
    labels, rows = diff_rows(_runs(runs, api), show_all=True)
    return ConfigDiffView(labels, rows, show_all=show_all)


def sweep_panel(sweep_id: str, storage: str | None = None) -> Any:
    """A sweep's live panel (what `%tracker sweep ID` shows); see `notebook.sweep`."""
    from .sweep import sweep_panel as panel

    return panel(sweep_id, storage=storage)


def chart_view(chart: Any) -> ChartView:
    """Draw an altair chart (or a vega-lite dict) with the bundled library."""
    spec = chart.to_dict() if hasattr(chart, "to_dict") else dict(chart)
    return ChartView(spec=spec)


def _altair_renderer(spec: dict, **metadata: Any):
    return ChartView(spec=spec)._repr_mimebundle_()


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext nbtracker`: the %tracker magics, and altair charts drawn offline."""
    from .magics import TrackerMagics

    ip.register_magics(TrackerMagics)
    try:
        import altair as alt

        alt.renderers.register("nbtracker", _altair_renderer)
        alt.renderers.enable("nbtracker")
    except Exception:
        pass


def unload_ipython_extension(ip: Any) -> None:
    try:
        import altair as alt

        if alt.renderers.active == "nbtracker":
            alt.renderers.enable("default")
    except Exception:
        pass

