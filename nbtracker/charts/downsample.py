"""Downsampling for charts: keep the shape (every spike) of a long series in a bounded number
of points. Vectorised numpy; no loop over points.

- `minmax_downsample(x, y, n)`: a whole series to at most 2n + 2 points (static charts).
- `StreamingMinMax`: the same for a series that grows, batch by batch (live charts): it tells
  a front-end holding its own copy what to append, or, when the buckets widen, what to reset to.
"""

from __future__ import annotations

import numpy as np


def _finite(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.all():
        return x, y
    return x[ok], y[ok]


def _group_extremes(y: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the (first) minimum and maximum of y within each group that begins at `starts`."""
    n = len(y)
    counts = np.diff(np.append(starts, n))
    idx = np.arange(n)
    mins = np.repeat(np.minimum.reduceat(y, starts), counts)
    maxs = np.repeat(np.maximum.reduceat(y, starts), counts)
    imin = np.minimum.reduceat(np.where(y == mins, idx, n), starts)
    imax = np.minimum.reduceat(np.where(y == maxs, idx, n), starts)
    return imin, imax


def minmax_downsample(x, y, n_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `2 * n_buckets + 2` points of (x, y): per bucket of consecutive points, its
    minimum and maximum, plus the first and last points. x ascending; non-finite points are
    dropped; a series short enough is returned whole."""
    if n_buckets < 1:
        raise ValueError(f"n_buckets must be at least 1, not {n_buckets}")
    x, y = _finite(x, y)
    n = len(x)
    if n <= 2 * n_buckets:
        return x, y
    starts = np.unique(np.linspace(0, n, n_buckets + 1).astype(np.int64)[:-1])
    imin, imax = _group_extremes(y, starts)
    keep = np.unique(np.concatenate([imin, imax, [0, n - 1]]))
    return x[keep], y[keep]


def column_extremes(x: np.ndarray, ys: list[np.ndarray], x0: float, x1: float,
                    n: int) -> np.ndarray:
    """Indices (ascending) of the points a line `n` pixel columns wide over [x0, x1] shows: in
    each column the minimum and maximum of each of `ys`, and the first and last points. x is
    ascending; every value finite. A short enough series is kept whole."""
    if len(x) <= 2 * n:
        return np.arange(len(x))
    span = (x1 * 0.5 - x0 * 0.5) or 1.0  # halves: x1 - x0 can overflow
    col = np.clip(np.floor((x * 0.5 - x0 * 0.5) / span * n), 0, n - 1).astype(np.int64)
    starts = np.flatnonzero(np.diff(col, prepend=col[0] - 1))
    keep = [np.array([0, len(x) - 1])]
    for y in ys:
        keep.extend(_group_extremes(y, starts))
    return np.unique(np.concatenate(keep))


def _points(minx, miny, maxx, maxy) -> tuple[np.ndarray, np.ndarray]:
    """Each bucket's min and max points in x order (one point when they coincide)."""
    swap = maxx < minx
    ax, ay = np.where(swap, maxx, minx), np.where(swap, maxy, miny)
    bx, by = np.where(swap, minx, maxx), np.where(swap, miny, maxy)
    xs = np.column_stack([ax, bx]).ravel()
    ys = np.column_stack([ay, by]).ravel()
    same = (ax == bx) & (ay == by)
    keep = np.column_stack([np.ones_like(same), ~same]).ravel()
    return xs[keep], ys[keep]


class StreamingMinMax:
    """Bounded min/max decimation of a growing series (x non-decreasing across pushes).

    Points fall in buckets of x width W (starting at 1); each bucket keeps its minimum and
    maximum point. When more than `max_buckets` buckets are complete, W doubles and neighbours
    merge, so a front-end never holds more than `2 * max_buckets + 3` points, however long the
    run. The open bucket (the tail) also shows the newest point. Non-finite points are skipped;
    a point that steps back in x (a value logged at an earlier step) joins the bucket of its x,
    and everything is sent again (rare, and at most `2 * max_buckets + 3` points). `push()`
    returns what changed, as pairs of float64 arrays:

        {"append": (xs, ys), "tail": (xs, ys)}   new complete buckets' points to append; the
                                                 tail (the open bucket) replaces the last tail
        {"reset": (xs, ys), "tail": (xs, ys)}    the buckets widened: replace everything
    """

    def __init__(self, max_buckets: int = 1000):
        if max_buckets < 1:
            raise ValueError(f"max_buckets must be at least 1, not {max_buckets}")
        self.max_buckets = int(max_buckets)
        self.width = 1.0
        self.x0: float | None = None
        # complete buckets: id, min point, max point
        self._id = np.empty(0, np.int64)
        self._b = np.empty((0, 4))  # minx, miny, maxx, maxy
        self._open: tuple[int, np.ndarray] | None = None  # (id, [minx, miny, maxx, maxy])
        self._last: tuple[float, float] | None = None  # the newest point, always in the tail

    def __len__(self) -> int:
        return len(self._id) + (self._open is not None)

    def _buckets_of(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        ids = np.floor((x - self.x0) / self.width).astype(np.int64)
        starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
        imin, imax = _group_extremes(y, starts)
        return ids[starts], np.column_stack([x[imin], y[imin], x[imax], y[imax]])

    @staticmethod
    def _merge(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a.copy()
        if b[1] < a[1]:
            out[0], out[1] = b[0], b[1]
        if b[3] > a[3]:
            out[2], out[3] = b[2], b[3]
        return out

    def push(self, x, y) -> dict:
        """Add a batch of points; return what a front-end must change (see the class doc)."""
        x, y = _finite(x, y)
        if len(x):
            # points at an x below one already seen belong to earlier buckets: placed after
            floor = -np.inf if self._last is None else self._last[0]
            ahead = x >= np.maximum(np.maximum.accumulate(x), floor)
            if not ahead.all():
                self._push_ahead(x[ahead], y[ahead])
                self._place_behind(x[~ahead], y[~ahead])
                return {"reset": _points(*self._b.T), "tail": self._tail()}
        return self._push_ahead(x, y)

    def _place_behind(self, x: np.ndarray, y: np.ndarray) -> None:
        """Merge points whose x lies before the newest one into the buckets of their x."""
        ids = np.floor((x - self.x0) / self.width).astype(np.int64)
        for i, xi, yi in zip(ids.tolist(), x.tolist(), y.tolist()):
            pt = np.array([xi, yi, xi, yi])
            if self._open is not None and i >= self._open[0]:
                self._open = (self._open[0], self._merge(self._open[1], pt))
                continue
            j = int(np.searchsorted(self._id, i))
            if j < len(self._id) and self._id[j] == i:
                self._b[j] = self._merge(self._b[j], pt)
            else:
                self._id = np.insert(self._id, j, i)
                self._b = np.insert(self._b, j, pt, axis=0)
        while len(self._id) > self.max_buckets:
            self._widen()

    def _push_ahead(self, x: np.ndarray, y: np.ndarray) -> dict:
        if not len(x):
            return {"append": (np.empty(0), np.empty(0)), "tail": self._tail()}
        if self.x0 is None:
            self.x0 = float(x[0])
        self._last = (float(x[-1]), float(y[-1]))
        had = len(self._id) > 0 or self._open is not None
        widened = False
        # widen first, so that a large batch never makes more buckets than it may keep
        while (x[-1] - self.x0) / self.width >= self.max_buckets + 1:
            self._widen()
            widened = True
        ids, b = self._buckets_of(x, y)
        if self._open is not None:
            oid, ob = self._open
            if ids[0] <= oid:  # x never goes back: the first group joins the open bucket
                b[0] = self._merge(ob, b[0])
                ids[0] = oid
            else:
                ids = np.concatenate([[oid], ids])
                b = np.vstack([ob, b])
        new_ids, new_b = ids[:-1], b[:-1]
        self._open = (int(ids[-1]), b[-1])
        self._id = np.concatenate([self._id, new_ids])
        self._b = np.vstack([self._b, new_b])
        while len(self._id) > self.max_buckets:
            self._widen()
            widened = True
        if widened and had:
            return {"reset": _points(*self._b.T), "tail": self._tail()}
        return {"append": _points(*new_b.T), "tail": self._tail()}

    def _widen(self) -> None:
        self.width *= 2
        ids, merged = self._id // 2, self._b
        if len(ids):
            starts = np.flatnonzero(np.diff(ids, prepend=ids[0] - 1))
            b = self._b
            # per merged bucket: the min of the mins and the max of the maxes, with their x
            imin, _ = _group_extremes(b[:, 1], starts)
            _, imax = _group_extremes(b[:, 3], starts)
            merged = np.column_stack([b[imin, 0], b[imin, 1], b[imax, 2], b[imax, 3]])
            ids = ids[starts]
        if self._open is not None:
            oid, ob = self._open
            oid //= 2
            if len(ids) and ids[-1] == oid:  # the last complete bucket now lies in the open one
                ob = self._merge(merged[-1], ob)
                ids, merged = ids[:-1], merged[:-1]
            self._open = (oid, ob)
        self._id, self._b = ids, merged

    def _tail(self) -> tuple[np.ndarray, np.ndarray]:
        """The open bucket's min and max points, and the newest point (a live chart should
        end where the run is now)."""
        if self._open is None:
            return np.empty(0), np.empty(0)
        xs, ys = _points(*self._open[1][:, None])
        lx, ly = self._last
        if not any(a == lx and b == ly for a, b in zip(xs, ys)):  # at most two points
            xs, ys = np.append(xs, lx), np.append(ys, ly)
        return xs, ys

    def committed(self) -> tuple[np.ndarray, np.ndarray]:
        """The complete buckets' points (everything but the tail)."""
        return _points(*self._b.T)

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """Everything held: complete buckets, then the open one."""
        cx, cy = self.committed()
        tx, ty = self._tail()
        return np.concatenate([cx, tx]), np.concatenate([cy, ty])
