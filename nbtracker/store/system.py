"""Reading a run's system stream: its `system` records (one sample of the machine's load each,
see `nbtracker.sdk.system` for the keys), in log order.

As wandb's `run.history(stream="system")` gives them: one row per sample with `_timestamp`
(Unix time), `_runtime` (seconds since the run was created) and a `system.<key>` column per key,
e.g. `system.cpu`, `system.proc.memory.rssMB`, `system.gpu.0.gpu`; a key missing from a sample
is NaN in the frame and absent from that row's dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from . import layout
from .recordlog import ReadReport, history_values, select

PREFIX = "system."
_META = ("_runtime", "_timestamp")


def system_rows(run_dir: Path, created: float = 0.0,
                report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """The samples as dicts: `system.<key>` per value, `_runtime` (from `created`, else from
    the first sample) and `_timestamp`."""
    report = report if report is not None else ReadReport()
    for rec in select(Path(run_dir) / layout.LOG_NAME, (b'"system"',), report=report):
        if rec["t"] != "system":
            continue
        ts = rec.get("ts")
        vals = history_values(rec)
        if type(ts) not in (int, float) or type(vals) is not dict:
            report.malformed.append(rec["seq"])
            continue
        if not created:
            created = ts
        row: dict[str, Any] = {PREFIX + k: v for k, v in vals.items()}
        row["_runtime"] = ts - created
        row["_timestamp"] = ts
        yield row


def read_system(run_dir: Path, created: float = 0.0, keys: Iterable[str] | None = None,
                samples: int | None = None, report: ReadReport | None = None,
                pandas: bool = True):
    """The system stream as a DataFrame: the `system.<key>` columns in the order they first
    appear, then `_runtime` and `_timestamp` (with `pandas=False`, the rows as dicts). `keys`
    (with or without the `system.` prefix) keeps those columns; `samples` keeps that many rows,
    evenly spread, first and last included."""
    rows = list(system_rows(run_dir, created, report))
    if samples is not None and 0 < samples < len(rows):
        last = len(rows) - 1
        picks = sorted({round(i * last / max(1, samples - 1)) for i in range(samples)})
        rows = [rows[i] for i in picks]
    cols: dict[str, None] = {}
    if keys is None:
        for row in rows:
            cols.update(dict.fromkeys(row))
    else:
        for k in keys:
            k = str(k)
            cols[k if k in _META or k.startswith(PREFIX) else PREFIX + k] = None
    for k in _META:  # last, as in `history()`
        cols.pop(k, None)
        cols[k] = None
    if not pandas:
        return [{k: row[k] for k in cols if k in row} for row in rows]
    import pandas as pd

    return pd.DataFrame(rows, columns=list(cols))
