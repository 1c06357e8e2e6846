"""Which runs match a MongoDB-style filter, and in what order: one rule for every reader.

The local `Api`, the team server and the notebook all match run documents with `match` and order
them with `sort_runs`, so a filter means the same wherever it runs. A run document is a dict with
`id, name, state, group, job_type, tags, notes, created_at, project, config, summary, runtime`
and `sweep` (the id of the sweep the run is a trial of, or None: wandb's `{"sweep": id}`).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from typing import Any

from ..errors import UsageError


def created_at_text(ts: Any) -> str:
    """A creation time as the run documents and wandb show it (UTC, to the second); a time that
    is not a finite number reads as the epoch."""
    try:
        t = float(ts) if type(ts) in (int, float) else 0.0
        return _dt.datetime.fromtimestamp(t if math.isfinite(t) else 0.0,
                                          _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return "1970-01-01T00:00:00"


def run_doc(*, id: str, name: Any, state: str, group: Any, job_type: Any, tags: list,
            notes: Any, created: Any, project: str, config: dict, summary: dict,
            runtime: Any, sweep: str | None = None) -> dict:
    """The document of a run that filters and ordering look at (with wandb's other names for
    some fields), whoever builds it: the local Api or the team server."""
    created_at = created_at_text(created)
    return {"id": id, "name": name, "display_name": name, "state": state, "group": group,
            "job_type": job_type, "jobType": job_type, "tags": tags, "notes": notes,
            "created_at": created_at, "createdAt": created_at, "project": project,
            "config": config, "summary": summary, "runtime": runtime, "sweep": sweep}


def flatten(d: dict, sep: str = "/", prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and not v.get("_type"):
            out.update(flatten(v, sep, key + sep))
        else:
            out[key] = v
    return out


_MISSING = object()


def lookup(doc: dict, key: str) -> Any:
    """Value of a filter key: "state", "config.lr", "summary.acc" / "summary_metrics.acc"."""
    if key in doc and key not in ("config", "summary"):
        return doc[key]
    head, _, rest = key.partition(".")
    if head in ("summary_metrics", "summaryMetrics"):
        head = "summary"
    if head not in ("config", "summary") or not rest:
        return _MISSING
    d = doc[head]
    if rest.endswith(".value") and rest[:-6] in d:  # wandb's "config.lr.value"
        rest = rest[:-6]
    if rest in d:
        return d[rest]
    cur: Any = d
    for part in re.split(r"[./]", rest):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return _MISSING
    return cur


def _cmp(a: Any, b: Any, op) -> bool:
    try:
        return a is not _MISSING and a is not None and op(a, b)
    except TypeError:
        return False


# Filters are checked whole before any run is matched, so a mistake is one UsageError naming
# it (whatever the runs hold), never an exception from deep inside the matching.
_VALUE_OPS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$regex",
              "$options", "$not")
_LOGIC_OPS = ("$and", "$or", "$nor")
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


def _is_ops(cond: Any) -> bool:
    return isinstance(cond, dict) and any(str(k).startswith("$") for k in cond)


def _regex_flags(options: Any) -> int:
    """MongoDB's `$options` letters (i, m, s, x) as `re` flags."""
    if not isinstance(options, str):
        raise UsageError(f"$options must be a string of letters (i, m, s, x), not {options!r}")
    flags = 0
    for ch in options:
        if ch not in _REGEX_FLAGS:
            raise UsageError(f"$options {options!r}: unknown option {ch!r}; use i, m, s or x")
        flags |= _REGEX_FLAGS[ch]
    return flags


def check_filters(filters: Any) -> None:
    """Raise UsageError on the first thing in `filters` that cannot be matched: an unknown
    operator, `$in`/`$nin` without a list, a `$regex` that does not compile, `$options`
    without `$regex` or with unknown letters, `$and`/`$or`/`$nor` without a list of filters."""
    if not isinstance(filters, dict):
        raise UsageError(f"a filter must be an object, not {filters!r}")
    for key, cond in filters.items():
        if key in _LOGIC_OPS:
            if not isinstance(cond, (list, tuple)) or not cond:
                raise UsageError(f"{key} takes a non-empty list of filters, not {cond!r}")
            for f in cond:
                check_filters(f)
        elif str(key).startswith("$"):
            raise UsageError(f"unknown filter operator {key!r}; at the top level use a key "
                             f"(config.lr, summary.acc, state, ...) or {', '.join(_LOGIC_OPS)}")
        else:
            _check_condition(key, cond)


def _check_condition(key: str, cond: Any) -> None:
    if not _is_ops(cond):
        return
    for op, arg in cond.items():
        if op not in _VALUE_OPS:
            raise UsageError(f"unknown filter operator {op!r} on {key!r}; use one of "
                             + ", ".join(_VALUE_OPS))
        if op in ("$in", "$nin") and not isinstance(arg, (list, tuple)):
            raise UsageError(f"{op} on {key!r} takes a list of values, not {arg!r}")
        if op == "$options" and "$regex" not in cond:
            raise UsageError(f"$options on {key!r} needs a $regex next to it")
        if op == "$regex":
            if not isinstance(arg, str):
                raise UsageError(f"$regex on {key!r} takes a string, not {arg!r}")
            flags = _regex_flags(cond["$options"]) if "$options" in cond else 0
            try:
                re.compile(arg, flags)
            except re.error as e:
                raise UsageError(f"$regex {arg!r} on {key!r} is not a valid pattern: {e}") from None
        if op == "$not":
            _check_condition(key, arg)


def _regex_match(v: Any, pattern: str, options: Any) -> bool:
    flags = _regex_flags(options) if options is not None else 0
    if isinstance(v, (list, tuple)):  # as MongoDB: an array matches when an element does
        return any(isinstance(x, str) and re.search(pattern, x, flags) for x in v)
    return isinstance(v, str) and re.search(pattern, v, flags) is not None


def _match_value(v: Any, cond: Any) -> bool:
    if _is_ops(cond):
        for op, arg in cond.items():
            if op == "$eq" and not _eq(v, arg):
                return False
            if op == "$ne" and _eq(v, arg):
                return False
            if op == "$gt" and not _cmp(v, arg, lambda a, b: a > b):
                return False
            if op == "$gte" and not _cmp(v, arg, lambda a, b: a >= b):
                return False
            if op == "$lt" and not _cmp(v, arg, lambda a, b: a < b):
                return False
            if op == "$lte" and not _cmp(v, arg, lambda a, b: a <= b):
                return False
            if op == "$in" and not any(_eq(v, a) for a in arg):
                return False
            if op == "$nin" and any(_eq(v, a) for a in arg):
                return False
            if op == "$exists" and (v is not _MISSING) != bool(arg):
                return False
            if op == "$regex" and not _regex_match(v, arg, cond.get("$options")):
                return False
            if op == "$not" and _match_value(v, arg):
                return False
            if op not in _VALUE_OPS:
                raise UsageError(f"unknown filter operator {op!r}")
        return True
    return _eq(v, cond)


def _isnan(x: Any) -> bool:
    return type(x) is float and x != x


def _eq(v: Any, want: Any) -> bool:
    if isinstance(v, (list, tuple)) and not isinstance(want, (list, tuple)):
        return any(_eq(x, want) for x in v)  # {"tags": "cnn"} matches a run tagged cnn
    if v is _MISSING:
        return want is None
    # NaN is stored and read back as NaN: a filter asking for NaN finds it
    return v == want or (_isnan(v) and _isnan(want))


def match(doc: dict, filters: dict) -> bool:
    """Whether a run's document matches `filters` (checked first with `check_filters`)."""
    for key, cond in filters.items():
        if key == "$and":
            if not all(match(doc, f) for f in cond):
                return False
        elif key == "$or":
            if not any(match(doc, f) for f in cond):
                return False
        elif key == "$nor":
            if any(match(doc, f) for f in cond):
                return False
        elif not _match_value(lookup(doc, key), cond):
            return False
    return True


def sort_runs(runs: list, order: str | None, doc=lambda r: r._doc(),
              created=lambda r: r.created) -> list:
    """`runs` sorted by `order` ("-created_at", "+summary.loss", "config.lr"); `doc(run)` gives a
    run's document and `created(run)` its creation time."""
    if not order:
        return runs
    desc = order.startswith("-")
    key = order.lstrip("+-")
    key = {"created_at": "created", "createdAt": "created"}.get(key, key)

    def k(r: Any):
        v = created(r) if key == "created" else lookup(doc(r), key)
        missing = v is _MISSING or v is None or (isinstance(v, float) and math.isnan(v))
        # missing values sort last either way
        return (missing != desc, (0, v) if isinstance(v, (int, float)) and not missing
                else (1, str(v)))

    return sorted(runs, key=k, reverse=desc)
