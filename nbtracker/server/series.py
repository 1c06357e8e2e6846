"""History as packed series: what `POST /histories` reads, kept up to date by every batch.

Per (run, key) the numeric points of the history records (ints, floats and bools as float64,
NaN and ±inf as `nf` names them; None, strings and media skipped; keys holding NUL or longer
than MAX_KEY skipped too, their records kept) are stored in chunks of up
to CHUNK points, each chunk one row: its steps as little-endian int64, its values as float64,
and per block of BLOCK points an aggregate (min, max, last value, last step, count). Chunks
fill in order (only the last one is ever partial), so block j of chunk c covers points
c*CHUNK + j*BLOCK onwards, and a series of 100,000 points is 49 rows.

A batch appends to the last chunk (rewriting it) and opens new ones. A point at the step of
the series' last point replaces it (the later value wins). A point at a lower step makes the
series `ordered = false`: its chunks are dropped and reads rebuild it from the run's records
(`points_from_records`), the slow path for the rare run whose steps went back.

Downsampling (`downsample`) goes over "units": single points, or whole blocks where a bucket
spans many blocks, so a request for 1,000 buckets over 100,000 points reads about 1,600 block
aggregates and two chunks of points rather than 100,000 points. The first point is a bucket of
its own; the other buckets split the remaining points by index (edges on block boundaries when
blocks are read); each bucket gives its last point (step, value) and its min and max.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store.recordlog import history_values
from .schema import series, series_chunks

CHUNK = 2048
BLOCK = 64
AGG = np.dtype([("min", "<f8"), ("max", "<f8"), ("last", "<f8"), ("step", "<i8"), ("n", "<i4")])
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
MAX_KEY = 1000  # characters; a longer key has no series (the record keeps it)


def series_key(key) -> bool:
    """Whether a history key gets a series: a string without NUL (PostgreSQL text cannot hold
    one) of at most MAX_KEY characters (index entries are bounded)."""
    return type(key) is str and "\x00" not in key and len(key) <= MAX_KEY


# -- points from records ---------------------------------------------------------------------

def as_float(v) -> float | None:
    """A history value as a float64 point, or None when it is not a number."""
    t = type(v)
    if t is float:
        return v
    if t is int or t is bool:
        try:
            return float(v)
        except OverflowError:  # an int beyond float64: the nearest float64 is ±inf
            return float("inf") if v > 0 else float("-inf")
    return None


def add_points(points: dict, rec: dict) -> None:
    """Add the numeric values of one history record to `points` (key -> (steps, values))."""
    step = rec.get("step")
    if type(step) is not int or not _I64_MIN <= step <= _I64_MAX:
        return
    values = history_values(rec)
    if type(values) is not dict:
        return
    for k, v in values.items():
        x = as_float(v)
        if x is None or not series_key(k):
            continue
        p = points.get(k)
        if p is None:
            points[k] = p = ([], [])
        p[0].append(step)
        p[1].append(x)


def collapse(steps: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points in step order, the later value winning at a repeated step (stable sort)."""
    if len(steps) and np.any(steps[1:] < steps[:-1]):
        order = np.argsort(steps, kind="stable")
        steps, vals = steps[order], vals[order]
    if len(steps) > 1:
        keep = np.append(steps[1:] != steps[:-1], True)
        if not keep.all():
            steps, vals = steps[keep], vals[keep]
    return steps, vals


# -- writing ---------------------------------------------------------------------------------

def block_aggregates(steps: np.ndarray, vals: np.ndarray) -> np.ndarray:
    starts = np.arange(0, len(vals), BLOCK)
    ends = np.minimum(starts + BLOCK, len(vals))
    agg = np.empty(len(starts), AGG)
    with np.errstate(invalid="ignore"):
        agg["min"] = np.fmin.reduceat(vals, starts)
        agg["max"] = np.fmax.reduceat(vals, starts)
    agg["last"] = vals[ends - 1]
    agg["step"] = steps[ends - 1]
    agg["n"] = ends - starts
    return agg


def append_points(conn: Connection, run_pk: int, points: dict) -> None:
    """Add a batch's points (key -> (steps, values), in record order) to the run's series."""
    if not points:
        return
    keys = list(points)
    rows = {r.key: r for r in conn.execute(
        sa.select(series).where(series.c.run_pk == run_pk, series.c.key.in_(keys)))}
    for key in keys:
        steps = np.asarray(points[key][0], np.int64)
        vals = np.asarray(points[key][1], np.float64)
        row = rows.get(key)
        if row is None:
            conn.execute(sa.insert(series), {"run_pk": run_pk, "key": key, "n": 0,
                                             "last_step": None, "ordered": True})
            _append(conn, run_pk, key, 0, None, steps, vals)
        elif row.ordered:
            _append(conn, run_pk, key, row.n, row.last_step, steps, vals)


def _append(conn: Connection, run_pk: int, key: str, n: int, last_step: int | None,
            steps: np.ndarray, vals: np.ndarray) -> None:
    went_back = bool(np.any(steps[1:] < steps[:-1])) or (
        last_step is not None and int(steps[0]) < last_step)
    if went_back:
        _mark_unordered(conn, run_pk, key)
        return
    tail = (n - 1) // CHUNK if n else 0
    if n and (n % CHUNK or int(steps[0]) == last_step):
        old_s, old_v = _read_chunk(conn, run_pk, key, tail)
        steps, vals = np.concatenate([old_s, steps]), np.concatenate([old_v, vals])
        conn.execute(sa.delete(series_chunks).where(
            series_chunks.c.run_pk == run_pk, series_chunks.c.key == key,
            series_chunks.c.chunk == tail))
        base = tail
    else:
        base = (n + CHUNK - 1) // CHUNK
    steps, vals = collapse(steps, vals)
    rows = []
    for i, start in enumerate(range(0, len(steps), CHUNK)):
        s, v = steps[start:start + CHUNK], vals[start:start + CHUNK]
        rows.append({"run_pk": run_pk, "key": key, "chunk": base + i, "n": len(s),
                     "first_step": int(s[0]), "last_step": int(s[-1]), "steps": s.tobytes(),
                     "vals": v.tobytes(), "agg": block_aggregates(s, v).tobytes()})
    conn.execute(sa.insert(series_chunks), rows)
    total = base * CHUNK + len(steps)
    conn.execute(sa.update(series).where(series.c.run_pk == run_pk, series.c.key == key)
                 .values(n=total, last_step=int(steps[-1])))


def _read_chunk(conn: Connection, run_pk: int, key: str, chunk: int):
    row = conn.execute(sa.select(series_chunks.c.steps, series_chunks.c.vals).where(
        series_chunks.c.run_pk == run_pk, series_chunks.c.key == key,
        series_chunks.c.chunk == chunk)).first()
    return np.frombuffer(row.steps, np.int64), np.frombuffer(row.vals, np.float64)


def _mark_unordered(conn: Connection, run_pk: int, key: str) -> None:
    conn.execute(sa.delete(series_chunks).where(series_chunks.c.run_pk == run_pk,
                                                series_chunks.c.key == key))
    conn.execute(sa.update(series).where(series.c.run_pk == run_pk, series.c.key == key)
                 .values(ordered=False, n=0, last_step=None))


# -- reading ---------------------------------------------------------------------------------

class Units:
    """A series as consecutive units (points or blocks): count, min, max, last value, last step."""

    def __init__(self, n, mn, mx, last, step):
        self.n, self.min, self.max, self.last, self.step = n, mn, mx, last, step

    @classmethod
    def of_points(cls, steps: np.ndarray, vals: np.ndarray) -> Units:
        return cls(np.ones(len(vals), np.int64), vals, vals, vals, steps)

    @classmethod
    def of_blocks(cls, agg: np.ndarray) -> Units:
        return cls(agg["n"].astype(np.int64), agg["min"], agg["max"], agg["last"], agg["step"])

    @classmethod
    def concat(cls, parts: list[Units]) -> Units:
        if not parts:
            e = np.empty(0)
            return cls(np.empty(0, np.int64), e, e, e, np.empty(0, np.int64))
        return cls(*(np.concatenate([getattr(p, f) for p in parts])
                     for f in ("n", "min", "max", "last", "step")))


def downsample(u: Units, samples: int) -> dict:
    """At most `samples` buckets (see the module docstring): step, value, min, max arrays."""
    if len(u.n) == 0:
        return {"step": u.step, "value": u.last, "min": u.min, "max": u.max}
    if len(u.n) <= samples:
        return {"step": u.step, "value": u.last, "min": u.min, "max": u.max}
    total = int(u.n.sum())
    first = np.cumsum(u.n) - u.n  # point index where each unit starts
    rest = max(samples - 1, 1)
    bucket = np.zeros(len(u.n), np.int64)
    # unit 0 (a single point: the first) is bucket 0; the other points split evenly
    bucket[1:] = 1 + ((first[1:] - 1) * rest) // max(total - 1, 1)
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], len(u.n)) - 1
    with np.errstate(invalid="ignore"):
        mn = np.fmin.reduceat(u.min, starts)
        mx = np.fmax.reduceat(u.max, starts)
    return {"step": u.step[ends], "value": u.last[ends], "min": mn, "max": mx}


def in_range(steps: np.ndarray, min_step: int | None, max_step: int | None) -> np.ndarray:
    ok = np.ones(len(steps), bool)
    if min_step is not None:
        ok &= steps >= min_step
    if max_step is not None:
        ok &= steps < max_step
    return ok


def read_series(conn: Connection, run_pk: int, key: str, samples: int,
                min_step: int | None, max_step: int | None) -> dict | None:
    """The downsampled series from its chunks (empty when the run has no such key), or None
    when it must be rebuilt from records (its steps went back)."""
    row = conn.execute(sa.select(series.c.ordered).where(
        series.c.run_pk == run_pk, series.c.key == key)).first()
    if row is None:
        return downsample(Units.concat([]), samples)
    if not row.ordered:
        return None
    c = series_chunks.c
    q = sa.select(c.chunk, c.n, c.first_step, c.last_step, c.agg).where(
        c.run_pk == run_pk, c.key == key).order_by(c.chunk)
    if min_step is not None:
        q = q.where(c.last_step >= min_step)
    if max_step is not None:
        q = q.where(c.first_step < max_step)
    chunks = conn.execute(q).all()
    raw = _raw_chunks(chunks, samples, min_step, max_step)
    data = {}
    if raw:
        data = {r.chunk: r for r in conn.execute(
            sa.select(c.chunk, c.steps, c.vals).where(c.run_pk == run_pk, c.key == key,
                                                      c.chunk.in_(raw)))}
    parts = []
    for ch in chunks:
        if ch.chunk in data:
            s = np.frombuffer(data[ch.chunk].steps, np.int64)
            v = np.frombuffer(data[ch.chunk].vals, np.float64)
            ok = in_range(s, min_step, max_step)
            parts.append(Units.of_points(s[ok], v[ok]))
        else:
            parts.append(Units.of_blocks(np.frombuffer(ch.agg, AGG)))
    return downsample(Units.concat(parts), samples)


def _raw_chunks(chunks: list, samples: int, min_step, max_step) -> list[int]:
    """Which chunks to read point by point: all of a short series; else the first and the last
    one (the first point is a bucket of its own) and any the step range cuts through."""
    total = sum(ch.n for ch in chunks)
    if total <= 4 * samples or total <= 2 * CHUNK:
        return [ch.chunk for ch in chunks]
    out = {chunks[0].chunk, chunks[-1].chunk}
    for ch in chunks:
        if (min_step is not None and ch.first_step < min_step) or \
                (max_step is not None and ch.last_step >= max_step):
            out.add(ch.chunk)
    return sorted(out)


def points_from_records(records: Iterable[dict], keys: set) -> dict:
    """key -> (steps, values) collapsed, rebuilt from a run's records (the slow path)."""
    points: dict = {}
    for rec in records:
        if rec.get("t") == "history":
            add_points(points, rec)
    out = {}
    for k in keys:
        if k in points:
            out[k] = collapse(np.asarray(points[k][0], np.int64),
                              np.asarray(points[k][1], np.float64))
    return out


def downsample_points(steps, vals, samples, min_step, max_step) -> dict:
    ok = in_range(steps, min_step, max_step)
    return downsample(Units.of_points(steps[ok], vals[ok]), samples)
