"""A value logged at a step lower than the current one is kept at its step: in the log, in
history(), scan_history() and the summary (the live panel: test_live.py). wandb drops them."""

from __future__ import annotations

import nbtracker


def test_lower_step_values_are_stored_read_back_and_summarised(capsys):
    run = nbtracker.init(project="low")
    for step in range(10):
        nbtracker.log({"loss": 1.0 / (step + 1)}, step=step)
    nbtracker.log({"val/loss": 0.5}, step=4)  # evaluation of step 4 arrives late
    nbtracker.log({"loss": 9.0}, step=2)  # a correction: the later record wins at step 2
    nbtracker.log({"loss": 0.01})  # the current step is still 9
    run.finish()
    assert capsys.readouterr().err.count("lower than the current step") == 1
    df = nbtracker.Api().run(run.path).history()
    assert df["_step"].tolist() == list(range(10))
    by_step = df.set_index("_step")
    assert by_step.loc[4, "val/loss"] == 0.5 and by_step.loc[2, "loss"] == 9.0
    assert by_step.loc[9, "loss"] == 0.01
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert [r["_step"] for r in rows] == list(range(10)) and rows[4]["val/loss"] == 0.5
    assert run.summary["val/loss"] == 0.5 and run.summary["loss"] == 0.01
