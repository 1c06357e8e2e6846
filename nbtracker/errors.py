"""Exceptions nbtracker raises on purpose (bad use, not bad values: those are warnings)."""


class Error(Exception):
    """Base class of nbtracker's errors."""


class UsageError(Error):
    """nbtracker was called in a way it cannot honour; the message says what to do instead."""


class CommError(Error):
    """wandb's name for a failure to talk to the server (`except nbtracker.errors.CommError`
    works in code written for wandb)."""


class TrialPruned(Error):
    """Raised by `log()` in a sweep's trial that the sweep stopped early (hyperband), when the
    agent was asked for it (`agent(..., on_prune="raise")`); the agent ends the trial `pruned`.
    Without that, `run.pruned` turns True and `log()` goes on as ever."""
