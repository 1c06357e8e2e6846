"""Logging and downloading a folder as an artifact, beside a plain copy of the same folder.

    python bench/bench_artifacts.py [--files 1000] [--size-mb 1000] [--repeats 5] [--tmp /tmp]

A folder of `--files` files of random bytes (`os.urandom`, `--size-mb` MiB in all, spread over
10 subfolders) is written once into a temporary folder under `--tmp`, where the stores and
copies go too (one file system). Each phase is timed with `time.perf_counter`, `--repeats` times;
the median is reported, with the range and the CPU time (this process and its children):

- plain copy: `shutil.copytree(src, new)` and `cp -r src new` (a subprocess); the faster of the
  two is the floor the ratios are taken against;
- first log, into a fresh store (its own NBTRACKER_DIR): `Artifact("data", "dataset")`,
  `add_dir(src)`, `run.log_artifact(art)`; `init()` and `finish()` around it timed apart;
- second log of the same folder into the same store, in a second run: a new `Artifact`,
  `add_dir(src)`, `log_artifact` (the files' hashes are remembered, their objects are stored and
  the version exists: no file is read or copied);
- download into a fresh folder: `Api(dir=store).artifact("proj/data:latest").download(root=new)`
  (every file checked against its SHA-256);
- second download into the same folder (the files are there and unchanged).

Targets: first log and download ≤ 1.5 × the plain copy, second log ≤ 0.1 ×. A ratio ("× copy")
is the median over repeats of the phase's time over the plain copy's in the same repeat.

Cache and memory: the page cache is not dropped (that needs root). The source is in it (just
written, then read by one untimed warm-up repeat of every phase), so every phase reads warm
files, as the plain copy does. Every timed phase starts in the same state: an untimed plain copy
of the folder is made and removed (so as much page cache as the phase will write was just freed:
on a virtual machine whose host takes back memory the guest left free, as the development
machine's does, writing into such memory costs up to twice as much, and the phases would
otherwise differ by what ran before them), then `os.sync()` writes back what earlier phases left
dirty, so no phase pays for another's writes. No phase syncs its own (a plain copy does not
either): the times are those of writing into the page cache. Copies, stores and downloads are
removed after each repeat (disk use: about 4 × the folder), and everything at the end.

Results are also written to bench/results/artifacts.json (or `--json PATH`).
"""

from __future__ import annotations

import argparse
import filecmp
import functools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
if not os.environ.get("PYTHONPATH"):  # else the code measured is the one on PYTHONPATH
    sys.path.insert(0, str(HERE.parent))
os.environ.update({"NBTRACKER_CONSOLE": "off", "NBTRACKER_DISABLE_CODE": "true",
                   "NBTRACKER_MODE": "offline", "NBTRACKER_SILENT": "true"})

PROJECT = "proj"
SUBFOLDERS = 10

# phase → (label, target ratio to the plain copy or None)
PHASES = {
    "copytree": ("shutil.copytree", None),
    "cp": ("cp -r", None),
    "init": ("init()", None),
    "log": ("first log: add_dir + log_artifact", 1.5),
    "finish": ("finish()", None),
    "log2": ("second log, same folder", 0.1),
    "download": ("download", 1.5),
    "download2": ("second download, same folder", None),
}


def make_source(src: Path, files: int, total: int) -> int:
    """`files` files of random bytes, `total` bytes in all, in subfolders; returns the bytes."""
    size = total // files
    for i in range(files):
        d = src / f"part{i % SUBFOLDERS:02d}"
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"file{i:05d}.bin", "wb") as f:
            f.write(os.urandom(size))
    return size * files


def settle(src: Path, work: Path) -> None:
    """The state every phase starts from: a folder's worth of page cache just freed, nothing
    left to write back."""
    scratch = work / "recycled"
    subprocess.run(["cp", "-r", str(src), str(scratch)], check=True)
    shutil.rmtree(scratch)
    os.sync()


def _cpu() -> float:
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed(fn: Callable[[], object], before: Callable[[], None]
          ) -> tuple[tuple[float, float], object]:
    """((wall s, CPU s of this process and its children), fn())."""
    before()
    c0 = _cpu()
    t0 = time.perf_counter()
    out = fn()
    return (time.perf_counter() - t0, _cpu() - c0), out


def one_repeat(src: Path, work: Path, rep: int, check: bool) -> dict[str, tuple[float, float]]:
    import nbtracker
    from nbtracker import Api, Artifact

    settled = functools.partial(settle, src, work)
    t: dict[str, tuple[float, float]] = {}
    copy = work / f"copy-{rep}"
    t["copytree"], _ = timed(lambda: shutil.copytree(src, copy), settled)
    shutil.rmtree(copy)
    t["cp"], _ = timed(lambda: subprocess.run(["cp", "-r", str(src), str(copy)], check=True),
                       settled)
    shutil.rmtree(copy)

    store = work / f"store-{rep}"
    os.environ["NBTRACKER_DIR"] = str(store)
    t["init"], run = timed(lambda: nbtracker.init(project=PROJECT), os.sync)

    def log() -> object:
        art = Artifact("data", "dataset")
        art.add_dir(src)
        return run.log_artifact(art)

    t["log"], art = timed(log, settled)
    t["finish"], _ = timed(run.finish, os.sync)
    files = sum(1 for p in src.rglob("*") if p.is_file())
    assert art.version == "v0" and art.file_count == files, art

    run = nbtracker.init(project=PROJECT)
    t["log2"], art2 = timed(log, settled)
    run.finish()
    assert art2.version == "v0" and art2.digest == art.digest, art2

    dest = work / f"download-{rep}"

    def download() -> str:
        return Api(dir=str(store)).artifact(f"{PROJECT}/data:latest").download(root=dest)

    t["download"], _ = timed(download, settled)
    if check:
        differ = [p for p in src.rglob("*") if p.is_file() and not filecmp.cmp(
            p, dest / p.relative_to(src), shallow=False)]
        assert not differ, f"downloaded files differ: {differ[:3]}"
    t["download2"], _ = timed(download, settled)
    shutil.rmtree(store)
    shutil.rmtree(dest)
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--size-mb", type=float, default=1000.0, help="MiB in all")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tmp", default=tempfile.gettempdir(),
                    help="where the folder, the stores and the copies go (one file system)")
    ap.add_argument("--json", default=str(HERE / "results" / "artifacts.json"))
    a = ap.parse_args()

    import nbtracker

    work = Path(tempfile.mkdtemp(prefix="nbt-bench-artifacts-", dir=a.tmp))
    raw: dict[str, list[tuple[float, float]]] = {k: [] for k in PHASES}
    try:
        src = work / "src"
        nbytes = make_source(src, a.files, int(a.size_mb * 2**20))
        time.sleep(0.2)  # past a timestamp tick: the hash cache may remember these files
        print(f"{a.files} files, {nbytes / 1e6:,.0f} MB under {work}; warm-up repeat",
              file=sys.stderr)
        one_repeat(src, work, -1, check=True)
        for rep in range(a.repeats):
            for k, v in one_repeat(src, work, rep, check=False).items():
                raw[k].append(v)
            print(f"  repeat {rep + 1}/{a.repeats} done", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    wall = {k: [w for w, _ in v] for k, v in raw.items()}
    plain_key = min(("copytree", "cp"), key=lambda k: statistics.median(wall[k]))
    plain = wall[plain_key]
    print(f"{a.files} files, {nbytes / 1e6:,.0f} MB, median of {a.repeats} repeats, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; plain copy = "
          f"{PHASES[plain_key][0]}; nbtracker from {Path(nbtracker.__file__).parent}\n")
    print(f"{'phase':<38}{'median s':>9}{'range s':>14}{'CPU s':>7}{'MB/s':>8}{'× copy':>8}"
          f"{'target':>8}  met")
    rows = []
    for k, (label, target) in PHASES.items():
        med = statistics.median(wall[k])
        cpu = statistics.median(c for _, c in raw[k])
        mbs = nbytes / 1e6 / med if k not in ("init", "finish") and med > 0 else None
        ratio = statistics.median(w / p for w, p in zip(wall[k], plain))
        met = None if target is None else ratio <= target
        rows.append({"phase": k, "label": label, "median_s": med, "cpu_s": cpu, "mb_s": mbs,
                     "ratio": ratio, "target": target, "met": met, "all": raw[k]})
        span = f"{min(wall[k]):.3f}–{max(wall[k]):.3f}"
        print(f"{label:<38}{med:>9.3f}{span:>14}{cpu:>7.2f}{(f'{mbs:,.0f}' if mbs else '-'):>8}"
              f"{ratio:>8.2f}{(f'≤ {target}' if target else '-'):>8}  "
              f"{'-' if met is None else ('yes' if met else 'NO')}")
    print("\n× copy: the median over repeats of the phase's time over the plain copy's in the "
          "same repeat; CPU s: this process and its children (cp)")
    path = Path(a.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "plain": plain_key, "files": a.files,
                                "bytes": nbytes, "repeats": a.repeats, "cores": os.cpu_count(),
                                "load": os.getloadavg()[0],
                                "nbtracker": str(Path(nbtracker.__file__).parent),
                                "when": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))


if __name__ == "__main__":
    main()
