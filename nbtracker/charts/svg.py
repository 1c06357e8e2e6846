"""Charts as plain SVG text: the static form of a panel or a comparison, drawn by any viewer.

No library, no script, no network: a grid of small line charts (one per metric), each with its
curves (and group bands), axes with round ticks and a shared legend. Curves are cut to two points
(minimum and maximum) per pixel column, so a chart costs a few KB whatever the run's length and
every spike stays visible. User text (titles, run names) is escaped.

>>> svg = render_svg([Panel("loss", series=[Series("run-1", xs, ys)])])
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

import numpy as np

from .downsample import _finite as finite_points
from .downsample import column_extremes

# vega's category10, so a static chart looks like the live one
PALETTE = ["#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2",
           "#ff9da6", "#9d755d", "#bab0ac"]


@dataclass
class Series:
    label: str
    x: np.ndarray
    y: np.ndarray
    color: str | None = None
    opacity: float = 1.0
    markers: bool = False  # dots at the points instead of a line (a scatter)


@dataclass
class Band:
    label: str
    x: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    color: str | None = None


@dataclass
class Panel:
    title: str
    x_title: str = "step"
    series: list[Series] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)
    y_title: str = ""


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def text(value: object) -> str:
    """User text for SVG: escaped, and without the characters XML cannot hold (one of them
    would make the whole image unreadable)."""
    return escape(_NOT_XML.sub("\ufffd", str(value)))


def _half_span(lo: float, hi: float) -> float:
    """(hi - lo) / 2, finite for any two finite floats (hi - lo itself can overflow)."""
    return hi * 0.5 - lo * 0.5


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """About `count` round values (1, 2, 5 × 10^k steps) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        return [lo]
    raw = _half_span(lo, hi) / max(1, count) * 2
    if not math.isfinite(raw) or raw <= 0:
        return [lo, hi]
    exp = math.floor(math.log10(raw))
    mag = 10.0 ** exp
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    last = math.floor(hi / step + 1e-9)
    digits = 3 - exp  # rounding relative to the step: exact labels at any scale
    out = [round(i * step, digits) for i in range(first, last + 1)]
    return [t for t in out if math.isfinite(t)]


def fmt(v: float, digits: int = 4) -> str:
    """A tick or value label: short, like the live panel's."""
    if not math.isfinite(v):
        return str(v)
    a = abs(v)
    if v == int(v) and 1e4 <= a < 1e15:  # 50000 -> 50k, 2000000 -> 2M: ticks stay short
        for div, unit in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
            if a >= div:
                return f"{v / div:.{digits}g}{unit}"
    if v == int(v) and a < 1e4:
        return str(int(v))
    if a < 1e-3 or a >= 1e6:
        return f"{v:.{max(1, digits - 2)}e}"
    return f"{v:.{digits}g}"


def tick_labels(ticks: list[float]) -> list[str]:
    """Labels for ticks, with as many digits as it takes for neighbours to differ."""
    for digits in range(4, 18):
        labels = [fmt(t, digits) for t in ticks]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def decimate(x: np.ndarray, y: np.ndarray, lo: float, hi: float, columns: int) -> tuple:
    """The points of (x, y) (sorted by x, finite) a line `columns` pixels wide shows: each
    column's minimum and maximum, and the ends (`downsample.column_extremes`)."""
    idx = column_extremes(x, [y], lo, hi, columns)
    return x[idx], y[idx]


def _finite(x, y) -> tuple[np.ndarray, np.ndarray]:
    """The finite points, sorted by x."""
    x, y = finite_points(x, y)
    if len(x) > 1 and np.any(np.diff(x) < 0):
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
    return x, y


def _path(xs, ys) -> str:
    if not len(xs):
        return ""
    pts = [f"{a:.0f} {b:.1f}" for a, b in zip(xs.tolist(), ys.tolist())]
    return "M" + "L".join(pts)


class _Frame:
    """One chart's plot area and scales."""

    def __init__(self, x0: float, y0: float, w: float, h: float, xdom, ydom):
        self.x0, self.y0, self.w, self.h = x0, y0, w, h
        self.xlo, self.xhi = xdom
        self.ylo, self.yhi = ydom

    def sx(self, x):
        span = _half_span(self.xlo, self.xhi) or 1.0
        return self.x0 + (x * 0.5 - self.xlo * 0.5) / span * self.w

    def sy(self, y):
        span = _half_span(self.ylo, self.yhi) or 1.0
        return self.y0 + self.h - (y * 0.5 - self.ylo * 0.5) / span * self.h


def _domain(values: list[np.ndarray]) -> tuple[float, float]:
    vals = [v for v in values if len(v)]
    if not vals:
        return 0.0, 1.0
    lo = min(float(v.min()) for v in vals)
    hi = max(float(v.max()) for v in vals)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        if math.isfinite(lo - pad) and math.isfinite(hi + pad):
            return lo - pad, hi + pad
    return lo, hi


def _colors(panels: list[Panel]) -> dict[str, str]:
    colors: dict[str, str] = {}
    for p in panels:
        for item in [*p.bands, *p.series]:
            if item.label not in colors:
                colors[item.label] = item.color or PALETTE[len(colors) % len(PALETTE)]
    return colors


def _chart(out: list, p: Panel, left: float, top: float, width: int, height: int,
           colors: dict, max_cols: int | None = None) -> None:
    pad_l, pad_b, pad_t = 44, 28, 18
    w, h = width - pad_l - 8, height - pad_t - pad_b
    series = [(s, *_finite(s.x, s.y)) for s in p.series]
    bands = []
    for b in p.bands:
        x = np.asarray(b.x, dtype=np.float64)
        lo = np.asarray(b.lo, dtype=np.float64)
        hi = np.asarray(b.hi, dtype=np.float64)
        ok = np.isfinite(x) & np.isfinite(lo) & np.isfinite(hi)
        bands.append((b, x[ok], lo[ok], hi[ok]))
    xdom = _domain([x for _, x, _ in series] + [x for _, x, _, _ in bands])
    ydom = _domain([y for _, _, y in series] + [v for _, _, lo, hi in bands for v in (lo, hi)])
    f = _Frame(left + pad_l, top + pad_t, w, h, xdom, ydom)
    out.append(f'<text x="{left + 2:.0f}" y="{top + 12:.0f}" font-size="12">{text(p.title)}</text>')
    axis = []
    yt = nice_ticks(*ydom, count=4)
    for t, label in zip(yt, tick_labels(yt)):
        y = f.sy(t)
        axis.append(f'<line x1="{f.x0:.1f}" x2="{f.x0 + w:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        axis.append(f'<text x="{f.x0 - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    xt = nice_ticks(*xdom, count=4)
    for t, label in zip(xt, tick_labels(xt)):
        x = f.sx(t)
        axis.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.y0 + h:.1f}" '
                    f'y2="{f.y0 + h + 3:.1f}" stroke="#888"/>')
        axis.append(f'<text x="{x:.1f}" y="{f.y0 + h + 13:.1f}" text-anchor="middle">{label}</text>')
    axis.append(f'<path d="M{f.x0:.1f} {f.y0:.1f}V{f.y0 + h:.1f}H{f.x0 + w:.1f}" fill="none" stroke="#888"/>')
    axis.append(f'<text x="{f.x0 + w / 2:.1f}" y="{f.y0 + h + 25:.1f}" text-anchor="middle" '
                f'fill="#555">{text(p.x_title)}</text>')
    if p.y_title:
        cy = f.y0 + h / 2
        axis.append(f'<text x="{left + 8:.1f}" y="{cy:.1f}" text-anchor="middle" fill="#555" '
                    f'transform="rotate(-90 {left + 8:.1f} {cy:.1f})">{text(p.y_title)}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(axis)}</g>')
    cols = max(1, int(w) if max_cols is None else min(int(w), max_cols))
    for b, x, lo, hi in bands:
        if not len(x):
            continue
        x_lo, lo_d = decimate(x, lo, *xdom, cols)
        x_hi, hi_d = decimate(x, hi, *xdom, cols)
        d = _path(f.sx(x_lo), f.sy(lo_d))
        back = _path(f.sx(x_hi[::-1]), f.sy(hi_d[::-1]))
        out.append(f'<path d="{d}L{back[1:]}Z" fill="{colors[b.label]}" fill-opacity="0.2" '
                   f'stroke="none"><title>{text(b.label)}</title></path>')
    for s, x, y in series:
        if not len(x):
            continue
        x, y = decimate(x, y, *xdom, cols) if not s.markers else (x, y)
        opacity = f' stroke-opacity="{s.opacity:g}"' if s.opacity != 1 else ""
        if s.markers:
            dots = "".join(f"M{a:.1f} {b:.1f}h0" for a, b in zip(f.sx(x[:4000]).tolist(),
                                                               f.sy(y[:4000]).tolist()))
            out.append(f'<path d="{dots}" stroke="{colors[s.label]}" stroke-width="4" '
                       f'stroke-linecap="round"{opacity}><title>{text(s.label)}</title></path>')
            continue
        if len(x) == 1:
            out.append(f'<circle cx="{f.sx(x[0]):.1f}" cy="{f.sy(y[0]):.1f}" r="2" '
                       f'fill="{colors[s.label]}"><title>{text(s.label)}</title></circle>')
            continue
        out.append(f'<path d="{_path(f.sx(x), f.sy(y))}" fill="none" stroke="{colors[s.label]}" '
                   f'stroke-width="1.5"{opacity} stroke-linejoin="round">'
                   f'<title>{text(s.label)}</title></path>')


def render_svg(panels: list[Panel], columns: int = 3, width: int = 260, height: int = 160,
               legend: bool | None = None, title: str | None = None,
               note: str | None = None, max_points: int | None = None) -> str:
    """A grid of `panels` (at most `columns` per row), each `width` × `height` pixels; a legend
    when more than one label is drawn (or when `legend` says so); an optional title line and a
    note line under the charts. `max_points` bounds the points drawn in all (and so the size
    of the text): curves then keep the extremes of fewer, wider columns than one per pixel."""
    colors = _colors(panels)
    max_cols = None
    if max_points:
        lines = sum(len(p.series) + 2 * len(p.bands) for p in panels) or 1
        max_cols = max(16, max_points // (4 * lines))
    show_legend = len(colors) > 1 if legend is None else legend
    cols = max(1, min(columns, len(panels) or 1))
    rows = math.ceil(len(panels) / cols) if panels else 0
    top = 20 if title else 0
    legend_rows = 0
    labels = list(colors)
    if show_legend:
        per_row = max(1, (cols * width) // 150)
        shown = labels[:40]
        legend_rows = math.ceil(len(shown) / per_row) + (1 if len(labels) > len(shown) else 0)
    total_w = cols * width
    total_h = top + rows * height + legend_rows * 14 + (16 if note else 0) + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
           f'viewBox="0 0 {total_w} {total_h}" font-family="sans-serif" role="img">',
           f'<rect width="{total_w}" height="{total_h}" fill="#fff"/>']
    if title:
        out.append(f'<text x="2" y="14" font-size="13" font-weight="bold">{text(title)}</text>')
    for i, p in enumerate(panels):
        _chart(out, p, (i % cols) * width, top + (i // cols) * height, width, height, colors,
               max_cols)
    y = top + rows * height + 10
    if show_legend:
        per_row = max(1, (cols * width) // 150)
        items = []
        for j, label in enumerate(labels[:40]):
            lx, ly = 6 + (j % per_row) * 150, y + (j // per_row) * 14
            short = label if len(label) <= 22 else label[:21] + "…"
            items.append(f'<rect x="{lx}" y="{ly - 7}" width="10" height="3" fill="{colors[label]}"/>'
                         f'<text x="{lx + 14}" y="{ly}">{text(short)}</text>')
        if len(labels) > 40:
            items.append(f'<text x="6" y="{y + (legend_rows - 1) * 14}">… and '
                         f'{len(labels) - 40} more</text>')
        out.append(f'<g font-size="10" fill="#333">{"".join(items)}</g>')
        y += legend_rows * 14
    if note:
        out.append(f'<text x="6" y="{y + 6}" font-size="10" fill="#555">{text(note)}</text>')
    out.append("</svg>")
    return "".join(out)


# -- histograms over steps, single histograms, projected points -------------------------------

# a sequential blue scale (light to dark): the heat-map's levels
_HEAT = ["#deebf7", "#c6dbef", "#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"]


def _axes(out: list, f: _Frame, w: float, h: float, xt: list, yt: list, x_title: str) -> None:
    """Ticks, grid lines and the x title of one chart (as `_chart` draws them)."""
    axis = []
    for t, label in zip(yt, tick_labels(yt)):
        y = f.sy(t)
        axis.append(f'<text x="{f.x0 - 4:.1f}" y="{y + 3:.1f}" text-anchor="end">{label}</text>')
    for t, label in xt if xt and isinstance(xt[0], tuple) else zip(xt, tick_labels(xt)):
        x = f.sx(t)
        axis.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{f.y0 + h:.1f}" '
                    f'y2="{f.y0 + h + 3:.1f}" stroke="#888"/>')
        axis.append(f'<text x="{x:.1f}" y="{f.y0 + h + 13:.1f}" text-anchor="middle">{text(label)}</text>')
    axis.append(f'<path d="M{f.x0:.1f} {f.y0:.1f}V{f.y0 + h:.1f}H{f.x0 + w:.1f}" fill="none" stroke="#888"/>')
    axis.append(f'<text x="{f.x0 + w / 2:.1f}" y="{f.y0 + h + 25:.1f}" text-anchor="middle" '
                f'fill="#555">{text(x_title)}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(axis)}</g>')


def _open(width: int, height: int) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" role="img">',
            f'<rect width="{width}" height="{height}" fill="#fff"/>']


def render_heatmap(title: str, x: np.ndarray, edges: np.ndarray, grid: np.ndarray,
                   x_title: str = "step", width: int = 520, height: int = 200,
                   note: str | None = None) -> str:
    """A heat-map of histograms over steps: column `i` (from x[i] to x[i+1]) holds `grid[i]`,
    the counts in the bins between `edges`, scaled to 0..1 (per step). Cells of one shade are
    merged into one path per shade, so the size grows with the shapes, not with the cells."""
    pad_l, pad_b, pad_t = 48, 28, 18
    w, h = width - pad_l - 10, height - pad_t - pad_b - (14 if note else 0)
    x = np.asarray(x, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    grid = np.clip(np.nan_to_num(np.asarray(grid, dtype=np.float64)), 0.0, 1.0)
    gap = float(np.median(np.diff(x))) if len(x) > 1 else 1.0
    right = np.r_[x[1:], x[-1] + (gap or 1.0)] if len(x) else x
    xdom = (float(x[0]), float(right[-1])) if len(x) else (0.0, 1.0)
    ydom = (float(edges[0]), float(edges[-1])) if len(edges) > 1 else (0.0, 1.0)
    if not ydom[1] > ydom[0]:
        ydom = (ydom[0] - 0.5, ydom[0] + 0.5)
    f = _Frame(pad_l, pad_t, w, h, xdom, ydom)
    out = _open(width, height)
    out.append(f'<text x="2" y="12" font-size="12">{text(title)}</text>')
    levels = np.ceil(grid * len(_HEAT)).astype(np.int64)  # 0: empty; any count shows
    xs = f.sx(np.r_[x, right[-1:]]) if len(x) else np.array([])
    ys = f.sy(edges)
    paths: dict[int, list[str]] = {}
    for i in range(len(x)):
        col = levels[i]
        x0, x1 = xs[i], f.sx(right[i])
        j = 0
        while j < len(col):
            lv = col[j]
            k = j + 1
            while k < len(col) and col[k] == lv:
                k += 1
            if lv:
                y_top, y_bot = ys[k], ys[j]
                paths.setdefault(int(lv), []).append(
                    f"M{x0:.1f} {y_top:.1f}H{x1:.1f}V{y_bot:.1f}H{x0:.1f}z")
            j = k
    for lv, parts in sorted(paths.items()):
        out.append(f'<path d="{"".join(parts)}" fill="{_HEAT[lv - 1]}" shape-rendering="crispEdges"/>')
    _axes(out, f, w, h, nice_ticks(*xdom, count=5), nice_ticks(*ydom, count=4), x_title)
    if note:
        out.append(f'<text x="6" y="{height - 4}" font-size="10" fill="#555">{text(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def render_bars(title: str, edges: np.ndarray, counts: np.ndarray, width: int = 520,
                height: int = 180, x_title: str = "value",
                labels: list[str] | None = None, color: str = "#4c78a8") -> str:
    """Bars between `edges` (len(counts) + 1 of them) with heights `counts`: one histogram, or
    a bar chart of categories (`labels`, one per bar, edges 0..n)."""
    pad_l, pad_b, pad_t = 48, 28, 18
    w, h = width - pad_l - 10, height - pad_t - pad_b
    edges = np.asarray(edges, dtype=np.float64)
    counts = np.nan_to_num(np.asarray(counts, dtype=np.float64), posinf=0.0, neginf=0.0)
    xdom = (float(edges[0]), float(edges[-1])) if len(edges) > 1 else (0.0, 1.0)
    if not xdom[1] > xdom[0]:
        xdom = (xdom[0] - 0.5, xdom[0] + 0.5)
    lo, hi = min(0.0, float(counts.min(initial=0.0))), max(0.0, float(counts.max(initial=0.0)))
    ydom = (lo, hi if hi > lo else lo + 1.0)
    f = _Frame(pad_l, pad_t, w, h, xdom, ydom)
    out = _open(width, height)
    out.append(f'<text x="2" y="12" font-size="12">{text(title)}</text>')
    base = f.sy(0.0)
    parts = []
    for a, b, c in zip(f.sx(edges[:-1]), f.sx(edges[1:]), f.sy(counts)):
        if b - a > 2:
            a, b = a + 0.5, b - 0.5
        parts.append(f"M{a:.1f} {base:.1f}V{c:.1f}H{b:.1f}V{base:.1f}z")
    out.append(f'<path d="{"".join(parts)}" fill="{color}"/>')
    if labels is not None:
        step = max(1, math.ceil(len(labels) / 8))
        xt = [(i + 0.5, (lb if len(lb) <= 12 else lb[:11] + "…"))
              for i, lb in enumerate(labels) if i % step == 0]
    else:
        xt = nice_ticks(*xdom, count=5)
    _axes(out, f, w, h, xt, nice_ticks(*ydom, count=4), x_title)
    out.append("</svg>")
    return "".join(out)


def render_points(title: str, u: np.ndarray, v: np.ndarray, colors: list[str] | None = None,
                  width: int = 360, height: int = 300, axes: list[tuple] | None = None,
                  note: str | None = None) -> str:
    """Points on a plane (a projection of 3-D points), scaled to fit with their aspect kept,
    drawn in the order given (far first). `colors` is one CSS colour per point (default one
    colour); points of one colour share a path. `axes`: (label, du, dv, colour) arrows drawn
    in a corner to show the view."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    ok = np.isfinite(u) & np.isfinite(v)
    out = _open(width, height)
    out.append(f'<text x="2" y="12" font-size="12">{text(title)}</text>')
    top, bottom, side = 18, 16 if note else 4, 6
    box_w, box_h = width - 2 * side, height - top - bottom
    if ok.any():
        uu, vv = u[ok], v[ok]
        cols = [c for c, k in zip(colors, ok) if k] if colors else None
        u0, u1, v0, v1 = uu.min(), uu.max(), vv.min(), vv.max()
        scale = min(box_w / ((u1 - u0) or 1.0), box_h / ((v1 - v0) or 1.0))
        if not math.isfinite(scale) or scale <= 0:
            scale = 1.0
        px = side + box_w / 2 + (uu * 0.5 - (u0 * 0.5 + u1 * 0.5) * 0.5) * 2 * scale
        py = top + box_h / 2 - (vv * 0.5 - (v0 * 0.5 + v1 * 0.5) * 0.5) * 2 * scale
        groups: dict[str, list[str]] = {}
        for i, (a, b) in enumerate(zip(px.tolist(), py.tolist())):
            groups.setdefault(cols[i] if cols else PALETTE[0], []).append(f"M{a:.1f} {b:.1f}h0")
        for color, parts in groups.items():
            out.append(f'<path d="{"".join(parts)}" stroke="{color}" stroke-width="3" '
                       f'stroke-linecap="round" stroke-opacity="0.85"/>')
    for label, du, dv, color in axes or []:
        x0, y0 = 24, height - bottom - 20
        x1, y1 = x0 + du * 16, y0 - dv * 16
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x1:.1f}" y2="{y1:.1f}" stroke="{color}"/>'
                   f'<text x="{x1 + (du * 6):.1f}" y="{y1 - dv * 6 + 3:.1f}" font-size="9" '
                   f'fill="{color}" text-anchor="middle">{text(label)}</text>')
    if note:
        out.append(f'<text x="6" y="{height - 4}" font-size="10" fill="#555">{text(note)}</text>')
    out.append("</svg>")
    return "".join(out)


def stack_svg(svgs: list[str], gap: int = 6) -> str:
    """Several SVG images one under the other, as one SVG (for viewers that take one image)."""
    parts, y, width = [], 0, 0
    for s in svgs:
        m = re.match(r'<svg[^>]* width="(\d+)" height="(\d+)"', s)
        if not m:
            continue
        w, h = int(m.group(1)), int(m.group(2))
        parts.append(s.replace("<svg ", f'<svg x="0" y="{y}" ', 1))
        y += h + gap
        width = max(width, w)
    if len(parts) == 1:
        return svgs[0]
    height = max(0, y - gap)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">{"".join(parts)}</svg>')
