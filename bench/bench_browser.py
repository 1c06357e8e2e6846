"""The notebook in a real browser: time from `%tracker init` to a visible panel, and frame times
while a 1,000,000-step run streams into it. JupyterLab + headless Chromium on loopback.

    python bench/bench_browser.py [--steps 1000000] [--repeats 5]

Needs /usr/bin/chromium (Debian's package).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))

from nbdriver import CHROMIUM, CHROMIUM_ARGS, KERNEL_IDLE, Server, open_and_run  # noqa: E402

RUN_CELL = """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i; window.jupyterapp.commands.execute('notebook:run-cell'); }"""
VISIBLE = """(n) => { const p = document.querySelectorAll('.nbt-live'); const e = p[n - 1];
  return !!e && e.querySelector('.nbt-name').textContent.length > 0 && e.offsetHeight > 0; }"""
FRAMES = """() => { window.__frames = []; window.__stop = false; let last = performance.now();
  const f = (t) => { window.__frames.push(t - last); last = t;
    if (!window.__stop) requestAnimationFrame(f); };
  requestAnimationFrame(f); }"""


def panel_latency(page, server, repeats: int) -> list[float]:
    cells = ["%load_ext nbtracker\nimport nbtracker"]
    cells += [f"%tracker init --project bench --name p{i}" for i in range(repeats)]
    open_and_run(page, server, "latency.ipynb", cells[:1])
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.wait_for_timeout(500)
    # re-write the notebook with all cells; the kernel session stays
    times = []
    page.evaluate("""(cells) => { const nb = window.jupyterapp.shell.currentWidget.content;
      for (const c of cells) { window.jupyterapp.commands.execute('notebook:insert-cell-below');
        nb.activeCell.model.sharedModel.setSource(c); } }""", cells[1:])
    page.wait_for_timeout(500)
    for i in range(repeats):
        t = time.perf_counter()
        page.evaluate(RUN_CELL, i + 1)
        page.wait_for_function(VISIBLE, arg=i + 1, timeout=30_000, polling=10)
        times.append(time.perf_counter() - t)
        page.wait_for_function(KERNEL_IDLE, timeout=30_000)
    return times


def frame_times(page, server, steps: int) -> dict:
    cells = ["%load_ext nbtracker", "%tracker init --project bench --name stream",
             f"""import math, nbtracker
for i in range({steps}):
    nbtracker.log({{"train/loss": math.exp(-i / {steps / 5}) + (i % 101) / 500,
                   "train/acc": 1 - math.exp(-i / {steps / 4}), "val/loss": math.sin(i / 999)}})
nbtracker.finish()"""]
    open_and_run(page, server, "frames.ipynb", cells[:2])
    page.wait_for_selector(".nbt-live", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("""(c) => { const nb = window.jupyterapp.shell.currentWidget.content;
      window.jupyterapp.commands.execute('notebook:insert-cell-below');
      nb.activeCell.model.sharedModel.setSource(c); }""", cells[2])
    page.evaluate(FRAMES)
    t = time.perf_counter()
    page.evaluate(RUN_CELL, 2)
    page.wait_for_function("() => document.querySelector('.nbt-live').dataset.state === 'finished'",
                           timeout=600_000, polling=200)
    took = time.perf_counter() - t
    page.evaluate("() => { window.__stop = true; }")
    frames = sorted(page.evaluate("() => window.__frames"))
    points = page.evaluate("() => +document.querySelector('.nbt-live').dataset.points")
    return {"steps": steps, "seconds": took, "frames": len(frames),
            "frame_median_ms": statistics.median(frames), "frame_p99_ms": frames[int(len(frames) * 0.99)],
            "frame_max_ms": frames[-1], "points_drawn": points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as d:
        server = Server("lab", Path(d))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                lat = panel_latency(page, server, a.repeats)
                page = browser.new_page(viewport={"width": 1400, "height": 1600})
                fr = frame_times(page, server, a.steps)
                browser.close()
        finally:
            server.stop()
    print(f"%tracker init → visible panel: first {lat[0] * 1e3:.0f} ms (loads the chart library), "
          f"then median {statistics.median(lat[1:]) * 1e3:.0f} ms over {len(lat) - 1}")
    print(f"{fr['steps']:,} steps streamed in {fr['seconds']:.1f} s: {fr['frames']} frames, "
          f"median {fr['frame_median_ms']:.1f} ms, p99 {fr['frame_p99_ms']:.1f} ms, "
          f"max {fr['frame_max_ms']:.1f} ms; {fr['points_drawn']} points drawn at the end")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "browser.json").write_text(json.dumps({"latency_s": lat, "frames": fr}, indent=2))


if __name__ == "__main__":
    main()
