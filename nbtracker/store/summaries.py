"""Series summaries: a multi-resolution read accelerator for charts (`history.sums` beside the log).

A chart of a million-step series at 480 pixels needs about two points per pixel column, not a
million points. So each numeric history key gets, at several bucket sizes, one entry per bucket
of consecutive finite points (in step order):

    x0, x1        the bucket's first and last x (step)
    first, last   its first and last value
    min, xmin     its minimum and the x where it is (the first such)
    max, xmax     its maximum and the x where it is (the first such)
    count, sum    how many points, and their sum

Bucket sizes are BASE * FACTOR**level points (64, 256, 1024, ...) for as long as a level has at
least MIN_BUCKETS buckets. A reader takes the coarsest level that still gives every pixel column
a bucket, and merges buckets per column (min of the mins, max of the maxes): every spike stays
visible, unlike reservoir sampling. A short series (fewer than BASE * MIN_BUCKETS points: a
validation score logged every 1000 steps) gets one level of one-point buckets, its points.

The file, little-endian:

    magic   b"NBsm"
    hlen    u32   length of the header
    hcrc    u32   CRC-32 of the header bytes
    header  {"v": 1, "log": [size, crc32 of the log's last TAIL bytes],
             "keys": {key: {"n": points, "levels": [[bucket, offset, buckets, crc32], ...]}}}
    body    float64[buckets][10] per level, at `offset` from the start of the body

The log stays the source of truth. The header names the log it was built from (its size and the
checksum of its tail); a file that does not match the log as it is now, or whose checksums fail,
is rebuilt from the log (`ensure()`), or, where the directory cannot be written, ignored. A
damaged summary costs speed, never data. The writer builds the file when the run finishes.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from . import layout

SUMS_NAME = "history.sums"
MAGIC = b"NBsm"
VERSION = 1
BASE = 64
FACTOR = 4
MIN_BUCKETS = 64
TAIL = 4096
FIELDS = ("x0", "x1", "first", "last", "min", "xmin", "max", "xmax", "count", "sum")
X0, X1, FIRST, LAST, MIN, XMIN, MAX, XMAX, COUNT, SUM = range(len(FIELDS))


def log_identity(run_dir: Path) -> list[int] | None:
    """[size, crc32 of the last TAIL bytes] of the run's log, or None if it cannot be read."""
    try:
        with open(Path(run_dir) / layout.LOG_NAME, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            f.seek(max(0, size - TAIL))
            return [size, zlib.crc32(f.read(TAIL))]
    except OSError:
        return None


def buckets_of(x: np.ndarray, y: np.ndarray, size: int) -> np.ndarray:
    """The (buckets, 10) table of (x, y) (finite, x ascending) in buckets of `size` points."""
    n = len(x)
    starts = np.arange(0, n, size)
    ends = np.minimum(starts + size, n) - 1
    counts = np.diff(np.append(starts, n))
    mins = np.minimum.reduceat(y, starts)
    maxs = np.maximum.reduceat(y, starts)
    idx = np.arange(n)
    imin = np.minimum.reduceat(np.where(y == np.repeat(mins, counts), idx, n), starts)
    imax = np.minimum.reduceat(np.where(y == np.repeat(maxs, counts), idx, n), starts)
    out = np.empty((len(starts), len(FIELDS)))
    out[:, X0], out[:, X1] = x[starts], x[ends]
    out[:, FIRST], out[:, LAST] = y[starts], y[ends]
    out[:, MIN], out[:, XMIN] = mins, x[imin]
    out[:, MAX], out[:, XMAX] = maxs, x[imax]
    out[:, COUNT] = counts
    out[:, SUM] = np.add.reduceat(y, starts)
    return out


def merge(table: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Merge consecutive buckets sharing a `group` id (non-decreasing) into one bucket each."""
    if not len(table):
        return table
    starts = np.flatnonzero(np.diff(group, prepend=group[0] - 1))
    ends = np.append(starts[1:], len(table)) - 1
    out = np.empty((len(starts), len(FIELDS)))
    out[:, X0], out[:, X1] = table[starts, X0], table[ends, X1]
    out[:, FIRST], out[:, LAST] = table[starts, FIRST], table[ends, LAST]
    counts = np.diff(np.append(starts, len(table)))
    for col, xcol, red in ((MIN, XMIN, np.minimum), (MAX, XMAX, np.maximum)):
        ext = red.reduceat(table[:, col], starts)
        hit = table[:, col] == np.repeat(ext, counts)
        first = np.minimum.reduceat(np.where(hit, np.arange(len(table)), len(table)), starts)
        out[:, col], out[:, xcol] = ext, table[first, xcol]
    out[:, COUNT] = np.add.reduceat(table[:, COUNT], starts)
    out[:, SUM] = np.add.reduceat(table[:, SUM], starts)
    return out


def levels_of(x: np.ndarray, y: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(bucket size, table) per level for a series; a short one gets a single level of one
    bucket per point (a sparse metric, such as a validation score, is then read from here too)."""
    if 0 < len(x) < BASE * MIN_BUCKETS:
        return [(1, buckets_of(x, y, 1))]
    out = []
    size = BASE
    while len(x) >= size * MIN_BUCKETS:
        out.append((size, buckets_of(x, y, size) if not out
                    else merge(out[-1][1], np.arange(len(out[-1][1])) // FACTOR)))
        size *= FACTOR
    return out


def encode(identity: list[int], series: dict[str, tuple[np.ndarray, np.ndarray]]) -> bytes:
    """The file for `series` = {key: (x, y)} (finite, x ascending) built from the log `identity`."""
    keys, body = {}, []
    offset = 0
    for key, (x, y) in series.items():
        levels = []
        for size, table in levels_of(x, y):
            data = np.ascontiguousarray(table, dtype="<f8").tobytes()
            levels.append([size, offset, len(table), zlib.crc32(data)])
            body.append(data)
            offset += len(data)
        keys[key] = {"n": int(len(x)), "levels": levels}
    head = json.dumps({"v": VERSION, "log": identity, "keys": keys}, separators=(",", ":")).encode()
    head += b" " * (-(12 + len(head)) % 8)
    return MAGIC + struct.pack("<II", len(head), zlib.crc32(head)) + head + b"".join(body)


class Summaries:
    """A run's summaries read back: `n(key)`, `last(key)`, `level_for(key, x0, x1, buckets)`."""

    def __init__(self, header: dict, data, start: int):
        self.keys: dict = header["keys"]
        self._data, self._start = data, start  # bytes or an mmap: levels are read when asked
        self._cache: dict = {}
        self.damaged = False  # a level failed its checksum: rebuild with build()

    def n(self, key: str) -> int:
        return int(self.keys.get(key, {}).get("n", 0))

    def table(self, key: str, level: int) -> np.ndarray | None:
        """A level's table, or None when its checksum fails."""
        got = self._cache.get((key, level))
        if got is None:
            size, off, count, crc = self.keys[key]["levels"][level]
            a = self._start + off
            raw = self._data[a:a + count * len(FIELDS) * 8]
            if len(raw) != count * len(FIELDS) * 8 or zlib.crc32(raw) != crc:
                self.damaged = True
                return None
            got = self._cache[(key, level)] = np.frombuffer(raw, dtype="<f8").reshape(
                count, len(FIELDS))
        return got

    def coarsest(self, key: str) -> np.ndarray | None:
        levels = self.keys.get(key, {}).get("levels", [])
        return self.table(key, len(levels) - 1) if levels else None

    def level_for(self, key: str, x0: float, x1: float, buckets: int) -> np.ndarray | None:
        """The buckets overlapping [x0, x1] of the coarsest level with at least `buckets` of them
        there; None when no level has enough (read the points themselves) or one is damaged."""
        levels = self.keys.get(key, {}).get("levels", [])
        for i in range(len(levels) - 1, -1, -1):
            t = self.table(key, i)
            if t is None:
                return None
            lo = int(np.searchsorted(t[:, X1], x0, side="left"))
            hi = int(np.searchsorted(t[:, X0], x1, side="right"))
            if hi - lo >= buckets or levels[i][0] == 1:  # enough, or every point
                return t[lo:hi]
        return None


def read(run_dir: Path, identity: list[int] | None = None) -> Summaries | None:
    """The run's summaries if the file is whole and was built from the log as it is now."""
    try:
        with open(Path(run_dir) / SUMS_NAME, "rb") as f:
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # missing, or empty
        return None
    if len(data) < 12 or data[:4] != MAGIC:
        return None
    hlen, hcrc = struct.unpack_from("<II", data, 4)
    head = data[12:12 + hlen]
    if len(head) != hlen or zlib.crc32(head) != hcrc:
        return None
    try:
        h = json.loads(head)
        ok = h["v"] == VERSION and type(h["keys"]) is dict
    except (ValueError, KeyError, TypeError):
        return None
    identity = identity if identity is not None else log_identity(run_dir)
    if not ok or identity is None or h.get("log") != identity:
        return None
    return Summaries(h, data, 12 + hlen)


def series_of(run_dir: Path, keys=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{key: (step, value)} of the run's numeric history keys, finite points only, from the log."""
    from .history import read_history

    df = read_history(run_dir, keys=keys)
    step = df["_step"].to_numpy()
    if step.dtype == object:  # a step beyond int64: no summaries for such a run
        return {}
    step = step.astype(np.float64)
    out = {}
    for k in df.columns:
        if k in ("_step", "_runtime", "_timestamp"):
            continue
        y = as_floats(df[k])
        if y is None:
            continue
        ok = np.isfinite(y)
        out[k] = (step[ok], y[ok])
    return out


def _number(v) -> float:
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        try:
            return float(v)
        except OverflowError:  # an int beyond float's range: not drawable
            return math.nan
    return math.nan


def as_floats(col) -> np.ndarray | None:
    """A history column as floats to draw: numbers as they are, anything else (None, text, a
    bool) NaN; None when nothing in it is a number. A metric with one None stays drawable."""
    kind = col.dtype.kind
    if kind in "iuf":
        return col.to_numpy(dtype=np.float64)
    if kind != "O":
        return None
    y = np.fromiter((_number(v) for v in col.tolist()), dtype=np.float64, count=len(col))
    return y if np.isfinite(y).any() else None


def build(run_dir: Path) -> Summaries | None:
    """Build the run's summaries from its log and write them (atomically). Returns them, or None
    when the log cannot be read; a directory that cannot be written only costs the file."""
    identity = log_identity(run_dir)
    if identity is None:
        return None
    data = encode(identity, series_of(run_dir))
    path = Path(run_dir) / SUMS_NAME
    tmp = path.with_name(f".{SUMS_NAME}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink()
        except OSError:
            pass
    return read_bytes(data, identity)


def read_bytes(data: bytes, identity: list[int]) -> Summaries | None:
    hlen = struct.unpack_from("<I", data, 4)[0]
    h = json.loads(data[12:12 + hlen])
    return Summaries(h, data, 12 + hlen) if h["log"] == identity else None


def ensure(run_dir: Path) -> Summaries | None:
    """The run's summaries, rebuilt from the log when missing or stale (a level found damaged
    when read sets `damaged`: call build())."""
    identity = log_identity(run_dir)
    if identity is None:
        return None
    got = read(run_dir, identity)
    return got if got is not None else build(run_dir)
