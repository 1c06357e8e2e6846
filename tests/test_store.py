"""The store: durability on return, crash detection, corruption, concurrency, full disks."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, run_python

import nbtracker
from nbtracker.store.columns import COLS_NAME


def api_run(path):
    return nbtracker.Api().run(path)


def _child(code: str) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env["NBTRACKER_SILENT"] = "true"
    return subprocess.Popen([sys.executable, "-u", "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


KILL_CHILD = """
import nbtracker
run = nbtracker.init(project="crash", id="{run_id}")
print("run", run.path, flush=True)
i = 0
while True:
    row = {{"i": i, "x": i * 0.5}}
    if i % 7 == 0:
        row["note"] = "seven"          # a record that takes the slow path
    if i % 11 == 0:
        row["nan"] = float("nan")
    nbtracker.log(row)
    print(i, flush=True)               # reported only after log() returned
    i += 1
"""


@pytest.mark.parametrize("trial", range(3))
def test_kill_9_loses_nothing_that_log_returned(trial):
    run_id = f"kill{trial}"
    child = _child(KILL_CHILD.format(run_id=run_id))
    first = child.stdout.readline().split()
    assert first[0] == "run", child.stderr.read()
    path = first[1]
    # kill at a random moment while it logs
    deadline = time.monotonic() + random.uniform(0.3, 1.2)
    reported = -1
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        if line.strip().isdigit():
            reported = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    for line in child.stdout.read().splitlines():  # reported before the kill landed
        if line.strip().isdigit():
            reported = max(reported, int(line))
    assert reported > 10
    r = api_run(path)
    assert r.state == "crashed"
    df = r.history()
    steps = set(df["_step"].tolist())
    assert set(range(reported + 1)) <= steps
    got = df.set_index("_step")
    assert (got.loc[: reported, "i"] == np.arange(reported + 1)).all()
    assert (got.loc[: reported, "x"] == np.arange(reported + 1) * 0.5).all()
    assert got.loc[7, "note"] == "seven" and np.isnan(got.loc[11, "nan"])


def test_crashed_run_can_be_resumed_and_continues():
    run_python("""
        import os, nbtracker
        run = nbtracker.init(project="res", id="again1", config={"lr": 0.1})
        nbtracker.define_metric("loss", summary="min")
        for i in range(5):
            nbtracker.log({"loss": 1.0 / (i + 1)})
        run.summary["note"] = "first"
        os.kill(os.getpid(), 9)
    """, check=False)
    assert api_run("res/again1").state == "crashed"
    run = nbtracker.init(project="res", id="again1", resume="allow")
    assert run.resumed and run.step == 5
    assert run.config["lr"] == 0.1 and run.summary["note"] == "first"
    nbtracker.log({"loss": 5.0})
    assert run.summary["loss"] == 0.2  # min rule carried over
    run.finish()
    r = api_run("res/again1")
    assert r.state == "finished"
    assert r.history()["_step"].tolist() == [0, 1, 2, 3, 4, 5]


def test_resume_must_and_never_and_existing_id():
    with pytest.raises(nbtracker.UsageError, match="no run"):
        nbtracker.init(project="res", id="nothere", resume="must")
    run = nbtracker.init(project="res", id="dup1")
    run.finish()
    with pytest.raises(nbtracker.UsageError, match="already exists"):
        nbtracker.init(project="res", id="dup1")
    with pytest.raises(nbtracker.UsageError, match="resume='never'"):
        nbtracker.init(project="res", id="dup1", resume="never")


def test_resume_of_a_live_run_is_refused():
    child = _child("""
import nbtracker, sys, time
run = nbtracker.init(project="res", id="live1")
print("ready", flush=True)
sys.stdin.readline() if False else time.sleep(30)
""")
    assert child.stdout.readline().strip() == "ready"
    try:
        with pytest.raises(nbtracker.UsageError, match="still running"):
            nbtracker.init(project="res", id="live1", resume=True)
        assert api_run("res/live1").state == "running"
    finally:
        child.kill()
        child.wait(10)
    assert api_run("res/live1").state == "crashed"


def test_corrupt_middle_record_is_skipped_and_reported(store, capsys):
    run = nbtracker.init(project="c")
    for i in range(100):
        nbtracker.log({"i": i, "tag": f"t{i}"})  # strings: every record is parsed from the log
    run.finish()
    log = f"{run.storage_dir}/records.jsonl"
    lines = open(log, "rb").read().split(b"\n")
    target = next(n for n, line in enumerate(lines) if b'"i":50,' in line)
    lines[target] = lines[target][:20] + b"\x00garbage{{" + lines[target][40:]
    open(log, "wb").write(b"\n".join(lines))
    r = api_run(run.path)
    df = r.history()
    assert len(df) == 99 and 50 not in df["i"].tolist()
    assert df["i"].tolist() == [i for i in range(100) if i != 50]
    assert "1 corrupt record(s)" in capsys.readouterr().err
    assert r.state == "finished"


def test_torn_last_record_is_ignored_then_repaired_on_resume():
    run = nbtracker.init(project="c", id="torn1")
    for i in range(10):
        nbtracker.log({"i": i})
    run.finish()
    log = f"{run.storage_dir}/records.jsonl"
    with open(log, "ab") as f:
        f.write(b'{"t":"history","seq":99,"ts":1,"step":10,"d":{"i":')
    assert api_run("c/torn1").history()["i"].tolist() == list(range(10))
    run = nbtracker.init(project="c", id="torn1", resume="must")
    nbtracker.log({"i": 10})
    run.finish()
    assert api_run("c/torn1").history()["i"].tolist() == list(range(11))


def test_column_blocks_are_an_exact_copy_of_the_log():
    """Mixed keys, strings, NaN, commit=False, metadata in between: the history read with
    the column file equals the history read from the log alone."""
    rng = np.random.default_rng(0)
    run = nbtracker.init(project="cols")
    for i in range(30000):
        row = {"a": float(rng.random()), "n": i}
        if i % 5000 == 0:
            run.config.update({f"k{i}": i})
        if i % 997 == 0:
            row["s"] = "text"
        if 12000 <= i < 15000:
            row["b"] = i * 2
        if i % 1234 == 0:
            row["a"] = float("nan")
        if i % 333 == 0:
            nbtracker.log({"part": 1.5}, commit=False)
        nbtracker.log(row)
    run.finish()
    cols = f"{run.storage_dir}/{COLS_NAME}"
    assert os.path.getsize(cols) > 0
    with_blocks = api_run(run.path).history()
    os.rename(cols, cols + ".off")
    log_only = api_run(run.path).history()
    pd.testing.assert_frame_equal(with_blocks, log_only, check_dtype=False)
    assert len(log_only) == 30000 and log_only["n"].tolist() == list(range(30000))
    # a damaged column file costs speed, not data
    data = bytearray(open(cols + ".off", "rb").read())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64
    open(cols, "wb").write(bytes(data))
    pd.testing.assert_frame_equal(api_run(run.path).history(), log_only, check_dtype=False)
    open(cols, "wb").write(b'{"n": 2, "keys": ["a"], "seq0": 5, "seq1": 6, "off0": 0, '
                           b'"off1": 10}\n' + (32).to_bytes(8, "little") + b"\0" * 32)
    pd.testing.assert_frame_equal(api_run(run.path).history(), log_only, check_dtype=False)


def test_two_processes_log_to_one_project_at_once():
    code = """
import nbtracker, sys
run = nbtracker.init(project="shared", config={"who": sys.argv[1]})
for i in range(3000):
    nbtracker.log({"v": i, "who": float(sys.argv[1])})
nbtracker.finish()
print(run.id)
"""
    env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="1")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(k)], stdout=subprocess.PIPE,
                              text=True, env=env) for k in range(2)]
    ids = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and len(set(ids)) == 2
    runs = nbtracker.Api().runs("shared")
    assert sorted(r.id for r in runs) == sorted(ids)
    for r in runs:
        df = r.history()
        assert r.state == "finished" and len(df) == 3000
        assert (df["who"] == float(r.config["who"])).all()


def test_full_disk_keeps_the_loop_alive_and_loses_nothing():
    p = run_python("""
        import resource, signal, os, nbtracker
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        run = nbtracker.init(project="disk", id="full1")
        nbtracker.log({"i": -1})
        size = os.path.getsize(os.path.join(run.storage_dir, "records.jsonl"))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 300, hard))
        for i in range(200):
            nbtracker.log({"i": i, "s": "x" * 10})
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
        nbtracker.log({"i": 200})
        nbtracker.finish()
        print("alive")
    """)
    assert "alive" in p.stdout
    assert p.stderr.count("cannot write to") == 1
    df = api_run("disk/full1").history()
    assert df["i"].tolist() == list(range(-1, 201))


def test_index_is_derived_and_rebuilt(store):
    run = nbtracker.init(project="idx", config={"lr": 0.5})
    nbtracker.log({"acc": 0.75})
    run.finish()
    os.remove(store / "index.sqlite")
    runs = nbtracker.Api().runs("idx")
    assert [r.id for r in runs] == [run.id]
    assert runs[0].summary["acc"] == 0.75 and runs[0].config["lr"] == 0.5
    assert nbtracker.Api().reindex() == 1


def test_index_catches_up_with_records_appended_after_a_snapshot():
    run = nbtracker.init(project="idx")
    nbtracker.log({"acc": 0.5})
    run._snapshot()
    nbtracker.log({"acc": 0.9})
    # a reader while the run is live: replays what the snapshot has not seen
    assert api_run(run.path).summary["acc"] == 0.9
    run.finish()
    assert api_run(run.path).summary["acc"] == 0.9


def test_record_log_is_plain_json_lines():
    run = nbtracker.init(project="fmt", config={"lr": 0.1})
    nbtracker.log({"loss": 0.5, "x": float("inf")})
    run.finish()
    recs = [json.loads(line) for line in open(f"{run.storage_dir}/records.jsonl")]
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    assert [r["t"] for r in recs] == ["run", "config", "history", "exit"]
    assert recs[2]["d"] == {"loss": 0.5, "x": None} and recs[2]["nf"] == {"x": "inf"}


def test_damaged_index_is_started_again(store):
    run = nbtracker.init(project="idx")
    nbtracker.log({"acc": 0.5})
    run.finish()
    (store / "index.sqlite").write_bytes(b"not a database" * 100)
    runs = nbtracker.Api().runs("idx")
    assert [r.id for r in runs] == [run.id] and runs[0].summary["acc"] == 0.5


def test_torn_column_file_is_repaired_on_resume():
    from nbtracker.store.columns import read_blocks

    run = nbtracker.init(project="cols", id="tornc")
    for i in range(9000):
        nbtracker.log({"i": i})
    run.finish()
    cols = f"{run.storage_dir}/{COLS_NAME}"
    with open(cols, "ab") as f:
        f.write(b'{"n": 5, "keys": ["i"]')  # a block cut short by a crash
    run = nbtracker.init(project="cols", id="tornc", resume="must")
    for i in range(9000, 18000):
        nbtracker.log({"i": i})
    run.finish()
    blocks = list(read_blocks(run.storage_dir))
    assert blocks[-1][0]["seq1"] > blocks[0][0]["seq1"]  # blocks after the resume are readable
    assert sum(len(rows) for _, rows in blocks) >= 16000
    assert api_run("cols/tornc").history()["i"].tolist() == list(range(18000))
