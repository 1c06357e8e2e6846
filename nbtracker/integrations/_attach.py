"""The run a framework callback logs to, and the rule that a callback never stops training.

A callback uses the run the user started (`nbtracker.init()` before training); without one it
starts a run when training begins (project from NBTRACKER_PROJECT, else nbtracker's default),
shows its live panel when that happens in a notebook, and finishes it when training ends.
Every call from the framework goes through `Attached.guard`: an exception in our code becomes
one warning line per kind of failure and training goes on.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import nbtracker
from nbtracker.sdk import output


class Attached:
    """The run one callback logs to, while training runs."""

    def __init__(self, integration: str):
        self.integration = integration
        self.run: Any = None
        self.owned = False  # started by the callback, so finished by it
        self._warned: set[str] = set()

    def begin(self, **init_kwargs: Any) -> Any:
        """The current run, or a new one when there is none (or it has finished)."""
        run = nbtracker.run
        if run is not None and getattr(run, "state", "running") == "running":
            self.run, self.owned = run, False
            return run
        self.run, self.owned = nbtracker.init(**init_kwargs), True
        _show_in_notebook(self.run)
        return self.run

    def end(self) -> None:
        """Finish the run if the callback started it; forget it either way."""
        run, owned = self.run, self.owned
        self.run, self.owned = None, False
        if owned and run is not None:
            run.finish()

    @contextlib.contextmanager
    def guard(self, what: str) -> Iterator[None]:
        """Report an exception raised inside (once per `what`) instead of raising it."""
        try:
            yield
        except Exception as e:
            self.failed(what, e)

    def failed(self, what: str, e: Exception) -> None:
        """One warning line per kind of failure (hot paths catch and call this themselves)."""
        if what not in self._warned:
            self._warned.add(what)
            output.warn(f"{self.integration}: {what} failed and was skipped, training goes "
                        f"on: {type(e).__name__}: {e}")

    def __deepcopy__(self, memo: dict) -> Attached:
        # frameworks copy their callbacks (sklearn's clone, xgboost's estimators): a copy gets
        # no run of its own until its training begins
        return Attached(self.integration)

    def __getstate__(self) -> dict:
        return {"integration": self.integration}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["integration"])


def _show_in_notebook(run: Any) -> None:
    """A run the callback started in a notebook shows its live panel, as `run` in a cell does."""
    if "ipykernel" not in sys.modules or getattr(run, "disabled", False):
        return
    try:
        from IPython import get_ipython
        from IPython.display import display

        shell = get_ipython()
        if shell is not None and getattr(shell, "kernel", None) is not None:
            display(run)
    except Exception:  # a display problem never stops training
        pass
