"""The widgets in a real browser: JupyterLab and Notebook 7 in headless Chromium, on loopback."""

from __future__ import annotations

import re
import time

from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

import nbtracker
from nbtracker.notebook.live import MAX_BUCKETS

POINTS = "() => { const e = document.querySelector('.nbt-live'); return e ? +e.dataset.points : -1 }"

LIVE_CELLS = [
    "%load_ext nbtracker",
    "%tracker init --project live --name growing lr=0.1",
    """import math, time
import nbtracker
for i in range(900):
    nbtracker.log({"train/loss": math.exp(-i / 300), "val/acc": i / 900})
    if i % 30 == 0:
        time.sleep(0.15)""",
    "%tracker finish",
]


STATIC = ".nbt-static[data-nbt-static='run']"


def _live_panel_grows(page, server, name):
    t0 = time.monotonic()
    open_and_run(page, server, name, LIVE_CELLS)
    page.wait_for_selector(".nbt-live", timeout=30_000)
    shown = time.monotonic() - t0
    seen, layout = [], None
    end = time.monotonic() + 30
    while time.monotonic() < end and not page.locator(STATIC).count():
        seen.append(page.evaluate(POINTS))
        if layout is None and seen[-1] > 0 and page.locator(".nbt-live canvas").count() == 2:
            layout = (page.locator(".nbt-live .nbt-chart").count(),
                      page.locator(".nbt-live .nbt-section-title").all_inner_texts())
        page.wait_for_timeout(100)
    growing = [v for v in seen if 0 < v < 1800]
    # the chart grew while the cell ran: several distinct, increasing partial counts
    assert len(set(growing)) >= 3, seen
    assert growing == sorted(growing), seen
    assert layout == (2, ["train/", "val/"]), layout
    # finished: the widget's output became the static form (summary and charts)
    page.wait_for_selector(STATIC, timeout=30_000)
    wait_idle(page)
    assert page.locator(".nbt-live").count() == 0
    text = page.locator(STATIC).inner_text()
    # the config key lr is not shown (a word of its own: the run's random id may hold "lr")
    assert "finished" in text and "val/acc" in text and not re.search(r"\blr\b", text), text
    assert foreign_requests(page) == []
    return shown


def test_live_panel_grows_in_jupyterlab(lab_server, page):
    shown = _live_panel_grows(page, lab_server, "live_lab.ipynb")
    screenshot(page.locator(STATIC), "finished-panel-lab")
    print(f"notebook opened, kernel started and panel shown in {shown:.1f}s")
    run = nbtracker.Api(dir=str(lab_server.store)).runs("live")[0]
    assert run.state == "finished" and len(run.history()) == 900


def test_live_panel_grows_in_notebook7(notebook7_server, page):
    _live_panel_grows(page, notebook7_server, "live_nb7.ipynb")
    screenshot(page.locator(STATIC), "finished-panel-notebook7")


def test_long_run_is_bounded_and_background_thread_updates(lab_server, page):
    """300,000 steps logged from a thread that outlives its cell: the chart keeps updating
    while the kernel is idle, and holds a bounded number of points."""
    steps = 300_000
    cells = [
        "%load_ext nbtracker",
        "%tracker init --project long --name long",
        f"""import threading, math, nbtracker
def train():
    for i in range({steps}):
        nbtracker.log({{"loss": math.sin(i / 5000) + (i % 97) / 97}})
    nbtracker.finish()
threading.Thread(target=train).start()""",
    ]
    open_and_run(page, lab_server, "long.ipynb", cells)
    page.wait_for_selector(".nbt-live", timeout=30_000)
    wait_idle(page)  # the cell is done; the thread logs on
    seen = []
    end = time.monotonic() + 120
    while time.monotonic() < end and not page.locator(STATIC).count():
        seen.append(page.evaluate(POINTS))
        page.wait_for_timeout(200)
    changing = [v for v in seen if v > 0]
    assert len(set(changing)) >= 3, seen  # updated while the kernel was idle
    assert max(changing) <= 2 * MAX_BUCKETS + 3  # bounded, however long the run
    # finished from the thread: the panel became its static form
    page.wait_for_selector(STATIC, timeout=30_000)
    assert f"step {steps}" in page.locator(STATIC).inner_text()
    screenshot(page.locator(STATIC), "finished-panel-long")


VISIBLE_KEYS = """sel => [...document.querySelectorAll(sel + ' tr[data-key]')]
  .filter(r => r.checkVisibility()).map(r => r.dataset.key)"""


def test_config_diff_highlights_and_folds(lab_server, page):
    """The diff is plain HTML: the equal keys fold and unfold with no kernel and no script."""
    cells = [
        "%load_ext nbtracker",
        """import nbtracker
a = nbtracker.init(project="diff", name="a", config={"lr": 0.1, "epochs": 5, "model": {"width": 64}})
a.finish()
b = nbtracker.init(project="diff", name="<b>b</b>",
                   config={"lr": 0.2, "epochs": 5, "model": {"width": 64, "depth": 2}})
b.finish()""",
        "nbtracker.diff(a, b)",
    ]
    open_and_run(page, lab_server, "diff.ipynb", cells)
    diff = ".nbt-static[data-nbt-static='diff']"
    page.wait_for_selector(f"{diff} tr[data-key]", timeout=30_000)
    assert page.evaluate(VISIBLE_KEYS, diff) == ["lr", "model.depth"]
    assert page.locator(f'{diff} tr.nbt-differs[data-key="lr"]').count() == 1
    assert page.locator(f'{diff} tr[data-key="model.depth"] td.nbt-missing').count() == 1
    assert page.locator(f"{diff} b").count() == 0  # the name's markup stays text
    page.click(f"{diff} summary")
    assert page.evaluate(VISIBLE_KEYS, diff) == ["lr", "model.depth", "epochs", "model.width"]
    assert page.locator(f'{diff} tr.nbt-differs[data-key="epochs"]').count() == 0
    assert "<b>b</b>" in page.locator(diff).inner_text()
    screenshot(page.locator(diff), "config-diff")
    assert foreign_requests(page) == []


def test_compare_chart_renders_offline(lab_server, page):
    cells = [
        "%load_ext nbtracker",
        """import nbtracker
runs = []
for g, lr in [("a", 0.1), ("a", 0.12), ("b", 0.3), ("b", 0.32)]:
    with nbtracker.init(project="cmp", group=g, config={"lr": lr}) as r:
        for i in range(200):
            r.log({"loss": 1 / (1 + lr * i)})
    runs.append(r)""",
        'nbtracker.compare(*runs, group_by="group", smooth=0.5)',
    ]
    open_and_run(page, lab_server, "compare.ipynb", cells)
    page.wait_for_selector(".nbt-chartview[data-ready='1'] canvas", timeout=30_000)
    screenshot(page.locator(".nbt-chartview"), "compare-chart")
    assert foreign_requests(page) == []


def test_live_panel_shows_the_upload_state(lab_server, page, tmp_path):
    """An online run's panel says how its upload stands; the key is nowhere on the page."""
    import pytest

    serverproc = pytest.importorskip("serverproc")
    srv = serverproc.ServerProcess(tmp_path / "team")
    flag = tmp_path / "server-gone"
    try:
        key = srv.create_user("panel")
        cells = [
            "%load_ext nbtracker",
            f"""import os
os.environ["NBTRACKER_BASE_URL"] = {srv.url!r}
os.environ["NBTRACKER_API_KEY"] = {key!r}""",
            "%tracker init --project up --name online",
            f"""import os, time
import nbtracker
for i in range(300):
    nbtracker.log({{"loss": 1 / (i + 1)}})
deadline = time.monotonic() + 60
while not os.path.exists({str(flag)!r}) and time.monotonic() < deadline:
    time.sleep(0.1)
for i in range(100):
    nbtracker.log({{"loss": 1 / (i + 1)}})
time.sleep(3)""",
        ]
        open_and_run(page, lab_server, "upload.ipynb", cells)
        page.wait_for_selector(".nbt-live", timeout=30_000)
        stats = "() => (document.querySelector('.nbt-live .nbt-stats') || {}).textContent || ''"
        page.wait_for_function(f"() => ({stats})().includes('synced')", timeout=30_000)
        assert "online" in page.evaluate(stats)
        screenshot(page.locator(".nbt-live"), "live-panel-upload")
        srv.kill()  # the server goes away while the run logs on
        flag.touch()
        page.wait_for_function(f"() => ({stats})().includes('offline')", timeout=30_000)
        assert "records behind" in page.evaluate(stats)
        outputs = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea')]"
                                ".map(e => e.innerHTML).join('')")  # the cells' code holds it
        assert outputs and key not in outputs and key[-20:] not in outputs
        wait_idle(page)
    finally:
        flag.touch()
        srv.stop()
