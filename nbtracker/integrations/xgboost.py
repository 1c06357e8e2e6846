"""XGBoost: a `TrainingCallback` that logs each boosting round's evaluation metrics.

>>> from nbtracker.integrations.xgboost import NbtrackerCallback
>>> booster = xgb.train(params, dtrain, num_boost_round=100, evals=[(dvalid, "valid")],
...                     early_stopping_rounds=10, callbacks=[NbtrackerCallback()])
>>> XGBClassifier(n_estimators=100, callbacks=[NbtrackerCallback()]).fit(X, y, eval_set=[(Xv, yv)])

What is logged (the keys of wandb's `WandbCallback`):

- config: the booster's configuration (`json.loads(booster.save_config())`: `learner`, `version`).
- one row per round: `{data}-{metric}` for every eval set and metric (as in `evals_result()`,
  e.g. `valid-logloss`, `validation_0-rmse`) and `epoch`, the round's index. With `xgb.cv` the
  mean and standard deviation over the folds: `{data}-{metric}-mean`, `{data}-{metric}-std` (the
  column names of xgboost's own cv table). A `custom_metric` named like a built-in one is
  logged beside it as `{data}-{metric}-2` (`evals_result` keeps both in one list), with one
  warning.
- with `define_metric=True`, losses and errors are summarised by their minimum, `auc`, `map`,
  `ndcg` by their maximum.
- summary: `best_score` and `best_iteration` when early stopping set them.
- `Feature Importance`: a table (`Feature`, `Importance`; `importance_type`, default "gain"), in a
  row after the last round.
- with `log_model=True`: the model file `<run id>_model.json`, kept with the run.

A run started with `nbtracker.init()` before training is used; otherwise one is started when
training begins and finished when it ends (a training that raises, or is stopped with Ctrl-C,
leaves it open: the next training with a callback finishes it as `failed` or `interrupted`).
"""

from __future__ import annotations

import json
import os
from typing import Any

try:
    from xgboost.callback import TrainingCallback
except ImportError as e:  # pragma: no cover - the message is the point
    raise ImportError("nbtracker.integrations.xgboost needs xgboost: "
                      "pip install 'nbtracker[xgboost]'") from e

import nbtracker
from nbtracker.sdk import output

from ._attach import Attached

__all__ = ["NbtrackerCallback"]

MINIMIZE_METRICS = ("rmse", "rmsle", "mae", "mape", "mphe", "logloss", "error", "error@t",
                    "merror", "mlogloss")
MAXIMIZE_METRICS = ("auc", "aucpr", "ndcg", "map", "ndcg@n", "map@n", "pre")


class NbtrackerCallback(TrainingCallback):
    """Log XGBoost's evaluation metrics per round, its configuration, best score and feature
    importance to the current run.

    Args:
        log_model: keep the trained model (`<run id>_model.json`) with the run.
        log_feature_importance: log the feature importance table at the end (default True).
        importance_type: "weight", "gain" (default), "cover", "total_gain" or "total_cover"
            ("weight" for linear boosters).
        define_metric: summarise losses and errors by their minimum, rankings and AUC by their
            maximum, instead of the last value (default True).

    >>> xgb.train(params, dtrain, evals=[(dvalid, "valid")], callbacks=[NbtrackerCallback()])
    """

    def __init__(self, log_model: bool = False, log_feature_importance: bool = True,
                 importance_type: str = "gain", define_metric: bool = True) -> None:
        super().__init__()
        self.log_model = log_model
        self.log_feature_importance = log_feature_importance
        self.importance_type = importance_type
        self.define_metric = define_metric
        self._attached = Attached("xgboost NbtrackerCallback", "xgboost")
        self._run: Any = None
        self._defined: set[str] = set()
        self._keys: dict[tuple[str, str], str] = {}

    def before_training(self, model: Any) -> Any:
        with self._attached.guard("starting the run"):
            self._run = self._attached.begin(training=model)  # the booster of this training
            self._defined = set()
        if self._run is not None and hasattr(model, "save_config"):
            with self._attached.guard("logging the booster's configuration"):
                self._run.config.update(json.loads(model.save_config()), allow_val_change=True)
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: dict) -> bool:
        run = self._run
        if run is None:
            return False
        with self._attached.guard("logging a round"):
            row: dict[str, Any] = {}
            renamed: list[str] = []
            for data, metrics in evals_log.items():
                for metric, scores in metrics.items():
                    for key, score in self._round(evals_log, data, metric, scores, renamed):
                        if isinstance(score, tuple):  # xgb.cv: (mean, std) over the folds
                            row[key + "-mean"], row[key + "-std"] = score
                            keys = (key + "-mean",)
                        else:
                            row[key] = score
                            keys = (key,)
                        if self.define_metric and key not in self._defined:
                            self._defined.add(key)
                            for k in keys:
                                _define_metric(run, k, metric)
            row["epoch"] = epoch
            if renamed:
                self._warn_twice(renamed)
            run.log(row)
        return False

    def _round(self, evals_log: dict, data: str, metric: str, scores: list,
               renamed: list[str]) -> list[tuple[str, Any]]:
        """(key, score) for this round's scores of one eval set and metric name: one, as
        `{data}-{metric}`; a custom metric named like a built-in one adds its score to the same
        list of `evals_log` (the same round twice), logged as `{data}-{metric}-2` (put in
        `renamed`)."""
        seen = vars(self).setdefault("_lengths", {})  # (data, metric) -> scores seen
        if seen.get(None) is not evals_log:  # a new training: its own lists
            seen.clear()
            seen[None] = evals_log
        start = seen.get((data, metric), 0)
        seen[(data, metric)] = len(scores)
        key = f"{data}-{metric}"
        if len(scores) - start <= 1:
            return [(key, scores[-1])]
        out = [(key if i == 0 else f"{key}-{i + 1}", s) for i, s in enumerate(scores[start:])]
        renamed.extend(k for k, _ in out[1:])
        return out

    def _warn_twice(self, renamed: list[str]) -> None:
        warned = vars(self).setdefault("_twice", set())
        new = [k for k in renamed if k not in warned]
        if new:
            warned.update(new)
            output.warn("xgboost NbtrackerCallback: a custom metric named like a built-in one "
                        "(both in one list of evals_result): the second is logged as "
                        + ", ".join(repr(k) for k in new))

    def after_training(self, model: Any) -> Any:
        run = self._run
        if run is None:
            return model
        if self.log_model and not getattr(run, "disabled", False):  # disabled: no folder
            with self._attached.guard("saving the model"):
                path = os.path.join(run.dir, f"{run.id}_model.json")
                os.makedirs(run.dir, exist_ok=True)
                model.save_model(path)
                run.save(path, base_path=run.dir, policy="now")
        if self.log_feature_importance and hasattr(model, "get_score"):
            with self._attached.guard("logging the feature importance"):
                scores = model.get_score(importance_type=self.importance_type)
                table = nbtracker.Table(columns=["Feature", "Importance"],
                                        data=[[k, float(v)] for k, v in scores.items()])
                run.log({"Feature Importance": table})
        with self._attached.guard("recording the best score"):
            best_score = model.attr("best_score") if hasattr(model, "attr") else None
            if best_score is not None:
                run.summary.update({"best_score": float(best_score),
                                    "best_iteration": int(model.attr("best_iteration"))})
        self._run = None
        with self._attached.guard("finishing the run"):
            self._attached.end()
        return model


def _define_metric(run: Any, key: str, metric: str) -> None:
    name = metric.lower()
    if "loss" in name or name in MINIMIZE_METRICS or name.split("@")[0] in MINIMIZE_METRICS:
        run.define_metric(key, summary="min")
    elif name in MAXIMIZE_METRICS or name.split("@")[0] in MAXIMIZE_METRICS:
        run.define_metric(key, summary="max")
