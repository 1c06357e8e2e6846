"""A plain replay of a run's record log, written from the documented format alone.

This is the reference the contract tests hold nbtracker's readers to, so it deliberately shares no
code with nbtracker: it reads `records.jsonl` (and `edits.jsonl`, when present, after it) with the
standard json module and folds the records in order:

- `nf` names, at the same place as a null in `d`, what JSON cannot hold: "nan", "inf", "-inf",
  or an integer's decimal digits; it mirrors `d`'s shape (nested dicts, list positions "0", ...).
- history: records with the same `step` form one row; the later record wins per key.
- summary: the last logged value per key, in record order; a summary record's `d` sets values by
  hand, which win; its `del` removes keys until they are logged or set again.
- config: a record replaces top-level keys; one with `"replace": true` replaces the whole config.
- state: `run` makes it running, `exit` sets it; running with no live process reads as crashed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SPECIAL = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def restore(value: Any, nf: Any) -> Any:
    """`value` with every place `nf` names replaced by the value it names."""
    if isinstance(nf, str):
        return SPECIAL[nf] if nf in SPECIAL else int(nf)
    if isinstance(nf, dict) and isinstance(value, dict):
        return {k: restore(v, nf.get(k)) if k in nf else v for k, v in value.items()}
    if isinstance(nf, dict) and isinstance(value, list):
        return [restore(v, nf[str(i)]) if str(i) in nf else v for i, v in enumerate(value)]
    return value


def read_log(path: Path) -> list[dict]:
    """The complete, parseable records of one JSON-lines file (a torn last line is not one)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    records = []
    for line in data.split(b"\n")[:-1]:  # what follows the last newline is unfinished
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict) and "t" in rec:
            records.append(rec)
    return records


def run_records(run_dir: Path) -> list[dict]:
    """The run's log records (a repeated sequence number keeps its first copy), then its edits."""
    out, last_seq = [], 0
    for rec in read_log(run_dir / "records.jsonl"):
        seq = rec.get("seq")
        if isinstance(seq, int) and seq <= last_seq:
            continue
        last_seq = seq if isinstance(seq, int) else last_seq
        out.append(rec)
    return out + read_log(run_dir / "edits.jsonl")


def values(rec: dict) -> dict:
    return restore(rec.get("d", {}), rec.get("nf"))


def fold(records: list[dict], live: bool = False) -> dict:
    """What the records say: rows by step, summary, config, state, steps and last_step.

    Also takes records built in memory (`d` holding real Python values and no `nf`), which is how
    the tests state what the calls they made should have written.
    """
    rows: dict[int, dict] = {}
    last: dict[str, Any] = {}
    manual: dict[str, Any] = {}
    deleted: set[str] = set()
    config: dict[str, Any] = {}
    state = None
    for rec in records:
        t = rec["t"]
        if t == "history":
            d = values(rec)
            rows.setdefault(rec["step"], {}).update(d)
            last.update(d)
            deleted.difference_update(d)
        elif t == "summary":
            if "d" in rec:
                d = values(rec)
                manual.update(d)
                deleted.difference_update(d)
            for k in rec.get("del", []):
                manual.pop(k, None)
                deleted.add(k)
        elif t == "config":
            config = dict(values(rec)) if rec.get("replace") else {**config, **values(rec)}
        elif t == "run":
            state = "running"
        elif t == "exit":
            state = rec.get("state", "finished")
    summary = {k: v for k, v in last.items() if k not in deleted}
    summary.update(manual)
    return {
        "rows": dict(sorted(rows.items())),
        "summary": summary,
        "config": config,
        "log_state": state,
        "state": "crashed" if state == "running" and not live else state,
        "steps": len(rows),
        "last_step": max(rows, default=0),
    }


def replay(run_dir: str | Path, live: bool = False) -> dict:
    """Replay the run in `run_dir`; `live` says whether its process is still running."""
    return fold(run_records(Path(run_dir)), live)
