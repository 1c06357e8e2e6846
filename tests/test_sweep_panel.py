"""The sweep panel's Python side: the view it is fed (real sweeps run by the real agent), when it
computes the importance, its static form (escaped, drawn for 0, 1 and 1,000 trials, NaN and
missing values, sweeps without a metric), `%tracker sweep`, and the agent's refreshes.

What the front end makes of it is tested in a real browser (tests/browser/test_sweep_panel_browser.py).
"""

from __future__ import annotations

import base64
import math
import re
import time
import xml.etree.ElementTree as ET

import pytest

import nbtracker
from nbtracker.notebook import contract
from nbtracker.notebook import sweep as panel_mod
from nbtracker.notebook.widgets import SweepPanel
from nbtracker.sweeps.engine import open_sweep

pytest.importorskip("optuna")

CONFIG = {
    "method": "random",
    "metric": {"name": "val/loss", "goal": "minimize"},
    "parameters": {
        "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
        "batch_size": {"values": [32, 64, 128]},
        "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}}},
        "epochs": {"value": 3},
    },
}


def loss(config) -> float:
    return (math.log10(config["lr"]) + 2.5) ** 2 + config["batch_size"] / 1000 + (
        0.5 if config["opt"]["name"] == "sgd" else 0.0)


def train():
    run = nbtracker.init()
    run.log({"val/loss": loss(run.config)})
    run.finish()


def run_sweep(config=CONFIG, count=6, function=train, seed=3) -> str:
    sid = nbtracker.sweep(config, project="swp", seed=seed)
    nbtracker.agent(sid, function=function, count=count)
    return sid


def recording(panel) -> list:
    """The panel's custom messages, as they would go over the comm."""
    sent: list = []
    panel.send = lambda content, buffers=None: sent.append(content)
    return sent


def svgs_of(bundle: dict) -> list[str]:
    """The SVG images of a static form's HTML (decoded), and its image/svg+xml."""
    found = [base64.b64decode(m).decode("utf-8") for m in
             re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', bundle["text/html"])]
    return found + ([bundle["image/svg+xml"]] if "image/svg+xml" in bundle else [])


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("NBTRACKER_SILENT", "true")


def test_the_view_lists_trials_best_space_and_importance():
    sid = run_sweep(count=6)
    feed = panel_mod.SweepFeed(open_sweep(sid))
    v = feed.panel.sweep
    assert contract.check_trait("sweep", "sweep", v) == []
    assert [t["number"] for t in v["trials"]] == list(range(6))
    assert v["counts"] == {"finished": 6} and v["parameters"] == ["batch_size", "lr", "opt.name"]
    runs = {r.id: r for r in nbtracker.Api().runs("swp", filters={"sweep": sid})}
    for t in v["trials"]:  # each trial is its run, the value its metric
        assert t["state"] == "finished" and t["run_id"] in runs
        assert t["value"] == pytest.approx(loss(runs[t["run_id"]].config))
        assert t["params"]["lr"] == runs[t["run_id"]].config["lr"]
        assert t["duration"] == pytest.approx(t["ended"] - t["started"])
    best = min(v["trials"], key=lambda t: t["value"])
    assert v["best"] == best["number"]
    assert v["space"]["lr"] == {"distribution": "log_uniform_values", "log": True, "values": None}
    assert v["space"]["opt.name"]["values"] == ["adam", "sgd"]
    assert not v["space"]["batch_size"]["log"] and "epochs" not in v["space"]  # a constant
    assert set(v["importance"]) == {"batch_size", "lr", "opt.name"}
    assert sum(v["importance"].values()) == pytest.approx(1.0)
    assert v["importance_trials"] == 6
    # the static form beside the widget view names the best trial
    data = feed.panel._repr_mimebundle_()[0]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert f"best: trial {best['number']}" in data["text/plain"]
    assert 'data-nbt-static="sweep"' in data["text/html"]


def test_importance_is_computed_again_only_when_finished_trials_change(monkeypatch):
    monkeypatch.setattr(panel_mod, "IMPORTANCE_EVERY", 0.0)
    sid = run_sweep(count=3)
    sweep = open_sweep(sid)
    calls = []
    real = sweep.importance
    monkeypatch.setattr(sweep, "importance", lambda: calls.append(1) or real())
    feed = panel_mod.SweepFeed(sweep)
    sent = recording(feed.panel)
    assert len(calls) == 1
    for _ in range(3):
        assert feed.refresh() is False  # nothing changed: nothing sent, nothing computed
    assert len(calls) == 1 and sent == []
    nbtracker.agent(sid, function=train, count=1)
    assert feed.refresh() is True
    assert len(calls) == 2 and feed.view["importance_trials"] == 4
    # a trial that fails adds no finished value: no new computation
    nbtracker.agent(sid, function=lambda: 1 / 0, count=1)
    assert feed.refresh() is True and feed.view["counts"] == {"finished": 4, "failed": 1}
    assert len(calls) == 2


def test_a_failing_importance_never_breaks_the_panel(monkeypatch):
    sid = run_sweep(count=3)
    sweep = open_sweep(sid)

    def broken():
        raise RuntimeError("fANOVA <b>exploded</b>")

    monkeypatch.setattr(sweep, "importance", broken)
    feed = panel_mod.SweepFeed(sweep)
    v = feed.view
    assert len(v["trials"]) == 3 and v["best"] is not None and v["importance"] is None
    assert "fANOVA <b>exploded</b>" in v["error"]
    assert contract.check_trait("sweep", "sweep", v) == []
    html = feed.static_bundle()["text/html"]
    assert "fANOVA &lt;b&gt;exploded&lt;/b&gt;" in html and "<b>exploded" not in html


def test_a_sweep_that_cannot_be_read_keeps_its_last_view(monkeypatch):
    sid = run_sweep(count=2)
    sweep = open_sweep(sid)
    feed = panel_mod.SweepFeed(sweep)

    def gone(importance=True):
        raise OSError("the database went away")

    monkeypatch.setattr(sweep, "view", gone)
    feed.refresh()
    assert len(feed.view["trials"]) == 2 and "the database went away" in feed.view["error"]
    assert contract.check_trait("sweep", "sweep", feed.panel.sweep) == []


def test_the_front_end_asks_and_the_kernel_answers(monkeypatch):
    monkeypatch.setattr(panel_mod, "FORM_EVERY", 3600.0)  # no form follows until it is lowered
    sid = run_sweep(count=2)
    feed = panel_mod.SweepFeed(open_sweep(sid))
    sent = recording(feed.panel)
    feed.panel._handle_custom_msg({"type": "refresh", "form": False}, [])
    assert sent == [{"type": "refreshed", "reply": True, "form": None}]  # unchanged
    feed.panel._handle_custom_msg({"type": "refresh", "form": True}, [])  # a page without one
    assert sent[-1]["reply"] and 'data-nbt-static="sweep"' in sent[-1]["form"]["text/html"]
    nbtracker.agent(sid, function=train, count=1)
    feed.panel._handle_custom_msg({"type": "refresh", "form": False}, [])
    assert len(feed.panel.sweep["trials"]) == 3
    # the static form changed, but one was sent less than FORM_EVERY ago: it follows later
    assert sent[-1] == {"type": "refreshed", "reply": True, "form": None}
    monkeypatch.setattr(panel_mod, "FORM_EVERY", 0.0)  # as if FORM_EVERY had passed
    feed.panel._handle_custom_msg({"type": "refresh", "form": False}, [])
    assert "3 trials: 3 finished" in sent[-1]["form"]["text/plain"]
    for msg in sent:
        assert contract.check_message(msg, "frontend") == [], msg
    assert contract.check_message({"type": "refresh", "form": True}, "kernel") == []


def test_the_static_form_escapes_user_text():
    config = {**CONFIG, "name": "<script>alert('name')</script>",
              "metric": {"name": "val/<i>loss</i>", "goal": "minimize"},
              "parameters": {"opt": {"values": ["<b>adam</b>", "sgd & co", "\x01ctl"]},
                             "lr": {"min": 0.0, "max": 1.0}}}

    def train_or_fail():
        run = nbtracker.init()
        if run.config["opt"] == "sgd & co":
            raise ValueError("<img src=x onerror=alert(1)>")
        run.log({"val/<i>loss</i>": run.config["lr"]})
        run.finish()

    sid = run_sweep(config, count=8, function=train_or_fail, seed=5)
    feed = panel_mod.SweepFeed(open_sweep(sid))
    assert feed.view["counts"].get("failed") and feed.view["counts"].get("finished")
    bundle = feed.static_bundle()
    page = bundle["text/html"]
    for raw in ("<script", "<b>adam", "<img src=x", "<i>loss"):
        assert raw not in page, raw
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in page
    assert "&lt;b&gt;adam&lt;/b&gt;" in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    for svg in svgs_of(bundle):
        root = ET.fromstring(svg)  # well-formed: no markup of the user's, no control characters
        assert not [e for e in root.iter() if e.tag.split("}")[-1] in ("script", "b", "i", "img")]
    drawn = "".join(svgs_of(bundle))
    assert "&lt;b&gt;adam&lt;/b&gt;" in drawn and "sgd &amp; co" in drawn
    assert "<script" not in bundle["text/plain"] or bundle["text/plain"].count("<script") == 1


def test_static_forms_of_0_and_1_trials_and_of_a_sweep_without_a_metric():
    sid = nbtracker.sweep(CONFIG, project="swp")
    empty = panel_mod.SweepFeed(open_sweep(sid))
    html = empty.static_bundle()["text/html"]
    assert "no trial has run yet" in html and "no finished trial with val/loss yet" in html
    assert empty.view["trials"] == [] and empty.view["best"] is None
    nbtracker.agent(sid, function=train, count=1)
    empty.refresh()
    one = empty.static_bundle()
    assert "best: trial 0" in one["text/plain"] and len(svgs_of(one)) == 3  # parcoords, scatters, stacked
    for svg in svgs_of(one):
        ET.fromstring(svg)

    no_metric = {k: v for k, v in CONFIG.items() if k != "metric"}
    sid = run_sweep(no_metric, count=2)
    feed = panel_mod.SweepFeed(open_sweep(sid))
    v = feed.view
    assert v["metric"] is None and v["best"] is None and v["importance"] is None
    assert all(t["value"] is None for t in v["trials"])
    b = feed.static_bundle()
    assert "no metric" in b["text/plain"] and len(svgs_of(b)) == 2  # parcoords, and stacked alone


def test_trials_without_a_value_and_nan_parameters():
    calls = []

    def nan_loss():
        run = nbtracker.init()
        calls.append(1)
        run.log({"val/loss": float("nan") if len(calls) % 2 else 1.0})
        run.finish()

    sid = run_sweep(count=6, function=nan_loss, seed=1)
    feed = panel_mod.SweepFeed(open_sweep(sid))
    values = [t["value"] for t in feed.view["trials"]]
    assert None in values and 1.0 in values
    assert contract.check_trait("sweep", "sweep", feed.panel.sweep) == []
    # values of parameters that are not finite numbers, as the panel receives them (text)
    view = dict(feed.view)
    view["trials"] = [{**t, "params": {**t["params"], "lr": ["NaN", "Infinity", None][i % 3]}}
                      for i, t in enumerate(view["trials"])]
    bundle = panel_mod.sweep_bundle(view)
    for svg in svgs_of(bundle):
        ET.fromstring(svg)
    assert "NaN" in bundle["text/html"]


def test_a_thousand_trials_draw_quickly_and_stay_small():
    sid = nbtracker.sweep(CONFIG, project="swp")
    view = panel_mod.SweepFeed(open_sweep(sid)).view
    trials = []
    for i in range(1000):
        lr = 10 ** (-4 + 3 * ((i * 0.618) % 1))
        cfg = {"lr": lr, "batch_size": [32, 64, 128][i % 3], "opt": {"name": ["adam", "sgd"][i % 2]}}
        trials.append({"number": i, "state": "finished" if i % 10 else "failed", "run_id": f"r{i}",
                       "params": {"lr": lr, "batch_size": cfg["batch_size"], "opt.name": cfg["opt"]["name"]},
                       "value": loss(cfg) if i % 10 else None, "started": 1.0 * i,
                       "ended": i + 2.0, "duration": 2.0, "exit": None})
    view = {**view, "trials": trials, "best": 7, "counts": {"finished": 900, "failed": 100},
            "importance": {"lr": 0.9, "batch_size": 0.06, "opt.name": 0.04}}
    assert contract.check_trait("sweep", "sweep", view) == []
    t0 = time.perf_counter()
    bundle = panel_mod.sweep_bundle(view)
    took = time.perf_counter() - t0
    size = len(bundle["text/html"]) + len(bundle["image/svg+xml"])
    print(f"static form of 1,000 trials: {took * 1000:.0f} ms, {size / 1024:.0f} KB")
    assert took < 2.0 and size < 600 * 1024
    assert bundle["text/html"].count("<tr") == panel_mod.STATIC_ROWS + 1  # header + rows
    assert "… and 970 more trials" in bundle["text/html"]
    parallel = svgs_of(bundle)[0]
    assert parallel.count("M") >= 1000 and 'class="nbt-best"' in parallel


def test_a_large_grid_lists_only_the_next_queued_trials():
    grid = {"method": "grid", "metric": {"name": "val/loss"},
            "parameters": {"a": {"values": list(range(30))}, "b": {"values": list(range(10))}}}
    sid = nbtracker.sweep(grid, project="swp")
    feed = panel_mod.SweepFeed(open_sweep(sid))
    v = feed.view
    assert len(v["trials"]) == panel_mod.QUEUED_SHOWN and v["queued_hidden"] == 300 - panel_mod.QUEUED_SHOWN
    assert v["counts"] == {"queued": 300} and v["grid_size"] == 300 and v["remaining"] == 300
    assert contract.check_trait("sweep", "sweep", v) == []


# -- %tracker sweep ----------------------------------------------------------------------------

@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    return ip


def test_the_magic_with_a_bad_id_says_so_in_one_line(shell, capsys):
    for line in ("sweep", "sweep nosuch12", "sweep ../../etc", "sweep a b",
                 "sweep nosuch12 --storage mysql://x"):
        shell.run_line_magic("tracker", line)
        out = capsys.readouterr()
        err = out.err.strip()
        assert err.startswith("nbtracker:") and "Traceback" not in err, (line, err)
        assert len(err.splitlines()) == 1, err
        assert out.out == "", line
    shell.run_line_magic("tracker", "sweep nosuch12")
    assert "no sweep 'nosuch12'" in capsys.readouterr().err


def test_the_magic_shows_the_panel(shell, capsys):
    from IPython.utils.capture import capture_output

    sid = run_sweep(count=2)
    capsys.readouterr()
    with capture_output() as shown:
        shell.run_line_magic("tracker", f"sweep swp/{sid}")
    assert capsys.readouterr().err == ""
    (out,) = shown.outputs
    assert "application/vnd.jupyter.widget-view+json" in out.data
    assert "2 trials: 2 finished" in out.data["text/plain"]


# -- the agent's panel -------------------------------------------------------------------------

def test_the_agent_panel_follows_the_sweep_and_ends_with_its_static_form(shell, monkeypatch):
    from IPython.utils.capture import capture_output

    monkeypatch.setattr(panel_mod, "REFRESH", 0.1)
    sid = nbtracker.sweep(CONFIG, project="swp", seed=2)
    sweep = open_sweep(sid)
    with capture_output() as shown:
        held = panel_mod.agent_panel(sweep)
        feed = held.feed
        sent = recording(feed.panel)
        assert feed.panel.sweep["trials"] == []
        seen_running = []

        def slow():
            run = nbtracker.init()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # until the panel's own thread shows the trial
                states = [t["state"] for t in feed.panel.sweep["trials"]]
                if "running" in states:
                    seen_running.append(states)
                    break
                time.sleep(0.02)
            run.log({"val/loss": loss(run.config)})
            run.finish()

        nbtracker.agent(sid, function=slow, count=2)
        held.refresh()  # after a trial, as the agent calls it
        held.refresh(final=True)
    assert seen_running and seen_running[0][-1] == "running"
    assert not feed._thread.is_alive()  # stopped at the end
    assert [t["state"] for t in feed.panel.sweep["trials"]] == ["finished", "finished"]
    assert feed.view["importance_trials"] == 2
    first, *updates = shown.outputs
    assert "0 trials" in first.data["text/plain"]
    # the output was updated in place with the final form, beside the widget view
    last = updates[-1]
    assert "application/vnd.jupyter.widget-view+json" in last.data
    assert "2 trials: 2 finished" in last.data["text/plain"]
    forms = [m["form"] for m in sent if m.get("form")]
    assert forms and "2 trials: 2 finished" in forms[-1]["text/plain"]
    assert all(not m["reply"] for m in sent)
    for msg in sent:
        assert contract.check_message(msg, "frontend") == []


def test_the_agent_panel_does_not_slow_quick_trials(shell, monkeypatch):
    """After each of many quick trials the agent asks for a refresh; the panel reads the sweep
    at most once per REFRESH seconds (its thread catches up)."""
    from IPython.utils.capture import capture_output

    sid = nbtracker.sweep(CONFIG, project="swp", seed=4)
    sweep = open_sweep(sid)
    reads = []
    real = sweep.view
    monkeypatch.setattr(sweep, "view", lambda importance=True: reads.append(1) or real(importance))
    with capture_output():
        held = panel_mod.agent_panel(sweep)
        start = len(reads)
        t0 = time.monotonic()
        for _ in range(50):
            held.refresh()
        quick = time.monotonic() - t0
        held.refresh(final=True)
    assert len(reads) - start <= 2 + quick / panel_mod.REFRESH + 1


def test_a_sweep_panel_widget_has_every_trait_in_the_contract():
    w = SweepPanel()
    assert contract.check_trait("sweep", "sweep", w.sweep) == []
    assert contract.check_trait("sweep", "uid", w.uid) == []
    w.close()


def test_in_static_mode_the_agent_panel_is_an_image_refreshed_in_place(shell, monkeypatch):
    """Where widgets cannot follow (Colab; NBTRACKER_NOTEBOOK_PANEL=static) the panel is its
    static form, refreshed through its output while the agent runs."""
    from IPython.utils.capture import capture_output

    monkeypatch.setenv("NBTRACKER_NOTEBOOK_PANEL", "static")
    monkeypatch.setattr(panel_mod, "REFRESH", 0.05)
    sid = nbtracker.sweep(CONFIG, project="swp", seed=6)
    with capture_output() as shown:
        held = panel_mod.agent_panel(open_sweep(sid))
        nbtracker.agent(sid, function=train, count=2)
        held.refresh(final=True)
    first, *updates = shown.outputs
    for out in shown.outputs:
        assert "application/vnd.jupyter.widget-view+json" not in out.data
        assert 'data-nbt-static="sweep"' in out.data["text/html"]
    assert "0 trials" in first.data["text/plain"]
    assert updates and "2 trials: 2 finished" in updates[-1].data["text/plain"]
    assert not held.feed._thread.is_alive()


DATABASE_URL = __import__("os").environ.get("NBTRACKER_TEST_DATABASE_URL")  # before fixtures clear it


def test_the_panel_of_a_sweep_in_postgresql_from_another_machine(store, monkeypatch):
    """A sweep whose study lives in PostgreSQL, looked at from a store that never saw it (as
    from another machine): the panel reads it by id and storage URL, and follows new trials."""
    if not DATABASE_URL:
        pytest.skip("NBTRACKER_TEST_DATABASE_URL is not set (a PostgreSQL database to test on)")
    sid = nbtracker.sweep(CONFIG, project="swp", storage=DATABASE_URL, seed=8)
    nbtracker.agent(sid, function=train, count=2, storage=DATABASE_URL)
    monkeypatch.setenv("NBTRACKER_DIR", str(store.parent / "elsewhere"))
    with pytest.raises(nbtracker.UsageError, match="needs its storage"):
        panel_mod.sweep_panel(sid)
    panel = panel_mod.sweep_panel(sid, storage=DATABASE_URL)
    assert [t["state"] for t in panel.sweep["trials"]] == ["finished", "finished"]
    assert panel.sweep["importance_trials"] == 2
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    nbtracker.agent(sid, function=train, count=1, storage=DATABASE_URL)
    sent = recording(panel)
    panel._handle_custom_msg({"type": "refresh", "form": True}, [])
    assert len(panel.sweep["trials"]) == 3 and "3 trials: 3 finished" in sent[-1]["form"]["text/plain"]
