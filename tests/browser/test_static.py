"""Finished panels in the browser: the live widget becomes the static form in the document, so a
notebook saved without widget state reopens with its charts; an untrusted notebook run headless
shows them too; the static panel mode refreshes its image while the run logs."""

from __future__ import annotations

import json
import os
import re

import nbformat
import pytest
from helpers import media_cell
from nbdriver import foreign_requests, open_and_run, sample, screenshot, wait_idle

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC = ".nbt-static[data-nbt-static='run']"
# the curves drawn by the static form's image (decoded; -1 when the image did not load)
CURVES = """(sel) => {
  const img = document.querySelector(sel + " img");
  if (!img || !img.complete || !img.naturalWidth) return -1;
  const svg = atob(img.src.split(",")[1]);
  return (svg.match(/stroke-width="1.5"/g) || []).length;
}"""

ACROSS_CELLS = [
    "%load_ext nbtracker",
    "%tracker init --project static --name across lr=0.1",
    """import math, time
import nbtracker
for i in range(600):
    nbtracker.log({"train/loss": math.exp(-i / 200), "val/acc": i / 600})
    if i % 100 == 0:
        time.sleep(0.2)""",
    "%tracker finish",
]


@pytest.fixture(params=["lab", "notebook7"])
def server(request):
    """Each test that takes it runs in JupyterLab and in Notebook 7."""
    return request.getfixturevalue(f"{request.param}_server")


def _saved(server, name) -> nbformat.NotebookNode:
    return nbformat.read(server.root / name, as_version=4)


def _finished_panel_becomes_static_and_survives_a_reopen(page, server, name):
    open_and_run(page, server, name, ACROSS_CELLS)
    page.wait_for_selector(".nbt-live", timeout=30_000)  # live while the run runs
    page.wait_for_selector(STATIC, timeout=60_000)
    wait_idle(page)
    page.wait_for_function(f"() => ({CURVES})({json.dumps(STATIC)}) === 2", timeout=20_000)
    assert page.locator(".nbt-live").count() == 0
    panel = page.locator(STATIC)
    assert panel.count() == 1
    assert page.evaluate(CURVES, STATIC) == 2  # train/loss and val/acc
    assert "across" in panel.inner_text() and "finished" in panel.inner_text()
    # the start and finish lines are not printed beside the panel
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
    screenshot(panel, f"static-panel-{server.app}")
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=20_000)
    nb = _saved(server, name)
    saved = json.dumps(nb.cells[1].outputs)
    assert WIDGET_VIEW not in saved and "nbt-static" in saved
    # reopened with a fresh kernel and no widget state: the charts, no widget error
    for s in server.api("GET", "/api/sessions") or []:
        if s.get("path") == name:
            server.api("DELETE", f"/api/sessions/{s['id']}")
    page.goto(server.notebook_url(name))
    page.wait_for_selector(STATIC, timeout=30_000)
    page.wait_for_function(f"() => ({CURVES})({json.dumps(STATIC)}) === 2", timeout=20_000)
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    assert foreign_requests(page) == []


def test_finished_panel_becomes_static_in_jupyterlab(lab_server, page):
    _finished_panel_becomes_static_and_survives_a_reopen(page, lab_server, "static_lab.ipynb")


def test_finished_panel_becomes_static_in_notebook7(notebook7_server, page):
    _finished_panel_becomes_static_and_survives_a_reopen(page, notebook7_server, "static_nb7.ipynb")


# what a run's static form shows of its media, read in the page (-1: an image did not load)
MEDIA = """() => {
  const s = [...document.querySelectorAll(".nbt-static")].find(e => e.querySelector(".nbt-media"));
  if (!s) return null;
  const loaded = (imgs) => imgs.length && imgs.every(i => i.complete && i.naturalWidth) ? imgs.length : -1;
  const q = (sel) => [...s.querySelectorAll(sel)];
  const audio = s.querySelector("audio.nbt-audio");
  const frame = s.querySelector("iframe.nbt-html");
  return {
    images: loaded(q(".nbt-kind-image-file img.nbt-img")),
    thumbs: loaded(q(".nbt-kind-image-file img.nbt-thumb")),
    table: loaded(q("table.nbt-media-table img")),
    cell: (s.querySelector("table.nbt-media-table td:nth-child(2)") || {}).textContent,
    heatmap: loaded(q(".nbt-hist img")),
    audio: audio ? [audio.controls, audio.getAttribute("src").slice(0, 15), audio.readyState] : null,
    frame: frame ? frame.getAttribute("sandbox") : null,
    frameNote: (s.querySelector(".nbt-kind-html-file") || {}).textContent,
    gif: loaded(q(".nbt-kind-video-file img")),
    video: q("video.nbt-video").map(v => [v.controls, v.getAttribute("src").slice(0, 15)]),
    alerts: q(".nbt-alert").length,
    info: q("details.nbt-info summary").length,
  };
}"""


# the image the static form's step slider shows big (a thumbnail's step, or "last"), and
# whether the last image is a thumbnail now
STEPS = """() => {
  const st = document.querySelector(".nbt-kind-image-file .nbt-stepper");
  const big = [...st.querySelectorAll("label.nbt-step")].find(l => l.querySelector("input").checked);
  const img = big.querySelector("img");
  const last = st.querySelector("label.nbt-step-last img");
  return {shown: big.classList.contains("nbt-step-last") ? "last"
                   : img.getAttribute("alt").replace("step ", ""),
          big: img.getBoundingClientRect().height > 60,
          lastSmall: last.getBoundingClientRect().height <= 50};
}"""

# the id cell of the table row drawn highest (rows are laid out as a grid: the cells have boxes)
FIRST_ROW = """() => {
  const cells = [...document.querySelectorAll(".nbt-table-sort tbody tr")].map(r => r.querySelector("td"));
  cells.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);
  return cells[0].textContent;
}"""


def _media_seen(page) -> dict:
    try:
        page.wait_for_function(f"() => {{ const m = ({MEDIA})(); return m && m.images > 0 && m.thumbs > 0 "
                               "&& m.table > 0 && m.heatmap > 0 && m.audio && m.audio[2] >= 1; }",
                               timeout=20_000)
    except Exception:
        raise AssertionError(f"media not all shown: {page.evaluate(MEDIA)}") from None
    return page.evaluate(MEDIA)


def test_headless_run_without_widget_state_shows_charts_and_media(lab_server, page, tmp_path):
    """Executed by nbclient, widget state stripped, never trusted: JupyterLab draws the static
    HTML (sanitised) with its SVG charts and the media run's images, table thumbnails,
    histogram heat-map and audio player; the sandboxed frame is removed by the sanitiser and
    the text it held says what was there. Signed (trusted), the same file shows the frame."""
    nbclient = pytest.importorskip("nbclient")
    from nbformat.sign import NotebookNotary

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in [*ACROSS_CELLS, media_cell()]]
    env = {**os.environ, "NBTRACKER_DIR": str(tmp_path / "store")}
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    nb.metadata.pop("widgets", None)
    name = "headless_untrusted.ipynb"
    nbformat.write(nb, lab_server.root / name)
    page.goto(lab_server.notebook_url(name))
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=30_000)
    page.wait_for_selector(".nbt-static img", timeout=30_000)
    page.wait_for_function(f"() => ({CURVES})('.nbt-static') === 2", timeout=20_000)
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    screenshot(page.locator(".nbt-static").first, "static-panel-untrusted")
    seen = _media_seen(page)
    assert seen["images"] == 1 and seen["thumbs"] == 8 and seen["table"] == 4 and seen["heatmap"] == 1
    assert seen["cell"] == "<script>alert(1)</script>"  # shown as text
    assert seen["audio"][:2] == [True, "data:audio/wav;"]
    assert seen["gif"] == 1 and seen["video"] == [[True, "data:video/mp4;"]]  # a GIF video, an mp4
    assert seen["frame"] is None and "HTML document" in seen["frameNote"]  # the sanitiser's doing
    assert seen["alerts"] == 1 and seen["info"] == 1
    media = page.locator(".nbt-static", has=page.locator(".nbt-media"))
    screenshot(media, "static-media-untrusted")
    assert foreign_requests(page) == []

    trusted = "headless_trusted.ipynb"
    NotebookNotary(data_dir=str(lab_server.base / "jupyter" / "data")).sign(nb)
    nbformat.write(nb, lab_server.root / trusted)
    page.goto(lab_server.notebook_url(trusted))
    page.wait_for_selector(".nbt-static iframe.nbt-html", timeout=30_000)
    seen = _media_seen(page)
    assert seen["frame"] == "" and seen["table"] == 4  # a sandbox allowing nothing
    frame = page.frame_locator(".nbt-static iframe.nbt-html")
    assert frame.locator("h3").inner_text() == "report"
    screenshot(page.locator(".nbt-static", has=page.locator(".nbt-media")), "static-media-trusted")
    # the form's style sheet is kept: a thumbnail shows its step in place of the last image
    # (the last one shrinks to a thumbnail), and a column's ▼ sorts the table's rows by it
    assert page.evaluate(STEPS) == {"shown": "last", "big": True, "lastSmall": False}
    page.locator(".nbt-kind-image-file label.nbt-step:not(.nbt-step-last)").first.click()
    page.wait_for_function(f"() => ({STEPS})().shown === '0'", timeout=10_000)
    assert page.evaluate(STEPS) == {"shown": "0", "big": True, "lastSmall": True}
    assert page.evaluate(FIRST_ROW) == "0"
    page.locator(".nbt-table-sort label.nbt-sort-d").first.click()
    page.wait_for_function(f"() => ({FIRST_ROW})() === '3'", timeout=10_000)
    page.locator(".nbt-table-sort label.nbt-sort-a").nth(1).click()  # by label: <b>class 1</b> …
    page.wait_for_function(f"() => ({FIRST_ROW})() === '1'", timeout=10_000)
    screenshot(page.locator(".nbt-static", has=page.locator(".nbt-media")), "static-media-sorted")
    assert foreign_requests(page) == []


def test_static_mode_refreshes_in_place(server, page):
    """The fallback for front-ends where widget messages do not arrive (Colab across cells):
    no widget; the output's image is redrawn at most once a second while the run logs."""
    cells = [
        "%load_ext nbtracker",
        "%tracker panel static",
        """import time, nbtracker
run = nbtracker.init(project="static", name="refreshing")
display(run)
for i in range(60):
    run.log({"loss": 1 / (i + 1)})
    time.sleep(0.1)
run.finish()""",
    ]
    open_and_run(page, server, "static_mode.ipynb", cells)
    page.wait_for_selector(STATIC, timeout=30_000)
    step = ("() => { const e = document.querySelector(\"" + STATIC + "\"); "
            "const m = e && e.textContent.match(/step (\\d+)/); return m ? +m[1] : -1 }")
    seen = sample(page, step, seconds=15, interval=0.2, until=60)
    wait_idle(page)
    assert page.locator(".nbt-live").count() == 0  # never a widget
    steps = [s for s in seen if 0 < s < 60]
    assert len(set(steps)) >= 2, seen  # redrawn while it ran
    page.wait_for_function(f"() => ({step})() === 60", timeout=20_000)
    assert "finished" in page.locator(STATIC).inner_text()


def test_comparison_and_run_table_leave_their_static_form_when_the_kernel_goes(server, page):
    """A comparison and a run table are widgets while their kernel lives; restarted, it takes
    their models away, and the document keeps the static form their outputs carry — saved and
    reopened, the charts and the table are there, not "model not found"."""
    cells = [
        "%load_ext nbtracker",
        """import nbtracker
runs = []
for i, lr in enumerate([0.1, 0.2, 0.3]):
    with nbtracker.init(project="gone", name=f"r{i}", config={"lr": lr}) as r:
        for s in range(300):
            r.log({"loss": 1 / (1 + lr * s)})
    runs.append(r)""",
        "nbtracker.compare_view(*runs)",
        'nbtracker.runs_table("gone")',
    ]
    name = "kernel_gone.ipynb"
    open_and_run(page, server, name, cells)
    page.wait_for_selector(".nbt-chartview[data-ready='1'] canvas", timeout=30_000)
    page.wait_for_selector(".nbt-runs tr.nbt-run", timeout=30_000)
    wait_idle(page)
    assert page.locator(".nbt-static").count() == 0  # live widgets while the kernel lives
    page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()")
    page.wait_for_selector(".nbt-static[data-nbt-static='compare'] img", timeout=30_000)
    page.wait_for_selector(".nbt-static[data-nbt-static='runs'] table", timeout=30_000)
    assert page.locator(".nbt-chartview").count() == 0 and page.locator(".nbt-runs").count() == 0
    assert page.evaluate(CURVES, ".nbt-static[data-nbt-static='compare']") == 3
    assert "r2" in page.locator(".nbt-static[data-nbt-static='runs']").inner_text()
    wait_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=20_000)
    saved = json.dumps([c.outputs for c in _saved(server, name).cells])
    assert WIDGET_VIEW not in saved
    page.goto(server.notebook_url(name))
    page.wait_for_selector(".nbt-static[data-nbt-static='runs'] table", timeout=30_000)
    assert page.locator(".nbt-static[data-nbt-static='compare'] img").count() == 1
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
    screenshot(page.locator(".nbt-static[data-nbt-static='compare']"), f"static-comparison-{server.app}")
    assert foreign_requests(page) == []


def test_a_notebook_saved_while_its_kernel_lives_reopens_with_static_forms(server, page):
    """Saved with the kernel running (no widget state, JupyterLab's default): the file holds the
    comparison's and the table's static forms, the open page keeps the live widgets, and the
    notebook reopened later shows the forms instead of "model not found"."""
    cells = [
        "%load_ext nbtracker",
        """import nbtracker
runs = []
for i, lr in enumerate([0.1, 0.2]):
    with nbtracker.init(project="saved", name=f"s{i}", config={"lr": lr}) as r:
        for s in range(200):
            r.log({"loss": 1 / (1 + lr * s)})
    runs.append(r)""",
        "nbtracker.compare_view(*runs)",
        'nbtracker.runs_table("saved")',
    ]
    name = f"saved_live_{server.app}.ipynb"
    open_and_run(page, server, name, cells)
    page.wait_for_selector(".nbt-chartview[data-ready='1'] canvas", timeout=30_000)
    page.wait_for_selector(".nbt-runs tr.nbt-run", timeout=30_000)
    wait_idle(page)
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty",
                           timeout=20_000)
    saved = _saved(server, name)
    outs = [o for c in saved.cells for o in c.outputs if "text/html" in o.get("data", {})]
    kinds = sorted(re.search(r'data-nbt-static="(\w+)"', o["data"]["text/html"]).group(1)
                   for o in outs)
    assert kinds == ["compare", "runs"] and all(WIDGET_VIEW not in o["data"] for o in outs)
    # the page is still live: the widgets are there and answer
    assert page.locator(".nbt-chartview").count() == 1 and page.locator(".nbt-runs").count() == 1
    page.click('.nbt-runs th[data-key="name"]')
    assert page.locator(".nbt-static").count() == 0
    page.goto(server.notebook_url(name))  # reopened: the kernel is still up, the models are not
    page.wait_for_selector(".nbt-static[data-nbt-static='runs'] table", timeout=30_000)
    assert page.locator(".nbt-static[data-nbt-static='compare'] img").count() == 1
    assert "Error displaying widget" not in page.locator(".jp-Notebook").inner_text()
