"""The upload cursor: how far a server has acknowledged a run's record log.

`<run dir>/upload.json`:

    {"base_url": "http://127.0.0.1:8080", "project": "mnist", "run_id": "a1b2c3",
     "next_seq": 1201, "offset": 98765, "eseq": 2}

`next_seq` is the sequence number the server expects next, `offset` the byte offset in
`records.jsonl` just past the last acknowledged record (where reading resumes), `eseq` the
highest edit (`edits.jsonl`) the server holds. The file is replaced atomically (temporary file,
then rename) after every acknowledged batch, so a killed process leaves either the old cursor or
the new one — both true, as the server drops records it already has.

A cursor that cannot be trusted (missing, unreadable, for another server, or an offset that does
not fall just after a line) only costs a rescan: `find_offset` locates a sequence number in the
log, and the server's own `next_seq` decides where uploading resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from ..store.recordlog import loads

CURSOR_NAME = "upload.json"


@dataclass
class Cursor:
    base_url: str
    project: str
    run_id: str
    next_seq: int = 1
    offset: int = 0
    eseq: int = 0

    @classmethod
    def load(cls, run_dir: str | os.PathLike) -> Cursor | None:
        try:
            with open(Path(run_dir) / CURSOR_NAME, encoding="utf-8") as f:
                d = json.load(f)
            c = cls(base_url=str(d["base_url"]), project=str(d["project"]),
                    run_id=str(d["run_id"]), next_seq=int(d.get("next_seq", 1)),
                    offset=int(d.get("offset", 0)), eseq=int(d.get("eseq", 0)))
        except (OSError, ValueError, TypeError, KeyError):
            return None
        if c.next_seq < 1 or c.offset < 0 or c.eseq < 0:
            return None
        return c

    def save(self, run_dir: str | os.PathLike) -> None:
        path = Path(run_dir) / CURSOR_NAME
        tmp = path.with_name(f".{CURSOR_NAME}.{os.getpid()}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, path)


def offset_ok(log_path: str | os.PathLike, offset: int) -> bool:
    """Whether `offset` can be where a line starts: 0, or just after a newline in the log."""
    if offset == 0:
        return True
    try:
        with open(log_path, "rb") as f:
            f.seek(offset - 1)
            return f.read(1) == b"\n"
    except OSError:
        return False


def find_offset(log_path: str | os.PathLike, seq: int) -> int:
    """The byte offset where the first record with a sequence number ≥ `seq` starts (the end of
    the complete lines when there is none): where uploading from `seq` begins."""
    if seq <= 1:
        return 0
    pos = 0
    try:
        f = open(log_path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # a torn last line
            try:
                rec = loads(line)
                s = rec.get("seq") if type(rec) is dict else None
            except ValueError:
                s = None
            if type(s) is int and s >= seq:
                return pos
            pos += len(line)
    return pos


def fingerprint(log_path: str | os.PathLike) -> str | None:
    """The sha256 of the log's first line (its `run` record, newline included): what tells
    this run from another with the same id. None while the log has no complete line."""
    try:
        with open(log_path, "rb") as f:
            first = f.readline(1 << 20)
    except OSError:
        return None
    return hashlib.sha256(first).hexdigest() if first.endswith(b"\n") else None


def last_seq_in(log_path: str | os.PathLike, tail: int = 1 << 16) -> int:
    """The sequence number of the log's last complete record (0 when there is none), read from
    the end of the file."""
    try:
        f = open(log_path, "rb")
    except FileNotFoundError:
        return 0
    with f:
        size = f.seek(0, os.SEEK_END)
        while True:
            start = max(0, size - tail)
            f.seek(start)
            data = f.read(size - start)
            lines = data.split(b"\n")[:-1]  # what follows the last newline is torn
            if start > 0:
                lines = lines[1:]  # the first may be cut
            for line in reversed(lines):
                try:
                    rec = loads(line)
                    s = rec.get("seq") if type(rec) is dict else None
                except ValueError:
                    s = None
                if type(s) is int:
                    return s
            if start == 0:
                return 0
            tail *= 4
