"""PanelExtras: what a live panel shows beyond scalars — media, system metrics, alerts, the run's
code and environment, console output — and the media files the browser asks for.

The run's listeners only append: `LiveFeed` hands this class the rows it drained from its queue
(`take_rows`), and the run's event listener (`on_event`) appends `(kind, payload)` to a deque.
Everything else happens in the feed thread (`flush`): media references become index entries
sent as `media` messages, events become `events` messages, and the files of each media key's
latest step are pushed (at most every PUSH_INTERVAL seconds and PUSH_BYTES at a time; the
latest step wins). Older steps' files are sent when the browser asks (`fetch`, answered in the
kernel's message handler).

A table goes as JSON of its first TABLE_ROWS rows; the table of a chart (`nbtracker.plot`, a
reference with a "chart" spec) as CHART_ROWS rows, evenly spaced when it has more.

A file is sent only if its reference's path is relative, names no `..`, and resolves inside the
run's `media/` folder (symlinks followed); and only up to MAX_FILE_BYTES. The index and events
are bounded (MAX_ENTRIES per key, MAX_SYSTEM samples, MAX_ALERTS, OUTPUT_LINES) and copied into
the panel's `media` and `extras` traits at checkpoints, so a reloaded page shows them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

from ..store import layout
from ..store.media import read_table_file
from ..store.recordlog import history_values, pack, read_records
from .contract import (
    AlertEntry,
    EventsMessage,
    Extras,
    FileMessage,
    MediaDelta,
    MediaEntry,
    MediaMessage,
    OutputChunk,
    SystemSample,
)
from .widgets import jsonable

MAX_FILE_BYTES = 8 << 20  # per file message
MAX_TABLE_SOURCE = 64 << 20  # a JSON table larger than this is not read for the panel
TABLE_ROWS = 2000  # rows of a table sent to the panel
CHART_ROWS = 20_000  # rows of a chart's table (nbtracker.plot) sent; evenly spaced beyond
MAX_ENTRIES = 1000  # per media key (histograms: MAX_HIST_ENTRIES); thinned evenly beyond
MAX_HIST_ENTRIES = 150  # a heat-map column each
HIST_BINS = 64  # a histogram's bins in the panel (adjacent bins merged beyond)
FINAL_ENTRIES = 50  # per media key in a finished panel's saved state
FINAL_SYSTEM = 300
CHECKPOINT = 30.0  # seconds between copies of the index and events into the traits
MAX_SYSTEM = 2000
MAX_ALERTS = 50
OUTPUT_LINES = 200
LINE_CHARS = 1000
MAX_EVENTS = 10_000  # events waiting for the feed thread; the oldest go first
PUSH_INTERVAL = 0.5  # seconds between pushes of the latest media files
PUSH_BYTES = 8 << 20  # bytes pushed at a time
PUSH_CELLS = 50  # image cells of a table pushed with it (its first page)
LIST_ITEMS = 64  # items of a media list pushed
RECENT = 256  # paths pushed lately, not pushed again (the page keeps 400 files)

MIME = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
    "webp": "image/webp", "bmp": "image/bmp", "svg": "image/svg+xml",
    "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac",
    "m4a": "audio/mp4", "mp4": "video/mp4", "webm": "video/webm",
    "html": "text/html", "json": "application/json", "obj": "text/plain",
    "gltf": "model/gltf+json", "glb": "model/gltf-binary",
}


def media_file(run_dir: Path, path: Any) -> Path:
    """The file a media reference's `path` names, or ValueError: a relative path under `media/`
    with no `..`, resolving (symlinks followed) inside the run's media folder to a regular file
    (`store.layout.run_file`)."""
    return layout.run_file(run_dir, path, (layout.MEDIA_DIR,))


def is_media(v: Any) -> bool:
    return type(v) is dict and isinstance(v.get("_type"), str)


def ref_paths(ref: dict) -> list[str]:
    """The files a reference's view needs first: its own, its masks', a list's items'."""
    if ref.get("_type") == "media-list":
        out = []
        for item in (ref.get("items") or [])[:LIST_ITEMS]:
            if isinstance(item, dict):
                out += ref_paths(item)
        return out
    out = [ref["path"]] if isinstance(ref.get("path"), str) else []
    for m in (ref.get("masks") or {}).values() if isinstance(ref.get("masks"), dict) else ():
        if isinstance(m, dict) and isinstance(m.get("path"), str):
            out.append(m["path"])
    return out


def _mime(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    if name.endswith(".table.json") or name.endswith(".parquet"):
        return "application/json"
    if name.endswith(".pts.json"):
        return "application/json"
    return MIME.get(name.rsplit(".", 1)[-1], "application/octet-stream")


def _finite(d: Any) -> dict[str, float]:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                out[str(k)] = float(v)
    return out


def _sample(payload: Any) -> SystemSample | None:
    if not isinstance(payload, dict):
        return None
    ts = payload.get("ts")
    d = _finite(payload.get("d"))
    if not isinstance(ts, (int, float)) or not math.isfinite(ts) or not d:
        return None
    return SystemSample(ts=float(ts), d=d)


def _alert(rec: Any) -> AlertEntry | None:
    if not isinstance(rec, dict) or rec.get("suppressed"):  # a repeat within wait_duration
        return None
    a = AlertEntry(title=str(rec.get("title", "")), text=str(rec.get("text", "")),
                   level=str(rec.get("level", "INFO")).upper())
    ts = rec.get("ts")
    if isinstance(ts, (int, float)) and math.isfinite(ts):
        a["ts"] = float(ts)
    return a


def _info(payload: Any) -> dict | None:
    if not isinstance(payload, dict):
        return None
    d = payload.get("d") if isinstance(payload.get("d"), dict) else payload
    return jsonable({k: v for k, v in d.items() if k not in ("t", "seq")})


class _Lines:
    """The last OUTPUT_LINES lines of console output (each at most LINE_CHARS), a progress line
    (\\r) at its last state."""

    def __init__(self) -> None:
        self.lines: deque[OutputChunk] = deque(maxlen=OUTPUT_LINES)
        self.open: dict[str, bool] = {}  # stream -> its last line is unfinished

    def add(self, stream: str, text: str) -> None:
        parts = text.split("\n")
        for i, part in enumerate(parts):
            over = "\r" in part.rstrip("\r")
            seg = part.rstrip("\r").rsplit("\r", 1)[-1][-LINE_CHARS:]
            if i == 0 and self.open.get(stream) and self.lines and self.lines[-1]["stream"] == stream:
                line = self.lines[-1]
                line["text"] = seg if over else (line["text"] + seg)[-LINE_CHARS:]
            elif not (i == len(parts) - 1 and part == ""):
                self.lines.append(OutputChunk(stream=stream, text=seg))
        self.open[stream] = not text.endswith("\n")


class PanelExtras:
    def __init__(self, run: Any, panel: Any, push: bool = True):
        self.run = run
        self.panel = panel
        self.pushing = push  # a static panel shows no files: none are read for it
        where = getattr(run, "storage_dir", "")
        self.run_dir = Path(where) if where else None  # a disabled run has no files
        self._lock = threading.Lock()
        self._events: deque = deque(maxlen=MAX_EVENTS)
        self._index: dict[str, list[MediaEntry]] = {}
        self._new: dict[str, list[MediaEntry]] = {}
        self._reset: set[str] = set()
        self._system: deque[SystemSample] = deque(maxlen=MAX_SYSTEM)
        self._alerts: deque[AlertEntry] = deque(maxlen=MAX_ALERTS)
        self._info: dict = {}
        self._out = _Lines()
        self._pending = self._nothing()
        self._push_due: set[str] = set()  # keys whose latest step has files not pushed yet
        self._recent: OrderedDict[str, None] = OrderedDict()  # paths pushed lately
        self._charts: set[str] = set()  # table files that a chart draws (more rows are sent)
        self._last_push = 0.0
        self._last_checkpoint = 0.0
        self.dirty = False

    @staticmethod
    def _nothing() -> dict:
        return {"system": [], "alerts": [], "output": False, "info": None}

    # -- what the run's listeners hand over (cheap: append only) --------------------------
    def on_event(self, kind: str, payload: dict) -> None:
        self._events.append((kind, payload))

    def take_rows(self, keys: tuple, rows: list) -> None:
        """Media references among drained rows of `keys` (row = step, ts, *values)."""
        for row in rows:
            for k, v in zip(keys, row[2:]):
                if type(v) is dict and "_type" in v:
                    self._add(k, row[0], v)

    # -- the index ---------------------------------------------------------------------------
    def _add(self, key: str, step: Any, ref: dict) -> None:
        if not isinstance(step, int) or not is_media(ref):
            return
        entry = MediaEntry(step=step, ref=jsonable(_compact(ref)))
        if isinstance(ref.get("chart"), dict) and isinstance(ref.get("path"), str):
            self._charts.add(ref["path"])
        with self._lock:
            entries = self._index.setdefault(key, [])
            if entries and entries[-1]["step"] > step:  # logged late, at an earlier step
                entries.append(entry)
                entries.sort(key=lambda e: e["step"])
                self._reset.add(key)
            else:
                entries.append(entry)
                self._new.setdefault(key, []).append(entry)
            cap = MAX_HIST_ENTRIES if ref.get("_type") == "histogram" else MAX_ENTRIES
            if len(entries) > cap:
                self._index[key] = _thin(entries, cap // 2)
                self._reset.add(key)
            if entries[-1] is entry and ref_paths(ref):
                self._push_due.add(key)
        self.dirty = True

    def _drain_events(self) -> None:
        pop = self._events.popleft
        for _ in range(len(self._events)):
            kind, payload = pop()
            self._event(kind, payload)

    def _event(self, kind: str, payload: Any) -> None:
        p = self._pending
        if kind == "system":
            s = _sample(payload)
            if s is not None:
                self._system.append(s)
                p["system"].append(s)
        elif kind == "alert":
            a = _alert(payload)
            if a is not None:
                self._alerts.append(a)
                p["alerts"].append(a)
        elif kind in ("info", "env"):
            d = _info(payload)
            if d is not None:
                self._info = d
                p["info"] = d
        elif kind == "output" and isinstance(payload, dict):
            self._out.add(str(payload.get("stream", "stdout")), str(payload.get("text", "")))
            p["output"] = True
        else:
            return
        self.dirty = True

    # -- the feed thread -------------------------------------------------------------------
    def flush(self, now: float | None = None) -> None:
        """Send new media entries and events, and push the latest files when due."""
        self._drain_events()
        with self._lock:
            keys: dict[str, MediaDelta] = {}
            for k in self._reset:
                keys[k] = MediaDelta(reset=True, entries=list(self._index.get(k, [])))
            for k, entries in self._new.items():
                if k not in keys:
                    keys[k] = MediaDelta(reset=False, entries=entries)
            self._new, self._reset = {}, set()
        if keys:
            self.panel.send(MediaMessage(type="media", keys=keys))
        p = self._pending
        if p["system"] or p["alerts"] or p["output"] or p["info"] is not None:
            out = [OutputChunk(**c) for c in self._out.lines] if p["output"] else []
            self.panel.send(EventsMessage(type="events", system=p["system"][-MAX_SYSTEM:],
                                          alerts=p["alerts"][-MAX_ALERTS:], info=p["info"],
                                          output=out))
            self._pending = self._nothing()
        now = time.monotonic() if now is None else now
        if self.pushing and self._push_due and now - self._last_push >= PUSH_INTERVAL:
            self._last_push = now
            self.push()

    def push(self) -> None:
        """Send the files of each media key's latest step (within PUSH_BYTES)."""
        with self._lock:
            due, self._push_due = self._push_due, set()
            latest = [self._index[k][-1]["ref"] for k in due if self._index.get(k)]
        budget = PUSH_BYTES
        for ref in latest:
            paths = ref_paths(ref)
            if ref.get("_type") == "table-file" and paths:
                sent, cells = self.send_file(paths[0], budget)
                budget -= sent
                paths = cells[:PUSH_CELLS]
            for path in paths:
                if budget <= 0:
                    break
                if path in self._recent:  # the same bytes (content-addressed), pushed lately
                    continue
                sent = self.send_file(path, budget)[0]
                if sent:
                    self._recent[path] = None
                    if len(self._recent) > RECENT:
                        self._recent.popitem(last=False)
                budget -= sent

    def checkpoint(self, force: bool = False, final: bool = False) -> None:
        """Copy the index and events into the panel's traits (a reloaded page draws from them):
        when something changed and CHECKPOINT seconds have passed, or when forced. A finished
        panel keeps FINAL_ENTRIES per key and the last FINAL_SYSTEM samples: its output is the
        static form by then, and the state should cost little in a saved notebook."""
        now = time.monotonic()
        if not (force or final) and (not self.dirty or now - self._last_checkpoint < CHECKPOINT):
            return
        self._last_checkpoint = now
        with self._lock:
            media = {k: _thin(v, FINAL_ENTRIES) if final else list(v) for k, v in self._index.items()}
        system = list(self._system)[-FINAL_SYSTEM:] if final else list(self._system)
        self.panel.media = media
        self.panel.extras = Extras(system=system, alerts=list(self._alerts), info=self._info,
                                   output=[OutputChunk(**c) for c in self._out.lines])
        self.dirty = False

    # -- files -------------------------------------------------------------------------------
    def on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        """The front-end asks for a file: `{"type": "fetch", "path": "media/…"}`."""
        if isinstance(content, dict) and content.get("type") == "fetch":
            self.send_file(content.get("path"))

    def send_file(self, path: Any, budget: int = MAX_FILE_BYTES) -> tuple[int, list[str]]:
        """Send the file `path` names (guarded: see `media_file`). Returns the bytes sent and,
        for a table, the paths of the image cells of its first rows."""
        name = path if isinstance(path, str) else repr(path)
        msg = FileMessage(type="file", path=name, mime=_mime(name), size=0)
        cells: list[str] = []
        try:
            if self.run_dir is None:
                raise ValueError("this run keeps no files")
            full = media_file(self.run_dir, path)
            if not full.is_file():
                raise ValueError("no such file")
            size = full.stat().st_size
            msg["size"] = size
            if msg["mime"] == "application/json" and (name.endswith(".table.json")
                                                      or name.endswith(".parquet")):
                chart = name in self._charts
                data, cells = _table_json(full, CHART_ROWS if chart else TABLE_ROWS, spread=chart)
                msg["size"] = len(data)
            elif size > MAX_FILE_BYTES:
                raise ValueError(f"{size / 1e6:.1f} MB is more than the panel takes "
                                 f"({MAX_FILE_BYTES >> 20} MB)")
            else:
                data = full.read_bytes()
            if len(data) > MAX_FILE_BYTES:
                raise ValueError(f"{len(data) / 1e6:.1f} MB is more than the panel takes")
            if len(data) > budget:
                return 0, []
        except (OSError, ValueError) as e:
            msg["error"] = str(e)
            self.panel.send(msg)
            return 0, []
        self.panel.send(msg, buffers=[data])
        return len(data), cells

    # -- a panel shown after things were logged -------------------------------------------
    def load_existing(self) -> None:
        """Read the media index and events the run's log already holds."""
        if self.run_dir is None:
            return
        for rec in read_records(self.run_dir / layout.LOG_NAME):
            t = rec.get("t")
            if t == "history":
                step = rec.get("step")
                for k, v in history_values(rec).items():
                    if is_media(v):
                        self._add(k, step, v)
            elif t == "system":
                self._event("system", {"ts": rec.get("ts"), "d": history_values(rec)})
            elif t in ("alert", "env", "output"):
                self._event("info" if t == "env" else t, rec)
        with self._lock:  # all of it goes to the traits, none as messages
            self._new, self._reset = {}, set()
            self._push_due = set()
        self._pending = self._nothing()
        self.checkpoint(force=True)


def _thin(entries: list, n: int) -> list:
    """At most about `n` entries, evenly spread, the latest always among them."""
    if len(entries) <= n:
        return list(entries)
    k = -(-len(entries) // n)
    return entries[:-1:k] + entries[-1:]


def _compact(ref: dict) -> dict:
    """A histogram as the panel draws it: at most HIST_BINS bins (adjacent ones merged), edges
    at 6 significant digits."""
    if ref.get("_type") != "histogram":
        return ref
    bins, values = ref.get("bins"), ref.get("values")
    if not isinstance(bins, list) or not isinstance(values, list) or len(bins) != len(values) + 1:
        return ref
    k = -(-len(values) // HIST_BINS)
    if k > 1:
        values = [sum(values[i:i + k]) for i in range(0, len(values), k)]
        bins = bins[::k] if (len(bins) - 1) % k == 0 else bins[::k] + bins[-1:]
    short = [float(f"{b:.6g}") if isinstance(b, float) else b for b in bins]
    return {**ref, "bins": short, "values": values}


def _table_json(full: Path, limit: int = TABLE_ROWS,
                spread: bool = False) -> tuple[bytes, list[str]]:
    """A table as the panel takes it: `{"columns", "data", "nrows"}` with the first `limit`
    rows, and the image paths among its first PUSH_CELLS rows. With `spread` (a chart's table),
    a longer table gives `limit` rows evenly spaced, the first and last among them, and
    `"sampled": true`: a chart of its first rows would show only part of its curves. NaN, ±inf
    (and integers JSON numbers cannot hold) are null in "data" and named in `"nf"` at their
    place, as in the stored JSON (`store.recordlog.pack`), whatever the stored format."""
    parquet = full.name.endswith(".parquet")
    if not parquet and full.stat().st_size > MAX_TABLE_SOURCE:
        raise ValueError(f"the table is {full.stat().st_size / 1e6:.0f} MB: too large to show")
    columns, data, nrows = read_table_file(full, parquet, first=None if spread else limit,
                                           spread=limit if spread else None)
    cells = [p for r in data[:PUSH_CELLS] for v in r if is_media(v) for p in ref_paths(v)[:1]]
    packed, nf = pack(data)
    doc = {"columns": [str(c) for c in columns], "data": jsonable(packed), "nrows": nrows}
    if nf:
        doc["nf"] = nf
    if len(data) < nrows and spread:
        doc["sampled"] = True
    out = json.dumps(doc, allow_nan=False, default=str)
    return out.encode("utf-8"), cells
