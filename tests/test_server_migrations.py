"""The server makes and migrates its own schema: the migrated database is exactly the tables
the code uses, and a database made by an older version is brought up to date with its data."""

from __future__ import annotations

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("alembic")

import sqlalchemy as sa  # noqa: E402
from alembic import command  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from serverproc import TEST_DATABASE_URL, cli, fresh_pg_database  # noqa: E402

from nbtracker.server import db  # noqa: E402
from nbtracker.server.schema import metadata  # noqa: E402


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    if not TEST_DATABASE_URL:
        pytest.skip("NBTRACKER_TEST_DATABASE_URL is not set (a PostgreSQL to test against)")
    u, drop = fresh_pg_database(TEST_DATABASE_URL)
    yield u
    drop()


def _differences(engine) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), metadata)


def test_migrated_schema_is_the_schema_the_code_uses(url, tmp_path):
    cli("server", "migrate", "--db", url, "--data-dir", str(tmp_path / "data"))
    engine = db.create_db_engine(url)
    try:
        assert _differences(engine) == []
        assert db.current_revision(engine) == "0003"
    finally:
        engine.dispose()


def test_an_older_database_is_upgraded_with_its_data(url, tmp_path):
    engine = db.create_db_engine(url)
    try:
        with engine.connect() as conn:  # the schema of the first release, and a run in it
            command.upgrade(db.alembic_config(conn), "0001")
            conn.commit()
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO users (name, admin, disabled, created) "
                                 "VALUES ('ann', true, false, 0)"))
            conn.execute(sa.text("INSERT INTO projects (name, owner_id, created) VALUES ('p', 1, 0)"))
            conn.execute(sa.text("INSERT INTO runs (project_id, run_id, next_seq, eseq, state, "
                                 "created, updated) VALUES (1, 'r1', 5, 0, NULL, 0, 0)"))
        assert db.current_revision(engine) == "0001"
    finally:
        engine.dispose()
    cli("server", "migrate", "--db", url, "--data-dir", str(tmp_path / "data"))
    engine = db.create_db_engine(url)
    try:
        assert db.current_revision(engine) == "0003"
        assert _differences(engine) == []
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT run_id, next_seq, api_eseq, fingerprint FROM runs")).one()
        assert tuple(row) == ("r1", 5, 0, None)
    finally:
        engine.dispose()
