"""RunIndex: a SQLite table of runs (identity, state, config, summary) derived from record logs.

It is a cache: each row remembers how far into the run's log it has replayed (`log_end`) and the
replay state at that point (`blob`), so bringing it up to date reads only what was appended
since. The identity columns (name, tags, ...) show the run with its pending edits overlaid, as of
`edits_end` bytes of its `edits.jsonl`. `steps` and `last_step` are how many distinct steps hold
a history row and the largest of them (the set itself is in the blob).
Delete the file and `nbtracker reindex` (or the next read) rebuilds it from the logs; nothing
lives only here (extra store roots are listed in the `roots` file, see `store.py`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

VERSION = 3  # PRAGMA user_version; an index of another version is started again
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
    project    TEXT NOT NULL,
    id         TEXT NOT NULL,
    path       TEXT NOT NULL,
    name       TEXT,
    grp        TEXT,
    job_type   TEXT,
    tags       TEXT,
    state      TEXT,
    created    REAL,
    updated    REAL,
    log_end    INTEGER NOT NULL DEFAULT 0,
    blob       TEXT,
    edits_end  INTEGER NOT NULL DEFAULT 0,
    steps      INTEGER,
    last_step  INTEGER,
    PRIMARY KEY (project, id)
)""",
    "CREATE INDEX IF NOT EXISTS runs_created ON runs (project, created)",
)
_PUT = """
INSERT OR REPLACE INTO runs (project, id, path, name, grp, job_type, tags, state, created, updated,
                             log_end, blob, edits_end, steps, last_step)
VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
"""


class RunIndex:
    """The run index at `path`. Connections are per thread and shared by every RunIndex of the
    same file in the process; one whose file was deleted or replaced (a user's `rm`, another
    process starting a damaged index again) is let go and the file opened anew, since writing
    on through it would only feed a file nobody reads, and its stale -wal would poison the new
    one. Errors other than a busy lock start the index again: it is a cache of the logs."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @property
    def db(self) -> sqlite3.Connection:
        conns = _connections()
        key = str(self.path)
        held = conns.get(key)
        if held is not None:
            if _inode(self.path) == held[1]:
                conns[key] = conns.pop(key)  # the most recently used last
                return held[0]
            del conns[key]
            _close(held[0])
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = self._open()
        except sqlite3.DatabaseError:
            # a damaged index (or one deleted under its -wal file) is only a cache of the
            # record logs: start it again, and it fills up as runs are read
            self._remove_files()
            con = self._open()
        conns[key] = (con, _inode(self.path))
        while len(conns) > _MAX_OPEN:  # a process reading many stores keeps a few open
            _close(conns.pop(next(iter(conns)))[0])
        return con

    def _retry(self, fn):
        """`fn(con)`, started again on a fresh index if the file turns out damaged."""
        try:
            return fn(self.db)
        except sqlite3.DatabaseError as e:
            if "locked" in str(e) or "busy" in str(e):
                raise
            self.close()
            self._remove_files()
            return fn(self.db)

    def _open(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            if con.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                self._migrate(con)
        except sqlite3.DatabaseError:
            con.close()
            raise
        return con

    @staticmethod
    def _migrate(con: sqlite3.Connection) -> None:
        """Start the runs table again in the current shape (it refills from the logs)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            if con.execute("PRAGMA user_version").fetchone()[0] != VERSION:
                con.execute("DROP TABLE IF EXISTS runs")
                for stmt in SCHEMA:
                    con.execute(stmt)
                con.execute(f"PRAGMA user_version = {VERSION}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _remove_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(f"{self.path}{suffix}")
            except FileNotFoundError:
                pass

    def close(self) -> None:
        held = _connections().pop(str(self.path), None)
        if held is not None:
            _close(held[0])

    def put(self, path: str | os.PathLike, info: dict, log_end: int, blob: str,
            edits_end: int = 0) -> None:
        """Store a run's replay state at byte `log_end` of its log (and of `edits_end` of its
        edits file)."""
        self._retry(lambda con: con.execute(_PUT, (
            info["project"], info["id"], str(path), info["name"], info["group"],
            info["job_type"], json.dumps(info["tags"]), info["state"], info["created"],
            info["updated"] or time.time(), log_end, blob, edits_end, info["steps"],
            info["last_step"])))

    def rows(self, project: str | None = None) -> list[sqlite3.Row]:
        def select(con: sqlite3.Connection) -> list[sqlite3.Row]:
            con.row_factory = sqlite3.Row
            if project is None:
                return con.execute("SELECT * FROM runs ORDER BY created").fetchall()
            return con.execute(
                "SELECT * FROM runs WHERE project = ? ORDER BY created", (project,)
            ).fetchall()
        return self._retry(select)

    def delete(self, project: str, run_id: str) -> None:
        self.db.execute("DELETE FROM runs WHERE project = ? AND id = ?", (project, run_id))

    def count(self, project: str) -> int:
        return self.db.execute("SELECT count(*) FROM runs WHERE project = ?", (project,)).fetchone()[0]

    def roots(self) -> list[str]:
        """Store roots an older version remembered here (now kept in the `roots` file)."""
        try:
            return [r[0] for r in self.db.execute("SELECT path FROM roots").fetchall()]
        except sqlite3.OperationalError:  # no such table
            return []

    def clear(self) -> None:
        """Empty the runs table. An index that cannot be written (e.g. its file was deleted
        while another connection kept its -wal and -shm files) is started again instead."""
        self._retry(lambda con: con.execute("DELETE FROM runs"))


_local = threading.local()  # per thread: {index path: (connection, inode of its file)}
_MAX_OPEN = 8
_inherited: list = []


def _connections() -> dict:
    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    return conns


def _inode(path: Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _close(con: sqlite3.Connection) -> None:
    try:
        con.close()
    except sqlite3.Error:
        pass


def _after_fork_in_child() -> None:
    # SQLite connections must not cross a fork: the child opens its own. The inherited ones are
    # kept referenced, never closed here (closing could touch the parent's locks).
    global _local
    _inherited.extend(getattr(_local, "conns", {}).values())
    _local = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)
