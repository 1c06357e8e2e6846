"""What the Api reads back equals a replay of the run's log (plus its pending edits), and what
the writing process showed: live edits, summary deletes, config replaces, step counts, and an
index that can be lost at any time."""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import threading
import time

from helpers import run_cli, run_python

import nbtracker
from nbtracker.notebook import live


def view(r) -> str:
    """Everything a reader sees of a run but its history, comparable (NaN included)."""
    return json.dumps({"config": r.config, "summary": r.summary_metrics, "name": r.name,
                       "tags": r.tags, "notes": r.notes, "group": r.group,
                       "job_type": r.job_type, "state": r.state, "steps": r.steps,
                       "last_step": r.last_step}, sort_keys=True, default=repr)


def views(store, path: str) -> list[str]:
    """The run as read after normal use, after `reindex`, and with the index deleted."""
    out = [view(nbtracker.Api().run(path))]
    nbtracker.Api().reindex()
    out.append(view(nbtracker.Api().run(path)))
    os.remove(store / "index.sqlite")
    out.append(view(nbtracker.Api().run(path)))
    return out


def records(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "records.jsonl")) as f:
        return [json.loads(line) for line in f]


# -- 1. edits while the run is written by another process ------------------------------------

LOGGER = """
    import json, os, time, nbtracker
    run = nbtracker.init(project="edits", id="live1", name="orig", config={"lr": 1, "keep": 2})
    i = 0
    while not os.path.exists(os.environ["STOP"]):
        run.log({"loss": 1 / (i + 1)})
        i += 1
        if i == 50:
            open(os.environ["READY"], "w").close()
        time.sleep(0.002)
    print(json.dumps({"rows": i, "config": dict(run.config)}), flush=True)
    run.finish()
"""

RESUMER = """
    import json, nbtracker
    run = nbtracker.init(project="edits", id="live1", resume="allow")
    print(json.dumps({"config": dict(run.config), "name": run.name, "tags": list(run.tags),
                      "summary": dict(run.summary)}), flush=True)
    run.config.update({"x": 5}, allow_val_change=True)
    run.name = "own-name"
    run.finish()
"""


def test_edits_of_a_run_live_in_another_process(store, tmp_path):
    env = {"STOP": str(tmp_path / "stop"), "READY": str(tmp_path / "ready"),
           "NBTRACKER_SILENT": "1"}
    out: list = []
    child = threading.Thread(target=lambda: out.append(run_python(LOGGER, env=env)))
    child.start()
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert time.monotonic() < deadline and child.is_alive(), "the logger did not start"
            time.sleep(0.05)
        r = nbtracker.Api().run("edits/live1")
        assert r.state == "running"
        r.config["x"] = 1
        r.summary["best"] = 0.5
        r.name, r.tags, r.notes, r.group, r.job_type = "edited", ["a", "b"], "n", "g", "j"
        r.update()  # refused while live before edits.jsonl
        r.summary["best2"] = 2
        del r.summary["best"]
        r.update()

        # the live run's log has one writer: the edits sit beside it
        run_dir = r.storage_dir
        assert not any(rec.get("src") == "api" for rec in records(run_dir))
        assert os.path.exists(os.path.join(run_dir, "edits.jsonl"))
        for again in (nbtracker.Api().run("edits/live1"), r):
            assert again.state == "running"
            assert again.config == {"lr": 1, "keep": 2, "x": 1}
            assert (again.name, again.tags, again.notes, again.group, again.job_type) == \
                ("edited", ["a", "b"], "n", "g", "j")
            assert again.summary["best2"] == 2 and "best" not in again.summary
            assert "loss" in again.summary  # the run's own values are still there
        # the index's identity columns show the edit too
        con = sqlite3.connect(store / "index.sqlite")
        assert con.execute("SELECT name FROM runs WHERE id = 'live1'").fetchone() == ("edited",)
        con.close()
    finally:
        (tmp_path / "stop").touch()
        child.join(60)
    written = json.loads(out[0].stdout)
    assert written["config"] == {"lr": 1, "keep": 2}  # the writer never saw the edit

    done = nbtracker.Api().run("edits/live1")
    assert done.state == "finished" and done.config == {"lr": 1, "keep": 2, "x": 1}
    assert len(done.history()) == written["rows"] == done.steps
    assert views(store, "edits/live1") == [view(done)] * 3  # edits survive reindex and loss

    # reopened, the run folds the edits into its log and shows them; its later writes win
    resumed = json.loads(run_python(RESUMER, env={"NBTRACKER_SILENT": "1"}).stdout)
    assert resumed["config"] == {"lr": 1, "keep": 2, "x": 1}
    assert resumed["name"] == "edited" and resumed["tags"] == ["a", "b"]
    assert resumed["summary"]["best2"] == 2 and "best" not in resumed["summary"]
    folded = [rec for rec in records(done.storage_dir) if "eseq" in rec]
    assert [rec["eseq"] for rec in folded] == [1, 2, 3, 4, 5] and all(rec["src"] == "api" for rec in folded)
    final = nbtracker.Api().run("edits/live1")
    assert final.config == {"lr": 1, "keep": 2, "x": 5} and final.name == "own-name"
    assert final.tags == ["a", "b"] and "best" not in final.summary
    assert views(store, "edits/live1") == [view(final)] * 3


def test_an_edit_wins_over_the_live_runs_own_write_until_the_run_is_reopened(store):
    run = nbtracker.init(project="edits", id="order", config={"lr": 1})
    nbtracker.log({"loss": 1.0})
    r = nbtracker.Api().run(run.path)
    r.config["lr"] = 2
    r.update()
    run.config.update({"lr": 3}, allow_val_change=True)  # written after the edit
    assert nbtracker.Api().run(run.path).config == {"lr": 2}
    run.finish()
    assert views(store, run.path) == [view(nbtracker.Api().run(run.path))] * 3
    assert nbtracker.Api().run(run.path).config == {"lr": 2}
    again = nbtracker.init(project="edits", id="order", resume="allow")
    assert again.config["lr"] == 2  # the writer shows what readers showed
    again.config.update({"lr": 4}, allow_val_change=True)
    again.finish()
    assert nbtracker.Api().run(run.path).config == {"lr": 4}


def test_pending_edits_survive_a_kill_and_are_folded_on_resume(store):
    p = run_python("""
        import os, nbtracker
        run = nbtracker.init(project="edits", id="kill1", config={"lr": 1})
        run.log({"loss": 0.5, "acc": 0.25})
        r = nbtracker.Api().run(run.path)  # this process holds the run: it is live
        r.config["lr"] = 2
        r.tags = ["t"]
        del r.summary["loss"]
        r.update()
        nbtracker.save()
        os.kill(os.getpid(), 9)
    """, env={"NBTRACKER_SILENT": "1"}, check=False)
    assert p.returncode == -9, p.stderr
    r = nbtracker.Api().run("edits/kill1")
    assert r.state == "crashed" and r.config == {"lr": 2} and r.tags == ["t"]
    assert "loss" not in r.summary and r.summary["acc"] == 0.25
    assert views(store, "edits/kill1") == [view(r)] * 3

    again = nbtracker.init(project="edits", id="kill1", resume="allow")
    assert again.config["lr"] == 2 and again.tags == ("t",) and "loss" not in again.summary
    again.finish()
    assert [rec["eseq"] for rec in records(again.storage_dir) if "eseq" in rec] == [1, 2, 3]
    got = views(store, "edits/kill1")
    assert got == [got[0]] * 3 and json.loads(got[0])["config"] == {"lr": 2}


def test_a_torn_edit_is_ignored_and_cut_off_by_the_next_one():
    run = nbtracker.init(project="edits", config={"lr": 1})
    r = nbtracker.Api().run(run.path)
    r.notes = "first"
    r.update()
    with open(os.path.join(run.storage_dir, "edits.jsonl"), "a") as f:
        f.write('{"t":"meta","notes":"torn","seq":2')  # an editor killed mid-write
    assert nbtracker.Api().run(run.path).notes == "first"
    r = nbtracker.Api().run(run.path)
    r.name = "second"
    r.update()
    got = nbtracker.Api().run(run.path)
    assert (got.notes, got.name) == ("first", "second")
    with open(os.path.join(run.storage_dir, "edits.jsonl")) as f:
        assert [json.loads(line)["seq"] for line in f] == [1, 2]
    run.finish()


def test_edits_of_a_finished_run_go_into_its_log():
    run = nbtracker.init(project="edits", config={"lr": 1})
    nbtracker.log({"loss": 1.0})
    run.finish()
    r = nbtracker.Api().run(run.path)
    r.config["lr"] = 2
    r.update()
    folded = [rec for rec in records(run.storage_dir) if rec.get("src") == "api"]
    assert [(rec["t"], rec["d"], rec["eseq"]) for rec in folded] == [("config", {"lr": 2}, 1)]
    assert nbtracker.Api().run(run.path).config == {"lr": 2}


# -- 2. summary deletes -------------------------------------------------------------------------

def test_a_deleted_summary_key_stays_deleted_after_resume_and_reindex(store):
    run = nbtracker.init(project="sdel", id="sdel1")
    nbtracker.define_metric("val", summary="min")
    for i in range(3):
        nbtracker.log({"loss": 1 / (i + 1), "acc": i, "val": 3 - i, "kept": i})
    del run.summary["loss"]
    del run.summary["val"]
    nbtracker.log({"val": 7})  # logged again: back, aggregated afresh
    assert "loss" not in run.summary and run.summary["val"] == 7
    shown = dict(run.summary)
    run.finish()
    assert nbtracker.Api().run(run.path).summary_metrics == shown
    assert views(store, run.path) == [view(nbtracker.Api().run(run.path))] * 3
    assert nbtracker.Api().run(run.path).summary_metrics == shown

    r = nbtracker.Api().run(run.path)
    del r.summary["acc"]
    r.update()
    assert "acc" not in nbtracker.Api().run(run.path).summary

    again = nbtracker.init(project="sdel", id="sdel1", resume="allow")
    assert "loss" not in again.summary and "acc" not in again.summary
    assert again.summary["val"] == 7 and again.summary["kept"] == 2
    again.finish()
    got = views(store, run.path)
    assert got == [got[0]] * 3
    summary = json.loads(got[0])["summary"]
    assert "loss" not in summary and "acc" not in summary and summary["val"] == 7


# -- 3. config replay ------------------------------------------------------------------------------

def test_config_update_replaces_a_nested_value_as_the_writer_did(store):
    run = nbtracker.init(project="cfg", config={"opt": {"lr": 0.1, "momentum": 0.9}, "n": 1})
    run.config.update({"opt": {"lr": 1}}, allow_val_change=True)
    assert run.config["opt"] == {"lr": 1}
    run.finish()
    assert nbtracker.Api().run(run.path).config == {"opt": {"lr": 1}, "n": 1}
    assert views(store, run.path) == [view(nbtracker.Api().run(run.path))] * 3
    assert nbtracker.Api().run(run.path).config == {"opt": {"lr": 1}, "n": 1}


def test_a_nested_config_value_changed_in_place_does_not_reach_the_index(store):
    run = nbtracker.init(project="cfg", config={"opt": {"lr": 0.1}})
    run.config["opt"]["lr"] = 5  # not a config update: nothing is recorded
    run.finish()
    assert views(store, run.path) == [view(nbtracker.Api().run(run.path))] * 3
    assert nbtracker.Api().run(run.path).config == {"opt": {"lr": 0.1}}


def test_config_and_summary_nan_inf_and_big_ints_survive_the_index(store):
    cfg = {"a": float("nan"), "b": {"c": float("-inf")}, "big": 2**70}
    run = nbtracker.init(project="cfg", config=cfg)
    nbtracker.log({"x": 1.0})
    run.summary["s"] = float("inf")
    run.finish()
    for got in views(store, run.path):
        d = json.loads(got, parse_constant=float)
        assert math.isnan(d["config"]["a"]) and d["config"]["b"] == {"c": -math.inf}
        assert d["config"]["big"] == 2**70 and d["summary"]["s"] == math.inf


def test_nan_inf_and_big_ints_in_edits_pending_and_folded(store):
    run = nbtracker.init(project="cfg", id="nanedit", config={"lr": 1})
    r = nbtracker.Api().run(run.path)
    r.config["x"] = {"a": float("nan"), "b": 2**70}
    r.summary["s"] = float("-inf")
    r.update()  # pending: the run is live here

    def check(got: str) -> None:
        d = json.loads(got, parse_constant=float)
        assert math.isnan(d["config"]["x"]["a"]) and d["config"]["x"]["b"] == 2**70
        assert d["summary"]["s"] == -math.inf

    for got in views(store, run.path):
        check(got)
    run.finish()
    nbtracker.init(project="cfg", id="nanedit", resume="allow").finish()  # folds them
    assert any("eseq" in rec for rec in records(run.storage_dir))
    for got in views(store, run.path):
        check(got)


# -- 4. step counts ----------------------------------------------------------------------------------

def test_steps_count_distinct_steps_with_rows_everywhere(store):
    run = nbtracker.init(project="steps", id="gaps1")
    panel = live.LivePanel()
    live.LiveFeed(run, panel)
    for epoch in range(5):
        nbtracker.log({"loss": 1 / (epoch + 1)}, step=epoch * 100)
        nbtracker.log({"acc": epoch}, step=epoch * 100)  # same row
    run.finish()
    assert panel.info["step"] == 5

    r = nbtracker.Api().run(run.path)
    assert (r.steps, r.last_step) == (5, 400) == (len(r.history()), r.history()["_step"].max())
    table = run_cli("runs", "steps").stdout.splitlines()
    col = table[0].split().index("STEPS")
    assert table[1].split()[col] == "5"
    con = sqlite3.connect(store / "index.sqlite")
    assert con.execute("SELECT steps, last_step FROM runs").fetchone() == (5, 400)
    con.close()
    assert views(store, run.path) == [view(r)] * 3


def test_steps_stay_exact_with_lower_steps_and_a_cached_index(store):
    run = nbtracker.init(project="steps", id="low1")
    for s in (0, 10, 20, 30):
        nbtracker.log({"loss": float(s)}, step=s)
    run.finish()
    assert nbtracker.Api().run(run.path).steps == 4  # now cached in the index
    # records with steps lower than the last one, as a writer may store them: one joins the
    # row of step 10, one starts a row of its own
    recs = records(run.storage_dir)
    seq, ts = recs[-1]["seq"], recs[-1]["ts"]
    with open(os.path.join(run.storage_dir, "records.jsonl"), "a") as f:
        for i, step in enumerate((10, 15, 40)):
            f.write(json.dumps({"t": "history", "seq": seq + 1 + i, "ts": ts, "step": step,
                                "d": {"late": step}}) + "\n")
    r = nbtracker.Api().run(run.path)
    assert (r.steps, r.last_step) == (6, 40) == (len(r.history()), r.history()["_step"].max())
    assert views(store, run.path) == [view(r)] * 3


def test_steps_of_a_live_run_survive_the_writers_own_index_snapshots(store):
    run = nbtracker.init(project="steps", id="snap1")
    expect = set()
    for epoch in range(6):
        for s in range(epoch * 1000, epoch * 1000 + 200, 10):
            nbtracker.log({"loss": float(s)}, step=s)
            expect.add(s)
        run._snapshot()  # what the writer's background thread does every few seconds
        r = nbtracker.Api().run(run.path)
        assert (r.steps, r.last_step) == (len(expect), max(expect))
    run.finish()
    assert nbtracker.Api().run(run.path).steps == len(expect) == 120
    con = sqlite3.connect(store / "index.sqlite")
    steps = json.loads(con.execute("SELECT blob FROM runs").fetchone()[0])["steps"]
    con.close()
    assert len(json.dumps(steps)) < 400  # six regular runs of steps, not 120 numbers


def test_step_set_is_exact_and_small():
    from nbtracker.store.state import StepSet

    rng = random.Random(7)
    for _ in range(200):
        steps, want = StepSet(), set()
        base = rng.choice([1, 3, 100])
        for _ in range(rng.randrange(1, 300)):
            s = rng.randrange(0, 60) * base + (rng.random() < 0.1) * rng.randrange(base)
            steps.add(s)
            want.add(s)
            assert len(steps) == len(want)
        assert list(steps) == sorted(want) and steps.last == max(want)
        assert all(s in steps for s in want) and -1 not in steps
        runs = steps.dump()
        assert all(a[0] + a[1] * (a[2] - 1) < b[0] for a, b in zip(runs, runs[1:]))
    big = StepSet()
    for s in range(10_000_000):
        big.add(s)
    assert big.dump() == [[0, 1, 10_000_000]] and big.last == 9_999_999


# -- 5. losing the index ------------------------------------------------------------------------------

def test_runs_under_init_dir_are_found_without_the_index(store, tmp_path):
    run = nbtracker.init(project="far", dir=str(tmp_path / "elsewhere"), config={"k": 1})
    nbtracker.log({"loss": 0.25})
    run.finish()
    assert [r.id for r in nbtracker.Api().runs()] == [run.id]
    os.remove(store / "index.sqlite")
    assert [r.id for r in nbtracker.Api().runs()] == [run.id]
    assert nbtracker.Api().run(run.path).config == {"k": 1}
    os.remove(store / "index.sqlite")
    assert "indexed 1 run(s)" in run_cli("reindex").stdout
    assert [r.id for r in nbtracker.Api().runs("far")] == [run.id]


def test_reindex_after_the_index_file_is_deleted_under_a_live_run(store):
    run = nbtracker.init(project="idx", config={"lr": 0.5})
    nbtracker.log({"acc": 0.75})
    run._snapshot()  # the live writer's connection keeps index.sqlite-wal and -shm
    os.remove(store / "index.sqlite")
    assert nbtracker.Api().run(run.path).summary["acc"] == 0.75  # a new index file
    nbtracker.log({"acc": 0.8})
    run.finish()
    assert nbtracker.Api().reindex() == 1
    assert "indexed 1 run(s)" in run_cli("reindex").stdout
    r = nbtracker.Api().run(run.path)
    assert r.config == {"lr": 0.5} and r.summary["acc"] == 0.8 and r.steps == 2


def test_summary_edits_before_update_keep_their_order():
    run = nbtracker.init(project="order")
    nbtracker.log({"a": 1.0, "b": 2.0})
    run.finish()
    r = nbtracker.Api().run(run.path)
    del r.summary["a"]
    r.summary["a"] = 5.0  # set again after the delete: kept
    r.summary["b"] = 7.0
    del r.summary["b"]  # deleted after the set: gone
    assert r.summary.get("a") == 5.0 and "b" not in r.summary_metrics
    r.update()
    again = nbtracker.Api().run(run.path)
    assert again.summary_metrics.get("a") == 5.0 and "b" not in again.summary_metrics


def test_the_index_says_when_the_run_last_wrote_as_a_replay_does(store):
    run = nbtracker.init(project="upd")
    for i in range(5):
        nbtracker.log({"x": i})
    run._snapshot()  # what the flusher does every few seconds
    cached = nbtracker.Api().run(run.path).updated
    os.remove(store / "index.sqlite")
    assert nbtracker.Api().run(run.path).updated == cached
    run.finish()


def test_a_config_value_changed_to_an_equal_value_of_another_type_is_written():
    run = nbtracker.init(project="types", config={"opt": 0.0, "flag": 1, "nested": {"a": 0}})
    run.config.update({"opt": 0, "flag": True, "nested": {"a": 0.0}}, allow_val_change=True)
    assert type(run.config["opt"]) is int and run.config["flag"] is True
    run.finish()
    cfg = nbtracker.Api().run(run.path).config
    assert type(cfg["opt"]) is int and cfg["flag"] is True and type(cfg["nested"]["a"]) is float


def test_an_api_edit_to_an_equal_value_of_another_type_is_recorded():
    run = nbtracker.init(project="types", config={"lr": 1, "nested": {"a": 0}})
    run.finish()
    r = nbtracker.Api().run(run.path)
    r.config["lr"] = 1.0
    r.config["nested"] = {"a": 0.0}
    r.update()
    cfg = nbtracker.Api().run(run.path).config
    assert type(cfg["lr"]) is float and type(cfg["nested"]["a"]) is float
