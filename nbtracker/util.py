"""What wandb code reaches for in `wandb.util`."""

from __future__ import annotations

from .sdk.names import new_run_id


def generate_id(length: int = 8) -> str:
    """A random id of `length` characters from [a-z2-7], usable as a run id:
    `nbtracker.init(id=nbtracker.util.generate_id(), resume="allow")`."""
    return new_run_id(length)
