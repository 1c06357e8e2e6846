"""The run index is a cache: deleting it (its main file only, as `rm index.sqlite` does, with
runs still writing) or damaging it never costs a run, an error, or a wrong answer."""

from __future__ import annotations

import os
import sqlite3

import nbtracker


def index_row(store, run_id: str):
    with sqlite3.connect(store / "index.sqlite") as con:
        return con.execute("SELECT state, steps, last_step FROM runs WHERE id = ?",
                           (run_id,)).fetchone()


def test_index_deleted_under_a_live_run_is_started_again_and_stays_exact(store):
    run = nbtracker.init(project="gone", id="g1")
    for i in range(3):
        nbtracker.log({"x": i})
    run._snapshot()  # the writer's connection to the index is open now
    nbtracker.Api().runs("gone")  # and a reader's
    os.remove(store / "index.sqlite")  # -wal and -shm stay behind
    for i in range(3, 6):
        nbtracker.log({"x": i}, step=i * 10)
    run._snapshot()
    assert index_row(store, "g1") == ("running", 6, 50)
    r = nbtracker.Api().run("gone/g1")
    assert r.steps == 6 and r.last_step == 50
    run.finish()
    run = nbtracker.init(project="gone", id="g1", resume="allow")
    nbtracker.log({"x": 99})
    run.finish()
    assert index_row(store, "g1") == ("finished", 7, 51)
    assert [x.id for x in nbtracker.Api().runs("gone")] == ["g1"]
    assert nbtracker.Api().run("gone/g1").history()["x"].tolist() == [0, 1, 2, 3, 4, 5, 99]
