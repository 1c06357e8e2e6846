"""A comparison of many long runs, first chart in a fresh process: `compare_view()` (series
summaries, two points per pixel column) against the old path (`compare_chart()`: every run's
whole history into pandas, then altair).

    python bench/bench_compare.py [--runs 100] [--metrics 3] [--steps 1000000] [--repeats 5]

The store is generated once (`--runs` runs of `--steps` steps logging `--metrics` floats, through
the public API, two writer processes at a time; about 15 minutes for 100 × 1,000,000 on a
2-core machine) and cached in bench/.cache/compare-R-M-S/ (delete it to regenerate). Each figure
is the median of `--repeats` fresh processes, timed from before `import nbtracker` to the spec
(a dict, ready for the widget): import, Api listing, reading summaries, building the spec; and
of `--repeats` fresh IPython kernels (jupyter_client), the cell's own time from before `import
nbtracker` to `display(compare_view(...))` returning (the kernel's start not counted). The
old path reads every point into pandas (about 50 bytes a point in its long frame: 100 × 3 × 1M
would need ~15 GB), so it runs on the first `--old-runs` runs only (default 10), `--old-repeats`
times (default 1), beside the new path on the same runs for the ratio. Results also go to
bench/results/compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

WRITE = """
import sys, math, nbtracker
root, name = sys.argv[1], sys.argv[2]
metrics, steps, seed = (int(a) for a in sys.argv[3:6])
run = nbtracker.init(project="cmp", name=name, dir=root, group=f"g{seed % 4}",
                     config={"seed": seed})
keys = [f"m{k}" for k in range(metrics)]
rate = 1e-5 * (1 + seed % 7)
log = run.log
for s in range(steps):
    base = 1.0 / (1.0 + rate * s)
    log({k: base + 0.01 * j + 0.001 * math.sin(s * 0.01 + seed) for j, k in enumerate(keys)})
run.finish(quiet=True)
"""

NEW = """
import time, sys
t0 = time.perf_counter()
import nbtracker
from nbtracker.notebook import compare_view
runs = nbtracker.Api(dir=sys.argv[1]).runs("cmp", order="+created_at")[:int(sys.argv[3])]
view = compare_view(*runs, metrics=[f"m{k}" for k in range(int(sys.argv[2]))])
spec = view.spec
t1 = time.perf_counter()
import json
rows = sum(len(r["x"]) for ds in spec["datasets"].values() for r in ds)
print(json.dumps({"s": t1 - t0, "points": rows, "bytes": len(json.dumps(spec))}))
"""

SPEC_ONLY = """
import time, sys
t0 = time.perf_counter()
import nbtracker
from nbtracker.charts.comparison import Comparer
runs = nbtracker.Api(dir=sys.argv[1]).runs("cmp", order="+created_at")[:int(sys.argv[3])]
spec = Comparer(runs, metrics=[f"m{k}" for k in range(int(sys.argv[2]))]).build().spec()
t1 = time.perf_counter()
print('{"s": %f}' % (t1 - t0))
"""

OLD = """
import time, sys
t0 = time.perf_counter()
import nbtracker
from nbtracker.charts.builders import compare_chart
runs = nbtracker.Api(dir=sys.argv[1]).runs("cmp", order="+created_at")[:int(sys.argv[3])]
spec = compare_chart(runs, metrics=[f"m{k}" for k in range(int(sys.argv[2]))]).to_dict()
t1 = time.perf_counter()
print('{"s": %f}' % (t1 - t0))
"""


ZOOM = """
import json, sys, time
import nbtracker
from nbtracker.charts.comparison import Comparer
runs = nbtracker.Api(dir=sys.argv[1]).runs("cmp", order="+created_at")[:int(sys.argv[3])]
c = Comparer(runs, metrics=[f"m{k}" for k in range(int(sys.argv[2]))])
t = time.perf_counter()
lo, hi = c.build().extent
out = {"whole range": time.perf_counter() - t}
for name, (a, b) in [("20 %", (0.4, 0.6)), ("4 %", (0.5, 0.54)), ("1 % (points)", (0.5, 0.51)),
                     ("0.1 % inside it", (0.502, 0.503)), ("pan by half", (0.505, 0.515))]:
    t = time.perf_counter()
    c.build(x_range=(lo + a * (hi - lo), lo + b * (hi - lo)))
    out[name] = time.perf_counter() - t
print(json.dumps({"s": 0, "zoom": out}))
"""

KERNEL_CELL = """
import time
t0 = time.perf_counter()
import nbtracker
from IPython.display import display
view = nbtracker.compare_view(*nbtracker.Api(dir={root!r}).runs("cmp"),
                              metrics=[f"m{{k}}" for k in range({metrics})])
display(view)
print("SECONDS", time.perf_counter() - t0)
"""


def in_kernel(root: Path, metrics: int, repeats: int) -> float:
    """The cell's own time in a fresh IPython kernel (its start not counted): import, Api
    listing, the comparison, the widget displayed (its state sent on the comm)."""
    from jupyter_client.manager import start_new_kernel

    out = []
    for _ in range(repeats):
        km, kc = start_new_kernel(kernel_name="python3", env=env())
        try:
            seen: list[str] = []

            def hook(msg: dict, seen: list = seen) -> None:
                seen.append(msg["content"].get("text", ""))

            kc.execute_interactive(KERNEL_CELL.format(root=str(root), metrics=metrics),
                                   timeout=120, output_hook=hook)
            line = next(t for t in "".join(seen).splitlines() if t.startswith("SECONDS"))
            out.append(float(line.split()[1]))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    return statistics.median(out)


def env() -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(REPO) + os.pathsep + e.get("PYTHONPATH", "")
    return e


def generate(root: Path, runs: int, metrics: int, steps: int, jobs: int) -> None:
    done = root / "complete"
    if done.exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # an interrupted generation goes on where it stopped: finished runs stay, others go
    import shutil

    import nbtracker

    have, gone = set(), False
    for r in nbtracker.Api(dir=str(root)).runs("cmp"):
        if r.state == "finished" and r.steps == steps:
            have.add(r.name)
        else:
            shutil.rmtree(r.storage_dir)
            gone = True
    if gone:
        nbtracker.Api(dir=str(root)).reindex()

    def one(i: int) -> None:
        if f"run-{i:03d}" in have:
            return
        subprocess.run([sys.executable, "-c", WRITE, str(root), f"run-{i:03d}", str(metrics),
                        str(steps), str(i)], check=True, env=env(), capture_output=True)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, range(runs)))
    done.write_text(f"{runs} {metrics} {steps}\n")
    print(f"generated {runs} runs x {metrics} metrics x {steps:,} steps in "
          f"{time.perf_counter() - t0:.0f} s -> {root}")


def timed(code: str, root: Path, metrics: int, runs: int, repeats: int) -> tuple[float, dict]:
    out = []
    last: dict = {}
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", code, str(root), str(metrics), str(runs)],
                           check=True, env=env(), capture_output=True, text=True)
        last = json.loads(p.stdout.strip().splitlines()[-1])
        out.append(last["s"])
    return statistics.median(out), last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--metrics", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--old-repeats", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="the new path only (no old path)")
    ap.add_argument("--old-runs", type=int, default=10,
                    help="the old path reads every point into pandas: 100 x 3 x 1M would need "
                         "tens of GB, so it runs on the first N runs (and so does the new, for "
                         "the ratio)")
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    root = HERE / ".cache" / f"compare-{a.runs}-{a.metrics}-{a.steps}"
    generate(root, a.runs, a.metrics, a.steps, a.jobs)
    kernel = in_kernel(root, a.metrics, a.repeats)
    new, info = timed(NEW, root, a.metrics, a.runs, a.repeats)
    spec, _ = timed(SPEC_ONLY, root, a.metrics, a.runs, a.repeats)
    k = min(a.old_runs, a.runs)
    small, _ = timed(NEW, root, a.metrics, k, a.repeats)
    old = float("nan")
    if a.old_repeats and not a.quick:
        old = timed(OLD, root, a.metrics, k, a.old_repeats)[0]
    zoom = timed(ZOOM, root, a.metrics, a.runs, 1)[1]["zoom"]
    print(f"{a.runs} runs x {a.metrics} metrics x {a.steps:,} steps, fresh process each, "
          f"median of {a.repeats}:")
    print(f"  fresh kernel, {a.runs} runs (cell: import to displayed) {kernel:.3f} s")
    print(f"  compare_view, {a.runs} runs (import to widget spec)  {new:.3f} s   "
          f"{info['points']:,} points, spec {info['bytes'] / 1e6:.2f} MB")
    print(f"  spec only, {a.runs} runs (Comparer, no anywidget)   {spec:.3f} s")
    print(f"  compare_view, first {k} runs                       {small:.3f} s")
    print(f"  old path, first {k} runs (compare_chart().to_dict()) {old:.3f} s   "
          f"ratio {old / small:.1f}x (median of {a.old_repeats})")
    print("  zoom, one after the other in one process (x range as a share of the whole):")
    for name, sec in zoom.items():
        print(f"    {name:<18} {sec:.3f} s")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "compare.json").write_text(json.dumps(
        {"runs": a.runs, "metrics": a.metrics, "steps": a.steps, "kernel_s": kernel,
         "compare_view_s": new,
         "spec_s": spec, "old_runs": k, "compare_view_old_runs_s": small, "old_s": old,
         "points": info["points"], "spec_bytes": info["bytes"], "zoom_s": zoom},
        indent=1))


if __name__ == "__main__":
    main()
