"""A value logged at a step lower than the current one is kept at its step: in the log, in
history(), in the summary, and in the live panel's chart (wandb drops such values)."""

from __future__ import annotations

import threading

import nbtracker
from nbtracker.notebook import live


class FrontEnd:
    """Applies the panel's messages as widgets.js does."""

    def __init__(self, panel):
        self.series: dict[str, list] = {}
        self.tails: dict[str, list] = {}
        panel.send = self.receive

    def receive(self, msg):
        for key, d in msg["series"].items():
            if d["reset"] is not None:
                self.series[key] = list(zip(*d["reset"]))
            elif d["append"] is not None:
                self.series.setdefault(key, []).extend(zip(*d["append"]))
            self.tails[key] = list(zip(*d["tail"]))

    def points(self, key):
        return self.series.get(key, []) + self.tails.get(key, [])


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


def test_the_live_panel_places_lower_step_points_at_their_step():
    run = nbtracker.init(project="low")
    panel = live.LivePanel()
    front = FrontEnd(panel)
    live.LiveFeed(run, panel)

    def train():
        for step in range(3000):
            nbtracker.log({"loss": float(step % 17)}, step=step)
        nbtracker.log({"loss": 100.0}, step=1500)  # a spike logged late, at an earlier step
        nbtracker.log({"loss": -100.0}, step=10)
        nbtracker.finish()

    t = threading.Thread(target=train)
    t.start()
    t.join(60)
    pts = front.points("loss")
    assert (1500.0, 100.0) in pts and (10.0, -100.0) in pts
    assert len(pts) <= 2 * live.MAX_BUCKETS + 3
    snap = panel.snapshot["loss"]
    assert (1500.0, 100.0) in list(zip(*snap["c"])) + list(zip(*snap["t"]))
