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


def test_records_of_an_unknown_shape_are_skipped_not_fatal(store):
    import json

    run = nbtracker.init(project="odd", id="o1")
    nbtracker.log({"x": 1.0})
    run.finish()
    log = os.path.join(run.storage_dir, "records.jsonl")
    with open(log, encoding="utf-8") as f:
        seq = sum(1 for _ in f)
    odd = [{"t": "file", "path": ["not", "a", "name"]}, {"t": "file"}, {"t": "meta", "tags": 5},
           {"t": "summary", "d": 7}, {"t": "config", "d": [1, 2]}, {"t": "alert"},
           {"t": "summary", "d": {"after": 2.0}}]
    with open(log, "a", encoding="utf-8") as f:
        for i, rec in enumerate(odd, seq + 1):
            f.write(json.dumps({**rec, "seq": i, "ts": 1.0}) + "\n")
    os.remove(store / "index.sqlite")
    r = nbtracker.Api().run("odd/o1")
    assert r.summary_metrics["after"] == 2.0 and r.history()["x"].tolist() == [1.0]
    assert r.files() == [] or all(isinstance(f.name, str) for f in r.files())


def test_creation_time_is_the_first_records_time_with_or_without_the_index(store):
    with nbtracker.init(project="when", id="w1"):
        nbtracker.log({"x": 1})
    with open(store / "runs" / "when" / "w1" / "records.jsonl", "rb") as f:
        first = nbtracker.store.recordlog.loads(f.readline())
    from_index = nbtracker.Api().run("when/w1")
    assert from_index.created == first["ts"]
    os.remove(store / "index.sqlite")
    replayed = nbtracker.Api().run("when/w1")
    assert replayed.created == first["ts"]
    assert replayed.history()["_runtime"].tolist() == from_index.history()["_runtime"].tolist()
