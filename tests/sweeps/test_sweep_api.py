"""The public Api's view of sweeps: `Api().sweep(path)`, `Api().sweeps()`, as wandb's."""

from __future__ import annotations

import pytest

import nbtracker
from nbtracker.errors import UsageError

pytest.importorskip("optuna")

CONFIG = {"method": "grid", "metric": {"name": "loss", "goal": "minimize"},
          "parameters": {"lr": {"values": [0.3, 0.1, 0.2]}, "wd": {"value": 0.5}}}


def _train():
    run = nbtracker.init()
    for i in range(3):
        nbtracker.log({"loss": run.config.lr + 1.0 / (i + 1), "acc": 1 - run.config.lr})


def test_api_sweep_reads_back_what_the_agent_ran():
    sid = nbtracker.sweep(CONFIG, project="p")
    assert nbtracker.agent(sid, function=_train) == 3
    api = nbtracker.Api()
    s = api.sweep(f"p/{sid}")
    assert (s.id, s.project, s.state, s.expected_run_count) == (sid, "p", "finished", 3)
    assert s.config == CONFIG
    assert sorted(r.config["lr"] for r in s.runs) == [0.1, 0.2, 0.3]
    assert all(r.sweep_id == sid and r.config["wd"] == 0.5 for r in s.runs)
    best = s.best_run()
    assert best.config["lr"] == 0.1 and best.summary["loss"] == pytest.approx(0.1 + 1 / 3)
    assert s.best_run(order="-summary.acc").config["lr"] == 0.1
    assert s.best_run(order="+summary.acc").config["lr"] == 0.3
    assert [t.state for t in s.trials] == ["finished"] * 3
    assert {t.run_id for t in s.trials} == {r.id for r in s.runs}
    assert [x.id for x in api.sweeps("p")] == [sid] and api.sweeps("other") == []
    assert api.sweep(f"someone/p/{sid}").id == sid


def test_api_sweep_refuses_bad_and_unknown_ids():
    api = nbtracker.Api()
    for bad in ("../x", "", "a b"):
        with pytest.raises(UsageError):
            api.sweep(bad)
    with pytest.raises(UsageError, match="no sweep 'zzzz9999'"):
        api.sweep("zzzz9999")


def test_best_run_without_a_metric_is_none_and_expected_count_follows_run_cap():
    sid = nbtracker.sweep({"method": "random", "run_cap": 2,
                           "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="p")
    assert nbtracker.agent(sid, function=_train) == 2
    s = nbtracker.Api().sweep(sid)
    assert s.best_run() is None and s.expected_run_count == 2 and len(s.runs) == 2
