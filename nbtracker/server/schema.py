"""The server's tables (SQLAlchemy Core). Alembic migrations in `migrations/` create them;
a test checks the migrated database against this metadata.

    users          one row per user; `admin` sees every project; `disabled` users' keys stop working
    api_keys       sha256 of each key (never the key), its public id (8 chars) and owner
    projects       name, owner; members in `members`
    runs           one row per run: the upload cursor (`next_seq`, `eseq`), the last edit made
                   through the server (`api_eseq`), when its live process last said it was
                   alive (`seen`; see runs.status), the sha256 of the first line of the
                   uploading client's log (`fingerprint`: another log under the same id
                   is refused) and the replayed
                   `RunState` of its records (`state`, a `RunState.dump()`), updated in the same
                   transaction as every batch
    record_chunks  the records of one batch: zlib-compressed JSON lines, seqs first..last
    edits          edits after the fact (`Api().run().update()`), by edit seq: those uploaded
                   from a run's edits.jsonl keep their seq; those made through the server get
                   seqs from API_EDIT_BASE up, so they are applied after every uploaded one
    blobs          content-addressed files under <data dir>/blobs/ab/<sha256>
    run_blobs      which blobs a run uploaded (a run reads only those)
    series         per (run, key): point count, last step, whether steps only ever went up
    series_chunks  per (run, key): up to CHUNK points as packed int64 steps + float64 values,
                   with per-block aggregates (see history.py)
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("admin", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", Float, nullable=False),
)

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_id", String(16), nullable=False, unique=True),
    Column("hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=False, index=True),
    Column("created", Float, nullable=False),
    Column("revoked", Float, nullable=True),
)

projects = Table(
    "projects", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("created", Float, nullable=False),
)

members = Table(
    "members", metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id"), primary_key=True),
)

runs = Table(
    "runs", metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("next_seq", BigInteger, nullable=False, default=1),
    Column("eseq", BigInteger, nullable=False, default=0),
    Column("api_eseq", BigInteger, nullable=False, default=0, server_default="0"),
    Column("seen", Float, nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("state", Text, nullable=True),
    Column("created", Float, nullable=False),
    Column("updated", Float, nullable=False),
    UniqueConstraint("project_id", "run_id", name="uq_runs_project_run"),
)

record_chunks = Table(
    "record_chunks", metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("first_seq", BigInteger, primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

API_EDIT_BASE = 2**62  # the first seq of an edit made through the server

edits = Table(
    "edits", metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("body", Text, nullable=False),
)

blobs = Table(
    "blobs", metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created", Float, nullable=False),
)

run_blobs = Table(
    "run_blobs", metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("sha256", String(64), ForeignKey("blobs.sha256"), primary_key=True),
)

series = Table(
    "series", metadata,
    Column("run_pk", Integer, ForeignKey("runs.pk"), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=True),
    Column("ordered", Boolean, nullable=False),
)

series_chunks = Table(
    "series_chunks", metadata,
    Column("run_pk", Integer, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    # the small aggregates first: SQLite reads a row's columns in order, so a chart that
    # needs only them never walks the overflow pages of the two large blobs after them
    Column("agg", LargeBinary, nullable=False),
    Column("steps", LargeBinary, nullable=False),
    Column("vals", LargeBinary, nullable=False),
)
