"""Column blocks: a read accelerator for the record log (`history.cols` beside it).

Parsing JSON costs a few microseconds a line, too slow for million-row histories. So the writer
also keeps runs of consecutive history records that hold only numbers, with the same keys, and
writes each run as one block once it is full (or ends): a JSON header line, then the rows as
row-major float64 (step, ts, value...). The header names the byte range and the sequence
numbers of the log records the block covers, and the CRC-32 of its rows; a reader takes the
block instead of parsing those lines.

The log stays the source of truth: a reader checks each block against the log (the records at
both ends must carry the sequence numbers the header names, the rows their checksum) and parses
the log wherever there is no valid block. Losing or damaging this file costs speed, never data.
"""

from __future__ import annotations

import json
import os
import zlib
from array import array
from itertools import chain
from pathlib import Path

COLS_NAME = "history.cols"
BLOCK_ROWS = 8192
MIN_BLOCK_ROWS = 64  # shorter runs of rows are cheaper to parse than to keep as a block


class BlockWriter:
    __slots__ = ("fd", "keys", "rows", "off0", "seq0", "has_int", "broken", "sink", "end")

    def __init__(self, path: str | os.PathLike):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.keys: tuple | None = None
        self.rows: list[tuple] = []
        self.off0 = 0
        self.seq0 = 0
        self.has_int = False
        self.broken = False
        self.sink = None  # called with (keys, last row) whenever a block ends
        self.end = -1  # log byte offset just past the newest row

    def add(self, keys: tuple, row: tuple, seq: int, off: int, end: int, ints: bool) -> None:
        """Take one history record of plain numbers: `row` is (step, ts, *values) in the order
        of `keys` (`ints`: some are ints); the record is `seq` and lies at log bytes [off, end)."""
        if keys != self.keys or off != self.end:
            self.flush(self.end)
            self.begin(keys, off, seq)
        rows = self.rows
        rows.append(row)
        self.end = end
        if ints:
            self.has_int = True
        if len(rows) >= BLOCK_ROWS:
            self.flush(end)

    def begin(self, keys: tuple, offset: int, seq: int) -> None:
        self.keys = keys
        self.off0 = offset
        self.seq0 = seq
        self.has_int = False

    def flush(self, offset_end: int) -> None:
        """Write the rows gathered so far as one block ending at log byte `offset_end`."""
        rows = self.rows
        keys = self.keys
        self.keys = None
        if not rows:
            return
        self.rows = []
        if self.sink is not None:
            self.sink(keys, rows[-1])
        n = len(rows)
        if self.broken or n < MIN_BLOCK_ROWS:
            return
        header = {"n": n, "keys": list(keys), "seq0": self.seq0, "seq1": self.seq0 + n - 1,
                  "off0": self.off0, "off1": offset_end}
        try:
            payload = array("d", chain.from_iterable(rows))
        except (TypeError, OverflowError):
            return
        if self.has_int:
            width = len(keys)
            header["ints"] = [keys[i] for i in range(width)
                              if all(type(r[i + 2]) is int for r in rows)]
        body = payload.tobytes()
        header["crc"] = zlib.crc32(body)
        head = json.dumps(header).encode() + b"\n"
        try:
            # One write per block: a torn block at the end of the file is detected by its length.
            os.write(self.fd, head + len(body).to_bytes(8, "little") + body)
        except OSError:
            self.broken = True

    def close(self) -> None:
        if self.fd >= 0:
            self.flush(self.end)
            os.close(self.fd)
            self.fd = -1

    def abandon(self) -> None:
        """In a forked child: close the file without writing what is open."""
        self.rows = []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _frames(data: bytes):
    """Yield (header, start, end) for each whole block: the rows are data[start:end]. Stops at
    the first block that is not whole (a torn end, or garbage)."""
    pos, size = 0, len(data)
    while pos < size:
        nl = data.find(b"\n", pos)
        if nl == -1 or nl + 9 > size:
            return
        try:
            header = json.loads(data[pos:nl])
            need = int(header["n"]) * (len(header["keys"]) + 2) * 8
        except (ValueError, KeyError, TypeError):
            return
        blen = int.from_bytes(data[nl + 1:nl + 9], "little")
        start = nl + 9
        if blen != need or start + blen > size:
            return
        pos = start + blen
        yield header, start, pos


def read_blocks(run_dir: Path):
    """Yield (header, rows as a float64 ndarray of shape (n, 2 + len(keys))) for whole blocks."""
    import numpy as np

    try:
        data = (Path(run_dir) / COLS_NAME).read_bytes()
    except OSError:
        return
    for header, start, end in _frames(data):
        if zlib.crc32(memoryview(data)[start:end]) != header.get("crc"):
            continue  # a damaged block: those records are parsed from the log instead
        n, width = int(header["n"]), len(header["keys"]) + 2
        rows = np.frombuffer(data, dtype=np.float64, count=n * width, offset=start)
        yield header, rows.reshape(n, width)


def repair_blocks(run_dir: Path) -> None:
    """Cut a torn block off the end of the column file before appending to it again."""
    path = Path(run_dir) / COLS_NAME
    try:
        data = path.read_bytes()
    except OSError:
        return
    end = max((frame[2] for frame in _frames(data)), default=0)
    if end < len(data):
        with open(path, "rb+") as f:
            f.truncate(end)
