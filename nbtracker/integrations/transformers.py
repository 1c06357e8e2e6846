"""Hugging Face transformers: a `TrainerCallback` that records a `Trainer` run.

>>> from nbtracker.integrations.transformers import NbtrackerCallback
>>> trainer = Trainer(model, args, train_dataset=ds, callbacks=[NbtrackerCallback()])

What is recorded, as transformers' own `WandbCallback` records it:

- every `Trainer.log` (each entry of `trainer.state.log_history`) is one history row, its keys
  renamed as wandb's `rewrite_logs` does (`loss` -> `train/loss`, `eval_loss` -> `eval/loss`,
  `test_loss` -> `test/loss` from `predict()`), with `train/global_step` (the trainer's step) and
  `train/epoch`; `define_metric("train/*", step_metric="train/global_step")` (and `eval/*`,
  `test/*`) makes the global step their charts' x-axis. A row per log, not per step: the
  Trainer logs some keys twice at one step (an end-of-epoch evaluation, then `evaluate()`
  after `train()`) and both values are kept;
- `train_runtime`, `train_samples_per_second`, `train_steps_per_second`, `train_loss`,
  `total_flos` (logged once, at the end of training) go to the summary;
- config: the model's config, then `TrainingArguments.to_dict()` over it, `model/num_parameters`,
  and in a hyperparameter search the trial's parameters.

The run: an active run of the user's (`nbtracker.init()` called before) is used and left open.
Otherwise one is started at `train()` (or at the first log, for `evaluate()` alone) in the project
NBTRACKER_PROJECT (else "huggingface"), named `args.run_name` (beside the run of another
integration, such as Optuna's study run while the Trainer trains in the objective), and like wandb's
it stays open after `train()` so that `evaluate()` and `predict()` land in it: it is finished by
`nbtracker.finish()`, by the `train()` of another Trainer, or when the process exits. A `train()`
that raises (or is stopped with Ctrl-C) leaves it open: the next `train()` finishes it as `failed`
(`interrupted`); an `evaluate()` or `predict()` after it finishes it as `failed` and logs to the
user's current run, else to a run of its own. A run finished by someone else during training gets
nothing more from that training (one warning line). `Trainer.hyperparameter_search` gives one run
per trial (grouped under `args.run_name` or the output folder), finished when the trial has been
evaluated, beside a run of the user's own (current again after the search). Only the main process
(`state.is_world_process_zero`) records.

Environment (the `WANDB_` names are read when the `NBTRACKER_` ones are unset):

- NBTRACKER_LOG_MODEL=end: the final model's files (`save_pretrained`) are kept with the run
  under `model/`; =checkpoint: each checkpoint folder as it is written, under
  `checkpoint-<step>/`. Read them back with `Api().run(path).files()`.
- NBTRACKER_WATCH=gradients|parameters|all: histograms through `run.watch(model, ...)`, every
  max(100, logging_steps) steps, as wandb does.

A callback that cannot record (a store that cannot be written, say) prints one warning line and
the training goes on.
"""

from __future__ import annotations

import os
import sys
import tempfile
from typing import Any

try:
    from transformers import TrainerCallback
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("nbtracker.integrations.transformers needs the transformers package: "
                      "pip install 'nbtracker[transformers]'") from e

from nbtracker.sdk import output

from ._attach import has_ended, mark, runs_lock, set_ended, take

__all__ = ["NbtrackerCallback", "rewrite_logs"]

# logged once, at the end of training: summary values, not history (as WandbCallback)
SUMMARY_KEYS = frozenset(("train_runtime", "train_samples_per_second", "train_steps_per_second",
                          "train_loss", "total_flos"))
LOG_MODEL = ("end", "checkpoint")
WATCH = ("gradients", "parameters", "all")
DEFAULT_PROJECT = "huggingface"
PREFIXES = ("train/", "eval/", "test/")


def rewrite_logs(logs: dict) -> dict:
    """Trainer log keys as wandb's callback names them: `eval_x` -> `eval/x`, `test_x` ->
    `test/x`, anything else -> `train/x`."""
    out = {}
    for k, v in logs.items():
        if k.startswith("eval_"):
            out["eval/" + k[5:]] = v
        elif k.startswith("test_"):
            out["test/" + k[5:]] = v
        else:
            out["train/" + k] = v
    return out


def _env(name: str) -> str | None:
    v = os.environ.get(f"NBTRACKER_{name}")
    if v is None:
        v = os.environ.get(f"WANDB_{name}")
    return v.strip() if v and v.strip() else None


def _in_notebook() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython

        return getattr(get_ipython(), "kernel", None) is not None
    except Exception:
        return False


class NbtrackerCallback(TrainerCallback):
    """Records a `Trainer` run in nbtracker (see the module docstring for what and where).

    Args:
        project: the project of a run the callback starts (default: NBTRACKER_PROJECT, else
            "huggingface").
        **init_kwargs: more `nbtracker.init()` arguments for a run the callback starts
            (`tags`, `notes`, `group`, `name`, `dir`...); `name` defaults to `args.run_name`.

    >>> trainer = Trainer(..., args=TrainingArguments(..., report_to="none"),
    ...                   callbacks=[NbtrackerCallback()])
    >>> trainer.train(); trainer.evaluate()
    >>> nbtracker.finish()
    """

    def __init__(self, project: str | None = None, **init_kwargs: Any):
        self._project = project
        self._init_kwargs = init_kwargs
        self._run: Any = None
        self._own = False  # the callback started the run, so finishes it
        self._off = False  # starting a run failed: nothing more until the next train()
        self._training = False  # between on_train_begin and on_train_end
        self._evaluated = False  # an evaluation during this training
        self._trial_waits = False  # a trial's run waits for the evaluation after train()
        self._warned: set[str] = set()
        mode = (_env("LOG_MODEL") or "false").lower()
        if mode not in LOG_MODEL and mode not in ("false", "0", "no", "none"):
            self._warn("log-model", f"NBTRACKER_LOG_MODEL={mode!r} is not end or checkpoint; "
                       "no model files are kept")
        self._log_model = mode if mode in LOG_MODEL else None

    # -- the run ---------------------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The run being recorded into (None before training starts)."""
        return self._run

    def _live(self) -> bool:
        return self._run is not None and self._run.state == "running"

    def _ready(self, args: Any, state: Any, model: Any) -> bool:
        """Whether there is a run to record into, starting one when needed (main process)."""
        if self._off or not state.is_world_process_zero:
            return False
        if self._training and not self._in_train():
            self._train_failed()
        if not self._live():
            if self._run is not None and self._training:  # finished by someone else
                self._warn("finished", f"the run {self._run.name} was finished during "
                           "training; the rest of this training is not recorded")
                return False
            try:
                self._setup(args, state, model)
            except Exception as e:
                self._off = True
                self._failed("start a run", e)
                return False
        return True

    def _in_train(self) -> bool:
        """Whether a `Trainer.train()` of this callback is under way (else `train()` raised:
        the Trainer calls no `on_train_end` then)."""
        f = sys._getframe(1)
        while f is not None:
            if f.f_code.co_name in ("train", "_inner_training_loop"):
                handler = getattr(f.f_locals.get("self"), "callback_handler", None)
                if any(cb is self for cb in getattr(handler, "callbacks", ())):
                    return True
            f = f.f_back
        return False

    def _train_failed(self) -> None:
        """The last `train()` raised: an `evaluate()`/`predict()` after it logs to the user's
        current run, else to a run of its own; the run started for the failed training ends
        `failed`."""
        self._training = self._trial_waits = False
        if self._own and self._live() and not has_ended(self._run):
            try:
                with runs_lock:
                    self._run.finish(exit_code=1)
            except Exception as e:
                self._failed("finish the failed training's run", e)
        self._run, self._own = None, False

    def _setup(self, args: Any, state: Any, model: Any, trial: bool = False) -> None:
        kw = dict(self._init_kwargs)
        if trial:
            kw.setdefault("group", args.run_name or args.output_dir)
            kw["name"] = state.trial_name or kw.get("name")
        else:
            kw.setdefault("name", args.run_name)
        project = self._project or _env("PROJECT") or DEFAULT_PROJECT
        # the user's run, else a run of its own (see _attach.take): a trial's run is always its
        # own; `evaluate()` alone (outside training) leaves another Trainer's open run be
        self._run, self._own = take("transformers", training=state, adopt=not trial,
                                    ended=not self._training, finish_over=self._training,
                                    project=project, **kw)
        if self._own:
            if _in_notebook():
                from IPython.display import display

                display(self._run)  # its live panel, under the cell that trains
        try:
            self._describe(args, state, model, trial)
        except Exception as e:  # the run is there: logging goes on without a full config
            self._failed("record the configuration", e)

    def _describe(self, args: Any, state: Any, model: Any, trial: bool) -> None:
        """Config, metric definitions and watch, as WandbCallback.setup does."""
        run = self._run
        config: dict = {}
        cfg = getattr(model, "config", None)
        if cfg is not None:
            config.update(cfg if isinstance(cfg, dict) else cfg.to_dict())
        peft = getattr(model, "peft_config", None)
        if isinstance(peft, dict):
            config["peft_config"] = {k: v.to_dict() if hasattr(v, "to_dict") else v
                                     for k, v in peft.items()}
        config.update(args.to_dict())
        if trial and state.trial_params:
            config.update(state.trial_params)
        run.config.update(config, allow_val_change=True)
        if hasattr(model, "num_parameters"):
            run.config.update({"model/num_parameters": model.num_parameters()},
                              allow_val_change=True)
        # the trainer's step is the x-axis of what the callback logs; every row it writes
        # carries it, so no step_sync (which would take each row off the fast path) and no
        # "*" as wandb's (it would also claim the user's own keys, whose rows lack it)
        run.define_metric("train/global_step")
        for prefix in PREFIXES:
            run.define_metric(prefix + "*", step_metric="train/global_step", step_sync=False)
        watch = (_env("WATCH") or "false").lower()
        if watch in WATCH and model is not None:
            run.watch(model, log=watch, log_freq=max(100, state.logging_steps or 0))

    def _finish_own(self) -> None:
        """Finish the run if the callback started it (`run` still names it)."""
        if self._own and self._live():
            self._run.finish()

    def _warn(self, what: str, msg: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            output.warn(msg)

    def _failed(self, what: str, e: Exception) -> None:
        self._warn(what, f"the transformers callback could not {what} "
                   f"({type(e).__name__}: {e}); training goes on without it")

    # -- Trainer events --------------------------------------------------------------------
    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._off = False
        if not state.is_world_process_zero:
            return
        self._training, self._evaluated, self._trial_waits = True, False, False
        search = state.is_hyper_param_search
        if self._run is not None:
            if not self._live() or search or (self._own and not has_ended(self._run)):
                # finished; the last trial's; or the run of an earlier train() that never
                # reached its end: `take` finishes the run left open (failed, for the latter)
                self._run, self._own = None, False
            elif self._own:  # the run of an earlier train() of this callback goes on (wandb's)
                mark(self._run, "transformers", state)
        if not search:
            self._ready(args, state, model)
            return
        try:
            self._setup(args, state, model, trial=True)
        except Exception as e:
            self._off = True
            self._failed("start a run", e)

    def on_log(self, args, state, control, model=None, logs=None, **kwargs):
        if not logs or not self._ready(args, state, model):
            return
        try:
            run = self._run
            row = {}
            summary = {}
            for k, v in logs.items():
                if k in SUMMARY_KEYS:
                    summary[k] = v
                else:
                    row[k] = v
            if summary:
                run.summary.update(summary)
            row = rewrite_logs(row)
            row["train/global_step"] = state.global_step
            run.log(row)
        except Exception as e:
            self._failed("log", e)

    def on_predict(self, args, state, control, metrics=None, **kwargs):
        if not metrics or not self._ready(args, state, kwargs.get("model")):
            return
        try:
            row = rewrite_logs(metrics)
            row["train/global_step"] = state.global_step
            self._run.log(row)
        except Exception as e:
            self._failed("log", e)

    def on_save(self, args, state, control, **kwargs):
        if self._log_model != "checkpoint" or not state.is_world_process_zero or not self._live():
            return
        try:
            folder = f"checkpoint-{state.global_step}"
            self._run.save(os.path.join(args.output_dir, folder, "**"),
                           base_path=args.output_dir, policy="now")
        except Exception as e:
            self._failed("keep the checkpoint files", e)

    def on_evaluate(self, args, state, control, **kwargs):
        if self._training and not self._in_train():
            self._train_failed()
        if self._training:
            self._evaluated = True
        elif self._trial_waits:  # the trial's evaluation after train() is logged: its run ends
            self._trial_waits = False
            self._end_trial()

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if not state.is_world_process_zero:
            return
        self._training = False
        if self._log_model == "end" and self._live():
            try:
                with tempfile.TemporaryDirectory() as tmp:
                    folder = os.path.join(tmp, "model")
                    _save_model(model, processing_class, folder)
                    self._run.save(os.path.join(folder, "**"), base_path=tmp, policy="now")
            except Exception as e:
                self._failed("keep the model files", e)
        set_ended(self._run)
        if state.is_hyper_param_search and self._own:
            # a trial's run ends with the trial: once evaluated (during training, else by the
            # `evaluate()` the search calls next), so that a run of the user's is current again
            if self._evaluated:
                self._end_trial()
            else:
                self._trial_waits = True

    def _end_trial(self) -> None:
        try:
            self._finish_own()
        except Exception as e:
            self._failed("finish the trial's run", e)


def _save_model(model: Any, processing_class: Any, folder: str) -> None:
    """The model's files as `Trainer.save_model` writes them for a plain model, and its
    architecture as text (as wandb's callback adds)."""
    os.makedirs(folder, exist_ok=True)
    if hasattr(model, "save_pretrained"):
        model.save_pretrained(folder)
    else:
        import torch

        torch.save(model.state_dict(), os.path.join(folder, "pytorch_model.bin"))
    if processing_class is not None and hasattr(processing_class, "save_pretrained"):
        processing_class.save_pretrained(folder)
    with open(os.path.join(folder, "model_architecture.txt"), "w", encoding="utf-8") as f:
        print(model, file=f)
