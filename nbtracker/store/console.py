"""Console output and environment records, and reading them back.

An output record holds text the run's process wrote to stdout or stderr:

    {"t":"output","seq":12,"ts":1732000001.0,"stream":"stderr","text":"epoch 1: 100%|####| 50/50\\n"}

The texts of all output records, in log order, are what a terminal received: a record continues
where the previous one (of either stream) stopped, a line may run over several records, and `\\r`
returns to the start of the line, so what follows overwrites it (as tqdm's progress lines do).
The writer (`sdk/console.py`) already collapses overwritten lines to their last state within what
it writes; `render` applies the same rule to the whole, which gives the log as a terminal shows it.

An env record (one per process that wrote to the run, written at init) holds the environment in
`d`: `{"t":"env","d":{"python":"3.11.7","platform":…,"host":…,"argv":[…],"git":{…},…}}` (see
`sdk/code.py` for its keys).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .recordlog import history_values, select


def overwrite(line: str, text: str, cursor: int) -> tuple[str, int]:
    """The line a terminal shows, and its cursor, after `text` (no newline in it) is written to
    `line` with the cursor at `cursor`: characters replace what is under the cursor, `\\r`
    returns to the start of the line."""
    parts = text.split("\r")
    first = parts[0]
    if first:
        line = line[:cursor] + first + line[cursor + len(first):]
        cursor += len(first)
    for p in parts[1:]:
        line = p + line[len(p):]
        cursor = len(p)
    return line, cursor


def render(texts: list[str] | Iterator[str]) -> str:
    """Texts written to a terminal, as it shows them: each line in its last state."""
    whole = "".join(texts)
    if "\r" not in whole:
        return whole
    out = []
    for line in whole.split("\n"):
        if "\r" in line:
            line = overwrite("", line, 0)[0]
        out.append(line)
    return "\n".join(out)


def records_of(log_path: str | os.PathLike, kind: str) -> Iterator[dict]:
    """The records of type `kind` in a record log, in order (`recordlog.select`: only the lines
    that name `kind` are parsed)."""
    for rec in select(log_path, (b'"' + kind.encode() + b'"',)):
        if rec["t"] == kind:
            yield rec


def read_output(log_path: str | os.PathLike) -> str:
    """The run's console output as a terminal shows it (both streams, in the order written)."""
    return render(r["text"] for r in records_of(log_path, "output") if type(r.get("text")) is str)


def has_output(log_path: str | os.PathLike) -> bool:
    return next(records_of(log_path, "output"), None) is not None


def read_env(log_path: str | os.PathLike) -> dict | None:
    """The environment of the run's latest process (its last env record's `d`), or None."""
    last = None
    for rec in records_of(log_path, "env"):
        if type(rec.get("d")) is dict:
            last = history_values(rec)
    return last


def with_wandb_names(env: dict) -> dict:
    """An env record's values, plus wandb's names for some of them (`os`, `args`, `program`,
    `startedAt`, `root`, `codePath`), as `wandb.Api().run(...).metadata` has them."""
    import datetime as dt

    d = dict(env)
    if "platform" in d:
        d.setdefault("os", d["platform"])
    argv = d.get("argv")
    if isinstance(argv, list):
        d.setdefault("args", argv[1:])
    started = d.get("started")
    if isinstance(started, (int, float)):
        t = dt.datetime.fromtimestamp(started, dt.timezone.utc)
        d.setdefault("startedAt", t.isoformat(timespec="microseconds").replace("+00:00", "Z"))
    git = d.get("git") if isinstance(d.get("git"), dict) else {}
    d.setdefault("root", git.get("root") or d.get("cwd"))
    program = d.get("program")
    if isinstance(program, str) and git.get("root") and os.path.isabs(program):
        rel = os.path.relpath(program, git["root"])
        if not rel.startswith(".."):
            d.setdefault("codePath", rel)
    return d
