"""What the live panel's Python side sends, checked against the widget contract (contract.py).

What the front-end makes of it is tested in the browser (tests/browser/test_widget_contract.py): there the
real widget's views, built from these messages, hold exactly what the feed's decimator holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import threading
import time
from pathlib import Path

import anywidget
import numpy as np
import pytest

import nbtracker
from nbtracker.notebook import contract, live
from nbtracker.notebook.widgets import ChartLibrary, ChartView, ConfigDiff, LivePanel, RunTable, SweepPanel

REPO = Path(__file__).resolve().parents[1]


def recording(panel) -> list:
    """The panel's custom messages, as they would go over the comm."""
    sent: list = []
    panel.send = lambda content, buffers=None: sent.append((content, buffers))
    return sent


def assert_fits(panel, sent) -> None:
    for msg, _ in sent:
        assert contract.check_message(msg, "frontend") == [], msg
    for name in ("info", "snapshot", "xlabels", "media", "extras", "lib", "lib_hash", "uid"):
        assert contract.check_trait("live", name, getattr(panel, name)) == [], name


def points(snapshot: dict, key: str) -> list:
    s = snapshot[key]
    return list(zip(*s["c"])) + list(zip(*s["t"]))


def test_feed_from_a_thread_across_column_blocks_is_bounded_and_exact():
    run = nbtracker.init(project="live")
    panel = live.LivePanel()
    sent = recording(panel)
    live.LiveFeed(run, panel)
    n = 50_000  # several column blocks
    x = np.arange(n, dtype=float)
    y = np.sin(x / 700) + (x % 13) / 13

    def train():
        row = {}
        for i in range(n):
            row["loss"] = float(y[i])  # the same dict, changed every step
            nbtracker.log(row)
            if i == n // 2:
                time.sleep(2 * live.INTERVAL)  # the feed sends what it has: the stream is in pieces
        nbtracker.finish()

    t = threading.Thread(target=train)
    t.start()
    t.join(60)
    # points, and the system samples the sampler took meanwhile (events)
    assert {m["type"] for m, _ in sent} <= {"points", "events"}
    sent = [(m, b) for m, b in sent if m["type"] == "points"]
    assert len(sent) > 1
    assert_fits(panel, sent)
    # every point sent is a logged value, the spikes among them, the last tail at the last step
    deltas = [m["series"]["loss"] for m, _ in sent if "loss" in m["series"]]
    pairs = [xy for d in deltas for xy in (d["reset"], d["append"], d["tail"]) if xy is not None]
    px = np.concatenate([xy[0] for xy in pairs])
    py = np.concatenate([xy[1] for xy in pairs])
    np.testing.assert_array_equal(py, y[px.astype(int)])
    assert py.max() == y.max() and py.min() == y.min()
    assert deltas[-1]["tail"][0][-1] == n - 1
    # the finished panel's state: a short copy (6 significant digits) with the ends and extremes
    pts = points(panel.snapshot, "loss")
    assert 0 < len(pts) <= live.FINAL_POINTS + 2
    sx = np.array([p[0] for p in pts])
    sy = np.array([p[1] for p in pts])
    assert (np.diff(sx) >= 0).all() and sx[0] == 0 and sx[-1] == n - 1
    np.testing.assert_allclose(sy, y[sx.astype(int)], rtol=1e-5)
    assert math.isclose(sy.max(), y.max(), rel_tol=1e-5) and math.isclose(sy.min(), y.min(), rel_tol=1e-5)
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
    assert_fits(panel, [])
    snap = panel.snapshot
    assert set(snap) == {"loss", "epoch", "val/acc"}
    assert snap["val/acc"]["c"][0] + snap["val/acc"]["t"][0] == [0.0, 1.0, 2.0]
    assert panel.xlabels == {"val/acc": "epoch"}
    assert panel.info["state"] == "finished" and math.isclose(panel.info["summary"]["loss"], 1 / 30)
    assert live.panel_for(run) is panel


def test_points_logged_late_at_an_earlier_step_are_sent_at_their_step():
    run = nbtracker.init(project="low")
    panel = live.LivePanel()
    sent = recording(panel)
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
    assert_fits(panel, sent)
    pts = points(panel.snapshot, "loss")
    assert (1500.0, 100.0) in pts and (10.0, -100.0) in pts
    assert len(pts) <= 2 * live.MAX_BUCKETS + 3


def test_a_widget_sends_the_chart_library_when_asked():
    panel = LivePanel()
    sent = recording(panel)
    panel._handle_custom_msg({"type": "lib"}, [])
    panel._handle_custom_msg({"type": "something else"}, [])  # not ours to answer
    assert len(sent) == 1
    (reply, buffers), = sent
    assert contract.check_message(reply, "frontend") == []
    assert contract.check_message({"type": "lib"}, "kernel") == []
    (code,) = buffers
    assert hashlib.sha256(code).hexdigest() == reply["hash"] == panel.lib_hash
    assert code == (REPO / "nbtracker" / "static" / "vega.js").read_bytes()


def test_every_synced_trait_is_in_the_contract():
    base = set(anywidget.AnyWidget.class_trait_names(sync=True))  # layout, _esm, ...
    for cls in (LivePanel, ConfigDiff, ChartView, RunTable, SweepPanel, ChartLibrary):
        w = cls()
        own = set(cls.class_trait_names(sync=True)) - base - {"_kind"}
        named = set(contract.COMMON_TRAITS) | set(contract.TRAITS[w._kind]) | set(
            contract.UNCHECKED.get(w._kind, ()))
        assert own == named, (cls.__name__, own ^ named)
        for name in own - set(contract.UNCHECKED.get(w._kind, ())):
            assert contract.check_trait(w._kind, name, getattr(w, name)) == [], (cls.__name__, name)
        w.close()


def test_the_checker_finds_breaches():
    ok = {"reset": None, "append": [[0.0, 1.0], [2.0, 3.0]], "tail": [[], []]}
    assert contract.check(contract.SeriesDelta, ok) == []
    assert contract.check(contract.SeriesDelta, {**ok, "tail": "x"}) == [".tail: expected an array, got str"]
    assert contract.check(contract.SeriesDelta, {**ok, "append": [[0.0], [float("nan")]]}) == [
        ".append[1][0]: nan is not a JSON number"]
    assert contract.check(contract.SeriesDelta, {"reset": None, "tail": [[], []], "apend": None}) == [
        ".append: missing", ".apend: not in the contract"]
    assert contract.check(contract.XLabels, {"val/acc": 3}) == [".val/acc: expected a string, got int"]
    assert contract.check_message({"type": "pointz"}) == [
        "unknown message type 'pointz' (known: events, file, lib, media, points, refreshed, static)"]
    assert contract.check_message({"type": "compare", "ids": [1]}, "kernel") == [
        ".ids[0]: expected a string, got int"]
    assert contract.check_trait("live", "info", {}) == []  # before Python first sets it
    assert contract.check_trait("live", "info", {"name": "x"}) != []


def test_the_front_end_states_the_same_contract():
    """js/contract.js and contract.py describe the same shapes (read with node, which builds
    the front-end)."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (it builds the widget bundle)")
    src = REPO / "js" / "contract.js"
    out = subprocess.run(
        [node, "--input-type=module", "-e",
         f"import {{ CONTRACT }} from {json.dumps(src.as_uri())}; console.log(JSON.stringify(CONTRACT))"],
        capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == contract.contract()


def test_the_finished_form_is_the_last_thing_a_static_panel_shows(monkeypatch):
    """A refresh under way when the run finishes never lands after the final form."""
    import time

    run = nbtracker.init(project="race")
    feed = live.LiveFeed(run, live.StaticSink())
    shown = []

    class Handle:
        def update(self, bundle, raw=False):
            shown.append(bundle["text/plain"].splitlines()[0])

    feed.handles.append(Handle())
    build = feed.static_bundle

    def slow():
        bundle = build()
        if threading.current_thread().name == "nbtracker-live":
            time.sleep(0.3)  # the feed thread's refresh is slow: finish() comes meanwhile
        return bundle

    monkeypatch.setattr(feed, "static_bundle", slow)
    monkeypatch.setattr(live, "REFRESH", 0.0)
    for i in range(100):
        run.log({"x": i})
    time.sleep(0.4)
    run.finish()
    time.sleep(0.8)
    assert shown and "finished" in shown[-1], shown
    assert all("running" in s for s in shown[:-1]), shown
