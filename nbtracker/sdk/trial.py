"""A sweep's trial, as `init()` sees it: the variables the sweep agent sets for the program it runs.

    NBTRACKER_SWEEP_ID          the sweep; the run records it (`run.sweep_id`, and the Api's
                                `sweep_id` and `filters={"sweep": id}`)
    NBTRACKER_RUN_ID            the run's id
    NBTRACKER_PROJECT           the run's project
    NBTRACKER_SWEEP_PARAM_PATH  a JSON file `{"name": value, ...}`: the trial's parameters

As under a wandb agent: with NBTRACKER_SWEEP_ID set, the agent's run id and project win over
`init(id=..., project=...)` (one warning says that the argument is ignored), and the trial's
parameters are put in the run's config over what the program passes (`init(config=...)`,
`nbtracker.config` set before init) for the same top-level keys, silently, as wandb does. A
missing or unreadable parameters file is one warning; the run starts without them.

In function mode (`nbtracker.agent(sweep_id, function=...)`) the agent runs the trial in its own
process: it hands the trial over with `set_pending()` instead, and the next `init()` takes it
(once) and calls `attach(run)` with the run it made, so the agent can follow what it logs.

Only NBTRACKER_ names are read (not WANDB_SWEEP_ID): the agent sets those alone. This module
reads the file itself, so `init()` never imports `nbtracker.sweeps` (nor optuna).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple


class Trial(NamedTuple):
    sweep_id: str
    run_id: str | None
    project: str | None
    params: dict[str, Any]
    attach: Callable[[Any], None] | None = None  # in function mode: called with the new run


_pending: list[Trial] = []  # the trial a function-mode agent hands to the next init()


def set_pending(t: Trial | None) -> None:
    """Hand `t` to the next `init()` of this process (None: take back what was not taken)."""
    _pending[:] = [] if t is None else [t]


def _var(name: str) -> str | None:
    return os.environ.get(name) or None


def from_env(warn) -> Trial | None:
    """The trial this process runs, or None outside a sweep; `warn(text)` is called once for a
    parameters file that cannot be read."""
    if _pending:
        return _pending.pop()
    sweep_id = _var("NBTRACKER_SWEEP_ID")
    if sweep_id is None:
        return None
    return Trial(sweep_id, _var("NBTRACKER_RUN_ID"), _var("NBTRACKER_PROJECT"), _params(warn))


def _params(warn) -> dict[str, Any]:
    path = _var("NBTRACKER_SWEEP_PARAM_PATH")
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            params = json.load(f)
    except (OSError, ValueError) as e:
        warn(f"sweep parameters: cannot read NBTRACKER_SWEEP_PARAM_PATH={path!r} ({e}); "
             "the run starts without them")
        return {}
    if not isinstance(params, dict):
        warn(f"sweep parameters: NBTRACKER_SWEEP_PARAM_PATH={path!r} holds "
             f"{type(params).__name__}, not a JSON object; the run starts without them")
        return {}
    return params
