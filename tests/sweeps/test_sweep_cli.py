"""`nbtracker sweep` and `nbtracker agent` as a user runs them, in separate processes: making a
sweep, its state (pause, resume, stop, cancel), requeue-failed, ls and show, bad input, and the
seed post's sweep.yaml."""

from __future__ import annotations

import json
import os
import sys

import pytest
from sweepcli import (
    HOLD_PROGRAM,
    HOLD_SWEEP,
    Agents,
    alive,
    env_for,
    make_sweep,
    nbt,
    sweep_state,
    views,
    wait_for,
    write,
)

import nbtracker
from nbtracker.sweeps.process import interpreter_path

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups as on Linux")

@pytest.fixture
def agents(tmp_path):
    a = Agents(tmp_path)
    write(tmp_path / "train.py", HOLD_PROGRAM)
    yield a
    a.close()


def states(sweep_id, store) -> list[str]:
    return sorted(v.state for v in views(sweep_id, store))


def one_line_error(p, code: int = 1) -> str:
    assert p.returncode == code, (p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbtracker: "), p.stderr
    assert p.stdout == ""
    return lines[0]


def nothing_made(store) -> bool:
    folder = store / "sweeps"
    return not folder.exists() or not any(folder.iterdir())


# -- making a sweep ------------------------------------------------------------------------
def test_sweep_prints_the_id_alone_on_its_last_line(tmp_path, store):
    write(tmp_path / "sweep.yaml", HOLD_SWEEP)
    p = nbt("sweep", "sweep.yaml", "--seed", "4", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    sid = p.stdout.splitlines()[-1]
    assert p.stdout == sid + "\n"
    assert f"created sweep {sid} (project held, grid, 3 grid points)" in p.stderr
    assert f"nbtracker agent {sid}" in p.stderr
    api_sweep = nbtracker.Api().sweep(sid)
    assert (api_sweep.project, api_sweep.state, api_sweep.expected_run_count) == ("held", "running", 3)
    assert api_sweep._sweep.seed == 4
    # --project wins over the config's
    p = nbt("sweep", "--project", "other", "--entity", "team", str(tmp_path / "sweep.yaml"))
    assert p.returncode == 0, p.stderr
    other = nbtracker.Api().sweep(p.stdout.split()[-1])
    assert (other.project, other.entity) == ("other", "team")


def test_an_invalid_config_is_one_line_naming_the_parameter_and_makes_nothing(tmp_path, store):
    write(tmp_path / "bad.yaml", """
        method: random
        parameters:
          lr: {min: 1.0, max: 0.1}
        """)
    line = one_line_error(nbt("sweep", str(tmp_path / "bad.yaml")))
    assert line == "nbtracker: invalid sweep config: parameters.lr: min 1.0 is not less than max 0.1"
    write(tmp_path / "two.yaml", """
        method: bayes
        parameters:
          lr: {min: 1.0, max: 0.1}
          opt: {parameters: {name: {valuez: [adam]}}}
        """)
    line = one_line_error(nbt("sweep", str(tmp_path / "two.yaml")))
    assert "problems" in line and "parameters.lr" in line and "parameters.opt.parameters.name" in line
    line = one_line_error(nbt("sweep", str(tmp_path / "missing.yaml")))
    assert "cannot read the sweep file" in line and "missing.yaml" in line
    assert nothing_made(store)


def test_unknown_sweeps_are_one_line_each(tmp_path, store):
    for args in (["agent", "nosuch1"], ["sweep", "pause", "nosuch1"], ["sweep", "show", "nosuch1"],
                 ["sweep", "requeue-failed", "me/proj/nosuch1"], ["sweep", "resume", "Bad!Id"]):
        line = one_line_error(nbt(*args))
        assert "nosuch1" in line or "Bad!Id" in line, line
    line = one_line_error(nbt("agent", "nosuch1"))
    assert "--storage" in line  # says how to reach a sweep made on another machine


def test_a_bad_storage_is_one_line_and_makes_nothing(tmp_path, store):
    write(tmp_path / "sweep.yaml", HOLD_SWEEP)
    line = one_line_error(nbt("sweep", "--storage", "mysql://me@db/nbt", str(tmp_path / "sweep.yaml")))
    assert "PostgreSQL URL" in line and "mysql://me@db/nbt" in line
    # nothing listens on port 9 here: the database cannot be opened
    refused = "postgresql://me:secret@127.0.0.1:9/nbt"
    line = one_line_error(nbt("sweep", "--storage", refused, str(tmp_path / "sweep.yaml")))
    assert "cannot open the sweep storage" in line and "secret" not in line
    assert "\\n" not in line and "Connection refused" in line, line
    assert nothing_made(store)
    line = one_line_error(nbt("agent", "abc123", "--storage", refused))
    assert "cannot open the sweep storage" in line
    line = one_line_error(nbt("sweep", "ls", "--storage", "sqlite:///x.db"))
    assert "PostgreSQL URL" in line


def test_bad_usage_exits_2(store):
    for args in (["sweep", "pause"], ["sweep", "show", "a", "b"], ["sweep", "ls", "a", "b"],
                 ["sweep", "a.yaml", "b.yaml"], ["sweep", "pause", "abc", "--seed", "3"],
                 ["agent", "abc", "--count", "-1"], ["agent"]):
        p = nbt(*args)
        assert p.returncode == 2, (args, p.stderr)
        assert p.stderr.strip().splitlines()[-1].startswith(("nbtracker: ", "nbtracker agent: "))


# -- the sweep's state ---------------------------------------------------------------------
def test_pause_makes_the_agent_wait_and_resume_lets_it_go_on(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    p = nbt("sweep", "pause", sid)
    assert p.returncode == 0 and f"sweep {sid}: running -> paused" in p.stdout, p.stderr
    (agents.watch / "go").touch()
    (agents.watch / "release").touch()  # the trial that runs finishes: pausing does not end it
    wait_for(lambda: "is paused; waiting" in agents.log(), 30, "the agent to wait", agents.log)
    assert agent.poll() is None
    assert states(sid, store) == ["finished", "queued", "queued"]
    assert nbtracker.Api().run(f"held/{pids['run']}").state == "finished"
    assert one_line_error(nbt("sweep", "pause", sid)).endswith("only a running sweep is paused")

    p = nbt("sweep", "resume", sid)
    assert p.returncode == 0 and "paused -> running; 2 trial(s) left" in p.stdout, p.stdout
    assert agents.wait(agent, timeout=60) == 0, agents.log()
    assert states(sid, store) == ["finished"] * 3
    assert sweep_state(sid, store) == "finished"


def test_stop_lets_the_running_trial_finish_and_resume_runs_what_is_left(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    p = nbt("sweep", "stop", sid)
    assert p.returncode == 0 and "running -> stopped" in p.stdout
    (agents.watch / "go").touch()
    (agents.watch / "release").touch()
    assert agents.wait(agent, timeout=30) == 0, agents.log()
    assert f"sweep {sid} is stopped; the agent stops" in agents.log()
    assert nbtracker.Api().run(f"held/{pids['run']}").state == "finished"
    assert states(sid, store) == ["finished", "queued", "queued"]
    ls = nbt("sweep", "ls")
    assert ls.returncode == 0
    row = next(ln for ln in ls.stdout.splitlines() if ln.startswith(sid)).split()
    assert row[:8] == [sid, "held", "-", "grid", "stopped", "1/3", "0", "2"], ls.stdout

    # a stopped sweep resumed runs the rest
    p = nbt("sweep", "resume", sid)
    assert p.returncode == 0 and "stopped -> running; 2 trial(s) left" in p.stdout, p.stdout
    assert agents.wait(agents.start(sid), timeout=60) == 0, agents.log()
    assert states(sid, store) == ["finished"] * 3
    assert sweep_state(sid, store) == "finished"
    # and a finished one has nothing left: resume says so
    p = nbt("sweep", "resume", sid)
    assert p.returncode == 0 and "nothing is left to run" in p.stdout, p.stdout


def test_cancel_ends_the_running_trial(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    agent = agents.start(sid)
    pids = agents.trial_pids()
    p = nbt("sweep", "cancel", sid)
    assert p.returncode == 0 and "running -> cancelled" in p.stdout
    # the agent looks at the sweep's state every 2 s while a trial runs
    assert agents.wait(agent, timeout=30) == 0, agents.log()
    assert alive([pids["main"], pids["child"], pids["grand"]]) == []
    table = views(sid, store)
    trial = next(v for v in table if v.run_id == pids["run"])
    assert (trial.state, trial.exit) == ("interrupted", "the sweep was cancelled")
    assert nbtracker.Api().run(f"held/{pids['run']}").state == "interrupted"
    assert sorted(v.state for v in table) == ["interrupted", "queued", "queued", "queued"]
    # an agent started on a cancelled sweep does nothing
    late = agents.start(sid)
    assert agents.wait(late, timeout=30) == 0
    assert f"sweep {sid} is cancelled; the agent stops" in agents.log()
    assert one_line_error(nbt("sweep", "cancel", sid)).endswith("is cancelled already")
    assert one_line_error(nbt("sweep", "stop", sid)).endswith("is cancelled already")


def test_requeue_failed_runs_the_failed_point_again(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    (agents.watch / "go").touch()
    (agents.watch / "fail_on").write_text("2")  # the program fails on a=2 with exit status 3
    assert agents.wait(agents.start(sid), timeout=60) == 0, agents.log()
    failed = next(v for v in views(sid, store) if v.state == "failed")
    assert (failed.params, failed.exit) == ({"a": 2}, "exit code 3")
    assert nbtracker.Api().run(f"held/{failed.run_id}").state == "failed"
    show = nbt("sweep", "show", sid)
    assert show.returncode == 0 and "exit code 3" in show.stdout
    assert "3 done of 3, 0 running, 0 left" in show.stdout, show.stdout
    assert sweep_state(sid, store) == "finished"

    p = nbt("sweep", "requeue-failed", sid)
    assert p.returncode == 0 and f"requeued 1 trial(s) (#{failed.number})" in p.stdout, p.stdout
    assert sweep_state(sid, store) == "running"
    (agents.watch / "fail_on").unlink()  # the program is fixed
    assert agents.wait(agents.start(sid), timeout=60) == 0, agents.log()
    table = views(sid, store)
    retry = next(v for v in table if v.retry_of == failed.number)
    assert (retry.state, retry.params, retry.exit) == ("finished", {"a": 2}, None)
    runs = nbtracker.Api().runs("held", filters={"sweep": sid, "config.a": 2})
    assert sorted(r.state for r in runs) == ["failed", "finished"]
    p = nbt("sweep", "requeue-failed", sid)
    assert p.returncode == 0 and "no failed or crashed trial" in p.stdout


def test_ls_lists_sweeps_with_their_trials_and_best(tmp_path, store, agents):
    grid = make_sweep(HOLD_SWEEP, tmp_path)
    (agents.watch / "go").touch()
    assert agents.wait(agents.start(grid, "--count", "2"), timeout=60) == 0, agents.log()
    capped = make_sweep("""
        program: train.py
        method: random
        project: other
        name: capped
        run_cap: 5
        parameters:
          a: {values: [1, 2]}
        """, tmp_path)
    endless = make_sweep("""
        program: train.py
        method: bayes
        project: other
        metric: {name: loss, goal: maximize}
        parameters:
          a: {min: 1, max: 9}
        """, tmp_path)
    p = nbt("sweep", "ls")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "PROJECT", "NAME", "METHOD", "STATE", "TRIALS", "RUNNING",
                                "LEFT", "BEST", "CREATED"]
    assert [ln.split()[0] for ln in lines[1:]] == [endless, capped, grid]  # newest first
    assert lines[3].split()[:8] == [grid, "held", "-", "grid", "running", "2/3", "0", "1"]
    assert lines[2].split()[:8] == [capped, "other", "capped", "random", "running", "0/5", "0", "5"]
    assert lines[1].split()[:8] == [endless, "other", "-", "bayes", "running", "0", "0", "-"]
    assert lines[3].split()[8:10] == ["loss=10", "(#0)"]
    p = nbt("sweep", "ls", "held")
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == [grid]
    p = nbt("sweep", "ls", "--project", "other")
    assert [ln.split()[0] for ln in p.stdout.splitlines()[1:]] == [endless, capped]
    p = nbt("sweep", "ls", "nobody")
    assert p.returncode == 0 and p.stdout.strip() == "no sweeps in project 'nobody'"


def test_show_prints_the_trials_table(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    (agents.watch / "go").touch()
    assert agents.wait(agents.start(f"entity/held/{sid}", "--count", "2"), timeout=60) == 0
    p = nbt("sweep", "show", f"held/{sid}")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[0] == f"sweep    held/{sid}"
    assert "state    running" in out and "trials   2 done of 3, 0 running, 1 left" in out
    best = next(ln for ln in out if ln.startswith("best"))
    head = out.index(next(ln for ln in out if ln.startswith("#")))
    assert out[head].split() == ["#", "STATE", "RUN", "a", "loss", "DURATION", "EXIT"]
    rows = [ln.split() for ln in out[head + 1:]]
    assert [r[:2] for r in rows] == [["0", "finished"], ["1", "finished"], ["2", "queued"]]
    assert [r[3:5] for r in rows[:2]] == [["1", "10"], ["2", "20"]]
    assert rows[0][2] in best and "loss=10 (#0)" in best


# -- what a trial runs -----------------------------------------------------------------------
def test_interpreter_path_puts_the_agents_interpreter_first():
    venv = "/home/me/venv/bin/python"
    assert interpreter_path("/usr/bin:/bin", venv) == "/home/me/venv/bin:/usr/bin:/bin"
    assert interpreter_path("/home/me/venv/bin:/usr/bin", venv) == "/home/me/venv/bin:/usr/bin"
    assert interpreter_path("/usr/bin:/home/me/venv/bin", venv) == \
        "/home/me/venv/bin:/usr/bin:/home/me/venv/bin"  # first, so python3 is its
    assert interpreter_path(None, venv) == "/home/me/venv/bin"
    assert interpreter_path("/usr/bin", "") == "/usr/bin"


SEED_SWEEP = """
program: train/train_mpe.py
project: sweep_MPE
name: simple_spread_mlp
command:
  - ${env}
  - python3
  - ${program}
  - --recurrent_policy
  - ${args}
method: grid
metric:
  goal: maximize
  name: average_episode_rewards
parameters:
  env_name:
    distribution: constant
    value: "MPE"
  scenario_name:
    distribution: constant
    value: "simple_spread"
  algorithm_name:
    distribution: constant
    value: "hyper_sweep"
  num_agents:
    distribution: constant
    value: 3
  seed:
    distribution: constant
    value: 1
  n_rollout_threads:
    distribution: constant
    value: 128
  num_env_steps:
    distribution: constant
    value: 10000000
  gain:
    distribution: constant
    value: 0.01
  lr:
    distribution: categorical
    values: [0.01, 0.001]
  ppo_epoch:
    distribution: categorical
    values: [10, 25]
"""

SEED_PROGRAM = """
import argparse, json, os, sys
from pathlib import Path
import nbtracker as wandb

parser = argparse.ArgumentParser()
parser.add_argument("--recurrent_policy", action="store_true", default=False)
for name, kind in [("env_name", str), ("scenario_name", str), ("algorithm_name", str),
                   ("num_agents", int), ("seed", int), ("n_rollout_threads", int),
                   ("num_env_steps", int), ("gain", float), ("lr", float), ("ppo_epoch", int)]:
    parser.add_argument(f"--{name}", type=kind)
args = parser.parse_args()
assert args.recurrent_policy
model_dir = Path("results") / args.env_name
model_dir.mkdir(parents=True, exist_ok=True)
run = wandb.init(config=args, project=args.env_name,
                 name=str(args.algorithm_name) + "_seed" + str(args.seed),
                 group=args.scenario_name, dir=str(model_dir), job_type="training", reinit=True)
for total_num_steps in (100, 200, 300):
    wandb.log({"value_loss": args.lr * 1000 / total_num_steps,
               "average_episode_rewards": args.ppo_epoch * total_num_steps / 100},
              step=total_num_steps)
run.finish()
Path(os.environ["WATCH"], run.id + ".json").write_text(json.dumps({
    "executable": sys.executable, "prefix": sys.prefix, "path": os.environ["PATH"]}))
"""


def test_the_seed_posts_sweep_runs(tmp_path, store, agents):
    write(tmp_path / "train" / "train_mpe.py", SEED_PROGRAM)
    write(tmp_path / "sweep.yaml", SEED_SWEEP)
    p = nbt("sweep", "sweep.yaml", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    sid = p.stdout.split()[-1]
    # `python3` in the command is the agent's interpreter even when its virtualenv is not on
    # PATH: the agent puts its folder first
    env = env_for(PATH="/usr/bin:/bin")
    assert agents.wait(agents.start(sid, env=env), timeout=90) == 0, agents.log()

    runs = nbtracker.Api().runs("sweep_MPE", filters={"sweep": sid})
    assert len(runs) == 4 and {r.state for r in runs} == {"finished"}
    assert sorted((r.config["lr"], r.config["ppo_epoch"]) for r in runs) == [
        (0.001, 10), (0.001, 25), (0.01, 10), (0.01, 25)]
    for r in runs:
        assert r.config["recurrent_policy"] is True and r.config["num_env_steps"] == 10000000
        assert (r.name, r.group, r.job_type) == ("hyper_sweep_seed1", "simple_spread", "training")
        seen = json.loads((agents.watch / f"{r.id}.json").read_text())
        assert os.path.dirname(seen["executable"]) == os.path.dirname(sys.executable)
        assert seen["prefix"] == sys.prefix
        assert seen["path"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    ls = nbt("sweep", "ls", "sweep_MPE").stdout.splitlines()[1].split()
    assert ls[:6] == [sid, "sweep_MPE", "simple_spread_mlp", "grid", "finished", "4/4"]
    best = next(v for v in views(sid, store) if v.value == max(v.value for v in views(sid, store)))
    assert best.params["ppo_epoch"] == 25 and best.value == 75.0  # maximize: the last value


def test_a_relative_program_is_found_from_the_agents_folder(tmp_path, store, agents):
    sid = make_sweep(HOLD_SWEEP, tmp_path)
    (agents.watch / "go").touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    p = agents.start(sid, cwd=elsewhere)
    assert agents.wait(p, timeout=30) == 1
    assert "its program 'train.py' is not in" in agents.log() and str(elsewhere) in agents.log()
    assert states(sid, store) == ["queued"] * 3  # nothing ran
    assert agents.wait(agents.start(sid, "--count", "1", cwd=tmp_path), timeout=60) == 0
    assert states(sid, store) == ["finished", "queued", "queued"]

