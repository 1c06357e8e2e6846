"""Uploader: brings a team server up to date with one run's record log, exactly once.

The protocol (the server's side is in `nbtracker/server/`):

1. `PUT .../runs/{id}` creates the run if need be and answers the server's `next_seq` (the
   sequence number it expects next), `eseq` (the highest edit it holds) and the blobs it has.
   The cursor (`cursor.py`) is set to the server's word: reading resumes at the record
   `next_seq` (found by scanning the log when the saved offset does not match).
2. Complete lines are read from the cursor's offset and sent as they are, in batches of at most
   `MAX_RECORDS` records and `MAX_BYTES` bytes: `{"first_seq": <cursor next_seq>, "records":
   [...]}`. Files the batch names (a `file` record's `files/<path>`; a logged image, html or
   table `{"_type": ..., "path": "media/...", "sha256": ...}`, and the files such a reference
   holds: a table's `refs`, an image's `masks`, a media list's `items`) go up first, unless
   the server has them.
3. The server stores what it does not have yet and answers its new `next_seq`; the cursor is
   saved after every such answer. A 409 (the server expects an earlier or later record) moves
   the cursor to the sequence the server names. Connection errors, 5xx and 429 are retried
   with exponential backoff and full jitter (`backoff`), never sooner than `Retry-After` says.
   401/403 and other 4xx stop the uploader with one line; the run goes on logging locally and
   `nbtracker sync` uploads the rest later.
4. Edits (`edits.jsonl`) the server does not hold are posted the same way (`POST .../edits`).

Whatever fails between two steps, resending is harmless (the server drops what it has) and
nothing is skipped (it refuses a gap), so the server ends with exactly the records of the log.

`Uploader.start()` follows a live run from a daemon thread: no network call ever happens on the
thread that logs, and `close(timeout)` waits at most `timeout` for the end of the log.
`Uploader.drain()` does the same work in the calling thread (`nbtracker sync`).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..store import layout
from ..store.recordlog import loads
from ..store.store import EDITS_NAME, read_edits
from .client import AuthError, Client, Conflict, Fatal, Retryable, UploadError
from .credentials import normalise_url
from .cursor import Cursor, find_offset, fingerprint, last_seq_in, offset_ok

MAX_RECORDS = 1000
MAX_BYTES = 1 << 20
MAX_EDITS = 1000
POLL = 0.25  # seconds between looks at a live log with nothing new
HEARTBEAT = 30.0  # seconds between "still alive" words to the server from a live run
BACKOFF_BASE = 0.5
BACKOFF_CAP = 30.0
RETRY_AFTER_CAP = 600.0  # a Retry-After longer than this is taken as this
_ENVELOPE = 64  # bytes of `{"first_seq":...,"records":[...]}` around the lines


def backoff(attempt: int, retry_after: float | None = None, base: float | None = None,
            cap: float | None = None,
            rand: Callable[[float, float], float] = random.uniform) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): full jitter, uniform in
    [0, min(cap, base * 2**(attempt-1))] (base BACKOFF_BASE, cap BACKOFF_CAP), and never less
    than the server's Retry-After."""
    base = BACKOFF_BASE if base is None else base
    cap = BACKOFF_CAP if cap is None else cap
    delay = rand(0.0, min(cap, base * 2 ** min(attempt - 1, 30)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
    return delay


@dataclass
class Batch:
    lines: list[bytes] = field(default_factory=list)
    first_seq: int = 0  # seq of the first record sent
    last_seq: int = 0  # seq of the last record sent
    end: int = 0  # byte offset just past the last line read
    blobs: list[tuple[str, str]] = field(default_factory=list)  # (sha256, path in the run dir)


def read_batch(log_path: str | os.PathLike, offset: int, next_seq: int,
               max_records: int = MAX_RECORDS, max_bytes: int = MAX_BYTES) -> Batch:
    """The next batch of complete lines from byte `offset` (records below `next_seq`, lines
    that do not parse and an unfinished last line are not sent; skipped lines still move `end`).
    A batch holds at least one record when there is one, even a single record above
    `max_bytes` (the server then decides)."""
    batch = Batch(end=offset)
    budget = max_bytes - _ENVELOPE
    try:
        f = open(log_path, "rb")
    except FileNotFoundError:
        return batch
    with f:
        f.seek(offset)
        data = f.read(max_bytes)
        if data and b"\n" not in data:  # one line longer than a batch: read it whole
            more = f.readline()
            data += more
    pos, size, last = 0, 0, next_seq - 1
    n = len(data)
    while pos < n and len(batch.lines) < max_records:
        nl = data.find(b"\n", pos)
        if nl == -1:
            break
        line = data[pos:nl]
        try:
            rec = loads(line)
            seq = rec.get("seq") if type(rec) is dict and "t" in rec else None
        except ValueError:
            seq = None
        if type(seq) is not int or seq <= last:  # corrupt, or already sent / acknowledged
            pos = nl + 1
            batch.end = offset + pos
            continue
        if batch.lines and size + len(line) + 1 > budget:
            break
        batch.lines.append(line)
        size += len(line) + 1
        if not batch.first_seq:
            batch.first_seq = seq
        batch.last_seq = last = seq
        _blob_refs(rec, batch.blobs)
        pos = nl + 1
        batch.end = offset + pos
    return batch


def _blob_refs(rec: dict, out: list) -> None:
    """Files a record names: a saved file, or media references in its values."""
    if rec.get("t") == "file":
        sha, path = rec.get("sha256"), rec.get("path")
        if isinstance(sha, str) and isinstance(path, str):
            out.append((sha, f"{layout.FILES_DIR}/{path}"))
        return
    d = rec.get("d")
    if isinstance(d, dict):
        _media_refs(d, out, 0)


def _media_refs(value, out: list, depth: int) -> None:
    """Every file a media reference names, nested ones too: a table's `refs` (its media
    cells), an image's `masks` (plain {"path", "sha256"} dicts), a media list's `items`."""
    if depth > 12:
        return
    if isinstance(value, dict):
        sha, path = value.get("sha256"), value.get("path")
        if isinstance(sha, str) and isinstance(path, str) and (
                "_type" in value or path.startswith("media/")):
            out.append((sha, path))
        for v in value.values():
            if isinstance(v, (dict, list)):
                _media_refs(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value:
            if isinstance(v, (dict, list)):
                _media_refs(v, out, depth + 1)


class Uploader:
    """Uploads the run in `run_dir` (project `project`, id `run_id`) to the server at
    `base_url` with `api_key` (or through `client`). Making one does no network call and does
    not import `requests`: the client is made on first use, on the uploading thread.

    `last_seq`, when given, says how many records the log holds (the live run's writer knows
    without reading the file); `say` prints one line to the user, `debug` writes details.
    """

    def __init__(self, run_dir: str | os.PathLike, project: str, run_id: str, *,
                 base_url: str | None = None, api_key: str | None = None,
                 client: Client | None = None,
                 last_seq: Callable[[], int] | None = None,
                 say: Callable[[str], None] | None = None,
                 debug: Callable[[str], None] | None = None,
                 live: bool = False):
        self.run_dir = Path(run_dir)
        self.log_path = self.run_dir / layout.LOG_NAME
        self._client = client
        self._api_key = api_key
        self.base_url = client.base_url if client is not None else normalise_url(base_url or "")
        self.project = project
        self.run_id = run_id
        self._last_seq = last_seq
        self.live = live  # the run's own process (else its process is gone: sync, leftovers)
        self._beat = 0.0  # time.monotonic() of the last word to the server about that
        self._say = say or (lambda msg: None)
        self._debug = debug or (lambda msg: None)
        c = Cursor.load(self.run_dir)
        if c is None or (c.base_url, c.project, c.run_id) != (self.base_url, project, run_id):
            # a run meant for this server: `nbtracker sync` and the store's next run find it
            c = Cursor(self.base_url, project, run_id)
            c.save(self.run_dir)
        self.cursor = c
        self.state = "behind"
        self.reason: str | None = None
        self.sent_records = 0
        self.sent_blobs = 0
        self._connected = False
        self._reconnected = False
        self._blobs: set[str] = set()  # on the server
        self._unreadable: set[str] = set()  # named by a record, but gone or changed here
        self._one_by_one = 0  # byte offset up to which records go one per batch
        self._edits_seen = -1  # size of edits.jsonl when last found with nothing to send
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._closing = False
        self._stop = False
        self._done = threading.Event()

    @property
    def client(self) -> Client:
        if self._client is None:
            from .client import Client

            self._client = Client(self.base_url, self._api_key)
        return self._client

    def __repr__(self) -> str:
        return f"<Uploader {self.project}/{self.run_id} -> {self.base_url} {self.state}>"

    # -- the live run's thread -----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name=f"nbtracker-upload-{self.run_id}",
                                        daemon=True)
        self._thread.start()

    def close(self, timeout: float) -> bool:
        """The log is complete: upload what is left, waiting at most `timeout` seconds. Returns
        whether everything is on the server; the thread stops either way."""
        self._closing = True
        self._wake.set()
        done = self._done.wait(max(0.0, timeout)) if self._thread is not None else False
        self._stop = True
        self._wake.set()
        return done and self.state == "synced"

    def _follow(self) -> None:
        attempt = 0
        try:
            while not self._stop:
                closing = self._closing
                try:
                    progressed = self._step()
                    attempt = 0
                except Conflict as e:
                    self._rewind(e.next_seq)
                    continue
                except Retryable as e:
                    attempt += 1
                    self._set("offline", e.reason)
                    self._debug(f"upload: {e.reason}; retry {attempt}")
                    self._wait(backoff(attempt, e.retry_after))
                    continue
                except OSError as e:  # reading the log or a file: try again later
                    attempt += 1
                    self._set("offline", f"cannot read the run's files ({e})")
                    self._wait(backoff(attempt))
                    continue
                if progressed:
                    continue
                if closing:
                    return
                self._heartbeat()
                self._wait(POLL)
        except Exception as e:  # refused (AuthError, Fatal), or a bug: never the training loop's
            self._stop_with(e)
        finally:
            self._done.set()

    def _heartbeat(self) -> None:
        """Tell the server every HEARTBEAT seconds that the run's process is alive (the server
        calls a running run it has not heard from for a while crashed)."""
        if self.live and time.monotonic() - self._beat >= HEARTBEAT:
            self.client.upsert_run(self.project, self.run_id, live=True)
            self._beat = time.monotonic()

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _stop_with(self, e: Exception) -> None:
        reason = e.reason if isinstance(e, UploadError) else f"{type(e).__name__}: {e}"
        self._set("error", reason)
        self._say(f"upload stopped: {reason}; logging goes on locally — "
                  f"`nbtracker sync {self.run_dir}` uploads the rest later")

    # -- calling thread: nbtracker sync -------------------------------------------------
    def drain(self, patience: float = 60.0, deadline: float | None = None) -> bool:
        """Upload everything in the calling thread. Transient failures are retried until no
        progress was made for `patience` seconds (or `deadline`, a time.monotonic(), passes).
        Returns whether the server has it all; raises UploadError when the server refuses."""
        attempt = 0
        last_progress = time.monotonic()
        while True:
            try:
                if not self._step():
                    return True
                attempt = 0
                last_progress = time.monotonic()
            except Conflict as e:
                self._rewind(e.next_seq)
            except Retryable as e:
                attempt += 1
                self._set("offline", e.reason)
                wait = backoff(attempt, e.retry_after)
                now = time.monotonic()
                if now + wait - last_progress > patience or (deadline and now + wait > deadline):
                    return False
                time.sleep(wait)
            except (AuthError, Fatal) as e:
                self._set("error", e.reason)
                raise

    # -- one step ---------------------------------------------------------------------
    def _step(self) -> bool:
        """Send one batch of records (or of edits). Returns False when there was nothing to send."""
        if not self._connected:
            self._connect()
        c = self.cursor
        # after a batch the server refused as a whole, its records go one by one, so that
        # only the one it cannot take stays behind
        single = c.offset < self._one_by_one
        batch = read_batch(self.log_path, c.offset, c.next_seq, 1 if single else MAX_RECORDS,
                           MAX_BYTES)
        if batch.lines:
            self._upload_blobs(batch.blobs)
            try:
                next_seq = self.client.post_records(self.project, self.run_id, c.next_seq,
                                                    batch.lines)
            except Fatal as e:
                if e.status in (413, 422) and len(batch.lines) == 1:
                    return self._skip_record(batch, e.reason)
                if e.status in (413, 422):
                    self._one_by_one = batch.end
                    return True
                if e.status != 404 or self._reconnected:
                    raise
                # the server no longer knows the run (a database restored from before it):
                # upsert it again, which says where to resume
                self._connected, self._reconnected = False, True
                raise Retryable(e.reason, 404) from None
            if next_seq <= batch.last_seq:  # it kept less than it was sent: ask again from there
                raise Conflict(f"the server expects record {next_seq}", next_seq)
            c.next_seq, c.offset = next_seq, batch.end
            c.save(self.run_dir)
            self.sent_records += len(batch.lines)
            self._set("behind", None)
            return True
        if batch.end != c.offset:  # only lines that carry nothing to send (corrupt, duplicate)
            c.offset = batch.end
            c.save(self.run_dir)
            return True
        sent = self._send_edits()
        if not sent:
            self._set("synced", None)
        return sent

    def _connect(self) -> None:
        if self._client is None and not self._api_key:
            raise AuthError(f"no API key for {self.base_url} (`nbtracker login --host "
                            f"{self.base_url}` stores one)")
        info = self.client.upsert_run(self.project, self.run_id, live=self.live,
                                      fingerprint=fingerprint(self.log_path))
        self._beat = time.monotonic()
        next_seq, eseq = info.get("next_seq"), info.get("eseq", 0)
        if type(next_seq) is not int or type(eseq) is not int:
            raise Retryable("the server's answer to the run upsert is not understood")
        blobs = info.get("blobs") or []
        self._blobs.update(b for b in blobs if isinstance(b, str))
        c = self.cursor
        last = self._last_seq() if self._last_seq is not None else last_seq_in(self.log_path)
        if next_seq > last + 1:
            # the server holds records this log never had: another run with this id
            raise Fatal(f"the server holds records up to {next_seq - 1} of run {self.run_id}, "
                        f"this log only up to {last}: is another run using this id?", 409)
        if next_seq != c.next_seq or not offset_ok(self.log_path, c.offset):
            c.next_seq, c.offset = next_seq, find_offset(self.log_path, next_seq)
        c.eseq = eseq
        c.save(self.run_dir)
        self._connected = True

    def _rewind(self, next_seq: int) -> None:
        """The server expects `next_seq`: go back (or forward) to it in the log."""
        c = self.cursor
        self._debug(f"upload: the server expects record {next_seq} (cursor at {c.next_seq}); "
                    "resuming from there")
        c.next_seq, c.offset = next_seq, find_offset(self.log_path, next_seq)
        c.save(self.run_dir)

    def _skip_record(self, batch: Batch, reason: str) -> bool:
        """One record the server cannot take (too large, or refused as malformed): it stays in
        the local log only; the records after it go up (a batch may skip seqs)."""
        c = self.cursor
        c.offset = batch.end
        c.save(self.run_dir)
        self._say(f"record {batch.first_seq} of run {self.run_id} was refused by the server "
                  f"({reason}); it is kept in the local log only")
        return True

    def _upload_blobs(self, refs: list[tuple[str, str]]) -> None:
        root = self.run_dir.resolve()
        for sha, rel in refs:
            if sha in self._blobs or sha in self._unreadable:
                continue
            path = (self.run_dir / rel).resolve()
            # a path in a record is a label: only files inside the run directory go up
            if not path.is_relative_to(root) or not path.is_file():
                self._unreadable.add(sha)
                self._debug(f"upload: file {rel!r} is not in the run directory; not uploaded")
                continue
            if layout.sha256_file(path) != sha:
                self._unreadable.add(sha)  # replaced since it was recorded (a newer save)
                self._debug(f"upload: file {rel!r} changed since it was recorded; not uploaded")
                continue
            try:
                self.client.put_blob(self.project, self.run_id, sha, path)
            except Fatal as e:
                if e.status != 413:
                    raise
                self._unreadable.add(sha)  # the records naming it still go up
                self._say(f"file {rel!r} of run {self.run_id} is larger than the server "
                          f"accepts ({e.reason}); it is kept locally only")
                continue
            self._blobs.add(sha)
            self.sent_blobs += 1

    def _send_edits(self) -> bool:
        try:
            size = os.stat(self.run_dir / EDITS_NAME).st_size
        except FileNotFoundError:
            return False
        if size == self._edits_seen:
            return False
        c = self.cursor
        edits, _ = read_edits(self.run_dir)
        pending = [e for e in edits if e["seq"] > c.eseq][:MAX_EDITS]
        if not pending:
            self._edits_seen = size
            return False
        eseq = self.client.post_edits(self.project, self.run_id, pending)
        c.eseq = eseq
        c.save(self.run_dir)
        if eseq < pending[-1]["seq"]:
            raise Retryable(f"the server holds edits up to {eseq}, not {pending[-1]['seq']}")
        return True

    # -- state --------------------------------------------------------------------------
    def _set(self, state: str, reason: str | None) -> None:
        self.state, self.reason = state, reason

    def behind(self) -> int:
        """Records in the log the server does not have yet (as far as this uploader knows)."""
        if self._last_seq is not None:
            return max(0, self._last_seq() - (self.cursor.next_seq - 1))
        try:
            size = os.stat(self.log_path).st_size
        except OSError:
            return 0
        if size <= self.cursor.offset:
            return 0
        b = read_batch(self.log_path, self.cursor.offset, self.cursor.next_seq,
                       max_records=1 << 62, max_bytes=max(size - self.cursor.offset + 1, 1))
        return len(b.lines)

    def status(self) -> dict:
        """`{"state": "synced"|"behind"|"offline"|"error", "behind": n, "reason": str|None}`."""
        behind = self.behind()
        state = self.state
        if state in ("synced", "behind"):
            state = "synced" if behind == 0 else "behind"
        return {"state": state, "behind": behind, "reason": self.reason}
