"""Command-line commands of the team server: `nbtracker server`, `user`, `project`, `key`."""

from __future__ import annotations


def add_commands(sub) -> None:
    """Register the server's commands on the `nbtracker` parser."""
