"""The one writer under hostile conditions: forks, two processes on one id, Ctrl-C inside log(),
log() racing finish(), a disk that fills and empties. Each test runs real processes and checks
the record log itself: dense unique sequence numbers, every line readable, nothing lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from helpers import REPO, run_python

import nbtracker
from nbtracker.store.columns import COLS_NAME


def records(run_dir) -> list[dict]:
    """Every line of a run's record log, parsed (a line that does not parse fails the test)."""
    with open(os.path.join(run_dir, "records.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def assert_dense(recs: list[dict]) -> None:
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))


def history_without_blocks(run) -> pd.DataFrame:
    """The history read from the log alone (the column blocks set aside)."""
    cols = os.path.join(run.storage_dir, COLS_NAME)
    moved = cols + ".aside"
    if os.path.exists(cols):
        os.rename(cols, moved)
    try:
        return nbtracker.Api().run(f"{run.project}/{run.id}").history()
    finally:
        if os.path.exists(moved):
            os.rename(moved, cols)


# -- fork ----------------------------------------------------------------------------------

def test_a_forked_child_never_writes_finishes_or_unlocks_the_parents_run():
    p = run_python("""
        import os, sys, time, nbtracker
        from nbtracker.store.lock import is_live
        run = nbtracker.init(project="fork", id="parent1")
        for i in range(5):
            nbtracker.log({"i": i})
        for how in ("exit", "raise", "log-then-exit"):
            pid = os.fork()
            if pid == 0:  # the child: what a DataLoader worker or a careless script does
                if how == "log-then-exit":
                    nbtracker.log({"i": 999})
                    run.log({"i": 998})
                    run.summary["child"] = 1
                    del run.summary["i"]
                    run.config.update({"child": 1})
                    run.finish()
                if how == "raise":
                    raise SystemExit(3)
                sys.exit(0)  # runs atexit hooks, which must not finish the parent's run
            _, status = os.waitpid(pid, 0)
            assert is_live(run.storage_dir), f"the child ({how}) released the parent's lock"
        for i in range(5, 10):
            nbtracker.log({"i": i})
        nbtracker.finish()
    """, env={"NBTRACKER_SILENT": ""})
    assert p.stderr.count("belongs to the process that forked this one") >= 1
    recs = records(nbtracker.Api().run("fork/parent1").storage_dir)
    assert_dense(recs)
    assert [r["t"] for r in recs].count("exit") == 1 and recs[-1]["t"] == "exit"
    assert [r["d"]["i"] for r in recs if r["t"] == "history"] == list(range(10))
    assert not any(r["t"] == "summary" for r in recs)
    r = nbtracker.Api().run("fork/parent1")
    assert r.state == "finished" and r.history()["i"].tolist() == list(range(10))


def test_init_in_pool_workers_gives_one_run_per_call_and_leaves_the_parent_alone():
    p = run_python("""
        import multiprocessing as mp, nbtracker

        def train(lr):
            run = nbtracker.init(project="sweep", config={"lr": lr})
            for step in range(20):
                nbtracker.log({"loss": lr * step})
            nbtracker.finish()
            return run.id

        if __name__ == "__main__":
            parent = nbtracker.init(project="sweep", name="parent")
            nbtracker.log({"loss": -1.0})
            with mp.get_context("fork").Pool(2) as pool:
                ids = pool.map(train, [0.1, 0.2, 0.3, 0.4])
            nbtracker.log({"loss": -2.0})
            nbtracker.finish()
            print(parent.id, *ids)
    """)
    parent_id, *ids = p.stdout.split()
    assert len(set(ids)) == 4 and parent_id not in ids
    api = nbtracker.Api()
    for run_id, lr in zip(ids, [0.1, 0.2, 0.3, 0.4]):
        r = api.run(f"sweep/{run_id}")
        assert r.state == "finished" and r.config == {"lr": lr}
        assert r.history()["loss"].tolist() == [lr * s for s in range(20)]
    parent = api.run(f"sweep/{parent_id}")
    assert parent.state == "finished" and parent.history()["loss"].tolist() == [-1.0, -2.0]
    assert_dense(records(parent.storage_dir))


# -- two processes, one run id -------------------------------------------------------------

TWIN = """
import sys, time, nbtracker
start = float(sys.argv[2])
while time.time() < start:
    time.sleep(0.0005)
try:
    run = nbtracker.init(project="twin", id="same", resume="allow")
except nbtracker.UsageError as e:
    print("refused:", e)
    sys.exit(0)
for i in range(200):
    nbtracker.log({sys.argv[1]: i})
nbtracker.finish()
print("logged")
"""


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(3))
def test_two_processes_starting_one_id_at_once_never_both_create_it(trial):
    import time

    env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="1")
    start = str(time.time() + 1.5)
    procs = [subprocess.Popen([sys.executable, "-c", TWIN, who, start], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for who in ("a", "b")]
    outs = [p.communicate(timeout=60) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    said = [o[0].strip() for o in outs]
    r = nbtracker.Api().run("twin/same")
    recs = records(r.storage_dir)
    assert_dense(recs)
    runs = [x for x in recs if x["t"] == "run"]
    assert sum(1 for x in runs if not x.get("resumed")) == 1  # created once
    df = r.history()
    for who, out in zip(("a", "b"), said):
        if out == "logged":
            assert df[who].dropna().tolist() == list(range(200))
        else:
            assert out.startswith("refused:") and "still running" in out
            assert who not in df.columns


# -- Ctrl-C inside log() -------------------------------------------------------------------

def test_ctrl_c_inside_log_leaves_every_row_wholly_in_or_out():
    p = run_python("""
        import random, signal, nbtracker
        def interrupt(*_):
            raise KeyboardInterrupt
        def arm():  # one Ctrl-C at a random moment soon, as a person would press it
            signal.setitimer(signal.ITIMER_REAL, random.uniform(5e-5, 3e-4))
        run = nbtracker.init(project="ctrlc", id="int1")
        done, cut, i = [], 0, 0
        signal.signal(signal.SIGALRM, interrupt)
        arm()
        while True:
            try:
                while i < 30000:
                    try:
                        nbtracker.log({"i": i, "x": i * 0.5})
                        done.append(i)
                    except KeyboardInterrupt:
                        cut += 1
                        arm()
                    i += 1
                signal.signal(signal.SIGALRM, signal.SIG_IGN)
                break
            except KeyboardInterrupt:  # landed outside log(): nothing to check there
                arm()
        signal.setitimer(signal.ITIMER_REAL, 0, 0)
        nbtracker.finish()
        print(cut, len(done))
        print(*done)
    """)
    first, second = p.stdout.splitlines()[:2]
    cut, _ = map(int, first.split())
    done = [int(v) for v in second.split()]
    assert cut > 20, "the interrupts never landed"
    r = nbtracker.Api().run("ctrlc/int1")
    recs = records(r.storage_dir)
    assert_dense(recs)
    hist = [x for x in recs if x["t"] == "history"]
    # a row either went in whole or not at all, and no two calls share a step
    steps = [x["step"] for x in hist]
    assert len(steps) == len(set(steps))
    assert all(x["d"]["x"] == x["d"]["i"] * 0.5 for x in hist)
    logged = [x["d"]["i"] for x in hist]
    assert set(done) <= set(logged)
    df = r.history()
    assert df["i"].tolist() == logged
    pd.testing.assert_frame_equal(df, history_without_blocks(r))


# -- log() racing finish() -----------------------------------------------------------------

def test_log_racing_finish_from_another_thread_is_stored_or_reported_never_a_disk_error():
    p = run_python("""
        import threading, nbtracker
        for trial in range(30):
            run = nbtracker.init(project="race", id=f"r{trial}")
            go = threading.Event()
            def loop():
                go.set()
                for i in range(100000):
                    run.log({"i": i})
            t = threading.Thread(target=loop)
            t.start()
            go.wait()
            run.finish()
            t.join()
        print("ok")
    """, env={"NBTRACKER_SILENT": ""})
    assert "ok" in p.stdout
    assert "cannot write" not in p.stderr and "disk full" not in p.stderr
    assert "is finished; log is ignored" in p.stderr
    for trial in range(30):
        r = nbtracker.Api().run(f"race/r{trial}")
        recs = records(r.storage_dir)
        assert_dense(recs)
        assert recs[-1]["t"] == "exit" and r.state == "finished"
        hist = [x["d"]["i"] for x in recs if x["t"] == "history"]
        assert hist == list(range(len(hist)))


# -- a disk that fills, then has space again -----------------------------------------------

def test_full_disk_backlog_is_written_back_in_order_under_the_fsync_lock():
    p = run_python("""
        import resource, signal, os, threading, nbtracker
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = nbtracker.init(project="disk", id="full2")
        nbtracker.log({"i": -1})
        log = os.path.join(run.storage_dir, "records.jsonl")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(log) + 1000, hard))
        stop = threading.Event()
        def syncer():  # what the fsync thread does, as often as it can
            while not stop.is_set():
                run.save()
        t = threading.Thread(target=syncer)
        t.start()
        for i in range(50000):
            nbtracker.log({"i": i, "x": i / 7})
            if i == 30000:
                resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
        stop.set()
        t.join()
        nbtracker.finish()
        print("alive")
    """, env={"NBTRACKER_SILENT": ""})
    assert "alive" in p.stdout
    assert p.stderr.count("cannot write to") == 1
    r = nbtracker.Api().run("disk/full2")
    recs = records(r.storage_dir)
    assert_dense(recs)
    hist = [x["d"] for x in recs if x["t"] == "history"]
    assert [d["i"] for d in hist] == list(range(-1, 50000))
    assert all(d["x"] == d["i"] / 7 for d in hist[1:])
    df = r.history()
    assert df["i"].tolist() == list(range(-1, 50000))
    pd.testing.assert_frame_equal(df, history_without_blocks(r))


def test_run_names_reach_the_terminal_without_escape_sequences():
    p = run_python("""
        import nbtracker
        run = nbtracker.init(project="esc", name="evil\\x1b[31mred\\x1b]0;title\\x07")
        nbtracker.finish()
    """, env={"NBTRACKER_SILENT": ""})
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr
    assert "evil\\x1b[31mred" in p.stderr


def test_an_api_made_before_a_fork_reads_and_edits_from_the_child():
    p = run_python("""
        import os, nbtracker
        run = nbtracker.init(project="forkapi", id="a1")
        nbtracker.log({"x": 1.0})
        nbtracker.finish()
        api = nbtracker.Api()
        api.runs("forkapi")  # the index connection is open in this process now
        pid = os.fork()
        if pid == 0:
            try:
                r = api.run("forkapi/a1")
                r.summary["from_child"] = 1
                r.update()
                assert [x.id for x in api.runs("forkapi")] == ["a1"]
            except BaseException as e:
                print("child:", repr(e), flush=True)
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        print("status", os.waitstatus_to_exitcode(status))
        print(api.run("forkapi/a1").summary_metrics.get("from_child"))
    """)
    assert "status 0" in p.stdout, p.stdout + p.stderr
    assert p.stdout.strip().endswith("1")


def test_calls_on_a_finished_run_are_reported_never_raised(capsys):
    run = nbtracker.init(project="done")
    nbtracker.log({"x": 1.0})
    run.finish()
    run.log({"x": 2.0})
    run.summary["y"] = 1
    del run.summary["x"]
    run.config.update({"z": 1})
    err = capsys.readouterr().err
    assert err.count("is finished;") == 4
    r = nbtracker.Api().run(run.path)
    assert r.summary_metrics == {"x": 1.0} and r.config == {}


def test_a_disk_that_stays_full_drops_past_the_backlog_limit_and_says_so():
    p = run_python("""
        import resource, signal, os, nbtracker
        from nbtracker.store.recordlog import RecordWriter
        RecordWriter.MAX_BACKLOG = 4096  # the real limit is 256 MiB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = nbtracker.init(project="disk", id="full3")
        nbtracker.log({"i": -1})
        log = os.path.join(run.storage_dir, "records.jsonl")
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(log), hard))
        for i in range(2000):
            nbtracker.log({"i": i})
        print("backlog", run._writer.pending)
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        nbtracker.log({"i": 2000})
        nbtracker.finish()
    """, env={"NBTRACKER_SILENT": ""})
    backlog = int(p.stdout.split()[1])
    assert backlog <= 4096
    lost = [line for line in p.stderr.splitlines() if "could not be written" in line]
    assert len(lost) == 1
    n_lost = int(lost[0].split("warning: ")[1].split()[0])
    df = nbtracker.Api().run("disk/full3").history()
    kept = df["i"].tolist()
    assert kept[0] == -1 and kept[-1] == 2000 and kept == sorted(kept)
    assert len(kept) + n_lost == 2002  # every row is either read back or counted as lost
