"""nbtracker in the notebook: `%load_ext nbtracker`, live panels, run tables, config diffs and
run comparison — all drawn with the bundled charting library, with no network.

>>> nbtracker.runs_table("mnist")                      # sortable, filterable; select and compare
>>> nbtracker.compare("mnist/ab12cd34", "mnist/ef56gh78", metrics=["loss"], smooth=0.6)
>>> nbtracker.diff("baseline", "bigger-lr")           # differing config keys highlighted
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .static import ConfigDiffView
from .table import run_rows, runs_table, table_static_html
from .widgets import ChartView, ConfigDiff, LivePanel, RunTable, jsonable

__all__ = ["compare", "runs_table", "diff", "chart_view", "LivePanel", "RunTable", "ConfigDiff",
           "ConfigDiffView",
           "ChartView", "load_ipython_extension", "run_rows", "table_static_html"]

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


def compare(*runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
            smooth: float = 0.0, x: str = "step", api: Any = None):
    """Overlaid curves of several runs as an altair chart (restyle it, `.save()` it).

    Runs are run objects, "project/id", ids or unique names. `group_by` ("group",
    "config.lr", ...) draws one mean line with a ±std band per group; `smooth` is
    TensorBoard's debiased EMA weight; `x` is "step", "time" or a logged metric ("epoch").
    """
    from ..charts import compare_chart

    return compare_chart(_runs(runs, api), metrics=metrics, group_by=group_by, smooth=smooth,
                         x=_X_AXES.get(x, x))


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

