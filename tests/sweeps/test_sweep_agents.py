"""Subprocess-mode agents as a user runs them: `nbtracker sweep` then `nbtracker agent` processes
(several at once, interrupted, killed, on two "machines" sharing PostgreSQL, pruning), the result
read back through `nbtracker.Api` and the sweep's trials table."""

from __future__ import annotations

import itertools
import os
import signal
import sys
import time
import uuid

import pytest
from sweepcli import HOLD_PROGRAM, HOLD_SWEEP, Agents, alive, env_for, make_sweep, nbt, views, write

import nbtracker
from nbtracker.sweeps.engine import open_sweep

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups as on Linux")

@pytest.fixture
def agents(tmp_path):
    a = Agents(tmp_path)
    yield a
    a.close()


def point_runs(project: str, sweep_id: str, keys=("a", "b")) -> dict:
    """{point: [run state, ...]} of the sweep's runs, read through the Api."""
    out: dict = {}
    for r in nbtracker.Api().runs(project, filters={"sweep": sweep_id}):
        out.setdefault(tuple(r.config.get(k) for k in keys), []).append(r.state)
    return out


def test_grid_covers_each_point_once_with_four_concurrent_agents(tmp_path, store, agents):
    write(tmp_path / "train.py", """
        import argparse, nbtracker
        p = argparse.ArgumentParser()
        p.add_argument("--a", type=int)
        p.add_argument("--b", type=int)
        args = p.parse_args()
        run = nbtracker.init()
        run.log({"loss": args.a * 10 + args.b, "a": args.a, "b": args.b})
        run.finish()
        """)
    sid = make_sweep("""
        program: train.py
        method: grid
        project: grid4
        metric: {name: loss, goal: minimize}
        parameters:
          a: {values: [0, 1, 2, 3, 4, 5]}
          b: {values: [0, 1, 2, 3]}
        """, tmp_path)
    procs = [agents.start(sid) for _ in range(4)]
    codes = [agents.wait(p, timeout=120) for p in procs]
    assert codes == [0, 0, 0, 0], "\n".join(agents.log(i) for i in range(4))

    points = set(itertools.product(range(6), range(4)))
    runs = point_runs("grid4", sid)
    assert set(runs) == points  # none missing, nothing else
    assert all(states == ["finished"] for states in runs.values()), runs  # each exactly once
    api_runs = nbtracker.Api().runs("grid4", filters={"sweep": sid})
    assert all(r.summary["loss"] == r.config["a"] * 10 + r.config["b"] for r in api_runs)

    table = views(sid, store)
    assert len(table) == 24 and {v.state for v in table} == {"finished"}
    assert sorted((v.params["a"], v.params["b"]) for v in table) == sorted(points)
    assert {v.run_id for v in table} == {r.id for r in api_runs}
    # (an agent that asked once the grid was taken holds a `skipped` trial, never stamped)
    pids = {t.user_attrs["nbt_agent"]["pid"] for t in open_sweep(sid, root=store).trials()
            if t.user_attrs.get("nbt_state") != "skipped"}
    assert len(pids) >= 2  # the agents shared the grid
    show = nbt("sweep", "show", sid)
    assert show.returncode == 0 and "24 done of 24, 0 running, 0 left" in show.stdout


def test_interrupted_agent_leaves_no_process_and_the_point_runs_again(tmp_path, store, agents):
    write(tmp_path / "train.py", HOLD_PROGRAM)
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    held = [pids["main"], pids["child"], pids["grand"]]
    assert len(alive(held)) == 3
    # the grandchild left the trial's process group: the agent finds it by its ancestry, which
    # it notes every TRACK_INTERVAL (0.5 s) while it waits
    assert os.getpgid(pids["grand"]) != os.getpgid(pids["main"])
    time.sleep(1.0)
    os.kill(agent.pid, signal.SIGINT)
    assert agents.wait(agent, timeout=30) == 130, agents.log()
    assert alive(held) == []
    assert "agent stopped (Ctrl-C)" in agents.log()

    trial = next(v for v in views(sid, store) if v.run_id == pids["run"])
    assert (trial.state, trial.exit, trial.params) == ("interrupted", "Ctrl-C", {"a": 1})
    assert nbtracker.Api().run(f"held/{pids['run']}").state == "interrupted"

    (agents.watch / "go").touch()  # trials no longer hold
    again = agents.start(sid)
    assert agents.wait(again, timeout=60) == 0, agents.log()
    assert point_runs("held", sid, ("a",)) == {
        (1,): ["finished", "interrupted"], (2,): ["finished"], (3,): ["finished"]}
    table = views(sid, store)
    retry = next(v for v in table if v.retry_of == trial.number)
    assert (retry.state, retry.params) == ("finished", {"a": 1})
    assert sorted(v.state for v in table) == ["finished"] * 3 + ["interrupted"]


def test_sigterm_ends_the_agent_as_ctrl_c_does(tmp_path, store, agents):
    write(tmp_path / "train.py", HOLD_PROGRAM)
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    time.sleep(1.0)  # the agent has noted the grandchild (see above)
    os.kill(agent.pid, signal.SIGTERM)
    assert agents.wait(agent, timeout=30) == 130, agents.log()
    assert alive([pids["main"], pids["child"], pids["grand"]]) == []
    trial = next(v for v in views(sid, store) if v.run_id == pids["run"])
    assert (trial.state, trial.exit) == ("interrupted", "SIGTERM")


def test_a_crashed_agents_trial_is_ended_and_its_point_run_again(tmp_path, store, agents):
    write(tmp_path / "train.py", HOLD_PROGRAM)
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    held = [pids["main"], pids["child"], pids["grand"]]
    os.kill(agent.pid, signal.SIGKILL)
    assert agents.wait(agent, timeout=10) == -signal.SIGKILL
    assert len(alive(held)) == 3  # orphaned: the trial runs on without its agent
    assert next(v for v in views(sid, store) if v.run_id == pids["run"]).state == "running"

    (agents.watch / "go").touch()  # new trials do not hold; the orphan still does
    later = agents.start(sid)
    assert agents.wait(later, timeout=60) == 0, agents.log()
    assert alive(held) == []  # the new agent ended what the dead one left running
    table = views(sid, store)
    crashed = next(v for v in table if v.run_id == pids["run"])
    assert (crashed.state, crashed.exit) == ("crashed", "the agent running it ended")
    retry = next(v for v in table if v.retry_of == crashed.number)
    assert (retry.state, retry.params) == ("finished", {"a": 1})
    assert sorted(v.state for v in table) == ["crashed"] + ["finished"] * 3
    runs = point_runs("held", sid, ("a",))
    assert runs[(2,)] == runs[(3,)] == ["finished"]
    assert sorted(runs[(1,)]) == ["crashed", "finished"]


PG_URL = os.environ.get("NBTRACKER_TEST_DATABASE_URL")


@pytest.mark.skipif(not PG_URL, reason="set NBTRACKER_TEST_DATABASE_URL to a PostgreSQL database")
def test_two_machines_share_a_postgresql_sweep(tmp_path, agents):
    import optuna

    from nbtracker.sweeps.engine import _rdb_storage, storage_url

    write(tmp_path / "train.py", """
        import argparse, time, nbtracker
        p = argparse.ArgumentParser()
        p.add_argument("--a", type=int)
        p.add_argument("--b", type=int)
        args = p.parse_args()
        run = nbtracker.init()
        run.log({"loss": args.a * 10 + args.b, "a": args.a, "b": args.b})
        time.sleep(0.2)
        run.finish()
        """)
    one, two = tmp_path / "machine1", tmp_path / "machine2"
    project = f"pg{uuid.uuid4().hex[:8]}"
    sid = make_sweep(f"""
        program: train.py
        method: grid
        project: {project}
        metric: {{name: loss, goal: minimize}}
        parameters:
          a: {{values: [0, 1, 2]}}
          b: {{values: [0, 1]}}
        """, tmp_path, "--storage", PG_URL, env=env_for(one))
    try:
        # the second machine knows the id and the URL, nothing else
        assert nbt("sweep", "show", sid, env=env_for(two)).returncode == 1
        first = agents.start(sid, env=env_for(one))
        second = agents.start(f"someone/{project}/{sid}", "--storage", PG_URL, env=env_for(two))
        assert agents.wait(first, timeout=120) == 0, agents.log(0)
        assert agents.wait(second, timeout=120) == 0, agents.log(1)

        ran = {}
        for root in (one, two):
            runs = nbtracker.Api(dir=root).runs(project, filters={"sweep": sid})
            ran[root] = [(r.config["a"], r.config["b"]) for r in runs if r.state == "finished"]
            assert len(runs) == len(ran[root])
        assert ran[one] and ran[two], ran  # the trials were split between the machines
        every = ran[one] + ran[two]
        assert sorted(every) == sorted(itertools.product(range(3), range(2)))  # none twice
        table = views(sid, two, storage=PG_URL)
        assert len(table) == 6 and {v.state for v in table} == {"finished"}
        ls = nbt("sweep", "ls", project, "--storage", PG_URL, env=env_for(two))
        assert ls.returncode == 0 and sid in ls.stdout and "6/6" in ls.stdout, ls.stdout
    finally:
        optuna.delete_study(study_name=sid, storage=_rdb_storage(storage_url(PG_URL)))


HYPERBAND_PROGRAM = """
import argparse, os, subprocess, sys, time
from pathlib import Path
import nbtracker

p = argparse.ArgumentParser()
p.add_argument("--x", type=int)
args = p.parse_args()
run = nbtracker.init(**({"dir": os.environ["TRIAL_DIR"]} if os.environ.get("TRIAL_DIR") else {}))
watch = Path(os.environ["WATCH"])
bad = args.x >= 10
if bad:  # a worker of its own, in the trial's process group
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    (watch / f"child-{run.id}").write_text(str(child.pid))
for i in range(40 if bad else 6):
    run.log({"loss": 100.0 + i if bad else 1.0 / (i + 1)})
    if bad:
        time.sleep(0.1)
if bad:
    (watch / f"completed-{run.id}").touch()
run.finish()
"""


@pytest.mark.parametrize("own_dir", [False, True], ids=["store", "init-dir"])
def test_hyperband_stops_the_bad_trials_of_a_subprocess_sweep(tmp_path, store, agents, own_dir):
    write(tmp_path / "train.py", HYPERBAND_PROGRAM)
    sid = make_sweep("""
        program: train.py
        method: grid
        project: hb
        metric: {name: loss, goal: minimize}
        early_terminate: {type: hyperband, min_iter: 2, eta: 2}
        parameters:
          x: {values: [0, 1, 2, 10, 11]}
        """, tmp_path)
    env = env_for(TRIAL_DIR=str(tmp_path / "elsewhere")) if own_dir else None
    agent = agents.start(sid, env=env)
    assert agents.wait(agent, timeout=90) == 0, agents.log()

    api = nbtracker.Api()
    runs = {r.config["x"]: r for r in api.runs("hb", filters={"sweep": sid})}
    assert sorted(runs) == [0, 1, 2, 10, 11]
    for x in (0, 1, 2):
        assert runs[x].state == "finished" and runs[x].summary["loss"] == pytest.approx(1 / 6)
    for x in (10, 11):
        r = runs[x]
        assert r.state == "pruned", agents.log()
        assert r.summary["loss"] < 100 + 39  # stopped well before its 40 values
        assert not (agents.watch / f"completed-{r.id}").exists()
        child = int((agents.watch / f"child-{r.id}").read_text())
        assert alive([child]) == []  # the trial's process group was ended
    table = {v.params["x"]: v for v in views(sid, store)}
    assert [table[x].state for x in (0, 1, 2, 10, 11)] == ["finished"] * 3 + ["pruned"] * 2
    assert table[10].exit.startswith("hyperband, at ")
