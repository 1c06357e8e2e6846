"""Process exit: runs still open when the interpreter exits are finished — `failed` after an
uncaught exception, `interrupted` after Ctrl-C, `finished` otherwise; in a notebook kernel that
shuts down (a restart), `crashed`. A process that is killed leaves its runs `running` in the
log; readers see them as `crashed` (see store.lock)."""

from __future__ import annotations

import atexit
import sys

from .output import in_notebook

_installed = False
_uncaught: type | None = None


def install(active_runs) -> None:
    global _installed
    if _installed:
        return
    _installed = True
    previous = sys.excepthook

    def excepthook(tp, value, tb):
        global _uncaught
        _uncaught = tp
        previous(tp, value, tb)

    sys.excepthook = excepthook

    def at_exit():
        if in_notebook():
            # a notebook kernel that shuts down (restart, or closing the notebook) leaves its
            # unfinished runs behind: they did not end, so they are crashed, not finished
            state, code = "crashed", None
        elif _uncaught is None:
            state, code = "finished", None
        elif issubclass(_uncaught, KeyboardInterrupt):
            state, code = "interrupted", 255
        else:
            state, code = "failed", 1
        for run in list(reversed(active_runs())):
            try:
                run._finish(state, code)
            except Exception:
                pass

    atexit.register(at_exit)
