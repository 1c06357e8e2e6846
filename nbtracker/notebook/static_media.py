"""What a finished run logged besides numbers, in its static form: media, system metrics, alerts
and run info, as HTML that every viewer of a saved notebook draws with no kernel, no script and
no network (see `static.py`).

Read from the run's record log once, at finish:
- media (history values with a `_type`, see sdk/media.py): per key, the last step's object —
  images, audio and video as data: URLs, tables as HTML tables (image cells as thumbnails),
  histograms over steps as a heat-map and plotly figures and 3-D points as SVG images of our
  own renderer, charts of `nbtracker.plot` too (`charts/custom.py`; their table folded under
  them), HTML in a sandboxed frame, class sets (`Classes`) as a line of text;
- `system` records: one small chart per group (cpu, memory, disk, network, gpu.N), x = seconds
  since the run started;
- `alert` records: a list at the top;
- the `env` record (else the `run` record): python, host, platform, git, notebook path, in a
  `<details>` element (it opens with no script).

Size: the data: URLs (and HTML documents) of one run's form share `MEDIA_BUDGET` bytes. Each
key's last object is embedded first, then what is extra (earlier steps' thumbnails, images in
table cells), while the budget lasts; what does not fit is counted in a note. A file is
embedded only when it is small enough (`ITEM_CAP`); else its kind, size and path are named.

User content is escaped (text) or sandboxed (HTML documents); no file path or external URL is
ever a `src`: a viewer fetches nothing.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..charts.custom import chart_svg
from ..charts.svg import (
    PALETTE,
    Panel,
    Series,
    render_bars,
    render_heatmap,
    render_points,
    render_svg,
    stack_svg,
)
from ..charts.svg import text as svg_text
from ..store import layout
from ..store.media import read_table_file
from ..store.recordlog import select, unpack

MEDIA_BUDGET = 2 * 1024 * 1024  # bytes of data: URLs and HTML documents in one run's form
ITEM_CAP = 768 * 1024  # a file larger than this is named, not embedded
THUMB_CAP = 64 * 1024  # an earlier step's thumbnail or a table cell's image
STRIP = 8  # earlier steps shown under an image
TABLE_ROWS = 50
CHART_ROWS = 100_000  # rows of a chart's table drawn
CELL_CHARS = 200
MAX_KEYS = 24  # media keys shown; the rest are named
MAX_ALERTS = 20
HEAT_STEPS = 120  # columns of a histogram heat-map
HEAT_BINS = 48  # rows of a histogram heat-map
MAX_POINTS = 4000  # points of a projected 3-D scatter
CLASSES_SHOWN = 50  # classes of a logged class set named

_MIME = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
         "webp": "image/webp", "bmp": "image/bmp", "svg": "image/svg+xml",
         "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac",
         "m4a": "audio/mp4", "mp4": "video/mp4", "webm": "video/webm"}
_KIND = {"image-file": "image", "histogram": "histogram", "table-file": "table",
         "audio-file": "audio clip", "video-file": "video", "html-file": "HTML document",
         "object3D-file": "3-D object", "plotly-file": "plotly figure", "media-list": "media list",
         "classes": "class set"}
_LEVEL = {"ERROR": ("#c62828", "#fdecea"), "WARN": ("#ef6c00", "#fff4e5"),
          "INFO": ("#1565c0", "#e8f1fb")}
_CAPTION = "font-size:11px;color:#555"
_HEAD = "font-weight:600;margin:8px 0 2px"
_NOTE = "color:#666;font-size:11px"


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def size_text(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


# -- reading the run ---------------------------------------------------------------------------

@dataclass
class RunRecords:
    """What a run's static form needs from its record log."""

    media: dict[str, list[tuple[int, dict]]] = field(default_factory=dict)  # key -> (step, ref)
    system: list[tuple[float, dict]] = field(default_factory=list)  # (ts, values)
    alerts: list[dict] = field(default_factory=list)
    env: dict | None = None
    run: dict = field(default_factory=dict)  # the first `run` record
    files: list[str] = field(default_factory=list)  # saved files' names

    @property
    def started(self) -> float | None:
        return self.run.get("ts")


def read_run(run_dir: str | Path) -> RunRecords:
    """What the static form needs from the run's log, without parsing every line: a long run's
    log is mostly history lines of numbers, so only the lines that hold a media value (`"_type"`)
    and the lines of other records are read (`recordlog.select`)."""
    out = RunRecords()
    try:
        for rec in select(Path(run_dir) / layout.LOG_NAME, (b'"_type"',),
                          unless_prefix=b'{"t":"history"'):
            _take(out, rec)
    except (OSError, ValueError):
        pass
    return out


def _take(out: RunRecords, rec: dict) -> None:
    t = rec.get("t")
    if t == "history":
        d = rec.get("d")
        step = rec.get("step", 0)
        if isinstance(d, dict):
            for k, v in d.items():
                if isinstance(v, dict) and isinstance(v.get("_type"), str):
                    out.media.setdefault(k, []).append((step, v))
    elif t == "system":
        d = unpack(rec.get("d"), rec["nf"]) if rec.get("nf") else rec.get("d")
        if isinstance(d, dict) and isinstance(rec.get("ts"), (int, float)):
            out.system.append((float(rec["ts"]), d))
    elif t == "alert":
        out.alerts.append(rec)
    elif t == "env":
        d = rec.get("d")
        if isinstance(d, dict):
            out.env = d
    elif t == "run" and not out.run:
        out.run = rec
    elif t == "file" and isinstance(rec.get("path"), str):
        out.files.append(rec["path"])


def _safe(ref: dict) -> bool:
    """Whether a ref's path is a label of a file in the run's media/ or files/ folder."""
    rel = str(ref.get("path", ""))
    parts = Path(rel).parts
    return bool(parts) and parts[0] in ("media", "files") and ".." not in parts and "\0" not in rel \
        and not Path(rel).is_absolute()


def _file(run_dir: Path, ref: dict, cap: int) -> tuple[bytes | None, str]:
    """The bytes of a media file, or None and why not (too large, missing, a bad path). Only a
    regular file inside the run's media/ or files/ folder is read (`store.layout.run_file`: no
    link out of the run, no pipe or device), and never more than `cap` bytes."""
    if not _safe(ref):
        return None, f"a bad path: {str(ref.get('path', ''))[:100]}"
    rel = str(ref["path"])
    try:
        path = layout.run_file(run_dir, rel, ("media", "files"))
    except ValueError as e:
        return None, ("file missing: " + rel) if "no such file" in str(e) else str(e)[:200]
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                return None, f"{size_text(size)}, larger than {size_text(cap)}: not embedded — {rel}"
            data = f.read(size + 1)  # what it holds now: a cap may be far larger
        if len(data) > cap:  # it grew meanwhile
            return None, f"larger than {size_text(cap)}: not embedded — {rel}"
        return data, ""
    except OSError:
        return None, f"file missing: {rel}"


class Budget:
    """Bytes of data: URLs (and HTML documents) left for one run's form."""

    def __init__(self, total: int = MEDIA_BUDGET):
        self.left = total
        self.skipped: Counter = Counter()

    def take(self, n: int, what: str) -> bool:
        if n > self.left:
            self.skipped[what] += 1
            return False
        self.left -= n
        return True

    def data_url(self, mime: str, data: bytes, what: str) -> str | None:
        n = len(mime) + 13 + 4 * ((len(data) + 2) // 3)
        if not self.take(n, what):
            return None
        return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

    def note(self) -> str:
        if not self.skipped:
            return ""
        parts = [f"{n} more {what}{'s' if n > 1 else ''}" for what, n in self.skipped.items()]
        return (", ".join(parts) + f" not embedded: the static form holds at most "
                f"{size_text(MEDIA_BUDGET)} of media")


# -- media ---------------------------------------------------------------------------------------

def _ext(ref: dict) -> str:
    fmt = str(ref.get("format") or "").lower()
    if not fmt:
        fmt = str(ref.get("path", "")).rsplit(".", 1)[-1].lower()
    return fmt


def _note(text: str) -> str:
    return f'<div class="nbt-note" style="{_NOTE}">{esc(text)}</div>'


class _Media:
    """One media key: its refs over steps, drawn in two passes (main, then extras) so that each
    key's last object is embedded before any key's extras."""

    def __init__(self, key: str, items: list[tuple[int, dict]], run_dir: Path, budget: Budget):
        self.key = key
        self.type = items[-1][1]["_type"]
        self.items = sorted([(s, r) for s, r in items if r.get("_type") == self.type],
                            key=lambda sr: sr[0])  # stable: same-step refs keep log order
        self.run_dir = run_dir
        self.budget = budget
        self.main = ""
        self.extra = ""
        self.frames: list[tuple[int, str]] = []  # earlier images: (step, data: URL)
        self.svgs: list[str] = []  # our own drawings, for the bundle's image/svg+xml

    @property
    def step(self) -> int:
        return self.items[-1][0]

    @property
    def ref(self) -> dict:
        return self.items[-1][1]

    @property
    def chart(self) -> dict | None:
        """The spec of a chart (`nbtracker.plot`): a table whose reference names its chart."""
        c = self.ref.get("chart") if self.type == "table-file" else None
        return c if isinstance(c, dict) else None

    def count_text(self) -> str:
        kind = "chart" if self.chart is not None else _KIND.get(self.type, self.type)
        n = len(self.items)
        extra = ""
        if self.type == "table-file":
            extra = f" {self.ref.get('nrows', '?')}×{self.ref.get('ncols', '?')}"
        return f"{n} {kind}{'s' if n != 1 else ''}{extra}"

    # pass 1
    def draw_main(self) -> None:
        draw = {"image-file": self._image, "histogram": self._histogram, "audio-file": self._audio,
                "video-file": self._video, "html-file": self._html, "object3D-file": self._object3d,
                "plotly-file": self._plotly, "media-list": self._list, "classes": self._classes,
                "table-file": self._chart if self.chart is not None else lambda ref: ""}.get(self.type)
        if draw is None:
            self.main = _note(f"{self.type}: not shown here")
            return
        try:
            self.main = draw(self.ref)
        except Exception as e:  # a damaged file: say so, draw the rest
            self.main = _note(f"{_KIND.get(self.type, self.type)} not shown: {type(e).__name__}: {e}")

    # pass 2
    def draw_extra(self) -> None:
        try:
            if self.type == "image-file":
                self.extra = self._strip()
            elif self.type == "table-file" and self.chart is not None:
                self.extra = self._chart_data(self.ref)
            elif self.type == "table-file":
                self.main = self._table(self.ref)
        except Exception as e:
            self.extra = _note(f"not shown: {type(e).__name__}: {e}")

    def html(self) -> str:
        where = f"step {self.step}" + (f" · {self.count_text()}" if len(self.items) > 1 else "")
        # a class names the kind: JupyterLab's sanitiser keeps classes, not data- attributes
        kind = re.sub(r"[^A-Za-z0-9-]", "", self.type) + (" nbt-kind-chart" if self.chart else "")
        return (f'<div class="nbt-media nbt-kind-{kind}" data-key="{esc(self.key)}" '
                f'data-kind="{esc(self.type)}">'
                f'<div style="{_HEAD}">{esc(self.key)} <span style="font-weight:400;{_CAPTION}">'
                f'{esc(where)}</span></div>{self._stepper() if self.frames else self.main}'
                f'{self.extra}</div>')

    # -- kinds ---------------------------------------------------------------------------------
    def _data(self, ref: dict, cap: int | None, what: str) -> tuple[str | None, str]:
        """A data: URL of a ref's file within the budget, or None and a note."""
        if not _safe(ref):
            return None, f"{what}: a bad path"
        mime = _MIME.get(_ext(ref))
        if mime is None:
            return None, f"{what} in format {_ext(ref) or '?'}: not embedded — {ref.get('path', '')}"
        data, why = _file(self.run_dir, ref, ITEM_CAP if cap is None else cap)
        if data is None:
            if "larger than" in why:
                self.budget.skipped[what] += 1
            return None, f"{what}: {why}"
        url = self.budget.data_url(mime, data, what)
        if url is None:
            return None, f"{what} ({size_text(len(data))}) not embedded: the media budget is spent"
        return url, ""

    def _img(self, ref: dict, cap: int | None = None, height: int | None = None, title: str = "",
             what: str = "image") -> str:
        url, why = self._data(ref, cap, what)
        if url is None:
            return _note(why)
        w, h = ref.get("width"), ref.get("height")
        if height:
            style = f"height:{height}px;max-width:{height * 4}px"
        elif isinstance(w, int) and isinstance(h, int) and 0 < w < 96 and 0 < h < 96:
            k = max(1, 96 // max(w, h))  # small images (MNIST) shown larger, pixels kept sharp
            style = f"width:{w * k}px;height:{h * k}px;image-rendering:pixelated"
        else:
            style = "max-width:100%;max-height:360px"
        alt = ref.get("caption") or title or self.key
        return (f'<img class="nbt-img" src="{url}" alt="{esc(alt)}" title="{esc(title or alt)}" '
                f'style="{style};border:1px solid #eee">')

    def _captioned(self, inner: str, ref: dict) -> str:
        cap = ref.get("caption")
        extra = []
        for what in ("masks", "boxes"):
            if isinstance(ref.get(what), dict) and ref[what]:
                extra.append(f"{what}: " + ", ".join(str(k) for k in ref[what]) + " (not drawn here)")
        text = "".join(f'<div style="{_CAPTION}">{esc(t)}</div>' for t in [cap, *extra] if t)
        return (f'<figure style="display:inline-block;margin:0 8px 4px 0;vertical-align:top">'
                f'{inner}{text}</figure>')

    def _image(self, ref: dict) -> str:
        boxes = ref.get("boxes")
        if isinstance(boxes, dict) and boxes and isinstance(ref.get("width"), int) \
                and isinstance(ref.get("height"), int):
            drawn = self._boxed(ref, boxes)
            if drawn:
                return self._captioned(drawn, {**ref, "boxes": None})
        return self._captioned(self._img(ref), ref)

    def _boxed(self, ref: dict, boxes: dict) -> str:
        """The image with its boxes drawn over it: an SVG image holding the picture (as a data:
        URL) and a rectangle and label per box."""
        mime = _MIME.get(_ext(ref))
        data, _ = _file(self.run_dir, ref, ITEM_CAP // 2) if mime and _safe(ref) else (None, "")
        if data is None:
            return ""
        w, h = ref["width"], ref["height"]
        k = max(1, 256 // max(w, h, 1))  # small images drawn larger, so labels can be read
        inner = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
        out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w * k}" height="{h * k}" '
               f'viewBox="0 0 {w} {h}" font-family="sans-serif">'
               f'<image href="{inner}" width="{w}" height="{h}" style="image-rendering:pixelated"/>']
        names = []
        for name, group in boxes.items():
            if not isinstance(group, dict):
                continue
            labels = group.get("class_labels") or {}
            items = [b for b in group.get("box_data") or [] if isinstance(b, dict)]
            names.append(f"{name} ({len(items)} box{'es' if len(items) != 1 else ''})")
            for b in items[:200]:
                rect = _box_rect(b, w, h)
                if rect is None:
                    continue
                x0, y0, x1, y1 = rect
                cid = b.get("class_id")
                color = PALETTE[cid % len(PALETTE)] if isinstance(cid, int) else PALETTE[1]
                label = b.get("box_caption") or labels.get(str(cid), labels.get(cid, "")) or ""
                out.append(f'<rect x="{x0:.2f}" y="{y0:.2f}" width="{x1 - x0:.2f}" height="{y1 - y0:.2f}" '
                           f'fill="none" stroke="{color}" stroke-width="{2 / k:.3f}"/>')
                if label:
                    out.append(f'<text x="{x0:.2f}" y="{y0 - 1 / k:.2f}" font-size="{10 / k:.2f}" '
                               f'fill="{color}">{svg_text(label)}</text>')
        out.append("</svg>")
        svg = "".join(out)
        url = self.budget.data_url("image/svg+xml", svg.encode("utf-8"), "image")
        if url is None:
            return ""
        alt = ref.get("caption") or self.key
        return (f'<img class="nbt-img nbt-boxes" src="{url}" alt="{esc(alt)}" '
                f'title="{esc("boxes: " + ", ".join(names))}" style="max-width:100%;border:1px solid #eee">'
                f'<div style="{_CAPTION}">{esc("boxes: " + ", ".join(names))}</div>')

    def _strip(self) -> str:
        """Thumbnails of earlier steps (distinct images, evenly spaced), small ones only; kept
        in `frames` and drawn by `_stepper`. Returns the note of what was left out."""
        earlier, seen = [], {self.ref.get("sha256")}
        for s, r in self.items[:-1]:
            if r.get("sha256") not in seen:
                seen.add(r.get("sha256"))
                earlier.append((s, r))
        if not earlier:
            return ""
        pick = earlier if len(earlier) <= STRIP else [
            earlier[i] for i in np.unique(np.linspace(0, len(earlier) - 1, STRIP).round().astype(int))]
        skipped = 0
        for s, r in pick:
            if (r.get("size") or 0) > THUMB_CAP:
                skipped += 1
                continue
            url, _ = self._data(r, THUMB_CAP, "image")
            if url is None:
                skipped += 1
                continue
            self.frames.append((s, url))
        return (_note(f"{skipped} earlier step{'s' if skipped > 1 else ''} not embedded (too large "
                      "for thumbnails)") if skipped else "")

    def _token(self, what: str) -> str:
        """A class naming this block's style sheet: the same for the same run and key, so a
        notebook run again gives the same HTML. Copies of one form (a panel shown in two cells)
        share it harmlessly: their radio buttons sit in a <form> each and inside their labels,
        so each copy works on its own."""
        digest = hashlib.sha1(f"{self.run_dir}\0{self.key}\0{what}".encode("utf-8", "replace"))
        return f"nbt-{what}-{digest.hexdigest()[:10]}"

    def _stepper(self) -> str:
        """The last image and the earlier steps' thumbnails. With the form's style sheet (every
        viewer that keeps <style>: JupyterLab and VS Code for trusted output, a browser) a click
        on a thumbnail shows that step in place of the last one, and a click on the last one's
        thumbnail brings it back: radio buttons and CSS, no script. Without the style sheet
        (sanitised output) the same HTML is the last image above a strip of thumbnails."""
        tok = self._token("st")
        n = len(self.frames)
        on, off = f".{tok}>label:has(>input:checked)", f".{tok}>label:not(:has(>input:checked))"
        rules = [
            f".{tok}{{display:flex;flex-wrap:wrap;align-items:flex-end}}",
            f".{tok}>label{{cursor:pointer}}",
            f".{tok}>label:hover img{{outline:2px solid #1565c0}}",
            f".{tok}>.nbt-strip{{display:none!important}}",
            f".{tok}>.nbt-step-hint{{display:block!important;order:-1;flex-basis:100%}}",
            f"{on}{{order:-2!important;flex-basis:100%;display:block!important;text-align:left!important}}",
            f"{on} .nbt-step-n{{display:none}}",
            f"{on} img.nbt-thumb{{height:auto!important;min-width:96px;max-width:100%;max-height:360px}}",
            f"{off}.nbt-step-last img{{height:48px!important;width:auto!important;max-width:none!important}}",
            f"{off}.nbt-step-last figure>div{{display:none}}",
            f"{off}.nbt-step-last .nbt-step-num{{display:block!important}}",
            f"{on} .nbt-step-now{{display:block!important}}",
        ]
        radio = f'<input type="radio" name="{tok}" style="display:none"{{}}>'
        out = [f'<form class="nbt-stepper {tok}" style="margin:0"><style>{"".join(rules)}</style>',
               f'<label class="nbt-step nbt-step-last" style="display:block;order:{n}">'
               f'{radio.format(" checked")}{self.main}<div class="nbt-step-num" '
               f'style="{_CAPTION};display:none;text-align:center">{self.step}</div></label>',
               f'<div class="nbt-strip" style="{_CAPTION}">earlier steps</div>',
               f'<div class="nbt-step-hint" style="{_CAPTION};display:none">steps: click one to show it'
               f'</div>']
        for i, (s, url) in enumerate(self.frames):
            out.append(f'<label class="nbt-step" style="display:inline-block;order:{i};'
                       f'margin:0 4px 0 0;text-align:center;vertical-align:top">{radio.format("")}'
                       f'<img class="nbt-thumb" src="{url}" alt="step {s}" title="step {s}" '
                       f'style="height:48px;image-rendering:pixelated;border:1px solid #eee">'
                       f'<div class="nbt-step-n" style="{_CAPTION}">{s}</div>'
                       f'<div class="nbt-step-now" style="{_CAPTION};display:none">step {s}</div></label>')
        out.append("</form>")
        return "".join(out)

    def _svg_img(self, svg: str, alt: str, what: str) -> str:
        url = self.budget.data_url("image/svg+xml", svg.encode("utf-8"), what)
        if url is None:
            return _note(f"{alt}: not embedded, the media budget is spent")
        self.svgs.append(svg)
        return f'<img class="nbt-svg" src="{url}" alt="{esc(alt)}" style="max-width:100%">'

    def _histogram(self, ref: dict) -> str:
        hists = []
        for s, r in self.items:
            try:
                e = np.asarray(r.get("bins"), dtype=np.float64)
                c = np.asarray(r.get("values"), dtype=np.float64)
            except (TypeError, ValueError):
                continue
            if e.ndim == 1 and c.ndim == 1 and len(e) == len(c) + 1 and len(c) and np.isfinite(e).all():
                hists.append((s, e, np.nan_to_num(c, nan=0.0, posinf=0.0, neginf=0.0)))
        if not hists:
            return _note("histogram: no finite bins")
        if len({s for s, _, _ in hists}) == 1:
            s, e, c = hists[-1]
            svg = render_bars(self.key, e, c, x_title=f"value (step {s})")
            return self._svg_img(svg, f"histogram of {self.key}", "chart")
        last = {}
        for s, e, c in hists:  # one histogram per step: the last logged
            last[s] = (e, c)
        steps = sorted(last)
        if len(steps) > HEAT_STEPS:
            idx = np.unique(np.linspace(0, len(steps) - 1, HEAT_STEPS).round().astype(int))
            steps = [steps[i] for i in idx]
        lo = min(last[s][0][0] for s in steps)
        hi = max(last[s][0][-1] for s in steps)
        if not hi > lo:
            lo, hi = lo - 0.5, hi + 0.5
        nb = min(HEAT_BINS, max(len(last[s][1]) for s in steps))
        edges = np.linspace(lo, hi, nb + 1)
        grid = np.zeros((len(steps), nb))
        for i, s in enumerate(steps):
            e, c = last[s]
            if e[-1] > e[0]:  # counts spread evenly within each source bin
                cdf = np.r_[0.0, np.cumsum(c)]
                grid[i] = np.diff(np.interp(edges, e, cdf))
            else:
                grid[i, min(nb - 1, int((e[0] - lo) / (hi - lo) * nb))] = c.sum()
            top = grid[i].max()
            if top > 0:
                grid[i] /= top
        note = (f"{len(steps)} of {len(last)} steps drawn" if len(steps) < len(last) else None)
        svg = render_heatmap(f"{self.key} (each step's counts scaled to its largest bin)",
                             np.asarray(steps, dtype=np.float64), edges, grid, note=note)
        return (f'<div class="nbt-hist">{self._svg_img(svg, f"histograms of {self.key} over steps", "chart")}'
                f'</div>')

    def _audio(self, ref: dict) -> str:
        url, why = self._data(ref, None, "audio clip")
        info = [ref.get("caption"), *(f"{v}" for v in [
            f"{ref['duration']:.2f} s" if isinstance(ref.get("duration"), (int, float)) else None,
            f"{ref['sample_rate']} Hz" if ref.get("sample_rate") else None] if v)]
        text = "".join(f'<div style="{_CAPTION}">{esc(t)}</div>' for t in info if t)
        if url is None:
            return _note(why) + text
        return f'<audio class="nbt-audio" controls preload="metadata" src="{url}"></audio>{text}'

    def _video(self, ref: dict) -> str:
        fmt = _ext(ref)
        if fmt in ("png", "gif", "apng"):
            inner = self._img({**ref, "format": "png" if fmt == "apng" else fmt}, what="video")
            return self._captioned(inner, ref)
        url, why = self._data(ref, None, "video")
        cap = f'<div style="{_CAPTION}">{esc(ref["caption"])}</div>' if ref.get("caption") else ""
        if url is None:
            return _note(why) + cap
        return (f'<video class="nbt-video" controls preload="metadata" src="{url}" '
                f'style="max-width:100%;max-height:360px"></video>{cap}')

    def _classes(self, ref: dict) -> str:
        cs = [c for c in ref.get("class_set") or [] if isinstance(c, dict)]
        shown = ", ".join(f"{c.get('id')}: {str(c.get('name'))[:CELL_CHARS]}"
                          for c in cs[:CLASSES_SHOWN])
        more = f" and {len(cs) - CLASSES_SHOWN} more" if len(cs) > CLASSES_SHOWN else ""
        return f'<div style="{_CAPTION}">{esc(f"{len(cs)} classes: {shown}{more}")}</div>'

    def _html(self, ref: dict) -> str:
        data, why = _file(self.run_dir, ref, ITEM_CAP // 2)
        if data is None:
            return _note(f"HTML document: {why}")
        doc = data.decode("utf-8", "replace")
        if not self.budget.take(len(doc) + len(doc) // 8, "HTML document"):
            return _note(f"HTML document ({size_text(len(data))}) not embedded: the media budget is spent")
        # the text inside the frame shows only where a sanitiser removed the frame (untrusted
        # JupyterLab): it says what was there
        fallback = (f"[HTML document, {size_text(len(data))}: shown in a sandboxed frame where "
                    "the notebook is trusted or converted to HTML]")
        return (f'<iframe class="nbt-html" sandbox="" srcdoc="{esc(doc)}" '
                f'style="width:100%;height:240px;resize:vertical;border:1px solid #ddd" '
                f'title="{esc(self.key)}">'
                f'{esc(fallback)}</iframe>')

    def _object3d(self, ref: dict) -> str:
        fmt = _ext(ref)
        if fmt in ("pts.json", "json"):
            data, why = _file(self.run_dir, ref, 64 * 1024 * 1024)
            if data is None:
                return _note(f"3-D points: {why}")
            pts = np.asarray(json.loads(data)["points"], dtype=np.float64)
        elif fmt == "obj":
            data, why = _file(self.run_dir, ref, 64 * 1024 * 1024)
            if data is None:
                return _note(f"3-D object: {why}")
            pts = np.asarray([[float(t) for t in ln.split()[1:4]] for ln in
                              data.decode("utf-8", "replace").splitlines() if ln.startswith("v ")])
        else:
            return _note(f"3-D object ({fmt}, {size_text(ref.get('size') or 0)}): not drawn here "
                         f"— {ref.get('path', '')}")
        if pts.ndim != 2 or pts.shape[1] < 3 or not len(pts):
            return _note("3-D points: none to draw")
        n = len(pts)
        if n > MAX_POINTS:
            pts = pts[np.linspace(0, n - 1, MAX_POINTS).round().astype(int)]
        drawn = f", {MAX_POINTS} drawn" if n > MAX_POINTS else ""
        svg = points_svg(self.key, pts, note=f"{n} points{drawn} · fixed isometric view")
        return self._svg_img(svg, f"3-D points of {self.key}", "chart")

    def _plotly(self, ref: dict) -> str:
        data, why = _file(self.run_dir, ref, 16 * 1024 * 1024)
        if data is None:
            return _note(f"plotly figure: {why}")
        fig = json.loads(data)
        svg, note = plotly_svg(self.key, fig)
        if svg is None:
            return _note(note)
        return self._svg_img(svg, f"plotly figure {self.key}", "chart") + (_note(note) if note else "")

    def _list(self, ref: dict) -> str:
        items = [r for r in ref.get("items") or [] if isinstance(r, dict)]
        cells = []
        for r in items[:32]:
            if r.get("_type") == "image-file":
                cells.append(self._captioned(self._img(r, cap=ITEM_CAP // 4), r))
            else:
                sub = _Media(self.key, [(self.step, r)], self.run_dir, self.budget)
                sub.draw_main()
                sub.draw_extra()
                self.svgs += sub.svgs
                cells.append(f'<div style="display:inline-block;vertical-align:top;margin:0 8px 4px 0">'
                              f'{sub.main}{sub.extra}</div>')
        more = _note(f"{len(items) - 32} more items not shown") if len(items) > 32 else ""
        return f'<div class="nbt-grid">{"".join(cells)}</div>{more}'

    def _chart(self, ref: dict) -> str:
        """A chart logged by `nbtracker.plot`, drawn from its table (`charts/custom.py`)."""
        cols, rows, why = read_table(self.run_dir, ref, CHART_ROWS)
        if cols is None:
            return _note(f"chart: {why}")
        svg, note = chart_svg(self.chart, cols, rows, key=self.key, total=ref.get("nrows"))
        if svg is None:
            return _note(note)
        title = (self.chart.get("string_fields") or {}).get("title") or self.key
        return self._svg_img(svg, f"chart: {title}", "chart") + (_note(note) if note else "")

    def _chart_data(self, ref: dict) -> str:
        """A chart's table, folded under it (the table itself when the chart is not drawn)."""
        table = self._table(ref)
        if "<img" not in self.main:
            return table
        return (f'<details class="nbt-chart-data"><summary style="cursor:pointer;{_CAPTION}">'
                f'data · {esc(ref.get("nrows", "?"))} rows</summary>{table}</details>')

    def _table(self, ref: dict) -> str:
        """The first rows as an HTML table. With the form's style sheet, ▲/▼ in a column's
        header sort the rows by it (radio buttons; the table laid out as a grid whose cells
        take their row's rank in that column as their `order`; no script); without it
        (sanitised output) the table is as logged."""
        cols, rows, why = read_table(self.run_dir, ref, TABLE_ROWS)
        if cols is None:
            return _note(f"table: {why}")
        ncol = len(cols)
        rows = [list(r[:ncol]) + [None] * (ncol - len(r)) for r in rows]  # ragged rows: padded
        ranks = {c: rk for c in range(ncol)
                 if len(rows) > 1 and (rk := _ranks([r[c] for r in rows])) is not None}
        tok = self._token("tb")
        rules = [f".{tok} table{{display:inline-grid;grid-template-columns:repeat({ncol},auto)}}",
                 f".{tok} thead,.{tok} tbody,.{tok} tr{{display:contents}}",
                 f".{tok} th{{order:-1000000}}",
                 f".{tok} .nbt-sort{{cursor:pointer;color:#999;padding:0 1px}}",
                 f".{tok} .nbt-sort-a::after{{content:'\\25B2'}}",
                 f".{tok} .nbt-sort-d::after{{content:'\\25BC'}}",
                 f".{tok} .nbt-sort:hover,.{tok} .nbt-sort:has(>input:checked){{color:#1565c0}}"]
        radio = f'<input type="radio" name="{tok}" style="display:none"{{}}>'
        th = []
        for c, name in enumerate(cols):
            sort = ""
            if c in ranks:
                for d in "ad":
                    rules.append(f".{tok}:has(.nbt-sort-{c}{d}>input:checked) td{{order:var(--{d}{c})}}")
                    sort += (f'<label class="nbt-sort nbt-sort-{d} nbt-sort-{c}{d}" '
                             f'title="sort by this column">{radio.format("")}</label>')
            th.append(f'<th style="{_TD};font-weight:600">{esc(name)}{sort}</th>')
        body = []
        for i, r in enumerate(rows):
            order = ";".join(f"--a{c}:{rk[0][i]};--d{c}:{rk[1][i]}" for c, rk in ranks.items())
            body.append(f'<tr style="{order}">' + "".join(
                f'<td style="{_TD}">{self._cell(v)}</td>' for v in r) + "</tr>")
        total = ref.get("nrows", len(rows))
        more = (_note(f"first {len(rows)} of {total} rows" + (" (sorted among themselves)"
                                                              if ranks else ""))
                if isinstance(total, int) and total > len(rows) else "")
        style = f'<style>{"".join(rules)}</style>' if ranks else ""
        return (f'<form class="nbt-table-sort {tok}" style="margin:0">{style}'
                f'<div style="max-height:480px;overflow:auto">'
                f'<table class="nbt-media-table" style="border-collapse:collapse;font-size:11px">'
                f'<thead><tr>{"".join(th)}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
                f'</form>{more}')

    def _cell(self, v: Any) -> str:
        if isinstance(v, dict) and isinstance(v.get("_type"), str):
            if v["_type"] == "image-file":
                return self._img(v, cap=THUMB_CAP, height=48, title=v.get("caption") or "")
            return esc(f"[{_KIND.get(v['_type'], v['_type'])}]")
        if v is None:
            return ""
        from .static import value_text

        s = value_text(_named(v))
        return esc(s if len(s) <= CELL_CHARS else s[:CELL_CHARS - 1] + "…")


_DIGITS = re.compile(r"(\d+)")


def _ranks(values: list) -> tuple[list[int], list[int]] | None:
    """Each value's place when the column is sorted up and when sorted down (numbers before
    text, text with its numbers compared as numbers, "run 2" before "run 10"; empty cells last
    either way: the live panel's order), or None for a column that cannot be sorted (media,
    lists, all empty)."""
    keys = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            keys.append(None)
        elif isinstance(v, bool):
            keys.append((0, int(v), ()))
        elif isinstance(v, (int, float)):
            keys.append((0, v, ()))
        elif isinstance(v, str):
            keys.append((1, 0, tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                                     for t in _DIGITS.split(v.casefold()) if t)))
        else:
            return None
    full = [i for i, k in enumerate(keys) if k is not None]
    if not full:
        return None
    empty = [i for i, k in enumerate(keys) if k is None]
    up = sorted(full, key=lambda i: keys[i])
    down = sorted(full, key=lambda i: keys[i], reverse=True)
    ranks = ([0] * len(keys), [0] * len(keys))
    for which, order in enumerate((up + empty, down + empty)):
        for place, i in enumerate(order):
            ranks[which][i] = place
    return ranks


def _named(v: Any) -> Any:
    """A table cell with NaN and ±inf as the text the live panel shows: "NaN", "inf", "-inf"
    (also inside a list or dict)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if v != v else ("inf" if v > 0 else "-inf")
    if isinstance(v, list):
        return [_named(x) for x in v]
    if isinstance(v, dict):
        return {k: _named(x) for k, x in v.items()}
    return v


_TD = "padding:2px 8px 2px 0;text-align:left;border-bottom:1px solid #eee;vertical-align:top"


def _box_rect(box: dict, w: int, h: int) -> tuple[float, float, float, float] | None:
    """(x0, y0, x1, y1) in pixels of a box as wandb writes it: {minX, maxX, minY, maxY} or
    {middle: [x, y], width, height}, relative to the image (0..1) unless domain is "pixel"."""
    p = box.get("position")
    if not isinstance(p, dict):
        return None
    try:
        if "middle" in p:
            (mx, my), bw, bh = p["middle"], float(p["width"]), float(p["height"])
            x0, x1, y0, y1 = mx - bw / 2, mx + bw / 2, my - bh / 2, my + bh / 2
        else:
            x0, x1, y0, y1 = (float(p[k]) for k in ("minX", "maxX", "minY", "maxY"))
    except (KeyError, TypeError, ValueError):
        return None
    if box.get("domain") != "pixel":
        x0, x1, y0, y1 = x0 * w, x1 * w, y0 * h, y1 * h
    if not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
        return None
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def read_table(run_dir: Path, ref: dict, limit: int) -> tuple[list | None, list, str]:
    """(columns, the first `limit` rows, why not) of a table-file ref; media cells as ref dicts."""
    parquet = _ext(ref) == "parquet"
    if parquet:
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            return None, [], f"{ref.get('nrows', '?')} rows in Parquet; pyarrow is not installed"
    data, why = _file(run_dir, ref, 1 << 40 if parquet else 256 * 1024 * 1024)
    if data is None:
        return None, [], why
    cols, rows, _ = read_table_file(data, parquet, first=limit)
    return cols, rows, ""


def points_svg(title: str, pts: np.ndarray, note: str | None = None) -> str:
    """3-D points seen from a fixed isometric direction (from +x +y +z, z up), far points first;
    colours from r,g,b columns or a category column."""
    xyz = pts[:, :3]
    ok = np.isfinite(xyz).all(axis=1)
    pts, xyz = pts[ok], xyz[ok]
    d = np.array([1.0, 1.0, 1.0]) / math.sqrt(3)  # towards the viewer
    right = np.array([-1.0, 1.0, 0.0]) / math.sqrt(2)
    up = np.cross(d, right)
    u, v, depth = xyz @ right, xyz @ up, xyz @ d
    order = np.argsort(depth, kind="stable")
    colors = None
    if pts.shape[1] >= 6:
        rgb = np.clip(np.nan_to_num(pts[:, 3:6]), 0, 255)
        if rgb.max(initial=0) <= 1.0:
            rgb = rgb * 255
        q = (rgb // 32 * 32 + 16).astype(int)  # 512 colours at most: points share paths
        colors = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in q[order].tolist()]
    elif pts.shape[1] == 4:
        cats = np.nan_to_num(pts[:, 3]).astype(int)
        colors = [PALETTE[c % len(PALETTE)] for c in cats[order].tolist()]
    axes = [(name, float(vec @ right), float(vec @ up), color) for name, vec, color in
            (("x", np.array([1.0, 0, 0]), "#c62828"), ("y", np.array([0, 1.0, 0]), "#2e7d32"),
             ("z", np.array([0, 0, 1.0]), "#1565c0"))]
    return render_points(title, u[order], v[order], colors, axes=axes, note=note)


def plotly_svg(title: str, fig: dict) -> tuple[str | None, str]:
    """Scatter/line and bar traces of a plotly figure's JSON, drawn by our renderer; (None, why)
    for other figures."""
    traces = [t for t in fig.get("data") or [] if isinstance(t, dict)]
    layout = fig.get("layout") or {}
    name = _plotly_title(layout) or title
    kinds = {t.get("type", "scatter") for t in traces}
    drawn = [t for t in traces if t.get("type", "scatter") in ("scatter", "scattergl", "bar")]
    skipped = len(traces) - len(drawn)
    if not drawn:
        return None, (f"plotly figure ({len(traces)} trace{'s' if len(traces) != 1 else ''}: "
                      f"{', '.join(sorted(map(str, kinds))) or 'none'}): not drawn here")
    note = f"{skipped} trace{'s' if skipped > 1 else ''} of other types not drawn" if skipped else ""
    if all(t.get("type") == "bar" for t in drawn):
        t = drawn[0]
        ys = np.asarray(_plotly_array(t.get("y")), dtype=np.float64)
        labels = [str(x) for x in _plotly_array(t.get("x"))] or [str(i) for i in range(len(ys))]
        labels = (labels + [""] * len(ys))[:len(ys)]
        if len(drawn) > 1:
            note = (note + "; " if note else "") + f"first of {len(drawn)} bar traces drawn"
        return render_bars(name, np.arange(len(ys) + 1, dtype=np.float64), ys, labels=labels,
                           x_title=_axis_title(layout, "xaxis")), note
    series = []
    for i, t in enumerate(drawn):
        y = _plotly_array(t.get("y"))
        x = _plotly_array(t.get("x")) or list(range(len(y)))
        try:
            xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError):
            xs, ys = np.arange(len(y), dtype=np.float64), np.asarray(y, dtype=np.float64)
        mode = str(t.get("mode") or ("lines" if len(ys) > 20 else "lines+markers"))
        label = str(t.get("name") or f"trace {i}")
        series.append(Series(label, xs, ys, markers="lines" not in mode or t.get("type") == "bar"))
    panel = Panel(name, _axis_title(layout, "xaxis") or "x", series)
    return render_svg([panel], columns=1, width=520, height=240, legend=len(series) > 1), note


def _plotly_title(layout: dict) -> str:
    t = layout.get("title")
    return str(t.get("text") or "") if isinstance(t, dict) else str(t or "")


def _axis_title(layout: dict, axis: str) -> str:
    a = layout.get(axis) or {}
    return _plotly_title(a) if isinstance(a, dict) else ""


def _plotly_array(v: Any) -> list:
    """A trace's x or y: a list, or plotly's typed-array form {"dtype", "bdata"}."""
    if isinstance(v, dict) and "bdata" in v and "dtype" in v:
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if v.get("shape"):
            arr = arr.reshape([int(s) for s in str(v["shape"]).split(",")])
        return arr.tolist()
    return list(v) if isinstance(v, (list, tuple)) else []


def media_section(rr: RunRecords, run_dir: Path, budget: Budget) -> tuple[str, list[str], list[str]]:
    """(html, our svg drawings, text lines) for the run's media keys."""
    keys = list(rr.media)
    shown = [_Media(k, rr.media[k], run_dir, budget) for k in keys[:MAX_KEYS]]
    for m in shown:
        m.draw_main()
    for m in shown:
        m.draw_extra()
    body = "".join(m.html() for m in shown)
    if len(keys) > MAX_KEYS:
        rest = keys[MAX_KEYS:]
        body += _note(f"{len(rest)} more media keys not shown: {', '.join(rest[:8])}"
                      + ("…" if len(rest) > 8 else ""))
    note = budget.note()
    if note:
        body += f'<div class="nbt-budget" style="{_NOTE}">{esc(note)}</div>'
    lines = ["media: " + "; ".join(f"{m.key}: {m.count_text()}" for m in shown)] if shown else []
    if note:
        lines.append("  " + note)
    svgs = [s for m in shown for s in m.svgs]
    return (f'<div class="nbt-media-all">{body}</div>' if body else ""), svgs, lines


# -- system metrics -------------------------------------------------------------------------------

_GROUPS: list[tuple[str, Callable[[str], bool], float]] = [
    # (chart title, which keys, scale)
    ("cpu %", lambda k: k in ("cpu", "proc.cpu"), 1.0),
    ("cpu threads", lambda k: k == "proc.cpu.threads", 1.0),
    ("memory %", lambda k: k in ("memory", "proc.memory.percent"), 1.0),
    ("memory MB", lambda k: k in ("proc.memory.rssMB", "memory.availableMB"), 1.0),
    ("disk %", lambda k: k == "disk", 1.0),
    ("disk MB", lambda k: k in ("disk.in", "disk.out"), 1.0),
    ("network MB", lambda k: k in ("network.sent", "network.recv"), 1 / 1e6),  # bytes
]
_GPU = re.compile(r"gpu\.(\d+)\.(\w+)$")
_GPU_UNIT = {"gpu": "%", "memory": "%", "memoryAllocated": "%", "temp": "°C", "powerWatts": "W"}


def system_section(rr: RunRecords, started: float | None) -> tuple[str, str, list[str]]:
    """(html, svg, text lines): one chart per group of the run's system metrics."""
    if not rr.system:
        return "", "", []
    t0 = started if started is not None else rr.system[0][0]
    keys: dict[str, None] = {}
    for _, d in rr.system:
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                keys.setdefault(k, None)
    ts = np.asarray([t for t, _ in rr.system], dtype=np.float64) - t0
    cols = {k: np.asarray([_num(d.get(k)) for _, d in rr.system], dtype=np.float64) for k in keys}
    panels: list[Panel] = []
    used: set[str] = set()
    for title, match, scale in _GROUPS:
        ks = [k for k in keys if match(k)]
        if ks:
            panels.append(Panel(title, "runtime (s)", [Series(k, ts, cols[k] * scale) for k in ks]))
            used.update(ks)
    gpus: dict[tuple[str, str], list[str]] = {}
    for k in keys:
        m = _GPU.match(k)
        if m and m.group(2) in _GPU_UNIT:
            gpus.setdefault((m.group(1), _GPU_UNIT[m.group(2)]), []).append(k)
    for (i, unit), ks in sorted(gpus.items(), key=lambda kv: (int(kv[0][0]), kv[0][1] != "%")):
        panels.append(Panel(f"gpu.{i} {unit}", "runtime (s)", [Series(k, ts, cols[k]) for k in ks]))
        used.update(ks)
    rest = [k for k in keys if k not in used and k != "cpu.count"]
    if not panels:
        return "", "", []
    # one image per group, each with its own legend: colours never stand for two keys
    svgs = [render_svg([p], columns=1, width=260, height=150, legend=len(p.series) > 1,
                       max_points=800) for p in panels]
    imgs = "".join(f'<img class="nbt-svg" src="data:image/svg+xml;base64,'
                   f'{base64.b64encode(svg.encode("utf-8")).decode("ascii")}" '
                   f'alt="{esc("system: " + p.title)}" style="max-width:100%;vertical-align:top">'
                   for p, svg in zip(panels, svgs))
    note = _note(f"also recorded: {', '.join(rest[:6])}" + ("…" if len(rest) > 6 else "")) if rest else ""
    body = (f'<div class="nbt-system"><div style="{_HEAD}">system <span style="font-weight:400;'
            f'{_CAPTION}">{len(rr.system)} samples · {ts[-1]:.0f} s</span></div>'
            f'<div>{imgs}</div>{note}</div>')
    line = (f"system: {len(rr.system)} samples of {', '.join(list(keys)[:10])}"
            + ("…" if len(keys) > 10 else ""))
    return body, stack_svg(svgs), [line]


def _num(v: Any) -> float:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan


# -- alerts and run info -----------------------------------------------------------------------

def alerts_section(rr: RunRecords) -> tuple[str, list[str]]:
    if not rr.alerts:
        return "", []
    items = []
    for a in rr.alerts[-MAX_ALERTS:]:
        level = str(a.get("level") or "INFO").upper()
        fg, bg = _LEVEL.get(level, _LEVEL["INFO"])
        text = str(a.get("text") or "")
        text = text if len(text) <= 1000 else text[:999] + "…"
        items.append(f'<div class="nbt-alert" data-level="{esc(level)}" style="border-left:3px solid {fg};'
                     f'background:{bg};padding:2px 8px;margin:2px 0">'
                     f'<b style="color:{fg}">{esc(level)}</b> <b>{esc(a.get("title", ""))}</b>'
                     + (f'<div style="white-space:pre-wrap">{esc(text)}</div>' if text else "") + "</div>")
    more = (_note(f"{len(rr.alerts) - MAX_ALERTS} earlier alerts not listed")
            if len(rr.alerts) > MAX_ALERTS else "")
    lines = [f"alerts: {len(rr.alerts)}"] + ["  " + " ".join(  # one line each
        f"[{str(a.get('level', 'INFO')).upper()}] {a.get('title', '')}: {a.get('text', '')}".split())
        for a in rr.alerts[-5:]]
    return f'<div class="nbt-alerts" style="margin:4px 0">{more}{"".join(items)}</div>', lines


_PASSWORD = re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]*@")  # user:password@ in a URL


def _flat(d: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in d.items():
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def info_section(rr: RunRecords) -> tuple[str, list[str]]:
    """Python, host, platform, git and notebook path, folded (the env record, else what the
    run record says)."""
    env = rr.env if rr.env is not None else {k: rr.run[k] for k in ("python", "host", "cwd", "argv")
                                            if k in rr.run}
    if not env:
        return "", []
    rows = []
    for k, v in _flat(env):
        if isinstance(v, list):
            v = " ".join(str(x) for x in v)
        if k == "started" and isinstance(v, (int, float)):
            v = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(v))
        elif k == "memory.total" and isinstance(v, (int, float)):
            v = size_text(v)
        v = "" if v is None else str(v)
        if k.endswith("remote"):
            v = _PASSWORD.sub("", v)  # never show a token kept in a remote's URL
        rows.append((k, v if len(v) <= 300 else v[:299] + "…"))
    code = [f for f in rr.files if f.startswith("code/") or f == "requirements.txt"]
    if code:
        rows.append(("saved code", ", ".join(code[:10]) + ("…" if len(code) > 10 else "")))
    git = env.get("git") if isinstance(env.get("git"), dict) else {}
    head = [f"python {env['python']}" if env.get("python") else "", str(env.get("host") or "")]
    if git.get("commit"):
        head.append(f"git {str(git['commit'])[:8]}" + (f" ({git['branch']})" if git.get("branch") else "")
                    + (" dirty" if git.get("dirty") else ""))
    nb = env.get("notebook") if isinstance(env.get("notebook"), dict) else {}
    if nb.get("path"):
        head.append(str(nb["path"]))
    summary = " · ".join(h for h in head if h)
    table = "".join(f'<tr><td style="{_TD};font-weight:600">{esc(k)}</td><td style="{_TD}">{esc(v)}</td></tr>'
                    for k, v in rows)
    body = (f'<details class="nbt-info" style="margin-top:6px"><summary style="cursor:pointer;color:#555">'
            f'run info · {esc(summary)}</summary><table style="border-collapse:collapse;font-size:11px">'
            f'<tbody>{table}</tbody></table></details>')
    return body, [f"info: {summary}"]


@dataclass
class Extras:
    """The sections a finished run's static form adds to its charts and summary."""

    alerts: str = ""
    media: str = ""
    system: str = ""
    info: str = ""
    svgs: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def run_extras(run_dir: str | Path, budget: int = MEDIA_BUDGET) -> Extras:
    """The media, system, alerts and info sections of the run in `run_dir`."""
    run_dir = Path(run_dir)
    rr = read_run(run_dir)
    out = Extras()
    out.alerts, lines_a = alerts_section(rr)
    out.media, media_svgs, lines_m = media_section(rr, run_dir, Budget(budget))
    out.system, system_svg, lines_s = system_section(rr, rr.started)
    out.info, lines_i = info_section(rr)
    out.svgs = media_svgs + ([system_svg] if system_svg else [])
    out.lines = lines_a + lines_m + lines_s + lines_i
    return out
