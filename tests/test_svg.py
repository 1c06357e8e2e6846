"""The static charts: valid SVG for any user text and any values, every spike kept, bounded size."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

import nbtracker
from nbtracker.charts.svg import Panel, Series, decimate, fmt, nice_ticks, render_svg, tick_labels
from nbtracker.notebook import live, static

NS = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # raises on anything a browser would refuse to draw


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_any_user_text_gives_valid_svg():
    name = 'epoch\x1b[32m-ok <b>&"\x00\x0b'
    x = np.arange(10.0)
    svg = render_svg([Panel(f"loss{name}", x_title=name, series=[Series(name, x, x), Series("b", x, -x)])],
                     title=name, note=name)
    root = parse(svg)
    assert any("<b>" in t for t in texts(root))  # shown as text, not markup
    assert not root.findall(f".//{NS}b")


@pytest.mark.parametrize("values", [
    [1.0, 1.5e308, -1.5e308],  # a span beyond the largest float
    [1e300, 1e300 * 1.0000001],
    [0.0, 1e-300],
    [1.0, 1.0 + 1e-12],
    [5.0],  # one point
    [float("nan"), float("inf")],  # nothing finite
])
def test_extreme_values_draw(values):
    x = np.arange(len(values), dtype=float)
    root = parse(render_svg([Panel("m", series=[Series("m", x, np.array(values))])]))
    for anchor in ("end", "middle"):  # y ticks, x ticks (and the x title)
        ticks = [t.text for t in root.iter(f"{NS}text") if t.get("text-anchor") == anchor]
        assert len(ticks) == len(set(ticks)), ticks  # neighbouring ticks never read the same


def test_tick_labels():
    assert fmt(1e20) == "1.00e+20" and "T" not in fmt(3.2e20)
    assert fmt(2_000_000) == "2M" and fmt(50_000) == "50k" and fmt(0.5) == "0.5"
    ticks = nice_ticks(0.0, 1e-300)
    assert len(ticks) > 2 and len(set(ticks)) == len(ticks)
    assert len(set(tick_labels([1.0, 1.0 + 1e-12]))) == 2


def test_decimate_keeps_every_spike():
    x = np.arange(1_000_000, dtype=float)
    y = np.sin(x / 1e4)
    y[123_457] = 50.0
    y[876_543] = -50.0
    dx, dy = decimate(x, y, 0.0, 999_999.0, 200)
    assert len(dx) <= 4 * 200
    assert (123_457.0, 50.0) in zip(dx, dy) and (876_543.0, -50.0) in zip(dx, dy)
    assert dx[0] == 0 and dx[-1] == 999_999 and (np.diff(dx) > 0).all()


def test_point_budget_bounds_the_size():
    x = np.arange(200_000, dtype=float)
    rng = np.random.default_rng(0)
    panels = [Panel(f"m{i}", series=[Series("r", x, rng.random(len(x)))]) for i in range(12)]
    small = render_svg(panels, max_points=1200)
    assert len(small) < 0.4 * len(render_svg(panels))
    assert len(small) < 40_000


def test_a_run_with_extreme_values_still_gets_its_static_form():
    run = nbtracker.init(project="svg", name="big\x1b")
    for v in (1.0, 1.5e308, -1.5e308):
        run.log({"grad_norm": v})
    run.finish()
    feed = live.LiveFeed(run, live.StaticSink())
    bundle = feed.static_bundle()
    parse(bundle["image/svg+xml"])
    assert "finished" in bundle["text/plain"]
    assert static.run_bundle({"name": "x"}, {})["text/html"]  # no metrics: a summary only
