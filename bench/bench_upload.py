"""log() with the uploader running against a live server, beside log() offline, in one run.

    python bench/bench_upload.py [--steps 200000] [--repeats 5] [--db postgresql://...]

Starts `nbtracker server` on loopback (SQLite in a temporary directory unless --db), creates a
user, then alternates offline and online runs that log a dict of 10 floats `--steps` times in a
tight loop (the worst case for the uploader thread, which shares the interpreter). Reported,
medians over the repeats: per-call median and p99 (µs), how many records the server had
acknowledged when the loop ended (the uploader was at work during it, not only after), and the
time finish() took to upload the rest. Target: online median within 1.5× of offline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests")]
os.environ.setdefault("PYTHONPATH", str(HERE.parent))

KEYS = [f"m{i}" for i in range(10)]


def one(mode: str, steps: int, data: list) -> dict:
    import nbtracker
    from nbtracker.sync.cursor import Cursor

    run = nbtracker.init(project="bench", mode=mode, reinit=True)
    log = run.log
    pc = time.perf_counter_ns
    lat = [0] * steps
    m = len(data)
    t0 = time.perf_counter()
    for i in range(steps):
        r = data[i % m]
        a = pc()
        log(r)
        lat[i] = pc() - a
    loop = time.perf_counter() - t0
    acked = 0
    if mode == "online":
        c = Cursor.load(run.storage_dir)
        acked = c.next_seq - 1 if c else 0
    f0 = time.perf_counter()
    run.finish(timeout=300)
    fin = time.perf_counter() - f0
    if mode == "online":
        assert run.upload_status()["state"] == "synced", run.upload_status()
    lat.sort()
    return {"median_us": lat[steps // 2] / 1e3, "p99_us": lat[int(steps * 0.99)] / 1e3,
            "loop_s": loop, "acked_in_loop": acked, "finish_s": fin}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=200_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--db", default=None, help="server database URL (default: SQLite)")
    a = p.parse_args()
    from serverproc import ServerProcess

    data = [{k: (i * 0.001 + j) % 7.3 for j, k in enumerate(KEYS)} for i in range(4096)]
    with tempfile.TemporaryDirectory() as d:
        srv = ServerProcess(Path(d) / "server", db_url=a.db)
        try:
            key = srv.create_user("bench")
            os.environ.update(NBTRACKER_DIR=str(Path(d) / "store"), NBTRACKER_SILENT="true",
                              NBTRACKER_BASE_URL=srv.url, NBTRACKER_API_KEY=key)
            res: dict[str, list] = {"offline": [], "online": []}
            one("offline", 2000, data)  # warm up imports and the file system
            one("online", 2000, data)
            for _ in range(a.repeats):
                for mode in ("offline", "online"):
                    res[mode].append(one(mode, a.steps, data))
        finally:
            srv.stop()
    med = {m: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for m, rs in res.items()}
    print(f"log() of a 10-float dict, {a.steps} steps in a tight loop, median of {a.repeats} "
          f"runs; server: {'PostgreSQL' if a.db else 'SQLite'} on loopback\n")
    print(f"{'mode':<9}{'median µs':>10}{'p99 µs':>9}{'loop s':>8}{'acked in loop':>15}"
          f"{'finish s':>10}")
    for mode, r in med.items():
        print(f"{mode:<9}{r['median_us']:>10.2f}{r['p99_us']:>9.2f}{r['loop_s']:>8.3f}"
              f"{r['acked_in_loop']:>15.0f}{r['finish_s']:>10.3f}")
    ratio = med["online"]["median_us"] / med["offline"]["median_us"]
    print(f"\nonline / offline median: {ratio:.2f}× (target ≤ 1.5×)")


if __name__ == "__main__":
    main()
