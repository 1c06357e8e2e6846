"""The record log: an append-only JSON Lines file, one record per event.

Every record is one JSON object on one line, with at least

    t      record type: run, config, meta, metric, history, summary, file, alert, exit
    seq    dense sequence number, 1, 2, 3, ... within the run's log
    ts     Unix time in seconds

A history record looks like

    {"t":"history","seq":7,"ts":1732000000.5,"step":3,"d":{"loss":0.25,"acc":0.9}}

where `d` holds the logged values with nested dicts flattened to "a/b" keys. JSON has no NaN or
infinity, and integers outside [-2**63, 2**64) are not written as numbers: such values are
null in `d` and named in `nf` at the same place, e.g. `"nf":{"loss":"nan"}` or
`"nf":{"n":"1267650600228229401496703205376"}` (see `pack`; config and summary records nest).
Records with the same `step` belong to one history row (later values win).

Durability: `RecordWriter.append` hands the encoded record to the kernel with one `os.write` on a
file opened with O_APPEND before it returns, so a killed process loses nothing that was appended.
`sync()` (fsync) runs at close and every few seconds from a background thread.

Recovery: a last line without its newline (a torn write) is ignored; a line in the middle that does
not parse is skipped and counted. `read_records` reports both.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
dumps = orjson.dumps
loads = orjson.loads

NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def nonfinite_name(v: float) -> str:
    return "nan" if v != v else ("inf" if v > 0 else "-inf")


def encode(record: dict) -> bytes:
    return dumps(record, option=_OPT)


@dataclass
class ReadReport:
    """What a read found besides good records."""

    corrupt: list[int] = field(default_factory=list)  # byte offsets of lines that did not parse
    torn_tail: int | None = None  # byte offset where an unterminated last line starts
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (expected seq, found seq)
    malformed: list[int] = field(default_factory=list)  # seqs of records of a shape not known
    end: int = 0  # byte offset just past the last complete line

    @property
    def clean(self) -> bool:
        return not self.corrupt and self.torn_tail is None and not self.gaps and not self.malformed

    def describe(self) -> str:
        parts = []
        if self.corrupt:
            parts.append(f"{len(self.corrupt)} corrupt record(s) skipped at byte offset(s) "
                         + ", ".join(str(o) for o in self.corrupt[:5])
                         + (" ..." if len(self.corrupt) > 5 else ""))
        if self.torn_tail is not None:
            parts.append(f"an unfinished last record at byte offset {self.torn_tail} ignored")
        if self.gaps:
            parts.append(f"{len(self.gaps)} gap(s) in the sequence numbers")
        if self.malformed:
            parts.append(f"{len(self.malformed)} record(s) of an unknown shape skipped (seq "
                         + ", ".join(str(s) for s in self.malformed[:5])
                         + (" ..." if len(self.malformed) > 5 else "") + ")")
        return "; ".join(parts) or "clean"


def read_records(path: str | os.PathLike, start: int = 0, report: ReadReport | None = None,
                 first_seq: int | None = None) -> Iterator[dict]:
    """Yield the records of a log from byte offset `start`, skipping what cannot be read.

    `report`, if given, is filled with corrupt offsets, a torn tail and sequence gaps.
    `first_seq` is the sequence number expected first (for gap detection).
    """
    report = report if report is not None else ReadReport()
    try:
        with open(path, "rb") as f:
            if start:
                f.seek(start)
            data = f.read()
    except FileNotFoundError:
        report.end = start
        return
    yield from parse(data, 0, len(data), report, first_seq, base=start)


def parse(data: bytes, pos: int, stop: int, report: ReadReport, first_seq: int | None = None,
          base: int = 0) -> Iterator[dict]:
    """Yield the records in `data[pos:stop]` (offsets in `report` are `base` + position)."""
    expect = first_seq
    while pos < stop:
        nl = data.find(b"\n", pos, stop)
        if nl == -1:
            report.torn_tail = base + pos
            break
        line = data[pos:nl]
        pos = nl + 1
        report.end = base + pos
        if not line.strip():
            continue
        try:
            rec = loads(line)
            if type(rec) is not dict or "t" not in rec or type(rec.get("seq")) is not int:
                raise ValueError("not a record")
        except (ValueError, TypeError):
            report.corrupt.append(base + nl - len(line))
            continue
        seq = rec["seq"]
        if expect is not None and seq != expect:
            report.gaps.append((expect, seq))
            if seq < expect:  # a duplicate: keep the first copy
                continue
        expect = seq + 1
        yield rec


def select(path: str | os.PathLike, needles: tuple[bytes, ...] = (),
           unless_prefix: bytes | None = None, report: ReadReport | None = None) -> Iterator[dict]:
    """The records of a log whose line holds one of `needles` (or, with `unless_prefix`, does
    not start with it), in log order, found by byte search on a memory map: a long run's log is
    mostly history lines, which are never parsed here. A line that does not parse is skipped
    (counted in `report`), a torn last line ignored, as `read_records` does. A match is only a
    candidate: callers check the record's type."""
    import mmap
    import re

    report = report if report is not None else ReadReport()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        if not os.fstat(f.fileno()).st_size:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            starts: set[int] = set()
            if unless_prefix is not None:
                other = re.compile(rb"\n(?!" + re.escape(unless_prefix) + rb")")
                starts.update(m.end() for m in other.finditer(data))
                if not data[:len(unless_prefix)] == unless_prefix:
                    starts.add(0)
            for needle in needles:
                pos = data.find(needle)
                while pos != -1:
                    starts.add(data.rfind(b"\n", 0, pos) + 1)
                    end = data.find(b"\n", pos)
                    if end == -1:
                        break
                    pos = data.find(needle, end)
            for start in sorted(starts):
                end = data.find(b"\n", start)
                if end == -1:
                    break  # a torn last line: not a record yet
                yield from parse(data, start, end + 1, report)


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1  # what orjson writes as a JSON integer


def pack(value: Any) -> tuple[Any, Any]:
    """Split `value` into what JSON holds and the `nf` map of what it cannot.

    NaN and ±inf become null, integers outside [-2**63, 2**64) become null, and `nf` names
    them at the same place: `"nan"`, `"inf"`, `"-inf"`, or the integer's decimal digits. For a
    dict or list `nf` mirrors its shape (list positions as "0", "1", ...), holding only the
    places that need it; None when nothing does.

    >>> pack({"a": 1.0, "b": float("nan"), "c": {"d": 2**70}})
    ({'a': 1.0, 'b': None, 'c': {'d': None}}, {'b': 'nan', 'c': {'d': '1180591620717411303424'}})
    """
    t = type(value)
    if t is float:
        if value - value == 0.0:
            return value, None
        return None, nonfinite_name(value)
    if t is int:
        if _INT_MIN <= value <= _INT_MAX:
            return value, None
        return None, str(value)
    if t is dict:
        out, nf = {}, {}
        for k, v in value.items():
            out[k], n = pack(v)
            if n is not None:
                nf[k] = n
        return out, (nf or None)
    if t is list or t is tuple:
        items, nf = [], {}
        for i, v in enumerate(value):
            x, n = pack(v)
            items.append(x)
            if n is not None:
                nf[str(i)] = n
        return items, (nf or None)
    return value, None


def unpack(value: Any, nf: Any) -> Any:
    """The inverse of `pack`: `value` with the places `nf` names restored (copies, never
    changes `value`). A malformed `nf` entry leaves its place as it is."""
    if nf is None:
        return value
    if type(nf) is str:
        special = NONFINITE.get(nf)
        if special is not None:
            return special
        try:
            return int(nf)
        except ValueError:
            return value
    if type(nf) is not dict:
        return value
    if type(value) is dict:
        out = dict(value)
        for k, n in nf.items():
            if k in out:
                out[k] = unpack(out[k], n)
        return out
    if type(value) is list:
        items = list(value)
        for k, n in nf.items():
            try:
                i = int(k)
            except ValueError:
                continue
            if 0 <= i < len(items):
                items[i] = unpack(items[i], n)
        return items
    return value


def make_record(t: str, values: Any, **fields: Any) -> dict:
    """A record of type `t` holding `values` in `d` (packed, with `nf` when needed)."""
    rec = {"t": t, **fields}
    rec["d"], nf = pack(values)
    if nf:
        rec["nf"] = nf
    return rec


def history_values(rec: dict) -> dict:
    """The values (`d`) of a history, summary or config record, with what `nf` names restored."""
    d = rec.get("d", {})
    nf = rec.get("nf")
    return unpack(d, nf) if nf else d


_BLOCK_INT = 2**53  # integers a float64 column block holds exactly
_CHUNK = 1 << 20  # how much of a backlog one os.write hands the kernel
_RETRY_EVERY = 0.05  # seconds between attempts to write a backlog from append
_time = time.time
_monotonic = time.monotonic


class RecordWriter:
    """The one writer of a run's record log: encodes, numbers, writes, keeps what the disk
    refused, knows every record's byte range, and feeds the column blocks.

    Every method runs under `lock` (re-entrant), which the owner of the writer (the `Run`) also
    holds around its own bookkeeping and the fsync thread takes for `sync()` (the fsync itself
    runs outside it), so the order of sequence numbers, bytes and blocks is one order.

    Failures: `append` never raises on I/O errors. Bytes the kernel did not take are kept in a
    backlog (bounded by `MAX_BACKLOG`) and written, in order, before anything newer, by the next
    append or `sync()`. Byte offsets count the backlog, so they stay exact across a full disk.
    Only when the backlog overflows are records lost (counted in `dropped`, reported once);
    the column blocks then stop, as later offsets are no longer known.

    Interruptions: a KeyboardInterrupt (or any exception) raised in the middle of an append
    leaves the writer as if the append had wholly happened or not at all: `settle` asks the
    file how far it got (the writer is the only one appending to it).
    """

    MAX_BACKLOG = 256 * 1024 * 1024

    def __init__(self, path: str | os.PathLike, next_seq: int = 1, on_error=None, blocks=None):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.lock = threading.RLock()
        self.next_seq = next_seq
        self.offset = os.fstat(self.fd).st_size  # end of what was accepted, backlog included
        self.dirty = False
        self.dropped = 0
        self.last_ts = 0.0  # time of the newest record
        self.blocks = blocks
        self._backlog = bytearray()
        self._syncing = threading.Lock()  # held while an fsync runs outside `lock`
        self._next_drain = 0.0
        self._row_keys: tuple | None = None  # keys of the last row append_row took
        self.in_block = False  # whether that row went into a column block
        self._on_error = on_error
        self._error_reported = False

    # -- appending ------------------------------------------------------------------------
    def append(self, record: dict) -> int:
        """Give `record` the next sequence number and a time (unless it has one), encode it and
        write it. Values in `d` must be JSON-safe already (see `pack`). Returns its seq."""
        with self.lock:
            self._check_open()
            seq = self.next_seq
            record["seq"] = seq
            if "ts" not in record:
                record["ts"] = _time()
            self.last_ts = record["ts"]
            buf = encode(record)
            start = self.offset
            try:
                self._write(buf)
                self.next_seq = seq + 1
            except BaseException:
                self.settle(start, buf, seq)
                raise
            return seq

    def append_row(self, step: int, data: dict, known: set) -> tuple | None:
        """The fast path of `log()`: a history record of plain floats and ints under keys in
        `known` (keys the caller has vetted). The caller holds `lock`.

        Returns `(step, ts, *values)` once the record is written, or None — writing nothing —
        when `data` needs the general path (a new key, NaN/±inf, an int beyond 64 bits,
        another type)."""
        keys = tuple(data)
        if keys != self._row_keys:
            if not data.keys() <= known:
                return None
            self._row_keys = keys
        eligible = step <= _BLOCK_INT  # float64 columns hold such numbers exactly
        for v in data.values():
            t = type(v)
            if t is not float:
                if t is not int:
                    return None
                if v > _BLOCK_INT or v < -_BLOCK_INT:
                    eligible = False
        if self.fd < 0:
            raise ClosedError(f"the record log {self.path} is closed")
        seq = self.next_seq
        self.last_ts = ts = _time()
        try:
            buf = dumps({"t": "history", "seq": seq, "ts": ts, "step": step, "d": data},
                        option=_OPT)
        except TypeError:  # an int beyond 64 bits
            return None
        if b":null" in buf:  # NaN or infinity: they need naming in "nf"
            return None
        start = self.offset
        try:
            self._write(buf)
            self.next_seq = seq + 1
            row = (step, ts, *data.values())
            self.in_block = eligible and self.blocks is not None
            if self.in_block:
                self.blocks.add(keys, row, seq, start, self.offset)
        except BaseException:
            self.settle(start, buf, seq)
            raise
        return row

    def forget_row_keys(self) -> None:
        """The caller's set of vetted keys shrank: check the next row's keys again."""
        self._row_keys = None

    def settle(self, start: int, buf: bytes, seq: int) -> bool:
        """After an append starting at byte `start` was interrupted: make the writer agree with
        what reached the file (or the backlog), completing a torn record, and return whether
        the record is in."""
        with self.lock:
            if self.fd < 0:
                return False
            end = os.fstat(self.fd).st_size + len(self._backlog)
            if end <= start:
                self.offset = start
                self.next_seq = seq
                return False
            if end < start + len(buf):  # torn: finish it, or the next record would be unreadable
                self._backlog += buf[end - start:]
            self.offset = start + len(buf)
            self.next_seq = max(self.next_seq, seq + 1)
            return True

    def _check_open(self) -> None:
        if self.fd < 0:
            raise ClosedError(f"the record log {self.path} is closed")

    def _write(self, buf: bytes) -> None:
        """The one place a record's bytes go: to the file, or behind a backlog, in order."""
        if not self._backlog:
            try:
                n = os.write(self.fd, buf)
            except OSError as e:
                n, err = 0, e
            else:
                self.offset += n
                self.dirty = True
                if n == len(buf):
                    return
                err = OSError("short write (is the disk full?)")
            self._keep(memoryview(buf)[n:], err)
            return
        if len(self._backlog) + len(buf) > self.MAX_BACKLOG:
            self._drain()
        self._keep(buf, None)
        now = _monotonic()
        if now >= self._next_drain:  # a full disk is asked again now and then, not per call
            self._next_drain = now + _RETRY_EVERY
            self._drain()

    def _keep(self, rest, err: Exception | None) -> None:
        """Put `rest` (what the kernel did not take of a record) behind the backlog, or, with no
        room left, lose it: counted, and the column blocks stop (later byte offsets are no
        longer known). The first failure is reported once."""
        if len(self._backlog) + len(rest) > self.MAX_BACKLOG:
            self.dropped += 1
            if self.blocks is not None:
                self.blocks.broken = True
            err = err or OSError("the disk is full and so is the backlog")
        else:
            self._backlog += rest
            self.offset += len(rest)
        if err is not None and not self._error_reported and self._on_error is not None:
            self._error_reported = True
            self._on_error(err)

    def _drain(self) -> bool:
        """Write the backlog out in large chunks (linear in its size); True when it is empty."""
        backlog = self._backlog
        base = os.fstat(self.fd).st_size
        view = memoryview(backlog)
        try:
            pos = 0
            while pos < len(backlog):
                try:
                    n = os.write(self.fd, view[pos:pos + _CHUNK])
                except OSError:
                    break
                if n <= 0:
                    break
                pos += n
        finally:
            view.release()
            # the file, not a local count, says what went out: exact even when interrupted
            done = min(max(os.fstat(self.fd).st_size - base, 0), len(backlog))
            del backlog[:done]
            if done:
                self.dirty = True
        if backlog:
            return False
        self._error_reported = False
        return True

    @property
    def pending(self) -> int:
        """Bytes accepted but not yet handed to the kernel (a full disk)."""
        return len(self._backlog)

    @property
    def pending_records(self) -> int:
        """Records (or their unwritten ends) still in the backlog."""
        return self._backlog.count(b"\n")

    # -- durability -----------------------------------------------------------------------
    def sync(self) -> None:
        """Write any backlog (under `lock`), then fsync — outside `lock`, so a slow disk
        never holds up `log()`; `close()` waits for an fsync under way before closing."""
        with self.lock:
            if self.fd < 0:
                return
            if self._backlog:
                self._drain()
            if not self.dirty:
                return
            self.dirty = False
            self._syncing.acquire()
            fd = self.fd
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            self._syncing.release()

    def close(self) -> None:
        with self.lock:
            if self.fd < 0:
                return
            if self.blocks is not None:
                self.blocks.close()
            self.sync()
            with self._syncing:  # an fsync from another thread must not meet a closed fd
                os.close(self.fd)
                self.fd = -1

    def abandon(self) -> None:
        """In a forked child: let go of the parent's log without writing or syncing anything."""
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.fd = -1
        if self.blocks is not None:
            self.blocks.abandon()


class ClosedError(RuntimeError):
    """An append to a record log that was closed (its run finished)."""


def repair_tail(path: str | os.PathLike) -> int:
    """Cut an unfinished last record off a log before appending to it again. Returns bytes cut."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(p, "rb+") as f:
        # find the last newline, reading backwards in blocks
        pos = size
        block = 65536
        while pos > 0:
            start = max(0, pos - block)
            f.seek(start)
            chunk = f.read(pos - start)
            i = chunk.rfind(b"\n")
            if i != -1:
                keep = start + i + 1
                break
            pos = start
        else:
            keep = 0
        if keep < size:
            f.truncate(keep)
        return size - keep
