"""The notebook widgets: LivePanel, RunTable, ConfigDiff, ChartView, SweepPanel (anywidget classes).

Each widget carries only a small loader (`static/widgets.js`, from `js/boot.js`). The library —
the charting library (vega, vega-lite, vega-embed) and the widgets' own code (`static/vega.js`,
from `js/lib.js`) — is carried by one ChartLibrary widget per kernel, which the other widgets
name in their `lib` trait, so the page — and a saved notebook — holds a single copy however
many widgets there are. Where that model is out of a widget's reach
(Colab gives every output its own frame and widget manager), the widget asks for the library
over its own comm (`{"type": "lib"}`) and gets it as a binary buffer; the page caches it by
`lib_hash`, the bundle's sha256.

The traits and messages are typed in `contract.py`.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from .contract import LibReply

STATIC = Path(__file__).resolve().parent.parent / "static"


def _asset(name: str) -> str:
    try:
        return (STATIC / name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RuntimeError(
            f"nbtracker's widget bundle ({STATIC / name}) is missing: install nbtracker from a "
            "wheel, or build it with `cd js && npm install && node build.mjs`") from None


def jsonable(v: Any) -> Any:
    """A value the front-end can take: JSON has no NaN/infinity, so they become text."""
    if isinstance(v, float):
        return v if math.isfinite(v) else ("NaN" if v != v else ("Infinity" if v > 0 else "-Infinity"))
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, (str, int, bool)):
        return v
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return jsonable(v.item())
    return str(v)


@lru_cache(maxsize=1)
def _library_bundle() -> tuple[bytes, str]:
    code = _asset("vega.js").encode("utf-8")
    return code, hashlib.sha256(code).hexdigest()


class _Widget(anywidget.AnyWidget):
    _esm = _asset("widgets.js")
    _css = _asset("widgets.css")
    _kind = t.Unicode("").tag(sync=True)
    lib = t.Unicode("").tag(sync=True)
    lib_hash = t.Unicode("").tag(sync=True)
    uid = t.Unicode("").tag(sync=True)

    @t.default("uid")
    def _uid(self) -> str:
        return uuid.uuid4().hex

    # the static form carried beside the widget view (see `static.bundle`): what viewers that
    # draw no widget show (VS Code reopened, nbconvert without widget state, GitHub), and what
    # the front-end puts in the widget's place once its kernel is gone
    static: dict | None = None

    def _repr_mimebundle_(self, **kwargs: Any):
        data = super()._repr_mimebundle_(**kwargs)
        if self.static and isinstance(data, tuple):
            data = ({**data[0], **self.static}, data[1])
        elif self.static and isinstance(data, dict):
            data = {**data, **self.static}
        return data

    def __init__(self, **kwargs: Any):
        # the uid is the model's id too, so the front-end can find the outputs showing it
        kwargs.setdefault("uid", uuid.uuid4().hex)
        kwargs.setdefault("model_id", kwargs["uid"])
        library = self._kind != "library"
        if library:  # in the first state sent: the front-end loads the library from it at once
            kwargs.setdefault("lib", "IPY_MODEL_" + chart_library().model_id)
            kwargs.setdefault("lib_hash", _library_bundle()[1])
        super().__init__(**kwargs)
        if library:
            self.on_msg(_send_library)


def _send_library(widget: _Widget, content: Any, buffers: Any) -> None:
    """Answer a widget that cannot reach the ChartLibrary model: the bundle, as a buffer."""
    if isinstance(content, dict) and content.get("type") == "lib":
        code, digest = _library_bundle()
        widget.send(LibReply(type="lib", hash=digest), buffers=[code])


class ChartLibrary(_Widget):
    """Carries the charting library to the page once; never displayed."""

    _kind = t.Unicode("library").tag(sync=True)
    code = t.Unicode("").tag(sync=True)


_library: ChartLibrary | None = None


def chart_library() -> ChartLibrary:
    global _library
    if _library is None or _library.comm is None:
        _library = ChartLibrary(code=_library_bundle()[0].decode("utf-8"))
    return _library


class LivePanel(_Widget):
    """A run's live view: name, state, step, elapsed time, one chart per metric grouped by
    prefix (`train/`, `val/`), its media (a step slider per key), alerts, system metrics, code
    and environment, console output. Fed by `nbtracker.notebook.live.LiveFeed`."""

    _kind = t.Unicode("live").tag(sync=True)
    info = t.Dict().tag(sync=True)
    # per metric: {"c": [[x...], [y...]], "t": [[x...], [y...]]}, committed points and the tail;
    # written at checkpoints and at finish so a reloaded or saved notebook shows the charts
    snapshot = t.Dict().tag(sync=True)
    xlabels = t.Dict().tag(sync=True)
    # per media key, its logged references by step; and system samples, alerts, code and
    # environment, console lines (see extras.py): written at checkpoints, sent as deltas between
    media = t.Dict().tag(sync=True)
    extras = t.Dict().tag(sync=True)


class ConfigDiff(_Widget):
    """Config of several runs side by side; only differing keys unless `show_all`."""

    _kind = t.Unicode("diff").tag(sync=True)
    runs = t.List(t.Unicode()).tag(sync=True)
    rows = t.List(t.Dict()).tag(sync=True)
    show_all = t.Bool(False).tag(sync=True)


class ChartView(_Widget):
    """A vega-lite spec (for instance `altair_chart.to_dict()`) drawn with the bundled library."""

    _kind = t.Unicode("chart").tag(sync=True)
    spec = t.Dict().tag(sync=True)


class RunTable(_Widget):
    """Runs as a table: sort, filter, group (collapsible, with per-group stats), choose columns,
    export the visible rows as CSV; selecting runs and pressing Compare shows their curves and
    config diff below. Built by `nbtracker.notebook.table.runs_table`."""

    _kind = t.Unicode("runs").tag(sync=True)
    # [{"key", "label", "kind"}]; `data` holds each column's values, encoded (see table.py)
    columns = t.List(t.Dict()).tag(sync=True)
    data = t.List(t.Dict()).tag(sync=True)
    count = t.Int(0).tag(sync=True)
    visible = t.List(t.Unicode()).tag(sync=True)  # shown column keys, in order
    group_by = t.Unicode("").tag(sync=True)  # a column key, "" for no grouping
    selected = t.List(t.Unicode()).tag(sync=True)
    comparison = t.Dict().tag(sync=True)
    sort_key = t.Unicode("created").tag(sync=True)
    sort_desc = t.Bool(True).tag(sync=True)


class SweepPanel(_Widget):
    """A sweep's live view: its trials as a sortable table, the best so far, a
    parallel-coordinates chart, the metric against each parameter and the parameters'
    importance. Fed by `nbtracker.notebook.sweep.SweepFeed`."""

    _kind = t.Unicode("sweep").tag(sync=True)
    sweep = t.Dict().tag(sync=True)  # contract.SweepView
