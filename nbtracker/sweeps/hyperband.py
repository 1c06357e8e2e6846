"""`early_terminate: {type: hyperband}` as an Optuna pruner, with wandb's decision rule.

>>> pruner = HyperbandPruner({"type": "hyperband", "min_iter": 3}, goal="minimize")
>>> study = optuna.create_study(pruner=pruner)
>>> # in the objective: trial.report(value, index); if trial.should_prune(): raise optuna.TrialPruned()

The rule is wandb's (`sweeps/hyperband_stopping.py`), reproduced exactly:

- **Iterations.** A run's history of the metric is the finite numbers it logged for it, in order
  (NaN, infinities and non-numbers are left out, so they do not count as iterations); iteration
  `n` is the n-th of them. Here a trial's history is its intermediate values ordered by step:
  the step only orders the values (report the metric's n-th logged value at step n). The
  sweep agent (agent.py) keeps each trial's values itself, stores only the value at each bracket
  `b` (at step `b`) and judges with `should_stop`, reading other trials' values at step `b`.
- **Brackets** (wandb's "bands"), with `eta` (default 3, any number > 1):
  `min_iter` → `int(min_iter * eta**k)` for k = 0, 1, … (wandb lists 100 of them; we stop at
  2**53, past any history, so every decision is the same);
  `max_iter` and `s` → `int(max_iter / eta**k)` for k = 1..s while that quotient is ≥ 1, sorted
  (`max_iter` itself is not a bracket: `max_iter: 27, s: 2` → [3, 9]).
- **Threshold** at bracket `b`: the values at iteration `b` of every run that reached it (the run
  judged included; completed, pruned, failed and running runs alike), sorted best first, and the
  one at index `int(n / eta)` (`n` values) — the edge of the top 1/eta.
- **Decision**, taken for a running run each time it reports: its bracket is the largest `b` it
  has reached (none yet: it goes on). With `strict` (wandb's default since sweeps 0.2, 2024) it
  is stopped when its value at iteration `b` is worse than the threshold; without `strict`, when
  even its best value so far (all of its history, also past `b`) is worse. Equal is not worse.

Because the decision is taken at every report against every run's values at that moment, a run
that passed a bracket can still be stopped later at the same bracket when better runs have come
in since — the asynchronous successive halving wandb's controller does on each poll.

Public names: `validate_early_terminate`, `brackets`, `should_stop`, `HyperbandPruner`.
A bad `early_terminate` raises `nbtracker.errors.UsageError` naming the key and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import optuna

from ..errors import UsageError

_KEYS = ("type", "min_iter", "max_iter", "s", "eta", "strict")
_EXAMPLE = "e.g. {type: hyperband, min_iter: 3} or {type: hyperband, max_iter: 27, s: 2}"
_MIN_ITER_BRACKETS = 100  # as many as wandb lists
_BRACKET_BOUND = 2**53  # no history is longer; beyond it float brackets lose integers


def _fail(key: str, problem: str) -> UsageError:
    name = "early_terminate" if not key else f"early_terminate.{key}"
    return UsageError(f"{name} {problem} ({_EXAMPLE})")


def _positive_int(et: Mapping[str, Any], key: str) -> int:
    value = et[key]
    if isinstance(value, bool) or not isinstance(value, Real):
        raise _fail(key, f"must be a positive integer, got {value!r}")
    if not isinstance(value, Integral) and not (math.isfinite(value) and float(value).is_integer()):
        raise _fail(key, f"must be a positive integer, got {value!r}")
    if value < 1:
        raise _fail(key, f"must be a positive integer, got {value!r}")
    return int(value)


def validate_early_terminate(early_terminate: Any) -> dict[str, Any]:
    """Check an `early_terminate` section and return it with wandb's defaults filled in.

    Args:
        early_terminate: the sweep's `early_terminate` mapping: `type: hyperband`, and either
            `min_iter`, or `max_iter` with `s`; optional `eta` (a number > 1, default 3) and
            `strict` (a bool, default true, as in wandb).

    Returns:
        A new dict `{type, min_iter | max_iter + s, eta, strict}`, integers as `int`.

    Raises:
        UsageError: one message naming the key and what is wrong with it.

    A sweep's config is checked first by `config.parse_sweep`, which refuses everything refused
    here (and integral floats such as `27.0`, taken here), so a sweep that was made always gets
    its pruner; tests/sweeps/test_sweep_config.py checks that the two agree.

    >>> validate_early_terminate({"type": "hyperband", "min_iter": 3})
    {'type': 'hyperband', 'min_iter': 3, 'eta': 3, 'strict': True}
    """
    if not isinstance(early_terminate, Mapping):
        raise _fail("", f"must be a mapping, got {early_terminate!r}")
    unknown = [k for k in early_terminate if k not in _KEYS]
    if unknown:
        raise _fail(str(unknown[0]), f"is not a hyperband setting (known: {', '.join(_KEYS)})")
    if "type" not in early_terminate:
        raise _fail("type", "is missing: the only type is hyperband")
    if early_terminate["type"] != "hyperband":
        raise _fail("type", f"must be 'hyperband', got {early_terminate['type']!r}")
    has_min, has_max = "min_iter" in early_terminate, "max_iter" in early_terminate
    if has_min and has_max:
        raise _fail("min_iter", "and max_iter are two ways to set the brackets: give one")
    if not has_min and not has_max:
        raise _fail("", "needs min_iter, or max_iter and s, to place its brackets")
    if has_min and "s" in early_terminate:
        raise _fail("s", "counts brackets down from max_iter; with min_iter leave it out")
    if has_max and "s" not in early_terminate:
        raise _fail("s", "is missing: max_iter needs s, the number of brackets below it")

    eta = early_terminate.get("eta", 3)
    if isinstance(eta, bool) or not isinstance(eta, Real) or not math.isfinite(eta) or not eta > 1:
        raise _fail("eta", f"must be a number greater than 1, got {eta!r}")
    strict = early_terminate.get("strict", True)
    if not isinstance(strict, bool):
        raise _fail("strict", f"must be true or false, got {strict!r}")

    out: dict[str, Any] = {"type": "hyperband"}
    if has_min:
        out["min_iter"] = _positive_int(early_terminate, "min_iter")
    else:
        out["max_iter"] = _positive_int(early_terminate, "max_iter")
        out["s"] = _positive_int(early_terminate, "s")
        if out["max_iter"] / eta < 1:
            raise _fail("max_iter", f"{out['max_iter']} / eta {eta} is below 1: no bracket is left")
    out["eta"] = int(eta) if isinstance(eta, Integral) else eta
    out["strict"] = strict
    return out


def brackets(early_terminate: Mapping[str, Any]) -> list[int]:
    """The iterations (1-based counts of logged metric values) at which runs are judged.

    >>> brackets({"type": "hyperband", "min_iter": 3})[:4]
    [3, 9, 27, 81]
    >>> brackets({"type": "hyperband", "max_iter": 27, "s": 2})
    [3, 9]
    """
    et = validate_early_terminate(early_terminate)
    eta = et["eta"]
    out: list[int] = []
    if "max_iter" in et:
        band: float = et["max_iter"]
        for _ in range(et["s"]):
            band /= eta
            if band < 1:
                break
            out.append(int(band))
        return sorted(out)
    band = et["min_iter"]
    for _ in range(_MIN_ITER_BRACKETS):
        if band > _BRACKET_BOUND:
            break
        out.append(int(band))
        band *= eta
    return out


def _check_goal(goal: str) -> float:
    if goal not in ("minimize", "maximize"):
        raise UsageError(f"metric.goal must be 'minimize' or 'maximize', got {goal!r}")
    return -1.0 if goal == "maximize" else 1.0


def _is_number(x: Any) -> bool:
    return isinstance(x, Real) and not isinstance(x, bool) and math.isfinite(x)


def should_stop(
    history: Iterable[float],
    others_at_bracket: Iterable[float],
    *,
    bracket: int,
    goal: str = "minimize",
    eta: float = 3,
    strict: bool = True,
) -> bool:
    """wandb's hyperband decision for one run judged at `bracket`.

    Args:
        history: the run's finite metric values in logged order; at least `bracket` of them.
        others_at_bracket: the value at iteration `bracket` (`history[bracket - 1]`) of every
            other run that reached it (the run's own value is added here, as wandb counts it).
        bracket: the largest bracket the run has reached.
        goal: "minimize" or "maximize".
        eta: the top 1/eta of the values at the bracket set the threshold.
        strict: judge the value at the bracket (true) or the best value so far (false).

    >>> should_stop([5, 4, 4], [1, 2, 9], bracket=3)       # threshold 2: 4 is worse
    True
    >>> should_stop([0.5, 4, 4], [1, 2, 9], bracket=3, strict=False)   # best so far 0.5
    False
    """
    sign = _check_goal(goal)
    own = [sign * float(v) for v in history]
    if len(own) < bracket:
        raise ValueError(f"the run has {len(own)} values, fewer than the bracket {bracket}")
    values = sorted([sign * float(v) for v in others_at_bracket] + [own[bracket - 1]])
    threshold = values[int(1.0 / eta * len(values))]
    judged = own[bracket - 1] if strict else min(own)
    return judged > threshold


def _history(intermediate_values: Mapping[int, float]) -> list[float]:
    return [v for _, v in sorted(intermediate_values.items()) if _is_number(v)]


class HyperbandPruner(optuna.pruners.BasePruner):
    """Stop trials as wandb's `early_terminate: {type: hyperband}` stops runs.

    Args:
        early_terminate: the sweep's `early_terminate` section (validated here).
        goal: the sweep metric's goal, "minimize" or "maximize" (the intermediate values are
            that metric's logged values, whatever the study's direction).

    `prune` judges the trial from its own intermediate values and those of every other trial of
    the study (any state) at the same bracket; a trial with fewer finite values than the first
    bracket always goes on.
    """

    def __init__(self, early_terminate: Mapping[str, Any], goal: str = "minimize") -> None:
        self.early_terminate = validate_early_terminate(early_terminate)
        _check_goal(goal)
        self.goal = goal
        self.brackets = brackets(self.early_terminate)

    def __repr__(self) -> str:
        return f"HyperbandPruner({self.early_terminate!r}, goal={self.goal!r})"

    def bracket_of(self, n_values: int) -> int | None:
        """The largest bracket a history of `n_values` values has reached, or None."""
        reached = None
        for b in self.brackets:
            if b > n_values:
                break
            reached = b
        return reached

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        history = _history(trial.intermediate_values)
        bracket = self.bracket_of(len(history))
        if bracket is None:
            return False
        others = []
        for other in study.get_trials(deepcopy=False):
            if other.number == trial.number:
                continue
            values = _history(other.intermediate_values)
            if len(values) >= bracket:
                others.append(values[bracket - 1])
        return should_stop(
            history,
            others,
            bracket=bracket,
            goal=self.goal,
            eta=self.early_terminate["eta"],
            strict=self.early_terminate["strict"],
        )
