"""Sweeps in wandb's format, run on Optuna (an extra: `pip install 'nbtracker[sweeps]'`).

    sweep_id = nbtracker.sweep(sweep_config, project="mnist")   # also wandb.sweep with the import changed
    nbtracker.agent(sweep_id, function=train, count=20)

- `config`: the sweep configuration (YAML or dict) parsed and validated;
- `space`: the parameter space sampled through an Optuna trial;
- `hyperband`: `early_terminate: {type: hyperband}` as an Optuna pruner;
- `process`: a trial's command line and its process group;
- `engine`: a sweep's id, study, state and trial bookkeeping (local store or PostgreSQL);
- `agent`: the agent, in function mode and subprocess mode.

This module imports no optuna until a sweep is used. It imports `agent` (the submodule, with
`engine` and `config`; a few ms) at once: importing a submodule binds it on its package under its
name, so a later first import of it would replace the function `agent` below with the module.
"""

from __future__ import annotations

from typing import Any

from ..errors import TrialPruned
from . import agent as _agent_module  # see the module doc: `agent` is rebound below

__all__ = ["TrialPruned", "agent", "sweep"]


def sweep(sweep: Any, entity: str | None = None, project: str | None = None,
          prior_runs: Any = None, *, storage: str | None = None, seed: int | None = None) -> str:
    """Make a sweep (wandb's `sweep`); returns its id for `agent()`.

    Args:
        sweep: the sweep config: a dict, YAML text, or the path of a .yaml/.json file. An invalid
            one raises `SweepConfigError` (a ValueError) listing each problem, before anything
            is made.
        project: the project of the sweep's runs (else the config's, else the default project).
        storage: a PostgreSQL URL, for agents on several machines (else NBTRACKER_SWEEP_STORAGE,
            else the local store).
        seed: seeds the sampler, so one agent repeats the same sweep exactly.
    """
    from ..sdk.output import say
    from .engine import create_sweep

    if prior_runs:
        from ..sdk.output import warn

        warn("sweep(prior_runs=...) is not used here; the sweep starts without them")
    s = create_sweep(sweep, project=project, entity=entity, storage=storage, seed=seed)
    where = f" in {s.where}" if s.url else ""
    say(f"Created sweep with ID: {s.id} (project {s.project}, {s.config.method}){where}; "
        f"run it with nbtracker.agent({s.id!r}, function=...) or `nbtracker agent {s.id}`")
    return s.id


def agent(sweep_id: str, function: Any = None, entity: str | None = None,
          project: str | None = None, count: int | None = None, *, storage: str | None = None,
          on_prune: str = "flag") -> int:
    return _agent_module.agent(sweep_id, function, entity, project, count, storage=storage,
                               on_prune=on_prune)


agent.__doc__ = _agent_module.agent.__doc__
