"""LiveFeed: streams a run's logged values into its LivePanel.

`log()` only appends an immutable `(keys, row)` pair to a deque (`Run.add_queue`).
A background thread drains it a few times a second, turns the rows into columns with numpy,
downsamples each series with a bounded min/max decimator and sends the browser only what
changed (custom messages, never whole lists). The panel's info line carries the run's upload
state (`run.upload_status()`) in online mode. Every few seconds, and at finish, the points are
also written to the panel's `snapshot` trait so a reloaded or saved notebook shows them.

The panel's step count is the number of distinct steps that hold a row (`run.steps`, as
`Api().run().steps` reports it), not the run's next step.

`show(run)` displays the panel with a display_id. When the run finishes, that output is replaced
by the run's static form (`static.run_bundle`: summary and charts as SVG), so a saved notebook
shows the charts in every viewer, with or without widget state. Where the replacement cannot
reach the output (JupyterLab routes a display update only to the cell that sent it), the panel's
front-end replaces its own outputs in the open document. In "static" mode (chosen in Colab,
where widgets in one cell do not hear a later cell, or with NBTRACKER_NOTEBOOK_PANEL=static)
no widget is used: the static form is refreshed through the display_id at most once a second.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections import deque
from itertools import chain, groupby
from operator import itemgetter
from typing import Any

import numpy as np

from ..charts.downsample import StreamingMinMax
from . import static
from .contract import PointsMessage, SeriesDelta, StaticMessage
from .extras import PanelExtras
from .widgets import LivePanel, jsonable

INTERVAL = 0.25  # seconds between updates sent to the browser
REFRESH = 1.0  # seconds between refreshes of a static panel (at most 1 Hz)
PANEL_ENV = "NBTRACKER_NOTEBOOK_PANEL"
PANEL_MODES = ("auto", "widget", "static")
CHECKPOINT = 5.0  # seconds between snapshots
MAX_BUCKETS = 1000  # per series: the browser holds at most 2 * MAX_BUCKETS + 3 points
CHUNK = 8192  # rows converted at a time by the feed thread
FINAL_POINTS = 200  # per series, in a finished panel's saved widget state (6 significant digits)

_feeds: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_mode: str | None = None


def set_panel_mode(mode: str | None) -> None:
    """"widget" (live charts in the browser), "static" (a chart image refreshed at most once a
    second through the output's display_id), "auto" or None (static in Colab, else widget)."""
    global _mode
    if mode is not None and mode not in PANEL_MODES:
        raise ValueError(f"panel mode must be one of {', '.join(PANEL_MODES)}, not {mode!r}")
    _mode = mode


def panel_mode() -> str:
    """The mode new panels use: the one set by `set_panel_mode` (`%tracker panel`), else
    NBTRACKER_NOTEBOOK_PANEL, else auto."""
    mode = (_mode or os.environ.get(PANEL_ENV) or "auto").strip().lower()
    if mode not in PANEL_MODES:
        mode = "auto"
    if mode == "auto":
        return "static" if "google.colab" in sys.modules else "widget"
    return mode


class StaticSink:
    """Stands where the widget would be when the panel is drawn statically: holds what the
    feed would have sent, sends nothing."""

    def __init__(self) -> None:
        self.comm = True  # never closed
        self.info: dict = {}
        self.snapshot: dict = {}
        self.xlabels: dict = {}

    def send(self, msg: dict, buffers: Any = None) -> None:
        pass


def _feed(run: Any, static_mode: bool = False) -> LiveFeed:
    feed = _feeds.get(run)
    if feed is None or feed.panel.comm is None:
        feed = LiveFeed(run, StaticSink() if static_mode else LivePanel())
        _feeds[run] = feed
    return feed


def panel_for(run: Any) -> LivePanel:
    """The live panel of a run (one per run; displaying it twice shows two views of it)."""
    feed = _feed(run)
    if not isinstance(feed.panel, LivePanel):  # the run was shown statically: now as a widget
        feed = LiveFeed(run, LivePanel())
        _feeds[run] = feed
    return feed.panel


def _parent_id() -> str | None:
    """The id of the request the kernel is answering (the cell being run), if any."""
    try:
        from IPython import get_ipython

        return get_ipython().display_pub.parent_header.get("msg_id")
    except Exception:
        return None


def show(run: Any) -> None:
    """Display a run's panel: live while the run runs, its static form once it has finished.

    A finished (or disabled) run shows its static form directly. A live one shows the widget
    (or, in static mode, the static form refreshed at most once a second); either is replaced
    by the final static form when the run finishes.
    """
    from IPython.display import display

    run._panel_shown = True
    line, run._start_line = getattr(run, "_start_line", None), None
    if line is not None:  # the panel says what the start line said
        line.update({"text/plain": ""}, raw=True)
    feed = _feed(run, static_mode=panel_mode() == "static")
    if feed.finished:
        display(feed.static_bundle(), raw=True)
        return
    if isinstance(feed.panel, LivePanel):
        handle = display(feed.panel, display_id=True)
    else:
        handle = display(feed.static_bundle(), raw=True, display_id=True)
    feed.handles.append(handle)


def _pairs(xs, ys) -> list:
    return [xs.tolist() if hasattr(xs, "tolist") else list(xs),
            ys.tolist() if hasattr(ys, "tolist") else list(ys)]


class LiveFeed:
    def __init__(self, run: Any, panel: LivePanel, max_buckets: int = MAX_BUCKETS):
        self.run = run
        self.panel = panel
        self.max_buckets = max_buckets
        self._queue: deque = deque()
        self._series: dict[str, StreamingMinMax] = {}
        self._mirror: dict[str, list] = {}  # key -> [committed xs, committed ys, tail xs, tail ys]
        self._xkey: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_step = -1
        self._last_upload: str | None = None
        self._dirty_snapshot = False
        self.handles: list = []  # display handles of this panel's outputs
        self._display_lock = threading.Lock()
        self.finished = False
        self._last_refresh = 0.0
        self._dirty_static = False
        self._send_info()
        # media, system metrics, alerts, code and environment, console output
        self.extras = PanelExtras(run, panel, push=isinstance(panel, LivePanel))
        if isinstance(panel, LivePanel):
            panel.on_msg(self.extras.on_msg)  # the files the browser asks for, also once finished
        done = getattr(run, "_done", True)
        if done or getattr(run, "disabled", False):
            self._load_finished()
            return
        self._load_existing()
        run.add_queue(self._queue)
        if hasattr(run, "add_event_listener"):
            run.add_event_listener(self.extras.on_event)
        run.add_finish_hook(self._on_finish)
        self._thread = threading.Thread(target=self._loop, name="nbtracker-live", daemon=True)
        self._thread.start()

    # -- the feed thread -----------------------------------------------------------------
    def _loop(self) -> None:
        last_checkpoint = time.monotonic()
        while not self._stop.wait(INTERVAL):
            if self.panel.comm is None:  # the widget was closed
                self.run.remove_queue(self._queue)
                self._stop_events()
                return
            try:
                self.flush()
                if isinstance(self.panel, StaticSink):
                    self._refresh()
                elif self._dirty_snapshot and time.monotonic() - last_checkpoint >= CHECKPOINT:
                    self.checkpoint()
                    last_checkpoint = time.monotonic()
            except Exception as e:  # never let a display problem reach the training loop
                self.panel.info = {**self.panel.info, "error": str(e)}

    def _x_for(self, key: str) -> str | None:
        if key not in self._xkey:
            state = getattr(self.run, "_summary_state", None)
            d = state.definition(key) if state is not None else None
            self._xkey[key] = d.get("step_metric") if d else None
        return self._xkey[key]

    def _columns(self, batch: list) -> dict[str, tuple[list, list]]:
        """Group rows by key set and split them into per-metric (x, y) arrays."""
        import numpy as np

        out: dict[str, tuple[list, list]] = {}
        for keys, group in groupby(batch, key=itemgetter(0)):
            rows = list(map(itemgetter(1), group))
            width = len(keys) + 2
            try:  # plain numbers: one C loop over all values
                arr = np.fromiter(chain.from_iterable(rows), dtype=np.float64,
                                  count=len(rows) * width).reshape(len(rows), width)
                numeric = range(len(keys))
            except (TypeError, ValueError):  # text, None, media references (dicts)
                self.extras.take_rows(keys, rows)
                arr = np.array([[_num(v) for v in r] for r in rows], dtype=np.float64)
                numeric = [k for k in range(len(keys)) if not np.isnan(arr[:, 2 + k]).all()]
            for k in numeric:
                key = keys[k]
                xk = self._x_for(key)
                x = arr[:, 0]
                if xk is not None and xk in keys:
                    x = arr[:, 2 + keys.index(xk)]
                xs, ys = out.setdefault(key, ([], []))
                xs.append(x)
                ys.append(arr[:, 2 + k])
        return out

    def flush(self) -> None:
        """Send what was logged since the last flush."""
        import numpy as np

        with self._lock:
            q = self._queue
            pop = q.popleft
            batch = [pop() for _ in range(len(q))]
            if batch:
                changes = {}
                columns = {}
                for start in range(0, len(batch), CHUNK):
                    for key, (xs, ys) in self._columns(batch[start:start + CHUNK]).items():
                        cx, cy = columns.setdefault(key, ([], []))
                        cx += xs
                        cy += ys
                    time.sleep(0)  # let the training thread run between chunks
                for key, (xs, ys) in columns.items():
                    x = np.concatenate(xs) if len(xs) > 1 else xs[0]
                    y = np.concatenate(ys) if len(ys) > 1 else ys[0]
                    changes[key] = self._push(key, x, y)
                changes = {k: v for k, v in changes.items() if v is not None}
                if changes:
                    self.panel.send(PointsMessage(type="points", series=changes))
                    self._dirty_snapshot = self._dirty_static = True
            steps = self._steps()
            upload = self._upload()
            if steps != self._last_step or upload != self._last_upload:
                self._last_step = steps
                self._send_info()
                self._dirty_static = True
        self.extras.flush()
        self.extras.checkpoint()  # when due (extras.CHECKPOINT)

    def _steps(self) -> int:
        return getattr(self.run, "steps", 0)

    def _upload(self) -> str | None:
        """The upload state of an online run, in words (an offline run shows its mode)."""
        status = getattr(self.run, "upload_status", None)
        if status is None or getattr(self.run, "mode", "") != "online":
            return None
        from ..sdk.upload import status_text

        return status_text(status())

    def _push(self, key: str, x, y) -> SeriesDelta | None:
        s = self._series.get(key)
        if s is None:
            s = self._series[key] = StreamingMinMax(self.max_buckets)
            self._mirror[key] = [[], [], [], []]
            xk = self._x_for(key)
            if xk:
                self.panel.xlabels = {**self.panel.xlabels, key: xk}
        res = s.push(x, y)
        m = self._mirror[key]
        msg: SeriesDelta = {"append": None, "reset": None, "tail": ([], [])}
        if res.get("reset") is not None:
            m[0], m[1] = _pairs(*res["reset"])
            msg["reset"] = [m[0], m[1]]
        elif res.get("append") is not None and len(res["append"][0]):
            ax, ay = _pairs(*res["append"])
            m[0].extend(ax)
            m[1].extend(ay)
            msg["append"] = [ax, ay]
        tx, ty = _pairs(*res["tail"]) if res.get("tail") is not None else ([], [])
        if msg["reset"] is None and msg["append"] is None and (tx, ty) == (m[2], m[3]):
            return None
        m[2], m[3] = tx, ty
        msg["tail"] = [tx, ty]
        return msg

    def checkpoint(self) -> None:
        with self._lock:
            self.panel.snapshot = {k: {"c": [m[0], m[1]], "t": [m[2], m[3]]}
                                   for k, m in self._mirror.items()}
            self._dirty_snapshot = False

    def _stop_events(self) -> None:
        remove = getattr(self.run, "remove_event_listener", None)
        if remove is not None:
            remove(self.extras.on_event)

    def _send_info(self, final: bool = False) -> None:
        run = self.run
        info = {"name": run.name, "id": run.id, "project": run.project, "state": run.state,
                "step": self._steps(), "started": getattr(run, "start_time", 0) or time.time(),
                "updated": time.time(), "mode": getattr(run, "mode", "")}
        self._last_upload = upload = self._upload()
        if upload is not None:
            info["upload"] = upload
        if final:
            try:
                info["summary"] = jsonable({k: v for k, v in dict(run.summary).items()
                                            if not isinstance(v, dict) or "_type" not in v})
            except Exception:
                pass
        self.panel.info = info

    # -- the static form -----------------------------------------------------------------
    def static_bundle(self) -> dict:
        """The panel as every viewer can draw it: summary and charts (see `static.run_bundle`)."""
        with self._lock:
            series = {k: (m[0] + m[2], m[1] + m[3]) for k, m in self._mirror.items()}
        xlabels = {k: self._xkey.get(k) for k in series if self._xkey.get(k)}
        return static.run_bundle(dict(self.panel.info), series, xlabels,
                                 run_dir=getattr(self.run, "storage_dir", None) or None)

    def _refresh(self) -> None:
        """Static mode: redraw the outputs, at most once a second, when something changed."""
        now = time.monotonic()
        if not self._dirty_static or not self.handles or now - self._last_refresh < REFRESH:
            return
        self._last_refresh = now
        self._dirty_static = False
        with self._display_lock:  # never after the final form (see _make_static)
            if self.finished:
                return
            bundle = self.static_bundle()
            for handle in self.handles:
                handle.update(bundle, raw=True)

    def _final_snapshot(self) -> None:
        """A finished panel's widget state holds a coarser copy of its curves: its output is
        the static form now, so the state is only a fallback and should cost little in the
        saved notebook. Each series keeps its ends and the extremes of FINAL_POINTS / 2
        buckets, at 6 significant digits (display only: the store is untouched)."""
        from ..charts.downsample import minmax_downsample

        def short(values) -> list:
            return [float(f"{v:.6g}") for v in values]

        snap = {}
        with self._lock:
            for k, m in self._mirror.items():
                xs, ys = m[0] + m[2], m[1] + m[3]
                if len(xs) > FINAL_POINTS:
                    idx = minmax_downsample(np.arange(len(xs), dtype=np.float64),
                                            np.asarray(ys, dtype=np.float64), FINAL_POINTS // 2)[0]
                    idx = np.unique(np.r_[0, idx, len(xs) - 1]).astype(np.int64)
                    xs = [xs[i] for i in idx]
                    ys = [ys[i] for i in idx]
                snap[k] = {"c": [short(xs), short(ys)], "t": [[], []]}
            self.panel.snapshot = snap

    def _make_static(self) -> None:
        """Replace every output of this panel by the final static form."""
        with self._display_lock:
            bundle = self.static_bundle()
            for handle in self.handles:
                handle.update(bundle, raw=True)
        if isinstance(self.panel, LivePanel) and self.handles:
            # where the update cannot reach the output (another cell's, in JupyterLab), the
            # panel's front-end swaps its outputs in the open document for this form
            self.panel.send(StaticMessage(type="static", model_id=self.panel.model_id, bundle=bundle))

    # -- finishing and finished runs ---------------------------------------------------
    def _on_finish(self, run: Any) -> None:
        self._stop.set()
        run.remove_queue(self._queue)
        self._stop_events()
        thread = getattr(self, "_thread", None)
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)  # its last refresh or checkpoint lands before the final form
        self.flush()
        self.checkpoint()
        self.extras.checkpoint(final=True)
        self._send_info(final=True)
        with self._display_lock:
            self.finished = True
        self._make_static()
        if isinstance(self.panel, LivePanel):
            self._final_snapshot()

    def _history_frame(self):
        from ..api import Api

        try:
            return Api(dir=str(self.run.settings.root)).run(
                f"{self.run.project}/{self.run.id}").history()
        except Exception:
            return None

    def _load_existing(self) -> None:
        """A resumed run (or one displayed late) starts from what its log already holds."""
        self._load_extras()
        if getattr(self.run, "_rows", 0) == 0:
            return
        self._load_frame(self._history_frame())

    def _load_extras(self) -> None:
        try:
            self.extras.load_existing()
        except Exception as e:  # a display problem never reaches the run
            self.panel.info = {**self.panel.info, "error": f"could not read the run's media: {e}"}

    def _load_finished(self) -> None:
        if not getattr(self.run, "disabled", False):
            self._load_extras()
            self._load_frame(self._history_frame())
        self.checkpoint()
        self._send_info(final=True)
        self.finished = True

    def _load_frame(self, df) -> None:
        if df is None or df.empty:
            return
        import numpy as np
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        for col in df.columns:
            if col.startswith("_"):
                continue
            y = df[col]
            if not is_numeric_dtype(y) or is_bool_dtype(y):
                continue
            xk = self._x_for(col)
            x = df[xk] if xk and xk in df.columns else df["_step"]
            ok = np.isfinite(y.to_numpy(dtype=np.float64)) & np.isfinite(x.to_numpy(dtype=np.float64))
            if ok.any():
                self._push(col, x.to_numpy(dtype=np.float64)[ok], y.to_numpy(dtype=np.float64)[ok])
        self._dirty_snapshot = True


def _num(v: Any) -> float:
    t = type(v)
    if t is float or t is int or t is bool:
        return float(v)
    return float("nan")
