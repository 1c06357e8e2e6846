"""What console and code capture cost: `log()` with console capture on and off (log() never
touches it, so the two should not differ), `print()` with capture on and off, and init() and
finish() with the capture parts on and off. Runs with capture on and off alternate in one process
(so the machine's drift hits both alike); figures are medians over the runs.

    python bench/bench_console.py [--steps 20000] [--repeats 9]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

CHILD = r"""
import json, statistics, sys, time
import nbtracker

steps, repeats = int(sys.argv[1]), int(sys.argv[2])
MODES = {"on": {"console": "auto", "save_code": True},
         "console off": {"console": "off", "save_code": True},
         "both off": {"console": "off", "save_code": False}}
res = {m: {"log_us": [], "print_us": [], "init_ms": [], "finish_ms": []} for m in MODES}
row = {f"m{i}": 0.5 for i in range(10)}
for r in range(repeats):
    for mode, settings in MODES.items():
        t0 = time.perf_counter_ns()
        run = nbtracker.init(project="bench", name=f"{mode}-{r}", settings=settings)
        res[mode]["init_ms"].append((time.perf_counter_ns() - t0) / 1e6)
        lat = []
        for s in range(steps):
            a = time.perf_counter_ns()
            run.log(row)
            lat.append(time.perf_counter_ns() - a)
        res[mode]["log_us"].append(statistics.median(lat) / 1e3)
        lat = []
        for s in range(steps // 10):  # to stdout: a pipe to /dev/null, so the tap's part shows
            a = time.perf_counter_ns()
            print("step", s, "loss", 0.5)
            lat.append(time.perf_counter_ns() - a)
        res[mode]["print_us"].append(statistics.median(lat) / 1e3)
        t2 = time.perf_counter_ns()
        run.finish(quiet=True)
        res[mode]["finish_ms"].append((time.perf_counter_ns() - t2) / 1e6)
print(json.dumps({m: {k: statistics.median(v) for k, v in d.items()} for m, d in res.items()}),
      file=sys.stderr)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true", NBTRACKER_DIR=d)
        p = subprocess.run([sys.executable, "-c", CHILD, str(args.steps), str(args.repeats)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           cwd=d, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    rows = json.loads(p.stderr.strip().splitlines()[-1])
    print(f"{'':12} {'log() µs':>9} {'print() µs':>11} {'init ms':>8} {'finish ms':>10}")
    for name, r in rows.items():
        print(f"{name:12} {r['log_us']:9.2f} {r['print_us']:11.2f} {r['init_ms']:8.1f} "
              f"{r['finish_ms']:10.1f}")
    on, off = rows["on"], rows["both off"]
    print(f"log() on/off: {on['log_us'] / off['log_us']:.3f}   "
          f"print() on/off: {on['print_us'] / off['print_us']:.2f}")


if __name__ == "__main__":
    main()
