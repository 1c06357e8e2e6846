"""The sweep format: wandb's examples parse, defaults are inferred as wandb infers them, every
invalid config gets one error listing each problem by its key path, grids enumerate every point once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nbtracker.sweeps.config import GRID_LIMIT, SweepConfigError, nest, parse_sweep, quantize

# wandb's documented example, with a nested group, early termination and the command macros
WANDB_YAML = """\
program: train.py
method: bayes
name: my-sweep
description: a sweep like wandb's docs
project: mnist
entity: team
metric:
  name: val/loss
  goal: minimize
  target: 0.05
run_cap: 20
parameters:
  learning_rate:
    distribution: log_uniform_values
    min: 1e-5
    max: 0.1
  batch_size:
    values: [32, 64, 128]
  epochs:
    value: 10
  dropout:
    min: 0.1
    max: 0.5
  layers:
    min: 1
    max: 4
  momentum:
    distribution: normal
    mu: 0.9
    sigma: 0.02
  optimizer:
    parameters:
      name:
        values: [adam, sgd]
        probabilities: [0.7, 0.3]
      beta:
        distribution: q_uniform
        min: 0.8
        max: 0.99
        q: 0.01
early_terminate:
  type: hyperband
  min_iter: 3
command:
  - ${env}
  - ${interpreter}
  - ${program}
  - --verbose
  - ${args}
"""


def errors(config) -> list[str]:
    with pytest.raises(SweepConfigError) as info:
        parse_sweep(config)
    assert isinstance(info.value, ValueError)
    assert str(info.value).startswith("invalid sweep config:")
    return info.value.problems


def one_error(config) -> str:
    problems = errors(config)
    assert len(problems) == 1, problems
    return problems[0]


ONE = {"x": {"values": [1]}}


def hb(early_terminate: dict) -> dict:
    return {"method": "random", "metric": {"name": "m"}, "parameters": ONE,
            "early_terminate": early_terminate}


def sweep(**params) -> dict:
    return {"method": "random", "parameters": params}


def test_wandb_example_yaml_text_file_and_dict_agree(tmp_path):
    from_text = parse_sweep(WANDB_YAML)
    path = tmp_path / "sweep.yaml"
    path.write_text(WANDB_YAML)
    assert parse_sweep(path) == from_text
    assert parse_sweep(str(path)) == from_text
    import yaml

    as_json = tmp_path / "sweep.json"
    data = yaml.safe_load(WANDB_YAML)
    data["parameters"]["learning_rate"]["min"] = 1e-5  # YAML 1.1 reads 1e-5 as text
    as_json.write_text(json.dumps(data))
    assert parse_sweep(as_json) == from_text
    assert parse_sweep(data) == from_text

    c = from_text
    assert (c.method, c.program, c.name, c.project, c.entity, c.run_cap) == (
        "bayes", "train.py", "my-sweep", "mnist", "team", 20)
    assert c.description == "a sweep like wandb's docs"
    assert (c.metric.name, c.metric.goal, c.metric.target) == ("val/loss", "minimize", 0.05)
    et = c.early_terminate
    assert (et.type, et.min_iter, et.max_iter, et.s, et.eta, et.strict) == (
        "hyperband", 3, None, None, 3, True)
    assert c.command == ("${env}", "${interpreter}", "${program}", "--verbose", "${args}")
    assert [p.name for p in c.parameters] == [  # sorted by path, as wandb orders them
        "batch_size", "dropout", "epochs", "layers", "learning_rate", "momentum", "optimizer.beta",
        "optimizer.name"]
    assert {p.name: p.distribution for p in c.parameters} == {
        "batch_size": "categorical", "dropout": "uniform", "epochs": "constant", "layers": "int_uniform",
        "learning_rate": "log_uniform_values", "momentum": "normal", "optimizer.beta": "q_uniform",
        "optimizer.name": "categorical_w_probabilities"}
    lr = c.parameter("learning_rate")
    assert (lr.min, lr.max) == (1e-5, 0.1) and isinstance(lr.min, float)
    assert c.parameter("optimizer.name").path == ("optimizer", "name")
    assert c.parameter("optimizer.name").probabilities == (0.7, 0.3)
    assert c.raw["parameters"]["epochs"] == {"value": 10}


def test_wandb_repository_examples_parse():
    # examples/local-controller/sweep-local-hyperband.yaml of wandb/sweeps
    c = parse_sweep("""
description: sweep examples using local controller and hyperband
program: train-local.py
project: sweeps-examples
method: grid
controller:
  type: local
metric:
  name: loss_metric
  goal: minimize
early_terminate:
  type: hyperband
  max_iter: 10
  s: 2
  eta: 3
parameters:
  epochs:
    value: 20
  base:
    values: [10,15,20]
  increment:
    values: [0.1,0.2,0.3]
  direction:
    values: [-1,0.1,1]
""")
    assert (c.early_terminate.max_iter, c.early_terminate.s, c.early_terminate.eta) == (10, 2, 3)
    assert c.raw["controller"] == {"type": "local"}
    assert c.grid_size() == 27 and len(c.grid_points()) == 27


@pytest.mark.parametrize("spec, distribution, defaults", [
    ({"value": 3}, "constant", {"value": 3}),
    ({"value": None}, "constant", {"value": None}),
    ({"values": [1, "a", [2]]}, "categorical", {"values": (1, "a", [2])}),
    ({"values": [1, 2], "probabilities": [0.25, 0.75]}, "categorical_w_probabilities", {}),
    ({"distribution": "categorical", "values": [1, 2], "probabilities": [0.5, 0.5]},
     "categorical_w_probabilities", {}),
    ({"min": 1, "max": 5}, "int_uniform", {"min": 1, "max": 5}),
    ({"min": 1, "max": 5.0}, "uniform", {}),
    ({"min": 0.5, "max": 5}, "uniform", {}),
    ({"distribution": "uniform", "min": 1, "max": 5}, "uniform", {}),
    ({"distribution": "q_uniform", "min": 0, "max": 10}, "q_uniform", {"q": 1.0}),
    ({"distribution": "q_log_uniform_values", "min": 1, "max": 100}, "q_log_uniform_values", {"q": 1.0}),
    ({"distribution": "normal"}, "normal", {"mu": 0.0, "sigma": 1.0}),
    ({"distribution": "q_normal", "q": 2}, "q_normal", {"mu": 0.0, "sigma": 1.0, "q": 2}),
    ({"distribution": "log_normal", "mu": 1}, "log_normal", {"mu": 1, "sigma": 1.0}),
    ({"distribution": "q_log_normal"}, "q_log_normal", {"q": 1.0}),
    ({"distribution": "beta"}, "beta", {"a": 1.0, "b": 1.0}),
    ({"distribution": "q_beta", "a": 2, "q": 0.1}, "q_beta", {"a": 2, "b": 1.0, "q": 0.1}),
    ({"distribution": "log_uniform", "min": -5, "max": 0}, "log_uniform", {}),
    ({"distribution": "inv_log_uniform", "min": 0, "max": 3}, "inv_log_uniform", {}),
    ({"distribution": "inv_log_uniform_values", "min": 0.1, "max": 3}, "inv_log_uniform_values", {}),
    ({"distribution": "q_log_uniform", "min": 0, "max": 3, "q": 1}, "q_log_uniform", {"q": 1}),
])
def test_distribution_inferred_and_defaults_filled(spec, distribution, defaults):
    p = parse_sweep(sweep(x=spec)).parameter("x")
    assert p.distribution == distribution
    for key, value in defaults.items():
        assert getattr(p, key) == value and type(getattr(p, key)) is type(value), key


def test_metric_goal_defaults_to_minimize_and_target_is_optional():
    c = parse_sweep({"method": "bayes", "metric": {"name": "acc"}, "parameters": ONE})
    assert (c.metric.goal, c.metric.target) == ("minimize", None)
    c = parse_sweep({"method": "random", "metric": {"name": "acc", "goal": "maximize", "impute": "worst"},
                     "parameters": ONE})
    assert c.metric.goal == "maximize" and c.raw["metric"]["impute"] == "worst"


def test_hyperband_defaults():
    base = {"method": "random", "metric": {"name": "m"}, "parameters": ONE}
    et = {"type": "hyperband", "max_iter": 27, "s": 3}
    hb = parse_sweep({**base, "early_terminate": et}).early_terminate
    assert (hb.min_iter, hb.max_iter, hb.s, hb.eta, hb.strict) == (None, 27, 3, 3, True)
    hb = parse_sweep({**base, "early_terminate": {"type": "hyperband", "min_iter": 2, "eta": 2,
                                                  "strict": False}}).early_terminate
    assert (hb.min_iter, hb.eta, hb.strict) == (2, 2, False)


def test_yaml_exponent_floats_are_numbers_not_strings():
    c = parse_sweep("method: random\nparameters:\n"
                    "  lr: {distribution: log_uniform_values, min: 1e-5, max: 1E-1}\n"
                    "  wd: {values: [1e-4, 3.0e-4, '1e-3']}\n")
    assert (c.parameter("lr").min, c.parameter("lr").max) == (1e-5, 0.1)
    assert c.parameter("wd").values == (1e-4, 3e-4, "1e-3")  # quoted stays text


def test_config_is_frozen_and_independent_of_the_input():
    spec = {"values": [[1, 2], {"a": 1}]}
    c = parse_sweep(sweep(x=spec))
    spec["values"][0].append(3)
    assert c.parameter("x").values == ([1, 2], {"a": 1})
    with pytest.raises(AttributeError):
        c.method = "grid"


# -- every validation error names its key path --------------------------------------------------

@pytest.mark.parametrize("config, expected", [
    ({"parameters": ONE}, "method: missing"),
    ({"method": "hill", "parameters": ONE}, "method: must be grid, random or bayes"),
    ({"method": "custom", "parameters": ONE}, "method: custom schedulers are not supported"),
    ({"method": "random"}, "parameters: missing"),
    ({"method": "random", "parameters": {}}, "parameters: is empty"),
    ({"method": "random", "parameters": [1]}, "parameters: must be a mapping"),
    ({"method": "random", "parameters": ONE, "epochs": 3}, "epochs: unknown key"),
    ({"method": "random", "parameters": ONE, "job": "j"}, "job: wandb Launch jobs"),
    ({"method": "random", "parameters": ONE, "metrics": []}, "metrics: multi-objective"),
    ({"method": "random", "parameters": ONE, "scheduler": {}}, "scheduler: custom"),
    (sweep(x=3), "parameters.x: must be a mapping"),
    (sweep(**{"1x": {"value": 1}}), "parameters.1x: a parameter name starts with"),
    (sweep(x={}), "parameters.x: is empty"),
    (sweep(x={"min": 1}), "parameters.x: cannot infer a distribution"),
    (sweep(x={"distribution": "gamma"}), "parameters.x.distribution: unknown distribution 'gamma'"),
    (sweep(x={"values": [1], "mu": 0}), "parameters.x.mu: not a key of a categorical parameter"),
    (sweep(x={"value": 1, "values": [1]}), "parameters.x.values: not a key of a constant parameter"),
    (sweep(x={"distribution": "uniform", "min": 0}), "parameters.x.max: missing; a uniform parameter needs"),
    (sweep(x={"values": []}), "parameters.x.values: must be a non-empty list"),
    (sweep(x={"values": 3}), "parameters.x.values: must be a non-empty list"),
    (sweep(x={"min": 2, "max": 1}), "parameters.x: min 2 is not less than max 1"),
    (sweep(x={"min": 1.0, "max": 1.0}), "parameters.x: min 1.0 is not less than max 1.0"),
    (sweep(x={"min": "0", "max": 1}), "parameters.x.min: must be a number, not '0' (a string"),
    (sweep(x={"min": True, "max": 2}), "parameters.x.min: must be a number, not True"),
    (sweep(x={"min": 0.0, "max": float("inf")}), "parameters.x.max: must be a finite number"),
    (sweep(x={"distribution": "int_uniform", "min": 0.5, "max": 2}), "parameters.x.min: must be an integer"),
    (sweep(x={"distribution": "log_uniform_values", "min": 0, "max": 1}), "parameters.x.min: must be > 0"),
    (sweep(x={"distribution": "q_log_uniform_values", "min": -1, "max": 1}), "parameters.x.min: must be > 0"),
    (sweep(x={"distribution": "inv_log_uniform_values", "min": 0.0, "max": 1}),
     "parameters.x.min: must be > 0"),
    (sweep(x={"distribution": "log_uniform", "min": 1e-5, "max": 1000}),
     "parameters.x.max: 1000 is a natural-log bound and exp(1000) overflows; "
     "did you mean log_uniform_values?"),
    (sweep(x={"distribution": "q_uniform", "min": 0, "max": 1, "q": 0}), "parameters.x.q: must be > 0"),
    # values a float cannot hold: refused here, not left to overflow when the agent draws them
    (sweep(x={"distribution": "log_normal", "mu": 800}),
     "parameters.x: exp(mu + 7.03 sigma) = exp(807.034) overflows (mu 800, sigma 1.0); a log_normal "
     "takes mu and sigma of the natural log of the value"),
    (sweep(x={"distribution": "q_log_normal", "sigma": 200}), "parameters.x: exp(mu + 7.03 sigma)"),
    (sweep(x={"min": -1e308, "max": 1e308}), "parameters.x: max - min overflows a float"),
    (sweep(x={"distribution": "q_uniform", "min": -1e308, "max": 1e308}),
     "parameters.x: max - min overflows a float"),
    (sweep(x={"distribution": "normal", "sigma": 1e308}), "parameters.x: mu ± 7.03 sigma"),
    (sweep(x={"distribution": "q_uniform", "min": 0, "max": 1e300, "q": 1e-10}),
     "parameters.x.q: 1e-10 is too small for values up to 1e+300"),
    (sweep(x={"distribution": "q_beta", "q": 1e-320}), "parameters.x.q: 1e-320 is too small"),
    (sweep(x={"distribution": "normal", "sigma": -1}), "parameters.x.sigma: must be > 0"),
    (sweep(x={"distribution": "beta", "a": 0}), "parameters.x.a: must be > 0"),
    (sweep(x={"values": [1, 2], "probabilities": [0.5]}),
     "parameters.x.probabilities: has 1 entries for 2 values"),
    (sweep(x={"values": [1, 2], "probabilities": [0.5, 0.6]}), "parameters.x.probabilities: sum to 1.1"),
    (sweep(x={"values": [1, 2], "probabilities": [-0.5, 1.5]}),
     "parameters.x.probabilities: must be a list of"),
    (sweep(g={"parameters": ONE, "values": [2]}),
     "parameters.g: a parameter group takes only 'parameters'"),
    (sweep(g={"parameters": {"h": {"parameters": {"x": {"min": 3, "max": 1}}}}}),
     "parameters.g.parameters.h.parameters.x: min 3 is not less than max 1"),
    (sweep(g={"parameters": {"x": {"value": 1}}}, **{"g.x": {"value": 2}}),
     "parameters.g.x: two parameters have this dotted name"),
    ({"method": "bayes", "parameters": ONE}, "metric: missing; method bayes needs a metric"),
    ({"method": "random", "metric": {"goal": "minimize"}, "parameters": ONE}, "metric.name: missing"),
    ({"method": "random", "metric": {"name": "m", "goal": "min"}, "parameters": ONE},
     "metric.goal: must be minimize or maximize, not 'min'"),
    ({"method": "random", "metric": {"name": "m", "target": "low"}, "parameters": ONE},
     "metric.target: must be a number"),
    ({"method": "random", "metric": {"name": "m", "step": 1}, "parameters": ONE},
     "metric.step: unknown key"),
    ({"method": "random", "metric": "loss", "parameters": ONE}, "metric: must be a mapping"),
    ({"method": "random", "parameters": ONE, "early_terminate": {"type": "hyperband", "min_iter": 3}},
     "metric: missing; early_terminate needs a metric"),
    (hb({"type": "hyperband"}), "early_terminate: needs min_iter, or max_iter with s"),
    (hb({"type": "hyperband", "max_iter": 9}), "early_terminate: needs min_iter, or max_iter with s"),
    (hb({"type": "median", "min_iter": 1}), "early_terminate.type: must be hyperband"),
    (hb({"type": "hyperband", "min_iter": 0}), "early_terminate.min_iter: must be >= 1"),
    (hb({"type": "hyperband", "min_iter": 1.5}), "early_terminate.min_iter: must be an integer"),
    (hb({"type": "hyperband", "max_iter": 27, "s": 1.5}), "early_terminate.s: must be an integer"),
    (hb({"type": "hyperband", "max_iter": 27, "s": 0}), "early_terminate.s: must be >= 1"),
    (hb({"type": "hyperband", "min_iter": 1, "eta": 1}), "early_terminate.eta: must be > 1"),
    (hb({"type": "hyperband", "min_iter": 1, "strict": "yes!"}), "early_terminate.strict: must be true"),
    (hb({"type": "hyperband", "min_iter": 1, "bands": 3}), "early_terminate.bands: unknown key"),
    ({"method": "random", "parameters": ONE, "run_cap": 0}, "run_cap: must be > 0"),
    ({"method": "random", "parameters": ONE, "run_cap": 2.5}, "run_cap: must be an integer"),
    ({"method": "random", "parameters": ONE, "program": 3}, "program: must be a string"),
    ({"method": "random", "parameters": ONE, "command": "python train.py"},
     "command: must be a list of strings"),
    ({"method": "random", "parameters": ONE, "command": ["python", {"a": 1}]},
     "command[1]: must be a string"),
    ({"method": "random", "parameters": ONE, "command": ["${interpreter}", "${program}"]},
     "program: missing; command uses ${program}"),
    ({"method": "random", "program": "t.py", "parameters": ONE, "command": ["${program}", "${arg}"]},
     "command[1]: unknown macro ${arg}"),
    ({"method": "grid", "parameters": {"x": {"min": 0.0, "max": 1.0}}},
     "parameters.x: a uniform distribution cannot be enumerated by a grid"),
    ({"method": "grid", "parameters": {"g": {"parameters": {"x": {"distribution": "normal"}}}}},
     "parameters.g.parameters.x: a normal distribution cannot be enumerated by a grid"),
    ({"method": "grid", "parameters": {"x": {"values": [1, 2], "probabilities": [0.5, 0.5]}}},
     "parameters.x: grid sweeps take no probabilities"),
    ({"method": "grid", "parameters": {"x": {"min": 0, "max": 1000}, "y": {"min": 0, "max": 1000}}},
     f"parameters: the grid has 1002001 points, more than {GRID_LIMIT}"),
])
def test_each_invalid_config_gets_one_error_naming_the_path(config, expected):
    message = one_error(config)
    assert message.startswith(expected), message


def test_all_problems_are_listed_at_once():
    problems = errors({
        "method": "bayes", "extra": 1,
        "parameters": {"a": {"min": 2, "max": 1}, "g": {"parameters": {"b": {"values": []}}}},
        "command": ["${program}"],
    })
    assert [p.split(":")[0] for p in problems] == [
        "extra", "metric", "parameters.a", "parameters.g.parameters.b.values", "program"]


def test_every_macro_the_agent_expands_is_accepted(tmp_path):
    # wandb's agent knows the hydra macros too; a config using one must not be refused
    from nbtracker.sweeps.process import MACROS, build_command

    command = ["${env}", "${interpreter}", "${program}"] + [
        "${" + m + "}" for m in sorted(MACROS - {"env", "interpreter", "program"})]
    cfg = parse_sweep({"method": "grid", "program": "train.py", "command": command,
                       "parameters": {"lr": {"values": [0.1]}}})
    argv = build_command(cfg.command, cfg.program, {"lr": 0.1}, tmp_path).argv
    assert "+lr=0.1" in argv and "++lr=0.1" in argv


@pytest.mark.parametrize("source, expected", [
    ("method: [grid\n", "the sweep text: invalid YAML at line 2"),
    ("- a\n- b\n", "a sweep config is a mapping of keys, not list"),
    ("missing.yaml", "cannot read the sweep file 'missing.yaml'"),
    (12, "a sweep config is a dict, YAML text or a file path, not int"),
])
def test_unreadable_sources(source, expected):
    assert one_error(source).startswith(expected)


def test_invalid_json_file(tmp_path):
    path = tmp_path / "s.json"
    path.write_text('{"method": "grid",}')
    assert one_error(Path(path)).startswith(f"{path}: invalid JSON at line 1")


# -- grids ----------------------------------------------------------------------------------------

def test_grid_points_every_combination_once_in_wandb_order():
    c = parse_sweep({"method": "grid", "parameters": {
        "b": {"values": [1, 2, 3]},
        "a": {"value": "k"},
        "opt": {"parameters": {"lr": {"values": [0.1, 0.01]}, "beta": {"min": 1, "max": 2}}},
    }})
    points = c.grid_points()
    assert c.grid_size() == len(points) == 3 * 2 * 2
    assert points[:3] == [
        {"a": "k", "b": 1, "opt.beta": 1, "opt.lr": 0.1},
        {"a": "k", "b": 1, "opt.beta": 1, "opt.lr": 0.01},
        {"a": "k", "b": 1, "opt.beta": 2, "opt.lr": 0.1},
    ]
    assert len({json.dumps(p, sort_keys=True) for p in points}) == len(points)
    assert points == c.grid_points()  # stable
    assert nest(points[0], c) == {"a": "k", "b": 1, "opt": {"beta": 1, "lr": 0.1}}


def test_grid_takes_unhashable_values_and_equal_values_once():
    c = parse_sweep({"method": "grid", "parameters": {
        "layers": {"values": [[64, 64], [128], [64, 64], {"kind": "mlp"}, None]},
        "x": {"values": [3, 3.0, 4]},  # 3.0 and 3 are one value (wandb hashes them alike)
    }})
    points = c.grid_points()
    assert [p["layers"] for p in points[::2]] == [[64, 64], [128], {"kind": "mlp"}, None]
    assert [p["x"] for p in points[:2]] == [3, 4]
    assert len(points) == 8
    points[0]["layers"].append(1)
    assert c.grid_points()[0]["layers"] == [64, 64]


def test_grid_int_uniform_and_q_uniform_enumerate_their_range():
    c = parse_sweep({"method": "grid", "parameters": {
        "n": {"min": -1, "max": 2},
        "p": {"distribution": "q_uniform", "min": 0.0, "max": 0.5, "q": 0.1},
        "k": {"distribution": "q_uniform", "min": 0, "max": 10, "q": 5},
    }})
    assert c.parameter("n").grid_values() == [-1, 0, 1, 2]
    assert c.parameter("p").grid_values() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert c.parameter("k").grid_values() == [0, 5, 10]
    assert all(type(v) is int for v in c.parameter("k").grid_values())
    assert c.grid_size() == len(c.grid_points()) == 4 * 6 * 3


def test_quantize():
    assert quantize(0.34, 0.1) == 0.3 and quantize(7.4, 2) == 8 and type(quantize(7.4, 2)) is int
    assert quantize(2.5, 1) == 2 and quantize(3.5, 1) == 4  # halves to even, as numpy's round
    assert type(quantize(3.2, 1.0)) is float


@pytest.mark.parametrize("et, problem", [
    ({"type": "hyperband", "min_iter": 3, "max_iter": 27, "s": 2}, "early_terminate.min_iter: and max_iter"),
    ({"type": "hyperband", "min_iter": 3, "s": 2}, "early_terminate.s: counts brackets down"),
    ({"type": "hyperband", "max_iter": 2, "s": 2}, "early_terminate.max_iter: 2 / eta 3 is below 1"),
])
def test_early_terminate_the_pruner_would_refuse_is_refused_when_parsed(et, problem):
    with pytest.raises(SweepConfigError) as err:
        parse_sweep(hb(et))
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


@pytest.mark.parametrize("et", [
    {"type": "hyperband", "min_iter": 3}, {"type": "hyperband", "min_iter": 1, "eta": 2.5},
    {"type": "hyperband", "max_iter": 27, "s": 2, "strict": False},
    {"type": "hyperband", "max_iter": 3, "s": 5},
])
def test_every_early_terminate_that_parses_makes_a_pruner(et):
    pytest.importorskip("optuna")
    from nbtracker.sweeps.hyperband import HyperbandPruner

    cfg = parse_sweep(hb(et))
    assert HyperbandPruner(cfg.raw["early_terminate"], goal=cfg.metric.goal).brackets


def test_the_pruner_refuses_no_early_terminate_that_parses():
    # hyperband.py checks early_terminate again when the agent makes its pruner; what it refuses
    # must be refused here already, or a sweep is made that no agent can run
    pytest.importorskip("optuna")
    import itertools

    from nbtracker.errors import UsageError
    from nbtracker.sweeps.hyperband import HyperbandPruner

    absent = object()
    choices = {
        "min_iter": [absent, 1, 3, 3.0, 1.5, 0, -2, True],
        "max_iter": [absent, 1, 2, 27, 27.0, 2.5, 0],
        "s": [absent, 1, 2, 2.0, 1.5, 0, False],
        "eta": [absent, 1, 1.5, 3, 30, 0.5],
        "strict": [absent, False],
    }
    parsed = 0
    for combo in itertools.product(*choices.values()):
        et = {"type": "hyperband", **{k: v for k, v in zip(choices, combo) if v is not absent}}
        try:
            cfg = parse_sweep(hb(et))
        except SweepConfigError:
            continue
        parsed += 1
        try:
            HyperbandPruner(cfg.raw["early_terminate"], goal=cfg.metric.goal)
        except UsageError as e:
            raise AssertionError(f"{et} parses but the pruner refuses it: {e}") from None
    assert parsed >= 30  # 32 of the combinations are valid
