"""The body of `NbtrackerLogger`, shared by the `lightning` and `pytorch_lightning` packages.

`nbtracker.integrations.lightning` and `nbtracker.integrations.pytorch_lightning` each make the
logger a subclass of their package's `loggers.Logger`; everything else is here and imports no
framework at module level. Both packages keep the process rank in one place
(`lightning_utilities.core.rank_zero.rank_zero_only.rank`, set by the Trainer's strategy), so a
logger of either package finds the rank of either package's Trainer.

What the logger does, as Lightning's own `WandbLogger`:

- `experiment` is the nbtracker run, started on first use on global rank 0 (the active run when
  there is one: `nbtracker.init()` called before, which the logger then never finishes); other
  ranks get Lightning's dummy experiment and log nothing.
- `log_metrics(metrics, step)` logs the row at the Trainer's global step (`_step` is the global
  step in one fit; wandb's `_step` counts log calls, hence its `trainer/global_step` x-axis) with
  `trainer/global_step` in it as WandbLogger does. The calls Lightning makes at one step (train
  step, validation, epoch end) join one row. A value is never written over another: a call
  that would (a second `test()` at the same global step, a second `fit()`) and everything
  after it go on after the last row, as does a fit in a run that already has rows.
- `log_hyperparams` puts the hyperparameters in the run's config (Namespace or dict; callables
  by name, nested dicts kept nested, as WandbLogger; numbers, arrays and tensors as values, what
  the config cannot hold and arrays or tensors of more than 1000 elements as text).
- `log_image`, `log_table`, `log_text`, `log_audio`, `log_video`: media at `step`, else at the
  step of the last logged metrics (without a new row).
- `log_model`: checkpoint files copied into the run's files (`checkpoints/<file name>`, or
  `<checkpoint_name>/<file name>`): "all" each one as it is written, True the last, best and
  best-k ones when training ends (each one as written when `save_top_k == -1`), as wandb's
  artifacts; `summary["best_checkpoint"]` names the best one.
- `finalize(status)` finishes the run the logger started (`finished`, `failed`, `interrupted`
  after Ctrl-C). A later `trainer.test()` or `fit()` with the same logger continues that run.
  Fabric never calls `finalize()`: the run of a logger no Trainer drives ends when another
  logger starts a run (`finished`, `failed` after an uncaught exception), or at exit.

Nothing here raises into the training loop: what fails to log is one warning line.
"""

from __future__ import annotations

import glob
import importlib
import os
import shutil
import sys
import threading
import weakref
from argparse import Namespace
from collections.abc import Mapping
from numbers import Number
from pathlib import Path
from typing import Any

import nbtracker
from nbtracker.sdk import output

from ._attach import runs_lock, started_by, take

DEFAULT_PROJECT = "lightning_logs"  # what Lightning's WandbLogger uses without WANDB_PROJECT
EXTRA_HINT = "pip install 'nbtracker[lightning]' (or pip install lightning)"


def _rank() -> int:
    """The global rank Lightning's strategy set for this process (0 without one)."""
    mod = sys.modules.get("lightning_utilities.core.rank_zero")
    return getattr(mod.rank_zero_only, "rank", 0) or 0 if mod is not None else 0


def _distributed() -> bool:
    dist = sys.modules.get("torch.distributed")
    try:
        return bool(dist is not None and dist.is_available() and dist.is_initialized())
    except Exception:
        return False


def _media_list(kind: str, items: Any, kwargs: dict) -> list:
    """`kind(item, **{k: kwargs[k][i]})` for each item (WandbLogger's per-item lists)."""
    if not isinstance(items, list):
        raise TypeError(f"expected a list, not {type(items).__name__}")
    n = len(items)
    for k, v in kwargs.items():
        if len(v) != n:
            raise ValueError(f"{k} has {len(v)} items for {n} {kind.lower()}s")
    cls = getattr(nbtracker, kind)
    return [cls(item, **{k: kwargs[k][i] for k in kwargs}) for i, item in enumerate(items)]


def _same(a: Any, b: Any) -> bool:
    """The same number (numpy's too; NaN is NaN here) or string, or the same object: writing
    `b` over `a` loses nothing."""
    if a is b:
        return True
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, Number) and isinstance(b, Number):
        try:
            return bool(a == b or a != a and b != b)  # NaN over NaN
        except Exception:
            return False
    return False


LARGE = 1000  # elements: a larger array or tensor goes into the config as its printed text


def _large_as_text(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` with each array or tensor of more than `LARGE` elements (a pretrained embedding
    passed to `__init__`) as its text, summarised as numpy and torch print it, so the config
    stays small; nested dicts too."""
    out = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            v = _large_as_text(v)
        else:
            numel = getattr(v, "numel", None)
            try:
                n = numel() if callable(numel) else getattr(v, "size", None)
            except Exception:
                n = None
            if isinstance(n, int) and n > LARGE and hasattr(v, "tolist"):
                v = str(v)
        out[k] = v
    return out


def _joins(written: dict[str, Any] | None, row: dict[str, Any]) -> bool:
    """`row` can join the row where `written` was logged: no key gets another value."""
    if written is None:
        return False
    return all(k not in written or _same(written[k], v) for k, v in row.items())


def _last_exc() -> BaseException | None:
    # IPython (and the interactive interpreter) keep a cell's uncaught exception here
    return getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)


class _Unheard:
    """A run a logger started that may never hear of its end: Fabric calls no `finalize()`."""

    __slots__ = ("logger", "thread", "last_exc")

    def __init__(self, logger: Any):
        self.logger = weakref.ref(logger)
        self.thread = threading.get_ident()
        self.last_exc = _last_exc()  # the last uncaught exception when the run started


_unheard: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # run -> _Unheard


def _finish_unheard(new: Any) -> None:
    """Finish the runs other loggers started in this thread and no Trainer drives: a logger
    used with Fabric (or by hand) is never finalized, so its run would stay open, and current,
    until the process exits. A new logger starting a run ends it: `finished`, or `failed`
    (`interrupted` after Ctrl-C) when an exception is being handled or a cell raised one since
    the run started. A Trainer's logger ends its run in `finalize()`; until then (a Trainer in
    another's callback) it is in use and left alone."""
    me = threading.get_ident()
    for run, info in list(_unheard.items()):
        logger = info.logger()
        if logger is new or info.thread != me:
            continue
        if getattr(run, "state", None) != "running" or (logger is not None
                                                          and logger._by_trainer):
            _unheard.pop(run, None)
            continue
        exc = sys.exc_info()[1]
        if exc is None:
            last = _last_exc()
            exc = last if last is not info.last_exc else None
        _unheard.pop(run, None)
        try:
            if isinstance(exc, KeyboardInterrupt):
                run.__exit__(type(exc), exc, exc.__traceback__)
            else:
                run.finish(exit_code=1 if exc is not None else None)
        except Exception as e:
            output.warn(f"NbtrackerLogger could not finish the run {run.id}: {e}")


class LoggerCore:
    """Log a Lightning Trainer's metrics, hyperparameters, media and checkpoints to nbtracker.

    >>> from nbtracker.integrations.lightning import NbtrackerLogger
    >>> trainer = Trainer(logger=NbtrackerLogger(project="mnist"))

    Args:
        name: the run's display name.
        save_dir: a folder for the run (its store is `<save_dir>/nbtracker`, which the run
            index still finds); default: the nbtracker store (NBTRACKER_DIR).
        version: a run id: continue that run, or start one with that id (also `id=`).
        offline: never upload, even with a team server configured.
        dir: as `save_dir` (WandbLogger takes both).
        project: default NBTRACKER_PROJECT (or WANDB_PROJECT), else "lightning_logs".
        log_model: False (default), True (checkpoints when training ends) or "all" (each
            checkpoint as it is written), copied into the run's files.
        experiment: a run to log to instead of starting one.
        prefix: put before each metric name, joined with "-" (as WandbLogger).
        checkpoint_name: the folder checkpoints are saved under in the run (default
            "checkpoints").
        **kwargs: passed to `nbtracker.init` (group, tags, notes, config, job_type, mode...).
    """

    LOGGER_JOIN_CHAR = "-"
    _pl_name = "lightning.pytorch"  # the package the subclass is built on
    _fabric_name = "lightning.fabric"

    def __init__(self, name: str | None = None, save_dir: str | os.PathLike | None = None,
                 version: str | None = None, offline: bool = False,
                 dir: str | os.PathLike | None = None, id: str | None = None,
                 anonymous: bool | None = None, project: str | None = None,
                 log_model: bool | str = False, experiment: Any = None, prefix: str = "",
                 checkpoint_name: str | None = None, **kwargs: Any) -> None:
        super().__init__()
        kwargs.pop("add_file_policy", None)  # WandbLogger's artifact option: files are copies
        if log_model not in (True, False, "all"):
            output.warn(f"NbtrackerLogger(log_model={log_model!r}): use False, True or 'all'; "
                        "checkpoints are not saved")
            log_model = False
        folder = save_dir if save_dir is not None else dir
        self._save_dir = None if folder is None else os.fspath(folder)
        self._project = (project or os.environ.get("NBTRACKER_PROJECT")
                         or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT)
        self._name = name
        self._id = version or id
        self._offline = offline
        self._log_model = log_model
        self._prefix = prefix
        self._checkpoint_name = checkpoint_name
        self._init_kwargs = kwargs
        self._experiment = experiment
        self._owns = False  # the logger started the run: it finishes it
        self._by_trainer = False  # a Trainer drives it (so calls `finalize()`), not Fabric
        self._failed = False
        self._warned: set[str] = set()
        self._logged_model_time: dict[str, float] = {}
        self._checkpoint_callbacks: dict[int, Any] = {}

    # -- the run -----------------------------------------------------------------------
    @property
    def experiment(self) -> Any:
        """The nbtracker run on global rank 0 (Lightning's dummy experiment elsewhere):
        `self.logger.experiment.log({...})` in a LightningModule. Once `finalize()` has
        finished it, the finished run, until the logger logs again."""
        if _rank() > 0:
            return self._dummy()
        if self._experiment is not None:
            return self._experiment
        return self._begin()

    def _begin(self) -> Any:
        try:
            return self._start()
        except Exception as e:
            self._warn("init", f"NbtrackerLogger could not start a run ({e}); training goes on "
                       "without logging to nbtracker")
            self._failed = True
            self._experiment = self._dummy()
            return self._experiment

    def _start(self) -> Any:
        earlier = self._experiment
        if earlier is not None and not self._owns and not self._failed:
            current = nbtracker.run
            if current is None or started_by(current) is not None:
                # the user's run, finished by the user: what is logged is ignored (one
                # warning), until the user starts another run
                return earlier
        args: dict[str, Any] = {"project": self._project, "name": self._name}
        if self._save_dir is not None:
            args["dir"] = self._save_dir
        if self._offline:
            args["mode"] = "offline"
        if self._experiment is not None:  # our earlier run, finished by finalize(): continue it
            args.update(id=self._experiment.id, project=self._experiment.project,
                        resume="allow")
        elif self._id is not None:
            args.update(id=self._id, resume="allow")
        args.update(self._init_kwargs)
        # the user's run (logged to, never finished here), else a run of the logger's own,
        # beside another integration's run (Optuna's study run while this trains a trial);
        # Lightning finalizes its loggers whatever the way training ends: a run another
        # logger started and has not finished is in use
        with runs_lock:
            _finish_unheard(self)
            run, owns = take("lightning", training=self, hears_end=True, **args)
            self._experiment, self._owns = run, owns
            if owns and not getattr(run, "disabled", False):
                _unheard[run] = _Unheard(self)
        if owns:
            self._show(run)
        return run

    @staticmethod
    def _show(run: Any) -> None:
        """In a notebook, the live panel of the run the logger started, under the cell that
        trains (not from a process of a distributed job: its kernel socket is the parent's)."""
        if not output.in_notebook() or _distributed() or getattr(run, "disabled", False):
            return
        try:
            from IPython.display import display

            display(run)
        except Exception:  # a display that fails must not stop training; the run logs on
            pass

    def _dummy(self) -> Any:
        mod = importlib.import_module(f"{self._fabric_name}.loggers.logger")
        return mod._DummyExperiment()

    def _run(self) -> Any:
        """The run to log to, or None (another rank, or no run could be started). A run that
        has finished (`finalize()` after `fit()`) is continued: `trainer.test()` next."""
        if _rank() > 0 or self._failed:
            return None
        run = self._experiment
        if run is None or run.state != "running":
            run = self._begin()
        return None if self._failed else run

    def _warn(self, what: str, msg: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            output.warn(msg)

    def _fabric_util(self, name: str) -> Any:
        return getattr(importlib.import_module(f"{self._fabric_name}.utilities.logger"), name)

    # -- what Lightning calls ----------------------------------------------------------
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any,
                        **kwargs: Any) -> None:
        """Hyperparameters (a dict or argparse Namespace) into the run's config."""
        run = self._run()
        if run is None:
            return
        try:
            params = self._fabric_util("_convert_params")(params)
            params = _large_as_text(self._fabric_util("_sanitize_callable_params")(params))
            # numbers, arrays and tensors as values (config.update takes them); as text only
            # what it cannot take
            try:
                run.config.update(params, allow_val_change=True)
            except Exception:
                text = self._fabric_util("_convert_json_serializable")
                for k, v in params.items():
                    try:
                        run.config.update({k: v}, allow_val_change=True)
                    except Exception:
                        run.config.update(text({k: v}), allow_val_change=True)
        except Exception as e:
            self._warn("hparams", f"NbtrackerLogger could not log the hyperparameters: {e}")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """One row at the Trainer's global step `step` (with `trainer/global_step`), or after
        the last row when that would write a value over one already logged (see `_target`)."""
        run = self._run()
        if run is None:
            return
        if self._prefix:
            metrics = self._fabric_util("_add_prefix")(metrics, self._prefix,
                                                        self.LOGGER_JOIN_CHAR)
        try:
            row = dict(metrics)
            if step is not None:
                row["trainer/global_step"] = step
            run.log(row, step=self._target(run, row, step))
        except Exception as e:
            self._warn("log", f"NbtrackerLogger could not log metrics at step {step}: {e}")

    # the steps the logger wrote: the run's id, the last step, what was written at it, the
    # offset from the trainer's global step to `_step`
    _steps_of: str | None = None
    _last: int | None = None
    _at_last: dict[str, Any] | None = None  # None: the run's own row, what it holds unknown
    _offset = 0

    def _target(self, run: Any, row: dict[str, Any], step: int | None) -> int:
        """The `_step` for a row of the trainer's global step `step` (None: the last row).

        One fit: the global step itself; the calls Lightning makes at one step join its row.
        A value never goes over one logged before and `_step` never goes back: a second
        `test()` or `validate()` at the same global step, a second `fit()`, a resumed
        checkpoint, a run that already had rows (the user's, a resumed one) continue after
        the last row (`trainer/global_step` keeps the trainer's step)."""
        if self._steps_of != run.id:  # the first row in this run
            self._steps_of, self._offset, self._at_last = run.id, 0, {}
            self._last = None
            if getattr(run, "steps", 0):  # rows from before: go on after the run's last row
                # `log()` with nothing completes the row at the current step, if it holds
                # one (a row logged with `step=` leaves the current step at it): every row
                # is then below `run.step`
                run.log()
                self._last, self._at_last = run.step - 1, None
        last, at_last = self._last, self._at_last
        if step is None:  # media without a step: into the last row
            target = run.step if last is None else max(last, run.step)
        else:
            target = step + self._offset
        moved = target
        if last is not None and (target < last or target == last and not _joins(at_last, row)):
            moved = last + 1
        # never below the run's current step (a resumed run's, or after the user's own
        # `log()`): the row would be a late one
        moved = max(moved, run.step)
        if moved != target:
            if step is not None:
                self._offset += moved - target
            target = moved
        if target != last:
            self._last, self._at_last = target, dict(row)
        else:
            at_last.update(row)
        return target

    def log_table(self, key: str, columns: list[str] | None = None,
                  data: list[list[Any]] | None = None, dataframe: Any = None,
                  step: int | None = None) -> None:
        """A table (`columns` and `data`, or a pandas `dataframe`); cells may be media."""
        if self._run() is None:
            return
        self.log_metrics({key: nbtracker.Table(columns=columns, data=data, dataframe=dataframe)},
                         step)

    def log_text(self, key: str, columns: list[str] | None = None,
                 data: list[list[str]] | None = None, dataframe: Any = None,
                 step: int | None = None) -> None:
        """Text, as a table (WandbLogger's `log_text`)."""
        self.log_table(key, columns, data, dataframe, step)

    def log_image(self, key: str, images: list[Any], step: int | None = None,
                  **kwargs: Any) -> None:
        """Images (tensors, numpy arrays, PIL images, file paths); each keyword is a list
        with one entry per image (`caption=[...]`, `masks=[...]`, `boxes=[...]`)."""
        self._log_media("Image", key, images, step, kwargs)

    def log_audio(self, key: str, audios: list[Any], step: int | None = None,
                  **kwargs: Any) -> None:
        """Audio clips (numpy arrays or file paths); keywords are per-clip lists."""
        self._log_media("Audio", key, audios, step, kwargs)

    def log_video(self, key: str, videos: list[Any], step: int | None = None,
                  **kwargs: Any) -> None:
        """Videos (numpy arrays or file paths); keywords are per-video lists."""
        self._log_media("Video", key, videos, step, kwargs)

    def _log_media(self, kind: str, key: str, items: Any, step: int | None,
                   kwargs: dict) -> None:
        if self._run() is None:
            return
        try:
            media = _media_list(kind, items, kwargs)
        except (TypeError, ValueError) as e:
            self._warn(f"media:{key}", f"NbtrackerLogger.log_{kind.lower()}({key!r}): {e}; "
                       "not logged")
            return
        self.log_metrics({key: media}, step)

    def watch(self, model: Any, log: str | None = "gradients", log_freq: int = 100,
              log_graph: bool = False) -> None:
        """Histograms of the model's gradients and/or parameters (`log="all"`) every
        `log_freq` passes, as `nbtracker.watch`."""
        run = self._run()
        if run is not None:
            run.watch(model, log=log, log_freq=log_freq, log_graph=log_graph)

    # -- checkpoints ---------------------------------------------------------------------
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        if not self._log_model or _rank() > 0:
            return
        if self._log_model == "all" or getattr(checkpoint_callback, "save_top_k", None) == -1:
            self._save_checkpoints(checkpoint_callback)
        else:
            self._checkpoint_callbacks[id(checkpoint_callback)] = checkpoint_callback

    def _save_checkpoints(self, checkpoint_callback: Any) -> None:
        run = self._run()
        if run is None or getattr(run, "disabled", False):
            return
        try:
            utils = importlib.import_module(f"{self._pl_name}.loggers.utilities")
            found = utils._scan_checkpoints(checkpoint_callback, self._logged_model_time)
            folder = self._checkpoint_name or "checkpoints"
            best = getattr(checkpoint_callback, "best_model_path", None)
            for t, path, _score, _tag in found:
                name = f"{folder}/{Path(path).name}"
                # a copy in the run's files folder, under its name there, recorded now
                dst = Path(run.dir) / name
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.name}.tmp")
                shutil.copyfile(path, tmp)
                os.replace(tmp, dst)
                run.save(glob.escape(str(dst)), base_path=run.dir, policy="now")
                self._logged_model_time[path] = t
                if path == best:
                    run.summary["best_checkpoint"] = name
        except Exception as e:
            self._warn("checkpoint", f"NbtrackerLogger could not save a checkpoint: {e}")

    # -- the end -----------------------------------------------------------------------
    def save(self) -> None:
        """The Trainer calls this after each call it makes (Fabric never does): the logger is
        a Trainer's, whose run ends in `finalize()`."""
        self._by_trainer = True

    def finalize(self, status: str) -> None:
        if _rank() > 0:
            return
        run = self._experiment
        if run is None or self._failed:
            return
        if status == "success":
            for cb in self._checkpoint_callbacks.values():
                self._save_checkpoints(cb)
        if not self._owns or run.state != "running":
            return
        exc = sys.exc_info()[1]
        try:
            if status in ("success", "finished"):
                run.finish()
            elif isinstance(exc, BaseException):  # the run ends as a `with` block would:
                run.__exit__(type(exc), exc, exc.__traceback__)  # interrupted on Ctrl-C
            else:
                run.finish(exit_code=1)
        except Exception as e:
            self._warn("finish", f"NbtrackerLogger could not finish the run: {e}")

    # -- what the Trainer asks ---------------------------------------------------------
    @property
    def name(self) -> str | None:
        """The project (as WandbLogger's `name`; the run's name is `experiment.name`)."""
        run = self._experiment
        return run.project if run is not None and not self._failed else self._project

    @property
    def version(self) -> str | None:
        """The run's id (the id given to the constructor before the run starts)."""
        run = self._experiment
        return run.id if run is not None and not self._failed else self._id

    @property
    def save_dir(self) -> str | None:
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        """The run's folder in the store (its record log, media and files)."""
        run = self._experiment
        return getattr(run, "storage_dir", None) if run is not None and not self._failed else None

    def __getstate__(self) -> dict[str, Any]:
        # a spawned process (ddp_spawn) gets the settings, not this process's run (a run has
        # one writing process): its rank 0 starts a run of its own
        state = self.__dict__.copy()
        state["_experiment"], state["_owns"], state["_failed"] = None, False, False
        return state
