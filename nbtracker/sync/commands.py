"""Command-line commands of the client: `nbtracker login`, `nbtracker sync`."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register the client's commands on the `nbtracker` parser."""
