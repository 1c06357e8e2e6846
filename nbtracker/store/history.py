"""Reading a run's history into pandas: one row per step, `_step`, `_runtime`, `_timestamp`.

Consecutive numeric rows come from the column blocks (`columns.py`); everything else is parsed
from the record log. Records that share a step are merged into one row, later values winning.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import layout
from .columns import read_blocks
from .recordlog import ReadReport, history_values, loads, parse

_META = ("_step", "_runtime", "_timestamp")


def _line_seq(data: bytes, start: int, end: int) -> int | None:
    try:
        return loads(data[start:end]).get("seq")
    except (ValueError, AttributeError):
        return None


def _valid(h: dict, data: bytes, pos: int) -> bool:
    off0, off1 = h.get("off0", -1), h.get("off1", -1)
    if not (pos <= off0 < off1 <= len(data)) or data[off1 - 1:off1] != b"\n":
        return False
    first_end = data.find(b"\n", off0, off1)
    last_start = data.rfind(b"\n", off0, off1 - 1) + 1
    return (_line_seq(data, off0, first_end) == h["seq0"]
            and _line_seq(data, max(last_start, off0), off1 - 1) == h["seq1"])


def _records_frame(seqs: list, steps: list, tss: list, rows: list):
    import pandas as pd

    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(index=range(len(steps)))
    df.insert(0, "_step", steps)
    df["_timestamp"] = tss
    df["_seq"] = seqs
    return df


def _block_frame(h: dict, rows, contiguous: bool = True):
    import numpy as np
    import pandas as pd

    keys = h["keys"]
    ints = set(h.get("ints", ()))
    cols = {"_step": rows[:, 0].astype(np.int64)}
    for i, k in enumerate(keys):
        c = rows[:, 2 + i]
        cols[k] = c.astype(np.int64) if k in ints else c
    cols["_timestamp"] = rows[:, 1]
    # blocks of one run of the log carry consecutive sequence numbers
    cols["_seq"] = np.arange(h["seq1"] - len(rows) + 1, h["seq1"] + 1)
    return pd.DataFrame(cols, copy=False)


def history_frames(run_dir: Path, report: ReadReport | None = None,
                   first_seen: dict | None = None) -> list:
    """DataFrames that together hold every history record, each with a `_seq` column: one
    for the records parsed from the log, one per valid column block. `first_seen`, if given,
    is filled with the sequence number at which each key first appears."""
    first_seen = first_seen if first_seen is not None else {}
    report = report if report is not None else ReadReport()
    try:
        with open(Path(run_dir) / layout.LOG_NAME, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # mapped, not read: where column blocks cover the log its pages are never touched
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except FileNotFoundError:
        return []
    try:
        return _frames(run_dir, data, report, first_seen)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


def _frames(run_dir: Path, data, report: ReadReport, first_seen: dict) -> list:
    import numpy as np

    seqs: list = []
    steps: list = []
    tss: list = []
    rows: list = []
    frames = []
    state = {"pos": 0, "expect": None}

    def take(stop: int) -> None:
        for rec in parse(data, state["pos"], stop, report, state["expect"]):
            state["expect"] = rec["seq"] + 1
            if rec["t"] == "history":
                seqs.append(rec["seq"])
                steps.append(rec["step"])
                tss.append(rec["ts"])
                vals = history_values(rec)
                rows.append(vals)
                if vals.keys() - first_seen.keys():
                    for k in vals:
                        first_seen.setdefault(k, rec["seq"])

    run: list = []  # consecutive blocks with the same keys become one frame

    def close_run() -> None:
        if run:
            h = dict(run[0][0], seq1=run[-1][0]["seq1"],
                     ints=[k for k in run[0][0].get("ints", ())
                           if all(k in b[0].get("ints", ()) for b in run)])
            rows = run[0][1] if len(run) == 1 else np.concatenate([b[1] for b in run])
            frames.append(_block_frame(h, rows, contiguous=len(run) == 1))
            run.clear()

    for h, block in read_blocks(run_dir):
        if not _valid(h, data, state["pos"]):
            continue
        if h["off0"] != state["pos"] or (run and run[0][0]["keys"] != h["keys"]):
            close_run()
        take(h["off0"])
        if state["expect"] is not None and state["expect"] != h["seq0"]:
            report.gaps.append((state["expect"], h["seq0"]))
        run.append((h, block))
        for k in h["keys"]:
            if first_seen.get(k, h["seq0"]) >= h["seq0"]:
                first_seen[k] = h["seq0"]
        state["pos"] = h["off1"]
        state["expect"] = h["seq1"] + 1
    close_run()
    take(len(data))
    if seqs:
        frames.append(_records_frame(seqs, steps, tss, rows))
    return frames


def read_history(run_dir: Path, created: float = 0.0, keys: Iterable[str] | None = None,
                 samples: int | None = None, report: ReadReport | None = None):
    """The run's history as a DataFrame with `_step`, `_runtime`, `_timestamp` columns."""
    import numpy as np
    import pandas as pd

    first_seen: dict = {}
    frames = history_frames(run_dir, report, first_seen)
    if not frames:
        return pd.DataFrame(columns=list(_META))
    if len(frames) == 1:
        df = frames[0]
    else:
        df = pd.concat(frames, ignore_index=True, sort=False)
        seq = df["_seq"].to_numpy()
        if not (np.diff(seq) > 0).all():
            df = df.iloc[np.argsort(seq, kind="stable")].reset_index(drop=True)
    steps = df["_step"].to_numpy()
    if len(steps) > 1 and not (np.diff(steps) > 0).all():
        # several records per step (log(..., commit=False) or step=): one row per step,
        # the last value of each column winning
        df = df.groupby("_step", sort=True, as_index=False).last()
    df["_runtime"] = df["_timestamp"] - (created or df["_timestamp"].iloc[0])
    cols = [c for c in df.columns if c not in _META and c != "_seq"]
    if len(frames) > 1:  # columns in the order they were first logged
        cols.sort(key=lambda c: first_seen.get(c, 0))
    if keys is not None:
        keys = list(keys)
        cols = [k for k in keys if k in df.columns]
        if cols:
            df = df[df[cols].notna().any(axis=1)]
    df = df[["_step", *cols, "_runtime", "_timestamp"]].reset_index(drop=True)
    if samples is not None and len(df) > samples > 0:
        idx = np.unique(np.linspace(0, len(df) - 1, samples).round().astype(int))
        df = df.iloc[idx].reset_index(drop=True)
    return df


def scan_history(run_dir: Path, keys: Iterable[str] | None = None) -> Iterable[dict[str, Any]]:
    """Rows as dicts, one per step, without building a DataFrame of the whole run."""
    keys = set(keys) if keys is not None else None
    row: dict[str, Any] | None = None
    step = None
    for rec in parse_file(run_dir):
        if rec["t"] != "history":
            continue
        if rec["step"] != step:
            if row is not None and (keys is None or keys & row.keys()):
                yield row
            step = rec["step"]
            row = {"_step": step}
        vals = history_values(rec)
        if keys is not None:
            vals = {k: v for k, v in vals.items() if k in keys}
        row.update(vals)
        row["_timestamp"] = rec["ts"]
    if row is not None and (keys is None or keys & row.keys()):
        yield row


def parse_file(run_dir: Path):
    from .recordlog import read_records

    return read_records(Path(run_dir) / layout.LOG_NAME)
