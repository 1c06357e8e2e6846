"""`nbtracker.init()` in a sweep's trial: a real program started by `prepare_trial`/`TrialProcess`
takes the trial's id, project, parameters and sweep, as a program does under a wandb agent; read
back through `nbtracker.Api()`. Outside a sweep nothing changes."""

from __future__ import annotations

import json
import os
import sys
import textwrap

import pytest

import nbtracker
from nbtracker.sweeps.process import TrialProcess, prepare_trial

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process groups as on Linux")

PARAMS = {"lr": 1e-05, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "layers": [32, 64]}

PROGRAM = """
import json, os, sys
import nbtracker
run = nbtracker.init(project="mine", id="mine1",
                     config={"lr": 0.5, "epochs": 3, "opt": {"name": "sgd"}, "seed": 7})
for step in range(3):
    run.log({"loss": 1 / (step + 1)})
seen = {"sweep_id": run.sweep_id, "id": run.id, "project": run.project,
        "config": dict(run.config), "modules": sorted(m for m in sys.modules
                                                      if m.split(".")[0] in ("optuna", "yaml"))}
run.finish()
json.dump(seen, open(os.environ["OUT"], "w"))
"""


def run_trial(tmp_path, params=PARAMS, extra_env=None):
    program = tmp_path / "train.py"
    program.write_text(textwrap.dedent(PROGRAM))
    out = tmp_path / "seen.json"
    log = tmp_path / "trial.log"
    with prepare_trial(None, str(program), params, sweep_id="sw1", run_id="trial1",
                       project="sweepy", dir=tmp_path) as t:
        env = {**t.env, "OUT": str(out), "NBTRACKER_SYSTEM_INTERVAL": "0", **(extra_env or {})}
        with TrialProcess.start(t.argv, env=env, output=log) as proc:
            code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 0, text
    return json.loads(out.read_text()), text


def test_trial_run_takes_the_trials_side(tmp_path):
    seen, text = run_trial(tmp_path)
    want = {"lr": 1e-05, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "layers": [32, 64],
            "epochs": 3, "seed": 7}
    assert seen["sweep_id"] == "sw1"
    assert (seen["id"], seen["project"]) == ("trial1", "sweepy")
    assert seen["config"] == want
    assert seen["modules"] == []  # init() read the parameters without optuna or yaml
    # the program's own id and project are ignored, each with one line; config overrides silently
    assert text.count("warning:") == 2, text
    assert "id='mine1' is ignored" in text and "project='mine' is ignored" in text

    api = nbtracker.Api()
    run = api.run("sweepy/trial1")
    assert run.id == "trial1" and run.project == "sweepy" and run.state == "finished"
    assert run.config == want
    assert run.config["opt"]["betas"] == [0.9, 0.999]
    assert run.sweep_id == run.sweep_name == "sw1"
    assert run.summary["loss"] == pytest.approx(1 / 3)
    assert [r.id for r in api.runs("sweepy", filters={"sweep": "sw1"})] == ["trial1"]
    assert len(api.runs("sweepy", filters={"sweep": "other"})) == 0
    assert len(api.runs("mine")) == 0


def test_unreadable_params_file_warns_once_and_the_run_starts(tmp_path):
    missing = str(tmp_path / "gone.json")
    seen, text = run_trial(tmp_path, extra_env={"NBTRACKER_SWEEP_PARAM_PATH": missing})
    assert text.count("cannot read NBTRACKER_SWEEP_PARAM_PATH") == 1, text
    assert seen["config"] == {"lr": 0.5, "epochs": 3, "opt": {"name": "sgd"}, "seed": 7}
    assert seen["sweep_id"] == "sw1" and seen["id"] == "trial1"


def test_params_file_not_an_object_warns(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    seen, text = run_trial(tmp_path, extra_env={"NBTRACKER_SWEEP_PARAM_PATH": str(bad)})
    assert text.count("the run starts without them") == 1, text
    assert seen["config"]["lr"] == 0.5


def test_outside_a_sweep_nothing_changes():
    assert "NBTRACKER_SWEEP_ID" not in os.environ
    run = nbtracker.init(project="plain", id="p1", config={"lr": 0.5})
    run.log({"loss": 1.0})
    assert run.sweep_id is None
    run.finish()
    api_run = nbtracker.Api().run("plain/p1")
    assert api_run.sweep_id is None and api_run.config == {"lr": 0.5}
    assert len(nbtracker.Api().runs("plain", filters={"sweep": None})) == 1
    assert len(nbtracker.Api().runs("plain", filters={"sweep": "sw1"})) == 0


def test_sweep_survives_a_resume(monkeypatch, tmp_path):
    params = tmp_path / "p.json"
    params.write_text(json.dumps({"lr": 0.1}))
    for k, v in {"NBTRACKER_SWEEP_ID": "sw9", "NBTRACKER_RUN_ID": "t9",
                 "NBTRACKER_PROJECT": "sp", "NBTRACKER_SWEEP_PARAM_PATH": str(params)}.items():
        monkeypatch.setenv(k, v)
    run = nbtracker.init(config={"lr": 1.0, "keep": 1})
    assert (run.id, run.project, run.sweep_id) == ("t9", "sp", "sw9")
    assert dict(run.config) == {"lr": 0.1, "keep": 1}
    run.finish()
    monkeypatch.delenv("NBTRACKER_SWEEP_ID")
    again = nbtracker.init(project="sp", id="t9", resume="must")
    assert again.sweep_id == "sw9"
    again.finish()
    assert nbtracker.Api().run("sp/t9").sweep_id == "sw9"
