"""What upload tests check: the server holds exactly the records of a run's log, and derives
the same run (state, config, summary) as a local replay of it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import orjson
import requests

from nbtracker.store import layout
from nbtracker.store.lock import is_live
from nbtracker.store.recordlog import ReadReport, read_records
from nbtracker.store.state import RunState
from nbtracker.store.store import read_edits, replay


def _run_url(url: str, project: str, run_id: str) -> str:
    return f"{url}/api/v1/projects/{quote(project, safe='')}/runs/{run_id}"


def server_records(url: str, key: str, project: str, run_id: str) -> list[dict]:
    """Every record the server holds for the run, paged through the records route."""
    out: list[dict] = []
    after = 0
    while True:
        r = requests.get(_run_url(url, project, run_id) + "/records",
                         params={"after_seq": after, "limit": 10000},
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)
        r.raise_for_status()
        page = [orjson.loads(line) for line in r.content.splitlines() if line.strip()]
        if not page:
            return out
        out += page
        after = page[-1]["seq"]


def server_run(url: str, key: str, project: str, run_id: str) -> dict:
    r = requests.get(_run_url(url, project, run_id), headers={"Authorization": f"Bearer {key}"},
                     timeout=60)
    r.raise_for_status()
    return r.json()


def identity(run_dir: Path) -> tuple[str, str]:
    for rec in read_records(Path(run_dir) / layout.LOG_NAME):
        if rec["t"] == "run":
            return rec["project"], rec["id"]
    raise AssertionError(f"no run record in {run_dir}")


def local_records(run_dir: Path) -> list[dict]:
    return list(read_records(Path(run_dir) / layout.LOG_NAME, report=ReadReport()))


def assert_uploaded(url: str, key: str, run_dir: str | os.PathLike) -> list[dict]:
    """The server has exactly the run's records — no gap, no duplicate, byte-equal values —
    and its run item agrees with a local replay (with edits). Returns the records."""
    run_dir = Path(run_dir)
    project, run_id = identity(run_dir)
    local = local_records(run_dir)
    remote = server_records(url, key, project, run_id)
    seqs = [r["seq"] for r in remote]
    assert len(seqs) == len(set(seqs)), "duplicate records on the server"
    assert seqs == [r["seq"] for r in local], (
        f"server has {len(seqs)} records, the log {len(local)}; first difference at "
        f"{next((i for i, (a, b) in enumerate(zip(seqs, [r['seq'] for r in local])) if a != b), None)}")
    assert remote == local
    item = server_run(url, key, project, run_id)
    state, _, _ = replay(run_dir)
    edits, _ = read_edits(run_dir)
    view = state.with_edits(edits)
    got = RunState.load(json.dumps(item["state"]))
    assert item["next_seq"] == state.last_seq + 1
    # as the local store says: a running run whose process is gone is crashed
    local_status = view.state
    if local_status == "running" and not is_live(run_dir):
        local_status = "crashed"
    assert item["status"] == local_status
    assert (got.name, got.tags, got.state, got.rows, got.last_seq, got.step) == \
        (view.name, view.tags, view.state, view.rows, view.last_seq, view.step)
    assert got.config == view.config
    assert json.dumps(got.summary.to_dict(), sort_keys=True) == \
        json.dumps(view.summary.to_dict(), sort_keys=True)
    return remote
