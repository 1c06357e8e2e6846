"""What the same tiny training logs through nbtracker's integration and through wandb's own, and
what the integration costs per step. Shared by bench/bench_int_*.py.

wandb's side runs in bench/.venv-integrations (bench/setup_integrations.sh: wandb and the
frameworks, never nbtracker dependencies), offline; its rows are read back from the run's own
transaction log (`run-*.wandb`), so they are what wandb would upload.
"""

from __future__ import annotations

import json
import os
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEERS_PY = HERE / ".venv-integrations" / "bin" / "python"


def _wandb_records(path: str | os.PathLike):
    """The records of a wandb transaction log (`run-*.wandb`): a LevelDB-style log of 32 KiB
    blocks after a 7-byte file header (":W&B", magic, version); each chunk has a 7-byte header
    (masked CRC-32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise SystemExit(f"{path} is not a wandb transaction log")
    block, pos, parts = 32768, 7, []
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind == 1:
            yield chunk
        elif kind == 2:
            parts = [chunk]
        elif kind == 3:
            parts.append(chunk)
        elif kind == 4:
            parts.append(chunk)
            yield b"".join(parts)


def wandb_rows(wandb_dir: str | os.PathLike) -> list[dict]:
    """History rows of the newest offline run under `wandb_dir` (the folder holding `wandb/`),
    read from its transaction log. Run inside bench/.venv-integrations."""
    from wandb.proto import wandb_internal_pb2 as pb

    runs = sorted(Path(wandb_dir).glob("**/offline-run-*/run-*.wandb"), key=os.path.getmtime)
    if not runs:
        raise SystemExit(f"no offline wandb run under {wandb_dir}")
    rows = []
    for data in _wandb_records(runs[-1]):
        rec = pb.Record()
        rec.ParseFromString(data)
        if rec.WhichOneof("record_type") == "history":
            row = {}
            for item in rec.history.item:
                key = item.key or "/".join(item.nested_key)
                row[key] = json.loads(item.value_json)
            rows.append(row)
    return rows


def nbtracker_rows(run_path: str) -> list[dict]:
    """History rows of an nbtracker run (`project/id`), through the public Api."""
    import nbtracker

    return list(nbtracker.Api().run(run_path).scan_history())


def key_steps(rows: list[dict], step_key: str = "_step") -> dict[str, list]:
    """key -> the steps at which it was logged (internal keys, starting with `_`, left out)."""
    out: dict[str, list] = {}
    for row in rows:
        for k in row:
            if not k.startswith("_"):
                out.setdefault(k, []).append(row.get(step_key))
    return out


def compare(ours: dict[str, list], theirs: dict[str, list]) -> list[dict]:
    """One line per key: logged by whom, how many points, the same steps or not."""
    lines = []
    for k in sorted(set(ours) | set(theirs)):
        a, b = ours.get(k), theirs.get(k)
        lines.append({"key": k, "nbtracker": len(a) if a else 0, "wandb": len(b) if b else 0,
                      "same steps": a == b if a and b else None})
    return lines


def print_compare(lines: list[dict]) -> None:
    print(f"{'key':40} {'nbtracker':>9} {'wandb':>6}  same steps")
    for ln in lines:
        same = "" if ln["same steps"] is None else ("yes" if ln["same steps"] else "NO")
        print(f"{ln['key']:40} {ln['nbtracker']:>9} {ln['wandb']:>6}  {same}")


def run_side(script: str | os.PathLike, side: str, *args: str, python: str | None = None,
             timeout: float = 900) -> dict:
    """Run `script --side SIDE ARGS` in a fresh process (wandb's side in the peers venv); the
    script prints one JSON object on its last line of stdout."""
    py = python or (str(PEERS_PY) if side == "wandb" else sys.executable)
    if side == "wandb" and not Path(py).exists():
        raise SystemExit("run bench/setup_integrations.sh first (wandb and the frameworks)")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    p = subprocess.run([py, str(script), "--side", side, *args], capture_output=True, text=True,
                       env=env, timeout=timeout)
    if p.returncode:
        raise SystemExit(f"{script} --side {side} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def median_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """The median wall time of `fn()` over `repeats` calls, in seconds."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def overhead(with_fn: Callable[[], object], without_fn: Callable[[], object],
             repeats: int = 5) -> dict:
    """Median time of the training with and without the integration, interleaved so that drift
    of a noisy machine hits both; the overhead in percent of the training without it."""
    a, b = [], []
    for _ in range(repeats):
        b.append(median_time(without_fn, 1))
        a.append(median_time(with_fn, 1))
    w, wo = statistics.median(a), statistics.median(b)
    return {"with s": round(w, 4), "without s": round(wo, 4),
            "overhead %": round(100 * (w - wo) / wo, 2)}
