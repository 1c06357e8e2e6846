"""The parameter space of a sweep, sampled through an Optuna trial.

`suggest(trial, config)` returns the nested run config of one trial; `suggest_flat` the same as
`{dotted name: value}`. Each leaf of `config.parameters` becomes Optuna parameters named by its
dotted path, with wandb's distribution (wandb/sweeps `params.py`, `HyperParameter.ppf`):

- constant: no Optuna parameter; the value (a fresh copy);
- categorical: `suggest_categorical(name, values)` when the values are distinct plain scalars of one
  kind (str, bool, or int/float without NaN), else `suggest_categorical(name + "/index", range(n))`;
  the value (a fresh copy);
- categorical with probabilities: `u = suggest_float(name + "/u", 0, 1)`; the first value whose
  cumulative probability exceeds `u`;
- int_uniform: `suggest_int(name, min, max)`; uniform: `suggest_float(name, min, max)`;
- log_uniform_values, inv_log_uniform_values: `suggest_float(name, min, max, log=True)`;
- log_uniform: `suggest_float(name, exp(min), exp(max), log=True)`;
- inv_log_uniform: `suggest_float(name, exp(-max), exp(-min), log=True)`;
- q_uniform, q_log_uniform(_values): as their unquantized form, then `quantize(x, q)`;
- normal, log_normal, beta and their q_ forms: `u = suggest_float(name + "/u", lo, hi)`, then the
  inverse CDF at `u` (quantized for the q_ forms).

`quantize` rounds to the nearest multiple of `q` and gives an int when `q` is an int (wandb's rule).
The `inv_log_uniform` forms are wandb's `exp(-U)` with `U` uniform on the negated (log) bounds, which
is log-uniform on the value range; they are given to Optuna as such. The quantile `u` of normal and
log-normal lies in `[1e-12, 1 - 1e-12]` (±7 sigma), so every value is finite.

Grid sweeps: `grid_trials(config)` gives, for each of `config.grid_points()` in order, the Optuna
parameters to enqueue (`study.enqueue_trial(params)` at sweep creation), and `suggest` maps an
enqueued trial back to exactly that point. `sampler(config)` for a grid never samples: a trial
that asks for a value not enqueued (the grid is exhausted) raises `GridExhausted`; the engine stops
when no enqueued (WAITING) trial is left.

    >>> import optuna
    >>> from nbtracker.sweeps.config import parse_sweep
    >>> cfg = parse_sweep({"method": "random", "parameters": {"opt": {"parameters": {
    ...     "lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}}}}})
    >>> study = optuna.create_study(sampler=sampler(cfg, seed=0))
    >>> sorted(suggest(study.ask(), cfg)["opt"])
    ['lr']
"""

from __future__ import annotations

import bisect
import copy
import math
import statistics
from typing import Any

from .config import NORMAL_TAIL, Parameter, SweepConfig, nest, quantize

__all__ = ["GridExhausted", "beta_cdf", "beta_ppf", "grid_trials", "sampler", "suggest", "suggest_flat"]

_EPS = NORMAL_TAIL  # quantile bounds of the unbounded distributions (config.py checks them)


class GridExhausted(RuntimeError):
    """A grid sweep's trial asked for a value that was not enqueued: every grid point is taken."""


def suggest(trial, config: SweepConfig) -> dict:
    """The nested run config of one Optuna trial (`{"opt": {"lr": 0.003}, ...}`).

    Args:
        trial: an `optuna.Trial` (from `study.ask()` or an objective).
        config: the parsed sweep.
    """
    return nest(suggest_flat(trial, config), config)


def suggest_flat(trial, config: SweepConfig) -> dict[str, Any]:
    """The trial's values as `{dotted name: value}`, in `config.parameters` order."""
    return {p.name: _suggest(trial, p) for p in config.parameters}


def sampler(config: SweepConfig, seed: int | None = None):
    """The Optuna sampler of the sweep's method.

    random → `RandomSampler(seed)`; bayes → `TPESampler(multivariate=True, constant_liar=True,
    seed)` (constant liar keeps parallel agents from proposing the same point); grid → a sampler
    that never samples (the grid is enqueued, see `grid_trials`).
    """
    import optuna

    if config.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if config.method == "bayes":
        return optuna.samplers.TPESampler(multivariate=True, constant_liar=True, seed=seed)
    if config.method == "grid":
        return _grid_sampler_class()()
    raise ValueError(f"unknown sweep method {config.method!r}")


def grid_trials(config: SweepConfig) -> list[dict[str, Any]]:
    """For each of `config.grid_points()`, in order, the Optuna parameters to enqueue."""
    out = []
    for point in config.grid_points():
        params = {}
        for p in config.parameters:
            v = point[p.name]
            if p.distribution == "constant":
                continue
            if p.distribution == "categorical":
                if _direct(p.values):
                    params[p.name] = v
                else:
                    params[p.name + "/index"] = _index_of(p.values, v)
            elif p.distribution == "q_uniform":
                # a grid value may lie half a step beyond min or max; quantizing the bound gives it back
                params[p.name] = min(max(v, p.min), p.max)
            else:  # int_uniform
                params[p.name] = v
        out.append(params)
    return out


def _suggest(trial, p: Parameter) -> Any:
    d, name = p.distribution, p.name
    if d == "constant":
        return copy.deepcopy(p.value)
    if d == "categorical":
        if _direct(p.values):
            return trial.suggest_categorical(name, list(p.values))
        i = trial.suggest_categorical(name + "/index", list(range(len(p.values))))
        return copy.deepcopy(p.values[i])
    if d == "categorical_w_probabilities":
        u = trial.suggest_float(name + "/u", 0.0, 1.0)
        return copy.deepcopy(p.values[_pick(p.probabilities, u)])
    if d == "int_uniform":
        return trial.suggest_int(name, p.min, p.max)
    if d == "uniform":
        return trial.suggest_float(name, p.min, p.max)
    if d == "q_uniform":
        return quantize(trial.suggest_float(name, p.min, p.max), p.q)
    if d in ("log_uniform_values", "inv_log_uniform_values", "q_log_uniform_values"):
        x = trial.suggest_float(name, p.min, p.max, log=True)
        return quantize(x, p.q) if d.startswith("q_") else x
    if d in ("log_uniform", "q_log_uniform"):
        x = trial.suggest_float(name, math.exp(p.min), math.exp(p.max), log=True)
        return quantize(x, p.q) if d.startswith("q_") else x
    if d == "inv_log_uniform":
        return trial.suggest_float(name, math.exp(-p.max), math.exp(-p.min), log=True)
    if d in ("normal", "q_normal", "log_normal", "q_log_normal"):
        u = trial.suggest_float(name + "/u", _EPS, 1.0 - _EPS)
        x = statistics.NormalDist(p.mu, p.sigma).inv_cdf(u)
        if "log" in d:
            x = math.exp(x)
        return quantize(x, p.q) if d.startswith("q_") else x
    if d in ("beta", "q_beta"):
        x = beta_ppf(trial.suggest_float(name + "/u", 0.0, 1.0), p.a, p.b)
        return quantize(x, p.q) if d.startswith("q_") else x
    raise ValueError(f"{name}: unknown distribution {d!r}")


def _direct(values: tuple) -> bool:
    """Can Optuna hold these categorical values as themselves (and tell them apart)?"""
    kinds = set()
    for v in values:
        if isinstance(v, bool):
            kinds.add(bool)
        elif isinstance(v, (int, float)):
            if isinstance(v, float) and math.isnan(v):
                return False
            kinds.add(float)
        elif isinstance(v, str):
            kinds.add(str)
        else:
            return False
    return len(kinds) == 1 and len(set(values)) == len(values)


def _index_of(values: tuple, v: Any) -> int:
    for i, x in enumerate(values):
        if type(x) is type(v) and x == v:
            return i
    for i, x in enumerate(values):
        if x == v:
            return i
    raise ValueError(f"{v!r} is not one of the values")


def _pick(probabilities: tuple, u: float) -> int:
    total, cdf = 0.0, []
    for p in probabilities:
        total += p
        cdf.append(total)
    i = bisect.bisect_right(cdf, u * total)
    last = max(j for j, p in enumerate(probabilities) if p > 0)
    return min(i, last)


def _grid_sampler_class():
    import optuna

    class GridQueueSampler(optuna.samplers.BaseSampler):
        """Samples nothing: a grid sweep's trials take their values from the enqueued grid."""

        def infer_relative_search_space(self, study, trial):
            return {}

        def sample_relative(self, study, trial, search_space):
            return {}

        def sample_independent(self, study, trial, param_name, param_distribution):
            raise GridExhausted(
                f"grid trial {trial.number} has no enqueued value for {param_name!r}: "
                "every grid point is taken"
            )

    return GridQueueSampler


# -- the beta distribution (scipy is not a dependency) ---------------------------------------------

def beta_cdf(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, Numerical Recipes 6.4)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_cf(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_cf(1.0 - x, b, a) / b


def _beta_cf(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                   -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def beta_ppf(u: float, a: float, b: float) -> float:
    """The inverse of `beta_cdf` in x, by bisection to the float resolution."""
    if u <= 0.0:
        return 0.0
    if u >= 1.0:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if beta_cdf(mid, a, b) < u:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
