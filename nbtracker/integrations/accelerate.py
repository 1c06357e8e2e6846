"""Hugging Face accelerate: an experiment tracker for `Accelerator(log_with=...)`.

>>> from nbtracker.integrations.accelerate import NbtrackerTracker
>>> accelerator = Accelerator(log_with=NbtrackerTracker("my-project", name="baseline"))
>>> accelerator.init_trackers("my-project", config={"lr": 1e-3})
>>> accelerator.log({"loss": loss}, step=step)
>>> accelerator.end_training()

Importing this module also registers the tracker under the name "nbtracker" where accelerate
allows it (`accelerate.tracking.register_tracker_class`, accelerate >= 1.11), so that
`Accelerator(log_with="nbtracker")` works as `log_with="wandb"` does: `init_trackers(project,
config, init_kwargs={"nbtracker": {...}})` then names the project and passes the rest to
`nbtracker.init()`.

As accelerate's `WandBTracker`: `init_trackers`' config becomes the run's config,
`accelerator.log(values, step)` logs a row (at `step` when given), `log_images` and `log_table`
log `nbtracker.Image` lists and `nbtracker.Table`s, `get_tracker("nbtracker", unwrap=True)` is
the run, and `end_training()` finishes it (a training that raises before `end_training()` leaves
it open: the next `init_trackers`, on this Accelerator or another, finishes it as `failed` or
`interrupted`, and starts a run of its own). An active run
(`nbtracker.init()` called before) is used and left open. Only the main process records. A
tracker that cannot record, or whose run was finished before `end_training()`, prints one
warning line and the training goes on.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    from accelerate.tracking import GeneralTracker, on_main_process
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("nbtracker.integrations.accelerate needs the accelerate package: "
                      "pip install 'nbtracker[accelerate]'") from e

import nbtracker
from nbtracker.sdk import output

from ._attach import has_ended, runs_lock, set_ended, started_by, take

__all__ = ["NbtrackerTracker"]


class NbtrackerTracker(GeneralTracker):
    """An accelerate tracker that records into an nbtracker run.

    Args:
        run_name: the project, as accelerate's `WandBTracker` takes its first argument (with
            `log_with="nbtracker"`, accelerate passes `init_trackers`' project name here).
            Default: NBTRACKER_PROJECT, else nbtracker's default project.
        **init_kwargs: more `nbtracker.init()` arguments (`name`, `config`, `tags`, `group`,
            `project`...).

    >>> accelerator = Accelerator(log_with=NbtrackerTracker("mnist", name="baseline"))
    """

    name = "nbtracker"
    requires_logging_directory = False
    main_process_only = True

    def __init__(self, run_name: str | None = None, **init_kwargs: Any):
        super().__init__()
        self.run_name = run_name
        self.init_kwargs = init_kwargs
        self.run: Any = None
        self._own = False
        self._call: int | None = None  # which init_trackers() started the run (see start)
        # the run is another tracker's of the same Accelerator (a later init_trackers() adds
        # trackers beside the earlier ones): that one records, so rows are not logged twice
        self._follows = False
        self._warned: set[str] = set()

    def _failed(self, what: str, e: Exception) -> None:
        if what not in self._warned:
            self._warned.add(what)
            output.warn(f"the accelerate tracker could not {what} ({type(e).__name__}: {e}); "
                        "training goes on without it")

    def _ok(self) -> bool:
        return self.run is not None and self.run.state == "running"

    def _logging(self) -> bool:
        """Whether to log: a run to log to, still running (else one warning line)."""
        if self._follows:
            return False
        if self.run is not None and self.run.state != "running":
            self._failed("log", RuntimeError(f"the run {self.run.name} was finished before "
                                             "end_training()"))
        return self._ok()

    @on_main_process
    def start(self) -> None:
        """Start the run (accelerate calls it from `init_trackers`, for every tracker the
        Accelerator has, the earlier calls' included). A later `init_trackers()` on the same
        Accelerator without `end_training()` is a new training: the run this tracker started
        for the earlier one ends (`failed`: its loop never reached `end_training()`) and the new
        training gets its own."""
        try:
            accelerator = _accelerator()
            # each init_trackers() appends its trackers: their number tells the calls apart
            call = len(getattr(accelerator, "trackers", None) or ()) if accelerator else None
            if self._ok():
                if not self._own or call is None or call == self._call:
                    return  # the user's run, or this same init_trackers() call
                with runs_lock:
                    if not has_ended(self.run):
                        self.run.finish(exit_code=1)
                    elif self._ok():
                        self.run.finish()
            kw = dict(self.init_kwargs)
            kw.setdefault("project", self.run_name)
            self.run, self._own = take("accelerate", training=accelerator, **kw)
            self._call = call
            self._follows = not self._own and started_by(self.run) == "accelerate"
        except Exception as e:
            self._failed("start a run", e)

    @property
    def tracker(self) -> Any:
        """The nbtracker run."""
        return self.run

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        """Keep `values` (`init_trackers`' config) as the run's config."""
        if not self._ok() or self._follows:
            return
        try:
            self.run.config.update(values, allow_val_change=True)
        except Exception as e:
            self._failed("store the configuration", e)

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        """Log a row of values, at `step` when given (see `Run.log`)."""
        if not self._logging():
            return
        try:
            self.run.log(values, step=step, **kwargs)
        except Exception as e:
            self._failed("log", e)

    @on_main_process
    def log_images(self, values: dict, step: int | None = None, **kwargs: Any) -> None:
        """Log `{key: [image, ...]}` (numpy arrays or PIL images) as lists of images."""
        if not self._logging():
            return
        try:
            for k, v in values.items():
                self.run.log({k: [nbtracker.Image(image) for image in v]}, step=step, **kwargs)
        except Exception as e:
            self._failed("log images", e)

    @on_main_process
    def log_table(self, table_name: str, columns: list[str] | None = None,
                  data: list[list[Any]] | None = None, dataframe: Any = None,
                  step: int | None = None, **kwargs: Any) -> None:
        """Log a table, from `columns` and `data` or from a `dataframe`."""
        if not self._logging():
            return
        try:
            table = nbtracker.Table(columns=columns, data=data, dataframe=dataframe)
            self.run.log({table_name: table}, step=step, **kwargs)
        except Exception as e:
            self._failed("log a table", e)

    @on_main_process
    def finish(self) -> None:
        """Finish the run if this tracker started it (accelerate calls it from
        `end_training`)."""
        try:
            set_ended(self.run)
            if self._own and self._ok():
                self.run.finish()
        except Exception as e:
            self._failed("finish the run", e)


def _accelerator() -> Any:
    """The Accelerator whose `init_trackers` starts this tracker (None when not found): the
    trackers of one Accelerator share a run, an earlier Accelerator's run left open is over."""
    f = sys._getframe(1)
    for _ in range(6):
        if f is None:
            break
        if f.f_code.co_name == "init_trackers":
            return f.f_locals.get("self")
        f = f.f_back
    return None


def _register() -> None:
    """`Accelerator(log_with="nbtracker")`, where accelerate lets a tracker be named."""
    from accelerate import tracking

    register = getattr(tracking, "register_tracker_class", None)
    if register is not None and getattr(tracking, "LOGGER_TYPE_TO_CLASS", {}).get("nbtracker") \
            is not NbtrackerTracker:
        register(NbtrackerTracker)


_register()
