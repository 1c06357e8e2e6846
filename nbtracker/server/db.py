"""The database: engine setup for SQLite and PostgreSQL, migrations, and write transactions.

SQLite (the default, a file in the data dir) runs in WAL mode with a busy timeout, so readers
never wait for the writer and writers queue instead of failing; every write transaction starts
with BEGIN IMMEDIATE, which takes the write lock up front (no deadlock between two
read-then-write transactions, in one process or several). PostgreSQL URLs (`postgresql://`)
use the psycopg driver; writers lock the run row (`SELECT ... FOR UPDATE`).

Migrations (Alembic, `migrations/`) run at start under a lock — a PostgreSQL advisory lock, or a
file lock beside the SQLite file — so two servers starting at once migrate once.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_ADVISORY_KEY = 0x6E6274  # "nbt": the PostgreSQL advisory lock migrations take
SQLITE_BUSY_SECONDS = 60


def database_url(db: str | None, data_dir: str | os.PathLike) -> URL:
    """The SQLAlchemy URL for `--db` (default: SQLite in the data dir); `postgresql://` and
    `postgres://` get the psycopg driver."""
    if not db:
        return make_url(f"sqlite:///{Path(data_dir).resolve() / 'nbtracker.sqlite'}")
    url = make_url(db)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create_db_engine(url: URL | str, pool_size: int = 8) -> Engine:
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return sa.create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2,
                            pool_pre_ping=True)


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS,
                                                 "check_same_thread": False},
                              pool_size=8, max_overflow=16)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_con, _record):
        dbapi_con.isolation_level = None  # we issue BEGIN ourselves (below)
        cur = dbapi_con.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # an acknowledged batch survives power loss
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("sqlite_immediate")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_sqlite(conn_or_engine) -> bool:
    return conn_or_engine.dialect.name == "sqlite"


@contextmanager
def write_transaction(engine: Engine):
    """A transaction that will write: BEGIN IMMEDIATE on SQLite (the write lock first)."""
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            yield conn


@contextmanager
def read_transaction(engine: Engine):
    """A transaction that only reads (one consistent snapshot)."""
    with engine.connect() as conn, conn.begin():
        yield conn


def insert_ignore(conn: Connection, table: sa.Table, values: dict | list[dict]) -> int:
    """INSERT ... ON CONFLICT DO NOTHING; returns how many rows went in."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return conn.execute(insert(table).on_conflict_do_nothing(), values).rowcount


# -- migrations ------------------------------------------------------------------------------

@contextmanager
def migration_lock(engine: Engine):
    """Held while migrating (and creating the first admin): one server at a time."""
    if is_sqlite(engine):
        db = engine.url.database
        if not db or db == ":memory:":
            yield
            return
        fd = os.open(f"{db}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SELECT pg_advisory_lock({_ADVISORY_KEY})")
        conn.commit()
        try:
            yield
        finally:
            conn.exec_driver_sql(f"SELECT pg_advisory_unlock({_ADVISORY_KEY})")
            conn.commit()


def alembic_config(conn: Connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest revision (the caller holds `migration_lock`)."""
    from alembic import command

    with engine.connect() as conn:
        command.upgrade(alembic_config(conn), "head")
        conn.commit()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
