"""Reading a run's history into pandas: one row per step, `_step`, `_runtime`, `_timestamp`.

Consecutive numeric rows come from the column blocks (`columns.py`); everything else is parsed
from the record log. Records that share a step are merged into one row, later values winning.
"""

from __future__ import annotations

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


def _records_frame(steps: list, tss: list, rows: list):
    import pandas as pd

    df = pd.DataFrame.from_records(rows) if rows else pd.DataFrame(index=range(len(steps)))
    df.insert(0, "_step", steps)
    df["_timestamp"] = tss
    return df


def _block_frame(h: dict, rows):
    import numpy as np
    import pandas as pd

    keys = h["keys"]
    df = pd.DataFrame(rows[:, 2:], columns=keys, copy=False)
    for k in h.get("ints", ()):
        df[k] = df[k].astype(np.int64)
    df.insert(0, "_step", rows[:, 0].astype(np.int64))
    df["_timestamp"] = rows[:, 1]
    return df


def iter_history_pieces(run_dir: Path, report: ReadReport | None = None):
    """Yield DataFrames, in log order, that together hold every history record."""
    report = report if report is not None else ReadReport()
    try:
        data = (Path(run_dir) / layout.LOG_NAME).read_bytes()
    except FileNotFoundError:
        return
    pos = 0
    expect = None

    def gap(a: int, b: int, first_seq):
        steps, tss, rows = [], [], []
        last = first_seq
        for rec in parse(data, a, b, report, first_seq):
            last = rec["seq"] + 1
            if rec["t"] == "history":
                steps.append(rec["step"])
                tss.append(rec["ts"])
                rows.append(history_values(rec))
        return (_records_frame(steps, tss, rows) if steps else None), last

    for h, rows in read_blocks(run_dir):
        if not _valid(h, data, pos):
            continue
        df, expect = gap(pos, h["off0"], expect)
        if df is not None:
            yield df
        if expect is not None and expect != h["seq0"]:
            report.gaps.append((expect, h["seq0"]))
        yield _block_frame(h, rows)
        pos = h["off1"]
        expect = h["seq1"] + 1
    df, _ = gap(pos, len(data), expect)
    if df is not None:
        yield df


def read_history(run_dir: Path, created: float = 0.0, keys: Iterable[str] | None = None,
                 samples: int | None = None, report: ReadReport | None = None):
    """The run's history as a DataFrame with `_step`, `_runtime`, `_timestamp` columns."""
    import numpy as np
    import pandas as pd

    pieces = list(iter_history_pieces(run_dir, report))
    if not pieces:
        return pd.DataFrame(columns=list(_META))
    df = pieces[0] if len(pieces) == 1 else pd.concat(pieces, ignore_index=True, sort=False)
    steps = df["_step"].to_numpy()
    if len(steps) > 1 and not (np.diff(steps) > 0).all():
        # several records per step (log(..., commit=False) or step=): one row per step,
        # the last value of each column winning
        df = df.groupby("_step", sort=True, as_index=False).last()
    df["_runtime"] = df["_timestamp"] - created if created else df["_timestamp"] - df[
        "_timestamp"].iloc[0]
    cols = [c for c in df.columns if c not in _META]
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
