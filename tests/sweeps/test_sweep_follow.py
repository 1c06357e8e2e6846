"""Subprocess mode: the agent follows the metric a trial logs, wherever the trial keeps its run."""

from __future__ import annotations

import sys
import textwrap

import pytest

import nbtracker
from nbtracker.sweeps.agent import Agent
from nbtracker.sweeps.engine import open_sweep

pytest.importorskip("optuna")

PROGRAM = textwrap.dedent("""
    import sys, time
    import nbtracker
    run = nbtracker.init(dir=sys.argv[1])
    q = run.config.quality
    for i in range(12):
        nbtracker.log({"loss": q * (1.0 + 0.01 * i)})
        time.sleep(0.05)
    if q >= 9:  # a bad trial waits to be stopped (however loaded the machine), then ends alone
        time.sleep(60)
""")


def test_a_trial_with_its_run_outside_the_store_is_still_pruned(tmp_path):
    prog = tmp_path / "train.py"
    prog.write_text(PROGRAM)
    elsewhere = tmp_path / "elsewhere"
    sid = nbtracker.sweep({
        "method": "grid", "program": str(prog),
        "command": ["${env}", sys.executable, "${program}", str(elsewhere), "${args}"],
        "metric": {"name": "loss", "goal": "minimize"},
        "early_terminate": {"type": "hyperband", "min_iter": 3, "eta": 2},
        "parameters": {"quality": {"values": [1.0, 2.0, 9.0, 10.0]}}}, project="p")
    sweep = open_sweep(sid)
    assert Agent(sweep).run() == 4
    states = {v.params["quality"]: v.state for v in sweep.views()}
    assert states[1.0] == "finished" and states[10.0] == "pruned", states
    runs = {r.config["quality"]: r for r in nbtracker.Api(dir=str(elsewhere)).runs("p")}
    assert runs[10.0].state == "pruned" and runs[1.0].state == "finished"
    assert runs[1.0].steps == 12
