"""Exceptions nbtracker raises on purpose (bad use, not bad values: those are warnings)."""


class Error(Exception):
    """Base class of nbtracker's errors."""


class UsageError(Error):
    """nbtracker was called in a way it cannot honour; the message says what to do instead."""


class CommError(Error):
    """wandb's name for a failure to talk to the server (`except nbtracker.errors.CommError`
    works in code written for wandb)."""
