"""RunState: what a run is, rebuilt by replaying its record log.

The writer keeps one RunState up to date as it appends; readers rebuild one from the log (or from
the copy the run index caches, plus the records appended since). Both go through `apply`, so a
run reads back exactly as it was written.

Rules shared by the writer and every reader:

- config: a config record replaces the top-level keys it names, as a whole (as wandb's
  `config.update`); `"replace": true` replaces the whole config. Nested dicts are never merged.
- summary: `"d"` sets values by hand, `"del"` deletes keys (see `SummaryState.delete`).
- edits made with `Api().run(...).update()` while the run is live sit in `edits.jsonl` (see
  `store.py`) and are overlaid on the replay with `with_edits`; records folded from there into
  the log carry the edit's sequence number as `"eseq"`, and `eseq` is the highest one the log
  holds.
- sweep: a run started as a sweep's trial names the sweep in its `run` record (`"sweep": id`);
  a later `run` record (a resume) without it leaves it.
- artifact: `{"t": "artifact", "io": "out" | "in", "project", "name", "version", "type",
  "digest"}` — a version of an artifact the run logged or used (artifacts/registry.py); the run's
  `artifacts` lists each once, in the order first recorded.
- steps: `steps` is the set of distinct steps that hold a history row (a `StepSet`); the writer
  keeps it as it logs, readers fold it from the history records, and the index caches it with
  the rest of the state (its count and largest step also as columns).
"""

from __future__ import annotations

import bisect
import copy
import json
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from .recordlog import history_values
from .summary import SummaryState

# pruned: a sweep stopped the run early (sweeps/agent.py)
STATES = ("running", "finished", "failed", "crashed", "interrupted", "pruned")
META_FIELDS = ("name", "group", "job_type", "tags", "notes")
EDIT_TYPES = ("config", "summary", "meta")  # what an edit after the fact may change

# What `RunState.apply` raises for a record of a shape this version does not know (another
# writer, a hand edit, an upload from elsewhere): every replay skips such a record, never stops.
REJECTED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def replay_records(state: RunState, records: Iterable[dict],
                   skipped: Callable[[dict], None] | None = None) -> Iterator[dict]:
    """Apply `records` to `state` in order, yielding each one it accepts; one it rejects is
    skipped (and handed to `skipped`). The one replay: the local store, edits and the team
    server all go through it."""
    apply = state.apply
    for rec in records:
        try:
            apply(rec)
        except REJECTED:
            if skipped is not None:
                skipped(rec)
            continue
        yield rec


def merge_config(dst: dict, src: dict) -> None:
    """The one config rule: each top-level key of `src` replaces that key of `dst` as a whole."""
    dst.update(src)


_start = itemgetter(0)


class StepSet:
    """A set of steps as sorted, disjoint arithmetic runs `[start, stride, count]`.

    Runs of a run's steps are regular (every step, every 100th step, ...), so a run that logged
    10M steps is one triple; irregular steps cost one triple each at worst. `add` takes steps in
    any order: a step above the last one extends or starts the last run (the common case, O(1));
    a lower step is looked up and, when new, splits or extends the run it falls in. A run of one
    step keeps stride 1 until a second step fixes its stride.
    """

    __slots__ = ("runs", "count")

    def __init__(self, runs: list | None = None) -> None:
        self.runs: list[list[int]] = [list(r) for r in runs] if runs else []
        self.count = sum(r[2] for r in self.runs)

    @property
    def last(self) -> int | None:
        """The largest step, or None when there is none."""
        if not self.runs:
            return None
        s, d, n = self.runs[-1]
        return s + d * (n - 1)

    def __len__(self) -> int:
        return self.count

    def __contains__(self, step: object) -> bool:
        runs = self.runs
        i = bisect.bisect_right(runs, step, key=_start) - 1
        if i < 0:
            return False
        s, d, n = runs[i]
        return step <= s + d * (n - 1) and (step - s) % d == 0  # type: ignore[operator]

    def __iter__(self):
        for s, d, n in self.runs:
            yield from range(s, s + d * n, d) if n > 1 else (s,)

    def add(self, step: int) -> None:
        runs = self.runs
        if not runs:
            runs.append([step, 1, 1])
            self.count = 1
            return
        r = runs[-1]
        end = r[0] + r[1] * (r[2] - 1)
        if step > end:
            if r[2] == 1:
                r[1] = step - r[0]
                r[2] = 2
            elif step - end == r[1]:
                r[2] += 1
            else:
                runs.append([step, 1, 1])
            self.count += 1
        elif step < end:
            self._insert(step)

    def _insert(self, step: int) -> None:
        """Add a step below the last one."""
        runs = self.runs
        i = bisect.bisect_right(runs, step, key=_start) - 1
        if i >= 0:
            s, d, n = runs[i]
            end = s + d * (n - 1)
            if step <= end:
                off = step - s
                if off % d == 0:
                    return  # already there
                k = off // d + 1  # steps of the run below `step`
                left = [s, d if k > 1 else 1, k]
                right = [s + k * d, d if n - k > 1 else 1, n - k]
                runs[i:i + 1] = [left, [step, 1, 1], right]
                self.count += 1
                return
        # in the gap between runs[i] and runs[i + 1] (runs[i + 1] exists: step < the last)
        runs.insert(i + 1, [step, 1, 1])
        self.count += 1
        j = i + 1
        if j + 1 < len(runs):
            self._join(j)
        if j > 0:
            self._join(j - 1)

    def _join(self, i: int) -> bool:
        """Merge runs[i] and runs[i + 1] when together they are one arithmetic run."""
        runs = self.runs
        a, b = runs[i], runs[i + 1]
        gap = b[0] - (a[0] + a[1] * (a[2] - 1))
        if (a[2] == 1 or a[1] == gap) and (b[2] == 1 or b[1] == gap):
            runs[i:i + 2] = [[a[0], gap, a[2] + b[2]]]
            return True
        return False

    def dump(self) -> list:
        return self.runs

    @classmethod
    def load(cls, runs: Any) -> StepSet:
        if not isinstance(runs, list) or not all(
                isinstance(r, list) and len(r) == 3 and all(type(x) is int for x in r)
                for r in runs):
            raise ValueError("not a step set")
        return cls(runs)


class RunState:
    def __init__(self) -> None:
        self.id: str = ""
        self.project: str = ""
        self.name: str = ""
        self.group: str | None = None
        self.job_type: str | None = None
        self.tags: list[str] = []
        self.notes: str | None = None
        self.sweep: str | None = None  # the sweep the run is a trial of
        self.state: str = "running"
        self.exit_code: int | None = None
        self.created: float = 0.0
        self.updated: float = 0.0
        self.host: str = ""
        self.pid: int = 0
        self.config: dict[str, Any] = {}
        self.summary = SummaryState()
        self.metrics: list[dict] = []
        self.files: dict[str, dict] = {}
        self.alerts: list[dict] = []
        self.artifacts: list[dict] = []  # versions the run logged ("out") and used ("in")
        self.step: int = 0  # the step the next history record goes to
        self.rows: int = 0  # history records applied
        self.last_seq: int = 0
        self.eseq: int = 0  # the highest edit sequence number folded into the log
        self.runtime: float = 0.0  # seconds spent running, over all resumes
        self._segment_start: float = 0.0
        self.steps = StepSet()  # distinct steps holding a history row
        self.late_steps = False  # a history record came at a step below one logged before it

    # -- replay ------------------------------------------------------------------------
    def apply(self, rec: dict) -> None:
        t = rec["t"]
        self.last_seq = rec.get("seq", self.last_seq)
        ts = rec.get("ts")
        if ts:
            self.updated = ts
        if t == "history":
            if type(rec.get("step")) is int:
                self.apply_history(rec["step"], history_values(rec))
        elif t == "run":
            self.apply_run(rec)
        elif t in EDIT_TYPES:
            self._apply_edit_body(t, rec)
            eseq = rec.get("eseq")  # an edit folded in from edits.jsonl
            if type(eseq) is int and eseq > self.eseq:
                self.eseq = eseq
        elif t == "metric":
            d = {k: v for k, v in rec.items() if k not in ("t", "seq", "ts")}
            self.metrics.append(d)
            self.summary.define(d)
        elif t == "file":
            self.files[rec["path"]] = {k: v for k, v in rec.items() if k not in ("t", "seq")}
        elif t == "alert":
            self.alerts.append({k: v for k, v in rec.items() if k not in ("t", "seq")})
        elif t == "artifact":
            self.apply_artifact(rec)
        elif t == "exit":
            self.state = rec.get("state", "finished")
            self.exit_code = rec.get("exit_code")
            if self._segment_start and ts:
                self.runtime += max(0.0, ts - self._segment_start)
                self._segment_start = 0.0
        # unknown record types (from newer versions) are ignored on purpose

    def _apply_edit_body(self, t: str, rec: dict) -> None:
        if t == "config":
            d = history_values(rec)
            if rec.get("replace"):
                self.config = dict(d)
            else:
                merge_config(self.config, d)
        elif t == "meta":
            self._apply_meta(rec)
        elif t == "summary":
            if "d" in rec:
                self.summary.set_manual(history_values(rec))
            if "del" in rec:
                self.summary.delete(rec["del"])

    def with_edits(self, edits: list[dict]) -> RunState:
        """This state with the edits (records of `edits.jsonl`, `seq` being the edit's
        sequence number) that the log does not hold yet applied on top, in their order. Returns
        self when there are none; else a copy, leaving self (what the index caches) alone."""
        pending = [e for e in edits if e["seq"] > self.eseq and e["t"] in EDIT_TYPES]
        if not pending:
            return self
        view = copy.copy(self)
        view.config = dict(self.config)
        view.tags = list(self.tags)
        view.summary = self.summary.copy()
        for e in pending:
            try:
                view._apply_edit_body(e["t"], e)
            except REJECTED:
                continue  # an edit of a shape not known here: skipped, as replay does
            ts = e.get("ts")
            if isinstance(ts, (int, float)) and ts > view.updated:
                view.updated = ts
        view.eseq = pending[-1]["seq"]
        return view

    def _apply_meta(self, rec: dict) -> None:
        """Identity fields of a run or meta record; a field of the wrong type is left out."""
        for f in META_FIELDS:
            if f not in rec:
                continue
            v = rec[f]
            if f == "tags":
                if type(v) is list and all(type(t) is str for t in v):
                    self.tags = v
            elif type(v) is str or (v is None and f != "name"):
                setattr(self, f, v)

    def apply_run(self, rec: dict) -> None:
        if not self.id:
            self.id = rec["id"]
            self.project = rec["project"]
            self.created = rec.get("ts", 0.0)
        if type(rec.get("sweep")) is str:
            self.sweep = rec["sweep"]
        self._apply_meta(rec)
        self.host = rec.get("host", self.host)
        self.pid = rec.get("pid", self.pid)
        self.state = "running"
        self.exit_code = None
        self._segment_start = rec.get("ts", 0.0)

    def apply_artifact(self, rec: dict) -> None:
        """An artifact version the run logged (`"io": "out"`) or used (`"in"`); the same one
        twice is kept once."""
        a = {"io": rec["io"], "project": rec["project"], "name": rec["name"],
             "version": rec["version"], "type": rec.get("type"), "digest": rec.get("digest")}
        if a["io"] not in ("in", "out") or type(a["version"]) is not int \
                or not all(type(a[k]) is str for k in ("project", "name")):
            raise ValueError("not an artifact record")
        if not any(x["io"] == a["io"] and x["project"] == a["project"]
                   and x["name"] == a["name"] and x["version"] == a["version"]
                   for x in self.artifacts):
            self.artifacts.append(a)

    def apply_history(self, step: int, values: dict) -> None:
        self.rows += 1
        last = self.steps.last
        if last is not None and step < last:
            self.late_steps = True
        self.steps.add(step)
        if step >= self.step:
            self.step = step + 1
        self.summary.update(values)

    # -- views -------------------------------------------------------------------------
    def runtime_at(self, now: float) -> float:
        if self._segment_start:
            return self.runtime + max(0.0, now - self._segment_start)
        return self.runtime

    def info(self) -> dict[str, Any]:
        """Plain dict of the run's identity and state (what the index stores as columns)."""
        return {
            "id": self.id, "project": self.project, "name": self.name, "group": self.group,
            "job_type": self.job_type, "tags": list(self.tags), "notes": self.notes,
            "state": self.state, "exit_code": self.exit_code, "created": self.created,
            "updated": self.updated, "host": self.host, "pid": self.pid,
            "runtime": self.runtime_at(self.updated), "rows": self.rows,
            "last_seq": self.last_seq, "steps": self.steps.count, "last_step": self.steps.last,
        }

    def dump(self) -> str:
        """The state as the run index caches it."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("summary", "steps")}
        d["summary"] = self.summary.dump()
        d["steps"] = self.steps.dump()
        # json (not orjson) keeps NaN/inf and integers beyond 64 bits in cached state
        return json.dumps(d)

    @classmethod
    def load(cls, text: str) -> RunState:
        d = json.loads(text)
        if not isinstance(d, dict):
            raise ValueError("not a run state")
        s = cls()
        summary = d.pop("summary", {})
        steps = d.pop("steps", [])
        for k, v in d.items():
            if hasattr(s, k):
                setattr(s, k, v)
        s.summary = SummaryState.load(summary)
        s.steps = StepSet.load(steps)
        return s
