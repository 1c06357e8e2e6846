"""Chart builders: runs in, altair charts out (values you can restyle, combine and save).

>>> chart = compare_chart(runs, metrics=["loss"], group_by="group", smooth=0.6)
>>> chart.properties(title="sweep").save("sweep.png")
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from .downsample import minmax_downsample

MISSING = "—missing—"  # a config key a run does not have, in config_diff()
X_TITLES = {"_step": "step", "_runtime": "time (s)", "_timestamp": "time"}


def ema(series: pd.Series, smoothing: float) -> pd.Series:
    """TensorBoard's debiased exponential moving average with weight `smoothing` in [0, 1).

    Non-finite values are skipped (and stay as they are); 0 leaves the series unchanged.
    """
    if not smoothing:
        return series.copy()
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), not {smoothing}")
    values = pd.to_numeric(series, errors="coerce").astype(float)
    ok = np.isfinite(values.to_numpy())
    out = values.copy()
    out[ok] = values[ok].ewm(alpha=1.0 - smoothing, adjust=True).mean()
    return out


def _lookup(run: Any, key: str) -> Any:
    """A run attribute for grouping: "group", "job_type", "name", "tags" or "config.a.b"."""
    if key.startswith("config."):
        cur: Any = run.config
        path = key[len("config."):]
        if isinstance(cur, dict) and path in cur:
            return cur[path]
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    v = getattr(run, key, None)
    return ", ".join(v) if isinstance(v, (list, tuple)) else v


def _labels(runs: list) -> list[str]:
    names = [r.name for r in runs]
    return [f"{n} ({r.id})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def long_history(runs: list, metrics: list[str] | None = None, x: str = "_step",
                 group_by: str | None = None) -> pd.DataFrame:
    """One row per (run, metric, x) with columns run, run_id, group, x, metric, value.

    `x` is "_step", "_runtime" or a logged column such as "epoch" (rows without it are
    dropped). `metrics` defaults to every numeric metric the runs logged. Only finite values.
    """
    frames = []
    for label, run in zip(_labels(runs), runs):
        df = run.history()
        if x not in df.columns:
            continue
        cols = [c for c in df.columns if not c.startswith("_") and c != x
                and pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
        if metrics is not None:
            cols = [c for c in metrics if c in df.columns and c != x]
        if not cols:
            continue
        part = df[[x, *cols]].melt(id_vars=[x], var_name="metric", value_name="value")
        part = part.rename(columns={x: "x"})
        part["value"] = pd.to_numeric(part["value"], errors="coerce")
        part["x"] = pd.to_numeric(part["x"], errors="coerce")
        part = part[np.isfinite(part["value"]) & np.isfinite(part["x"])]
        part.insert(0, "run", label)
        part.insert(1, "run_id", run.id)
        g = _lookup(run, group_by) if group_by else getattr(run, "group", None)
        part.insert(2, "group", "" if g is None else str(g))
        frames.append(part)
    if not frames:
        return pd.DataFrame(columns=["run", "run_id", "group", "x", "metric", "value"])
    return pd.concat(frames, ignore_index=True)


def _downsampled(df: pd.DataFrame, by: list[str], ycols: list[str], max_points: int) -> pd.DataFrame:
    """The curves (one per `by` value) reduced to about `max_points` rows in all, each keeping
    the extremes of every column in `ycols`."""
    parts = []
    groups = df.groupby(by, sort=False)
    per_curve = max(16, max_points // max(1, groups.ngroups))
    n_buckets = max(4, per_curve // (2 * len(ycols)) - 1)
    for _, g in groups:
        g = g.sort_values("x", kind="stable")
        if len(g) <= per_curve:
            parts.append(g)
            continue
        keep = set()
        idx = np.arange(len(g))
        for col in ycols:
            xs, _ = minmax_downsample(idx, g[col].to_numpy(dtype=float), n_buckets)
            keep.update(xs.astype(int).tolist())
        parts.append(g.iloc[sorted(keep)])
    return pd.concat(parts, ignore_index=True) if parts else df


def _group_stats(df: pd.DataFrame) -> pd.DataFrame:
    """Mean and std across the runs of each group at each x (x binned when it is continuous)."""
    df = df.copy()
    x = df["x"].to_numpy()
    if len(x) and not np.allclose(x, np.round(x)):
        lo, hi = float(x.min()), float(x.max())
        width = (hi - lo) / 500 or 1.0
        df["x"] = lo + (np.floor((x - lo) / width) + 0.5) * width
    stats = (df.groupby(["group", "metric", "x"], sort=True)["value"]
             .agg(["mean", "std", "count"]).reset_index())
    stats["std"] = stats["std"].fillna(0.0)
    stats["lower"] = stats["mean"] - stats["std"]
    stats["upper"] = stats["mean"] + stats["std"]
    return stats


def line_chart(df_long: pd.DataFrame, smooth: float = 0.0, group_by: str | None = None,
               max_points: int = 2000, title: str | None = None, x_title: str | None = None,
               width: int = 480, height: int = 200):
    """Overlaid curves from `long_history()`: one colour per run (or per group, with a mean line
    and a ±std band, when `group_by` is set); with `smooth` > 0 the raw curves are drawn faint
    under their EMA. One chart per metric, stacked."""
    import altair as alt

    x_title = x_title or "x"
    metrics = list(dict.fromkeys(df_long["metric"])) if len(df_long) else []
    charts = []
    for metric in metrics:
        d = df_long[df_long["metric"] == metric]
        base_x = alt.X("x:Q", title=x_title)
        y_scale = alt.Scale(zero=False)
        if group_by:
            s = _group_stats(d)
            if smooth:
                for col in ("mean", "lower", "upper"):
                    s[col] = s.groupby("group", sort=False)[col].transform(lambda c: ema(c, smooth))
            s = _downsampled(s, ["group"], ["mean", "lower", "upper"], max_points)
            color = alt.Color("group:N", title=group_by)
            band = alt.Chart(s).mark_area(opacity=0.2).encode(
                x=base_x, y=alt.Y("lower:Q", title=metric, scale=y_scale), y2="upper:Q",
                color=color)
            line = alt.Chart(s).mark_line().encode(
                x=base_x, y=alt.Y("mean:Q", title=metric, scale=y_scale), color=color,
                tooltip=["group:N", alt.Tooltip("x:Q", title=x_title),
                         alt.Tooltip("mean:Q", format=".4g"), alt.Tooltip("std:Q", format=".4g"),
                         alt.Tooltip("count:Q", title="runs")])
            layer = alt.layer(band, line)
        else:
            d = d.sort_values(["run", "x"], kind="stable")
            color = alt.Color("run:N", title="run")
            tooltip = ["run:N", alt.Tooltip("x:Q", title=x_title),
                       alt.Tooltip("value:Q", format=".4g")]
            if smooth:
                d = d.assign(smoothed=d.groupby("run", sort=False)["value"].transform(
                    lambda c: ema(c, smooth)))
                d = _downsampled(d, ["run"], ["value", "smoothed"], max_points)
                raw = alt.Chart(d).mark_line(opacity=0.25).encode(
                    x=base_x, y=alt.Y("value:Q", title=metric, scale=y_scale), color=color)
                smoothed = alt.Chart(d).mark_line().encode(
                    x=base_x, y=alt.Y("smoothed:Q", title=metric, scale=y_scale), color=color,
                    tooltip=[*tooltip, alt.Tooltip("smoothed:Q", format=".4g")])
                layer = alt.layer(raw, smoothed)
            else:
                d = _downsampled(d, ["run"], ["value"], max_points)
                layer = alt.Chart(d).mark_line().encode(
                    x=base_x, y=alt.Y("value:Q", title=metric, scale=y_scale), color=color,
                    tooltip=tooltip)
        charts.append(layer.properties(width=width, height=height, title=metric))
    if not charts:
        raise ValueError("no numeric values to plot for these runs and metrics")
    chart = charts[0] if len(charts) == 1 else alt.vconcat(*charts).resolve_scale(color="shared")
    if title:
        chart = chart.properties(title=title)
    return chart


def compare_chart(runs: list, metrics: list[str] | None = None, group_by: str | None = None,
                  smooth: float = 0.0, x: str = "_step", max_points: int = 2000):
    """Curves of several runs overlaid: `line_chart(long_history(...))`."""
    df = long_history(runs, metrics=metrics, x=x, group_by=group_by)
    return line_chart(df, smooth=smooth, group_by=group_by, max_points=max_points,
                      x_title=X_TITLES.get(x, x))


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


def config_diff(runs: list, show_all: bool = False) -> pd.DataFrame:
    """Config of runs side by side: index = config key (nested keys joined with '.'), one
    column per run, and `differs`. A key a run lacks holds `MISSING`. Differing keys come
    first; with `show_all=False` only they are kept."""
    labels = _labels(runs)
    flat = [_flatten(dict(r.config)) for r in runs]
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
    df["differs"] = [r[2] for r in rows]
    df.index.name = "key"
    return df
