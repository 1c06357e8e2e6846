"""`POST /histories`: downsampled numeric histories of many runs and keys in one request.

Each series is `{"project", "id", "key", "step", "value", "min", "max"}` (see series.py for
the buckets). JSON has no NaN or infinity: such numbers are null in the arrays and, as in the
record log, named in `nf` at their index — `"nf": {"value": {"3": "nan"}, "max": {"7": "inf"}}`
(present only when needed). A min or max that is null without an `nf` entry is a bucket
holding only NaN.

A run or key named twice in a request is answered once. One answer holds at most MAX_POINTS
points (distinct runs × distinct keys × samples): a larger request is refused (413) before
anything is read, so its size bounds the server's memory. Projects are checked as everywhere
(422), and keys holding control characters (NUL among them) are refused (422).
"""

from __future__ import annotations

import re

import numpy as np
import orjson
from fastapi import HTTPException
from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator, model_validator
from sqlalchemy.engine import Connection

from ..store import layout
from ..store.recordlog import nonfinite_name
from . import runs as run_store
from . import series as series_mod
from .accounts import User, visible_project

MAX_SERIES = 20_000
MAX_POINTS = 5_000_000  # series × samples in one answer
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RunRef(BaseModel):
    project: StrictStr = Field(min_length=1, max_length=128)
    id: StrictStr = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")

    @field_validator("project")
    @classmethod
    def _project(cls, v: str) -> str:
        return layout.check_project(v)


class HistoriesIn(BaseModel):
    """Runs and keys named twice count once (and come back once)."""

    runs: list[RunRef] = Field(max_length=1000)
    keys: list[StrictStr] = Field(max_length=1000)
    samples: StrictInt = Field(1000, ge=1, le=100_000)
    min_step: StrictInt | None = Field(None, ge=-(2**63), le=2**63 - 1)
    max_step: StrictInt | None = Field(None, ge=-(2**63), le=2**63 - 1)

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: list[str]) -> list[str]:
        for k in keys:
            if _CONTROL.search(k):
                raise ValueError(f"history key {k!r} holds a control character")
        return list(dict.fromkeys(keys))

    @model_validator(mode="after")
    def _bounded(self):
        self.runs = list({(r.project, r.id): r for r in self.runs}.values())
        if len(self.runs) * len(self.keys) > MAX_SERIES:
            raise ValueError(f"at most {MAX_SERIES} series (runs × keys) in one request")
        return self

    def too_large(self) -> str | None:
        """Why the answer would be too large (None when it is not)."""
        points = len(self.runs) * len(self.keys) * self.samples
        if points > MAX_POINTS:
            return (f"{len(self.runs)} runs × {len(self.keys)} keys × {self.samples} samples "
                    f"is {points} points; one answer holds at most {MAX_POINTS}: ask for fewer "
                    f"runs, keys or samples at a time")
        return None


def nf_of(arr: np.ndarray) -> dict | None:
    """Where `arr` holds ±inf (and NaN, when `nan` is named), as the record log's `nf` does."""
    bad = np.flatnonzero(~np.isfinite(arr))
    return {str(i): nonfinite_name(float(arr[i])) for i in bad} or None


def series_item(project: str, run_id: str, key: str, s: dict) -> dict:
    item = {"project": project, "id": run_id, "key": key,
            "step": np.ascontiguousarray(s["step"], np.int64),
            "value": np.ascontiguousarray(s["value"], np.float64),
            "min": np.ascontiguousarray(s["min"], np.float64),
            "max": np.ascontiguousarray(s["max"], np.float64)}
    nf = {}
    for name in ("value", "min", "max"):
        arr = item[name]
        if name != "value":  # a NaN min/max is an all-NaN bucket: null, not named
            arr = np.where(np.isnan(arr), 0.0, arr)
        found = nf_of(arr)
        if found:
            nf[name] = found
    if nf:
        item["nf"] = nf
    return item


def histories_json(conn: Connection, user: User, req: HistoriesIn) -> bytes:
    """The answer to a histories request, as JSON bytes (404 for a run the user cannot see,
    413 past MAX_POINTS)."""
    why = req.too_large()
    if why:
        raise HTTPException(413, why)
    rows = _rows(conn, user, req)
    out = []
    for ref, row in zip(req.runs, rows):
        slow = []
        found = {}
        for key in req.keys:
            s = series_mod.read_series(conn, row.pk, key, req.samples, req.min_step, req.max_step)
            if s is None:
                slow.append(key)
            else:
                found[key] = s
        if slow:
            found.update(_rebuilt(conn, row.pk, slow, req))
        out.extend(series_item(ref.project, ref.id, key, found[key]) for key in req.keys)
    return orjson.dumps({"series": out}, option=orjson.OPT_SERIALIZE_NUMPY)


def _rows(conn: Connection, user: User, req: HistoriesIn) -> list:
    pids: dict = {}
    rows = []
    for ref in req.runs:
        if ref.project not in pids:
            pids[ref.project] = visible_project(conn, user, ref.project)
        pid = pids[ref.project]
        row = run_store.find_run(conn, pid, ref.id) if pid is not None else None
        if row is None:
            raise HTTPException(404, f"no run {ref.project}/{ref.id} (or not yours to see)")
        rows.append(row)
    return rows


def _rebuilt(conn: Connection, run_pk: int, keys: list[str], req: HistoriesIn) -> dict:
    """Series of a run whose steps went back, rebuilt from its records (the slow path)."""
    records = run_store.replayed(run_store.iter_records(conn, run_pk))
    points = series_mod.points_from_records(records, set(keys))
    out = {}
    for key in keys:
        steps, vals = points.get(key, (np.empty(0, np.int64), np.empty(0)))
        out[key] = series_mod.downsample_points(steps, vals, req.samples, req.min_step, req.max_step)
    return out
