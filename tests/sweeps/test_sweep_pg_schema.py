"""A PostgreSQL sweep keeps Optuna's tables in their own schema: a database that another
application (the nbtracker server, say) already uses is left as it was."""

from __future__ import annotations

import pytest

import nbtracker
from tests.serverproc import TEST_DATABASE_URL, fresh_pg_database

pytest.importorskip("optuna")
psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg_url():
    if not TEST_DATABASE_URL:
        pytest.skip("NBTRACKER_TEST_DATABASE_URL is not set (a PostgreSQL database to test on)")
    url, drop = fresh_pg_database(TEST_DATABASE_URL)
    yield url
    from nbtracker.sweeps import engine

    for key in [k for k in engine._rdb_cache if url.rsplit("/", 1)[-1] in k]:
        engine._rdb_cache.pop(key).engine.dispose()
    drop()


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_sweep_tables_live_apart_from_the_applications_tables(pg_url):
    with psycopg.connect(_dsn(pg_url), autocommit=True) as con:
        con.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
        con.execute("INSERT INTO alembic_version VALUES ('server0042')")
        con.execute("CREATE TABLE trials (id int PRIMARY KEY, what text)")
        con.execute("INSERT INTO trials VALUES (1, 'not optuna''s')")

    sid = nbtracker.sweep({"method": "grid", "metric": {"name": "loss"},
                           "parameters": {"x": {"values": [1, 2]}}}, project="p", storage=pg_url)

    def train():
        run = nbtracker.init()
        nbtracker.log({"loss": float(run.config.x)})

    assert nbtracker.agent(sid, function=train) == 2
    with psycopg.connect(_dsn(pg_url)) as con:
        assert con.execute("SELECT * FROM public.alembic_version").fetchall() == [("server0042",)]
        assert con.execute("SELECT * FROM public.trials").fetchall() == [(1, "not optuna's")]
        n = con.execute("SELECT count(*) FROM nbtracker_sweeps.trials").fetchone()[0]
    assert n == 2
    s = nbtracker.Api().sweep(sid)
    assert [t.value for t in s.trials] == [1.0, 2.0] and s.state == "finished"


def test_a_storage_that_cannot_be_reached_is_one_clear_error(store):
    with pytest.raises(nbtracker.UsageError, match="cannot open the sweep storage") as err:
        nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}},
                        storage="postgresql://nobody:secret@127.0.0.1:1/none")
    assert "secret" not in str(err.value) and "nobody:***@127.0.0.1:1" in str(err.value)
    assert not (store / "sweeps").exists() or not any((store / "sweeps").iterdir())
    with pytest.raises(nbtracker.UsageError, match="PostgreSQL URL"):
        nbtracker.sweep({"method": "random", "parameters": {"x": {"values": [1]}}},
                        storage="sqlite:///x.db")


def test_a_sweep_whose_trials_cannot_be_read_is_one_line_and_the_others_are_listed(pg_url, store):
    import os
    import subprocess
    import sys

    from nbtracker.notebook import sweep_panel

    def train():
        run = nbtracker.init()
        nbtracker.log({"loss": float(run.config.x)})

    config = {"method": "grid", "metric": {"name": "loss"}, "parameters": {"x": {"values": [1, 2]}}}
    local = nbtracker.sweep(config, project="p")
    good, bad = (nbtracker.sweep(config, project="p", storage=pg_url) for _ in range(2))
    for sid in (local, good, bad):
        assert nbtracker.agent(sid, function=train, count=1) == 1
    with psycopg.connect(_dsn(pg_url), autocommit=True) as con:  # one damaged row
        con.execute("UPDATE nbtracker_sweeps.trial_params SET distribution_json = '~~' WHERE "
                    "trial_id IN (SELECT t.trial_id FROM nbtracker_sweeps.trials t JOIN "
                    "nbtracker_sweeps.studies s USING (study_id) WHERE s.study_name = %s)", (bad,))

    env = {**os.environ, "NBTRACKER_DIR": str(store), "PYTHONPATH": os.pathsep.join(sys.path)}
    ls = subprocess.run([sys.executable, "-m", "nbtracker", "sweep", "ls", "--storage", pg_url],
                        env=env, capture_output=True, text=True, timeout=60)
    assert ls.returncode == 0 and "Traceback" not in ls.stderr, ls.stderr
    assert local in ls.stdout and good in ls.stdout and bad not in ls.stdout, ls.stdout
    (line,) = ls.stderr.strip().splitlines()
    assert bad in line and "its trials in" in line and "cannot be read" in line, line
    show = subprocess.run([sys.executable, "-m", "nbtracker", "sweep", "show", bad, "--storage",
                           pg_url], env=env, capture_output=True, text=True, timeout=60)
    assert show.returncode == 1 and "Traceback" not in show.stderr, show.stderr
    (line,) = show.stderr.strip().splitlines()
    assert bad in line and "cannot be read" in line, line
    with pytest.raises(nbtracker.UsageError, match=f"sweep {bad}: its trials in .* cannot be read"):
        sweep_panel(bad, storage=pg_url)
    assert sweep_panel(good, storage=pg_url) is not None
