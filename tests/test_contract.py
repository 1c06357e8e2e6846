"""The store's contract, as a property: what nbtracker reads back equals a plain replay of the log.

For any sequence of calls — logs at steps above, at and below the current one, `commit=False`,
hand-set and deleted summary keys, config updates, finish and resume, reindex, a deleted run
index — `Api().run(...)`'s history, scan_history, summary, config, state, steps and last_step,
and the run index, all equal what `replay_oracle` makes of `records.jsonl`, value for value. And
the log holds what the calls asked for: a model of the calls, folded the same way, equals the
replay.

How history() cells are compared: a key not logged at a step reads as NaN (or pd.NA); a logged
NaN reads as NaN (so the frame cannot tell a logged NaN from a missing value — only scan_history
can); a logged None must read as None (an object column can hold it); an int must read back
exactly (a float cell passes only when it equals the int exactly); a bool must stay a bool.
scan_history() rows are compared as exact dicts: the keys logged at that step, and no others,
besides `_step`, `_runtime` and `_timestamp`. The run index (`index.sqlite`, table `runs`) must
hold one row per run, whose state and cached replay (the state, the step after the last one,
the config) agree with the replay; the index keeps the log's state, so `running` passes there
for a run the replay calls crashed.

The model of the calls: `log(d)` joins the current step and advances it; `log(d, step=s)` joins
step s (also below the current step) and raises the current step to s; `commit=False` joins the
current step; a resumed run continues after its last step.

NBTRACKER_CONTRACT_CHECKS (comma-separated: model, history, scan, summary, config, state, steps,
index) limits which properties are asserted, to find every distinct failure one at a time;
NBTRACKER_CONTRACT_EXAMPLES sets the number of programs tried (60).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO, run_cli
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from replay_oracle import fold, replay, run_records, values

import nbtracker
from nbtracker.sdk import init as sdk_init

PROJECT = "p"
SYSTEM = ("_step", "_runtime", "_timestamp")
ALL_CHECKS = ("model", "history", "scan", "summary", "config", "state", "steps", "index")
EXAMPLES = int(os.environ.get("NBTRACKER_CONTRACT_EXAMPLES", 60))
CHECKS = tuple(os.environ.get("NBTRACKER_CONTRACT_CHECKS", ",".join(ALL_CHECKS)).split(","))

# -- values and comparison ------------------------------------------------------------------

EDGE_INTS = [2**53 + 1, 2**63 - 1, -(2**63), 2**64 + 5, -(2**70), 0, -1]
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.none(),
    st.sampled_from(EDGE_INTS),
    st.integers(),
    st.text(max_size=4),
    st.sampled_from(["é", "日本", "a/b"]),
    st.booleans(),
)
KEYS = ["a", "b", "_seq", "é", "val"]
NESTED = st.one_of(
    st.just({}),
    VALUES.map(lambda v: {"val": {"loss": v}}),
    VALUES.map(lambda v: {"x": {"y": {"z": v}}}),
)
ROWS = st.tuples(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3), NESTED).map(
    lambda t: {**t[0], **t[1]}).filter(bool)
SUMMARY_KEYS = st.sampled_from(KEYS + ["val/loss", "best"])
CONFIG = st.dictionaries(
    st.sampled_from(["opt", "lr", "é"]),
    st.one_of(st.dictionaries(st.sampled_from(["m", "n"]), VALUES, min_size=1, max_size=2), VALUES),
    min_size=1, max_size=2)


def flatten(d: dict, prefix: str = "") -> dict:
    """{"val": {"loss": 1}} -> {"val/loss": 1}: how log() names nested values."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out


def same(got, want) -> bool:
    """Equal value for value: NaN is NaN, ints are ints (exact), bools bools, None None."""
    if isinstance(got, np.generic):
        got = got.item()
    if type(want) is float:
        return type(got) is float and (got == want or (math.isnan(want) and math.isnan(got)))
    if isinstance(want, dict):
        return (isinstance(got, dict) and set(got) == set(want)
                and all(same(got[k], want[k]) for k in want))
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(same, got, want))
    return type(got) is type(want) and got == want


def same_cell(cell, want) -> bool:
    """A history() frame cell against a logged value (see the module docstring)."""
    if isinstance(cell, np.generic):
        cell = cell.item()
    if type(want) is int and type(cell) is float:
        return cell == want  # Python compares int and float exactly
    return same(cell, want)


def is_missing(cell) -> bool:
    return cell is not None and not isinstance(cell, str) and bool(pd.isna(cell))


def diff(got, want, labels: tuple[str, str] = ("read back", "replay")) -> str:
    return f"\n  {labels[0]:>9}: {got!r}\n  {labels[1]:>9}: {want!r}"


def diff_model(logged, asked) -> str:
    return diff(logged, asked, ("log has", "calls ask"))


# -- the contract check ---------------------------------------------------------------------

def check_contract(run_id: str, live: bool, model: dict | None = None) -> dict:
    """Assert every property in CHECKS for run `run_id` in the current store; return the replay."""
    root = Path(os.environ["NBTRACKER_DIR"])
    want = replay(root / "runs" / PROJECT / run_id, live)
    if "model" in CHECKS and model is not None:
        # one assertion per part, so that hypothesis tells the failures apart
        assert same(want["rows"], model["rows"]), "log rows" + diff_model(want["rows"], model["rows"])
        assert same(want["summary"], model["summary"]), "log summary" \
            + diff_model(want["summary"], model["summary"])
        assert same(want["config"], model["config"]), "log config" \
            + diff_model(want["config"], model["config"])
    run = read_back(run_id)
    if "history" in CHECKS:
        check_frame(run["history"], want["rows"])
    if "scan" in CHECKS:
        check_scan(run["scan"], want["rows"])
    if "summary" in CHECKS:
        assert same(run["summary"], want["summary"]), "summary" + diff(run["summary"], want["summary"])
    if "config" in CHECKS:
        assert same(run["config"], want["config"]), "config" + diff(run["config"], want["config"])
    if "state" in CHECKS:
        assert run["state"] == want["state"], "state" + diff(run["state"], want["state"])
    if "steps" in CHECKS:
        got = (run["steps"], run["last_step"])
        assert got == (want["steps"], want["last_step"]), "steps, last_step" + diff(got, want)
    if "index" in CHECKS:
        check_index(root, run_id, want)
    return want


def read_back(run_id: str) -> dict:
    """Everything the Api says about the run, as plain values: a failed assertion's traceback then
    keeps no Api object (and its open index connection) alive while hypothesis shrinks."""
    run = nbtracker.Api().run(f"{PROJECT}/{run_id}")
    return {"history": run.history(), "scan": list(run.scan_history()),
            "summary": dict(run.summary.items()), "config": dict(run.config), "state": run.state,
            "steps": run.steps, "last_step": run.last_step}


def check_frame(df: pd.DataFrame, rows: dict) -> None:
    steps = [int(s) for s in df["_step"]] if "_step" in df else []
    assert steps == list(rows), "history() steps" + diff(steps, list(rows))
    keys = {k for row in rows.values() for k in row}
    cols = set(df.columns) - set(SYSTEM)
    assert cols == keys and {"_runtime", "_timestamp"} <= set(df.columns), \
        "history() columns" + diff(sorted(df.columns), sorted(keys))
    for i, (step, row) in enumerate(rows.items()):
        for k in keys:
            check_cell(df[k].iloc[i], row, k, f"history() step {step} key {k!r} ({df[k].dtype})")


def check_cell(cell, row: dict, k: str, where: str) -> None:
    """One assertion per kind of value, so that hypothesis tells the failures apart."""
    if k not in row:
        assert is_missing(cell), f"{where}: not logged" + diff(cell, "<missing>")
        return
    want = row[k]
    if want is None:
        assert cell is None, f"{where}: logged None" + diff(cell, want)
    elif type(want) is int:
        assert same_cell(cell, want), f"{where}: logged int" + diff(cell, want)
    elif type(want) is float and want != want:
        assert same_cell(cell, want), f"{where}: logged NaN" + diff(cell, want)
    elif type(want) is float:
        assert same_cell(cell, want), f"{where}: logged float" + diff(cell, want)
    else:
        assert same_cell(cell, want), f"{where}: logged {type(want).__name__}" + diff(cell, want)


def check_scan(scanned: list[dict], rows: dict) -> None:
    steps = [r.get("_step") for r in scanned]
    assert steps == list(rows), "scan_history() steps" + diff(steps, list(rows))
    for r, (step, row) in zip(scanned, rows.items()):
        assert "_runtime" in r and "_timestamp" in r, f"scan_history() step {step}: {r!r}"
        got = {k: v for k, v in r.items() if k not in SYSTEM}
        assert same(got, row), f"scan_history() step {step}" + diff(got, row)


def check_index(root: Path, run_id: str, want: dict) -> None:
    """The run index row: one per run; its state and cached replay agree with the replay."""
    import json

    listed = [r.id for r in nbtracker.Api().runs(PROJECT)]  # a reader brings the cache up to date
    assert listed == [run_id], f"Api().runs() lists {listed!r}"
    with closing(sqlite3.connect(root / "index.sqlite")) as con:
        found = con.execute("SELECT state, blob, steps, last_step FROM runs WHERE id = ? AND "
                            "project = ?", (run_id, PROJECT)).fetchall()
    assert len(found) == 1, f"index rows for the run: {found!r}"
    states = {want["log_state"], want["state"]}
    state, blob, steps, last_step = found[0][0], json.loads(found[0][1]), *found[0][2:]
    assert state in states and blob.get("state") in states, \
        "index state" + diff((state, blob.get("state")), states)
    assert (steps or 0) == want["steps"], "index steps" + diff(steps, want["steps"])
    assert (last_step or 0) == want["last_step"], \
        "index last_step" + diff(last_step, want["last_step"])
    assert same(blob.get("config"), want["config"]), "index config" + diff(blob.get("config"),
                                                                           want["config"])


def finish_all() -> None:
    for r in list(sdk_init._active):
        r.finish(quiet=True)
    sdk_init.pending_config = nbtracker.Config()


# -- the state machine ----------------------------------------------------------------------

class Calls(RuleBasedStateMachine):
    """Random programs against one run; `records` models what each call should write."""

    base: Path  # set by the test: a directory for this test's stores

    def __init__(self) -> None:
        super().__init__()
        finish_all()
        self.root = Path(tempfile.mkdtemp(dir=self.base))
        os.environ["NBTRACKER_DIR"] = str(self.root)
        self.records: list[dict] = []
        self.step = 0
        self.run = None

    @initialize(config=st.one_of(st.none(), CONFIG))
    def start(self, config):
        self.run = nbtracker.init(project=PROJECT, config=config)
        self.run_id = self.run.id
        self.records.append({"t": "run"})
        if config:
            self.records.append({"t": "config", "d": config})

    def model(self) -> dict:
        return fold(self.records, live=self.run is not None)

    def _logged(self, d: dict, step: int) -> None:
        self.records.append({"t": "history", "step": step, "d": flatten(d)})

    @rule(d=ROWS)
    def log(self, d):
        self.run.log(d)
        self._logged(d, self.step)
        self.step += 1

    @rule(d=ROWS, delta=st.integers(-3, 3))
    def log_at_step(self, d, delta):
        s = max(0, self.step + delta)
        self.run.log(d, step=s)
        self._logged(d, s)
        self.step = max(self.step, s)

    @rule(d=ROWS)
    def log_uncommitted(self, d):
        self.run.log(d, commit=False)
        self._logged(d, self.step)

    @rule(k=SUMMARY_KEYS, v=VALUES)
    def set_summary(self, k, v):
        self.run.summary[k] = v
        self.records.append({"t": "summary", "d": {k: v}})

    @precondition(lambda self: self.model()["summary"])
    @rule(data=st.data())
    def delete_summary(self, data):
        k = data.draw(st.sampled_from(sorted(self.model()["summary"])))
        try:
            del self.run.summary[k]
        except KeyError:
            # the run's summary lacks a key the model has: a lost value, which "model" reports
            assert "model" not in CHECKS, f"del run.summary[{k!r}]: KeyError, but it was logged"
            return
        self.records.append({"t": "summary", "del": [k]})

    @rule(d=CONFIG)
    def update_config(self, d):
        self.run.config.update(d, allow_val_change=True)
        self.records.append({"t": "config", "d": d})

    @rule(sub=st.dictionaries(st.sampled_from(["m", "n"]), VALUES, min_size=1, max_size=1))
    def update_config_nested(self, sub):
        self.update_config({"opt": sub})

    @rule()
    def finish_and_resume(self):
        self.run.finish(quiet=True)
        self.records.append({"t": "exit", "state": "finished"})
        self.run = nbtracker.init(project=PROJECT, id=self.run_id, resume="allow")
        self.records.append({"t": "run"})
        rows = self.model()["rows"]
        self.step = max(rows) + 1 if rows else 0

    @rule(cli=st.booleans())
    def reindex(self, cli):
        if cli:
            run_cli("reindex")
        else:
            nbtracker.Api().reindex()

    @rule()
    def delete_index(self):
        Path(self.root, "index.sqlite").unlink(missing_ok=True)

    @rule()
    def check(self):
        check_contract(self.run_id, live=True, model=self.model())

    def teardown(self):
        try:
            if self.run is not None:
                check_contract(self.run_id, live=True, model=self.model())
                self.run.finish(quiet=True)
                self.records.append({"t": "exit", "state": "finished"})
                self.run = None
                check_contract(self.run_id, live=False, model=self.model())
        finally:
            finish_all()
            # hypothesis keeps failing examples' tracebacks, and with them this machine: let go
            # of the run, which holds its index connections open until it is collected
            self.run = None
            shutil.rmtree(self.root, ignore_errors=True)


def run_machine(tmp_path: Path, monkeypatch, **kw) -> None:
    monkeypatch.setenv("NBTRACKER_SILENT", "true")
    Calls.base = tmp_path
    run_state_machine_as_test(Calls, settings=settings(
        deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), **kw))


def test_reads_equal_the_replay(tmp_path, monkeypatch):
    run_machine(tmp_path, monkeypatch, max_examples=EXAMPLES, stateful_step_count=12)


@pytest.mark.slow
def test_reads_equal_the_replay_long_programs(tmp_path, monkeypatch):
    run_machine(tmp_path, monkeypatch, max_examples=300, stateful_step_count=40)


# -- kill -9 mid-logging ----------------------------------------------------------------------

CHILD = """
import math, sys
import nbtracker
run = nbtracker.init(project="p", id="killed9")
special = [math.nan, math.inf, -math.inf, None, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 + 5, "é"]
i = 0
while True:
    x = special[i % len(special)]
    if i % 5 == 4:
        run.log({"i": i, "x": x}, step=max(0, i // 2 - 3))
    else:
        run.log({"i": i, "x": x, "val": {"loss": i / 7}})
    if i % 7 == 0:
        run.summary["best"] = x
    if i % 11 == 0:
        run.config.update({"opt": {"n": i}}, allow_val_change=True)
    print(i, flush=True)
    i += 1
"""


def child_calls(n: int) -> list[dict]:
    """The history values of the child's first `n` log() calls, as written."""
    special = [math.nan, math.inf, -math.inf, None, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 + 5, "é"]
    out = []
    for i in range(n):
        x = special[i % len(special)]
        out.append({"i": i, "x": x} if i % 5 == 4 else {"i": i, "x": x, "val/loss": i / 7})
    return out


@pytest.mark.slow
def test_kill_9_mid_logging_reads_equal_the_replay(monkeypatch):
    monkeypatch.setenv("NBTRACKER_SILENT", "true")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, env=env, text=True)
    returned = -1
    deadline = time.monotonic() + 30
    try:
        while returned < 400 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            returned = int(line)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert returned >= 400, "the child did not get going"
    want = check_contract("killed9", live=False)
    assert want["state"] == "crashed"
    run_dir = Path(os.environ["NBTRACKER_DIR"], "runs", "p", "killed9")
    written = {d.get("i"): d for d in (values(r) for r in run_records(run_dir) if r["t"] == "history")}
    lost = [d for d in child_calls(returned + 1) if not same(written.get(d["i"]), d)]
    run = nbtracker.init(project="p", id="killed9", resume="allow")
    run.log({"after": 1.5})
    run.log({"after": 2.5}, step=0)
    run.finish(quiet=True)
    assert check_contract("killed9", live=False)["state"] == "finished"
    assert not lost, f"{len(lost)} log() call(s) that returned are not in the log, e.g. {lost[:3]}"
