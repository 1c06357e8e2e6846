"""The parameter space through real Optuna studies: each distribution samples within its bounds and
with wandb's shape (statistical tests with fixed seeds), grids replay every enqueued point exactly,
nested parameters give nested configs, and bayes (TPE) beats random on a known function."""

from __future__ import annotations

import math
import statistics
import subprocess
import sys
import warnings

import pytest

optuna = pytest.importorskip("optuna")

from nbtracker.sweeps.config import NORMAL_TAIL, parse_sweep  # noqa: E402
from nbtracker.sweeps.space import (  # noqa: E402
    GridExhausted,
    beta_cdf,
    beta_ppf,
    grid_trials,
    sampler,
    suggest,
    suggest_flat,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)

N = 2000
E = math.e

# name → (spec, support (lo, hi), q or None, reference CDF of the unquantized value as wandb samples it)
CONTINUOUS = {
    "uniform": ({"min": -2.0, "max": 3.0}, (-2, 3)),
    "uniform_int_bounds": ({"distribution": "uniform", "min": 1, "max": 4}, (1, 4)),
    "log_uniform_values": ({"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}, (1e-4, 1e-1)),
    "log_uniform": ({"distribution": "log_uniform", "min": -3, "max": 1}, (E ** -3, E)),
    "inv_log_uniform": ({"distribution": "inv_log_uniform", "min": 0, "max": 3}, (E ** -3, 1)),
    "inv_log_uniform_values": ({"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1}, (0.01, 1)),
    "normal": ({"distribution": "normal", "mu": 2, "sigma": 0.5}, (-math.inf, math.inf)),
    "log_normal": ({"distribution": "log_normal", "mu": 0.5, "sigma": 0.8}, (0, math.inf)),
    "beta": ({"distribution": "beta", "a": 2, "b": 5}, (0, 1)),
    "beta_u_shaped": ({"distribution": "beta", "a": 0.5, "b": 0.5}, (0, 1)),
}
QUANTIZED = {
    "q_uniform": {"distribution": "q_uniform", "min": 0.0, "max": 10.0, "q": 2.5},
    "q_uniform_int": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 3},
    "q_log_uniform_values": {"distribution": "q_log_uniform_values", "min": 1, "max": 100, "q": 5},
    "q_log_uniform": {"distribution": "q_log_uniform", "min": 0, "max": 3, "q": 0.5},
    "q_normal": {"distribution": "q_normal", "mu": 0, "sigma": 3, "q": 1},
    "q_log_normal": {"distribution": "q_log_normal", "mu": 0, "sigma": 0.5, "q": 0.25},
    "q_beta": {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1},
}
DISCRETE = {
    "int_uniform": {"min": -2, "max": 4},
    "categorical": {"values": ["a", "b", "c"]},
    "categorical_objects": {"values": [[1, 2], {"k": 1}, None, 1, True]},
    "probabilities": {"values": ["x", "y", "z", "never"], "probabilities": [0.6, 0.3, 0.1, 0.0]},
    "constant": {"value": {"keep": [1, 2]}},
}


def reference_cdfs():
    """wandb's sampling (wandb/sweeps params.py `ppf`) as CDFs of the unquantized value."""
    import numpy as np
    from scipy import stats

    def log_unif(lo, hi):  # exp of a uniform on [lo, hi] (natural-log bounds)
        return lambda x: stats.uniform.cdf(np.log(np.maximum(x, 1e-300)), lo, hi - lo)

    def inv_log_unif(lo, hi):  # wandb: exp(-U(lo, hi))
        return lambda x: 1 - stats.uniform.cdf(-np.log(np.maximum(x, 1e-300)), lo, hi - lo)

    return {
        "uniform": stats.uniform(-2, 5).cdf,
        "uniform_int_bounds": stats.uniform(1, 3).cdf,
        "log_uniform_values": log_unif(math.log(1e-4), math.log(1e-1)),
        "log_uniform": log_unif(-3, 1),
        "inv_log_uniform": inv_log_unif(0, 3),
        "inv_log_uniform_values": inv_log_unif(-math.log(1), -math.log(0.01)),
        "normal": stats.norm(2, 0.5).cdf,
        "log_normal": stats.lognorm(s=0.8, scale=math.exp(0.5)).cdf,
        "beta": stats.beta(2, 5).cdf,
        "beta_u_shaped": stats.beta(0.5, 0.5).cdf,
        "q_uniform": stats.uniform(0, 10).cdf,
        "q_uniform_int": stats.uniform(0, 10).cdf,
        "q_log_uniform_values": log_unif(0, math.log(100)),
        "q_log_uniform": log_unif(0, 3),
        "q_normal": stats.norm(0, 3).cdf,
        "q_log_normal": stats.lognorm(s=0.5, scale=1).cdf,
        "q_beta": stats.beta(2, 2).cdf,
    }


@pytest.fixture(scope="module")
def samples():
    """N trials of one real study (RandomSampler, fixed seed) over every distribution at once."""
    params = {name: spec for name, (spec, _) in CONTINUOUS.items()}
    params.update(QUANTIZED)
    params.update(DISCRETE)
    config = parse_sweep({"method": "random", "parameters": params})
    study = optuna.create_study(sampler=sampler(config, seed=1234))
    drawn = []
    for _ in range(N):
        trial = study.ask()
        drawn.append(suggest(trial, config))
        study.tell(trial, 0.0)
    return config, study, drawn


def column(samples, name):
    return [d[name] for d in samples[2]]


# the widest of each form that the config check lets through (it refuses a little more)
WIDEST = {
    "uniform": {"min": -8e307, "max": 8e307},
    "q_uniform": {"distribution": "q_uniform", "min": -8e307, "max": 8e307, "q": 1},
    "log_uniform": {"distribution": "log_uniform", "min": -709.78, "max": 709.78},
    "q_log_uniform": {"distribution": "q_log_uniform", "min": -709.78, "max": 709.78, "q": 1.5},
    "normal": {"distribution": "normal", "mu": 1e307, "sigma": 2e307},
    "q_normal": {"distribution": "q_normal", "mu": 0, "sigma": 1e300, "q": 1e-7},
    "log_normal": {"distribution": "log_normal", "mu": 702.0, "sigma": 1.0},
    "log_normal_wide": {"distribution": "log_normal", "mu": 0.0, "sigma": 100.0},
    "q_log_normal": {"distribution": "q_log_normal", "mu": -100.0, "sigma": 114.0, "q": 1e-3},
    "q_beta": {"distribution": "q_beta", "q": 1e-307},
}


@pytest.mark.parametrize("name", WIDEST)
def test_the_widest_bounds_that_parse_give_finite_values_at_both_ends(name):
    config = parse_sweep({"method": "random", "parameters": {"x": WIDEST[name]}})
    p = config.parameters[0]
    if p.min is not None:  # the ends Optuna may draw (after exp for the natural-log bounds)
        ends = [p.min, p.max]
        if "log" in name:
            ends = [math.exp(p.min), math.exp(p.max)]
    else:  # the ends of the quantile normal and log-normal values are drawn from
        ends = [NORMAL_TAIL, 1.0 - NORMAL_TAIL] if "normal" in name else [0.0, 1.0]
    key = "x" if p.min is not None else "x/u"
    for end in ends:
        value = suggest_flat(optuna.trial.FixedTrial({key: end}), config)["x"]
        assert math.isfinite(value), (name, end, value)
    study = optuna.create_study(sampler=sampler(config, seed=0))
    for _ in range(50):
        trial = study.ask()
        assert math.isfinite(suggest_flat(trial, config)["x"])
        study.tell(trial, 0.0)


@pytest.mark.parametrize("name", CONTINUOUS)
def test_continuous_within_bounds_and_of_the_right_shape(samples, name):
    stats = pytest.importorskip("scipy.stats")
    xs = column(samples, name)
    lo, hi = CONTINUOUS[name][1]
    assert all(type(x) is float and lo <= x <= hi for x in xs)
    assert stats.kstest(xs, reference_cdfs()[name]).pvalue > 0.01


def test_the_shape_test_tells_distributions_apart(samples):
    stats = pytest.importorskip("scipy.stats")
    # log_uniform's natural-log bounds: read as value bounds or as a uniform, the test fails
    xs = column(samples, "log_uniform")
    assert stats.kstest(xs, stats.uniform(E ** -3, E - E ** -3).cdf).pvalue < 1e-6
    assert stats.kstest(column(samples, "beta"), stats.beta(5, 2).cdf).pvalue < 1e-6
    assert stats.kstest(column(samples, "normal"), stats.norm(2, 1).cdf).pvalue < 1e-6  # sigma ignored


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_are_multiples_of_q_with_wandbs_weights(samples, name):
    stats = pytest.importorskip("scipy.stats")
    q = QUANTIZED[name]["q"]
    xs = column(samples, name)
    assert all(type(x) is (int if isinstance(q, int) else float) for x in xs)
    assert all(abs(x / q - round(x / q)) < 1e-9 for x in xs)
    # each multiple k*q gathers the unquantized mass of [(k - 1/2) q, (k + 1/2) q]
    cdf = reference_cdfs()[name]
    counts: dict[int, int] = {}
    for x in xs:
        counts[round(x / q)] = counts.get(round(x / q), 0) + 1
    ks = range(min(counts) - 2, max(counts) + 3)
    expected = {k: (cdf((k + 0.5) * q) - cdf((k - 0.5) * q)) * N for k in ks}
    big = [k for k in ks if expected[k] >= 5]
    observed = [counts.get(k, 0) for k in big] + [N - sum(counts.get(k, 0) for k in big)]
    exp = [expected[k] for k in big] + [N - sum(expected[k] for k in big)]
    if exp[-1] < 1e-9:
        observed, exp = observed[:-1], exp[:-1]
    assert stats.chisquare(observed, exp).pvalue > 0.01


def test_q_uniform_ends_have_half_weight(samples):
    # wandb rounds a uniform on [0, 10] to multiples of 2.5: 0 and 10 get half the mass of the others
    xs = column(samples, "q_uniform")
    assert sorted(set(xs)) == [0.0, 2.5, 5.0, 7.5, 10.0]
    share = {v: xs.count(v) / N for v in set(xs)}
    assert abs(share[0.0] - 0.125) < 0.03 and abs(share[5.0] - 0.25) < 0.03


def test_discrete_uniform_and_probabilities(samples):
    stats = pytest.importorskip("scipy.stats")
    ints = column(samples, "int_uniform")
    assert all(type(x) is int for x in ints) and set(ints) == set(range(-2, 5))
    assert stats.chisquare([ints.count(v) for v in range(-2, 5)]).pvalue > 0.01

    cats = column(samples, "categorical")
    assert stats.chisquare([cats.count(v) for v in "abc"]).pvalue > 0.01

    objs = column(samples, "categorical_objects")
    kinds = [next(i for i, v in enumerate(DISCRETE["categorical_objects"]["values"])
                  if type(v) is type(o) and v == o) for o in objs]
    assert stats.chisquare([kinds.count(i) for i in range(5)]).pvalue > 0.01

    picked = column(samples, "probabilities")
    assert "never" not in picked
    observed = [picked.count(v) for v in "xyz"]
    assert stats.chisquare(observed, [0.6 * N, 0.3 * N, 0.1 * N]).pvalue > 0.01

    assert all(c == {"keep": [1, 2]} for c in column(samples, "constant"))


def test_optuna_parameter_names_are_the_dotted_paths(samples):
    config, study, drawn = samples
    params = study.get_trials(deepcopy=False)[0].params
    assert "constant" not in params
    assert {"uniform", "int_uniform", "categorical", "q_uniform"} <= set(params)
    assert {"normal/u", "beta/u", "probabilities/u", "categorical_objects/index"} <= set(params)
    assert params["categorical"] == drawn[0]["categorical"]
    assert params["uniform"] == drawn[0]["uniform"]


def test_values_are_copies(samples):
    config, _, drawn = samples
    lists = [d["categorical_objects"] for d in drawn if isinstance(d["categorical_objects"], list)]
    lists[0].append(99)
    assert lists[1] == [1, 2] and config.parameter("categorical_objects").values[0] == [1, 2]
    drawn[0]["constant"]["keep"].append(3)
    assert drawn[1]["constant"] == {"keep": [1, 2]} and config.parameter("constant").value == {"keep": [1, 2]}


def test_nested_parameters_give_a_nested_config():
    config = parse_sweep({"method": "random", "parameters": {
        "lr": {"value": 0.1},
        "opt": {"parameters": {"name": {"values": ["adam"]},
                               "betas": {"parameters": {"b1": {"min": 0.8, "max": 0.9}}}}},
        "a.b": {"value": 1},  # a dotted top-level name stays one key
    }})
    study = optuna.create_study(sampler=sampler(config, seed=0))
    trial = study.ask()
    cfg = suggest(trial, config)
    assert set(cfg) == {"lr", "opt", "a.b"} and cfg["lr"] == 0.1 and cfg["a.b"] == 1
    assert cfg["opt"]["name"] == "adam" and 0.8 <= cfg["opt"]["betas"]["b1"] <= 0.9
    assert set(trial.params) == {"opt.name", "opt.betas.b1"}
    assert suggest_flat(trial, config) == {"a.b": 1, "lr": 0.1, "opt.betas.b1": cfg["opt"]["betas"]["b1"],
                                           "opt.name": "adam"}


def test_same_seed_same_trials():
    config = parse_sweep({"method": "random", "parameters": {
        "x": {"distribution": "normal"}, "n": {"min": 0, "max": 100}, "c": {"values": [[1], [2], [3]]}}})

    def draw(seed):
        study = optuna.create_study(sampler=sampler(config, seed=seed))
        return [suggest(study.ask(), config) for _ in range(20)]

    assert draw(7) == draw(7) != draw(8)


def test_probability_quantile_edges_pick_the_first_and_last_possible_values():
    config = parse_sweep({"method": "random", "parameters": {
        "x": {"values": ["zero", "a", "b", "zero2"], "probabilities": [0.0, 0.5, 0.5, 0.0]}}})
    study = optuna.create_study(sampler=sampler(config, seed=0))
    for u, expected in [(0.0, "a"), (0.4999, "a"), (0.5, "b"), (1.0, "b")]:
        study.enqueue_trial({"x/u": u})
        assert suggest(study.ask(), config) == {"x": expected}


def test_grid_replays_every_enqueued_point_then_stops():
    config = parse_sweep({"method": "grid", "parameters": {
        "layers": {"values": [[64, 64], [32], None, [64, 64]]},
        "n": {"min": 1, "max": 2},
        "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}, "eps": {"value": 1e-8}}},
        "p": {"distribution": "q_uniform", "min": 0.05, "max": 0.3, "q": 0.1},  # grid 0.0 .. 0.3
        "b": {"values": [1, True, 1.5]},  # 1 and True look alike to Optuna
    }})
    points = config.grid_points()
    assert len(points) == 3 * 2 * 2 * 4 * 3
    study = optuna.create_study(sampler=sampler(config))
    for params in grid_trials(config):
        study.enqueue_trial(params)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "out of range" warning from Optuna
        replayed = []
        for _ in points:
            trial = study.ask()
            replayed.append(suggest_flat(trial, config))
            study.tell(trial, 0.0)
    assert replayed == points
    assert [(p["b"], type(p["b"])) for p in replayed[::48]] == [(1, int), (True, bool), (1.5, float)]
    assert sorted({p["p"] for p in replayed}) == [0.0, 0.1, 0.2, 0.3]
    with pytest.raises(GridExhausted, match="every grid point is taken"):
        suggest(study.ask(), config)


def test_sampler_per_method():
    base = {"metric": {"name": "m"}, "parameters": {"x": {"values": [1, 2]}}}
    samplers = optuna.samplers
    assert isinstance(sampler(parse_sweep({**base, "method": "random"}), seed=1), samplers.RandomSampler)
    assert isinstance(sampler(parse_sweep({**base, "method": "bayes"}), seed=1), samplers.TPESampler)
    assert isinstance(sampler(parse_sweep({**base, "method": "grid"})), samplers.BaseSampler)


def test_bayes_beats_random_on_a_quadratic():
    config = {"metric": {"name": "loss", "goal": "minimize"}, "parameters": {
        "x": {"min": -5.0, "max": 5.0}, "y": {"min": -5.0, "max": 5.0}}}

    def best(method, seed):
        cfg = parse_sweep({**config, "method": method})
        study = optuna.create_study(sampler=sampler(cfg, seed=seed), direction="minimize")
        for _ in range(30):
            trial = study.ask()
            c = suggest(trial, cfg)
            study.tell(trial, (c["x"] - 1.3) ** 2 + (c["y"] + 0.7) ** 2)
        return study.best_value

    seeds = range(5)
    tpe = statistics.median(best("bayes", s) for s in seeds)
    rnd = statistics.median(best("random", s) for s in seeds)
    assert tpe < rnd


def test_beta_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    for a, b in [(0.5, 0.5), (2, 5), (1, 1), (0.3, 4), (30, 2)]:
        for x in (1e-6, 0.01, 0.3, 0.5, 0.9, 0.999):
            assert beta_cdf(x, a, b) == pytest.approx(stats.beta.cdf(x, a, b), abs=1e-11)
        for u in (1e-9, 0.01, 0.5, 0.77, 0.999999):
            assert beta_ppf(u, a, b) == pytest.approx(stats.beta.ppf(u, a, b), abs=1e-10)
    assert (beta_ppf(0.0, 2, 2), beta_ppf(1.0, 2, 2)) == (0.0, 1.0)


def test_importing_the_sweep_modules_imports_neither_optuna_nor_yaml():
    code = ("import sys, nbtracker, nbtracker.sweeps.config, nbtracker.sweeps.space;"
            "print(sorted(m for m in ('optuna', 'yaml') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
