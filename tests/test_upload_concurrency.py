"""16 writers uploading at once — 8 threads of one process and 8 processes, several runs each —
to one server, on SQLite and on PostgreSQL: nothing lost, nothing twice, no deadlock."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import pytest
from helpers import REPO
from uploadcheck import assert_uploaded

import nbtracker

serverproc = pytest.importorskip("serverproc", reason="the server's test harness is not here yet")

RUNS_EACH = 3
STEPS = 1500

CHILD = """
import sys, nbtracker
project, runs, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for r in range(runs):
    run = nbtracker.init(project=project, config={"r": r})
    for i in range(steps):
        run.log({"x": i, "r": r})
    run.finish(timeout=120)
    st = run.upload_status()
    print(run.storage_dir, st["state"], flush=True)
"""


def _db_urls():
    yield pytest.param(None, id="sqlite")
    url = serverproc.TEST_DATABASE_URL
    yield pytest.param(url, id="postgresql", marks=pytest.mark.skipif(
        not url, reason="NBTRACKER_TEST_DATABASE_URL is not set"))


@pytest.mark.slow
@pytest.mark.parametrize("db_url", list(_db_urls()))
def test_sixteen_writers_upload_at_once(db_url, tmp_path, monkeypatch):
    srv = serverproc.ServerProcess(tmp_path / "server", db_url=db_url)
    try:
        key = srv.create_user(f"w{uuid.uuid4().hex[:8]}")
        project = f"many-{uuid.uuid4().hex[:8]}"  # a PostgreSQL database outlives the test
        monkeypatch.setenv("NBTRACKER_BASE_URL", srv.url)
        monkeypatch.setenv("NBTRACKER_API_KEY", key)
        monkeypatch.setenv("NBTRACKER_SILENT", "true")
        procs = [subprocess.Popen([sys.executable, "-c", CHILD, project, str(RUNS_EACH),
                                   str(STEPS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
                 for _ in range(8)]
        dirs: list[tuple[str, str]] = []
        errors: list[BaseException] = []

        def writer(n: int) -> None:
            try:
                for r in range(RUNS_EACH):
                    run = nbtracker.init(project=project, config={"t": n, "r": r},
                                         reinit="create_new")
                    for i in range(STEPS):
                        run.log({"x": i, "t": n})
                    run.finish(timeout=120)
                    dirs.append((run.storage_dir, run.upload_status()["state"]))
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert not any(t.is_alive() for t in threads), "a writer thread is stuck"
        assert not errors, errors
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err
            dirs += [tuple(line.rsplit(" ", 1)) for line in out.splitlines()]
        assert len(dirs) == 16 * RUNS_EACH
        assert {state for _, state in dirs} == {"synced"}
        for d, _ in dirs:
            recs = assert_uploaded(srv.url, key, d)
            assert sum(r["t"] == "history" for r in recs) == STEPS
    finally:
        srv.stop()
