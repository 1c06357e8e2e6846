"""Helpers for tests: run Python code or the CLI in a fresh process with the test's store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_python(code: str, env: dict | None = None, timeout: float = 60,
               check: bool = True) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter with the test's environment (store root included)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(REPO) + os.pathsep + full_env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, env=full_env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"child failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


def run_cli(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the `nbtracker` command line (as `python -m nbtracker`)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    p = subprocess.run([sys.executable, "-m", "nbtracker", *args], capture_output=True,
                       text=True, env=env, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(f"nbtracker {' '.join(args)} failed ({p.returncode}):\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


# a 1×1 GIF (the classic transparent pixel)
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def write_records(run, records: list[dict]) -> None:
    """Append records of kinds whose emitters are not in nbtracker yet (`system`, `env`), as
    the spec describes them."""
    from nbtracker.store.recordlog import make_record

    with run._mutex:
        for rec in records:
            run._append(make_record(rec["t"], rec["d"], **{k: v for k, v in rec.items()
                                                            if k not in ("t", "d")}))


def media_cell(project: str = "static") -> str:
    """A notebook cell that shows a run's panel and logs images over steps, histograms, a table
    with image cells, an audio clip, an HTML document, videos (GIF, mp4) and an alert, then
    finishes it. (The mp4 is a stub: viewers are checked to keep the player, not to play it.)"""
    return f"""import pathlib
import numpy as np
import nbtracker
run = nbtracker.init(project={project!r}, name="media")
display(run)
rng = np.random.default_rng(0)
for s in range(20):
    run.log({{"acc": s / 20,
             "samples": nbtracker.Image((rng.random((28, 28)) * 255).astype(np.uint8), caption=f"step {{s}}"),
             "weights": nbtracker.Histogram(rng.normal(s / 10, 1, 500))}})
run.log({{"preds": nbtracker.Table(columns=["id", "label", "image"], data=[
    [i, "<script>alert(1)</script>" if i == 0 else f"<b>class {{i}}</b>",
     nbtracker.Image(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))] for i in range(4)])}})
run.log({{"clip": nbtracker.Audio(np.sin(np.arange(2000) / 8000 * 2 * np.pi * 440), sample_rate=8000)}})
run.log({{"page": nbtracker.Html("<h3>report</h3><p>hello</p>")}})
pathlib.Path("anim.gif").write_bytes({GIF!r})
run.log({{"anim": nbtracker.Video("anim.gif")}})
pathlib.Path("movie.mp4").write_bytes(b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(32))
run.log({{"movie": nbtracker.Video("movie.mp4")}})
run.alert("check <this>", "accuracy plateaued", level="WARN")
run.finish()"""
