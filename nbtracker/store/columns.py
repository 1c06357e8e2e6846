"""Column blocks: a read accelerator for the record log (`history.cols` beside it).

Parsing JSON costs a few microseconds a line, too slow for million-row histories. So the writer
also keeps the numeric history records in blocks, one open block per key set (at most
`MAX_OPEN`; the least recently used is written when another key set needs room), and writes a
block when it is full or at `close()`. A block need not cover a contiguous part of the log: each
row names the record it copies. The file is a sequence of frames, little-endian:

    magic   b"NBcb"
    hlen    u32   length of the header (JSON, padded with spaces so the body is 8-aligned)
    blen    u64   length of the body
    hcrc    u32   CRC-32 of hlen, blen and the header bytes
    header  {"v":2,"n":rows,"keys":[...],"ints":[keys whose cells are all int],
             "seq0":first seq,"seq1":last seq,"crc":CRC-32 of the body}
    body    int64[3][n]        seq, byte offset and byte end of each row's record in the log
                               (all seqs, then all offsets, then all ends)
            float64[n][2+k]    step, ts, then the values in the order of "keys" (row by row)

Only records whose values are all float or int with |v| <= 2**53 (and whose step is such an
int) go into blocks, so float64 holds every cell exactly; "ints" says which columns were ints.
Other records (text, None, NaN, larger ints, ...) do not end a block: the reader parses them.

The writer calls `add(keys, row, seq, off, end)` right after each eligible record's write, sets
`broken` when the log's byte offsets are no longer known (nothing more is written then), and
`close()` at finish.

The log stays the source of truth. A reader takes a frame only if its header checksum, body
length and body checksum hold, looks for the next magic after anything that does not, and
checks each block against the log (rows in log order, inside it, not overlapping; the records
at its first and last rows are the ones it names, with the same step, time and values). It
parses the log wherever no block covers it. Losing or damaging this file costs speed, never
data.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from itertools import starmap
from pathlib import Path

COLS_NAME = "history.cols"
MAGIC = b"NBcb"
VERSION = 2  # frames of another version are skipped (their rows are parsed from the log)
PREFIX = 20  # magic, hlen, blen, hcrc
POS_WIDTH = 3  # seq, offset, end
BLOCK_ROWS = 8192
MIN_BLOCK_ROWS = 64  # fewer rows are cheaper to parse than to keep as a block
MAX_OPEN = 8
EXACT = 2**53  # float64 holds every integer up to this magnitude


class _Open:
    """The rows gathered for one key set, each kept as (row, seq, offset, end)."""

    __slots__ = ("keys", "rows")

    def __init__(self, keys: tuple):
        self.keys = keys
        self.rows: list[tuple] = []

    @property
    def last_seq(self) -> int:
        return self.rows[-1][1] if self.rows else -1


class BlockWriter:
    """Gathers eligible history rows by key set and writes them as blocks.

    `add` is on the `log()` hot path: one tuple appended to a list and a length check (plus a
    dict look-up when the key set differs from the last call's). `keys` is the key set of the
    last `add`; a caller may set it to None to forget it. `broken = True` stops all writing to
    the file (the log's byte offsets are no longer known). `sink(keys, row)`, if set, is given
    the newest row of open blocks (oldest first) whenever `absorb()` runs and before rows
    leave memory."""

    __slots__ = ("fd", "open", "broken", "sink", "keys", "_rows", "_absorbed")

    def __init__(self, path: str | os.PathLike):
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.open: dict[tuple, _Open] = {}
        self.broken = False
        self.sink: Callable[[tuple, tuple], None] | None = None
        self.keys: tuple | None = None
        self._rows: list = []  # the rows list of the block for `keys`
        self._absorbed = -1  # rows up to this seq have been given to the sink

    def add(self, keys: tuple, row: tuple, seq: int, off: int, end: int) -> None:
        """Keep `row` = (step, ts, *values) of the record `seq` at log bytes [off, end)."""
        rows = self._rows if keys == self.keys else self._select(keys)
        rows.append((row, seq, off, end))
        if len(rows) >= BLOCK_ROWS:
            self._write(self.open[keys])

    def _select(self, keys: tuple) -> list:
        b = self.open.get(keys)
        if b is None:
            if len(self.open) >= MAX_OPEN:
                lru = min(self.open.values(), key=lambda o: o.last_seq)
                self._write(lru)
                del self.open[lru.keys]
            b = self.open[keys] = _Open(keys)
        self.keys, self._rows = keys, b.rows
        return b.rows

    def last_rows(self) -> list[tuple[int, tuple, tuple]]:
        """(seq, keys, row) of the newest row of each open key set, oldest first."""
        return sorted((b.rows[-1][1], b.keys, b.rows[-1][0])
                      for b in self.open.values() if b.rows)

    def absorb(self) -> None:
        """Give the sink the newest rows it has not seen yet, in log order."""
        if self.sink is None:
            return
        for seq, keys, row in self.last_rows():
            if seq > self._absorbed:
                self.sink(keys, row)
                self._absorbed = seq

    def _write(self, b: _Open) -> None:
        """Write `b`'s rows as one block (if worth it) and empty it."""
        self.absorb()
        rows = b.rows
        b.rows = []
        if self._rows is rows:
            self._rows = b.rows
        if self.broken or self.fd < 0 or len(rows) < MIN_BLOCK_ROWS:
            return
        frame = encode_block(b.keys, rows)
        if frame is None:
            return
        try:
            # one write per block: a torn frame fails its checks, and the reader looks for
            # the next one from inside it
            if os.write(self.fd, frame) != len(frame):
                self.broken = True
        except OSError:
            self.broken = True

    def close(self) -> None:
        """Write what is still open (oldest first) and close the file."""
        if self.fd < 0:
            return
        for b in sorted(self.open.values(), key=lambda o: o.last_seq):
            self._write(b)
        self.open.clear()
        self.keys, self._rows = None, []
        os.close(self.fd)
        self.fd = -1


    def abandon(self) -> None:
        """In a forked child: close the file without writing what is open."""
        self.open.clear()
        self.keys, self._rows = None, []
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _int_columns(keys: tuple, rows: tuple[tuple, ...]) -> list[str] | None:
    """The keys whose cells are all ints; None if one of those is beyond 2**53 (the caller
    promises it is not: a block must never bend a number)."""
    first = rows[0]  # a float in the first row settles most columns without a scan
    ints = []
    for j, k in enumerate(keys, 2):
        if type(first[j]) is int and all(type(r[j]) is int for r in rows):
            if not all(-EXACT <= r[j] <= EXACT for r in rows):
                return None
            ints.append(k)
    return ints


def encode_block(keys: tuple, kept: list[tuple]) -> bytes | None:
    """One frame holding `kept` = [(row, seq, offset, end), ...] (see the module docstring);
    None if a row does not fit."""
    n, width = len(kept), len(keys) + 2
    rows, seqs, offs, ends = zip(*kept)
    try:
        # one packing per row, all in C: about twice as fast as array("d", chain(...))
        vals = b"".join(starmap(struct.Struct(f"<{width}d").pack, rows))
        where = struct.pack(f"<{3 * n}q", *seqs, *offs, *ends)
    except (struct.error, TypeError, OverflowError):
        return None  # a row of another width, or not a number
    if not (abs(rows[0][0]) <= EXACT and abs(rows[-1][0]) <= EXACT):
        return None  # steps go forward: the ends bound them all
    ints = _int_columns(keys, rows)
    if ints is None:
        return None
    body = where + vals
    header = {"v": VERSION, "n": n, "keys": list(keys), "seq0": seqs[0], "seq1": seqs[-1],
              "crc": zlib.crc32(body)}
    if ints:
        header["ints"] = ints
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-(PREFIX + len(head)) % 8)
    lens = struct.pack("<IQ", len(head), len(body))
    return MAGIC + lens + struct.pack("<I", zlib.crc32(lens + head)) + head + body


def _header(data, i: int) -> tuple[dict, int, int] | None:
    """The header, body start and body end of the frame at `i`, or None unless its lengths and
    both checksums hold."""
    size = len(data)
    if i + PREFIX > size:
        return None
    hlen, blen, hcrc = struct.unpack_from("<IQI", data, i + 4)
    start = i + PREFIX + hlen
    end = start + blen
    if end > size or zlib.crc32(data[i + PREFIX:start], zlib.crc32(data[i + 4:i + 16])) != hcrc:
        return None
    try:
        h = json.loads(data[i + PREFIX:start])
        n, keys = h["n"], h["keys"]
        ok = (h["v"] == VERSION and type(n) is int and n > 0 and type(keys) is list
              and all(type(k) is str for k in keys) and type(h["crc"]) is int
              and blen == n * (POS_WIDTH + 2 + len(keys)) * 8)
    except (ValueError, KeyError, TypeError):
        return None
    if not ok or zlib.crc32(memoryview(data)[start:end]) != h["crc"]:
        return None
    return h, start, end


def frames(data) -> Iterator[tuple[dict, int, int, int]]:
    """Yield (header, frame start, body start, body end) of each frame whose checksums hold.
    After anything else the next magic is looked for, from just past the bad one's: a
    damaged or torn frame costs only itself."""
    pos = 0
    while True:
        i = data.find(MAGIC, pos)
        if i < 0:
            return
        found = _header(data, i)
        if found is None:
            pos = i + 1
            continue
        h, start, end = found
        yield h, i, start, end
        pos = end


class Block:
    """A block read back: `pos` int64 (n, 3) and `vals` float64 (n, 2 + len(keys))."""

    __slots__ = ("keys", "ints", "pos", "vals")

    def __init__(self, h: dict, pos, vals):
        self.keys: list[str] = h["keys"]
        ints = h.get("ints", ())
        self.ints = set(ints) if type(ints) is list else set()
        self.pos = pos
        self.vals = vals


def blocks_in(data) -> Iterator[Block]:
    """The blocks in `data` (a column file's bytes) whose checksums hold; the log decides
    whether they are used (history.py)."""
    import numpy as np

    for h, _, start, _ in frames(data):
        n = h["n"]
        pos = np.frombuffer(data, dtype="<i8", count=n * POS_WIDTH, offset=start)
        yield Block(h, pos.reshape(POS_WIDTH, n).T, _vals(data, h, start))


def load_blocks(run_dir: Path) -> list[Block]:
    try:
        data = (Path(run_dir) / COLS_NAME).read_bytes()
    except OSError:
        return []
    return list(blocks_in(data))


def read_blocks(run_dir: Path) -> Iterator[tuple[dict, object]]:
    """Yield (header, rows as a float64 ndarray (n, 2 + len(keys))) for inspection."""
    try:
        data = (Path(run_dir) / COLS_NAME).read_bytes()
    except OSError:
        return
    for h, _, start, _ in frames(data):
        yield h, _vals(data, h, start)


def _vals(data, h: dict, start: int):
    import numpy as np

    n, width = h["n"], len(h["keys"]) + 2
    return np.frombuffer(data, dtype="<f8", count=n * width,
                         offset=start + n * POS_WIDTH * 8).reshape(n, width)


def repair_blocks(run_dir: Path) -> None:
    """Cut whatever follows the last whole frame off the column file before appending to it
    again (a frame torn by a crash would otherwise hide nothing, but waste space)."""
    path = Path(run_dir) / COLS_NAME
    try:
        data = path.read_bytes()
    except OSError:
        return
    end = max((f[3] for f in frames(data)), default=0)
    if end < len(data):
        with open(path, "rb+") as f:
            f.truncate(end)
