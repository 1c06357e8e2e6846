"""RunState: what a run is, rebuilt by replaying its record log.

The writer keeps one RunState up to date as it appends; readers rebuild one from the log (or from
the copy the run index caches, plus the records appended since). Both go through `apply`, so a
run reads back exactly as it was written.
"""

from __future__ import annotations

import json
from typing import Any

from .recordlog import history_values
from .summary import SummaryState

STATES = ("running", "finished", "failed", "crashed", "interrupted")
META_FIELDS = ("name", "group", "job_type", "tags", "notes")


def deep_update(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_update(dst[k], v)
        else:
            dst[k] = v


class RunState:
    def __init__(self) -> None:
        self.id: str = ""
        self.project: str = ""
        self.name: str = ""
        self.group: str | None = None
        self.job_type: str | None = None
        self.tags: list[str] = []
        self.notes: str | None = None
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
        self.step: int = 0  # the step the next history record goes to
        self.rows: int = 0  # history records applied
        self.last_seq: int = 0
        self.runtime: float = 0.0  # seconds spent running, over all resumes
        self._segment_start: float = 0.0

    # -- replay ------------------------------------------------------------------------
    def apply(self, rec: dict) -> None:
        t = rec["t"]
        self.last_seq = rec.get("seq", self.last_seq)
        ts = rec.get("ts")
        if ts:
            self.updated = ts
        if t == "history":
            self.apply_history(rec["step"], history_values(rec))
        elif t == "run":
            self.apply_run(rec)
        elif t == "config":
            d = history_values(rec)
            if rec.get("replace"):
                self.config = dict(d)
            else:
                deep_update(self.config, d)
        elif t == "meta":
            for f in META_FIELDS:
                if f in rec:
                    setattr(self, f, rec[f])
        elif t == "metric":
            d = {k: v for k, v in rec.items() if k not in ("t", "seq", "ts")}
            self.metrics.append(d)
            self.summary.define(d)
        elif t == "summary":
            if "d" in rec:
                self.summary.set_manual(history_values(rec))
            if "del" in rec:
                self.summary.delete_manual(rec["del"])
        elif t == "file":
            self.files[rec["path"]] = {k: v for k, v in rec.items() if k not in ("t", "seq")}
        elif t == "alert":
            self.alerts.append({k: v for k, v in rec.items() if k not in ("t", "seq")})
        elif t == "exit":
            self.state = rec.get("state", "finished")
            self.exit_code = rec.get("exit_code")
            if self._segment_start and ts:
                self.runtime += max(0.0, ts - self._segment_start)
                self._segment_start = 0.0
        # unknown record types (from newer versions) are ignored on purpose

    def apply_run(self, rec: dict) -> None:
        if not self.id:
            self.id = rec["id"]
            self.project = rec["project"]
            self.created = rec.get("ts", 0.0)
        for f in META_FIELDS:
            if f in rec:
                setattr(self, f, rec[f])
        self.host = rec.get("host", self.host)
        self.pid = rec.get("pid", self.pid)
        self.state = "running"
        self.exit_code = None
        self._segment_start = rec.get("ts", 0.0)

    def apply_history(self, step: int, values: dict) -> None:
        self.rows += 1
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
            "last_seq": self.last_seq,
        }

    def dump(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if k != "summary"}
        d["summary"] = self.summary.dump()
        # json (not orjson) keeps NaN/inf in cached summaries
        return json.dumps(d)

    @classmethod
    def load(cls, text: str) -> RunState:
        d = json.loads(text)
        s = cls()
        summary = d.pop("summary", {})
        for k, v in d.items():
            if hasattr(s, k):
                setattr(s, k, v)
        s.summary = SummaryState.load(summary)
        return s
