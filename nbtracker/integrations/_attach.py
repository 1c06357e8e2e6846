"""The run a framework integration logs to, and the rule that a callback never stops training.

Which run (`take`): the current run when the user started it (`nbtracker.init()` before
training). A run an integration starts is marked (`mark`: the integration, the training that
started it, whether that training reached its end), and is never taken for the user's:

- a run the same integration started for a training that is over (it reached its end and the
  run was left open, as the transformers callback leaves it for `evaluate()`; or it never
  reached its end: the framework calls no end hook when training raises) is finished first:
  `finished`, or `failed` (`interrupted` after Ctrl-C, when that can be known), and the new
  training gets a run of its own;
- a run of another integration (Optuna's study run while a Trainer trains in the objective)
  stays: the training gets a run of its own beside it, finished at the training's end, and the
  other run is current again.

A run whose training never reached its end is finished by a later training of the same
integration in the same thread, or in any thread once the thread that started it is gone (a
study's trials with n_jobs > 1 train in threads of their own), and at the latest when the process
exits: `failed` (`interrupted` after Ctrl-C), never `finished`. A run's entry goes when it finishes;
no entry holds an exception (its frames would keep a training's objects alive).

Every call from the framework goes through `Attached.guard`: an exception in our code becomes
one warning line per kind of failure and training goes on.
"""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import nbtracker
from nbtracker.sdk import output


class _Started:
    """What `mark` knows of a run an integration started."""

    __slots__ = ("integration", "_training", "ended", "hears_end", "last_exc", "_thread")

    def __init__(self, integration: str, training: Any, ended: bool, hears_end: bool):
        self.integration = integration
        self._training = _ref(training)
        self.ended = ended  # its training reached its end (the run may still be open)
        self.hears_end = hears_end  # the integration is told of every end, failures included
        # which exception a cell last did not catch when the run started: its id only (the
        # exception's frames would keep the training's objects, and this run, alive)
        self.last_exc = _exc_id(_last_exc())
        # trainings in other threads may still go on
        self._thread = weakref.ref(threading.current_thread())

    def in_this_thread(self) -> bool:
        return self._thread() is threading.current_thread()

    def thread_gone(self) -> bool:
        thread = self._thread()
        return thread is None or not thread.is_alive()

    def same_training(self, training: Any) -> bool:
        return training is not None and self._training is not None \
            and self._training() is training


_started: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # run -> _Started
# taken while a run is chosen and started or finished: trainings in threads (a study's trials
# with n_jobs > 1) must not both find no run and start one, nor take each other's for the user's
runs_lock = threading.RLock()


def _ref(obj: Any) -> Callable[[], Any] | None:
    """A weak reference to `obj` where it takes one (a strong one otherwise), None for None."""
    if obj is None:
        return None
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _exc_id(exc: BaseException | None) -> tuple[int, str] | None:
    return None if exc is None else (id(exc), type(exc).__name__)


def _last_exc() -> BaseException | None:
    # IPython (and the interactive interpreter) keep a cell's uncaught exception here
    return getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)


def mark(run: Any, integration: str, training: Any = None, ended: bool = False,
         hears_end: bool = False) -> None:
    """Record that `integration` started `run` for `training` (an object standing for it, e.g.
    the framework's per-training state; None: unknown). `ended`: the training is already over
    (the run only waits to be finished); `hears_end`: the integration is told when its
    training ends, even by an exception, so an unfinished run of it is in use."""
    with runs_lock:
        _forget_finished()
        try:
            _started[run] = _Started(integration, training, ended, hears_end)
        except TypeError:  # a run that takes no weak reference: not one of nbtracker's
            return
        _install_at_exit()
        add_hook = getattr(run, "add_finish_hook", None)
        if add_hook is not None:
            add_hook(_forget)


def _info(run: Any) -> _Started | None:
    if run is None:
        return None
    with runs_lock:
        try:
            return _started.get(run)
        except TypeError:
            return None


def started_by(run: Any) -> str | None:
    """The integration that started `run`, None for a run of the user's."""
    info = _info(run)
    return info.integration if info is not None else None


def set_ended(run: Any) -> None:
    """The training `run` was started for has reached its end (the run may stay open)."""
    info = _info(run)
    if info is not None:
        info.ended = True


def has_ended(run: Any) -> bool:
    info = _info(run)
    return info is None or info.ended


def _forget(run: Any) -> None:
    """A run finished: its entry goes (left for the next `mark`/`take` when another thread
    holds the registry now: a finishing thread never waits for it)."""
    if runs_lock.acquire(blocking=False):
        try:
            _started.pop(run, None)
        finally:
            runs_lock.release()


def _forget_finished() -> None:
    for run in [run for run in list(_started.keys()) if not _running(run)]:
        _started.pop(run, None)


_at_exit_installed = False


def _install_at_exit() -> None:
    # registered once a run is marked, so after the SDK's own exit hook (installed by the
    # first nbtracker.init()): atexit calls it first
    global _at_exit_installed
    if not _at_exit_installed:
        _at_exit_installed = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    """Runs whose training never reached its end are `failed` at exit, not `finished` (after
    Ctrl-C the SDK's own exit hook says `interrupted`)."""
    from nbtracker.sdk import hooks

    uncaught = getattr(hooks, "_uncaught", None)
    if uncaught is not None and issubclass(uncaught, KeyboardInterrupt):
        return
    with runs_lock:
        for run, info in list(_started.items()):
            if info.ended or info.hears_end or not _running(run):
                continue
            try:
                last = _last_exc()
                if isinstance(last, KeyboardInterrupt) and _exc_id(last) != info.last_exc \
                        and hasattr(run, "__exit__"):
                    run.__exit__(type(last), last, None)
                else:
                    run.finish(exit_code=1)
            except Exception:  # the SDK's exit hook still finishes it
                pass


def _running(run: Any) -> bool:
    return run is not None and getattr(run, "state", "running") == "running"


def _finish_over(integration: str, training: Any) -> None:
    """Finish the runs `integration` started for trainings that are over (see the module
    docstring): `finished` when the training reached its end, else `failed`, or `interrupted`
    when the exception being handled now, or the last one a cell did not catch since the run
    started, is a KeyboardInterrupt. (A training in another thread that is still alive, a trial
    of a study run with n_jobs > 1, may still be going on: its run is left alone.)"""
    _forget_finished()
    for run, info in list(_started.items()):
        if info.integration != integration or not _running(run):
            continue
        here = info.in_this_thread()
        if not here and not info.thread_gone():
            continue
        if info.ended:
            run.finish()
        elif not info.hears_end and not info.same_training(training):
            exc = sys.exc_info()[1] if here else None
            if exc is None:
                last = _last_exc()
                exc = last if _exc_id(last) != info.last_exc else None
            if isinstance(exc, KeyboardInterrupt) and hasattr(run, "__exit__"):
                run.__exit__(type(exc), exc, None)
            else:
                run.finish(exit_code=1)


def take(integration: str, training: Any = None, adopt: bool = True, ended: bool = False,
         hears_end: bool = False, finish_over: bool = True,
         **init_kwargs: Any) -> tuple[Any, bool]:
    """The run a training of `integration` logs to, and whether it was started for it (so is
    finished by it): the user's current run (unless `adopt` is false), the current run another
    callback of the same integration started for this very `training`, else a new run
    (`nbtracker.init(**init_kwargs)`), beside the current run when there is one. Runs of
    `integration` whose training is over are finished first (unless `finish_over` is false).
    `ended` and `hears_end` are `mark`'s, for the new run."""
    with runs_lock:
        if finish_over:
            _finish_over(integration, training)
        current = nbtracker.run
        if not _running(current):
            current = None
        if current is not None and adopt:
            info = _info(current)
            if info is None or (info.integration == integration
                                and info.same_training(training)):
                return current, False
        kw = dict(init_kwargs)
        if current is not None:  # a run of its own beside it; the other is current again after
            kw["reinit"] = "create_new"
        run = nbtracker.init(**kw)
        mark(run, integration, training, ended=ended, hears_end=hears_end)
        return run, True


class Attached:
    """The run one callback logs to, while training runs."""

    def __init__(self, integration: str, kind: str | None = None):
        self.integration = integration  # the name in warnings
        self.kind = kind or integration  # the name in `take`: one per framework
        self.run: Any = None
        self.owned = False  # started by the callback, so finished by it
        self._warned: set[str] = set()

    def begin(self, training: Any = None, ended: bool = False, **init_kwargs: Any) -> Any:
        """The run for this training (see `take`), started (and shown in a notebook) when
        needed."""
        self.run, self.owned = take(self.kind, training=training, ended=ended, **init_kwargs)
        if self.owned:
            _show_in_notebook(self.run)
        return self.run

    def end(self) -> None:
        """The training reached its end: finish the run if the callback started it; forget it
        either way."""
        run, owned = self.run, self.owned
        self.run, self.owned = None, False
        set_ended(run)
        if owned and run is not None:
            with runs_lock:
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
        return Attached(self.integration, self.kind)

    def __getstate__(self) -> dict:
        return {"integration": self.integration, "kind": self.kind}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["integration"], state.get("kind"))


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
