"""Keras 3 callbacks: `model.fit` logs to nbtracker, under any Keras backend.

>>> from nbtracker.integrations.keras import NbtrackerMetricsLogger
>>> model.fit(x, y, epochs=10, validation_split=0.2, callbacks=[NbtrackerMetricsLogger()])

What is logged (the keys of wandb's `WandbMetricsLogger`):

- at the end of every epoch: `epoch/<name>` for each value Keras reports (`epoch/loss`,
  `epoch/accuracy`, `epoch/val_loss`, ...), `epoch/epoch` (Keras's 0-based epoch index) and
  `epoch/learning_rate`; charted against `epoch/epoch`.
- with `log_freq="batch"` (or N): after every (N-th) training batch, `batch/<name>` (Keras's
  running means over the epoch), `batch/batch_step` (the 0-based index of the batch over the
  whole training) and `batch/learning_rate`; charted against `batch/batch_step`.

The learning rate is the optimizer's own (`model.optimizer.learning_rate`: a schedule is
evaluated at the optimizer's iteration count), as Keras's `LearningRateScheduler` reports it.
A run started with `nbtracker.init()` before `fit` is used; otherwise one is started when
training begins and finished when it ends (a `fit` that raises, or is stopped with Ctrl-C, leaves
it open: the next `fit` with a logger finishes it as `failed` or `interrupted`).

`NbtrackerModelCheckpoint` is Keras's `ModelCheckpoint` that also keeps each file it writes with
the run (`run.save(..., policy="now")`).
"""

from __future__ import annotations

import os
from typing import Any, Literal

try:
    import keras
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("nbtracker.integrations.keras needs Keras 3: pip install 'nbtracker[keras]'"
                      ) from e

import nbtracker

from ._attach import Attached

__all__ = ["NbtrackerMetricsLogger", "NbtrackerModelCheckpoint"]

LogStrategy = Literal["epoch", "batch"]


class NbtrackerMetricsLogger(keras.callbacks.Callback):
    """Log the metrics `model.fit` reports, and the learning rate, to the current run.

    Args:
        log_freq: "epoch" (default) logs at the end of each epoch; "batch" also after every
            training batch; an integer N also after every N-th batch (batches 0, N, 2N, ...
            counted over the whole training).
        initial_global_step: where `batch/batch_step` starts, for a training resumed with
            `fit(initial_epoch=...)`: the number of batches already trained. (Keras 3 evaluates a
            learning-rate schedule at the optimizer's restored iteration count, so the learning
            rate needs no offset.)

    >>> model.fit(x, y, epochs=5, callbacks=[NbtrackerMetricsLogger(log_freq=10)])
    """

    def __init__(self, log_freq: LogStrategy | int = "epoch", initial_global_step: int = 0,
                 *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if log_freq == "batch":
            log_freq = 1
        if log_freq != "epoch" and (isinstance(log_freq, bool) or not isinstance(log_freq, int)
                                    or log_freq < 1):
            raise ValueError(f"log_freq must be 'epoch', 'batch' or a positive integer, "
                             f"not {log_freq!r}")
        self.logging_batch_wise = log_freq != "epoch"
        self.log_freq: int | None = log_freq if self.logging_batch_wise else None  # type: ignore
        self.global_step = int(initial_global_step)  # index of the next training batch
        self._attached = Attached("NbtrackerMetricsLogger", "keras")
        self._run: Any = None
        if self.logging_batch_wise:
            # a batch hook only when batches are logged: with none, Keras need not wait for each
            # batch's metrics (it dispatches batch callbacks asynchronously, or not at all)
            self.on_train_batch_end = self._on_train_batch_end

    # -- Keras hooks ----------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        with self._attached.guard("starting the run"):
            # the params dict Keras gives the callbacks of one fit() stands for that fit
            self._run = self._attached.begin(training=getattr(self, "params", None))
            if self.logging_batch_wise:
                self._run.define_metric("batch/batch_step")
                self._run.define_metric("batch/*", step_metric="batch/batch_step")
            self._run.define_metric("epoch/epoch")
            self._run.define_metric("epoch/*", step_metric="epoch/epoch")

    def _on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        step = self.global_step
        self.global_step = step + 1
        if step % self.log_freq or self._run is None:  # type: ignore[operator]
            return
        try:
            row = {f"batch/{k}": v for k, v in logs.items()} if logs else {}
            row["batch/batch_step"] = step
            lr = self._learning_rate()
            if lr is not None:
                row["batch/learning_rate"] = lr
            self._run.log(row)
        except Exception as e:
            self._attached.failed("logging a batch", e)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self._run is None:
            return
        with self._attached.guard("logging an epoch"):
            row = {f"epoch/{k}": v for k, v in logs.items()} if logs else {}
            row["epoch/epoch"] = epoch
            lr = self._learning_rate()
            if lr is not None:
                row["epoch/learning_rate"] = lr
            self._run.log(row)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._run = None
        with self._attached.guard("finishing the run"):
            self._attached.end()

    # -- helpers --------------------------------------------------------------------------
    def _learning_rate(self) -> float | None:
        try:
            optimizer = self.model.optimizer
            lr = optimizer.learning_rate
            if callable(lr) and not hasattr(lr, "shape"):  # a schedule the optimizer did not apply
                lr = lr(optimizer.iterations)
            try:
                return float(lr)  # a 0-d variable or tensor of any backend, without a copy
            except TypeError:
                return float(keras.ops.convert_to_numpy(lr))
        except Exception as e:
            self._attached.failed("reading the learning rate", e)
            return None


class NbtrackerModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Keras's `ModelCheckpoint` (same arguments) that keeps every file it writes with the
    current run, copied at once (`run.save(path, policy="now")`, named by the file's name).

    >>> ckpt = NbtrackerModelCheckpoint("model-{epoch:02d}.keras", monitor="val_loss",
    ...                                 save_best_only=True)
    >>> model.fit(x, y, validation_split=0.2, callbacks=[NbtrackerMetricsLogger(), ckpt])
    """

    def __init__(self, filepath: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        super().__init__(filepath, *args, **kwargs)
        self._attached = Attached("NbtrackerModelCheckpoint")
        self._seen: dict[str, tuple[int, int]] = {}

    def _save_model(self, epoch: int, batch: int | None, logs: dict | None) -> None:
        path = None
        with self._attached.guard("naming the checkpoint"):
            path = os.path.abspath(self._get_file_path(epoch, batch, logs))
        super()._save_model(epoch, batch, logs)
        if path is None:
            return
        with self._attached.guard("saving the checkpoint with the run"):
            try:
                st = os.stat(path)
            except FileNotFoundError:  # save_best_only and not better: nothing written
                return
            stamp = (st.st_mtime_ns, st.st_size)
            if self._seen.get(path) == stamp:
                return
            run = nbtracker.run
            if run is None:
                raise RuntimeError("no run: call nbtracker.init() or add NbtrackerMetricsLogger "
                                   "before this callback")
            run.save(path, base_path=os.path.dirname(path), policy="now")
            self._seen[path] = stamp
