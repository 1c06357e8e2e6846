"""Static forms: what every viewer of a saved notebook can draw with no kernel, no widget state
and no network — JupyterLab without saved widgets, VS Code, nbconvert, GitHub, nbviewer.

A bundle holds `text/html` (a short summary and the charts as an `<img>` of SVG in a data: URL),
`image/svg+xml` (the charts alone, for viewers that take no HTML) and `text/plain`. Which one a
viewer draws is its own choice: nbconvert and VS Code take the HTML, JupyterLab too — sanitised
when the notebook is not trusted, which removes inline `<svg>` but keeps an image's data: URL
(hence the image rather than inline SVG) — converters to Markdown or LaTeX the SVG.

Everything user-supplied (names, keys, values) is escaped. Styles are inline: a viewer without
nbtracker's stylesheet draws the same thing.
"""

from __future__ import annotations

import base64
import html
import json
import math
import time
from typing import Any

import numpy as np

from ..charts.svg import Panel, Series, fmt, render_svg, stack_svg

MAX_CHARTS = 12  # charts in a run's static image; the rest are named in a note
SVG_POINTS = 1200  # points drawn in all: keeps a finished panel's image near 10 KB
MAX_SUMMARY = 24  # summary values listed

_BOX = ("font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;"
        "font-size:12px;color:#222;padding:4px 0")
TABLE_STYLE = "border-collapse:collapse;font-size:11px;margin-top:4px"
TD_STYLE = "padding:1px 8px 1px 0;text-align:left;border-bottom:1px solid #eee"


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def value_text(v: Any) -> str:
    """A value as static forms show it: numbers short (as chart labels), lists and dicts as
    JSON, the rest as text."""
    if isinstance(v, float):
        return fmt(v, 5) if math.isfinite(v) else str(v)  # as the widgets show values
    if isinstance(v, (list, dict)):
        return json.dumps(v, default=str)
    return str(v)


def duration(seconds: float) -> str:
    s = max(0, int(seconds))
    h, m = divmod(s, 3600)
    m, s = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s" if m else f"{s}s"


def chart_order(keys: list[str]) -> list[str]:
    """The live panel's order: keys without a prefix first, then by prefix (`train/`, `val/`),
    each in the order they were first logged."""
    first = {k: i for i, k in enumerate(keys)}

    def prefix(k: str) -> str:
        i = k.find("/")
        return k[:i] if i > 0 else ""

    return sorted(keys, key=lambda k: (prefix(k) != "", prefix(k), first[k]))


def run_svg(series: dict[str, tuple], xlabels: dict[str, str] | None = None) -> tuple[str, str]:
    """(svg, note) for a run's metrics: `series` maps a key to its (xs, ys)."""
    xlabels = xlabels or {}
    keys = [k for k in chart_order(list(series)) if len(series[k][0])]
    note = ""
    if len(keys) > MAX_CHARTS:
        note = f"{len(keys) - MAX_CHARTS} more metrics not drawn here: {', '.join(keys[MAX_CHARTS:][:8])}"
        note += "…" if len(keys) > MAX_CHARTS + 8 else ""
        keys = keys[:MAX_CHARTS]
    panels = [Panel(k, xlabels.get(k) or "step",
                    [Series(k, np.asarray(series[k][0], dtype=np.float64),
                            np.asarray(series[k][1], dtype=np.float64), color="#4c78a8")])
              for k in keys]
    if not panels:
        return "", ""
    return render_svg(panels, columns=3, legend=False, note=note or None,
                      max_points=SVG_POINTS), note


def summary_rows(summary: dict) -> str:
    items = [(k, v) for k, v in sorted(summary.items(), key=lambda kv: str(kv[0]))
             if not isinstance(v, (dict, list))]
    rows = "".join(f'<tr><td style="{TD_STYLE}">{esc(k)}</td>'
                   f'<td style="{TD_STYLE}">{esc(value_text(v))}</td></tr>'
                   for k, v in items[:MAX_SUMMARY])
    if len(items) > MAX_SUMMARY:
        rows += f'<tr><td style="{TD_STYLE}" colspan="2">… and {len(items) - MAX_SUMMARY} more</td></tr>'
    return f'<table style="{TABLE_STYLE}"><tbody>{rows}</tbody></table>' if rows else ""


def run_stats(info: dict) -> str:
    """"step 900 · 12s", as the live panel's header says it."""
    end = info.get("updated") or time.time()
    return f"step {info.get('step', 0)} · {duration(end - (info.get('started') or end))}"


def run_bundle(info: dict, series: dict[str, tuple], xlabels: dict[str, str] | None = None,
               run_dir: str | None = None) -> dict:
    """The static form of a run's panel: its name, state, steps, time, alerts, charts, summary,
    and — for a run that has ended, read from its directory `run_dir` — its media, system
    metrics and run info (see `static_media`)."""
    svg, _ = run_svg(series, xlabels)
    extras = None
    if run_dir and info.get("state") not in (None, "", "running"):
        from .static_media import run_extras

        try:
            extras = run_extras(run_dir)
        except Exception as e:  # the charts and summary still show
            extras = None
            info = {**info, "extras_error": f"{type(e).__name__}: {e}"}
    summary = info.get("summary") or {}
    name = info.get("name") or info.get("id") or "run"
    where = f"{info.get('project', '')}/{info.get('id', '')}"
    state = info.get("state", "")
    color = {"finished": "#2e7d32", "failed": "#c62828", "crashed": "#c62828",
             "running": "#1565c0"}.get(state, "#555")
    head = (f'<div><b>{esc(name)}</b> <span style="color:{color}">{esc(state)}</span> '
            f'<span style="color:#666">· {esc(run_stats(info))} · {esc(where)}</span></div>')
    media = extras is not None and bool(extras.media or extras.system)
    body = head + (extras.alerts if extras else "")
    body += (img(svg, "charts of " + str(name)) if svg else "" if media
             else '<div style="color:#666">no numeric values logged</div>')
    body += summary_rows(summary)
    if extras:
        body += extras.media + extras.system + extras.info
    if info.get("extras_error"):
        body += f'<div style="color:#666">media not shown: {esc(info["extras_error"])}</div>'
    text = [f"run {name} ({where}) {state} · {run_stats(info)}"]
    text += [f"  {k}: {value_text(v)}" for k, v in sorted(summary.items(), key=lambda kv: str(kv[0]))
             if not isinstance(v, (dict, list))][:MAX_SUMMARY]
    if extras:
        text += extras.lines
        svg = stack_svg([s for s in [svg, *extras.svgs] if s]) if extras.svgs else svg
    return bundle(body, svg, "\n".join(text), kind="run")


def img(svg: str, alt: str) -> str:
    """An SVG as an image every HTML viewer draws, sanitised or not."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return f'<div><img src="data:image/svg+xml;base64,{data}" alt="{esc(alt)}" style="max-width:100%"></div>'


def bundle(body: str, svg: str | None, text: str, kind: str) -> dict:
    data = {"text/html": f'<div class="nbt-static" data-nbt-static="{esc(kind)}" style="{_BOX}">{body}</div>',
            "text/plain": text}
    if svg:
        data["image/svg+xml"] = svg
    return data


def comparison_bundle(panels: list[Panel], note: str | None = None, title: str | None = None,
                      runs: int | None = None) -> dict:
    """The static form of a comparison: the same curves (or group bands) as the chart."""
    svg = render_svg(panels, columns=2, width=380, height=200, note=note, title=title,
                     max_points=SVG_POINTS * 2) if panels else ""
    lines = [f"comparison of {runs} runs" if runs is not None else "comparison",
             *(f"  {p.title}" for p in panels)]
    if note:
        lines.append(note)
    return bundle(img(svg, "comparison") if svg else "no values to compare", svg,
                  "\n".join(lines), kind="compare")


def diff_bundle(labels: list[str], rows: list[dict], show_all: bool = False) -> dict:
    """The config diff as plain HTML: the differing keys, then the equal ones folded in a
    `<details>` element (open with `show_all`) — it opens and closes with no script, in every
    viewer, with or without a kernel."""
    def table(rs: list[dict]) -> str:
        head = "".join(f'<th style="{TD_STYLE}">{esc(x)}</th>' for x in ["key", *labels])
        body = ""
        for r in rs:
            missing = r.get("missing") or [False] * len(r["values"])
            cells = "".join(
                f'<td class="{"nbt-missing" if m else ""}" style="{TD_STYLE}'
                f'{";color:#999;font-style:italic" if m else ""}">'
                f'{"missing" if m else esc(value_text(v))}</td>'
                for v, m in zip(r["values"], missing))
            cls, style = ("nbt-differs", ";background:#fff3cd") if r.get("differs") else ("", "")
            body += (f'<tr class="{cls}" data-key="{esc(r["key"])}" style="{style}">'
                     f'<td style="{TD_STYLE};font-weight:600">{esc(r["key"])}</td>{cells}</tr>')
        return f'<table style="{TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    differ = [r for r in rows if r.get("differs")]
    same = [r for r in rows if not r.get("differs")]
    body = table(differ) if differ else '<div class="nbt-empty" style="color:#666">no differences</div>'
    if same:
        body += (f'<details{" open" if show_all else ""}><summary style="cursor:pointer;color:#555">'
                 f'{len(same)} equal key{"s" if len(same) != 1 else ""}</summary>{table(same)}</details>')
    text = ["config diff: " + ", ".join(labels)]
    text += [f"  {r['key']}: " + " | ".join("missing" if m else value_text(v) for v, m in
             zip(r["values"], r.get("missing") or [False] * len(r["values"]))) for r in differ]
    return bundle(body, None, "\n".join(text), kind="diff")


class ConfigDiffView:
    """The config of several runs side by side, as every viewer draws it (see `diff_bundle`).
    `runs` are the column labels, `rows` one dict per flattened key: key, values, missing,
    differs."""

    def __init__(self, runs: list[str], rows: list[dict], show_all: bool = False):
        self.runs = runs
        self.rows = rows
        self.show_all = show_all

    @property
    def differing(self) -> list[str]:
        return [r["key"] for r in self.rows if r.get("differs")]

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        return diff_bundle(self.runs, self.rows, self.show_all)

    def __repr__(self) -> str:
        return diff_bundle(self.runs, self.rows)["text/plain"]
