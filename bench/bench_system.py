"""The system-metrics sampler's CPU share: how much of one core its thread uses.

    python bench/bench_system.py [--duration 60] [--fast-duration 10] [--repeats 3]

A real run (`nbtracker.init`) samples at 2 s for `--duration` seconds while the main thread
sleeps, and again at 0.1 s for `--fast-duration` seconds (20× the samples in less time). The
sampler thread's own CPU time is read from outside it with its POSIX CPU clock
(`time.pthread_getcpuclockid`, nanoseconds), from its first sample to the end of the window, so
the one-time start (importing psutil, priming the counters) is counted apart. Printed, as
medians of `--repeats` runs: CPU per sample, the share of one core at the interval measured, and
for the 0.1 s runs that cost scaled to one sample per 2 s. Results are also written to
bench/results/system.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import nbtracker  # noqa: E402

DEFAULT_INTERVAL = 2.0


def _cpu(thread: threading.Thread) -> float:
    return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))


def measure(interval: float, duration: float) -> dict:
    """One run sampled every `interval` s: the sampler's CPU time at start and per sample."""
    samples = []
    first = threading.Event()

    def on_event(kind: str, payload: dict) -> None:
        if kind == "system":
            samples.append(time.monotonic())
            first.set()

    run = nbtracker.init(project="bench-system", settings={"system_interval": interval})
    run.add_event_listener(on_event)
    (thread,) = [t for t in threading.enumerate() if t.name == "nbtracker-system"]
    if not first.wait(interval + 10):
        raise SystemExit("no system sample arrived; is psutil installed?")
    c0, t0, n0 = _cpu(thread), time.monotonic(), len(samples)
    start_cpu = c0  # priming, imports and the first sample
    time.sleep(duration)
    c1, t1, n1 = _cpu(thread), time.monotonic(), len(samples)
    run.finish(quiet=True)
    n = max(1, n1 - n0)
    return {"interval_s": interval, "window_s": t1 - t0, "samples": n1 - n0,
            "start_cpu_ms": start_cpu * 1e3, "cpu_per_sample_ms": (c1 - c0) / n * 1e3,
            "share_pct": (c1 - c0) / (t1 - t0) * 100}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=60.0, help="seconds sampled at 2 s")
    p.add_argument("--fast-duration", type=float, default=10.0, help="seconds sampled at 0.1 s")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    os.environ["NBTRACKER_DIR"] = tempfile.mkdtemp(prefix="bench-system-")
    os.environ["NBTRACKER_SILENT"] = "true"
    print(f"{os.cpu_count()} CPUs; {a.repeats} repeats; medians")
    out = {}
    for interval, duration in ((DEFAULT_INTERVAL, a.duration), (0.1, a.fast_duration)):
        if duration <= 0:
            continue
        runs = [measure(interval, duration) for _ in range(a.repeats)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        med["share_at_2s_pct"] = med["cpu_per_sample_ms"] / 1e3 / DEFAULT_INTERVAL * 100
        out[f"{interval:g}s"] = {"median": med, "runs": runs}
        print(f"interval {interval:g} s, {duration:g} s window: {med['samples']:.0f} samples, "
              f"{med['cpu_per_sample_ms']:.2f} ms CPU per sample, "
              f"{med['share_pct']:.3f} % of one core at this interval, "
              f"{med['share_at_2s_pct']:.3f} % at 2 s; start {med['start_cpu_ms']:.0f} ms CPU once")
    res = HERE / "results"
    res.mkdir(exist_ok=True)
    (res / "system.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
