"""Comparisons in a real browser: drag across a chart to zoom, and the chart is redrawn from the
full data of that range (JupyterLab and Notebook 7, headless Chromium, loopback only)."""

from __future__ import annotations

import json

import pytest
from nbdriver import foreign_requests, open_and_run, screenshot, wait_idle

VIEW = ".nbt-chartview"
STEPS = 60_000

CELLS = [
    "%load_ext nbtracker",
    f"""import math
import nbtracker
runs = []
for k in range(3):
    with nbtracker.init(project="zoom", name=f"run-{{k}}") as r:
        for s in range({STEPS}):
            r.log({{"loss": 1 / (1 + s / 5000) + 0.02 * math.sin(s / 50 + k)}})
    runs.append(r)""",
    'nbtracker.compare_view(*runs, metrics=["loss"])',
]


def _data(page) -> dict:
    return page.evaluate(f"""() => {{
      const e = document.querySelector('{VIEW}');
      return e ? {{...e.dataset}} : {{}};
    }}""")


@pytest.fixture(params=["lab", "notebook7"])
def server(request):
    return request.getfixturevalue("lab_server" if request.param == "lab" else "notebook7_server")


def test_dragging_zooms_and_refines_from_the_full_data(server, page):
    open_and_run(page, server, "zoom.ipynb", CELLS, timeout=120)
    page.wait_for_selector(f"{VIEW}[data-ready='1'] canvas", timeout=120_000)
    wait_idle(page, 120)
    full = _data(page)
    assert full["range"] == "" and json.loads(full["xspan"]) == [0, STEPS - 1]
    points = int(full["points"])
    assert 3 * 480 <= points <= 3 * (2 * 480 + 2)  # ~two points per pixel column, not 180,000
    assert page.locator(f"{VIEW} .nbt-zoom-reset").is_hidden()
    screenshot(page.locator(VIEW), f"compare-zoom-before-{server.app}")

    box = page.locator(f"{VIEW} canvas").bounding_box()
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.40, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.45, y, steps=5)
    page.mouse.move(box["x"] + box["width"] * 0.48, y, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => (document.querySelector('{VIEW}') || {{dataset: {{}}}})"
                           ".dataset.range", timeout=30_000)
    page.wait_for_selector(f"{VIEW}[data-ready='1']", timeout=30_000)
    zoomed = _data(page)
    x0, x1 = json.loads(zoomed["range"])
    assert json.loads(zoomed["asked"]) == [x0, x1]
    assert 0 < x0 < x1 < STEPS and x1 - x0 < 0.2 * STEPS
    # redrawn from the data of that range: as many points as before, all inside it (the old
    # points there would be a tenth of them)
    lo, hi = json.loads(zoomed["xspan"])
    assert x0 - 1 <= lo and hi <= x1 + 1
    assert int(zoomed["points"]) >= 3 * 480
    screenshot(page.locator(VIEW), f"compare-zoom-after-{server.app}")

    page.click(f"{VIEW} .nbt-zoom-reset")
    page.wait_for_function(f"() => document.querySelector('{VIEW}').dataset.range === '' && "
                           f"document.querySelector('{VIEW}').dataset.ready === '1'",
                           timeout=30_000)
    assert json.loads(_data(page)["xspan"]) == [0, STEPS - 1]
    assert foreign_requests(page) == []
