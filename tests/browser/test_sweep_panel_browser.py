"""The sweep panel in a real JupyterLab (and Notebook 7): a sweep run by
`nbtracker.agent(..., function=...)` in the notebook shows its trials as they run, the best
trial, the parallel-coordinates chart and the importance; `%tracker sweep ID` shows the same
sweep and follows trials another process runs; the saved notebook (and nbconvert's HTML of it)
holds the latest static form."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbdriver import foreign_requests, open_and_run, sample, screenshot, wait_idle

pytest.importorskip("optuna")

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
AGENT = ".jp-Cell:nth-child(2) .nbt-sweep"
MAGIC = ".jp-Cell:nth-child(3) .nbt-sweep"

TRAIN = """import math, time
import nbtracker
config = {"method": "random", "metric": {"name": "val/loss", "goal": "minimize"},
          "parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
                         "batch_size": {"values": [32, 64, 128]},
                         "opt": {"values": ["adam", "sgd", "<b>x</b>"]}}}

def train():
    run = nbtracker.init()
    c = run.config
    time.sleep(0.4)
    run.log({"val/loss": (math.log10(c["lr"]) + 2.5) ** 2 + c["batch_size"] / 1000 + (c["opt"] == "sgd")})
    run.finish()
"""

CELLS = [
    "%load_ext nbtracker",
    TRAIN + """
sweep_id = nbtracker.sweep(config, project="swpanel", seed=7)
nbtracker.agent(sweep_id, function=train, count=8)""",
    "%tracker sweep {sweep_id}",
]


def _hook(page, sel: str, name: str):
    return page.evaluate(f"() => {{ const e = document.querySelector({json.dumps(sel)}); "
                         f"return e ? e.dataset.{name} ?? null : null; }}")


def _rows(page, sel: str) -> list[dict]:
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel + ' tr.nbt-trial')].map(tr => ({
        number: +tr.dataset.trial, state: tr.dataset.state, best: tr.classList.contains('nbt-best'),
        cells: [...tr.children].map(td => td.textContent)}))""", sel)


def _run_more_trials(server, sweep_id: str, count: int) -> None:
    """Trials of the same sweep run by another process (an agent elsewhere)."""
    env = dict(os.environ, NBTRACKER_DIR=str(server.store), NBTRACKER_SILENT="true")
    program = TRAIN + f"\nnbtracker.agent({sweep_id!r}, function=train, count={count})\n"
    subprocess.run([sys.executable, "-c", program], env=env, check=True, capture_output=True,
                   timeout=120)


@pytest.mark.parametrize("server_name", ["lab_server", "notebook7_server"])
def test_sweep_panel_follows_the_sweep(request, server_name, page, tmp_path):
    server = request.getfixturevalue(server_name)
    name = f"sweep-panel-{server.app}.ipynb"
    open_and_run(page, server, name, CELLS)
    page.wait_for_selector(AGENT, timeout=60_000)
    # live while the agent runs: the trials appear one after another
    seen = sample(page, f"(() => {{ const e = document.querySelector({json.dumps(AGENT)}); "
                        "return e ? +e.dataset.trials : -1; })()", 30, interval=0.1, until=8)
    assert seen[-1] == 8
    assert len({n for n in seen if 0 < n < 8}) >= 2, seen  # drawn while running, not only at the end
    page.wait_for_selector(MAGIC, timeout=30_000)
    wait_idle(page)
    sweep_id = _hook(page, AGENT, "sweep")
    assert sweep_id and _hook(page, MAGIC, "sweep") == sweep_id

    for sel in (AGENT, MAGIC):
        page.wait_for_function(f"() => document.querySelector({json.dumps(sel)}).dataset.trials === '8'",
                               timeout=20_000)
        rows = _rows(page, sel)
        assert sorted(r["number"] for r in rows) == list(range(8))
        assert all(r["state"] == "finished" for r in rows)
        # the best trial: highlighted in the table, named above it, drawn in red on the chart
        values = {r["number"]: float(r["cells"][-3]) for r in rows}
        best = min(values, key=values.get)
        assert _hook(page, sel, "best") == str(best)
        assert [r["number"] for r in rows if r["best"]] == [best]
        assert f"best: trial {best}" in page.locator(f"{sel} .nbt-sweep-best").inner_text()
        red = page.locator(f"{sel} .nbt-parcoords path.nbt-line.nbt-best")
        assert red.get_attribute("data-trial") == str(best)
        # parallel coordinates: an axis per parameter and the metric, a line per trial
        assert _hook(page, sel, "axes") == "4" and _hook(page, sel, "lines") == "8"
        kinds = page.locator(f"{sel} .nbt-axis").evaluate_all(
            "gs => gs.map(g => [g.dataset.axis, g.dataset.kind])")
        assert kinds == [["batch_size", "num"], ["lr", "log"], ["opt", "cat"], ["val/loss", "num"]]
        # the metric against each parameter, and the importance of each parameter
        assert page.locator(f"{sel} svg.nbt-scatter").count() == 3
        shares = page.locator(f"{sel} .nbt-imp-row").evaluate_all(
            "rs => rs.map(r => [r.dataset.param, +r.dataset.share])")
        assert sorted(p for p, _ in shares) == ["batch_size", "lr", "opt"]
        assert sum(s for _, s in shares) == pytest.approx(1.0)
        # user text as text, on the axis and in the table
        ticks = page.locator(f"{sel} .nbt-axis[data-axis='opt'] text").all_text_contents()
        assert "<b>x</b>" in ticks and "<b>x</b>" in page.locator(f"{sel} .nbt-sweep-table").inner_text()
        assert page.locator(f"{sel} .nbt-sweep-table b, {sel} svg b").count() == 0

    # sorting: by the metric, ascending, the best comes first
    page.click(f"{MAGIC} th[data-key='value']")
    assert _rows(page, MAGIC)[0]["number"] == best
    page.click(f"{MAGIC} th[data-key='value']")
    assert _rows(page, MAGIC)[-1]["number"] == best
    # selecting a range on the metric's axis keeps the trials in it
    axis = page.locator(f"{MAGIC} .nbt-axis[data-axis='val/loss'] rect.nbt-brush-area").bounding_box()
    x = axis["x"] + axis["width"] / 2
    page.mouse.move(x, axis["y"] + axis["height"] - 2)
    page.mouse.down()
    page.mouse.move(x, axis["y"] + axis["height"] * 0.6, steps=5)
    page.mouse.move(x, axis["y"] + axis["height"] * 0.5, steps=5)
    page.mouse.up()
    picked = _rows(page, MAGIC)
    lo, hi = min(values.values()), max(values.values())
    assert 0 < len(picked) < 8 and best in [r["number"] for r in picked]
    assert all(values[r["number"]] <= lo + (hi - lo) * 0.55 for r in picked)
    assert page.locator(f"{MAGIC} path.nbt-line.nbt-dim").count() == 8 - len(picked)
    page.click(f"{MAGIC} button.nbt-clear-selection")
    assert len(_rows(page, MAGIC)) == 8
    screenshot(page.locator(AGENT), f"sweep-panel-agent-{server.app}")

    # trials run by another process: the panel of the magic (and the agent's, now idle) follow
    _run_more_trials(server, sweep_id, 2)
    for sel in (AGENT, MAGIC):
        page.wait_for_function(f"() => document.querySelector({json.dumps(sel)}).dataset.trials === '10'",
                               timeout=30_000)
        page.wait_for_function(f"() => (document.querySelector({json.dumps(sel)}).dataset.form || '')"
                               ".includes('10 trials: 10 finished')", timeout=30_000)
    screenshot(page.locator(MAGIC), f"sweep-panel-magic-{server.app}")
    assert page.locator("[data-contract-errors]").count() == 0
    assert foreign_requests(page) == []

    # saved: the latest static form in place of the widget view, and nbconvert's HTML shows it
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=20_000)
    nb = nbformat.read(server.root / name, as_version=4)
    for i in (1, 2):
        forms = [o["data"] for o in nb.cells[i].outputs
                 if "nbt-static" in str(o.get("data", {}).get("text/html", ""))]
        assert len(forms) == 1, nb.cells[i].outputs
        assert WIDGET_VIEW not in forms[0]
        assert "10 trials: 10 finished" in forms[0]["text/plain"]
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html",
                    str(server.root / name), "--output-dir", str(tmp_path)], check=True,
                   capture_output=True, timeout=120)
    html = (tmp_path / name.replace(".ipynb", ".html")).read_text()
    visible = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert visible.count('data-nbt-static="sweep"') == 2
    assert visible.count("10 trials: 10 finished") >= 2
    assert "&lt;b&gt;x&lt;/b&gt;" in visible and "<b>x</b>" not in visible
    images = re.findall(r'<img[^>]*src="data:image/svg\+xml;base64,([^"]+)"', visible)
    drawn = [base64.b64decode(m).decode() for m in images]
    assert sum(d.count('class="nbt-best"') for d in drawn) >= 4  # the best line and dot, twice
    assert any("parameter importance" in d for d in drawn)


def test_sweep_panel_leaves_its_latest_static_form_when_the_kernel_goes(lab_server, page):
    """The kernel restarts: the panels' outputs keep the latest static form the kernel sent
    (trials run since they were shown included); saved and reopened without widget state, that
    form shows, not "model not found"."""
    server = lab_server
    name = "sweep-reopen.ipynb"
    cells = ["%load_ext nbtracker", TRAIN.replace("time.sleep(0.4)", "pass") + """
sweep_id = nbtracker.sweep(config, project="swreopen", seed=3)
nbtracker.agent(sweep_id, function=train, count=3)""", "%tracker sweep {sweep_id}"]
    open_and_run(page, server, name, cells)
    page.wait_for_function(f"() => {{ const e = document.querySelector({json.dumps(MAGIC)}); "
                           "return e && e.dataset.trials === '3'; }", timeout=60_000)
    wait_idle(page)
    _run_more_trials(server, _hook(page, MAGIC, "sweep"), 2)  # after the panels were shown
    for sel in (AGENT, MAGIC):
        page.wait_for_function(f"() => (document.querySelector({json.dumps(sel)}).dataset.form || '')"
                               ".includes('5 trials: 5 finished')", timeout=30_000)
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.wait_for_function("() => document.querySelectorAll(\".nbt-static[data-nbt-static='sweep']\")"
                           ".length === 2", timeout=30_000)
    assert page.locator(".nbt-sweep").count() == 0
    for text in page.locator(".nbt-static[data-nbt-static='sweep']").all_inner_texts():
        assert "5 trials: 5 finished" in text and "best: trial" in text
    wait_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=20_000)
    saved = json.dumps([c.outputs for c in nbformat.read(server.root / name, as_version=4).cells])
    assert WIDGET_VIEW not in saved and saved.count("5 trials: 5 finished") >= 2
    for s in server.api("GET", "/api/sessions") or []:
        if s.get("path") == name:
            server.api("DELETE", f"/api/sessions/{s['id']}")
    page.goto(server.notebook_url(name))
    page.wait_for_selector(".nbt-static[data-nbt-static='sweep']", timeout=30_000)
    page.wait_for_function("() => [...document.querySelectorAll('.nbt-static img')]"
                           ".every(i => i.complete && i.naturalWidth > 0)", timeout=20_000)
    assert page.locator(".nbt-static[data-nbt-static='sweep']").count() == 2
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    screenshot(page.locator(".nbt-static[data-nbt-static='sweep']").first, "sweep-panel-static")
    assert foreign_requests(page) == []


EDGE_CELLS = [
    "%load_ext nbtracker",
    TRAIN.replace("time.sleep(0.4)", "pass") + """
from nbtracker.notebook import sweep_panel
from nbtracker.notebook.widgets import SweepPanel
empty = nbtracker.sweep(config, project="swedge")
display(sweep_panel(empty))                                          # 0 trials""",
    """one = nbtracker.sweep(config, project="swedge", seed=1)
nbtracker.agent(one, function=train, count=1)                        # 1 trial""",
    """plain = nbtracker.sweep({k: v for k, v in config.items() if k != "metric"}, project="swedge")
nbtracker.agent(plain, function=train, count=2)                      # no metric""",
    """calls = []
def nan_train():
    run = nbtracker.init()
    calls.append(1)
    run.log({"val/loss": float("nan") if len(calls) % 2 else 1.0})   # half the trials: no value
nans = nbtracker.sweep(config, project="swedge", seed=2)
nbtracker.agent(nans, function=nan_train, count=4)""",
    """panel = sweep_panel(one)
view = dict(panel.sweep)
base = view["trials"][0]
states = ["finished", "failed", "running", "pruned", "crashed"]
view["trials"] = [dict(base, number=i, state=states[i % 5], run_id=f"r{i}",
                       params={"lr": [10 ** (-4 + 3 * ((i * 0.618) % 1)), "NaN", None][i % 7 % 3],
                               "batch_size": [32, 64, 128][i % 3], "opt": ["adam", "sgd", "<b>x</b>"][i % 3]},
                       value=None if i % 5 else 1 + (i * 0.37) % 2) for i in range(1000)]
view["best"] = 5
display(SweepPanel(sweep=view))                                      # 1,000 trials""",
]


def test_sweep_panel_edge_cases_in_jupyterlab(lab_server, page):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_and_run(page, lab_server, "sweep-edges.ipynb", EDGE_CELLS)
    page.wait_for_function("() => document.querySelectorAll('.nbt-sweep').length === 5", timeout=90_000)
    wait_idle(page, timeout=90)
    panels = page.locator(".nbt-sweep")
    page.wait_for_function("() => [...document.querySelectorAll('.nbt-sweep')].every(e => e.dataset.sweep)",
                           timeout=20_000)
    hooks = panels.evaluate_all("es => es.map(e => ({...e.dataset}))")
    empty, one, plain, nans, many = hooks
    assert (empty["trials"], empty["axes"], empty["shown"], empty["best"]) == ("0", "0", "0", "")
    assert "no trial has run yet" in panels.nth(0).inner_text()
    assert "no finished trial with val/loss yet" in panels.nth(0).inner_text()
    assert (one["trials"], one["lines"], one["best"], one["axes"]) == ("1", "1", "0", "4")
    assert (plain["trials"], plain["lines"], plain["axes"], plain["best"]) == ("2", "2", "3", "")
    assert "the sweep names no metric" in panels.nth(2).inner_text()
    assert nans["trials"] == "4" and nans["lines"] == "4"
    table = panels.nth(3).locator("tr.nbt-trial").evaluate_all(
        "rs => rs.map(r => r.children[r.children.length - 3].textContent)")
    assert sorted(table) == ["", "", "1", "1"]  # no value: an empty cell, and the line on the "–" slot
    assert many["trials"] == "1000" and many["lines"] == "1000" and many["shown"] == "1000"
    print(f"1,000 trials drawn in {many['drawMs']} ms")
    assert float(many["drawMs"]) < 3000
    assert panels.nth(4).locator("tr.nbt-trial.nbt-best").get_attribute("data-trial") == "5"
    assert panels.nth(4).locator(".nbt-sweep-table b").count() == 0
    screenshot(panels.nth(4), "sweep-panel-1000")
    assert errors == []
    assert page.locator("[data-contract-errors]").count() == 0
    assert foreign_requests(page) == []
