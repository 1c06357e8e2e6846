"""Store: the one reader path over run directories and the run index.

What a reader shows of a run is the replay of its record log with the run's pending edits on top.

**Edits** (`Api().run(...).update()`) never write into a live run's log, which has one writer.
They are appended to `<run dir>/edits.jsonl`, beside the log: records of the same shapes (`t` is
`config`, `summary` or `meta`, with `"src": "api"` and a `ts`) and their own dense sequence
number `seq` (1, 2, ...), each batch written with one `os.write` under a short flock on that
file. Whoever next opens the run for writing — the Api itself when the run is not live, or
`init()` resuming it — folds the edits the log does not hold yet into the log, in order, as
records carrying `"eseq": <the edit's seq>`. Readers overlay only edits with a higher `seq` than
the highest `eseq` in the log (`RunState.with_edits`).

The order this gives: an edit applies after everything the log holds when the edit is folded
in. So while a run is live, an edit wins over the run's own writes of the same field; once the
run is reopened (resumed), the log alone is complete again and the run's later writes win.

**Extra roots**: a run started with `init(dir=D)` lives under `D/nbtracker/`. The store root
lists such places in `<root>/roots`, one absolute path a line, append-only (`add_root`), so that
losing the run index loses no run.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path

from . import layout
from .index import RunIndex
from .lock import RunInUse, RunLock, is_live
from .recordlog import ReadReport, RecordWriter, encode, read_records, repair_tail
from .state import EDIT_TYPES, STATES, RunState, replay_records

EDITS_NAME = "edits.jsonl"
ROOTS_NAME = "roots"


class StoredRun:
    """A run as read from disk: its replayed state (with pending edits), where it lives, and
    whether it is alive. `base` is the replay of the log alone (what the index caches)."""

    def __init__(self, path: Path, state: RunState, log_end: int, report: ReadReport | None,
                 base: RunState | None = None):
        self.path = path
        self.state = state
        self.base = base if base is not None else state
        self.log_end = log_end
        self.report = report
        st = state.state
        if st == "running" and not is_live(path):
            st = "crashed"
        self.status = st

    @property
    def log_path(self) -> Path:
        return self.path / layout.LOG_NAME


def replay(path: Path, state: RunState | None = None, start: int = 0) -> tuple[RunState, int, ReadReport]:
    """Bring `state` (a replay of the log up to byte `start`) up to the end of the log."""
    state = state if state is not None else RunState()
    report = ReadReport()
    records = read_records(path / layout.LOG_NAME, start, report, first_seq=state.last_seq + 1)
    # a record of a shape this version does not know is reported like a corrupt line
    for _ in replay_records(state, records, lambda rec: report.malformed.append(rec["seq"])):
        pass
    return state, report.end, report


# -- edits -------------------------------------------------------------------------------------

def read_edits(path: Path) -> tuple[list[dict], int]:
    """The edit records of a run and the byte offset just past the last whole one."""
    report = ReadReport()
    edits = [r for r in read_records(path / EDITS_NAME, 0, report) if r["t"] in EDIT_TYPES]
    return edits, report.end


def append_edits(path: Path, records: list[dict], after: int = 0) -> int:
    """Append edit records to the run's `edits.jsonl` (never its log); returns the last seq.

    `after` is the highest edit seq the run's log holds: numbering continues above it even if
    the edits file was removed."""
    fd = os.open(path / EDITS_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        repair_tail(path / EDITS_NAME)  # a torn edit from a killed process
        last = max([after] + [r["seq"] for r in read_records(path / EDITS_NAME)])
        now = time.time()
        buf = b""
        for rec in records:
            last += 1
            buf += encode({**rec, "src": "api", "ts": now, "seq": last})
        os.write(fd, buf)
        os.fsync(fd)
        return last
    finally:
        os.close(fd)  # drops the flock


def fold_edits(path: Path, state: RunState) -> int:
    """Append the edits the log does not hold yet to the log, as records carrying `eseq`, and
    apply them to `state` (a replay of the whole log). The caller holds the run's lock and has
    cut a torn tail off the log. Returns how many were folded."""
    edits, _ = read_edits(path)
    pending = [e for e in edits if e["seq"] > state.eseq]
    if not pending:
        return 0
    w = RecordWriter(path / layout.LOG_NAME, state.last_seq + 1)
    try:
        for e in pending:
            rec = {k: v for k, v in e.items() if k != "seq"}
            rec["eseq"] = e["seq"]
            w.append(rec)
            for _ in replay_records(state, [rec]):  # skipped if of a shape not known here
                pass
    finally:
        w.close()
    return len(pending)


# -- extra roots -------------------------------------------------------------------------------

def read_roots(root: Path) -> list[Path]:
    try:
        text = (Path(root) / ROOTS_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    return [Path(line) for line in dict.fromkeys(text.splitlines()) if line.strip()]


def add_root(root: Path, base: str | os.PathLike) -> None:
    """Remember that runs live under `base` too (for `init(dir=...)`)."""
    base = Path(base).resolve()
    if base in read_roots(root):
        return
    Path(root).mkdir(parents=True, exist_ok=True)
    fd = os.open(Path(root) / ROOTS_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{base}\n".encode())
    finally:
        os.close(fd)


class Store:
    def __init__(self, root: str | os.PathLike):
        # absolute, as the index records run paths: a relative root would name runs twice
        self.root = Path(root).expanduser().resolve()
        self.index = RunIndex(self.root / "index.sqlite")

    # -- finding run directories -------------------------------------------------------
    def bases(self) -> list[Path]:
        bases = [self.root]
        extra = read_roots(self.root)
        try:
            legacy = [Path(p) for p in self.index.roots()]
        except Exception:  # an unreadable index must not hide the runs
            legacy = []
        for p in legacy:  # remembered by an older version in the index only
            if p not in extra:
                try:
                    add_root(self.root, p)
                except OSError:
                    pass
                extra.append(p)
        bases += [p for p in extra if p != self.root]
        return bases

    def run_dirs(self, project: str | None = None) -> list[Path]:
        found = []
        for base in self.bases():
            runs = base / "runs"
            folders = [runs / layout.project_folder(project)] if project else _subdirs(runs)
            for folder in folders:
                for d in _subdirs(folder):
                    if (d / layout.LOG_NAME).exists():
                        found.append(d)
        return found

    # -- reading -----------------------------------------------------------------------
    def load(self, path: Path, row=None) -> StoredRun | None:
        try:
            size = (path / layout.LOG_NAME).stat().st_size
        except FileNotFoundError:
            return None
        base, log_end, cached = self._cached(row, size)
        report = None
        if log_end != size:
            base, end, report = replay(path, base, log_end)
        else:
            end = size
        if not base.id:
            return None
        edits, edits_end = read_edits(path)
        state = base.with_edits(edits)
        if report is not None or not cached or row["edits_end"] != edits_end:
            try:
                self.index.put(path, state.info(), end, base.dump(), edits_end)
            except Exception:
                pass  # a read-only or busy index only costs speed
        return StoredRun(path, state, end, report, base)

    @staticmethod
    def _cached(row, size: int) -> tuple[RunState, int, bool]:
        """The replay state an index row caches, and the log offset it stands at."""
        if row is None or not row["blob"] or row["log_end"] > size:
            return RunState(), 0, False
        try:
            state = RunState.load(row["blob"])
        except (ValueError, TypeError, KeyError):
            return RunState(), 0, False
        return state, row["log_end"], True

    def runs(self, project: str | None = None) -> list[StoredRun]:
        rows = {}
        try:
            for r in self.index.rows(project):
                rows[r["path"]] = r
        except Exception:
            pass
        out = []
        seen = set()
        for d in self.run_dirs(project):
            key = str(d)
            seen.add(key)
            run = self.load(d, rows.get(key))
            if run is not None and (project is None or run.state.project == project):
                out.append(run)
        # runs living outside the known roots (init(dir=...) before the root was registered)
        for key, r in rows.items():
            if key not in seen and Path(key, layout.LOG_NAME).exists():
                run = self.load(Path(key), r)
                if run is not None:
                    out.append(run)
            elif key not in seen:
                try:
                    self.index.delete(r["project"], r["id"])
                except Exception:
                    pass  # a read-only or busy index only keeps a stale row
        out.sort(key=lambda r: r.state.created)
        return out

    def find(self, project: str | None, run_id: str) -> StoredRun | None:
        layout.check_run_id(run_id)
        candidates = []
        if project:
            for base in self.bases():
                candidates.append(layout.run_dir(base, project, run_id))
        try:
            con = self.index.db
            q = "SELECT path FROM runs WHERE id = ?" + (" AND project = ?" if project else "")
            args = (run_id, project) if project else (run_id,)
            candidates += [Path(r[0]) for r in con.execute(q, args).fetchall()]
        except Exception:
            pass
        for c in candidates:
            run = self.load(c, self._row(c))
            if run is not None and (project is None or run.state.project == project):
                return run
        if project is None:
            for d in self.run_dirs():
                if d.name == run_id:
                    return self.load(d, self._row(d))
        return None

    def end_run(self, path: Path, state: str, exit_code: int | None = None) -> bool:
        """Give a run whose process is gone its final state: an exit record appended to its log
        through the one writer (the state replay takes is the last exit's; a run that had ended
        is given the new one). Used by a sweep agent for the trial it stopped. False, changing
        nothing, while a process holds the run (see store.lock) or when it has no log. The log
        is read from where the index's cached state stands, not replayed whole."""
        assert state in STATES and state != "running"
        log = path / layout.LOG_NAME
        if not log.exists():
            return False
        lock = RunLock(path)
        try:
            lock.acquire(timeout=0.5)
        except RunInUse:
            return False
        try:
            repair_tail(log)
            stored = self.load(path, self._row(path))
            if stored is None:
                return False
            w = RecordWriter(log, stored.base.last_seq + 1)
            rec: dict = {"t": "exit", "state": state}
            if exit_code is not None:
                rec["exit_code"] = int(exit_code)
            try:
                w.append(rec)
                w.sync()
            finally:
                w.close()
            return True
        finally:
            lock.release()

    def reload(self, path: Path) -> StoredRun | None:
        """The run in `path` as it is now (the index brought up to date on the way)."""
        return self.load(path, self._row(path))

    def _row(self, path: Path):
        try:
            con = self.index.db
            con.row_factory = sqlite3.Row
            return con.execute("SELECT * FROM runs WHERE path = ?", (str(path),)).fetchone()
        except Exception:
            return None

    def projects(self) -> list[str]:
        return sorted({r.state.project for r in self.runs()})

    def reindex(self) -> list[StoredRun]:
        """Rebuild the index from the record logs."""
        self.index.clear()
        return self.runs()

    # -- editing -----------------------------------------------------------------------
    def fold_pending_edits(self, path: Path) -> bool:
        """Fold the run's pending edits into its log now, unless the run is live (its writer
        folds them when it is next opened). Returns True when the log holds them all."""
        lock = RunLock(path)
        try:
            lock.acquire(timeout=0)
        except RunInUse:
            return False
        try:
            repair_tail(path / layout.LOG_NAME)
            stored = self.load(path, self._row(path))
            if stored is not None:
                fold_edits(path, stored.base)
        finally:
            lock.release()
        return True


def _subdirs(p: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(p) if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
