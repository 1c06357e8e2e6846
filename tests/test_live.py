"""The live feed behind LivePanel, without a browser: what it sends is what the store holds."""

from __future__ import annotations

import math
import threading

import numpy as np

import nbtracker
from nbtracker.notebook import live


class FrontEnd:
    """Applies the panel's messages the way widgets.js does, to check what a browser holds."""

    def __init__(self, panel):
        self.series: dict[str, list] = {}
        self.tails: dict[str, list] = {}
        panel.send = self.receive  # the messages that would go over the comm

    def receive(self, msg):
        assert msg["type"] == "points"
        for key, d in msg["series"].items():
            if d["reset"] is not None:
                self.series[key] = list(zip(*d["reset"]))
            elif d["append"] is not None:
                self.series.setdefault(key, []).extend(zip(*d["append"]))
            self.tails[key] = list(zip(*d["tail"]))

    def points(self, key):
        return self.series.get(key, []) + self.tails.get(key, [])


def test_feed_from_a_thread_across_column_blocks_is_bounded_and_exact():
    run = nbtracker.init(project="live")
    panel = live.LivePanel()
    front = FrontEnd(panel)
    live.LiveFeed(run, panel)
    n = 50_000  # several column blocks
    x = np.arange(n, dtype=float)
    y = np.sin(x / 700) + (x % 13) / 13

    def train():
        row = {}
        for i in range(n):
            row["loss"] = float(y[i])  # the same dict, changed every step
            nbtracker.log(row)
        nbtracker.finish()

    t = threading.Thread(target=train)
    t.start()
    t.join(60)
    pts = front.points("loss")
    assert 0 < len(pts) <= 2 * live.MAX_BUCKETS + 2
    px = np.array([p[0] for p in pts])
    py = np.array([p[1] for p in pts])
    assert (np.diff(px) >= 0).all() and px[0] < 64 and px[-1] == n - 1  # ends where the run is
    np.testing.assert_array_equal(py, y[px.astype(int)])  # every point is a logged value
    assert py.max() == y.max() and py.min() == y.min()  # spikes survive
    snap = panel.snapshot["loss"]
    assert list(zip(*snap["c"])) + list(zip(*snap["t"])) == pts
    assert panel.info["state"] == "finished" and panel.info["step"] == n


def test_mixed_values_step_metric_and_a_finished_run_shown_later():
    run = nbtracker.init(project="live")
    nbtracker.define_metric("val/*", step_metric="epoch")
    for i in range(30):
        nbtracker.log({"loss": 1 / (i + 1), "note": "text", "nan": float("nan")})
        if i % 10 == 9:
            nbtracker.log({"epoch": i // 10, "val/acc": i / 30})
    nbtracker.finish()
    panel = live.panel_for(run)  # displayed after the fact: read from the store
    snap = panel.snapshot
    assert set(snap) == {"loss", "epoch", "val/acc"}
    assert snap["val/acc"]["c"][0] + snap["val/acc"]["t"][0] == [0.0, 1.0, 2.0]
    assert panel.xlabels == {"val/acc": "epoch"}
    assert panel.info["state"] == "finished" and math.isclose(panel.info["summary"]["loss"], 1 / 30)
    assert live.panel_for(run) is panel


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
