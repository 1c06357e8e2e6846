"""Charts of `nbtracker.plot` in the live panel, in JupyterLab (headless Chromium, loopback): a line
chart, a bar chart, a confusion matrix and a ROC curve, each drawn by the bundled vega-lite from
its table — the marks on the page are counted, not just found."""

from __future__ import annotations

import re

from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

LOG = """import numpy as np
import nbtracker
run = nbtracker.run
line = nbtracker.Table(columns=["epoch", "loss", "split"],
                       data=[[i, 1 / (i + 1) + (0.1 if s == "val" else 0), s]
                             for s in ("train", "val") for i in range(10)])
bars = nbtracker.Table(columns=["class", "accuracy"],
                       data=[["cat", 0.9], ["dog", 0.75], ["<b>owl</b>", 0.5], ["eel", 0.2]])
y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
preds = [0, 0, 1, 1, 2, 2, 2, 2, 0]
rng = np.random.default_rng(0)
y = np.r_[np.zeros(20, int), np.ones(20, int)]
scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
probas = np.stack([1 - scores, scores], axis=1)
run.log({"curves/loss": nbtracker.plot.line(line, "epoch", "loss", stroke="split", title="loss"),
         "accuracy": nbtracker.plot.bar(bars, "class", "accuracy", title="accuracy per class"),
         "cm": nbtracker.plot.confusion_matrix(y_true=y_true, preds=preds,
                                               class_names=["cat", "dog", "owl"]),
         "roc": nbtracker.plot.roc_curve(y, probas, labels=["neg", "pos"])})
run.log({"cm": nbtracker.plot.confusion_matrix(y_true=y_true, preds=y_true,  # all right
                                               class_names=["cat", "dog", "owl"])})
roc_rows = {c: len(g) for c, g in nbtracker.Api().run(run.path).media("roc")[-1].table.groupby("class")}
print("roc rows", roc_rows)"""

CARD = '.nbt-media[data-key="{}"]'


def marks(card, kind: str, tag: str = "path") -> int:
    """The marks vega drew for the chart itself (not its axes or legend)."""
    return card.locator(f".nbt-plot-view g.mark-{kind}.role-mark {tag}").count()


def test_panel_draws_line_bar_confusion_matrix_and_roc(lab_server, page):
    cells = ["%load_ext nbtracker", "%tracker init --project plots --name plots", LOG]
    open_and_run(page, lab_server, "plots.ipynb", cells)
    page.wait_for_selector(".nbt-live", timeout=60_000)
    wait_idle(page)
    panel = page.locator(".nbt-live").first
    card = lambda key: panel.locator(CARD.format(key))  # noqa: E731
    for key in ("curves/loss", "accuracy", "cm", "roc"):
        card(key).locator(".nbt-plot-view svg").wait_for(timeout=30_000)
        assert card(key).get_attribute("data-kind") == "chart"
    # the line chart: a line per split, 10 points each (a path of 10 vertices, and the dots)
    line = card("curves/loss")
    assert line.locator(".nbt-plot").get_attribute("data-chart") == "line"
    paths = line.locator(".nbt-plot-view g.mark-line.role-mark path").evaluate_all(
        "ps => ps.map(p => p.getAttribute('d'))")
    assert len(paths) == 2 and all(len(re.findall(r"[ML]", d)) == 10 for d in paths), paths
    assert marks(line, "symbol") == 20
    text = line.text_content()
    assert "loss" in text and "epoch" in text and "train" in text and "val" in text
    # the bar chart: a bar per class, the longest for the best accuracy; labels are text
    bar = card("accuracy")
    widths = bar.locator(".nbt-plot-view g.mark-rect.role-mark path").evaluate_all(
        "ps => ps.map(p => p.getBBox().width)")
    assert len(widths) == 4 and widths == sorted(widths, reverse=True), widths
    assert "<b>owl</b>" in bar.locator(".nbt-plot-view svg").text_content()
    assert bar.locator(".nbt-plot-view svg b").count() == 0
    # the confusion matrix: 3 x 3 cells with the counts written in them, row by row; the
    # latest step's, then step 0's when the slider goes back (its table sent on request)
    cm = card("cm")
    counts = "() => [...document.querySelectorAll('.nbt-live .nbt-media[data-key=\"cm\"] " \
             ".nbt-plot-view g.mark-text.role-mark text')].map(t => +t.textContent).join(',')"
    page.wait_for_function(f"() => ({counts})() === '3,0,0,0,2,0,0,0,4'", timeout=30_000)
    assert marks(cm, "rect") == 9 and cm.get_attribute("data-step") == "1"
    cm.locator("input.nbt-step").evaluate("s => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    page.wait_for_function(f"() => ({counts})() === '2,1,0,0,1,1,1,0,3'", timeout=30_000)
    assert marks(cm, "rect") == 9 and cm.get_attribute("data-step") == "0"
    # its table folds open under it
    cm.locator(".nbt-plot-data summary").click()
    cm.locator(".nbt-plot-data tbody tr").first.wait_for()
    assert cm.locator(".nbt-plot-data tbody tr").count() == 9
    # the ROC curve: a curve per class, through every point of its table
    roc = card("roc")
    wait_idle(page)
    out = page.locator(".jp-OutputArea-output").filter(has_text="roc rows").inner_text()
    rows = {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", out)}
    assert set(rows) == {"neg", "pos"}
    paths = roc.locator(".nbt-plot-view g.mark-line.role-mark path").evaluate_all(
        "ps => ps.map(p => p.getAttribute('d'))")
    assert sorted(len(re.findall(r"[ML]", d)) for d in paths) == sorted(rows.values()), (paths, rows)
    assert "False positive rate" in roc.text_content() and "True positive rate" in roc.text_content()
    screenshot(panel, "live-panel-plots")
    errors = page.evaluate("() => [...document.querySelectorAll('[data-contract-errors]')]"
                           ".map(e => e.dataset.contractErrors)")
    assert errors == []
    assert foreign_requests(page) == []
