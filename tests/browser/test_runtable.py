"""The run table in a real browser (JupyterLab and Notebook 7): sort, filter, select and compare;
group by a column with per-group stats; choose columns; export the visible rows as CSV; and
10,000 runs drawn as a window of rows."""

from __future__ import annotations

import csv
import io

import pytest
from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

SERVERS = ["lab_server", "notebook7_server"]

RUNS = ".nbt-runs tr.nbt-run"
NAMES = "() => [...document.querySelectorAll('.nbt-runs tr.nbt-run')].map(r => r.children[1].textContent)"


def _names(page) -> list[str]:
    return page.evaluate(NAMES)


def _server(request, name):
    return request.getfixturevalue(name)


TABLE_CELLS = [
    "%load_ext nbtracker",
    """import nbtracker
for name, lr in [("beta", 0.1), ("alpha", 0.3), ("gamma", 0.01)]:
    with nbtracker.init(project="tbl", name=name, config={"lr": lr, "epochs": 5, "note": "<b>x</b>"}) as r:
        for i in range(50):
            r.log({"loss": lr * (50 - i)})""",
    "%tracker runs tbl",
]


@pytest.mark.parametrize("server_name", SERVERS)
def test_run_table_sorts_filters_and_compares(request, server_name, page):
    server = _server(request, server_name)
    open_and_run(page, server, f"table-{server_name}.ipynb", TABLE_CELLS)
    page.wait_for_selector(RUNS, timeout=30_000)
    wait_idle(page)
    assert sorted(_names(page)) == ["alpha", "beta", "gamma"]
    page.click('.nbt-runs th[data-key="config.lr"]')
    assert _names(page) == ["gamma", "beta", "alpha"]  # ascending lr
    page.click('.nbt-runs th[data-key="config.lr"]')
    assert _names(page) == ["alpha", "beta", "gamma"]  # descending
    page.click('.nbt-runs th[data-key="name"]')
    assert _names(page) == ["alpha", "beta", "gamma"]
    # user text is shown as text, never as markup
    assert page.locator(".nbt-runs b").count() == 0
    assert "<b>x</b>" in page.locator(".nbt-runs").inner_text()
    page.fill(".nbt-runs input.nbt-filter", "gam")
    assert _names(page) == ["gamma"]
    page.fill(".nbt-runs input.nbt-filter", "no such run")
    assert _names(page) == [] and "no runs match" in page.locator(".nbt-runs tr.nbt-empty").inner_text()
    page.fill(".nbt-runs input.nbt-filter", "")
    boxes = page.locator(".nbt-runs input.nbt-select")
    boxes.nth(0).check()
    boxes.nth(2).check()
    page.click(".nbt-runs button.nbt-compare")
    page.wait_for_selector(".nbt-comparison .nbt-compare-chart canvas", timeout=20_000)
    differing = page.locator(".nbt-comparison tr.nbt-differs").evaluate_all(
        "rows => rows.map(r => r.dataset.key)")
    assert differing == ["lr"]
    screenshot(page.locator(".nbt-runs"), f"run-table-{server_name}")
    assert page.locator("[data-contract-errors]").count() == 0
    assert foreign_requests(page) == []


LRS = [0.1, 0.01, 0.001]
GROUP_CELLS = [
    "%load_ext nbtracker",
    f"""import nbtracker
for i in range(12):
    lr = {LRS}[i % 3]
    name = "r%02d" % i if i != 3 else 'r03, "the one"\\nwith <b>a</b> newline'
    with nbtracker.init(project="grp", name=name, group="g%d" % (i % 2), job_type="train",
                        config={{"lr": lr, "seed": i, "note": "a,b" if i % 2 else "=HYPERLINK(1)"}}) as r:
        r.log({{"loss": lr * 10 + i, "acc": i / 12}})""",
    "nbtracker.runs_table('grp', order='+name')",
]


def _loss(i: int) -> float:
    return LRS[i % 3] * 10 + i


def _download_csv(page) -> list[list[str]]:
    with page.expect_download() as info:
        page.click(".nbt-runs button.nbt-export")
    download = info.value
    assert download.suggested_filename == "runs.csv"
    text = open(download.path(), encoding="utf-8", newline="").read()
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("server_name", SERVERS)
def test_run_table_groups_with_stats_collapses_and_exports_csv(request, server_name, page):
    server = _server(request, server_name)
    open_and_run(page, server, f"group-{server_name}.ipynb", GROUP_CELLS)
    page.wait_for_selector(RUNS, timeout=30_000)
    wait_idle(page)
    assert len(_names(page)) == 12
    # group by a config key chosen in the table
    page.select_option(".nbt-runs select.nbt-group-by", "config.lr")
    groups = page.locator(".nbt-runs tr.nbt-group")
    assert groups.evaluate_all("rs => rs.map(r => [r.dataset.group, +r.dataset.count])") == [
        ["0.001", 4], ["0.01", 4], ["0.1", 4]]
    for lr in LRS:
        cell = page.locator(f'.nbt-runs tr.nbt-group[data-group="{lr}"] td.nbt-stat[data-key="summary.loss"]')
        got = cell.evaluate("td => [+td.dataset.mean, +td.dataset.min, +td.dataset.max]")
        losses = [_loss(i) for i in range(12) if LRS[i % 3] == lr]
        assert got == pytest.approx([sum(losses) / 4, min(losses), max(losses)])
    # rows under each group, in the table's sort (name ascending)
    assert page.locator(RUNS).count() == 12
    assert _names(page)[:4] == ["r02", "r05", "r08", "r11"]
    # sorting by the grouped column orders the groups
    page.click('.nbt-runs th[data-key="config.lr"]')
    page.click('.nbt-runs th[data-key="config.lr"]')
    assert groups.evaluate_all("rs => rs.map(r => r.dataset.group)") == ["0.1", "0.01", "0.001"]
    page.click('.nbt-runs th[data-key="name"]')
    # a collapsed group hides its rows, and they leave the export too
    page.click('.nbt-runs tr.nbt-group[data-group="0.01"]')
    assert page.locator('.nbt-runs tr.nbt-group.nbt-collapsed[data-group="0.01"]').count() == 1
    assert page.locator(RUNS).count() == 8
    rows = _download_csv(page)
    header, body = rows[0], rows[1:]
    assert header[:2] == ["name", "state"] and "config.lr" in header and "summary.loss" in header
    name, lr_col, note = header.index("name"), header.index("config.lr"), header.index("config.note")
    expected = [i for lr in (0.001, 0.1) for i in range(12) if LRS[i % 3] == lr]
    want_names = ['r03, "the one"\nwith <b>a</b> newline' if i == 3 else f"r{i:02d}" for i in expected]
    assert [r[name] for r in body] == want_names  # quotes, commas and newlines survive
    assert [float(r[lr_col]) for r in body] == [LRS[i % 3] for i in expected]
    # text a spreadsheet would run as a formula stays text
    assert [r[note] for r in body] == ["a,b" if i % 2 else "'=HYPERLINK(1)" for i in expected]
    assert all(len(r) == len(header) for r in body)
    # the filter narrows the export as it narrows the table; no kernel was asked (idle kernel)
    page.fill(".nbt-runs input.nbt-filter", "the one")
    assert page.locator(RUNS).count() == 1
    assert [r[name] for r in _download_csv(page)[1:]] == [want_names[expected.index(3)]]
    page.fill(".nbt-runs input.nbt-filter", "")
    # ungrouped again
    page.select_option(".nbt-runs select.nbt-group-by", "")
    assert page.locator(".nbt-runs tr.nbt-group").count() == 0
    assert page.locator(RUNS).count() == 12
    assert page.locator(".nbt-runs b").count() == 0
    screenshot(page.locator(".nbt-runs"), f"run-table-groups-{server_name}")
    assert foreign_requests(page) == []


PICKER_CELLS = [
    "%load_ext nbtracker",
    """import nbtracker
for i in range(3):
    cfg = {f"k{j:03d}": (j if j % 10 else i) for j in range(300)}
    with nbtracker.init(project="wide", name="w%d" % i, config=cfg) as r:
        r.log({f"m{j}": j + i for j in range(12)})""",
    "t = nbtracker.runs_table('wide')\nt",
]


def test_run_table_column_picker(lab_server, page):
    open_and_run(page, lab_server, "picker.ipynb", PICKER_CELLS)
    page.wait_for_selector(RUNS, timeout=30_000)
    wait_idle(page)
    heads = lambda: page.locator(".nbt-runs th[data-key]").evaluate_all(  # noqa: E731
        "ths => ths.map(t => t.dataset.key)")
    shown = heads()
    # 300 config keys and 12 metrics: a few of each by default; those that differ come first
    assert shown[:4] == ["name", "state", "created", "runtime"]
    config = [k for k in shown if k.startswith("config.")]
    assert config == ["config.k000", "config.k010", "config.k020", "config.k030", "config.k040"]
    assert len([k for k in shown if k.startswith("summary.")]) == 5
    page.click(".nbt-runs details.nbt-columns summary")
    page.fill(".nbt-runs input.nbt-column-search", "k123")
    options = page.locator(".nbt-runs .nbt-column-option input")
    assert options.count() == 1
    options.first.check()
    assert "config.k123" in heads()
    nth = heads().index("config.k123") + 2  # after the checkbox
    assert page.locator(f".nbt-runs tr.nbt-run td:nth-child({nth})").all_inner_texts() == ["123"] * 3
    page.fill(".nbt-runs input.nbt-column-search", "state")
    page.locator(".nbt-runs .nbt-column-option input").first.uncheck()
    assert "state" not in heads()
    # the choice reaches the kernel (and the widget state saved with the notebook)
    wait_idle(page)
    visible = page.evaluate("""async () => {
      const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
      const reply = await k.requestExecute({code: "", silent: true,
        user_expressions: {v: "','.join(t.visible)"}}).done;
      return reply.content.user_expressions.v.data["text/plain"]; }""")
    assert "config.k123" in visible and "'name," in visible and ",state," not in visible
    screenshot(page.locator(".nbt-runs"), "run-table-columns")


MANY_CELLS = [
    "%load_ext nbtracker",
    """from types import SimpleNamespace as NS
from nbtracker.notebook.table import table_of_runs
runs = [NS(id="id%05d" % i, project="many", name="run-%05d" % i, state="finished",
           group="g%d" % (i % 10), job_type="train", tags=["a"], created=1.7e9 + i,
           runtime=i * 0.5, steps=100, config={"lr": [0.1, 0.01][i % 2], "seed": i},
           summary_metrics={"loss": 1 / (i + 1)}) for i in range(10_000)]
table_of_runs(runs)""",
]


def test_ten_thousand_runs_draw_a_window_of_rows(lab_server, page):
    open_and_run(page, lab_server, "many.ipynb", MANY_CELLS)
    page.wait_for_selector(RUNS, timeout=60_000)
    wait_idle(page)
    root = page.locator(".nbt-runs")
    assert root.get_attribute("data-rows") == "10000"
    drawn = page.locator(RUNS).count()
    assert 10 < drawn < 80, drawn  # a window, not 10,000 rows
    assert _names(page)[0] == "run-09999"  # newest first
    print(f"first paint of 10,000 runs: {root.get_attribute('data-paint-ms')} ms after render()")
    box = page.locator(".nbt-runs .nbt-table-box")
    box.evaluate("b => { b.scrollTop = b.scrollHeight; }")
    page.wait_for_function("() => document.querySelector('.nbt-runs').dataset.first !== '0'")
    assert _names(page)[-1] == "run-00000"
    assert page.locator(RUNS).count() < 80
    # a row in the middle: the window follows the scroll position
    box.evaluate("b => { b.scrollTop = 24 * 5000; }")
    page.wait_for_timeout(200)
    names = _names(page)
    assert "run-04999" in names and len(names) < 80
    page.click('.nbt-runs th[data-key="config.lr"]')
    sort_ms = root.get_attribute("data-compute-ms")
    assert _names(page)[0] == "run-00001"  # lr 0.01; ties in the order the runs came
    page.fill(".nbt-runs input.nbt-filter", "run-0000")
    assert root.get_attribute("data-rows") == "10"
    print(f"sort of 10,000 rows {sort_ms} ms, filter {root.get_attribute('data-compute-ms')} ms")
    page.fill(".nbt-runs input.nbt-filter", "")
    page.select_option(".nbt-runs select.nbt-group-by", "group")
    assert page.locator(".nbt-runs tr.nbt-group").count() >= 1
    assert root.get_attribute("data-items") == str(10_000 + 10)
    screenshot(root, "run-table-10k")
    assert page.locator("[data-contract-errors]").count() == 0
