"""A sweep's parameters are locked in the trial's config, as wandb locks them: the program
cannot change the value the sweep chose (with or without allow_val_change); one warning says so."""

from __future__ import annotations

import json

import pytest

import nbtracker

pytest.importorskip("optuna")


def test_a_trial_cannot_change_the_sweeps_values(capfd):
    seen = []

    def train():
        run = nbtracker.init(config={"lr": 123.0, "epochs": 2, "opt": {"name": "x"}})
        run.config.update({"lr": 9.0}, allow_val_change=True)
        nbtracker.config.lr = 8.0
        run.config["opt"] = {"name": "changed"}
        run.config.update({"epochs": 3}, allow_val_change=True)  # not swept: changes
        run.config.extra = "free"
        nbtracker.log({"loss": 1.0})
        seen.append(dict(run.config))

    sid = nbtracker.sweep({"method": "grid", "parameters": {
        "lr": {"values": [0.1]}, "opt": {"parameters": {"name": {"values": ["adam"]}}}}}, project="p")
    nbtracker.agent(sid, function=train)
    assert seen == [{"lr": 0.1, "epochs": 3, "opt": {"name": "adam"}, "extra": "free"}]
    run = nbtracker.Api().runs("p")[0]
    assert dict(run.config) == seen[0]
    err = capfd.readouterr().err
    assert err.count("config['lr'] is the sweep's value 0.1; the update to 9.0 is ignored") == 1
    assert "config['opt'] is the sweep's value" in err


def test_a_subprocess_trial_is_locked_too(tmp_path, monkeypatch):
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"lr": 0.5}))
    monkeypatch.setenv("NBTRACKER_SWEEP_ID", "abc123")
    monkeypatch.setenv("NBTRACKER_RUN_ID", "trialrun1")
    monkeypatch.setenv("NBTRACKER_PROJECT", "p")
    monkeypatch.setenv("NBTRACKER_SWEEP_PARAM_PATH", str(params))
    run = nbtracker.init()
    run.config.update({"lr": 1.0}, allow_val_change=True)
    assert run.config.lr == 0.5
    run.finish()
    assert nbtracker.Api().run("p/trialrun1").config["lr"] == 0.5
