"""The Python↔JS contract against the real front-end, in JupyterLab and Notebook 7.

What a live panel's views hold is read from the vega views themselves (each chart box keeps
its view as `box.nbtView`) and compared with what the kernel's feed holds and the store logged.
"""

from __future__ import annotations

import json
import time

import pytest
from nbdriver import foreign_requests, open_and_run, sample, screenshot, wait_idle

import nbtracker

# Every live panel on the page: its state, point count, contract errors, and per chart the
# points its vega view holds and the axis titles it drew.
PANELS = """() => {
  const titles = (node, out) => {
    if (!node) return out;
    if (node.role === 'axis-title') for (const it of node.items || []) out.push(it.text);
    for (const it of node.items || []) titles(it, out);
    return out;
  };
  return [...document.querySelectorAll('.nbt-live')].map((p) => ({
    state: p.dataset.state, points: +p.dataset.points,
    errors: (p.closest('[data-contract-errors]') || { dataset: {} }).dataset.contractErrors || null,
    charts: Object.fromEntries([...p.querySelectorAll('.nbt-chart')].map((b) => [b.dataset.key,
      b.nbtView ? { xy: b.nbtView.data('points').map((d) => [d.x, d.y])
                          .sort((a, c) => a[0] - c[0] || a[1] - c[1]),
                    titles: titles(b.nbtView.scenegraph().root, []) } : null])),
  }));
}"""


OUTPUTS = "() => [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.textContent)"


def _printed(page, tag: str) -> dict:
    """Per metric, the points a cell printed on a line `TAG {...}`."""
    text = page.evaluate(OUTPUTS)
    for t in text:
        if t.startswith(tag + " "):
            return {k: sorted(zip(*xy)) for k, xy in json.loads(t[len(tag) + 1:].strip()).items()}
    raise AssertionError(f"no {tag} line in the outputs: {text}")


def _points(panel: dict) -> dict:
    return {k: [tuple(p) for p in c["xy"]] for k, c in panel["charts"].items() if c}


TWO_VIEWS = [
    "%load_ext nbtracker",
    """import gc, json, os, time
import nbtracker
from nbtracker.notebook import live
live.CHECKPOINT = 3600  # no snapshot before finish: views get points from messages only
run = nbtracker.init(project="contract", name="two-views")
nbtracker.define_metric("val/*", step_metric="epoch")
panel = live.LivePanel()
live.LiveFeed(run, panel, max_buckets=40)  # few buckets: the series is re-bucketed (reset) often
display(panel)""",
    """for i in range(600):
    nbtracker.log({"train/loss": 1 / (i + 1) + (5.0 if i == 333 else 0.0)}, step=i)
    if i % 100 == 99:
        nbtracker.log({"epoch": i // 100, "val/acc": i / 600}, step=i)
    if i % 60 == 0:
        time.sleep(0.05)
time.sleep(1)""",
    # the same panel shown again mid-run: it must show the early points at once
    "display(panel); time.sleep(2.5)",
    """for i in range(600, 1200):
    nbtracker.log({"train/loss": 1 / (i + 1)}, step=i)
    if i % 100 == 99:
        nbtracker.log({"epoch": i // 100, "val/acc": i / 1200}, step=i)
    if i % 150 == 0:  # logged late, at earlier steps
        nbtracker.log({"train/loss": -1.0 - i / 1000}, step=i - 500)
    if i % 100 == 0:
        time.sleep(0.1)
nbtracker.log({"train/loss": -7.0}, step=40)
time.sleep(1.5)""",
    """feed = next(o for o in gc.get_objects() if isinstance(o, live.LiveFeed) and o.run is run)
print("HELD " + json.dumps({k: [a.tolist() for a in s.points()] for k, s in feed._series.items()}))""",
    """time.sleep(2)
run.finish()
time.sleep(0.5)
print("FINAL " + json.dumps({k: [v["c"][0] + v["t"][0], v["c"][1] + v["t"][1]]
                             for k, v in panel.snapshot.items()}))""",
    # a run finished without a panel, shown afterwards: drawn from the snapshot trait alone
    """done = nbtracker.init(project="contract", name="shown-later")
for i in range(50):
    done.log({"loss": float(i % 7)})
done.finish()
display(live.panel_for(done))""",
]


def _two_views(page, server, name):
    open_and_run(page, server, name, TWO_VIEWS)
    page.wait_for_selector(".nbt-live", timeout=60_000)
    t0 = time.monotonic()
    page.wait_for_selector(".nbt-live canvas", timeout=60_000)
    print(f"library from its model: first chart {time.monotonic() - t0:.2f}s after the panel showed")
    page.wait_for_function("() => document.querySelectorAll('.nbt-live').length >= 2", timeout=60_000)
    # the moment the second view exists, it holds what the first holds (no checkpoint ran)
    seen = sample(page, f"() => ({PANELS})().map(p => p.points)", seconds=1.5, interval=0.1)
    first_equal = next((i for i, (a, b, *_) in enumerate(seen) if a == b and a > 0), None)
    assert first_equal is not None and first_equal * 0.1 < 1.0, seen
    assert seen[first_equal][0] >= 80, seen  # the early points, not a few new ones
    page.wait_for_function(f"() => ({OUTPUTS})().some(t => t.startsWith('HELD '))", timeout=60_000)
    held = _printed(page, "HELD")  # what the kernel's decimator (StreamingMinMax) holds
    first, second = page.evaluate(PANELS)[:2]
    assert first["state"] == second["state"] == "running"
    assert _points(first) == _points(second) == held  # both views, from deltas only
    assert (40.0, -7.0) in held["train/loss"] and (333.0, 1 / 334 + 5.0) in held["train/loss"]
    # the x-axis: val/* is drawn against epoch, the rest against step
    assert first["charts"]["val/acc"]["titles"] == ["epoch"]
    assert first["charts"]["train/loss"]["titles"] == ["step"]
    assert second["charts"]["val/acc"]["titles"] == ["epoch"]
    wait_idle(page, timeout=60)
    page.wait_for_function("() => document.querySelectorAll('.nbt-live').length === 3", timeout=30_000)
    page.wait_for_function(f"() => ({PANELS})().every(p => p.state === 'finished' && p.points > 0)",
                           timeout=30_000)
    page.wait_for_function(f"() => ({OUTPUTS})().some(t => t.startsWith('FINAL '))", timeout=30_000)
    panels = page.evaluate(PANELS)
    first, second, later = panels
    # a finished panel draws the short copy of its curves in its snapshot trait
    final = _printed(page, "FINAL")
    assert _points(first) == _points(second) == final
    assert min(y for _, y in final["train/loss"]) == -7.0
    assert later["points"] == len(_points(later)["loss"]) > 0
    assert all(p["errors"] is None for p in panels), panels
    # what the later panel draws is what the store logged
    api = nbtracker.Api(dir=str(server.store))
    logged = api.runs("contract", filters={"display_name": "shown-later"})[0].history()
    assert set(_points(later)["loss"]) <= set(zip(logged["_step"].astype(float), logged["loss"]))
    assert {y for _, y in _points(later)["loss"]} == set(logged["loss"])  # every level, spikes kept
    # the library came from its model, once for the page
    assert page.evaluate(LOADS) == {"model": 1, "comm": 0, "hashes": 1}
    assert foreign_requests(page) == []
    screenshot(page.locator(".nbt-live").first, f"contract-{name}")


def test_views_share_one_store_and_axis_titles_in_jupyterlab(lab_server, page):
    _two_views(page, lab_server, "contract_lab.ipynb")


def test_views_share_one_store_and_axis_titles_in_notebook7(notebook7_server, page):
    _two_views(page, notebook7_server, "contract_nb7.ipynb")


LOADS = """() => { const c = window.__nbtrackerChartLibs;
  return c ? { ...c.loads, hashes: c.byHash.size } : null; }"""

# Colab gives every output its own frame and widget manager: a widget cannot resolve a model
# another output holds. Imitated here by making the manager's get_model never resolve for the
# ChartLibrary model (every manager: the setter catches the assignment in WidgetModel).
ISOLATE = """(() => {
  const patched = new WeakSet();
  Object.defineProperty(Object.prototype, 'widget_manager', {
    configurable: true,
    get() { return undefined; },
    set(manager) {
      Object.defineProperty(this, 'widget_manager', { value: manager, writable: true,
                                                      configurable: true, enumerable: true });
      if (!manager || typeof manager.get_model !== 'function' || patched.has(manager)) return;
      patched.add(manager);
      const get = manager.get_model;
      manager.get_model = function (id) {
        return Promise.resolve(get.call(this, id)).then((m) => {
          if (m && m.get && m.get('_kind') === 'library') {
            window.__libModelAsked = (window.__libModelAsked || 0) + 1;
            return new Promise(() => {});
          }
          return m;
        });
      };
    },
  });
})();"""

ISOLATED = [
    "%load_ext nbtracker",
    """import nbtracker
from nbtracker.notebook import live
runs = []
for lr in (0.1, 0.3):
    with nbtracker.init(project="iso", config={"lr": lr}) as r:
        for i in range(100):
            r.log({"loss": 1 / (1 + lr * i), "acc": lr * i})
    runs.append(r)
display(live.panel_for(runs[0]))""",
    "nbtracker.compare(*runs)",
    """run = nbtracker.init(project="iso", name="live")
display(live.panel_for(run))
for i in range(300):
    nbtracker.log({"loss": 1 / (i + 1)})
run.finish()""",
]


def _library_over_the_comm(page, server, name):
    page.add_init_script(ISOLATE)
    open_and_run(page, server, name, ISOLATED)
    page.wait_for_selector(".nbt-live", timeout=60_000)
    t0 = time.monotonic()
    page.wait_for_selector(".nbt-live canvas", timeout=60_000)
    print(f"library over the comm: first chart {time.monotonic() - t0:.2f}s after the panel showed")
    page.wait_for_selector(".nbt-chartview[data-ready='1'] canvas", timeout=60_000)
    wait_idle(page)
    page.wait_for_function(f"() => ({PANELS})().length === 2 && ({PANELS})().every("
                           "p => p.state === 'finished' && p.points > 0)", timeout=30_000)
    panels = page.evaluate(PANELS)
    assert [sorted(p["charts"]) for p in panels] == [["acc", "loss"], ["loss"]]
    assert panels[0]["points"] == 200 and 0 < panels[1]["points"] <= 300
    assert page.locator(".nbt-live canvas").count() == 3
    assert page.evaluate("() => window.__libModelAsked") >= 1  # the model was out of reach
    # asked over a comm once, cached by hash for every other widget in the frame
    assert page.evaluate(LOADS) == {"model": 0, "comm": 1, "hashes": 1}
    assert all(p["errors"] is None for p in panels)
    assert foreign_requests(page) == []
    screenshot(page.locator(".nbt-chartview"), f"isolated-{name}")


def test_library_over_the_comm_in_jupyterlab(lab_server, page):
    _library_over_the_comm(page, lab_server, "isolated_lab.ipynb")


def test_library_over_the_comm_in_notebook7(notebook7_server, page):
    _library_over_the_comm(page, notebook7_server, "isolated_nb7.ipynb")


def _breach_is_reported(page, server, name):
    cells = [
        "%load_ext nbtracker",
        """from nbtracker.notebook import live
p = live.LivePanel()
display(p)
p.send({"type": "points", "series": {"loss": {"reset": None, "append": [[0], [1.0]], "tail": "oops"}}})
p.send({"type": "pointz"})
p.xlabels = {"loss": 3}
p.send({"type": "points", "series": {"loss": {"reset": None, "append": [[0, 1], [1.0, 2.0]],
                                              "tail": [[2], [0.5]]}}})""",
    ]
    warnings = []
    errors = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_and_run(page, server, name, cells)
    page.wait_for_function(f"() => ({PANELS})()[0]?.points === 3", timeout=30_000)
    wait_idle(page)
    (panel,) = page.evaluate(PANELS)
    assert _points(panel) == {"loss": [(0.0, 1.0), (1.0, 2.0), (2.0, 0.5)]}  # the one that fits
    assert panel["charts"]["loss"]["titles"] == ["step"]  # the broken xlabels were not used
    reported = page.evaluate("() => JSON.parse(document.querySelector('.nbt-live')"
                             ".closest('[data-contract-errors]').dataset.contractErrors)")
    assert any(".series.loss.tail: expected an array" in e for e in reported), reported
    assert any('unknown message type "pointz"' in e for e in reported), reported
    assert any('trait "xlabels"' in e and ".loss: expected a string" in e for e in reported), reported
    assert sum("breaks the widget contract" in w for w in warnings) >= 3, warnings
    assert not [e for e in errors if "nbtracker" in e or "contract" in e], errors


def test_a_breach_of_the_contract_is_reported_not_thrown_in_jupyterlab(lab_server, page):
    _breach_is_reported(page, lab_server, "breach_lab.ipynb")


def test_a_breach_of_the_contract_is_reported_not_thrown_in_notebook7(notebook7_server, page):
    _breach_is_reported(page, notebook7_server, "breach_nb7.ipynb")


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-x", "-q"])
