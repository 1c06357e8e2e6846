"""RunIndex: a SQLite table of runs (identity, state, config, summary) derived from record logs.

It is a cache: each row remembers how far into the run's log it has replayed (`log_end`) and the
replay state at that point, so bringing it up to date reads only what was appended since. Delete
the file and `nbtracker reindex` (or the next read) rebuilds it from the logs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    project   TEXT NOT NULL,
    id        TEXT NOT NULL,
    path      TEXT NOT NULL,
    name      TEXT,
    grp       TEXT,
    job_type  TEXT,
    tags      TEXT,
    state     TEXT,
    created   REAL,
    updated   REAL,
    log_end   INTEGER NOT NULL DEFAULT 0,
    blob      TEXT,
    PRIMARY KEY (project, id)
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (project, created);
CREATE TABLE IF NOT EXISTS roots (path TEXT PRIMARY KEY);
"""


class RunIndex:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._local = threading.local()

    @property
    def db(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                con = self._open()
            except sqlite3.DatabaseError:
                # a damaged index (or one deleted under its -wal file) is only a cache of the
                # record logs: start it again, and it fills up as runs are read
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.remove(f"{self.path}{suffix}")
                    except FileNotFoundError:
                        pass
                con = self._open()
            self._local.con = con
        return con

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.executescript(SCHEMA)
        except sqlite3.DatabaseError:
            con.close()
            raise
        return con

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    def put(self, path: str | os.PathLike, info: dict, log_end: int, blob: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO runs (project, id, path, name, grp, job_type, tags, state,"
            " created, updated, log_end, blob) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (info["project"], info["id"], str(path), info["name"], info["group"],
             info["job_type"], json.dumps(info["tags"]), info["state"], info["created"],
             info["updated"] or time.time(), log_end, blob),
        )

    def rows(self, project: str | None = None) -> list[sqlite3.Row]:
        con = self.db
        con.row_factory = sqlite3.Row
        if project is None:
            return con.execute("SELECT * FROM runs ORDER BY created").fetchall()
        return con.execute(
            "SELECT * FROM runs WHERE project = ? ORDER BY created", (project,)
        ).fetchall()

    def delete(self, project: str, run_id: str) -> None:
        self.db.execute("DELETE FROM runs WHERE project = ? AND id = ?", (project, run_id))

    def count(self, project: str) -> int:
        return self.db.execute("SELECT count(*) FROM runs WHERE project = ?", (project,)).fetchone()[0]

    def add_root(self, path: str | os.PathLike) -> None:
        self.db.execute("INSERT OR IGNORE INTO roots (path) VALUES (?)", (str(path),))

    def roots(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT path FROM roots").fetchall()]

    def clear(self) -> None:
        self.db.execute("DELETE FROM runs")
