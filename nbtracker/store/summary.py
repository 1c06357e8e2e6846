"""Summary rules: what `run.summary[key]` holds for each logged metric.

By default the last logged value. `define_metric(name, summary="min,max", goal=...)` changes that
for a name or a glob ("val/*"); a value set by hand (`run.summary[k] = v`) wins over any rule.
`del run.summary[k]` forgets the key — its hand-set value, its last value and its aggregates —
so it stays deleted until it is logged or set again (and then aggregates start afresh).
The writer and every reader apply the same rules to the same records, so a summary rebuilt from
the record log equals the one the run showed.
"""

from __future__ import annotations

import fnmatch
from typing import Any

RULES = ("min", "max", "mean", "first", "last", "best", "none", "copy")
GOALS = ("minimize", "maximize")


def parse_rules(summary: str | None, goal: str | None) -> tuple[str, ...]:
    if summary is None:
        return ()
    rules = tuple(r.strip().lower() for r in str(summary).split(",") if r.strip())
    for r in rules:
        if r not in RULES:
            raise ValueError(f"summary rule {r!r} is not one of {', '.join(RULES)}")
    if goal is not None and goal not in GOALS:
        raise ValueError(f"goal must be 'minimize' or 'maximize', not {goal!r}")
    return tuple("last" if r == "copy" else r for r in rules)


def _is_num(v: Any) -> bool:
    t = type(v)
    return (t is float and v == v) or t is int


class SummaryState:
    """Running summary of a run's history under its metric definitions."""

    __slots__ = ("last", "agg", "defs", "manual", "_cache", "_merged")

    def __init__(self) -> None:
        self.last: dict[str, Any] = {}
        self.agg: dict[str, dict[str, Any]] = {}  # key -> {"min","max","sum","n","first"}
        self.defs: list[dict] = []  # metric definitions in the order given
        self.manual: dict[str, Any] = {}
        self._cache: dict[str, tuple | None] = {}
        # key -> its merged definition: log() asks for each key of each row once step metrics
        # are defined, and matching every glob every time cost more than the rest of log()
        self._merged: dict[str, dict | None] = {}

    # -- definitions -------------------------------------------------------------------
    def define(self, d: dict) -> None:
        self.defs.append(d)
        self._cache.clear()
        self._merged.clear()
        # Keys already logged start aggregating from now on; seed them from the last value.
        for k in self.last:
            if self.rules_for(k) and k not in self.agg:
                self._seed(k, self.last[k])

    def definition(self, key: str) -> dict | None:
        """What the definitions say about `key`, merged: globs first, then exact names, later
        definitions overriding earlier ones field by field (so `define_metric("val/*",
        step_metric="epoch")` and `define_metric("val/loss", summary="min")` both apply).
        The same dict for the same key until the next definition: callers only read it."""
        try:
            return self._merged[key]
        except KeyError:
            pass
        merged: dict | None = None
        for exact in (False, True):
            for d in self.defs:
                name = d["name"]
                hit = name == key if exact else (
                    name != key and ("*" in name or "?" in name) and fnmatch.fnmatchcase(key, name))
                if hit:
                    merged = {**(merged or {}), **d}
        self._merged[key] = merged
        return merged

    def rules_for(self, key: str) -> tuple | None:
        try:
            return self._cache[key]
        except KeyError:
            pass
        d = self.definition(key)
        r = None
        if d is not None and d.get("summary"):
            rules = tuple(d["summary"])
            if rules != ("last",):
                r = (rules, d.get("goal"))
        self._cache[key] = r
        return r

    # -- updates -----------------------------------------------------------------------
    def _seed(self, k: str, v: Any) -> None:
        if _is_num(v):
            self.agg[k] = {"min": v, "max": v, "sum": float(v), "n": 1, "first": v}
        else:
            self.agg[k] = {"first": v, "n": 0, "sum": 0.0}

    def update(self, values: dict) -> None:
        """Fold one history record's values in (hot path: one dict update without rules)."""
        self.last.update(values)
        if self.defs:
            for k, v in values.items():
                if self.rules_for(k) is None:
                    continue
                a = self.agg.get(k)
                if a is None:
                    self._seed(k, v)
                elif _is_num(v):
                    if "min" not in a:
                        a["min"] = a["max"] = v
                    else:
                        if v < a["min"]:
                            a["min"] = v
                        if v > a["max"]:
                            a["max"] = v
                    a["sum"] += v
                    a["n"] += 1

    def set_manual(self, values: dict) -> None:
        self.manual.update(values)

    def delete(self, keys) -> None:
        """Forget `keys` (a `"del"` summary record): writer and replay both call this."""
        if isinstance(keys, str):
            keys = [keys]
        for k in keys:
            if isinstance(k, str):
                self.manual.pop(k, None)
                self.last.pop(k, None)
                self.agg.pop(k, None)

    def copy(self) -> SummaryState:
        """A copy that edits can change without touching this one (aggregates are shared:
        edits replace or drop them, never update them in place)."""
        s = SummaryState()
        s.last, s.agg, s.manual = dict(self.last), dict(self.agg), dict(self.manual)
        s.defs = self.defs
        return s

    # -- reading -----------------------------------------------------------------------
    def value(self, key: str) -> Any:
        """Summary value of one flat key, or KeyError."""
        if key in self.manual:
            return self.manual[key]
        if key not in self.last:
            raise KeyError(key)
        r = self.rules_for(key)
        if r is None:
            return self.last[key]
        rules, goal = r
        if rules == ("none",):
            raise KeyError(key)
        a = self.agg.get(key, {})
        out = {}
        for rule in rules:
            if rule == "none":
                continue
            if rule == "last":
                out["last"] = self.last[key]
            elif rule == "first":
                out["first"] = a.get("first")
            elif rule == "mean":
                out["mean"] = a["sum"] / a["n"] if a.get("n") else None
            elif rule in ("min", "max"):
                out[rule] = a.get(rule)
            elif rule == "best":
                out["best"] = a.get("max" if goal == "maximize" else "min")
        if len(out) == 1:
            return next(iter(out.values()))
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat dict of every summary value (keys as logged, nested dicts as 'a/b')."""
        out: dict[str, Any] = {}
        for k in self.last:
            if k in self.manual:
                continue
            try:
                out[k] = self.value(k)
            except KeyError:
                pass
        out.update(self.manual)
        return out

    # -- persistence (the run index caches replay state) -------------------------------
    def dump(self) -> dict:
        return {"last": self.last, "agg": self.agg, "defs": self.defs, "manual": self.manual}

    @classmethod
    def load(cls, d: dict) -> SummaryState:
        s = cls()
        s.last = d.get("last", {})
        s.agg = d.get("agg", {})
        s.defs = d.get("defs", [])
        s.manual = d.get("manual", {})
        return s
