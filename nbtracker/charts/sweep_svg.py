"""A sweep's charts as plain SVG text: the static form of the sweep panel (notebook/sweep.py).

- `render_parallel`: parallel coordinates, one vertical axis per parameter and one for the
  metric; a line per trial, coloured by its metric value (darker is better; grey without one),
  the best trial in red on top.
- `render_scatters`: the metric against each parameter, one small chart per parameter.
- `render_importance`: each parameter's share of the metric's variance, as bars.

An axis (`axis_for`) is numeric when every value it holds is a number, on a log scale when the
parameter's distribution is a log one and every value is positive, and categorical otherwise
(strings, booleans, lists; categories in the config's order, then as seen). Values that are
missing, NaN or infinite sit on a "–" slot under their axis. The live panel (js/sweep.js)
follows the same rules. User text (parameter names, values) is escaped.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .svg import _open, fmt, nice_ticks, text, tick_labels

BEST = "#e45756"
NONE = "#bbbbbb"
POINT = "#4c78a8"
# viridis, from worst (light) to best (dark)
_RAMP = ["#b5de2b", "#6ece58", "#35b779", "#1f9e89", "#26828e", "#31688e", "#3e4989", "#482878",
         "#440154"]


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_NONFINITE = {"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"}


def missing(v: Any) -> bool:
    """No value, or one that is not a finite number written as text (JSON has none)."""
    return v is None or (isinstance(v, float) and not math.isfinite(v)) or (
        isinstance(v, str) and v in _NONFINITE)


def label(v: Any) -> str:
    """A value as a category's label (as the live panel shows it)."""
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if is_number(v):
        return fmt(float(v), 5)
    return json.dumps(v, default=str, sort_keys=True)


@dataclass
class Axis:
    """One parameter's (or the metric's) axis: where a value sits, from 0 (bottom) to 1."""

    name: str
    kind: str  # "num", "log" or "cat"
    lo: float = 0.0
    hi: float = 1.0
    cats: list[str] = field(default_factory=list)
    marks: list[float] = field(default_factory=list)  # the values a numeric one takes, as ticks

    def pos(self, v: Any) -> float | None:
        if self.kind == "cat":
            if v is None:
                return None
            try:
                i = self.cats.index(label(v))
            except ValueError:
                return None
            return 0.5 if len(self.cats) == 1 else i / (len(self.cats) - 1)
        if not is_number(v) or (self.kind == "log" and v <= 0):
            return None
        x = math.log10(v) if self.kind == "log" else float(v)
        span = self.hi - self.lo
        return 0.5 if span <= 0 else (x - self.lo) / span

    def ticks(self) -> list[tuple[float, str]]:
        """(position, label) of the ticks."""
        if self.kind == "cat":
            step = max(1, math.ceil(len(self.cats) / 12))
            return [(self.pos_of(i), c) for i, c in enumerate(self.cats) if i % step == 0]
        if self.marks:
            shown = [(self.pos(m), fmt(float(m))) for m in self.marks]
            shown = [(p, lb) for p, lb in shown if p is not None and -1e-9 <= p <= 1 + 1e-9]
            if shown:
                return shown
        if self.kind == "log":
            lo, hi = math.floor(self.lo), math.ceil(self.hi)
            if hi - lo < 1:
                return [(self.pos(10 ** self.lo), fmt(10 ** self.lo))]
            stride = max(1, math.ceil((hi - lo) / 6))
            # a span of few decades takes 2 and 5 times each power of ten too
            steps = (1, 2, 5) if hi - lo <= 2 else (1,)
            out = []
            for e in range(lo, hi + 1, stride):
                for m in steps:
                    p = self.pos(m * 10.0 ** e)
                    if p is not None and -1e-9 <= p <= 1 + 1e-9:
                        out.append((p, fmt(m * 10.0 ** e)))
            return out or [(0.0, fmt(10 ** self.lo)), (1.0, fmt(10 ** self.hi))]
        if self.hi <= self.lo:
            return [(0.5, fmt(self.lo))]
        ts = nice_ticks(self.lo, self.hi, count=5)
        return [(self.pos(t), lb) for t, lb in zip(ts, tick_labels(ts))]

    def pos_of(self, i: int) -> float:
        return 0.5 if len(self.cats) == 1 else i / (len(self.cats) - 1)


def axis_for(name: str, values: list, space: dict | None = None) -> Axis:
    """The axis of a parameter holding `values` (see the module doc); `space` is its entry in
    the view's `space` (`{"distribution", "log", "values"}`)."""
    space = space or {}
    present = [v for v in values if not missing(v)]
    if present and all(is_number(v) for v in present):
        log = bool(space.get("log")) and all(v > 0 for v in present)
        given = space.get("values") or []
        marks = sorted({float(v) for v in given}) if given and len(given) <= 12 and all(
            is_number(v) for v in given) and (not log or all(v > 0 for v in given)) else []
        # the axis spans the values the config offers, tried or not
        xs = [math.log10(v) if log else float(v) for v in present + marks]
        return Axis(name, "log" if log else "num", min(xs), max(xs), marks=marks)
    if not present:
        return Axis(name, "num", 0.0, 1.0)
    cats: dict[str, None] = {}
    for v in space.get("values") or []:
        cats[label(v)] = None
    for v in present:
        cats[label(v)] = None
    return Axis(name, "cat", cats=list(cats))


def color(t: float | None) -> str:
    """The colour of a metric value at `t` (0 worst .. 1 best); grey without one."""
    if t is None or not math.isfinite(t):
        return NONE
    i = min(len(_RAMP) - 1, max(0, round(t * (len(_RAMP) - 1))))
    return _RAMP[i]


def goodness(values: list, goal: str) -> list[float | None]:
    """Each value's place from worst (0) to best (1) among `values` (None where missing)."""
    ok = [v for v in values if is_number(v)]
    if not ok:
        return [None] * len(values)
    lo, hi = min(ok), max(ok)
    out: list[float | None] = []
    for v in values:
        if not is_number(v):
            out.append(None)
            continue
        t = 1.0 if hi == lo else (v - lo) / (hi - lo)
        out.append(1 - t if goal != "maximize" else t)
    return out


def _short(s: str, n: int = 16) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def render_parallel(axes: list[Axis], rows: list[list], colors: list[str], best: int | None,
                    titles: list[str] | None = None, height: int = 260,
                    note: str | None = None) -> str:
    """Parallel coordinates: `rows[i]` holds trial i's value on each axis; `colors[i]` its line
    colour; `best` the index of the best trial's row (drawn last, in red)."""
    n = len(axes)
    gap = 120
    pad_l, pad_r, pad_t, pad_b = 60, 60, 30, 34 + (14 if note else 0)
    width = max(320, pad_l + pad_r + gap * max(1, n - 1))
    gap = (width - pad_l - pad_r) / max(1, n - 1) if n > 1 else 0
    h = height - pad_t - pad_b
    xs = [pad_l + i * gap if n > 1 else width / 2 for i in range(n)]
    miss_y = pad_t + h + 14

    def y_of(p: float | None) -> float:
        return miss_y if p is None else pad_t + h - p * h

    out = _open(width, height)
    lines: dict[str, list[str]] = {}
    for i in range(len(rows)):
        if i == best:
            continue
        pts = [f"{x:.0f} {y_of(a.pos(v)):.0f}" for x, a, v in zip(xs, axes, rows[i])]
        lines.setdefault(colors[i], []).append("M" + "L".join(pts))
    for c, parts in lines.items():
        out.append(f'<path d="{"".join(parts)}" fill="none" stroke="{c}" stroke-opacity="0.7" '
                   f'stroke-width="1.2"/>')
    if best is not None:
        pts = [f"{x:.1f} {y_of(a.pos(v)):.1f}" for x, a, v in zip(xs, axes, rows[best])]
        out.append(f'<path class="nbt-best" d="M{"L".join(pts)}" fill="none" stroke="{BEST}" '
                   f'stroke-width="2.5"><title>best</title></path>')
    g = []
    for i, (x, a, t) in enumerate(zip(xs, axes, titles or [a.name for a in axes])):
        side, anchor = (1, "start") if i == n - 1 and n > 1 else (-1, "end")  # the last: on its right
        g.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{pad_t}" y2="{pad_t + h}" stroke="#555"/>')
        g.append(f'<text x="{x:.1f}" y="{pad_t - 12}" text-anchor="middle" font-size="11" '
                 f'fill="#222">{text(_short(t, 20))}<title>{text(t)}</title></text>')
        for p, lb in a.ticks():
            y = y_of(p)
            g.append(f'<line x1="{x + 3 * side:.1f}" x2="{x:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#555"/><text x="{x + 5 * side:.1f}" y="{y + 3:.1f}" '
                     f'text-anchor="{anchor}" stroke="#fff" stroke-width="3" '
                     f'paint-order="stroke">{text(_short(lb))}</text>')
        g.append(f'<text x="{x + 5 * side:.1f}" y="{miss_y + 3:.1f}" text-anchor="{anchor}" '
                 f'fill="#999">–</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(g)}</g>')
    if note:
        out.append(f'<text x="6" y="{height - 4}" font-size="10" fill="#555">{text(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def _scatter(out: list, axis: Axis, xs: list, ys: list, best: int | None, y_axis: Axis,
             left: float, top: float, width: int, height: int, x_title: str, y_title: str) -> None:
    pad_l, pad_b, pad_t = 46, 30, 8
    w, h = width - pad_l - 10, height - pad_t - pad_b
    x0, y0 = left + pad_l, top + pad_t

    def sx(p: float) -> float:  # categories keep off the chart's edges
        return x0 + w * (0.08 + 0.84 * p if axis.kind == "cat" else p)

    def sy(p: float) -> float:
        return y0 + h - p * h

    g = []
    for p, lb in y_axis.ticks():
        y = sy(p)
        g.append(f'<line x1="{x0:.1f}" x2="{x0 + w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                 f'<text x="{x0 - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">{text(lb)}</text>')
    for p, lb in axis.ticks():
        x = sx(p)
        g.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y0 + h:.1f}" y2="{y0 + h + 3:.1f}" '
                 f'stroke="#888"/><text x="{x:.1f}" y="{y0 + h + 13:.1f}" '
                 f'text-anchor="middle">{text(_short(lb, 10))}</text>')
    g.append(f'<path d="M{x0:.1f} {y0:.1f}V{y0 + h:.1f}H{x0 + w:.1f}" fill="none" stroke="#888"/>')
    g.append(f'<text x="{x0 + w / 2:.1f}" y="{y0 + h + 26:.1f}" text-anchor="middle" '
             f'fill="#555">{text(_short(x_title, 30))}</text>')
    cy = y0 + h / 2
    g.append(f'<text x="{left + 8:.1f}" y="{cy:.1f}" text-anchor="middle" fill="#555" '
             f'transform="rotate(-90 {left + 8:.1f} {cy:.1f})">{text(_short(y_title, 24))}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(g)}</g>')
    dots, best_dot = [], ""
    for i, (xv, yv) in enumerate(zip(xs, ys)):
        px, py = axis.pos(xv), y_axis.pos(yv)
        if px is None or py is None:
            continue
        if axis.kind == "cat":  # a little spread, the same for a trial every time
            px = min(1.0, max(0.0, px + ((i * 0.618034) % 1 - 0.5) * 0.12 / max(1, len(axis.cats))))
        d = f"M{sx(px):.1f} {sy(py):.1f}h0"
        if i == best:
            best_dot = d
        else:
            dots.append(d)
    if dots:
        out.append(f'<path d="{"".join(dots)}" stroke="{POINT}" stroke-width="5" '
                   f'stroke-linecap="round" stroke-opacity="0.6"/>')
    if best_dot:
        out.append(f'<path class="nbt-best" d="{best_dot}" stroke="{BEST}" stroke-width="8" '
                   f'stroke-linecap="round"><title>best</title></path>')


def render_scatters(axes: list[Axis], rows: list[list], values: list, best: int | None,
                    metric: str, columns: int = 3, width: int = 250, height: int = 180) -> str:
    """The metric (`values`, one per row) against each parameter (`axes`, `rows` as for
    `render_parallel`), `columns` charts a row."""
    y_axis = axis_for(metric, values)
    if y_axis.kind == "num" and y_axis.hi == y_axis.lo:
        pad = abs(y_axis.lo) * 0.05 or 1.0
        y_axis.lo, y_axis.hi = y_axis.lo - pad, y_axis.hi + pad
    cols = max(1, min(columns, len(axes)))
    nrows = math.ceil(len(axes) / cols) if axes else 0
    out = _open(cols * width, max(1, nrows) * height)
    for k, a in enumerate(axes):
        _scatter(out, a, [r[k] for r in rows], values, best, y_axis, (k % cols) * width,
                 (k // cols) * height, width, height,
                 a.name + (" (log)" if a.kind == "log" else ""), metric)
    out.append("</svg>")
    return "".join(out)


def render_importance(importance: dict[str, float], width: int = 420) -> str:
    """Each parameter's importance as a bar, largest first, with its share in percent."""
    items = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    row, pad_l, pad_r = 18, 130, 50
    height = 22 + row * len(items)
    out = _open(width, height)
    out.append('<text x="2" y="12" font-size="12">parameter importance</text>')
    top = max((v for _, v in items), default=0.0) or 1.0
    g = []
    for i, (name, v) in enumerate(items):
        y = 20 + i * row
        w = max(0.0, (width - pad_l - pad_r) * (v / top)) if math.isfinite(v) else 0.0
        g.append(f'<text x="{pad_l - 6}" y="{y + 11}" text-anchor="end">{text(_short(name, 22))}'
                 f'<title>{text(name)}</title></text>'
                 f'<rect x="{pad_l}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{POINT}"/>'
                 f'<text x="{pad_l + w + 4:.1f}" y="{y + 11}">{v * 100:.1f}%</text>')
    out.append(f'<g font-size="10" fill="#333">{"".join(g)}</g></svg>')
    return "".join(out)
