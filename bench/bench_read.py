"""Reading a long history back at any shape: `Api().run(p).history()` in a fresh process.

    python bench/bench_read.py [--steps 1000000] [--repeats 3] [--shapes plain,val_commit,...]

Each shape is a run of `--steps` steps written through the public API, as training loops log:

    plain       10 floats every step
    val_commit  train (4 floats) every step + validation (3 floats) every 100 steps, commit=False
    val_step    the same with log(..., step=s)
    string      10 floats every step, plus a string in the row every 100 steps
    alternate   two key sets of 5 floats, alternating step by step

For each shape: the median of `--repeats` fresh processes of the `history()` call alone, of the
whole process (pandas import included), the peak RSS of that process, and the ratio of the call
to the plain shape. Results are also written to bench/results/read.json.
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
REPO = HERE.parent
SHAPES = ["plain", "val_commit", "val_step", "string", "alternate"]

WRITE = """
import sys, nbtracker
shape, steps, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]
run = nbtracker.init(project="read", dir=root)
log = nbtracker.log
for s in range(steps):
    x = s * 1e-3
    if shape == "plain":
        log({f"m{i}": x + i for i in range(10)})
    elif shape == "string":
        row = {f"m{i}": x + i for i in range(10)}
        if s % 100 == 0:
            row["note"] = f"checkpoint {s}"
        log(row)
    elif shape == "alternate":
        log({f"{'ab'[s % 2]}{i}": x + i for i in range(5)})
    elif shape == "val_commit":
        if s % 100 == 0:
            log({"val/loss": x, "val/acc": x / 2, "val/f1": x / 3}, commit=False)
        log({"loss": x, "lr": x / 10, "grad": x * 2, "tok": x + 1})
    elif shape == "val_step":
        log({"loss": x, "lr": x / 10, "grad": x * 2, "tok": x + 1}, step=s)
        if s % 100 == 0:
            log({"val/loss": x, "val/acc": x / 2, "val/f1": x / 3}, step=s)
nbtracker.finish()
print(run.path)
"""

READ = """
import sys, time, resource
t0 = time.perf_counter()
import nbtracker
api = nbtracker.Api()
run = api.run(sys.argv[1])
t1 = time.perf_counter()
df = run.history()
t2 = time.perf_counter()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(t2 - t1, t2 - t0, peak, len(df), len(df.columns))
"""


def child_env(root: str) -> dict:
    return dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true", NBTRACKER_DIR=root)


def write(shape: str, steps: int, root: str) -> tuple[str, float]:
    t = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", WRITE, shape, str(steps), root], capture_output=True,
                       text=True, env=child_env(root), check=True)
    return p.stdout.strip().splitlines()[-1], time.perf_counter() - t


def read(path: str, root: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-c", READ, path], capture_output=True, text=True,
                           env=child_env(root), check=True)
        call, total, peak, rows, cols = p.stdout.split()
        runs.append((float(call), float(total), float(peak), int(rows), int(cols)))
    return {"call_s": statistics.median(r[0] for r in runs),
            "process_s": statistics.median(r[1] for r in runs),
            "peak_mib": statistics.median(r[2] for r in runs), "rows": runs[0][3],
            "cols": runs[0][4]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    a = ap.parse_args()
    shapes = a.shapes.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as root:
        for shape in shapes:
            path, wrote = write(shape, a.steps, root)
            results[shape] = dict(read(path, root, a.repeats), write_s=wrote)
            print(f"{shape:<11} written in {wrote:.1f} s", file=sys.stderr)
    plain = results.get("plain", {}).get("call_s")
    print(f"{a.steps:,} steps, median of {a.repeats} fresh processes")
    print(f"{'shape':<11}{'history() s':>12}{'process s':>11}{'peak MiB':>10}{'rows':>9}"
          f"{'cols':>6}{'× plain':>9}")
    for shape, r in results.items():
        ratio = f"{r['call_s'] / plain:.2f}" if plain else "-"
        print(f"{shape:<11}{r['call_s']:>12.3f}{r['process_s']:>11.3f}{r['peak_mib']:>10.0f}"
              f"{r['rows']:>9}{r['cols']:>6}{ratio:>9}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "read.json").write_text(json.dumps({"steps": a.steps, "repeats": a.repeats,
                                               "shapes": results}, indent=1))


if __name__ == "__main__":
    main()
