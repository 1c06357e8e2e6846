"""Reading a run's history: one row per step, `_step`, the metrics, `_runtime`, `_timestamp`.

The result equals a plain replay of the record log: the history records in log order, those
that share a step merged into one row, a later record's value winning over an earlier one —
NaN and None included. Column blocks (`columns.py`) stand in for the records they cover; only
the byte ranges of the log no valid block covers are parsed. If the blocks and the log disagree
in any way, the blocks are dropped and the whole log is parsed.

Column types, decided on the cells a frame holds (after `keys` and `samples`):

    only ints, all within int64, none missing               int64
    floats, ints with |v| <= 2**53, missing cells           float64 (missing cells NaN)
    anything else (None, text, bools, an int beyond 2**53   object: the logged values as they are
    among floats or missing cells, or beyond int64)         (Python ints), missing cells NaN;
                                                            only bools and none missing: bool

So no number is ever bent: float64 holds every int up to 2**53 exactly (an int column with gaps
reads as float64 with NaN, as plots and the live panel need); beyond that the column keeps the
ints themselves.

`_step` is int64 (object if a step is beyond int64). Metric names are free: the frame has no
internal columns, so a metric called `_seq` is a metric like any other. `keys=[...]` keeps the
rows that hold every one of those keys (wandb's rule), for `history()` and `scan_history()`.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import layout
from .columns import EXACT, Block, load_blocks
from .recordlog import ReadReport, history_values, loads, parse

_META = ("_step", "_runtime", "_timestamp")
_I64 = (-(2**63), 2**63 - 1)

# the kind of one cell
MISSING, FLOAT, SMALL_INT, INT64, OTHER = range(5)


def _kind(v: Any) -> int:
    t = type(v)
    if t is float:
        return FLOAT
    if t is int:
        if -EXACT <= v <= EXACT:
            return SMALL_INT
        return INT64 if _I64[0] <= v <= _I64[1] else OTHER
    return OTHER


class _Parsed:
    """History records parsed from the log: step, ts, seq per record, values per key."""

    def __init__(self) -> None:
        self.seq: list[int] = []
        self.step: list[int] = []
        self.ts: list[float] = []
        self.cols: dict[str, tuple[list[int], list[Any]]] = {}  # key -> record indices, values
        self.first: dict[str, int] = {}  # key -> seq where it first appears

    def add(self, rec: dict) -> None:
        step = rec.get("step")
        if type(step) is not int:
            return  # not a history row anyone can place
        ts = rec.get("ts")
        vals = history_values(rec)
        if type(vals) is not dict:
            vals = {}
        i = len(self.seq)
        self.seq.append(rec["seq"])
        self.step.append(step)
        self.ts.append(float(ts) if type(ts) in (float, int) else float("nan"))
        cols = self.cols
        for k, v in vals.items():
            if k in _META:
                continue  # refused at log time; the row's own _step/_timestamp win
            c = cols.get(k)
            if c is None:
                c = cols[k] = ([], [])
                self.first[k] = rec["seq"]
            c[0].append(i)
            c[1].append(v)

    def take(self, data, start: int, stop: int, report: ReadReport, expect: int | None) -> int | None:
        """Parse data[start:stop]; return the last sequence number seen (or `expect` - 1)."""
        last = None if expect is None else expect - 1
        for rec in parse(data, start, stop, report, expect):
            last = rec["seq"]
            if rec["t"] == "history":
                self.add(rec)
        return last


def _same_record(data, start: int, end: int, seq: int, keys: list, row) -> bool:
    """The record at data[start:end] is history record `seq` holding `row` (step, ts, values)."""
    try:
        rec = loads(data[start:end])
        d = rec["d"]
        return (rec["t"] == "history" and rec["seq"] == seq and "nf" not in rec
                and list(d) == keys and [rec["step"], rec["ts"], *d.values()] == row)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _block_ok(b: Block, data, size: int) -> bool:
    """A block agrees with the log: rows in log order inside it, integral steps, and the
    records at its first and last rows are the ones it names, with the same values (so a
    block copied from another run is not taken for this one's)."""
    import numpy as np

    seq, off, end = b.pos[:, 0], b.pos[:, 1], b.pos[:, 2]
    step = b.vals[:, 0]
    if off[0] < 0 or end[-1] > size or not (end > off).all():
        return False
    if len(seq) > 1 and not ((np.diff(seq) > 0).all() and (off[1:] >= end[:-1]).all()):
        return False
    if not (np.abs(step) <= EXACT).all() or not (step == np.floor(step)).all():
        return False
    for i in (0, len(seq) - 1):
        o, e = int(off[i]), int(end[i])
        if data[e - 1:e] != b"\n" or (o and data[o - 1:o] != b"\n"):
            return False
        if not _same_record(data, o, e - 1, int(seq[i]), b.keys, b.vals[i].tolist()):
            return False
    return True


def _counting_order(seq):
    """The permutation sorting the distinct integers `seq` (dense-ish), or None on a repeat."""
    import numpy as np

    if len(seq) == 0:
        return np.zeros(0, dtype=np.int64)
    if (np.diff(seq) > 0).all():
        return np.arange(len(seq))
    lo, hi = int(seq.min()), int(seq.max())
    if hi - lo > 4 * len(seq) + 1024:
        order = np.argsort(seq, kind="stable")
        return order if (np.diff(seq[order]) > 0).all() else None
    slot = np.full(hi - lo + 1, -1, dtype=np.int64)
    slot[seq - lo] = np.arange(len(seq))
    order = slot[slot >= 0]
    return order if len(order) == len(seq) else None


class _Source:
    """Every history record of a run: blocks for what they cover, parsed records for the rest."""

    def __init__(self, blocks: list[Block], parsed: _Parsed):
        self.blocks = blocks
        self.parsed = parsed


def _gather(run_dir: Path, data, report: ReadReport) -> _Source:
    """Blocks that agree with the log, and the records of the byte ranges they do not cover."""
    import numpy as np

    size = len(data)
    blocks = [b for b in load_blocks(run_dir) if _block_ok(b, data, size)] if size else []
    if blocks:
        pos = np.concatenate([b.pos for b in blocks])
        order = _counting_order(pos[:, 0])
        if order is not None:
            pos = pos[order]
            off, end = pos[:, 1], pos[:, 2]
            if len(pos) > 1 and not (off[1:] >= end[:-1]).all():
                order = None  # blocks that overlap each other: trust neither
        if order is not None:
            parsed = _parse_around(data, pos, report)
            if parsed is not None:
                return _Source(blocks, parsed)
        report.gaps.clear()
        report.corrupt.clear()
        report.torn_tail = None
    parsed = _Parsed()
    parsed.take(data, 0, size, report, None)
    return _Source([], parsed)


def _parse_around(data, pos, report: ReadReport) -> _Parsed | None:
    """Parse the log between the rows `pos` (seq, off, end; in log order) covers. None if a
    parsed record would break the order of sequence numbers (the log and blocks disagree)."""
    import numpy as np

    parsed = _Parsed()
    seq, off, end = pos[:, 0], pos[:, 1], pos[:, 2]
    n = len(seq)
    # ranges between covered records: before the first, between neighbours, after the last
    holes = np.flatnonzero(off[1:] > end[:-1])
    starts = [0, *(end[holes]).tolist(), int(end[-1])]
    stops = [int(off[0]), *(off[holes + 1]).tolist(), len(data)]
    before = [None, *(seq[holes]).tolist(), int(seq[-1])]
    after = [int(seq[0]), *(seq[holes + 1]).tolist(), None]
    for a, b, prev, nxt in zip(starts, stops, before, after):
        expect = None if prev is None else prev + 1
        last = parsed.take(data, a, b, report, expect) if b > a else (None if prev is None else prev)
        if nxt is not None and last is not None:
            if nxt <= last:
                return None
            if nxt != last + 1:
                report.gaps.append((last + 1, nxt))
    # neighbours with nothing between them must still be consecutive records
    touching = np.flatnonzero((off[1:] == end[:-1]) & (seq[1:] != seq[:-1] + 1))
    report.gaps.extend((int(seq[i]) + 1, int(seq[i + 1])) for i in touching[:100])
    if n:
        report.end = max(report.end, int(end[-1]))
    return parsed


def _open_log(run_dir: Path):
    try:
        with open(Path(run_dir) / layout.LOG_NAME, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # mapped, not read: where column blocks cover the log its pages are never touched
            return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except (FileNotFoundError, ValueError, OSError):
        return None


class _Table:
    """The history as rows: record order, row of each record, and per-key cells by row."""

    def __init__(self, src: _Source):
        import numpy as np

        self.src = src
        blocks, parsed = src.blocks, src.parsed
        seq = np.concatenate([*(b.pos[:, 0] for b in blocks),
                              np.asarray(parsed.seq, dtype=np.int64)])
        self.n = n = len(seq)
        self.big_steps = None  # Python ints of every step when one is beyond int64
        steps = self._steps(blocks, parsed, n)
        ts = np.concatenate([*(b.vals[:, 1] for b in blocks), np.asarray(parsed.ts, dtype=float)]) \
            if n else np.zeros(0)
        order = _counting_order(seq)
        if order is None:  # cannot happen after _gather; stay exact all the same
            order = np.argsort(seq, kind="stable")
        st = steps[order]
        if n > 1 and not (np.diff(st) >= 0).all():
            # steps that go back: rows in step order, records of a step in log order
            order = order[np.argsort(st, kind="stable")]
            st = steps[order]
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        self.rank = rank  # source index -> place in (step, seq) order
        new_row = np.empty(n, dtype=bool)
        if n:
            new_row[0] = True
            np.not_equal(st[1:], st[:-1], out=new_row[1:])
        self.row_of = np.cumsum(new_row) - 1  # place -> row
        self.rows = int(self.row_of[-1]) + 1 if n else 0
        self.one_per_row = self.rows == n
        starts = np.flatnonzero(new_row)
        last = np.r_[starts[1:] - 1, n - 1].astype(np.int64) if n else starts
        self.row_step = st[starts]
        self.row_ts = ts[order][last]
        self.first = self._first_seen(blocks, parsed)

    def _steps(self, blocks, parsed, n: int):
        import numpy as np

        steps_p = parsed.step
        if not n:
            return np.zeros(0, dtype=np.int64)
        if all(_I64[0] <= s <= _I64[1] for s in steps_p):
            return np.concatenate([*(b.vals[:, 0].astype(np.int64) for b in blocks),
                                   np.asarray(steps_p, dtype=np.int64)])
        # a step beyond int64: order by rank among the distinct steps, keep the Python ints
        every = [*(s for b in blocks for s in b.vals[:, 0].astype(np.int64).tolist()), *steps_p]
        distinct = {s: i for i, s in enumerate(sorted(set(every)))}
        self.big_steps = sorted(distinct)
        return np.fromiter((distinct[s] for s in every), dtype=np.int64, count=len(every))

    @staticmethod
    def _first_seen(blocks, parsed) -> dict[str, int]:
        first = dict(parsed.first)
        for b in blocks:
            s = int(b.pos[0, 0])
            for k in b.keys:
                if k not in _META and first.get(k, s) >= s:
                    first[k] = s
        return first

    def keys(self) -> list[str]:
        return sorted(self.first, key=lambda k: self.first[k])

    def cells(self, key: str):
        """(kind int8, float64 value, {row: value} for cells float64 cannot hold) by row."""
        import numpy as np

        n = self.n
        kind = np.zeros(n, dtype=np.int8)
        fv = np.full(n, np.nan)
        extra: dict[int, Any] = {}
        base = 0
        rank = self.rank
        for b in self.src.blocks:
            m = len(b.pos)
            if key in b.keys:
                j = 2 + b.keys.index(key)
                r = rank[base:base + m]
                if m and r[-1] - r[0] == m - 1 and (np.diff(r) == 1).all():
                    sl = slice(int(r[0]), int(r[0]) + m)  # contiguous places: plain copies
                    fv[sl] = b.vals[:, j]
                    kind[sl] = SMALL_INT if key in b.ints else FLOAT
                else:
                    fv[r] = b.vals[:, j]
                    kind[r] = SMALL_INT if key in b.ints else FLOAT
            base += m
        col = self.src.parsed.cols.get(key)
        if col is not None:
            idx, vals = col
            places = rank[np.asarray(idx, dtype=np.int64) + base]
            self._parsed_cells(places, vals, kind, fv, extra)
        if self.one_per_row:
            return kind, fv, extra
        return self._by_row(kind, fv, extra)

    @staticmethod
    def _parsed_cells(places, vals: list, kind, fv, extra: dict) -> None:
        import numpy as np

        types = set(map(type, vals))
        if types <= {float}:
            fv[places] = np.array(vals, dtype=np.float64)
            kind[places] = FLOAT
            return
        kinds = np.fromiter(map(_kind, vals), dtype=np.int8, count=len(vals))
        kind[places] = kinds
        small = np.flatnonzero(kinds <= SMALL_INT)
        if len(small):
            fv[places[small]] = np.array([vals[i] for i in small.tolist()], dtype=np.float64)
        for i in np.flatnonzero(kinds > SMALL_INT).tolist():
            extra[int(places[i])] = vals[i]

    def _by_row(self, kind, fv, extra: dict):
        """The last present cell of each row (a later record wins, whatever its value)."""
        import numpy as np

        present = np.flatnonzero(kind)
        rows = self.row_of[present]
        last = np.ones(len(present), dtype=bool)
        last[:-1] = rows[1:] != rows[:-1]
        keep, krows = present[last], rows[last]
        kind_r = np.zeros(self.rows, dtype=np.int8)
        fv_r = np.full(self.rows, np.nan)
        kind_r[krows] = kind[keep]
        fv_r[krows] = fv[keep]
        extra_r = {}
        if extra:
            kept = np.zeros(self.n, dtype=bool)
            kept[keep] = True
            extra_r = {int(self.row_of[p]): v for p, v in extra.items() if kept[p]}
        return kind_r, fv_r, extra_r


def _column(kind, fv, extra: dict, sel):
    """The pandas column for the cells of one key on the rows `sel` (None: all)."""
    import numpy as np

    if sel is not None:
        kind, fv = kind[sel], fv[sel]
        if extra:
            where = {int(r): i for i, r in enumerate(sel.tolist())} if len(extra) else {}
            extra = {where[r]: v for r, v in extra.items() if r in where}
    counts = np.bincount(kind, minlength=5)
    missing = counts[MISSING] > 0
    only_ints = counts[FLOAT] == 0 and counts[OTHER] == 0
    if only_ints and not missing:
        # exact: float64 holds the small ones; the others come from `extra`
        ints = np.where(kind == SMALL_INT, fv, 0).astype(np.int64)
        for i, v in extra.items():
            ints[i] = v
        return ints
    if counts[INT64] == 0 and counts[OTHER] == 0:
        return fv  # floats, and ints float64 holds exactly, with NaN where missing
    # cells float64 cannot hold exactly: the logged values themselves
    obj = np.empty(len(kind), dtype=object)
    obj[:] = np.nan
    f = np.flatnonzero(kind == FLOAT)
    obj[f] = fv[f]
    s = np.flatnonzero(kind == SMALL_INT)
    obj[s] = fv[s].astype(np.int64)
    for i, v in extra.items():
        obj[i] = v
    if not missing and counts[OTHER] == len(kind) and all(type(v) is bool for v in extra.values()):
        return obj.astype(bool)
    return obj


def _selection(table: _Table, holds: list, samples: int | None):
    """Rows to keep: those holding every key in `holds`, then `samples` of them evenly."""
    import numpy as np

    sel = None
    if holds:
        mask = np.ones(table.rows, dtype=bool)
        for kind in holds:
            mask &= kind > 0
        sel = np.flatnonzero(mask)
    count = table.rows if sel is None else len(sel)
    if samples is not None and count > samples > 0:
        idx = np.asarray(spread(count, samples), dtype=np.int64)
        sel = idx if sel is None else sel[idx]
    return sel


def spread(n: int, k: int) -> list[int]:
    """At most k indices evenly spread over range(n), the first and the last among them: how
    `history(samples=k)` picks its rows, and a chart's table its points."""
    import numpy as np

    return np.unique(np.linspace(0, n - 1, k).round().astype(np.int64)).tolist()


def read_history(run_dir: Path, created: float = 0.0, keys: Iterable[str] | None = None,
                 samples: int | None = None, report: ReadReport | None = None):
    """The run's history as a DataFrame with `_step`, `_runtime`, `_timestamp` columns."""
    import numpy as np
    import pandas as pd

    report = report if report is not None else ReadReport()
    asked = None if keys is None else [k for k in dict.fromkeys(keys) if k not in _META]
    data = _open_log(run_dir)
    if data is None:
        return pd.DataFrame(columns=["_step", *(asked or ()), "_runtime", "_timestamp"]
                            if asked is not None else list(_META))
    try:
        table = _Table(_gather(run_dir, data, report))
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    if table.rows == 0:
        cols = list(_META) if asked is None else ["_step", *asked, "_runtime", "_timestamp"]
        return pd.DataFrame(columns=cols)
    names = table.keys() if asked is None else asked
    cells = {k: table.cells(k) for k in names}
    table.src = None  # the blocks' bytes are copied out by now: let them go before the frame
    sel = _selection(table, [cells[k][0] for k in asked] if asked else [], samples)
    if table.big_steps is not None:
        step = np.array([table.big_steps[s] for s in table.row_step.tolist()], dtype=object)
        if all(_I64[0] <= s <= _I64[1] for s in table.big_steps):
            step = step.astype(np.int64)
    else:
        step = table.row_step
    ts = table.row_ts
    start = created or ts[0]
    if sel is not None:
        step, ts = step[sel], ts[sel]
    out = {"_step": step}
    for k in names:
        col = _column(*cells.pop(k), sel)
        if col.dtype == object and any(v is None for v in col):
            # pandas would read text with None as a string column, None turned into NaN
            col = pd.Series(col, dtype=object, copy=False)
        out[k] = col
    out["_runtime"] = ts - start
    out["_timestamp"] = ts
    return pd.DataFrame(out, copy=False)


def scan_history(run_dir: Path, keys: Iterable[str] | None = None,
                 in_order: bool = True) -> Iterable[dict[str, Any]]:
    """Rows as dicts, one per step in step order, without building a DataFrame of the whole
    run. With `keys`, only rows holding every one of them, with only those keys (besides
    `_step`, `_timestamp`). Rows stream as the log is read when `in_order` (no record came at a
    step below an earlier one: `RunState.late_steps` is false); otherwise they are merged by
    step first."""
    want = set(keys) - set(_META) if keys is not None else None
    rows = (_stream_rows if in_order else _merged_rows)(parse_file(run_dir), want)
    for row in rows:
        if want is None or want <= row.keys():
            yield row


def _fold(row: dict, rec: dict, want: set | None) -> None:
    vals = history_values(rec)
    if type(vals) is not dict:
        vals = {}
    for k, v in vals.items():
        if k not in _META and (want is None or k in want):
            row[k] = v
    ts = rec.get("ts")
    row["_timestamp"] = float(ts) if type(ts) in (float, int) else float("nan")


def _stream_rows(records, want: set | None):
    row: dict[str, Any] | None = None
    for rec in records:
        if rec["t"] != "history" or type(rec.get("step")) is not int:
            continue
        if row is None or rec["step"] != row["_step"]:
            if row is not None:
                yield row
            row = {"_step": rec["step"]}
        _fold(row, rec, want)
    if row is not None:
        yield row


def _merged_rows(records, want: set | None):
    rows: dict[int, dict] = {}
    for rec in records:
        if rec["t"] == "history" and type(rec.get("step")) is int:
            step = rec["step"]
            row = rows.get(step)
            if row is None:
                row = rows[step] = {"_step": step}
            _fold(row, rec, want)
    for step in sorted(rows):
        yield rows[step]


def parse_file(run_dir: Path):
    from .recordlog import read_records

    return read_records(Path(run_dir) / layout.LOG_NAME)
