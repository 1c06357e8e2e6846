"""Runs on the server: batches of records in exactly once, edits, the replayed state, and
the records read back.

A batch (`ingest`) runs in one transaction holding the run row's lock (BEGIN IMMEDIATE on
SQLite, SELECT ... FOR UPDATE on PostgreSQL): records below the run's `next_seq` are dropped
(the client sent them before and lost the answer), a batch starting above it is refused as a
gap (`SeqGap`, 409), the rest are stored as one compressed chunk, applied to the run's
`RunState` (skipping what `apply` rejects, as `store.store.replay` does), added to the history
series, and `next_seq` moves past the last one. Whatever fails, the transaction leaves either
all of that or none of it.

One run id, one log: the run upsert may carry the sha256 of the first line of the client's
log (`fingerprint`), kept from the first upsert that gives one; a later upsert with another, or
a batch reaching back to the run's first stored record without that same record, is another
run under the same id (`RunClash`, 409 without a seq to resend from).

Seqs strictly increase but may skip INSIDE a batch: the client skips lines of its log it cannot
read (a torn or corrupt line), so the seqs a run holds need not be consecutive. Only a batch
starting above `next_seq` is a gap. Readers therefore page by seq (`record_page` says where the
next page starts), never by counting records.
"""

from __future__ import annotations

import copy
import json
import math
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store import query
from ..store.state import EDIT_TYPES, RunState, replay_records
from . import series as series_mod
from .config import LIVE_TIMEOUT
from .db import insert_ignore
from .schema import API_EDIT_BASE, edits, record_chunks, run_blobs, runs


class SeqGap(Exception):
    """A batch that starts above the run's next sequence number."""

    def __init__(self, next_seq: int):
        super().__init__(f"records are missing before this batch; send from seq {next_seq}")
        self.next_seq = next_seq


@dataclass
class RunRow:
    pk: int
    run_id: str
    next_seq: int
    eseq: int
    state: str | None
    updated: float
    api_eseq: int = 0
    seen: float | None = None
    fingerprint: str | None = None


def _row(r) -> RunRow:
    return RunRow(r.pk, r.run_id, r.next_seq, r.eseq, r.state, r.updated, r.api_eseq, r.seen,
                  r.fingerprint)


class RunClash(Exception):
    """Another log under the run's id: its first record (or fingerprint) differs from what the
    server holds. Fatal for the uploader: no seq to resend from."""

    def __init__(self):
        super().__init__("another run with this id is already on the server (its first record "
                         "differs); give this run another id or upload it to another project")


def claim(conn: Connection, row: RunRow, fingerprint: str) -> None:
    """The run's log is the one whose first line hashes to `fingerprint` (sha256 hex): stored
    the first time one is given; RunClash when another was."""
    if row.fingerprint is None:
        row.fingerprint = fingerprint
        conn.execute(sa.update(runs).where(runs.c.pk == row.pk).values(fingerprint=fingerprint))
    elif row.fingerprint != fingerprint:
        raise RunClash()


def first_record(conn: Connection, run_pk: int) -> dict | None:
    q = (sa.select(record_chunks.c.data).where(record_chunks.c.run_pk == run_pk)
         .order_by(record_chunks.c.first_seq).limit(1))
    data = conn.execute(q).scalar()
    if data is None:
        return None
    d = zlib.decompressobj()
    head = d.decompress(data, 1 << 16)
    while b"\n" not in head and not d.eof:
        head += d.decompress(d.unconsumed_tail, 1 << 16)
    return orjson.loads(head.split(b"\n", 1)[0])


def check_first(conn: Connection, row: RunRow, records: list[dict]) -> None:
    """RunClash when a batch reaching back to the run's first stored record does not hold that
    same record (a log of another run under the same id, fingerprint or not)."""
    if not records or row.next_seq == 1 or records[0]["seq"] >= row.next_seq:
        return
    first = first_record(conn, row.pk)
    if first is not None and records[0]["seq"] <= first["seq"] and records[0] != first:
        raise RunClash()




def status(row: RunRow, s: RunState, live_timeout: float = LIVE_TIMEOUT) -> str:
    """The run's state as readers see it. The log says `running` until its exit record; the
    server also needs the process to be alive: its uploader says so (`mark_seen`) when it
    starts and every HEARTBEAT seconds. A running run not heard from for LIVE_TIMEOUT, or
    uploaded by `nbtracker sync` (its process is gone), is `crashed` — as the local store says
    of a running run whose lock nobody holds."""
    if s.state != "running":
        return s.state
    alive = row.seen is not None and time.time() - row.seen <= live_timeout
    return "running" if alive else "crashed"


def mark_seen(conn: Connection, row: RunRow, live: bool) -> None:
    """Record that the run's process is alive (`live`) or gone."""
    row.seen = time.time() if live else None
    conn.execute(sa.update(runs).where(runs.c.pk == row.pk).values(seen=row.seen))


def lock_run(conn: Connection, project_id: int, run_id: str) -> RunRow:
    """The run's row, created if new, locked until the transaction ends."""
    now = time.time()
    insert_ignore(conn, runs, {"project_id": project_id, "run_id": run_id, "next_seq": 1,
                               "eseq": 0, "state": None, "created": now, "updated": now})
    q = (sa.select(runs).where(runs.c.project_id == project_id, runs.c.run_id == run_id)
         .with_for_update())
    return _row(conn.execute(q).one())


def find_run(conn: Connection, project_id: int, run_id: str) -> RunRow | None:
    r = conn.execute(sa.select(runs).where(runs.c.project_id == project_id,
                                           runs.c.run_id == run_id)).first()
    return _row(r) if r else None


def linked_blobs(conn: Connection, run_pk: int) -> list[str]:
    q = sa.select(run_blobs.c.sha256).where(run_blobs.c.run_pk == run_pk).order_by(run_blobs.c.sha256)
    return list(conn.execute(q).scalars())


def is_linked(conn: Connection, run_pk: int, sha256: str) -> bool:
    q = sa.select(run_blobs.c.sha256).where(run_blobs.c.run_pk == run_pk,
                                            run_blobs.c.sha256 == sha256)
    return conn.execute(q).first() is not None


# -- records in ------------------------------------------------------------------------------

def load_state(text: str | None) -> RunState:
    return RunState.load(text) if text else RunState()


def ingest(conn: Connection, row: RunRow, first_seq: int, records: list[dict]) -> int:
    """Store a batch (see the module docstring) on the locked `row`; returns the new next_seq."""
    if first_seq > row.next_seq:
        raise SeqGap(row.next_seq)
    check_first(conn, row, records)
    fresh = [r for r in records if r["seq"] >= row.next_seq]
    if not fresh:
        return row.next_seq
    for rec in fresh:
        check_depth(rec)
    state = load_state(row.state)
    points: dict = {}
    # a record of a shape this version does not know is kept, but not replayed
    for rec in replay_records(state, fresh):
        if rec.get("t") == "history":
            series_mod.add_points(points, rec)
    lines = b"".join(encode_record(r) + b"\n" for r in fresh)
    conn.execute(sa.insert(record_chunks), {
        "run_pk": row.pk, "first_seq": fresh[0]["seq"], "last_seq": fresh[-1]["seq"],
        "count": len(fresh), "data": zlib.compress(lines, 1)})
    series_mod.append_points(conn, row.pk, points)
    next_seq = fresh[-1]["seq"] + 1
    conn.execute(sa.update(runs).where(runs.c.pk == row.pk).values(
        next_seq=next_seq, state=state.dump(), updated=time.time()))
    return next_seq


MAX_DEPTH = 400  # how deep a record may nest (objects and arrays)


class TooDeep(ValueError):
    """A record nested deeper than MAX_DEPTH: it could not be stored and read back."""


def depth(value, limit: int) -> int:
    """How deep `value` nests (a scalar is 0), counting no further than limit + 1."""
    deepest, level = 0, [(value, 1)]
    while level:
        v, d = level.pop()
        if isinstance(v, dict):
            v = v.values()
        elif not isinstance(v, list):
            continue
        deepest = max(deepest, d)
        if d > limit:
            return d
        level.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return deepest


def check_depth(rec: dict) -> None:
    if depth(rec, MAX_DEPTH) > MAX_DEPTH:
        raise TooDeep(f"record seq {rec['seq']} nests deeper than {MAX_DEPTH} levels; "
                      f"the server cannot store it")


def encode_record(rec: dict) -> bytes:
    """A record as one JSON line: orjson, or the json module where orjson refuses (it nests
    at most 254 deep)."""
    try:
        return orjson.dumps(rec)
    except orjson.JSONEncodeError:
        return json.dumps(rec, ensure_ascii=False, separators=(",", ":")).encode()


class MixedEdits(ValueError):
    """A batch of edits where some carry a seq and some do not."""


def add_edits(conn: Connection, row: RunRow, batch: list[dict]) -> int:
    """Store edits not held yet (idempotent by their seq); returns the highest uploaded edit
    seq. Kept as Python's json writes them: an edit may hold integers beyond 64 bits. Edits
    without a seq are made through the server: see `add_api_edits`."""
    with_seq = [e for e in batch if e.get("seq") is not None]
    if with_seq and len(with_seq) != len(batch):
        raise MixedEdits("either every edit carries its seq (uploaded from a run) or none does")
    if batch and not with_seq:
        add_api_edits(conn, row, batch)
        return row.eseq
    if batch:
        insert_ignore(conn, edits, [{"run_pk": row.pk, "seq": e["seq"],
                                     "body": json.dumps(e)} for e in batch])
    eseq = max([row.eseq] + [e["seq"] for e in batch])
    if eseq != row.eseq:
        conn.execute(sa.update(runs).where(runs.c.pk == row.pk).values(
            eseq=eseq, updated=time.time()))
    return eseq


def add_api_edits(conn: Connection, row: RunRow, batch: list[dict]) -> None:
    """Store edits made through the server's API (`Api().run(...).update()` on a server run),
    numbered from API_EDIT_BASE up: they lie over the run's records and its uploaded edits,
    in the order they came, and are never folded into the run's log."""
    last = max(row.api_eseq, API_EDIT_BASE - 1)
    now = time.time()
    rows = []
    for e in batch:
        last += 1
        rows.append({"run_pk": row.pk, "seq": last,
                     "body": json.dumps({**e, "seq": last, "src": "server", "ts": now})})
    conn.execute(sa.insert(edits), rows)
    conn.execute(sa.update(runs).where(runs.c.pk == row.pk).values(api_eseq=last, updated=now))


# -- records out -----------------------------------------------------------------------------

PAGE_BYTES = 16 << 20  # a page of records stops growing past this many bytes


def record_page(conn: Connection, run_pk: int, after_seq: int, limit: int,
                max_bytes: int | None = None) -> tuple[bytes, int]:
    """Stored records with seq > after_seq as JSON lines (one body, built once): up to `limit`
    records and, past the first, no more once `max_bytes` (PAGE_BYTES) are in it; and the seq
    right after the last record in the page (after_seq + 1 when it is empty)."""
    max_bytes = PAGE_BYTES if max_bytes is None else max_bytes
    q = (sa.select(record_chunks.c.data).where(record_chunks.c.run_pk == run_pk,
                                                record_chunks.c.last_seq > after_seq)
         .order_by(record_chunks.c.first_seq))
    out = bytearray()
    n = 0
    last = after_seq
    for (data,) in conn.execute(q):
        for line in zlib.decompress(data).splitlines():
            seq = orjson.loads(line)["seq"]
            if seq <= after_seq:
                continue
            if n and len(out) + len(line) + 1 > max_bytes:
                return bytes(out), last + 1
            out += line
            out += b"\n"
            n += 1
            last = seq
            if n >= limit:
                return bytes(out), last + 1
    return bytes(out), last + 1


def iter_records(conn: Connection, run_pk: int) -> Iterator[dict]:
    q = (sa.select(record_chunks.c.data).where(record_chunks.c.run_pk == run_pk)
         .order_by(record_chunks.c.first_seq))
    for (data,) in conn.execute(q):
        for line in zlib.decompress(data).splitlines():
            yield orjson.loads(line)


def replayed(records: Iterator[dict]) -> Iterator[dict]:
    """The records a replay accepts, in order (what every reader replays)."""
    return replay_records(RunState(), records)


# -- the run as readers see it ---------------------------------------------------------------

def view_state(conn: Connection, row: RunRow) -> RunState:
    """The replayed state with uploaded edits the records do not hold yet on top."""
    base = load_state(row.state)
    if row.eseq <= base.eseq and not row.api_eseq:
        return base
    q = sa.select(edits.c.body).where(edits.c.run_pk == row.pk, edits.c.seq > base.eseq) \
        .order_by(edits.c.seq)
    pending = [json.loads(b) for b in conn.execute(q).scalars()]
    return base.with_edits([e for e in pending if e.get("t") in EDIT_TYPES])


def run_item_json(project: str, row: RunRow, state: RunState,
                  live_timeout: float = LIVE_TIMEOUT) -> str:
    """The run item as JSON text; `state` is `RunState.dump()` as it is (NaN, ±inf and
    integers beyond 64 bits written as Python's json module writes and reads them)."""
    head = json.dumps({"project": project, "id": row.run_id, "status": status(row, state, live_timeout),
                       "next_seq": row.next_seq, "eseq": row.eseq, "updated": row.updated})
    return head[:-1] + ', "state": ' + named(project, row, state).dump() + "}"


def named(project: str, row: RunRow, state: RunState) -> RunState:
    """`state` naming the run as its URL does (the row's project and id), whatever its records
    said (a copy when they differ)."""
    if state.id == row.run_id and state.project == project:
        return state
    s = copy.copy(state)
    s.id, s.project = row.run_id, project
    return s


def _timestamp(x) -> float:
    """A `created`/`updated` time as a finite float (0.0 for anything else)."""
    try:
        x = float(x) if type(x) in (int, float) else math.nan
    except OverflowError:
        return 0.0
    return x if math.isfinite(x) else 0.0


def _runtime(s: RunState) -> float | None:
    try:
        return s.runtime_at(_timestamp(s.updated))
    except TypeError:
        return None


def run_doc(project: str, row: RunRow, s: RunState, live_timeout: float = LIVE_TIMEOUT) -> dict:
    """The document filters and ordering see: the same fields as the local Api's runs (named
    by the row, as its URL names the run; a bad time in the records reads as 0)."""
    return query.run_doc(id=row.run_id, name=s.name, state=status(row, s, live_timeout),
                         group=s.group, job_type=s.job_type, tags=s.tags, notes=s.notes,
                         created=s.created, project=project, config=s.config,
                         summary=s.summary.to_dict(), runtime=_runtime(s), sweep=s.sweep)


def project_rows(conn: Connection, project_id: int) -> list[RunRow]:
    q = sa.select(runs).where(runs.c.project_id == project_id).order_by(runs.c.pk)
    return [_row(r) for r in conn.execute(q)]
