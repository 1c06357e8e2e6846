"""Chart builders: runs in, altair charts out (values you can restyle, combine and save).

>>> chart = compare_chart(runs, metrics=["loss"], group_by="group", smooth=0.6)
>>> chart.properties(title="sweep").save("sweep.png")

Data first, then charts: `long_history()` turns runs into one long DataFrame, `line_chart()`
draws it, `compare_chart()` does both. `config_diff()` and `ema()` are plain pandas.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .comparison import LIMIT, direction
from .comparison import lookup as _lookup
from .downsample import minmax_downsample

MISSING = "—missing—"  # a config key a run does not have, in config_diff()
NO_GROUP = "(none)"  # the group of a run without one, in group bands
X_TITLES = {"_step": "step", "_runtime": "time (s)", "_timestamp": "timestamp (s)"}
COLUMNS = ["run", "run_id", "group", "x", "metric", "value"]


def ema(series: pd.Series, smoothing: float) -> pd.Series:
    """TensorBoard's debiased exponential moving average with weight `smoothing` in [0, 1).

    Same index as `series`. The average runs over the finite values only: a NaN or ±inf stays
    where it is and neither resets nor poisons the points after it. 0 returns the series as is.

    >>> ema(pd.Series([1.0, 2.0, 3.0]), 0.5).round(4).tolist()
    [1.0, 1.6667, 2.4286]
    """
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), not {smoothing}")
    if smoothing == 0:
        return series.copy()
    values = pd.to_numeric(series, errors="coerce").astype(float)
    ok = np.isfinite(values.to_numpy())
    out = values.copy()
    out[ok] = values[ok].ewm(alpha=1.0 - smoothing, adjust=True).mean()
    return out


def _as_list(runs: Any) -> list:
    """One run-like object (it has a history()) or an iterable of them."""
    return [runs] if hasattr(runs, "history") else list(runs)


def _labels(runs: list, reserved: tuple[str, ...] = ()) -> list[str]:
    """Run names, with the id added where a name repeats (or collides with a column)."""
    names = [str(r.name) for r in runs]
    return [f"{n} ({r.id})" if names.count(n) > 1 or n in reserved else n
            for n, r in zip(names, runs)]


def _metric_columns(df: pd.DataFrame, x: str) -> list[str]:
    """The numeric (not boolean) logged columns of a history, in order; `_`-columns and x aside."""
    return [c for c in df.columns
            if not str(c).startswith("_") and c != x
            and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]


def long_history(runs: Any, metrics: list[str] | None = None, x: str = "_step",
                 group_by: str | None = None) -> pd.DataFrame:
    """One row per (run, metric, x) with columns run, run_id, group, x, metric, value.

    `run` is the run's name (with its id when two runs share a name), `group` its group ("" when
    it has none). `x` is "_step", "_runtime" or any logged column such as "epoch": rows without
    it are dropped, and so are runs that never logged it. `metrics` defaults to the numeric
    metrics every run logged. Only finite values are kept. With `group_by` ("config.lr",
    "job_type", ...) a column of that name holds each run's value as text, for
    `line_chart(..., group_by=...)`. The x column's name is kept in `df.attrs["x"]`.

    >>> long_history(runs, metrics=["loss"], x="epoch", group_by="config.lr")
    """
    runs = _as_list(runs)
    # runs on a team server come downsampled by the server, all in one request
    fetch = getattr(type(runs[0]), "chart_histories", None) if runs else None
    dfs = fetch(runs, metrics, x) if fetch is not None else None
    if dfs is None:
        dfs = [run.history() for run in runs]
    histories = list(zip(_labels(runs), runs, dfs))
    histories = [h for h in histories if x in h[2].columns]
    if metrics is None:
        shared = [_metric_columns(df, x) for _, _, df in histories]
        metrics = [c for c in shared[0] if all(c in s for s in shared[1:])] if shared else []
    metrics = [m for m in dict.fromkeys(metrics) if m != x]
    frames = []
    for label, run, df in histories:
        cols = [m for m in metrics if m in df.columns]
        if not cols:
            continue
        part = df[[x, *cols]].melt(id_vars=[x], var_name="metric", value_name="value")
        part = part.rename(columns={x: "x"})
        part["x"] = pd.to_numeric(part["x"], errors="coerce").astype(float)
        part["value"] = pd.to_numeric(part["value"], errors="coerce").astype(float)
        part = part[np.isfinite(part["value"].to_numpy()) & np.isfinite(part["x"].to_numpy())]
        part.insert(0, "run", label)
        part.insert(1, "run_id", run.id)
        group = getattr(run, "group", None)
        part.insert(2, "group", "" if group is None else str(group))
        if group_by and group_by not in part.columns:
            value = _lookup(run, group_by)
            part[group_by] = NO_GROUP if value is None else str(value)
        frames.append(part)
    extra = [group_by] if group_by and group_by not in COLUMNS else []
    if frames:
        out = pd.concat(frames, ignore_index=True)[COLUMNS + extra]
    else:
        out = pd.DataFrame(columns=COLUMNS + extra)
    out.attrs["x"] = x
    return out


def _downsampled(df: pd.DataFrame, by: str, ycols: list[str], max_points: int) -> pd.DataFrame:
    """The curves (rows sharing `by`, each sorted by x) cut to about `max_points` rows in all:
    each curve gets an equal share (at least 8) of rows that keep the ends and, per bucket,
    the minimum and maximum of every column in `ycols`."""
    groups = df.groupby(by, sort=False)
    share = max(8, max_points // max(1, groups.ngroups))
    n_buckets = max(1, (share - 2) // (2 * len(ycols)))
    parts = []
    for _, g in groups:
        if len(g) > share:
            idx = np.arange(len(g), dtype=np.float64)
            kept = [minmax_downsample(idx, g[c].to_numpy(dtype=np.float64), n_buckets)[0]
                    for c in ycols]
            g = g.iloc[np.unique(np.concatenate(kept)).astype(np.int64)]
        parts.append(g)
    return pd.concat(parts, ignore_index=True) if parts else df


def _group_stats(d: pd.DataFrame, key: str, bins: int) -> pd.DataFrame:
    """Mean, std (ddof=1; 0 for a single run) and run count across the runs of each `key` value
    at each x. Runs are aligned on x where they share x values (steps, epochs); where they do
    not (wall time), x is cut into `bins` equal bins and x becomes the bin's centre. Each run
    first averages its own points at one x, so a run counts once."""
    d = pd.DataFrame({"group": d[key].astype(str), "run": d["run"], "x": d["x"], "value": d["value"]})
    x = d["x"].to_numpy()
    per_run = int(d.groupby("run")["x"].nunique().max())
    if len(np.unique(x)) > 1.5 * per_run:  # the runs logged at different x
        lo, hi = float(x.min()), float(x.max())
        n = max(1, min(bins, per_run))
        width = (hi - lo) / n or 1.0
        i = np.minimum(np.floor((x - lo) / width), n - 1)
        d = d.assign(x=lo + (i + 0.5) * width)
    own = d.groupby(["group", "run", "x"], sort=False)["value"].mean().reset_index()
    stats = own.groupby(["group", "x"], sort=True)["value"].agg(["mean", "std", "count"]).reset_index()
    stats["std"] = stats["std"].fillna(0.0)
    return stats


def _order(values: pd.Series) -> list[str]:
    """Distinct values in order of first appearance."""
    return [str(v) for v in pd.unique(values)]


def _top_runs(s: pd.DataFrame, metric: str, runs: list, limit: int) -> tuple[pd.DataFrame, str]:
    """The curves of the `limit` runs with the best last value, and a note saying so (see
    `comparison.direction`); all of them and no note when there are not more."""
    last = s.groupby("run", sort=False)["value"].last()
    if len(last) <= limit:
        return s, ""
    lower, why = direction(runs, metric)
    best = (last if lower else -last).sort_values(kind="stable").index[:limit]
    note = (f"showing {limit:,} of {len(last):,} runs: the {'lowest' if lower else 'highest'} "
            f"last {metric} ({why})")
    return s[s["run"].isin(set(best))], note


def _metric_chart(d: pd.DataFrame, metric: str, smooth: float, group_by: str | None,
                  max_points: int, x_title: str, runs: list = (), limit: int = LIMIT):
    """One metric: overlaid run curves (the best `limit` of them), or group mean lines with
    ±std bands. Returns the chart and a note (empty unless runs were left out)."""
    import altair as alt

    note = ""
    x_enc = alt.X("x:Q", title=x_title)
    x_tip = alt.Tooltip("x:Q", title=x_title)
    y_scale = alt.Scale(zero=False)
    if group_by:
        s = _group_stats(d, group_by, bins=max_points)
        s["group"] = s["group"].replace("", NO_GROUP)
        line_col, spread = "mean", s["std"]
        if smooth:
            s["smoothed"] = s.groupby("group", sort=False)["mean"].transform(lambda c: ema(c, smooth))
            spread = s.groupby("group", sort=False)["std"].transform(lambda c: ema(c, smooth))
            line_col = "smoothed"
        s["lower"] = s[line_col] - spread
        s["upper"] = s[line_col] + spread
        ycols = ["mean", "lower", "upper"] + (["smoothed"] if smooth else [])
        s = _downsampled(s, "group", ycols, max_points)
        color = alt.Color("group:N", title=group_by, sort=_order(s["group"]))
        base = alt.Chart(s).encode(x=x_enc, color=color)
        layers = [base.mark_area(opacity=0.2).encode(
            y=alt.Y("lower:Q", title=metric, scale=y_scale), y2="upper:Q")]
        tooltip = [alt.Tooltip("group:N", title=group_by), x_tip,
                   alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("std:Q", format=".4g"),
                   alt.Tooltip("count:Q", title="runs")]
    else:
        s = d[["run", "x", "value"]].sort_values(["run", "x"], kind="stable")
        s, note = _top_runs(s, metric, runs, limit)
        line_col = "value"
        if smooth:
            s["smoothed"] = s.groupby("run", sort=False)["value"].transform(lambda c: ema(c, smooth))
            line_col = "smoothed"
        s = _downsampled(s, "run", ["value", "smoothed"] if smooth else ["value"], max_points)
        color = alt.Color("run:N", title="run", sort=_order(d["run"]))
        base = alt.Chart(s).encode(x=x_enc, color=color)
        layers = []
        tooltip = ["run:N", x_tip, alt.Tooltip("value:Q", format=".4g")]
    if smooth:  # the raw curve, faint, under its smoothed one
        layers.append(base.mark_line(opacity=0.25).encode(
            y=alt.Y(f"{'mean' if group_by else 'value'}:Q", title=metric, scale=y_scale)))
        tooltip.append(alt.Tooltip("smoothed:Q", format=".4g"))
    layers.append(base.mark_line().encode(
        y=alt.Y(f"{line_col}:Q", title=metric, scale=y_scale), tooltip=tooltip))
    return (layers[0] if len(layers) == 1 else alt.layer(*layers)), note


def line_chart(df_long: pd.DataFrame, smooth: float = 0.0, group_by: str | None = None,
               max_points: int = 2000, title: str | None = None, x_title: str | None = None,
               width: int = 480, height: int = 200, limit: int = LIMIT, runs: list = ()):
    """Overlaid curves of a `long_history()` frame, one chart per metric (stacked, each with its
    own y scale, colours shared).

    - one colour per run; with `group_by` (a column of the frame: "group", or the `group_by`
      given to `long_history()`) one colour per group instead: the mean across its runs and a
      mean ± std band (see `_group_stats` for how runs are aligned on x);
    - `smooth` in [0, 1) is TensorBoard's EMA weight: the raw curve (or group mean) is drawn
      faint (opacity 0.25) under the smoothed one, smoothed per run (or group) and metric; a
      group's band is then its smoothed mean ± its smoothed std;
    - each metric's chart holds at most about `max_points` points, shared equally by its
      curves and chosen by min/max downsampling (every spike stays), so million-step runs
      still give a small spec (and stay under altair's 5000-row limit);
    - `x_title` defaults to a name for the frame's x ("step", "time (s)", "epoch");
    - more than `limit` runs without `group_by`: the `limit` with the best last value are
      drawn (lowest or highest as `comparison.direction` decides from the metric's
      definitions in `runs`, or its name) and the chart's subtitle says so.

    Returns an altair chart (`alt.LayerChart`, `alt.Chart` or `alt.VConcatChart`): restyle it,
    combine it, `.save("x.png" | "x.svg" | "x.html")` it.

    >>> line_chart(long_history(runs, group_by="config.lr"), group_by="config.lr", smooth=0.6)
    """
    import altair as alt

    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1), not {smooth}")
    if group_by and group_by not in df_long.columns:
        raise ValueError(f"the frame has no column {group_by!r}: build it with "
                         f"long_history(runs, group_by={group_by!r})")
    x_name = df_long.attrs.get("x")
    x_title = x_title or X_TITLES.get(x_name, x_name) or "x"
    charts = []
    for metric in _order(df_long["metric"]):
        d = df_long[df_long["metric"] == metric]
        chart, note = _metric_chart(d, metric, smooth, group_by, max_points, x_title, runs, limit)
        head = alt.TitleParams(metric, subtitle=note) if note else metric
        charts.append(chart.properties(width=width, height=height, title=head))
    if not charts:
        raise ValueError("no numeric values to plot for these runs and metrics")
    if len(charts) == 1:
        chart = charts[0]
    else:
        chart = alt.vconcat(*charts).resolve_scale(color="shared")
    return chart.properties(title=title) if title else chart


def compare_chart(runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
                  smooth: float = 0.0, x: str = "_step", max_points: int = 2000,
                  title: str | None = None):
    """Curves of several runs overlaid: `line_chart(long_history(runs, ...), ...)`.

    >>> compare_chart(api.runs("mnist"), metrics=["loss"], group_by="config.lr", smooth=0.6)
    """
    runs = _as_list(runs)
    df = long_history(runs, metrics=metrics, x=x, group_by=group_by)
    return line_chart(df, smooth=smooth, group_by=group_by, max_points=max_points, title=title,
                      runs=runs)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _same(values: list) -> bool:
    enc = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return len(enc) == 1


def config_diff(runs: Any, show_all: bool = False) -> pd.DataFrame:
    """Configs side by side: index `key` (nested keys joined with "."), one column per run
    (its name; with the id added where names repeat) and a boolean `differs` column.

    A key a run does not have holds the string `MISSING` ("—missing—"), which differs from
    every value, None included. Differing keys come first, then alphabetical order; with
    `show_all=False` only the differing keys are kept.

    >>> config_diff(api.runs("mnist"))
    """
    runs = _as_list(runs)
    labels = _labels(runs, reserved=("differs",))
    flat = [_flatten(dict(r.config or {})) for r in runs]
    keys = sorted(set().union(*flat)) if flat else []
    rows = []
    for k in keys:
        values = [f.get(k, MISSING) for f in flat]
        rows.append((k, values, not _same(values)))
    rows.sort(key=lambda r: (not r[2], r[0]))
    if not show_all:
        rows = [r for r in rows if r[2]]
    df = pd.DataFrame([r[1] for r in rows], columns=labels, index=[r[0] for r in rows],
                      dtype=object)
    df["differs"] = pd.Series([r[2] for r in rows], index=df.index, dtype=bool)
    df.index.name = "key"
    return df
