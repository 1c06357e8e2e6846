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
    end: int = 0  # byte offset just past the last complete line

    @property
    def clean(self) -> bool:
        return not self.corrupt and self.torn_tail is None and not self.gaps

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


def history_values(rec: dict) -> dict:
    """The values (`d`) of a history, summary or config record, with what `nf` names restored."""
    d = rec.get("d", {})
    nf = rec.get("nf")
    return unpack(d, nf) if nf else d


class RecordWriter:
    """The one writer of a run's record log.

    Not thread-safe by itself: the Run serialises calls. `append` never raises on I/O errors:
    records that could not be written are kept (bounded) and retried on the next append, and
    the error is reported once through `on_error`.
    """

    MAX_PENDING = 64 * 1024 * 1024

    def __init__(self, path: str | os.PathLike, next_seq: int = 1, on_error=None):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.next_seq = next_seq
        self.offset = os.fstat(self.fd).st_size
        self.dirty = False
        self.dropped = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._on_error = on_error
        self._error_reported = False
        self._lock = threading.Lock()  # guards fd against close() from another thread

    def append(self, record: dict) -> int:
        """Give `record` the next sequence number, encode it and write it. Returns its seq."""
        seq = record["seq"] = self.next_seq
        self.next_seq = seq + 1
        self.write_encoded(encode(record))
        return seq

    def write_encoded(self, buf: bytes) -> None:
        if self._pending:
            self._pending.append(buf)
            self._pending_bytes += len(buf)
            self._flush_pending()
            return
        try:
            n = os.write(self.fd, buf)
        except OSError as e:
            self._keep(buf, e)
            return
        self.offset += n
        self.dirty = True
        if n != len(buf):  # short write: the disk filled up mid-record
            self._keep(buf[n:], OSError("short write"))

    def _keep(self, buf: bytes, err: Exception) -> None:
        if self._pending_bytes + len(buf) > self.MAX_PENDING:
            self.dropped += 1
        else:
            self._pending.append(buf)
            self._pending_bytes += len(buf)
        if not self._error_reported and self._on_error is not None:
            self._error_reported = True
            self._on_error(err)

    def _flush_pending(self) -> None:
        while self._pending:
            buf = self._pending[0]
            try:
                n = os.write(self.fd, buf)
            except OSError:
                return
            self.offset += n
            self.dirty = True
            self._pending_bytes -= n
            if n < len(buf):
                self._pending[0] = buf[n:]
                return
            self._pending.pop(0)
        self._error_reported = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def sync(self) -> None:
        with self._lock:
            if self.fd < 0:
                return
            if self._pending:
                self._flush_pending()
            if self.dirty:
                self.dirty = False
                try:
                    os.fsync(self.fd)
                except OSError:
                    pass

    def close(self) -> None:
        self.sync()
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


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
