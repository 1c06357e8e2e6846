"""Text output: one line at init, one at finish, warnings once — or nothing when silent.

Silence is read when a message is printed, so `%env WANDB_SILENT true` after import works.
Everything, printed or not, also goes to the run's debug log.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from typing import Any

from .settings import env, truthy

_forced_silent: bool | None = None


def set_silent(on: bool | None) -> None:
    """Force silence on/off for this process (None: follow NBTRACKER_SILENT / WANDB_SILENT)."""
    global _forced_silent
    _forced_silent = on


def silent() -> bool:
    if _forced_silent is not None:
        return _forced_silent
    v = env("SILENT")
    return v is not None and truthy(v)


def in_notebook() -> bool:
    """Whether this process is a notebook's kernel (not merely a process that imported one)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except Exception:
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


_panel_follows = threading.local()


@contextlib.contextmanager
def panel_follows():
    """Within it, the one-line start message goes to the debug log only: a panel showing the
    same thing is about to be displayed (a notebook shows stderr as a red block above it)."""
    _panel_follows.on = True
    try:
        yield
    finally:
        _panel_follows.on = False


def say_start(msg: str, debug_path: str | os.PathLike | None = None) -> Any:
    """The run's start line. In a notebook it is an output of its own (not stderr's red block),
    returned as a display handle so a panel shown next can take its place."""
    if getattr(_panel_follows, "on", False):
        debug(msg, debug_path)
        return None
    if silent() or not in_notebook():
        say(msg, debug_path)
        return None
    debug(msg, debug_path)
    try:
        from IPython.display import display

        return display({"text/plain": f"nbtracker: {safe(msg)}"}, raw=True, display_id=True)
    except Exception:
        say(msg, None)
        return None


def say(msg: str, debug_path: str | os.PathLike | None = None) -> None:
    debug(msg, debug_path)
    if not silent():
        # messages quote run names, keys and paths: no escape sequence reaches the terminal
        print(f"nbtracker: {safe(msg)}", file=sys.stderr, flush=True)


_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029"
                     "\u202a-\u202e\u2066-\u2069]")


_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match) -> str:
    c = m.group()
    o = ord(c)
    return _SHORT.get(c) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")


def safe(text: Any) -> str:
    """`text` for a terminal: control characters written as escapes (`\\x1b`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, str(text))


def warn(msg: str, debug_path: str | os.PathLike | None = None) -> None:
    say(f"warning: {msg}", debug_path)


def debug(msg: str, debug_path: str | os.PathLike | None) -> None:
    if debug_path is None:
        return
    try:
        with open(debug_path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {msg}\n")
    except OSError:
        pass


# -- wandb.termlog / termwarn / termerror --------------------------------------------------------
_printed: set[str] = set()  # what was printed with repeat=False
_SGR = re.compile(r"\x1b\[[0-9;]*m")  # colours, which wandb's callers put in


def termlog(string: str = "", newline: bool = True, repeat: bool = True,
            prefix: bool = True) -> None:
    """Print a message to stderr as wandb's `termlog` does, with nbtracker's prefix.

    Args:
        string: the message (lines of it each get the prefix).
        newline: end with a newline.
        repeat: False prints it only if this exact message was not printed with
            repeat=False before.
        prefix: start each line with "nbtracker: ".

    Nothing is printed when silent (NBTRACKER_SILENT / WANDB_SILENT, `set_silent`). Control
    characters are shown as escapes, colours are dropped."""
    _term(str(string), newline, repeat, prefix)


def termwarn(string: str, newline: bool = True, repeat: bool = True,
             prefix: bool = True) -> None:
    """`termlog` with each line marked "WARNING"."""
    _term("\n".join(f"WARNING {s}" for s in str(string).split("\n")), newline, repeat, prefix)


def termerror(string: str, newline: bool = True, repeat: bool = True,
              prefix: bool = True) -> None:
    """`termlog` with each line marked "ERROR"."""
    _term("\n".join(f"ERROR {s}" for s in str(string).split("\n")), newline, repeat, prefix)


def _term(text: str, newline: bool, repeat: bool, prefix: bool) -> None:
    if not repeat:
        if text in _printed:
            return
        if len(_printed) < 1000:
            _printed.add(text)
    if silent():
        return
    lines = [safe(_SGR.sub("", line)) for line in text.split("\n")]
    out = "\n".join(f"nbtracker: {line}" if prefix else line for line in lines)
    print(out, file=sys.stderr, end="\n" if newline else "", flush=True)
