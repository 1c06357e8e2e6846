"""What a run records besides what the user logs: system metrics, console output, code and
environment, alert delivery. Each part is a module with `start(run) -> part | None`, called at
`init()` after the run's first records; a part has `close(state)`, called by `finish()` with the
run's final state before the exit record is written (so what it records at the end is in the
run). A part never stops the run: an error starting or closing one is one warning, and the run
goes on without it. A forked child closes nothing (the parts belong to the parent).
"""

from __future__ import annotations

import importlib
from typing import Any

from . import output

# module (in nbtracker.sdk) of each part, in start order; closed in reverse order
PARTS: tuple[str, ...] = ("alerts", "system")


def start(run: Any) -> None:
    for name in PARTS:
        try:
            part = importlib.import_module(f"{__package__}.{name}").start(run)
        except Exception as e:
            run._warn_once(f"part:{name}", f"{name}: not recorded for this run ({e})")
            continue
        if part is not None:
            run._parts.append(part)


def close(run: Any, state: str) -> None:
    parts, run._parts = run._parts, []
    for part in reversed(parts):
        try:
            part.close(state)
        except Exception as e:
            output.debug(f"{type(part).__name__}.close failed: {e}", run._debug_path)
