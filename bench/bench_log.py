"""log() against a floor and against peers, in one run; plus import time, memory and the cost of
a live panel. Medians of repeats (the machine is noisy).

    python bench/bench_log.py [--steps 10000] [--repeats 5] [--peers] [--mem-steps 2000000]

`--peers` runs wandb (offline), trackio, MLflow (sqlite; sync and async) and tensorboardX from
`bench/.venv-peers` (made by `bench/setup_peers.sh`; they are never nbtracker dependencies).
Results are also written to bench/results/latest.json.
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
PEERS_PY = HERE / ".venv-peers" / "bin" / "python"
PEERS = ["wandb", "trackio", "mlflow_sync", "mlflow_async", "tensorboardX"]


def worker(python: str, tracker: str, steps: int, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true", WANDB_SILENT="true")
    p = subprocess.run([python, str(HERE / "peer_worker.py"), "--tracker", tracker, "--steps",
                        str(steps), "--repeats", str(repeats)], capture_output=True, text=True,
                       env=env, timeout=1800)
    lines = [x for x in p.stdout.splitlines() if x.startswith("{")]
    if p.returncode != 0 or not lines:
        return {"tracker": tracker, "skipped": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


def import_time(repeats: int = 7) -> float:
    """Median ms of `import nbtracker` in a fresh interpreter, minus a bare interpreter."""
    def run(code: str) -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        return time.perf_counter() - t

    bare = statistics.median(run("pass") for _ in range(repeats))
    full = statistics.median(run("import nbtracker") for _ in range(repeats))
    return (full - bare) * 1e3


MEM_CHILD = """
import os, sys, nbtracker
steps = int(sys.argv[1])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
run = nbtracker.init(project="mem", dir=sys.argv[2])
marks = {int(steps * f): f for f in (0.1, 0.5, 1.0)}
row = {f"m{i}": 0.0 for i in range(10)}
out = []
for i in range(1, steps + 1):
    row["m0"] = i * 0.5
    nbtracker.log(row)
    if i in marks:
        out.append((marks[i], rss()))
nbtracker.finish()
print(out)
"""


def memory(steps: int) -> list:
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, "-c", MEM_CHILD, str(steps), d], capture_output=True,
                           text=True, env=dict(os.environ, PYTHONPATH=str(REPO),
                                               NBTRACKER_SILENT="true"), check=True)
    return eval(p.stdout.strip())  # a list of (fraction, MiB) printed by the child above


PANEL_CHILD = """
import os, sys, time, statistics, nbtracker
from nbtracker.notebook import live
steps, with_panel = int(sys.argv[1]), sys.argv[2] == "1"
row = {f"m{i}": 0.0 for i in range(10)}
times = []
for rep in range(5):
    run = nbtracker.init(project="panel", dir=sys.argv[3])
    if with_panel:
        live.panel_for(run)
    t = time.perf_counter()
    for i in range(steps):
        row["m0"] = i * 0.5
        nbtracker.log(row)
    nbtracker.finish()
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def panel_overhead(steps: int) -> dict:
    """Loop + finish time with and without a live panel attached (the feed thread included):
    the difference per call is the panel's amortised cost."""
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for flag in ("0", "1"):
            p = subprocess.run([sys.executable, "-c", PANEL_CHILD, str(steps), flag, d],
                               capture_output=True, text=True, check=True,
                               env=dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true"))
            res[flag] = float(p.stdout.strip().splitlines()[-1])
    return {"without_s": res["0"], "with_s": res["1"],
            "added_us_per_call": (res["1"] - res["0"]) / steps * 1e6}


BACKLOG_CHILD = """
import os, resource, signal, sys, time, nbtracker
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
n = int(sys.argv[1])
run = nbtracker.init(project="disk", dir=sys.argv[2])
nbtracker.log({"i": -1})
log = os.path.join(run.storage_dir, "records.jsonl")
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(log), hard))  # the disk is full
row = {f"m{i}": 0.0 for i in range(10)}
t = time.perf_counter()
for i in range(n):
    row["m0"] = float(i)
    nbtracker.log(row)
full = time.perf_counter() - t
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
t = time.perf_counter()
run.save()  # writes the backlog back, as the fsync thread would
drain = time.perf_counter() - t
nbtracker.finish()
print(full / n * 1e6, drain)
"""


def backlog(n: int) -> tuple[float, float]:
    """µs per log() while the disk is full, and seconds to write `n` kept records back."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run([sys.executable, "-c", BACKLOG_CHILD, str(n), d], capture_output=True,
                           text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true"))
    us, drain = p.stdout.split()
    return float(us), float(drain)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--peers", action="store_true")
    ap.add_argument("--mem-steps", type=int, default=2_000_000)
    ap.add_argument("--panel-steps", type=int, default=200_000)
    ap.add_argument("--backlog-steps", type=int, default=1_000_000)
    a = ap.parse_args()

    results = [worker(sys.executable, "floor", a.steps, a.repeats),
               worker(sys.executable, "nbtracker", a.steps, a.repeats)]
    if a.peers:
        if PEERS_PY.exists():
            results += [worker(str(PEERS_PY), t, a.steps, a.repeats) for t in PEERS]
        else:
            results += [{"tracker": t, "skipped": "run bench/setup_peers.sh first"} for t in PEERS]
    floor = results[0]["median_us"]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    print(f"log() of a 10-float dict, {a.steps} steps, median of {a.repeats} runs\n")
    print(f"{'tracker':<14}{'median µs':>10}{'p99 µs':>10}{'× floor':>9}{'loop s':>9}"
          f"{'finish s':>10}{'read s':>9}{'init→log ms':>13}")
    for r in results:
        if "skipped" in r:
            print(f"{r['tracker']:<14} skipped: {r['skipped']}")
            continue
        print(f"{r['tracker']:<14}{r['median_us']:>10.2f}{r['p99_us']:>10.2f}"
              f"{r['median_us'] / floor:>9.1f}{r['loop_s']:>9.3f}{r['finish_s']:>10.3f}"
              f"{f(r['read_s'], '.3f'):>9}{r['first_log_ms']:>13.1f}")

    imp = import_time()
    print(f"\nimport nbtracker: {imp:.0f} ms (median, fresh interpreters, minus bare startup)")
    mem = memory(a.mem_steps)
    print(f"memory over {a.mem_steps:,} steps: " + ", ".join(f"{int(fr * 100)}%: {mb:.1f} MiB"
                                                          for fr, mb in mem))
    panel = panel_overhead(a.panel_steps)
    print(f"live panel attached: {panel['added_us_per_call']:.2f} µs added per log() call "
          f"(loop+finish {panel['without_s']:.3f}s → {panel['with_s']:.3f}s, {a.panel_steps:,} steps)")

    full_us, drain_s = backlog(a.backlog_steps)
    print(f"disk full for {a.backlog_steps:,} log() calls: {full_us:.2f} µs per call while full, "
          f"{drain_s:.2f} s to write the backlog back once there is space")

    big = worker(sys.executable, "nbtracker", 1_000_000, 1)
    print(f"1,000,000-step history read back into pandas: {big['read_s']:.2f} s")

    out = {"results": results, "import_ms": imp, "memory": mem, "panel": panel,
           "read_1m_s": big["read_s"],
           "backlog": {"steps": a.backlog_steps, "us_per_call_full": full_us, "drain_s": drain_s},
           "steps": a.steps, "repeats": a.repeats,
           "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "latest.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
