"""Store: the one reader path over run directories and the run index."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from . import layout
from .index import RunIndex
from .lock import is_live
from .recordlog import ReadReport, read_records
from .state import RunState


class StoredRun:
    """A run as read from disk: its replayed state, where it lives, and whether it is alive."""

    def __init__(self, path: Path, state: RunState, log_end: int, report: ReadReport | None):
        self.path = path
        self.state = state
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
    apply = state.apply
    for rec in read_records(path / layout.LOG_NAME, start, report, first_seq=state.last_seq + 1):
        apply(rec)
    return state, report.end, report


class Store:
    def __init__(self, root: str | os.PathLike):
        # absolute, as the index records run paths: a relative root would name runs twice
        self.root = Path(root).expanduser().resolve()
        self.index = RunIndex(self.root / "index.sqlite")

    # -- finding run directories -------------------------------------------------------
    def bases(self) -> list[Path]:
        bases = [self.root]
        try:
            bases += [Path(p) for p in self.index.roots() if Path(p) != self.root]
        except Exception:  # an unreadable index must not hide the runs
            pass
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
        log = path / layout.LOG_NAME
        try:
            size = log.stat().st_size
        except FileNotFoundError:
            return None
        if row is not None and row["blob"] and row["log_end"] <= size:
            state = RunState.load(row["blob"])
            if row["log_end"] == size:
                return StoredRun(path, state, size, None)
            state, end, report = replay(path, state, row["log_end"])
        else:
            state, end, report = replay(path)
        if not state.id:
            return None
        try:
            self.index.put(path, state.info(), end, state.dump())
        except Exception:
            pass  # a read-only or busy index only costs speed
        return StoredRun(path, state, end, report)

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
                self.index.delete(r["project"], r["id"])
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


def _subdirs(p: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(p) if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []
