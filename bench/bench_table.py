"""The run table with 10,000 runs: the Python side (listing the runs, building the table's
columns and the widget state) in fresh processes, and in JupyterLab + headless Chromium the
time from running a cell to the table painted, and frame times while scrolling through it.

    python bench/bench_table.py [--runs 10000] [--repeats 5]

The store of runs is generated once (about 25 s for 10,000 runs) and kept in
/tmp/nbtracker-bench-table-<runs> (`--store` to put it elsewhere). The code measured is the one
on PYTHONPATH (the kernel inherits it): run it once with an older checkout first for a ratio.
Needs /usr/bin/chromium (Debian's package).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "browser"))

from nbdriver import CHROMIUM, CHROMIUM_ARGS, KERNEL_IDLE, Server, open_and_run  # noqa: E402

PROJECT = "big"

GENERATE = """
import os, random, sys
import nbtracker
n = int(sys.argv[1])
rnd = random.Random(0)
for i in range(n):
    cfg = {"lr": rnd.choice([1e-4, 3e-4, 1e-3]), "batch": rnd.choice([32, 64, 128]),
           "optimizer": rnd.choice(["adam", "sgd"]),
           "model": {"width": rnd.choice([64, 128, 256]), "depth": rnd.randint(2, 8)}}
    cfg.update({f"k{j}": (j * i if j < 5 else j) for j in range(20)})
    with nbtracker.init(project="big", name=f"run-{i:05d}", group=f"sweep-{i % 10}",
                        job_type=rnd.choice(["train", "eval"]), tags=[rnd.choice(["a", "b"])],
                        config=cfg) as r:
        for s in range(3):
            r.log({"loss": rnd.random(), "acc": rnd.random(), "lr_now": cfg["lr"] / (s + 1)})
"""

PYTHON_SIDE = """
import json, sys, time
t0 = time.perf_counter()
import nbtracker
from nbtracker.notebook import RunTable, runs_table
t1 = time.perf_counter()
api = nbtracker.Api(dir=sys.argv[1])
c1 = time.process_time()
w = runs_table("big", api=api)
t2 = time.perf_counter()
c2 = time.process_time()
state = json.dumps(w.get_state())
t3 = time.perf_counter()
# the parts, once more in the same process
runs = list(api.runs("big"))
t4 = time.perf_counter()
try:
    from nbtracker.notebook.table import table_of_runs
except ImportError:  # before the run table had its own module
    from nbtracker.notebook import run_rows
    def table_of_runs(runs):
        columns, rows = run_rows(runs)
        return RunTable(columns=columns, rows=rows)
table_of_runs(runs)
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "runs_table": t2 - t1, "runs_table_cpu": c2 - c1,
                  "serialise": t3 - t2, "state_mb": len(state) / 1e6, "list": t4 - t3,
                  "table": t5 - t4, "runs": len(runs)}))
"""

RUN_CELL = """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i; window.jupyterapp.commands.execute('notebook:run-cell'); }"""
ADD_CELL = """(c) => { const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = nb.widgets.length - 1;
  window.jupyterapp.commands.execute('notebook:insert-cell-below');
  nb.activeCell.model.sharedModel.setSource(c); }"""
PAINTED = """(n) => { const e = document.querySelector('.nbt-runs');
  return !!e && e.dataset.rows === String(n) && !!e.querySelector('tr.nbt-run') && e.offsetHeight > 0; }"""
CLEAR = "() => window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')"
# scroll the table's nearest scrolling ancestor by 240 px a frame; frame times and draw times
SCROLL = """(seconds) => new Promise((done) => {
  const root = document.querySelector('.nbt-runs');
  let e = root.querySelector('tr.nbt-run');
  const scrolls = (x) => x.scrollHeight > x.clientHeight + 10
    && /auto|scroll/.test(getComputedStyle(x).overflowY);
  while (e && !scrolls(e)) e = e.parentElement;
  const frames = [], draws = []; let last = performance.now(); const end = last + seconds * 1000;
  const step = (t) => { frames.push(t - last); last = t; e.scrollTop += 240;
    draws.push(+(root.dataset.drawMs || 0));
    if (e.scrollTop + e.clientHeight >= e.scrollHeight - 2) e.scrollTop = 0;
    if (t < end) requestAnimationFrame(step); else done([frames, draws]); };
  requestAnimationFrame(step); })"""
ROWS_IN_DOM = "() => document.querySelectorAll('.nbt-runs tr.nbt-run').length"


def ensure_store(path: Path, n: int) -> Path:
    done = path / f".generated-{n}"
    if done.exists():
        return path
    path.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    env = dict(os.environ, NBTRACKER_DIR=str(path), NBTRACKER_SILENT="1", NBTRACKER_MODE="offline")
    # from another directory, so that PYTHONPATH (not the current directory) names the code
    subprocess.run([sys.executable, "-c", GENERATE, str(n)], env=env, check=True,
                   cwd=tempfile.gettempdir())
    done.touch()
    print(f"generated {n:,} runs in {time.perf_counter() - t:.0f} s into {path}")
    return path


def python_side(store: Path, repeats: int) -> dict:
    out = []
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", PYTHON_SIDE, str(store)], check=True,
                           capture_output=True, text=True, cwd=tempfile.gettempdir())
        out.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in out) for k in out[0]}


def browser_side(store: Path, n: int, repeats: int) -> dict:
    from playwright.sync_api import sync_playwright

    setup = (f"%load_ext nbtracker\nimport nbtracker\napi = nbtracker.Api(dir={str(store)!r})\n"
             f"runs = list(api.runs({PROJECT!r}))\n"
             "try:\n    from nbtracker.notebook.table import table_of_runs\nexcept ImportError:\n"
             "    table_of_runs = None")
    cells = [f"nbtracker.runs_table({PROJECT!r}, api=api)",  # everything: listing included
             "table_of_runs(runs) if table_of_runs else None"]  # runs listed before
    res: dict = {"cell_to_paint_s": [], "built_to_paint_s": [], "render_to_paint_ms": []}
    with tempfile.TemporaryDirectory() as d, sync_playwright() as p:
        server = Server("lab", Path(d))
        try:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            open_and_run(page, server, "table.ipynb", [setup])
            page.wait_for_timeout(500)
            page.wait_for_function(KERNEL_IDLE, timeout=120_000)
            for c in cells:
                page.evaluate(ADD_CELL, c)
            has_new = page.evaluate("""async () => {
              const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
              const r = await k.requestExecute({code: "", silent: true,
                user_expressions: {v: "table_of_runs is not None"}}).done;
              return r.content.user_expressions.v.data["text/plain"] === "True"; }""")
            for _ in range(repeats):
                for cell, key in ((1, "cell_to_paint_s"), (2, "built_to_paint_s")):
                    if cell == 2 and not has_new:
                        continue
                    page.evaluate(CLEAR)
                    page.wait_for_timeout(300)
                    t = time.perf_counter()
                    page.evaluate(RUN_CELL, cell)
                    page.wait_for_function(PAINTED, arg=n, timeout=300_000, polling="raf")
                    res[key].append(time.perf_counter() - t)
                    ms = page.evaluate("() => document.querySelector('.nbt-runs').dataset.paintMs")
                    if ms is not None:
                        res["render_to_paint_ms"].append(float(ms))
                    page.wait_for_function(KERNEL_IDLE, timeout=300_000)
            frames, draws = page.evaluate(SCROLL, 3)
            frames.sort()
            res["scroll_draw_max_ms"] = max(draws)
            res["scroll_frames"] = len(frames)
            res["scroll_frame_median_ms"] = statistics.median(frames)
            res["scroll_frame_p99_ms"] = frames[int(len(frames) * 0.99)]
            res["scroll_frame_max_ms"] = frames[-1]
            res["rows_in_dom"] = page.evaluate(ROWS_IN_DOM)
            browser.close()
        finally:
            server.stop()
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--store", default=None, help="where the generated runs are kept")
    ap.add_argument("--label", default="", help="a name for this code in the results file")
    ap.add_argument("--python-only", action="store_true", help="skip the browser")
    a = ap.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium")
    store = ensure_store(Path(a.store or f"/tmp/nbtracker-bench-table-{a.runs}"), a.runs)
    py = python_side(store, a.repeats)
    print(f"Python, fresh process (median of {a.repeats}): import {py['import']:.2f} s; "
          f"runs_table() of {int(py['runs']):,} runs {py['runs_table']:.2f} s "
          f"({py['runs_table_cpu']:.2f} s CPU); widget state to JSON {py['serialise']:.2f} s "
          f"({py['state_mb']:.1f} MB); again in the same process: Api.runs() {py['list']:.2f} s, "
          f"the table of them {py['table']:.2f} s")
    if a.python_only:
        return
    br = browser_side(store, a.runs, a.repeats)
    med = lambda xs: statistics.median(xs) if xs else float("nan")  # noqa: E731
    print(f"browser (median of {a.repeats}): `runs_table()` cell → painted "
          f"{med(br['cell_to_paint_s']):.2f} s; `table_of_runs(runs)` cell (runs listed before) → "
          f"painted {med(br['built_to_paint_s']):.2f} s; render() → first frame "
          f"{med(br['render_to_paint_ms']):.0f} ms")
    print(f"scrolling 3 s (240 px a frame): {br['scroll_frames']} frames, median "
          f"{br['scroll_frame_median_ms']:.1f} ms, p99 {br['scroll_frame_p99_ms']:.1f} ms, max "
          f"{br['scroll_frame_max_ms']:.1f} ms; longest redraw of the rows "
          f"{br['scroll_draw_max_ms']:.1f} ms; {br['rows_in_dom']} rows in the DOM")
    (HERE / "results").mkdir(exist_ok=True)
    name = "table" + (f"-{a.label}" if a.label else "") + ".json"
    (HERE / "results" / name).write_text(json.dumps({"python": py, "browser": br}, indent=2))


if __name__ == "__main__":
    main()
