"""`nbtracker sync`: upload runs that are not being written any more — runs made offline
(`WANDB_MODE=dryrun`, then `wandb sync`), and what an online run could not upload before it
ended (a network cut, `finish(timeout=...)`, a killed process).

Each run resumes from its cursor (`upload.json`), so a run synced twice uploads nothing the
second time, and a sync that was interrupted goes on where it stopped. A run whose lock is held
is still being written by a live process and is skipped; that process uploads it itself.

The same code uploads, in the background, what earlier runs of a store left behind when a new
online run starts there (`upload_leftovers`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..store import layout
from ..store.lock import is_live
from ..store.recordlog import read_records
from ..store.store import EDITS_NAME, Store, read_edits
from .client import AuthError, Client, UploadError
from .cursor import Cursor
from .uploader import Uploader


@dataclass
class SyncResult:
    path: Path
    project: str = ""
    run_id: str = ""
    status: str = "synced"  # synced | skipped | failed
    records: int = 0
    files: int = 0
    left: int = 0
    reason: str | None = None
    server_down: bool = False  # the failure is the server's or the key's, not this run's
    notes: list[str] = field(default_factory=list)  # what the upload had to say (kept local, ...)

    def line(self) -> str:
        name = f"{self.project}/{self.run_id}" if self.run_id else str(self.path)
        if self.status == "skipped":
            return f"{name}: skipped, {self.reason}"
        sent = f"{self.records} record(s), {self.files} file(s) uploaded"
        if self.status == "failed":
            return f"{name}: failed after {sent}: {self.reason}" + \
                (f" ({self.left} record(s) left)" if self.left else "")
        if not self.records and not self.files:
            return f"{name}: already synced"
        return f"{name}: {sent}, synced"


def run_identity(run_dir: Path) -> tuple[str, str] | None:
    """(project, run id) from the run's first `run` record."""
    for rec in read_records(run_dir / layout.LOG_NAME):
        if rec.get("t") == "run" and isinstance(rec.get("id"), str) \
                and isinstance(rec.get("project"), str):
            return rec["project"], rec["id"]
    return None


def sync_run(run_dir: str | os.PathLike, client: Client, patience: float = 60.0) -> SyncResult:
    """Upload one run that is not live. Never raises for what the server or network does."""
    run_dir = Path(run_dir)
    res = SyncResult(run_dir)
    ident = run_identity(run_dir) if (run_dir / layout.LOG_NAME).is_file() else None
    if ident is None:
        res.status, res.reason = "failed", "not a run directory (no record log with a run record)"
        return res
    res.project, res.run_id = ident
    if is_live(run_dir):
        res.status, res.reason = "skipped", "still being written by a live process (it uploads itself)"
        return res
    up = Uploader(run_dir, res.project, res.run_id, client=client, say=res.notes.append)
    try:
        done = up.drain(patience=patience)
        if not done:
            res.status, res.reason = "failed", up.reason or "the server did not answer"
            res.server_down = True
    except UploadError as e:
        res.status, res.reason = "failed", e.reason
        res.server_down = isinstance(e, AuthError)
    except OSError as e:
        res.status, res.reason = "failed", f"cannot read the run ({e})"
    res.records, res.files = up.sent_records, up.sent_blobs
    if res.status == "failed":
        try:
            res.left = up.behind()
        except OSError:
            pass
    return res


def find_runs(root: Path, paths: Iterable[str] = (), all_runs: bool = False,
              project: str | None = None) -> list[Path]:
    """Run directories named on the command line (a directory, `project/id` or an id), or
    every run of the store (`all_runs`), optionally of one project only."""
    store = Store(root)
    found: list[Path] = []
    for p in paths:
        d = Path(p).expanduser()
        if (d / layout.LOG_NAME).is_file():
            found.append(d.resolve())
            continue
        proj, _, rid = p.rpartition("/") if "/" in p else (project, "", p)
        try:
            run = store.find(proj or None, rid)
        except ValueError:
            run = None
        if run is None:
            raise FileNotFoundError(f"no run at {p!r} (give a run directory, project/id or id)")
        found.append(run.path)
    if all_runs:
        found += store.run_dirs(project)
    if project and paths:
        found = [d for d in found if (run_identity(d) or ("",))[0] == project]
    return list(dict.fromkeys(found))


def needs_upload(run_dir: Path, base_url: str) -> bool:
    """Whether a run meant for `base_url` (its cursor says so) has records or edits the server
    does not hold yet. Cheap: sizes first, and the edits file only when it exists."""
    c = Cursor.load(run_dir)
    if c is None or c.base_url != base_url:
        return False
    try:
        if (run_dir / layout.LOG_NAME).stat().st_size > c.offset:
            return True
        if (run_dir / EDITS_NAME).exists():
            edits, _ = read_edits(run_dir)
            return any(e["seq"] > c.eseq for e in edits)
    except OSError:
        return False
    return False


_leftovers_running = threading.Lock()


def upload_leftovers(root: Path, base_url: str, api_key: str | None, exclude: Path,
                     debug: Callable[[str], None] = lambda msg: None,
                     patience: float = 15.0) -> int:
    """Upload what earlier runs of the store left for `base_url` (not live, cursor behind its
    log), one run after the other; stop at the first run the server cannot take. Returns how
    many runs were brought up to date. One at a time per process."""
    if not _leftovers_running.acquire(blocking=False):
        return 0
    done = 0
    client = None
    try:
        for d in Store(root).run_dirs():
            if d == exclude or not needs_upload(d, base_url) or is_live(d):
                continue
            if client is None:
                client = Client(base_url, api_key)
            res = sync_run(d, client, patience=patience)
            debug(f"upload of an earlier run: {res.line()}")
            if res.server_down:
                break
            done += res.status == "synced"
    except Exception as e:  # in the background: never surfaces in the notebook
        debug(f"upload of earlier runs stopped: {type(e).__name__}: {e}")
    finally:
        if client is not None:
            client.close()
        _leftovers_running.release()
    return done
