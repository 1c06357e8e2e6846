"""Comparisons of any number of runs of any length: the data behind `compare()`, its zoomable view
and its static form. numpy only (no altair, no pandas on the fast path), so a first chart comes
quickly in a fresh kernel.

- Each metric gets one panel. A run's curve holds about two points per pixel column (the
  minimum and maximum of the column, plus the ends): read from the run's series summaries
  (`store/summaries.py`) for long runs, from its points otherwise. Every spike stays.
- More than `limit` runs (default 50): with `group_by`, one band per group (mean ± std across
  the group's runs at each x, from every point, then cut to the columns); without, the `limit`
  runs with the best last value of the metric — lowest or highest as the metric's summary rule
  says (`define_metric(..., summary="min")`), else lowest for a loss or error, highest for the
  rest — and a note on the panel says which ("showing 50 of 1,000 runs: ...").
- `x_range=(x0, x1)` draws that range only, refined from the finest summary level that still
  gives every column a bucket, or from the points themselves.

>>> comp = Comparison.build(api.runs("mnist"), metrics=["loss"], width=480)
>>> comp.spec()            # a vega-lite dict
>>> comp.panels()          # svg.Panel list for the static form
"""

from __future__ import annotations

import fnmatch
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..store import summaries as sums
from .downsample import _points, column_extremes

LIMIT = 50
WIDTH = 480
HEIGHT = 200
SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"
X_TITLES = {"_step": "step", "_runtime": "time (s)", "_timestamp": "timestamp (s)"}
NO_GROUP = "(none)"
SUMMARY_MIN = sums.BASE * sums.MIN_BUCKETS  # runs with fewer rows are read point by point
# whole words of a metric's name (split at / _ . - and spaces) that mean lower is better
_LOWER_IS_BETTER = {"loss", "losses", "err", "error", "errors", "perplexity", "ppl", "mse", "mae",
                    "rmse", "wer", "cer", "nll", "regret", "bpc", "bpd"}


def _lower_is_better(metric: str) -> bool:
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", metric)  # valLoss: val, loss
    return any(w in _LOWER_IS_BETTER for w in re.split(r"[/_.\-\s]+", words.lower()))


@dataclass
class Curve:
    label: str
    x: np.ndarray
    y: np.ndarray
    sx: np.ndarray | None = None  # the smoothed curve, one point per column
    sy: np.ndarray | None = None


@dataclass
class GroupBand:
    label: str
    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    count: np.ndarray
    line: np.ndarray  # the mean, or the smoothed mean
    lower: np.ndarray
    upper: np.ndarray


@dataclass
class MetricPanel:
    metric: str
    curves: list[Curve] = field(default_factory=list)
    bands: list[GroupBand] = field(default_factory=list)
    note: str = ""


# -- reading a run's series --------------------------------------------------------------------

class _RunData:
    """One run's series for one x axis: summaries for long local runs, points otherwise."""

    def __init__(self, run: Any, x: str, frame: Any = None):
        self.run, self.x = run, x
        self._frame = frame
        self._sums: sums.Summaries | None = None
        self._points: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._window: tuple | None = None  # ((x0, x1), {key: (x, y)}) of a run with summaries
        # long runs are read through their series summaries (`ApiRun.series_summaries`)
        self.summarised = (x == "_step" and hasattr(run, "series_summaries")
                           and getattr(run, "steps", 0) >= SUMMARY_MIN)

    def summaries(self) -> sums.Summaries | None:
        if self.summarised and self._sums is None:
            self._sums = self.run.series_summaries()
            if self._sums is None:
                self.summarised = False
        return self._sums

    def _from_summaries(self, get):
        """get(summaries), or None; a level found damaged costs a rebuild from the log."""
        s = self.summaries()
        if s is None:
            return None
        got = get(s)
        if got is None and s.damaged:
            self._sums = s = self.run.series_summaries(rebuild=True)
            got = get(s) if s is not None else None
        return got

    def frame(self):
        if self._frame is None:
            self._frame = self.run.history()
        return self._frame

    def metrics(self) -> list[str]:
        last = getattr(self.run, "last_values", None)
        if isinstance(last, dict) and self.x == "_step":
            return [k for k, v in last.items() if _is_number(v) and not k.startswith("_")]
        s = self.summaries()
        if s is not None:
            return list(s.keys)
        df = self.frame()
        if self.x not in df.columns:
            return []
        return [c for c in df.columns if not str(c).startswith("_") and c != self.x
                and sums.as_floats(df[c]) is not None]

    def points(self, key: str, x0: float = -math.inf,
               x1: float = math.inf) -> tuple[np.ndarray, np.ndarray]:
        """Every finite point (x ascending) of `key` in [x0, x1]. A run with summaries is read
        from the log for all its keys at once, and only a window around the range is kept (the
        range and as much again on each side: a zoom within it, or a small pan, reads nothing
        more); other runs' histories are kept whole (they are short)."""
        if self.summarised and self._frame is None:
            w = self._window
            if w is None or not (w[0][0] <= x0 and x1 <= w[0][1]):
                pad = (x1 - x0) if math.isfinite(x1 - x0) else 0.0
                a, b = x0 - pad, x1 + pad
                inside = {}
                for k, (x, y) in self.run.series().items():
                    lo, hi = np.searchsorted(x, a, "left"), np.searchsorted(x, b, "right")
                    inside[k] = (x[lo:hi].copy(), y[lo:hi].copy())
                self._window = w = ((a, b), inside)
            x, y = w[1].get(key, (np.empty(0), np.empty(0)))
            lo, hi = np.searchsorted(x, x0, "left"), np.searchsorted(x, x1, "right")
            return x[lo:hi], y[lo:hi]
        got = self._points.get(key)
        if got is None:
            df = self.frame()
            got = (np.empty(0), np.empty(0))
            x = sums.as_floats(df[self.x]) if self.x in df.columns else None
            y = sums.as_floats(df[key]) if key in df.columns else None
            if x is not None and y is not None:
                ok = np.isfinite(x) & np.isfinite(y)
                x, y = x[ok], y[ok]
                order = np.argsort(x, kind="stable")
                got = (x[order], y[order])
            self._points[key] = got
        x, y = got
        lo, hi = np.searchsorted(x, x0, "left"), np.searchsorted(x, x1, "right")
        return x[lo:hi], y[lo:hi]

    def release(self) -> None:
        """Drop the points read for a range (they can be large)."""
        self._window = None

    def has(self, key: str) -> bool:
        """Whether the run logged `key` (cheap for stored runs: their last values say)."""
        last = getattr(self.run, "last_values", None)
        if isinstance(last, dict) and self.x == "_step":
            return key in last
        return self.extent(key) is not None

    def extent(self, key: str) -> tuple[float, float] | None:
        t = self._from_summaries(lambda s: s.coarsest(key))
        if t is not None:
            return float(t[0, sums.X0]), float(t[-1, sums.X1])
        x, _ = self.points(key)
        return (float(x[0]), float(x[-1])) if len(x) else None

    def last(self, key: str) -> float:
        """The metric's last value (NaN if none is finite), for ranking runs."""
        last = getattr(self.run, "last_values", None)
        if isinstance(last, dict) and self.x == "_step" and key in last:
            v = last[key]
            return float(v) if _is_number(v) and math.isfinite(v) else math.nan
        t = self._from_summaries(lambda s: s.coarsest(key))
        if t is not None:
            return float(t[-1, sums.LAST])
        _, y = self.points(key)
        return float(y[-1]) if len(y) else math.nan

    def buckets(self, key: str, x0: float, x1: float, columns: int) -> np.ndarray:
        """Buckets of `key` overlapping [x0, x1]: at least `columns` of them from a summary
        level when one has that many there, else one per point."""
        t = self._from_summaries(lambda s: s.level_for(key, x0, x1, columns))
        if t is not None:
            return clip_buckets(t, x0, x1)
        x, y = self.points(key, x0, x1)
        return sums.buckets_of(x, y, 1) if len(x) else np.empty((0, len(sums.FIELDS)))


def clip_buckets(t: np.ndarray, x0: float, x1: float) -> np.ndarray:
    """Buckets limited to [x0, x1]: an edge bucket reaching outside keeps only the points it
    knows inside (its first, last, minimum and maximum that fall there) and goes if it knows
    none, so an extreme outside a zoomed range never stretches its scale."""
    if not len(t) or (t[0, sums.X0] >= x0 and t[-1, sums.X1] <= x1):
        return t
    t = t.copy()
    keep = np.ones(len(t), dtype=bool)
    for i in {0, len(t) - 1}:
        b = t[i]
        if b[sums.X0] >= x0 and b[sums.X1] <= x1:
            continue
        known = [(b[sums.X0], b[sums.FIRST]), (b[sums.X1], b[sums.LAST]),
                 (b[sums.XMIN], b[sums.MIN]), (b[sums.XMAX], b[sums.MAX])]
        inside = sorted({(x, y) for x, y in known if x0 <= x <= x1})
        if not inside:
            keep[i] = False
            continue
        lo = min(inside, key=lambda p: p[1])
        hi = max(inside, key=lambda p: p[1])
        b[sums.X0], b[sums.FIRST] = inside[0]
        b[sums.X1], b[sums.LAST] = inside[-1]
        b[sums.XMIN], b[sums.MIN] = lo
        b[sums.XMAX], b[sums.MAX] = hi
        b[sums.COUNT] = len(inside)
        b[sums.SUM] = sum(y for _, y in inside)
    return t[keep]


def _is_number(v: Any) -> bool:
    """An int or float (NaN included), not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def lookup(run: Any, key: str) -> Any:
    """A run attribute for grouping: "group", "job_type", "name", "tags" or "config.a.b"."""
    if key.startswith("config."):
        cur: Any = run.config
        path = key[len("config."):]
        if isinstance(cur, dict) and path in cur:  # a key that itself holds dots
            return cur[path]
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                return None
            cur = cur[part]
        return cur
    v = getattr(run, key, None)
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else v


# -- columns -----------------------------------------------------------------------------------

def _columns_of(t: np.ndarray, x0: float, x1: float, n: int) -> np.ndarray:
    """Bucket ids of the `n` pixel columns over [x0, x1] for each bucket of `t` (by its start)."""
    span = (x1 - x0) or 1.0
    return np.clip(np.floor((t[:, sums.X0] - x0) / span * n), 0, n - 1).astype(np.int64)


def curve_points(t: np.ndarray, x0: float, x1: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Two points per column (its minimum and maximum, in x order), and the ends."""
    if not len(t):
        return np.empty(0), np.empty(0)
    c = sums.merge(t, _columns_of(t, x0, x1, n))
    xs, ys = _points(c[:, sums.XMIN], c[:, sums.MIN], c[:, sums.XMAX], c[:, sums.MAX])
    first = (c[0, sums.X0], c[0, sums.FIRST])
    last = (c[-1, sums.X1], c[-1, sums.LAST])
    if not (xs[0] == first[0] and ys[0] == first[1]):
        xs, ys = np.r_[first[0], xs], np.r_[first[1], ys]
    if not (xs[-1] == last[0] and ys[-1] == last[1]):
        xs, ys = np.r_[xs, last[0]], np.r_[ys, last[1]]
    return xs, ys


def smoothed(t: np.ndarray, x0: float, x1: float, n: int, weight: float):
    """TensorBoard's debiased EMA over the buckets (a bucket of k points decays weight**k and
    adds its mean; exact where buckets are points), one point per column (its last bucket)."""
    if not len(t):
        return np.empty(0), np.empty(0)
    mean = t[:, sums.SUM] / t[:, sums.COUNT]
    decay = weight ** t[:, sums.COUNT]
    out = np.empty(len(t))
    acc = norm = 0.0
    for i, (m, d) in enumerate(zip(mean.tolist(), decay.tolist())):
        acc = acc * d + (1 - d) * m
        norm = norm * d + (1 - d)
        out[i] = acc / norm
    col = _columns_of(t, x0, x1, n)
    ends = np.append(np.flatnonzero(np.diff(col)), len(t) - 1)
    return t[ends, sums.X1], out[ends]


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    if not weight or not len(values):
        return values
    import pandas as pd

    return pd.Series(values).ewm(alpha=1.0 - weight, adjust=True).mean().to_numpy()


def group_stats(parts: list[tuple[np.ndarray, np.ndarray]], bins: int):
    """(x, mean, std (ddof=1; 0 for one run), count) across runs at each x, from every point.
    A run's own points at one x are averaged first, so it counts once.

    Runs logged at the same steps are compared at those steps. Where one run logged a step
    another did not (a run that evaluates every 10 steps beside one that evaluates every step),
    the other's value there is read off its line between its neighbouring points — inside its
    own first and last x only — so every run counts at every x it spans and the band does not
    jump between the runs that happen to have a point. Runs whose x do not line up at all (wall
    time) are aligned on `bins` equal bins of x instead (x is then the bin's centre)."""
    parts = [(x, y) for x, y in parts if len(x)]
    if not parts:
        return (np.empty(0),) * 4
    per_run = max(len(np.unique(x)) for x, _ in parts)
    distinct = np.unique(np.concatenate([x for x, _ in parts]))
    if len(distinct) > 1.5 * per_run:  # not aligned: bins
        lo, hi = float(distinct[0]), float(distinct[-1])
        n = max(1, min(bins, per_run))
        width = (hi - lo) / n or 1.0
        parts = [(lo + (np.minimum(np.floor((x - lo) / width), n - 1) + 0.5) * width, y)
                 for x, y in parts]
        distinct = np.unique(np.concatenate([x for x, _ in parts]))
    own = []
    for x, y in parts:  # one value per run and x
        ux, inv = np.unique(x, return_inverse=True)
        own.append((ux, np.bincount(inv, y) / np.bincount(inv)))

    def on_grid(ux, uy):
        lo, hi = np.searchsorted(distinct, ux[0], "left"), np.searchsorted(distinct, ux[-1], "right")
        return lo, hi, np.interp(distinct[lo:hi], ux, uy)

    count = np.zeros(len(distinct))
    total = np.zeros(len(distinct))
    for ux, uy in own:
        lo, hi, v = on_grid(ux, uy)
        count[lo:hi] += 1
        total[lo:hi] += v
    mean = total / np.maximum(count, 1)
    dev = np.zeros(len(distinct))
    for ux, uy in own:  # a second pass: deviations from the mean (no cancellation)
        lo, hi, v = on_grid(ux, uy)
        dev[lo:hi] += (v - mean[lo:hi]) ** 2
    std = np.where(count > 1, np.sqrt(dev / np.maximum(count - 1, 1)), 0.0)
    keep = count > 0
    return distinct[keep], mean[keep], std[keep], count[keep].astype(np.int64)


# -- choosing runs -----------------------------------------------------------------------------

def direction(runs: list, metric: str) -> tuple[bool, str]:
    """(lower is better, why) for ranking runs by `metric`."""
    for run in runs:
        for d in reversed(list(getattr(run, "metrics", None) or [])):
            name = str(d.get("name", ""))
            if name != metric and not fnmatch.fnmatchcase(metric, name):
                continue
            rules = d.get("summary") or []
            goal = d.get("goal")
            if "min" in rules or goal == "minimize":
                return True, "its summary is min"
            if "max" in rules or goal == "maximize":
                return False, "its summary is max"
    if _lower_is_better(metric):
        return True, "taken as a loss; set define_metric(summary=...) to choose"
    return False, "set define_metric(summary=\"min\") to rank by the lowest"


def _count(n: int) -> str:
    return f"{n:,}"


# -- the comparison ----------------------------------------------------------------------------

class Comparison:
    """The data of a comparison: one `MetricPanel` per metric, the x range shown, the x title."""

    def __init__(self, panels: list[MetricPanel], x: str, x_range: tuple[float, float] | None,
                 extent: tuple[float, float] | None, group_by: str | None, smooth: float,
                 width: int, height: int, title: str | None = None):
        self.metric_panels = panels
        self.x = x
        self.x_range = x_range
        self.extent = extent
        self.group_by = group_by
        self.smooth = smooth
        self.width, self.height = width, height
        self.title = title
        self.x_title = X_TITLES.get(x, x)

    @property
    def note(self) -> str:
        notes = list(dict.fromkeys(p.note for p in self.metric_panels if p.note))
        return "; ".join(notes)

    @classmethod
    def build(cls, runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
              smooth: float = 0.0, x: str = "_step", width: int = WIDTH, height: int = HEIGHT,
              x_range: tuple[float, float] | None = None, limit: int = LIMIT,
              title: str | None = None, frames: list | None = None) -> Comparison:
        """See the module docstring. `frames`: histories already fetched, one per run."""
        return Comparer(runs, metrics, group_by, smooth, x, width, height, limit, title,
                        frames).build(x_range)

    @staticmethod
    def _top(panel: MetricPanel, have: list, runs: list, limit: int) -> list:
        """The `limit` runs with the best last value (in their order); the note says so."""
        lower, why = direction(runs, panel.metric)
        last = np.array([d.last(panel.metric) for _, d in have])
        key = np.where(np.isnan(last), np.inf, last if lower else -last)
        order = np.argsort(key, kind="stable")[:limit]
        panel.note = (f"showing {_count(limit)} of {_count(len(have))} runs: the "
                      f"{'lowest' if lower else 'highest'} last {panel.metric} ({why})")
        return [have[i] for i in sorted(order.tolist())]

    @staticmethod
    def _curves(panel: MetricPanel, have: list, smooth: float, x0: float, x1: float,
                columns: int) -> None:
        for label, d in have:
            t = d.buckets(panel.metric, x0, x1, columns)
            if not len(t):
                continue
            xs, ys = curve_points(t, x0, x1, columns)
            curve = Curve(label, xs, ys)
            if smooth:
                curve.sx, curve.sy = smoothed(t, x0, x1, columns, smooth)
            panel.curves.append(curve)

    @staticmethod
    def _bands(panel: MetricPanel, have: list, group_by: str, smooth: float, x0: float,
               x1: float, columns: int, limit: int) -> None:
        groups: dict[str, list] = {}
        for _, d in have:
            v = lookup(d.run, group_by)
            groups.setdefault(NO_GROUP if v in (None, "") else str(v), []).append(d)
        names = list(groups)
        if len(names) > limit:  # the largest groups
            names = sorted(names, key=lambda g: -len(groups[g]))[:limit]
            names = [g for g in groups if g in names]
            panel.note = f"showing {_count(limit)} of {_count(len(groups))} groups: the largest"
        for g in names:
            parts = []
            for d in groups[g]:
                parts.append(d.points(panel.metric, x0, x1))
                d.release()  # every point of every run and key at once would not fit
            ux, mean, std, count = group_stats(parts, bins=2 * columns)
            if not len(ux):
                continue
            line, spread = mean, std
            if smooth:
                line, spread = _ema(mean, smooth), _ema(std, smooth)
            lower, upper = line - spread, line + spread
            keep = column_extremes(ux, [mean, line, lower, upper], x0, x1, columns)
            panel.bands.append(GroupBand(g, ux[keep], mean[keep], std[keep], count[keep],
                                         line[keep], lower[keep], upper[keep]))

    # -- outputs -------------------------------------------------------------------------------
    def spec(self, zoom: bool = True) -> dict:
        """A vega-lite spec: one panel per metric (stacked), colours shared; with `zoom`, an x
        interval selection per panel (`usermeta.nbtracker.zoom` names them) for a view that
        answers zoom requests (`compare_view`)."""
        datasets: dict[str, list] = {}
        panels = []
        names = []
        x_scale: dict = {"zero": False}
        if self.x_range is not None:
            x_scale["domain"] = [float(self.x_range[0]), float(self.x_range[1])]
        x_enc = {"field": "x", "type": "quantitative", "title": self.x_title, "scale": x_scale}
        for i, p in enumerate(self.metric_panels):
            name = f"zoom{i}"
            if zoom:
                names.append(name)
            y_scale = {"zero": False}
            layers = []
            if self.group_by:
                key = "group"
                color = {"field": key, "type": "nominal", "title": self.group_by,
                         "sort": [b.label for b in p.bands]}
                datasets[f"d{i}"] = [{"group": b.label, "x": _nums(b.x), "mean": _nums(b.mean),
                                      "std": _nums(b.std), "count": _nums(b.count),
                                      "line": _nums(b.line), "lower": _nums(b.lower),
                                      "upper": _nums(b.upper)} for b in p.bands]
                flat = {"flatten": ["x", "mean", "std", "count", "line", "lower", "upper"]}
                data = {"data": {"name": f"d{i}"}, "transform": [flat]}
                layers.append({**data, "mark": {"type": "area", "opacity": 0.2, "clip": True},
                               "encoding": {"x": x_enc, "color": color,
                                            "y": {"field": "lower", "type": "quantitative",
                                                  "title": p.metric, "scale": y_scale},
                                            "y2": {"field": "upper"}}})
                if self.smooth:
                    layers.append({**data, "mark": {"type": "line", "opacity": 0.25, "clip": True},
                                   "encoding": {"x": x_enc, "color": color,
                                                "y": {"field": "mean", "type": "quantitative"}}})
                tip = [{"field": "group", "type": "nominal", "title": self.group_by},
                       {"field": "x", "type": "quantitative", "title": self.x_title},
                       {"field": "mean", "type": "quantitative", "format": ".4g"},
                       {"field": "std", "type": "quantitative", "format": ".4g"},
                       {"field": "count", "type": "quantitative", "title": "runs"}]
                layers.append({**data, "mark": {"type": "line", "clip": True},
                               "encoding": {"x": x_enc, "color": color, "tooltip": tip,
                                            "y": {"field": "line", "type": "quantitative",
                                                  "title": p.metric, "scale": y_scale}}})
            else:
                color = {"field": "run", "type": "nominal", "title": "run",
                         "sort": [c.label for c in p.curves]}
                datasets[f"d{i}"] = [{"run": c.label, "x": _nums(c.x), "value": _nums(c.y)}
                                     for c in p.curves]
                data = {"data": {"name": f"d{i}"}, "transform": [{"flatten": ["x", "value"]}]}
                tip = [{"field": "run", "type": "nominal"},
                       {"field": "x", "type": "quantitative", "title": self.x_title},
                       {"field": "value", "type": "quantitative", "format": ".4g"}]
                layers.append({**data, "mark": {"type": "line", "clip": True,
                                                **({"opacity": 0.25} if self.smooth else {})},
                               "encoding": {"x": x_enc, "color": color, "tooltip": tip,
                                            "y": {"field": "value", "type": "quantitative",
                                                  "title": p.metric, "scale": y_scale}}})
                if self.smooth:
                    datasets[f"s{i}"] = [{"run": c.label, "x": _nums(c.sx),
                                          "smoothed": _nums(c.sy)} for c in p.curves]
                    layers.append({"data": {"name": f"s{i}"},
                                   "transform": [{"flatten": ["x", "smoothed"]}],
                                   "mark": {"type": "line", "clip": True},
                                   "encoding": {"x": x_enc, "color": color,
                                                "y": {"field": "smoothed", "type": "quantitative",
                                                      "title": p.metric, "scale": y_scale}}})
            if zoom:
                layers[0]["params"] = [{"name": name, "select": {"type": "interval",
                                                                "encodings": ["x"]}}]
            title: dict = {"text": p.metric}
            if p.note:
                title["subtitle"] = p.note
            panels.append({"title": title, "width": self.width, "height": self.height,
                           "layer": layers})
        spec = {"$schema": SCHEMA, "datasets": datasets, "vconcat": panels,
                "resolve": {"scale": {"color": "shared"}},
                "usermeta": {"nbtracker": {
                    "zoom": names, "note": self.note,
                    "range": list(self.x_range) if self.x_range is not None else None,
                    "extent": list(self.extent) if self.extent is not None else None}}}
        if self.title:
            spec["title"] = self.title
        return spec

    def panels(self) -> list:
        """The same data as `svg.Panel`s, for the static form."""
        from . import svg

        out = []
        for p in self.metric_panels:
            panel = svg.Panel(p.metric, x_title=self.x_title)
            for c in p.curves:
                if self.smooth and c.sx is not None:
                    panel.series.append(svg.Series(c.label, c.x, c.y, opacity=0.25))
                    panel.series.append(svg.Series(c.label, c.sx, c.sy))
                else:
                    panel.series.append(svg.Series(c.label, c.x, c.y))
            for b in p.bands:
                panel.bands.append(svg.Band(b.label, b.x, b.lower, b.upper))
                panel.series.append(svg.Series(b.label, b.x, b.line))
            out.append(panel)
        return out


class Comparer:
    """The runs and settings of a comparison, kept to build it again for another x range (a
    zoom) without reading what was read already."""

    def __init__(self, runs: Any, metrics: list[str] | None = None, group_by: str | None = None,
                 smooth: float = 0.0, x: str = "_step", width: int = WIDTH, height: int = HEIGHT,
                 limit: int = LIMIT, title: str | None = None, frames: list | None = None):
        if not 0.0 <= smooth < 1.0:
            raise ValueError(f"smooth must be in [0, 1), not {smooth}")
        self.runs = [runs] if hasattr(runs, "history") else list(runs)
        if not self.runs:
            raise ValueError("name at least one run")
        self.data = [_RunData(r, x, frames[i] if frames else None)
                     for i, r in enumerate(self.runs)]
        self.labels = _labels(self.runs)
        self.group_by, self.smooth, self.x = group_by, smooth, x
        self.width, self.height, self.limit, self.title = int(width), int(height), limit, title
        if metrics is None:
            shared = [d.metrics() for d in self.data]
            metrics = [m for m in shared[0] if all(m in s for s in shared[1:])]
        self.metrics = [m for m in dict.fromkeys(metrics) if m != x]

    def build(self, x_range: tuple[float, float] | None = None) -> Comparison:
        columns = max(1, self.width)
        panels, extents = [], []
        for metric in self.metrics:
            have = [(lab, d) for lab, d in zip(self.labels, self.data) if d.has(metric)]
            panel = MetricPanel(metric)
            if not self.group_by and len(have) > self.limit:
                have = Comparison._top(panel, have, self.runs, self.limit)
            ext = [e for e in (d.extent(metric) for _, d in have) if e is not None]
            if not ext:
                continue
            lo = min(e[0] for e in ext)
            hi = max(e[1] for e in ext)
            extents.append((lo, hi))
            x0, x1 = x_range if x_range is not None else (lo, hi)
            if self.group_by:
                Comparison._bands(panel, have, self.group_by, self.smooth, x0, x1, columns,
                                  self.limit)
            else:
                Comparison._curves(panel, have, self.smooth, x0, x1, columns)
            if panel.curves or panel.bands:
                panels.append(panel)
        if x_range is None:  # windows are kept for zooms only
            for d in self.data:
                d.release()
        if not panels:
            raise ValueError("no numeric values to plot for these runs and metrics")
        extent = (min(e[0] for e in extents), max(e[1] for e in extents))
        return Comparison(panels, self.x, x_range, extent, self.group_by, self.smooth,
                          self.width, self.height, self.title)


def _nums(a: np.ndarray) -> list:
    """JSON numbers: integers where every value is one (steps), floats otherwise."""
    if a is None:
        return []
    if len(a) and np.all(a == np.floor(a)) and np.all(np.abs(a) < 2**53):
        return a.astype(np.int64).tolist()
    return a.tolist()


def _labels(runs: list) -> list[str]:
    names = [str(r.name) for r in runs]
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    return [f"{n} ({r.id})" if counts[n] > 1 else n for n, r in zip(names, runs)]
