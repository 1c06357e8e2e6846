"""The contract between the notebook widgets' Python side and their front-end (js/).

Every synced trait and every custom message is named here once, as a TypedDict; js/contract.js
states the same shapes as data with JSDoc typedefs, and validates what reaches the page against
them (a value that breaks the contract is reported on the widget's element as
`data-contract-errors` and in the console, never thrown). `tests/test_live.py` checks that the two
files describe the same shapes, and that what Python sends fits them.

Shapes travel as JSON: numbers are finite (JSON has no NaN or infinity), a tuple is a JSON array.
`shape(tp)` turns a type below into the small grammar both sides share:

    "str" | "num" | "bool" | "any" | "null" | {"const": v} | {"list": S} | {"map": S}
    | {"tuple": [S, ...]} | {"oneOf": [S, ...]} | {"fields": {name: S}, "optional": [name, ...]}

A dict with fields is closed: a key it does not name is an error.

>>> check(PointsMessage, {"type": "points", "series": {"loss": {"reset": None, "append": [[0], [1.5]],
...                                                              "tail": [[], []]}}})
[]
"""

from __future__ import annotations

import math
import types
from typing import Any, Literal, TypedDict, Union, get_args, get_origin, get_type_hints, is_typeddict

# -- LivePanel ---------------------------------------------------------------------------------

XY = tuple[list[float], list[float]]
"""A series as two arrays of equal length: xs and ys."""


class Empty(TypedDict):
    """A dict trait before Python first sets it."""


class _LiveInfo(TypedDict):
    name: str
    id: str
    project: str
    state: str
    step: int
    started: float
    updated: float
    mode: str


class LiveInfo(_LiveInfo, total=False):
    """LivePanel.info: the header line; `summary` once the run is over."""

    upload: str
    summary: dict[str, Any]
    error: str


class SeriesSnapshot(TypedDict):
    """One metric in LivePanel.snapshot: committed points (`c`) and the open tail (`t`)."""

    c: XY
    t: XY


Snapshot = dict[str, SeriesSnapshot]
"""LivePanel.snapshot: per metric, written at checkpoints and at finish."""

XLabels = dict[str, str]
"""LivePanel.xlabels: per metric drawn against another metric (define_metric step_metric), that
metric's name; the other metrics are drawn against "step"."""


class SeriesDelta(TypedDict):
    """What changed in one series: either a `reset` (all committed points) or points to `append`
    (or neither), and always the new open `tail`, which replaces the previous one."""

    reset: XY | None
    append: XY | None
    tail: XY


class PointsMessage(TypedDict):
    """Python → LivePanel: the points logged since the last message."""

    type: Literal["points"]
    series: dict[str, SeriesDelta]


class StaticMessage(TypedDict):
    """Python → LivePanel, once its run has finished: replace every output of the open document
    that shows this widget (`model_id`) by `bundle`, the run's static form (a mime bundle)."""

    type: Literal["static"]
    model_id: str
    bundle: dict[str, Any]


# -- LivePanel: what a run captures beyond scalars ---------------------------------------------

MediaRef = dict[str, Any]
"""A media reference as logged (`{"_type": "image-file", "path": "media/…", …}`, see sdk/media.py):
user text in it (captions, labels) is shown as text only."""


class MediaEntry(TypedDict):
    """One logged value of a media key: its step and its reference."""

    step: int
    ref: MediaRef


MediaIndex = dict[str, list[MediaEntry]]
"""LivePanel.media: per media key, its entries in ascending step (at most MAX_ENTRIES; evenly
thinned beyond). Written at checkpoints and at finish, like `snapshot`."""


class MediaDelta(TypedDict):
    """New entries of one media key; `reset` when they replace all the key's entries (thinned)."""

    reset: bool
    entries: list[MediaEntry]


class MediaMessage(TypedDict):
    """Python → LivePanel: media logged since the last message."""

    type: Literal["media"]
    keys: dict[str, MediaDelta]


class SystemSample(TypedDict):
    """One sample of the run's system metrics (`ts` unix seconds; finite values only)."""

    ts: float
    d: dict[str, float]


class _AlertEntry(TypedDict):
    title: str
    text: str
    level: str


class AlertEntry(_AlertEntry, total=False):
    """An alert as the panel shows it (`ts` when it was raised)."""

    ts: float


class OutputChunk(TypedDict):
    """Console text the run captured (`stream` "stdout" or "stderr")."""

    stream: str
    text: str


class Extras(TypedDict):
    """LivePanel.extras: system samples (the latest MAX_SYSTEM), alerts (newest last), the run's
    code and environment record (`{}` until known) and the last lines of console output.
    Written at checkpoints and at finish."""

    system: list[SystemSample]
    alerts: list[AlertEntry]
    info: dict[str, Any]
    output: list[OutputChunk]


class EventsMessage(TypedDict):
    """Python → LivePanel: what the run recorded besides history since the last message: new
    system samples and alerts, the environment record (null when unchanged) and the last lines
    of console output, which replace those shown (empty when unchanged)."""

    type: Literal["events"]
    system: list[SystemSample]
    alerts: list[AlertEntry]
    info: dict[str, Any] | None
    output: list[OutputChunk]


class FetchRequest(TypedDict):
    """LivePanel → Python: send the file of a media reference (its `path`, "media/…")."""

    type: Literal["fetch"]
    path: str


class _FileMessage(TypedDict):
    type: Literal["file"]
    path: str
    mime: str
    size: int


class FileMessage(_FileMessage, total=False):
    """Python → LivePanel: a media file, asked for or pushed (the latest step of a key).
    The bytes are the message's one binary buffer; with `error`, there is none (refused,
    missing or larger than MAX_FILE_BYTES). A table arrives as JSON `{"columns", "data",
    "nrows"}` (at most TABLE_ROWS rows), whatever its stored format, with `"nf"` naming the
    NaN and ±inf cells that are null in "data" (`store.recordlog.pack`)."""

    error: str


# -- the chart library -------------------------------------------------------------------------

class LibRequest(TypedDict):
    """Any chart widget → Python: send me the chart library (its model cannot be reached)."""

    type: Literal["lib"]


class LibReply(TypedDict):
    """Python → the widget that asked: the bundle's sha256; the bundle is the message's one
    binary buffer."""

    type: Literal["lib"]
    hash: str


# -- ConfigDiff, RunTable, ChartView -----------------------------------------------------------------

class DiffRow(TypedDict):
    """One flattened config key: each run's value, whether it is missing there, whether the runs
    differ."""

    key: str
    values: list[Any]
    missing: list[bool]
    differs: bool


class DiffTable(TypedDict):
    runs: list[str]
    rows: list[DiffRow]


class RunColumn(TypedDict):
    """RunTable.columns: one column; its values are at the same place in RunTable.data."""

    key: str
    label: str
    kind: Literal["text", "number"]


class PlainColumn(TypedDict):
    """A column's values, one per run (null where the run has none)."""

    v: list[Any]


class CodedColumn(TypedDict):
    """A column's distinct values and, per run, the index of its value (one index: every
    run's)."""

    d: list[Any]
    c: Union[int, list[int]]


class CompareMessage(TypedDict):
    """RunTable → Python: compare these runs."""

    type: Literal["compare"]
    ids: list[str]


class _Comparison(TypedDict):
    runs: list[str]


class Comparison(_Comparison, total=False):
    """RunTable.comparison: the answer to a CompareMessage (`error` alone when nothing to draw)."""

    spec: dict[str, Any] | None
    error: str | None
    diff: DiffTable


ChartSpec = dict[str, Any]
"""ChartView.spec: a vega-lite spec (an altair chart's `to_dict()`)."""


# -- SweepPanel ----------------------------------------------------------------------------------

class SweepMetric(TypedDict):
    """The sweep's metric and its goal ("minimize" or "maximize")."""

    name: str
    goal: str


class ParamSpace(TypedDict):
    """How one parameter is searched: its distribution, whether its values spread on a log
    scale, and a categorical parameter's values in the config's order (else null)."""

    distribution: str
    log: bool
    values: list[Any] | None


class SweepTrial(TypedDict):
    """One trial: its state (queued, running, finished, failed, crashed, interrupted, pruned),
    run, parameter values by dotted name (NaN and ±inf as text), the metric's value, unix times
    and how it ended (`exit`, user text)."""

    number: int
    state: str
    run_id: str | None
    params: dict[str, Any]
    value: float | None
    started: float | None
    ended: float | None
    duration: float | None
    exit: str | None


class _SweepView(TypedDict):
    id: str
    name: str
    project: str
    method: str
    state: str
    metric: SweepMetric | None
    parameters: list[str]
    space: dict[str, ParamSpace]
    created: float
    now: float
    run_cap: int | None
    grid_size: int | None
    remaining: int | None
    counts: dict[str, int]
    best: int | None
    importance: dict[str, float] | None
    trials: list[SweepTrial]


class SweepView(_SweepView, total=False):
    """SweepPanel.sweep: `Sweep.view()` (sweeps/engine.py) as the panel shows it: the queued
    trials past the first few are only counted (`queued_hidden`); `importance_trials` is how
    many finished trials the importance was computed from; `error` says why the last refresh
    failed (the rest is the last view read)."""

    queued_hidden: int
    importance_trials: int
    error: str


class RefreshRequest(TypedDict):
    """SweepPanel → Python: read the sweep again (every few seconds while a view is shown, one
    request at a time; answered when the kernel is idle); with `form`, send the static form
    even if it did not change (the page has none yet)."""

    type: Literal["refresh"]
    form: bool


class RefreshedMessage(TypedDict):
    """Python → SweepPanel, after a refresh: `reply` when it answers a RefreshRequest (else the
    kernel refreshed on its own, as while an agent runs); `form`, when not null, is the panel's
    static form now, which the document saves in place of the widget view."""

    type: Literal["refreshed"]
    reply: bool
    form: dict[str, Any] | None


# -- every trait and message, by widget kind ---------------------------------------------------

COMMON_TRAITS: dict[str, Any] = {"lib": str, "lib_hash": str, "uid": str}
"""Traits of every widget but the ChartLibrary: the library model's reference (`IPY_MODEL_…`),
the bundle's sha256 (the page caches the library by it) and a stable id (one point store per
model, however many views)."""

TRAITS: dict[str, dict[str, Any]] = {
    "live": {"info": Union[LiveInfo, Empty], "snapshot": Snapshot, "xlabels": XLabels,
             "media": MediaIndex, "extras": Union[Extras, Empty]},
    "diff": {"runs": list[str], "rows": list[DiffRow], "show_all": bool},
    "runs": {"columns": list[RunColumn], "data": list[Union[PlainColumn, CodedColumn]],
             "count": int, "visible": list[str], "group_by": str,
             "comparison": Union[Comparison, Empty], "selected": list[str], "sort_key": str,
             "sort_desc": bool},
    "chart": {"spec": ChartSpec},
    "sweep": {"sweep": Union[SweepView, Empty]},
    "library": {"code": str},
}

UNCHECKED: dict[str, tuple[str, ...]] = {}
"""Synced traits the contract does not type yet; they reach the renderer unchecked."""

TO_FRONTEND: dict[str, Any] = {"points": PointsMessage, "static": StaticMessage, "lib": LibReply,
                               "media": MediaMessage, "events": EventsMessage, "file": FileMessage,
                               "refreshed": RefreshedMessage}
"""Custom messages Python sends, by `type`."""

TO_KERNEL: dict[str, Any] = {"compare": CompareMessage, "lib": LibRequest, "fetch": FetchRequest,
                             "refresh": RefreshRequest}
"""Custom messages the front-end sends, by `type`."""


# -- the shared grammar ------------------------------------------------------------------------

def shape(tp: Any) -> Any:
    """A type above in the grammar js/contract.js uses."""
    if tp is Any:
        return "any"
    if tp is str:
        return "str"
    if tp is bool:
        return "bool"
    if tp in (int, float):
        return "num"
    if tp is None or tp is type(None):
        return "null"
    if is_typeddict(tp):
        hints = get_type_hints(tp)
        return {"fields": {k: shape(v) for k, v in hints.items()},
                "optional": sorted(tp.__optional_keys__)}
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        consts = [{"const": a} for a in args]
        return consts[0] if len(consts) == 1 else {"oneOf": consts}
    if origin is Union or origin is types.UnionType:
        return {"oneOf": [shape(a) for a in args]}
    if origin is list:
        return {"list": shape(args[0])}
    if origin is tuple:
        return {"tuple": [shape(a) for a in args]}
    if origin is dict:
        return {"map": shape(args[1])}
    raise TypeError(f"no contract shape for {tp!r}")


def contract() -> dict:
    """The whole contract in the shared grammar (what js/contract.js must state)."""
    return {
        "common": {k: shape(v) for k, v in COMMON_TRAITS.items()},
        "traits": {kind: {k: shape(v) for k, v in traits.items()} for kind, traits in TRAITS.items()},
        "toFrontend": {k: shape(v) for k, v in TO_FRONTEND.items()},
        "toKernel": {k: shape(v) for k, v in TO_KERNEL.items()},
    }


def check(tp: Any, value: Any) -> list[str]:
    """What is wrong with `value` as a `tp` (an empty list when it fits)."""
    return _check(shape(tp), value, "")


def check_message(msg: Any, to: str = "frontend") -> list[str]:
    """Check a custom message by its `type` (`to` is "frontend" or "kernel")."""
    known = TO_FRONTEND if to == "frontend" else TO_KERNEL
    kind = msg.get("type") if isinstance(msg, dict) else None
    if kind not in known:
        return [f"unknown message type {kind!r} (known: {', '.join(sorted(known))})"]
    return check(known[kind], msg)


def check_trait(kind: str, name: str, value: Any) -> list[str]:
    """Check a synced trait of a widget kind ("live", "runs", ...)."""
    tp = COMMON_TRAITS.get(name) or TRAITS.get(kind, {}).get(name)
    if tp is None:
        return [f"{kind} has no trait {name!r} in the contract"]
    return check(tp, value)


def _check(s: Any, v: Any, path: str) -> list[str]:
    at = path or "value"
    if s == "any":
        return []
    if s == "str":
        return [] if isinstance(v, str) else [f"{at}: expected a string, got {_name(v)}"]
    if s == "bool":
        return [] if isinstance(v, bool) else [f"{at}: expected true/false, got {_name(v)}"]
    if s == "null":
        return [] if v is None else [f"{at}: expected null, got {_name(v)}"]
    if s == "num":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return [f"{at}: expected a number, got {_name(v)}"]
        return [] if math.isfinite(v) else [f"{at}: {v} is not a JSON number"]
    if "const" in s:
        return [] if v == s["const"] else [f"{at}: expected {s['const']!r}, got {v!r}"]
    if "oneOf" in s:
        tries = [_check(a, v, path) for a in s["oneOf"]]
        if any(not t for t in tries):
            return []
        return min(tries, key=len)
    if "list" in s or "tuple" in s:
        if not isinstance(v, (list, tuple)):
            return [f"{at}: expected an array, got {_name(v)}"]
        if "tuple" in s:
            if len(v) != len(s["tuple"]):
                return [f"{at}: expected {len(s['tuple'])} items, got {len(v)}"]
            return [e for i, (a, x) in enumerate(zip(s["tuple"], v)) for e in _check(a, x, f"{path}[{i}]")]
        errs: list[str] = []
        for i, x in enumerate(v):
            errs += _check(s["list"], x, f"{path}[{i}]")
            if len(errs) > 5:
                break
        return errs
    if not isinstance(v, dict):
        return [f"{at}: expected an object, got {_name(v)}"]
    if "map" in s:
        return [e for k, x in v.items() for e in _check(s["map"], x, f"{path}.{k}")]
    fields, optional = s["fields"], set(s["optional"])
    errs = [f"{path}.{k}: missing" for k in fields if k not in v and k not in optional]
    errs += [f"{path}.{k}: not in the contract" for k in v if k not in fields]
    for k, x in v.items():
        if k in fields:
            errs += _check(fields[k], x, f"{path}.{k}")
    return errs


def _name(v: Any) -> str:
    return "null" if v is None else type(v).__name__
