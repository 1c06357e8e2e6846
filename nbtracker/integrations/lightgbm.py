"""LightGBM: a callback that logs each boosting round's evaluation results, and `log_summary`
for what is known once training is over.

>>> from nbtracker.integrations.lightgbm import nbtracker_callback, log_summary
>>> booster = lgb.train(params, dtrain, valid_sets=[dvalid], callbacks=[nbtracker_callback()])
>>> log_summary(booster)

What is logged (the keys of wandb's `wandb_callback` and `log_summary`):

- config: the parameters LightGBM trains with (`log_params=True`).
- one row per round: `{data_name}_{eval_name}` for every validation set and metric (as
  `record_evaluation` holds them, e.g. `valid_0_l2`, `training_binary_logloss`) and `iteration`,
  the round's index. With `lgb.cv`: `{data_name}_{eval_name}-mean` and `-stdv`. A custom
  metric (`feval`) named like a built-in one is logged beside it as `{data_name}_{eval_name}-2`
  (`record_evaluation` keeps both in one list), with one warning.
- with `define_metric=True`, losses and errors are summarised by their minimum, `auc`, `map`,
  `average_precision` by their maximum.
- `log_summary(booster)`: `best_iteration` and `best_score` in the summary, the `Feature
  Importance` table (`Feature`, `Importance`: split counts, as `booster.feature_importance()`),
  and with `save_model_checkpoint=True` the model file `model_ckpt_<best iteration>.txt`.

A run started with `nbtracker.init()` before training is used; otherwise the callback starts
one when training begins, which `log_summary` (or `nbtracker.finish()`, or the next training in
the same thread) finishes: LightGBM tells a callback nothing when training ends (early stopping
ends it by an exception). Trainings in threads each get their own run, and `log_summary(booster)`
logs to the run of that booster's training.
"""

from __future__ import annotations

import os
import weakref
from typing import Any

try:
    import lightgbm
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("nbtracker.integrations.lightgbm needs lightgbm: "
                      "pip install 'nbtracker[lightgbm]'") from e

import nbtracker
from nbtracker.sdk import output

from ._attach import Attached, runs_lock

__all__ = ["nbtracker_callback", "log_summary"]

MINIMIZE_METRICS = ("l1", "l2", "rmse", "mape", "huber", "fair", "poisson", "gamma",
                    "binary_logloss", "binary_error", "multi_logloss", "multi_error", "quantile",
                    "tweedie", "cross_entropy", "kullback_leibler")
MAXIMIZE_METRICS = ("map", "auc", "average_precision", "ndcg", "auc_mu")

# booster -> the callback of the training that made it: log_summary logs to (and finishes) that
# training's run; the next training in the same thread also finishes it (see _attach)
_trained: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _NbtrackerCallback:
    """LightGBM calls this after every round (see `nbtracker_callback`)."""

    def __init__(self, log_params: bool = True, define_metric: bool = True) -> None:
        self.order = 20  # as LightGBM's record_evaluation: before early stopping (30)
        self.before_iteration = False
        self.log_params = log_params
        self.define_metric = define_metric
        self._attached = Attached("lightgbm nbtracker_callback", "lightgbm")
        self._run: Any = None

    def _begin(self, env: Any) -> None:
        with runs_lock:
            try:
                _trained[env.model] = self._attached
            except TypeError:  # not a Booster (lgb.cv's CVBooster takes one too)
                pass
        # LightGBM tells no callback when training ends: a run left open by an earlier training
        # (in this thread, or one that is gone) is finished as it is (`ended`), whatever way that
        # training ended, and this one gets its own
        self._run = self._attached.begin(training=env.model, ended=True)
        if self.log_params:
            with self._attached.guard("logging the parameters"):
                self._run.config.update(dict(env.params), allow_val_change=True)
        if self.define_metric:
            with self._attached.guard("defining the metrics' summaries"):
                for key, metric in _names(env.evaluation_result_list or []):
                    _define_metric(self._run, key, metric)

    def __call__(self, env: Any) -> None:
        if env.iteration == env.begin_iteration:
            with self._attached.guard("starting the run"):
                self._begin(env)
        run = self._run
        if run is None:
            return
        with self._attached.guard("logging a round"):
            row: dict[str, Any] = {}
            for key, item in _keyed(env.evaluation_result_list or [], self._warn_twice):
                if len(item) == 5:  # lgb.cv: mean and standard deviation over the folds
                    row[key + "-mean"], row[key + "-stdv"] = item[2], item[4]
                else:
                    row[key] = item[2]
            row["iteration"] = env.iteration
            run.log(row)


    def _warn_twice(self, renamed: list[tuple[str, str]]) -> None:
        warned = vars(self).setdefault("_twice", set())
        new = [(key, named) for key, named in renamed if named not in warned]
        if new:
            warned.update(named for _, named in new)
            output.warn("lightgbm nbtracker_callback: a custom metric named like a built-in one "
                        "(both in record_evaluation's list): " + ", ".join(
                            f"the second {key!r} is logged as {named!r}" for key, named in new))


def nbtracker_callback(log_params: bool = True, define_metric: bool = True) -> Any:
    """A LightGBM callback logging each round's evaluation results to the current run.

    Args:
        log_params: log the parameters LightGBM trains with as config (default True).
        define_metric: summarise losses and errors by their minimum, AUC and rankings by their
            maximum, instead of the last value (default True).

    >>> booster = lgb.train(params, dtrain, num_boost_round=100, valid_sets=[dvalid],
    ...                     callbacks=[nbtracker_callback(), lgb.early_stopping(10)])
    """
    return _NbtrackerCallback(log_params, define_metric)


def log_summary(model: lightgbm.Booster, feature_importance: bool = True,
                save_model_checkpoint: bool = False) -> None:
    """Log what is known once training is over: `best_iteration` and `best_score` as summary,
    the feature importance table, and with `save_model_checkpoint=True` the model file (at its
    best iteration) kept with the run. Finishes the run when `nbtracker_callback` started it.

    Args:
        model: the trained `lightgbm.Booster` (`lgb.train`'s result; `estimator.booster_` for
            the scikit-learn API).
        feature_importance: log the `Feature Importance` table (default True).
        save_model_checkpoint: keep `model_ckpt_<best iteration>.txt` with the run.

    >>> log_summary(booster, save_model_checkpoint=True)
    """
    if not isinstance(model, lightgbm.Booster):
        raise nbtracker.UsageError("log_summary() takes a lightgbm.Booster (for the "
                                   "scikit-learn API: estimator.booster_), not "
                                   f"{type(model).__name__}")
    with runs_lock:
        attached = _trained.pop(model, None)
    if attached is not None:  # trained with nbtracker_callback: its run, else one warning
        run = attached.run
        if run is None or run.state != "running":
            output.warn("lightgbm log_summary: " + (
                "nbtracker_callback could not start a run" if run is None else
                f"the run {run.name} of this booster's training is finished")
                + "; the summary is not logged")
            return
    else:
        run = nbtracker.run
        if run is None:
            raise nbtracker.UsageError("log_summary() needs a run: call nbtracker.init() or "
                                       "train with nbtracker_callback() first")
    guard = (attached or Attached("lightgbm log_summary")).guard
    with guard("recording the best score"):
        run.summary.update({"best_iteration": model.best_iteration,
                            "best_score": _plain(model.best_score)})
    if feature_importance:
        with guard("logging the feature importance"):
            imps = model.feature_importance()
            table = nbtracker.Table(columns=["Feature", "Importance"],
                                    data=[[f, int(v)] for f, v in
                                          zip(model.feature_name(), imps, strict=True)])
            run.log({"Feature Importance": table}, commit=False)
    if save_model_checkpoint and not getattr(run, "disabled", False):  # disabled: no folder
        with guard("saving the model"):
            os.makedirs(run.dir, exist_ok=True)
            path = os.path.join(run.dir, f"model_ckpt_{model.best_iteration}.txt")
            model.save_model(path, num_iteration=model.best_iteration)
            run.save(path, base_path=run.dir, policy="now")
    if attached is not None:
        with guard("finishing the run"):
            attached.end()


def _split(item: Any) -> tuple[str, str]:
    """(data name, metric name) of an evaluation result; LightGBM before 4.7 named cv results
    ("cv_agg", "valid l2", ...)."""
    data_name, eval_name = item[0], item[1]
    if len(item) == 5 and " " in eval_name:
        data_name, eval_name = eval_name.split(" ", 1)
    return data_name, eval_name


def _keyed(results: list, warn: Any = None) -> list[tuple[str, Any]]:
    """(key, evaluation result) for each result: `{data_name}_{eval_name}`, and for a second
    result of the same data and name (a custom metric named like a built-in one, both in one
    list of `record_evaluation`) that key with `-2` (`-3`...): `warn([(key, named), ...])`."""
    out, seen, renamed = [], set(), []
    for item in results:
        data_name, eval_name = _split(item)
        key = named = f"{data_name}_{eval_name}"
        n = 2
        while named in seen:
            named = f"{key}-{n}"
            n += 1
        if named != key:
            renamed.append((key, named))
        seen.add(named)
        out.append((named, item))
    if renamed and warn is not None:
        warn(renamed)
    return out


def _names(results: list) -> list[tuple[str, str]]:
    return [(key + "-mean" if len(item) == 5 else key, _split(item)[1])
            for key, item in _keyed(results)]


def _define_metric(run: Any, key: str, metric: str) -> None:
    name = metric.lower()
    base = name.split("@")[0]
    if "loss" in name or base in MINIMIZE_METRICS:
        run.define_metric(key, summary="min")
    elif base in MAXIMIZE_METRICS:
        run.define_metric(key, summary="max")


def _plain(d: Any) -> Any:
    """best_score is a dict of dicts (data name -> metric -> value): plain dicts and floats."""
    if isinstance(d, dict):
        return {str(k): _plain(v) for k, v in d.items()}
    return float(d)
