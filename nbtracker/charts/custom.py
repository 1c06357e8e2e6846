"""Charts logged by `nbtracker.plot` as SVG text, for a finished run's static form (any viewer, no
script): the chart's table drawn by its preset (`charts/presets.py`). The live panel draws the
same presets with vega-lite (js/plot.js).

- line, line series, pr/roc curves (area-under-curve): a line per group (stroke, lineKey, class),
  as `svg.render_svg` draws curves (each pixel column's minimum and maximum: spikes stay);
- scatter: a dot per row (the first 4,000);
- bar: a horizontal bar per label (values of one label summed, as vega-lite stacks them);
- histogram: the column's values in at most 50 bins;
- confusion matrix: a cell per (actual, predicted) pair, shaded by its count, the count written.

`chart_svg` returns (svg, note); svg is None (and the note says why) for a preset we do not draw
or a table that lacks a field's column. User text is escaped.

>>> svg, note = chart_svg(ref["chart"], columns, rows, key="roc")
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .presets import preset_kind
from .svg import Panel, Series, _open, fmt, nice_ticks, render_bars, render_svg, text, tick_labels

MAX_GROUPS = 40  # lines (or bars) drawn; the rest named in the note
MAX_CLASSES = 60  # rows and columns of a confusion matrix drawn
HIST_BINS = 50


class _NoColumn(Exception):
    pass


def _num(v: Any) -> float:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return float(v)
    return math.nan


def _label(v: Any) -> str:
    return "" if v is None else str(v)


def chart_svg(chart: dict, columns: list, rows: list, key: str = "",
              total: int | None = None) -> tuple[str | None, str]:
    """The SVG of a chart whose table has `columns` and `rows` (`total` rows in all, when only
    some are given), and a note (what was left out), or (None, why not)."""
    preset = chart.get("preset")
    kind = preset_kind(preset)
    if kind == "custom":
        return None, f"custom chart preset {str(preset)!r} is not drawn here; its table is shown"
    fields = chart.get("fields") if isinstance(chart.get("fields"), dict) else {}
    strings = chart.get("string_fields") if isinstance(chart.get("string_fields"), dict) else {}
    title = str(strings.get("title") or key)
    names = [str(c) for c in columns]

    def col(f: str, optional: bool = False) -> list | None:
        name = fields.get(f)
        if name is None:
            if optional:
                return None
            raise _NoColumn(f"the chart names no column for its field {f!r}")
        if str(name) not in names:
            raise _NoColumn(f"field {f!r} names column {str(name)!r}, which the table does not have")
        j = names.index(str(name))
        return [r[j] if isinstance(r, (list, tuple)) and j < len(r) else None for r in rows]

    try:
        svg, note = _DRAW[kind](col, fields, strings, title)
    except _NoColumn as e:
        return None, f"chart not drawn: {e}"
    if total is not None and total > len(rows):
        note = "; ".join(n for n in (f"{len(rows)} of {total} rows drawn", note) if n)
    return svg, note


def _groups(labels: list | None, *cols: list) -> list[tuple[str, list]]:
    """Rows split by label (first appearance order): [(label, [col values...])]."""
    if labels is None:
        return [("", list(cols))]
    out: dict[str, list] = {}
    for i, lb in enumerate(labels):
        g = out.setdefault(_label(lb), [[] for _ in cols])
        for c, vals in zip(g, cols):
            c.append(vals[i])
    return [(k, v) for k, v in out.items()]


def _lines(title: str, x_title: str, y_title: str, groups: list, default: str,
           markers: bool = False) -> tuple[str, str]:
    notes = []
    xs_all = [x for _, (xs, _) in groups for x in xs if x is not None]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    order: dict[str, int] = {}
    if not numeric:  # categories on x: drawn at their place of first appearance
        for x in xs_all:
            order.setdefault(_label(x), len(order))
        notes.append(f"x values are not all numbers: drawn at their place (0 to {len(order) - 1})")
    if len(groups) > MAX_GROUPS:
        notes.append(f"first {MAX_GROUPS} of {len(groups)} lines drawn")
        groups = groups[:MAX_GROUPS]
    series, dropped = [], 0
    for label, (xs, ys) in groups:
        x = np.asarray([_num(v) if numeric else order.get(_label(v), math.nan) for v in xs])
        y = np.asarray([_num(v) for v in ys], dtype=np.float64)
        dropped += int((~(np.isfinite(x) & np.isfinite(y))).sum())
        series.append(Series(label or default, x, y, markers=markers))
    if dropped:
        notes.append(f"{dropped} row{'s' if dropped > 1 else ''} without two numbers left out")
    panel = Panel(title, x_title, series, y_title=y_title)
    svg = render_svg([panel], columns=1, width=520, height=260, legend=len(series) > 1)
    return svg, "; ".join(notes)


def _line(col, fields, strings, title):
    x, y = col("x"), col("y")
    return _lines(title, str(fields["x"]), str(fields["y"]), _groups(col("stroke", True), x, y),
                  str(fields["y"]))


def _scatter(col, fields, strings, title):
    svg, note = _lines(title, str(fields["x"]), str(fields["y"]), _groups(None, col("x"), col("y")),
                       str(fields["y"]), markers=True)
    return svg, note


def _line_series(col, fields, strings, title):
    return _lines(title, str(strings.get("xname") or "x"), "",
                  _groups(col("lineKey"), col("step"), col("lineVal")), str(fields["lineVal"]))


def _curve(col, fields, strings, title):
    return _lines(title, str(strings.get("x-axis-title") or fields["x"]),
                  str(strings.get("y-axis-title") or fields["y"]),
                  _groups(col("class", True), col("x"), col("y")), str(fields["y"]))


def _bar(col, fields, strings, title):
    sums: dict[str, float] = {}
    skipped = 0
    for lb, v in zip(col("label"), col("value")):
        n = _num(v)
        if not math.isfinite(n):
            skipped += 1
            continue
        sums[_label(lb)] = sums.get(_label(lb), 0.0) + n
    notes = [f"{skipped} row{'s' if skipped > 1 else ''} without a number left out"] if skipped else []
    items = list(sums.items())
    if len(items) > MAX_GROUPS:
        notes.append(f"first {MAX_GROUPS} of {len(items)} labels drawn")
        items = items[:MAX_GROUPS]
    return render_hbars(title, [k for k, _ in items], [v for _, v in items],
                        str(fields["value"])), "; ".join(notes)


def _histogram(col, fields, strings, title):
    v = np.asarray([_num(x) for x in col("value")], dtype=np.float64)
    ok = v[np.isfinite(v)]
    if not len(ok):
        raise _NoColumn(f"column {str(fields['value'])!r} holds no finite numbers")
    counts, edges = np.histogram(ok, bins=_bin_edges(ok))
    note = f"{len(v) - len(ok)} values that are not finite numbers left out" if len(ok) < len(v) else ""
    return render_bars(title, edges, counts, x_title=str(fields["value"])), note


def _bin_edges(v: np.ndarray) -> np.ndarray:
    """Edges of at most HIST_BINS bins over finite `v`: numpy's "auto" count where the range is
    an ordinary number; where it is not (values near ±1e308, whose difference overflows, or a
    single value too large to pad by ±0.5), HIST_BINS bins between the smallest and the largest
    value, computed without a difference that could overflow."""
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        pad = max(0.5, abs(lo) * 1e-9)  # a bin around the value that stays distinct from it
        return np.array([lo - pad, hi + pad])
    with np.errstate(all="ignore"):
        if math.isfinite(hi - lo):
            try:
                edges = np.histogram_bin_edges(v, bins="auto")
                if np.isfinite(edges).all():
                    return np.histogram_bin_edges(v, bins=min(HIST_BINS, max(1, len(edges) - 1)))
            except (ValueError, OverflowError, MemoryError):
                pass
        t = np.linspace(0.0, 1.0, HIST_BINS + 1)
        edges = lo * (1 - t) + hi * t  # no hi - lo: finite for any finite lo, hi
    edges[0], edges[-1] = lo, hi
    return np.maximum.accumulate(edges)


def _confusion(col, fields, strings, title):
    actual, predicted, counts = col("Actual"), col("Predicted"), col("nPredictions")
    classes: dict[str, int] = {}
    for v in [*actual, *predicted]:
        classes.setdefault(_label(v), len(classes))
    n = len(classes)
    grid = np.zeros((n, n))
    for a, p, c in zip(actual, predicted, counts):
        c = _num(c)
        if math.isfinite(c):
            grid[classes[_label(a)], classes[_label(p)]] += c
    names = list(classes)
    note = ""
    if n > MAX_CLASSES:
        note = f"first {MAX_CLASSES} of {n} classes drawn"
        names, grid = names[:MAX_CLASSES], grid[:MAX_CLASSES, :MAX_CLASSES]
    return render_matrix(title, names, grid), note


_DRAW = {"line": _line, "scatter": _scatter, "line_series": _line_series, "curve": _curve,
         "bar": _bar, "histogram": _histogram, "confusion_matrix": _confusion}


def _short(s: str, n: int) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def render_hbars(title: str, labels: list[str], values: list[float], x_title: str = "value",
                 width: int = 520) -> str:
    """A horizontal bar per label (top to bottom in the order given), its value written."""
    bar_h = 16 if len(labels) <= 20 else 11
    pad_l, pad_t, pad_b, pad_r = 110, 22, 30, 44
    h = max(1, len(labels)) * bar_h
    height = pad_t + h + pad_b
    w = width - pad_l - pad_r
    vals = np.nan_to_num(np.asarray(values, dtype=np.float64))
    lo, hi = min(0.0, float(vals.min(initial=0.0))), max(0.0, float(vals.max(initial=0.0)))
    if not hi > lo:
        hi = lo + 1.0

    def sx(v: float) -> float:
        return pad_l + (v - lo) / (hi - lo) * w

    out = _open(width, height)
    out.append(f'<text x="2" y="13" font-size="12">{text(title)}</text>')
    grid = []
    ticks = nice_ticks(lo, hi, count=5)
    for t, lb in zip(ticks, tick_labels(ticks)):
        grid.append(f'<line x1="{sx(t):.1f}" x2="{sx(t):.1f}" y1="{pad_t}" y2="{pad_t + h}" '
                    f'stroke="#eee"/><text x="{sx(t):.1f}" y="{pad_t + h + 12}" '
                    f'text-anchor="middle">{lb}</text>')
    grid.append(f'<text x="{pad_l + w / 2:.1f}" y="{pad_t + h + 25}" text-anchor="middle" '
                f'fill="#555">{text(x_title)}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(grid)}</g>')
    bars = []
    zero = sx(0.0)
    for i, (lb, v) in enumerate(zip(labels, vals.tolist())):
        y = pad_t + i * bar_h
        x0, x1 = sorted((zero, sx(v)))
        bars.append(f'<rect class="bar" x="{x0:.1f}" y="{y + 1.5:.1f}" width="{max(x1 - x0, 0.5):.1f}" '
                    f'height="{bar_h - 3}" fill="#4c78a8"><title>{text(lb)}: {fmt(v)}</title></rect>'
                    f'<text x="{pad_l - 4}" y="{y + bar_h / 2 + 3:.1f}" text-anchor="end">'
                    f'{text(_short(lb, 18))}</text>'
                    f'<text x="{x1 + 3:.1f}" y="{y + bar_h / 2 + 3:.1f}" fill="#555">{fmt(v)}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(bars)}</g>')
    out.append(f'<path d="M{zero:.1f} {pad_t}V{pad_t + h}" stroke="#888"/>')
    out.append("</svg>")
    return "".join(out)


def render_matrix(title: str, names: list[str], grid: np.ndarray, x_title: str = "Predicted",
                  y_title: str = "Actual") -> str:
    """A confusion matrix: rows the actual classes, columns the predicted ones, each cell
    shaded by its count (relative to the largest) with the count written when it fits."""
    n = len(names)
    cell = max(8, min(44, 440 // max(n, 1)))
    pad_l, pad_t = 110, 24
    side = n * cell
    pad_b = 80
    width, height = pad_l + side + 20, pad_t + side + pad_b
    top = float(grid.max(initial=0.0)) or 1.0
    out = _open(width, height)
    out.append(f'<text x="2" y="13" font-size="12">{text(title)}</text>')
    cells = []
    for i in range(n):
        for j in range(n):
            c = float(grid[i, j])
            a = c / top
            x, y = pad_l + j * cell, pad_t + i * cell
            fill = f'fill="#08519c" fill-opacity="{0.08 + 0.92 * a:.3f}"' if c > 0 else 'fill="#f7f7f7"'
            tip = f"{names[i]} predicted as {names[j]}: {fmt(c)}"
            cells.append(f'<rect class="cell" x="{x}" y="{y}" width="{cell - 1}" height="{cell - 1}" '
                         f'{fill}><title>{text(tip)}</title></rect>')
            if cell >= 18:
                color = "#fff" if a > 0.5 else "#333"
                cells.append(f'<text class="count" x="{x + cell / 2 - 0.5:.1f}" '
                             f'y="{y + cell / 2 + 3:.1f}" text-anchor="middle" fill="{color}">'
                             f'{fmt(c)}</text>')
    out.append(f'<g font-size="{9 if cell < 30 else 10}">{"".join(cells)}</g>')
    labels = []
    chars = max(3, (pad_l - 8) // 6)
    for i, name in enumerate(names):
        cy = pad_t + i * cell + cell / 2 + 3
        labels.append(f'<text x="{pad_l - 4}" y="{cy:.1f}" text-anchor="end">'
                      f'{text(_short(name, chars))}</text>')
        cx, by = pad_l + i * cell + cell / 2, pad_t + side + 6
        labels.append(f'<text x="{cx:.1f}" y="{by + 6}" text-anchor="end" '
                      f'transform="rotate(-45 {cx:.1f} {by + 6})">{text(_short(name, 12))}</text>')
    labels.append(f'<text x="{pad_l + side / 2:.1f}" y="{height - 6}" text-anchor="middle" '
                  f'fill="#555">{text(x_title)}</text>')
    labels.append(f'<text x="10" y="{pad_t + side / 2:.1f}" text-anchor="middle" fill="#555" '
                  f'transform="rotate(-90 10 {pad_t + side / 2:.1f})">{text(y_title)}</text>')
    out.append(f'<g font-size="9" fill="#333">{"".join(labels)}</g>')
    out.append("</svg>")
    return "".join(out)
