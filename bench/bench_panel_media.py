"""What a live panel costs `log()` when an image is logged every step: the same loop with no panel
and with a panel attached (its feed thread reads and sends the files; the panel's comm is replaced
by a counter, so this measures the kernel side only), one after the other, in one process.

    python bench/bench_panel_media.py [--steps 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("NBTRACKER_DIR", tempfile.mkdtemp())
os.environ["NBTRACKER_SILENT"] = "true"

import numpy as np  # noqa: E402

import nbtracker  # noqa: E402
from nbtracker.notebook import live  # noqa: E402


def loop(steps: int, images: list, panel: bool) -> tuple[float, int]:
    run = nbtracker.init(project="bench-panel-media")
    sent: list = []
    if panel:
        p = live.LivePanel()
        p.send = lambda content, buffers=None: sent.append(content["type"])
        live.LiveFeed(run, p)
    t0 = time.perf_counter()
    for i in range(steps):
        run.log({"img": nbtracker.Image(images[i % len(images)]), "loss": 1 / (i + 1)})
    per_call = (time.perf_counter() - t0) / steps
    run.finish()
    return per_call, sent.count("file")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(50)]
    bare, fed, files = [], [], []
    for _ in range(a.repeats):
        bare.append(loop(a.steps, images, panel=False)[0])
        t, n = loop(a.steps, images, panel=True)
        fed.append(t)
        files.append(n)
    b, f = statistics.median(bare), statistics.median(fed)
    print(f"log() of a 64x64 image, median of {a.repeats}: {b * 1e6:.0f} us without a panel, "
          f"{f * 1e6:.0f} us with one ({f / b:.2f}x); files pushed per run: {files} "
          f"(the latest step wins: not one per step)")


if __name__ == "__main__":
    main()
