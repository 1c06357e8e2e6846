"""Hyperband early termination: wandb's brackets and decision rule, as an Optuna pruner.

Expected values are worked out by hand from wandb's `sweeps/hyperband_stopping.py`; the runs of
wandb's own tests (`tests/test_hyperband_stopping.py`) are replayed through real Optuna studies.
"""

from __future__ import annotations

import doctest
import math

import pytest

optuna = pytest.importorskip("optuna")

from nbtracker.errors import UsageError  # noqa: E402
from nbtracker.sweeps import hyperband  # noqa: E402
from nbtracker.sweeps.hyperband import (  # noqa: E402
    HyperbandPruner,
    brackets,
    should_stop,
    validate_early_terminate,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
HB = {"type": "hyperband"}


def test_docstring_examples():
    assert doctest.testmod(hyperband).failed == 0


# -- brackets ---------------------------------------------------------------------------------


def test_min_iter_brackets_are_powers_of_eta():
    got = brackets({**HB, "min_iter": 3})
    assert got[:4] == [3, 9, 27, 81]
    assert got == [3 * 3**k for k in range(len(got))]
    assert got[-1] <= 2**53 < got[-1] * 3  # bounded, past any history
    assert brackets({**HB, "min_iter": 2, "eta": 2})[:5] == [2, 4, 8, 16, 32]


@pytest.mark.parametrize(
    "early_terminate, expected",
    [
        ({"max_iter": 27, "s": 2}, [3, 9]),  # max_iter itself is not a bracket
        ({"max_iter": 81, "s": 3}, [3, 9, 27]),  # wandb test_hyperband_max_iter_bands
        ({"max_iter": 18, "s": 2}, [2, 6]),  # wandb test_init_from_max_iter
        ({"max_iter": 5, "s": 2, "eta": 2}, [1, 2]),  # 2.5 -> 2, 1.25 -> 1
        ({"max_iter": 10, "s": 5}, [1, 3]),  # 10/27 < 1: fewer brackets than s
        ({"max_iter": 3, "s": 1}, [1]),
    ],
)
def test_max_iter_brackets(early_terminate, expected):
    assert brackets({**HB, **early_terminate}) == expected


def test_float_eta_brackets_truncate_like_wandb():
    # wandb's extensive test: min_iter 30, eta 1.5 -> 30, 45, 67 (67.5 truncated), 101 (101.25)
    assert brackets({**HB, "min_iter": 30, "eta": 1.5})[:4] == [30, 45, 67, 101]
    # small brackets repeat after truncation, as in wandb
    assert brackets({**HB, "min_iter": 1, "eta": 1.5})[:4] == [1, 1, 2, 3]


# -- validation -------------------------------------------------------------------------------


def test_defaults_filled_as_wandb():
    assert validate_early_terminate({**HB, "min_iter": 3}) == {
        "type": "hyperband",
        "min_iter": 3,
        "eta": 3,
        "strict": True,
    }
    assert validate_early_terminate({**HB, "max_iter": 27.0, "s": 2, "strict": False}) == {
        "type": "hyperband",
        "max_iter": 27,
        "s": 2,
        "eta": 3,
        "strict": False,
    }


@pytest.mark.parametrize(
    "early_terminate, names",
    [
        ("hyperband", ["early_terminate must be a mapping"]),
        ({"min_iter": 3}, ["early_terminate.type", "missing"]),
        ({"type": "median", "min_iter": 3}, ["early_terminate.type", "'median'"]),
        ({**HB}, ["early_terminate needs min_iter, or max_iter and s"]),
        ({**HB, "min_iter": 3, "max_iter": 27, "s": 2}, ["early_terminate.min_iter", "give one"]),
        ({**HB, "max_iter": 27}, ["early_terminate.s", "missing"]),
        ({**HB, "min_iter": 3, "s": 2}, ["early_terminate.s", "min_iter"]),
        ({**HB, "min_iter": 0}, ["early_terminate.min_iter", "positive integer", "0"]),
        ({**HB, "min_iter": 2.5}, ["early_terminate.min_iter", "2.5"]),
        ({**HB, "min_iter": True}, ["early_terminate.min_iter", "True"]),
        ({**HB, "min_iter": "3"}, ["early_terminate.min_iter", "'3'"]),
        ({**HB, "max_iter": -9, "s": 2}, ["early_terminate.max_iter", "-9"]),
        ({**HB, "max_iter": 27, "s": 0}, ["early_terminate.s", "0"]),
        ({**HB, "max_iter": 2, "s": 2}, ["early_terminate.max_iter", "no bracket"]),
        ({**HB, "min_iter": 3, "eta": 1}, ["early_terminate.eta", "greater than 1", "1"]),
        ({**HB, "min_iter": 3, "eta": math.inf}, ["early_terminate.eta", "inf"]),
        ({**HB, "min_iter": 3, "eta": "3"}, ["early_terminate.eta", "'3'"]),
        ({**HB, "min_iter": 3, "strict": "yes"}, ["early_terminate.strict", "'yes'"]),
        ({**HB, "min_iter": 3, "etta": 2}, ["early_terminate.etta", "not a hyperband setting"]),
    ],
)
def test_bad_early_terminate_gets_one_clear_error(early_terminate, names):
    with pytest.raises(UsageError) as err:
        validate_early_terminate(early_terminate)
    for name in names:
        assert name in str(err.value)
    with pytest.raises(UsageError):
        HyperbandPruner(early_terminate)


def test_bad_goal():
    with pytest.raises(UsageError, match="metric.goal .* 'lower'"):
        HyperbandPruner({**HB, "min_iter": 3}, goal="lower")
    with pytest.raises(UsageError, match="metric.goal"):
        should_stop([1, 2, 3], [], bracket=3, goal="max")


# -- the decision rule, by hand ---------------------------------------------------------------


def test_threshold_is_the_top_one_over_eta_including_the_run_itself():
    # values at bracket 3: [1, 2, 9] + own 4 -> sorted [1, 2, 4, 9], index int(4/3) = 1 -> 2
    assert should_stop([5, 4, 4], [1, 2, 9], bracket=3) is True
    assert should_stop([5, 4, 2], [1, 2, 9], bracket=3) is False  # equal is not worse
    # own 1.5 -> sorted [1, 1.5, 2, 9], threshold 1.5: not worse than itself
    assert should_stop([5, 4, 1.5], [1, 2, 9], bracket=3) is False
    # alone at a bracket, a run is its own threshold
    assert should_stop([9, 9, 9], [], bracket=3) is False
    # eta 2: [1, 2, 9, 4] -> index int(4/2) = 2 -> 4: 4 passes
    assert should_stop([5, 4, 4], [1, 2, 9], bracket=3, eta=2) is False
    # eta 1.5: index int(4/1.5) = 2: [1, 2, 9, 10] -> 9; [1, 2, 8, 9] -> 8
    assert should_stop([5, 4, 10], [1, 2, 9], bracket=3, eta=1.5) is True
    assert should_stop([5, 4, 8], [1, 2, 9], bracket=3, eta=1.5) is False


def test_strict_judges_the_value_at_the_bracket_loose_the_best_so_far():
    history = [0.5, 4, 4]  # best early, bad at the bracket
    assert should_stop(history, [1, 2, 9], bracket=3, strict=True) is True
    assert should_stop(history, [1, 2, 9], bracket=3, strict=False) is False
    # not strict: values logged after the bracket count too (wandb takes min of the whole history)
    assert should_stop([5, 4, 4, 4, 0.1], [1, 2, 9], bracket=3, strict=False) is False
    assert should_stop([5, 4, 4, 4, 0.1], [1, 2, 9], bracket=3, strict=True) is True


def test_maximize_mirrors_minimize():
    # best first [-1, -2, -4, -9]: threshold -2; -4 is worse
    assert should_stop([-5, -4, -4], [-1, -2, -9], bracket=3, goal="maximize") is True
    assert should_stop([5, 4, 4], [1, 2, 9], bracket=3, goal="maximize") is False  # 4 >= 4
    # values [1, 2, 9, 1] best first [9, 2, 1, 1]: threshold 2; 1 is worse
    assert should_stop([5, 4, 1], [1, 2, 9], bracket=3, goal="maximize") is True
    assert should_stop([0, 7, 1], [1, 2, 9], bracket=3, goal="maximize", strict=False) is False
    assert should_stop([0, 7, 1], [1, 2, 9], bracket=3, goal="maximize", strict=True) is True


def test_should_stop_needs_the_bracket_reached():
    with pytest.raises(ValueError, match="fewer than the bracket 3"):
        should_stop([1, 2], [1], bracket=3)


# -- the pruner in real Optuna studies --------------------------------------------------------


def _replay(early_terminate, goal, runs):
    """wandb-style runs [(state, history)] as trials of one study; the running ones' verdicts."""
    pruner = HyperbandPruner(early_terminate, goal=goal)
    study = optuna.create_study(direction=goal, pruner=pruner)
    live = []
    for state, history in runs:
        trial = study.ask()
        for step, value in enumerate(history):
            trial.report(value, step)
        if state == "finished":
            study.tell(trial, history[-1])
        else:
            live.append(trial)
    return [t.should_prune() for t in live]


def test_wandb_eta_3():  # wandb test_eta_3: brackets [1, 3], thresholds 10 and 4
    et = {**HB, "max_iter": 9, "eta": 3, "s": 2, "strict": False}
    runs = [
        ("finished", [9, 8]),
        ("running", [11, 11]),  # stopped at bracket 1
        ("running", [10, 8, 3]),  # passes bracket 3
        ("running", [10, 7, 4]),  # equal to the threshold: goes on
        ("running", [10, 6, 6]),  # passes bracket 1, stopped at bracket 3
    ]
    assert _replay(et, "minimize", runs) == [True, False, False, True]


def test_wandb_eta_3_max():  # wandb test_eta_3_max
    et = {**HB, "max_iter": 9, "eta": 3, "s": 2, "strict": False}
    runs = [
        ("finished", [-10, -9]),
        ("running", [-11, -11]),
        ("running", [-10, -8, -5, -3]),
        ("running", [-10, -6, -2]),
        ("running", [-10, -6, -6, -6]),
    ]
    assert _replay(et, "maximize", runs) == [True, False, False, True]


@pytest.mark.parametrize("strict", [True, False])
def test_wandb_5runs_band1_stop_2_1stnoband(strict):  # strict or not: the same verdicts
    et = {**HB, "max_iter": 5, "eta": 2, "s": 2, "strict": strict}
    runs = [
        ("finished", [10]),
        ("running", [11]),
        ("running", [10, 8, 8]),
        ("running", [10, 7, 7]),
        ("finished", [10, 6, 6]),
    ]
    assert _replay(et, "minimize", runs) == [True, True, False]


def test_wandb_single_run_and_two_runs_pass():
    et = {**HB, "max_iter": 18, "eta": 3, "s": 2, "strict": False}
    assert _replay(et, "minimize", [("running", [10 - i for i in range(10)])]) == [False]
    runs = [("running", [10, 10, 6]), ("running", [10 - i for i in range(10)])]
    assert _replay(et, "minimize", runs) == [False, False]


def test_strict_default_stops_what_loose_keeps():
    runs = [("finished", [3, 2, 1]), ("finished", [3, 2, 2]), ("running", [0.5, 5, 5])]
    assert _replay({**HB, "min_iter": 3}, "minimize", runs) == [True]
    assert _replay({**HB, "min_iter": 3, "strict": False}, "minimize", runs) == [False]


def test_running_and_pruned_trials_count():
    pruner = HyperbandPruner({**HB, "min_iter": 2})
    study = optuna.create_study(pruner=pruner)
    good, bad, late = study.ask(), study.ask(), study.ask()
    for step, (g, b) in enumerate([(1.0, 5.0), (0.5, 4.0)]):
        good.report(g, step)
        bad.report(b, step)
    assert not good.should_prune()
    assert bad.should_prune()  # judged against the other running trial: [0.5, 4] -> 0.5
    study.tell(bad, state=optuna.trial.TrialState.PRUNED)
    study.tell(good, 0.5)
    # the pruned trial's values still count: [0.5, 4, 3] -> index 1 -> 3; 3 is not worse
    late.report(3.5, 0)
    late.report(3.0, 1)
    assert not late.should_prune()


def test_fewer_values_than_the_first_bracket_never_pruned():
    pruner = HyperbandPruner({**HB, "min_iter": 3})
    study = optuna.create_study(pruner=pruner)
    for _ in range(5):
        trial = study.ask()
        for step in range(5):
            trial.report(0.1, step)
        study.tell(trial, 0.1)
    short = study.ask()
    for step, value in enumerate([100.0, 100.0]):
        short.report(value, step)
        assert not short.should_prune()
    short.report(100.0, 2)  # the third value reaches bracket 3
    assert short.should_prune()


def test_non_finite_values_are_not_iterations():
    pruner = HyperbandPruner({**HB, "min_iter": 3})
    study = optuna.create_study(pruner=pruner)
    for _ in range(3):
        trial = study.ask()
        for step, value in enumerate([math.nan, 0.1, 0.1, 0.1]):  # history [0.1, 0.1, 0.1]
            trial.report(value, step)
        study.tell(trial, 0.1)
    trial = study.ask()
    for step, value in enumerate([9.0, math.nan, math.inf, 9.0]):
        trial.report(value, step)
        assert not trial.should_prune()  # two finite values: no bracket yet
    trial.report(9.0, 4)
    assert trial.should_prune()


def test_steps_only_order_the_values():
    pruner = HyperbandPruner({**HB, "min_iter": 2})
    study = optuna.create_study(pruner=pruner)
    first = study.ask()
    first.report(1.0, 10)
    first.report(1.0, 20)
    study.tell(first, 1.0)
    trial = study.ask()
    trial.report(0.5, 7)  # reported out of order: the history, by step, is [5.0, 0.5]
    trial.report(5.0, 1)
    # iteration 2 is 0.5 (step 7), not 5.0: [1.0, 0.5] -> threshold 0.5; it goes on
    assert not trial.should_prune()
    assert pruner.bracket_of(1) is None and pruner.bracket_of(2) == 2 and pruner.bracket_of(5) == 2
    assert pruner.bracket_of(6) == 6


# -- a synthetic sweep ------------------------------------------------------------------------

N_TRIALS, N_STEPS = 30, 30


def _curve(x: float, step: int) -> float:
    """Loss of a trial with parameter x after step+1 epochs: good x < 0.5 ends near 0.05 x,
    bad x >= 0.5 near 1 + x; curves never cross, so the order at every bracket is the order of x."""
    floor = 0.1 * x if x < 0.5 else 1.0 + x
    return floor + 1.0 / (step + 1)


@pytest.mark.parametrize("goal", ["minimize", "maximize"])
@pytest.mark.parametrize("strict", [True, False])
def test_synthetic_sweep_stops_bad_trials_at_the_brackets(goal, strict):
    sign = -1.0 if goal == "maximize" else 1.0
    et = {**HB, "min_iter": 3, "strict": strict}
    study = optuna.create_study(
        direction=goal,
        sampler=optuna.samplers.RandomSampler(seed=11),
        pruner=HyperbandPruner(et, goal=goal),
    )

    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        for step in range(N_STEPS):
            value = sign * _curve(x, step)
            trial.report(value, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    study.optimize(objective, n_trials=N_TRIALS)
    trials = study.trials
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(pruned) + len(complete) == N_TRIALS

    # the best trial is never pruned and is the study's best
    best = min(trials, key=lambda t: t.params["x"])
    assert best.state == optuna.trial.TrialState.COMPLETE
    assert study.best_trial.number == best.number

    # trials are stopped only when their history reaches a bracket (3, 9 or 27 values)
    assert {len(t.intermediate_values) for t in pruned} <= {3, 9, 27}

    # once good trials outnumber bad ones enough, every bad trial is stopped at the first bracket:
    # with g good and b bad values at bracket 3 before it, the top third holds only good ones
    # when 2g > b + 1
    good_before = bad_before = 0
    n_bad_after = 0
    for t in trials:
        is_bad = t.params["x"] >= 0.5
        if is_bad and 2 * good_before > bad_before + 1:
            n_bad_after += 1
            assert t.state == optuna.trial.TrialState.PRUNED, t.number
            assert len(t.intermediate_values) == 3
        good_before += not is_bad
        bad_before += is_bad
    assert n_bad_after >= 8
    assert len(pruned) > N_TRIALS // 2
