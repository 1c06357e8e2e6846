"""The sweep engine as agents in function mode meet it: what the samplers propose (bayes against
random, seeds), how far a sweep goes (`run_cap`, `count`, the grid, a resumed sweep), its state
(pause, resume, stop, cancel, finished), re-queued failures, the metric it optimises, and the
errors a bad config or a bad sweep id gets. Everything through `nbtracker.sweep`/`agent`, the
trial table (`Sweep.views()`) and `nbtracker.Api()`."""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

pytest.importorskip("optuna")

import nbtracker as wandb  # noqa: E402
from nbtracker.errors import UsageError  # noqa: E402
from nbtracker.sweeps.config import SweepConfigError  # noqa: E402
from nbtracker.sweeps.engine import open_sweep  # noqa: E402

PROJECT = "engine"


def views(sweep_id: str) -> list:
    return open_sweep(sweep_id).views()


def logs(fn):
    """A training function: one run whose `loss` is `fn(config)`."""
    def train():
        with wandb.init() as run:
            run.log({"loss": fn(run.config)})
    return train


unit = logs(lambda c: 1.0)


def grid(n: int, **extra) -> dict:
    return {"method": "grid", "metric": {"name": "loss"},
            "parameters": {"x": {"values": list(range(n))}}, **extra}


RANDOM = {"method": "random", "metric": {"name": "loss"},
          "parameters": {"x": {"min": 0.0, "max": 1.0}}}


# -- what the samplers propose ------------------------------------------------------------------
QUADRATIC = {"metric": {"name": "loss", "goal": "minimize"}, "parameters": {
    "x": {"min": -10.0, "max": 10.0}, "y": {"min": -10.0, "max": 10.0}}}


def narrow_quadratic(c) -> float:
    return 50.0 * (c.x - 3.1) ** 2 + 50.0 * (c.y + 6.3) ** 2


def best_of(method: str, seed: int, trials: int = 30) -> float:
    sweep_id = wandb.sweep({**QUADRATIC, "method": method}, project=PROJECT, seed=seed)
    assert wandb.agent(sweep_id, logs(narrow_quadratic), count=trials) == trials
    return open_sweep(sweep_id).best().value


def test_bayes_beats_random_on_a_known_function():
    seeds = (0, 1, 2)
    tpe = [best_of("bayes", s) for s in seeds]
    rnd = [best_of("random", s) for s in seeds]
    assert statistics.median(tpe) < statistics.median(rnd) / 2, (tpe, rnd)


def sequence(method: str, seed: int | None, n: int = 14) -> list:
    sweep_id = wandb.sweep({"method": method, "metric": {"name": "loss"}, "parameters": {
        "x": {"min": -5.0, "max": 5.0}, "k": {"values": ["a", "b", "c"]},
        "n": {"distribution": "normal", "mu": 0, "sigma": 2},
        "opt": {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1}}}}},
        project=PROJECT, seed=seed)
    wandb.agent(sweep_id, logs(lambda c: (c.x - 1) ** 2 + c.n ** 2), count=n)
    return [v.params for v in views(sweep_id)]


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_same_seed_same_trials_other_seed_other_trials(method):
    first = sequence(method, 7)
    assert len(first) == 14 and len({p["x"] for p in first}) == 14
    assert sequence(method, 7) == first  # bayes: past its 10 random start-up trials
    other = sequence(method, 8)
    assert all(a != b for a, b in zip(other, first))
    unseeded = sequence(method, None, n=3)
    assert unseeded != first[:3]


# -- how far a sweep goes ------------------------------------------------------------------------
def test_run_cap_stops_the_agent_and_a_second_agent_runs_nothing():
    sweep_id = wandb.sweep({**RANDOM, "run_cap": 4}, project=PROJECT)
    assert wandb.agent(sweep_id, unit) == 4
    assert wandb.agent(sweep_id, unit) == 0
    assert [v.state for v in views(sweep_id)] == ["finished"] * 4
    sweep = open_sweep(sweep_id)
    assert sweep.remaining() == 0 and sweep.state == "finished"
    assert len(wandb.Api().runs(PROJECT, filters={"sweep": sweep_id})) == 4


def test_count_and_a_resumed_sweep_run_what_is_left_of_run_cap():
    sweep_id = wandb.sweep({**RANDOM, "run_cap": 5}, project=PROJECT)
    assert wandb.agent(sweep_id, unit, count=2) == 2
    assert open_sweep(sweep_id).remaining() == 3 and open_sweep(sweep_id).state == "running"
    assert wandb.agent(sweep_id, unit, count=0) == 0
    assert wandb.agent(sweep_id, unit) == 3
    assert len(views(sweep_id)) == 5


def test_failed_and_pruned_trials_count_against_run_cap_interrupted_ones_do_not():
    sweep_id = wandb.sweep({**RANDOM, "run_cap": 3}, project=PROJECT)

    def fails():
        wandb.init()
        raise ValueError("no")

    def interrupted():
        wandb.init()
        raise KeyboardInterrupt

    assert wandb.agent(sweep_id, fails, count=1) == 1
    assert wandb.agent(sweep_id, interrupted) == 1
    assert open_sweep(sweep_id).remaining() == 2
    assert wandb.agent(sweep_id, unit) == 2
    assert [v.state for v in views(sweep_id)] == ["failed", "interrupted", "finished", "finished"]


def test_a_resumed_grid_runs_what_is_left_and_nothing_twice():
    sweep_id = wandb.sweep(grid(7), project=PROJECT)
    seen = []
    train = logs(lambda c: seen.append(c.x) or 1.0)
    assert wandb.agent(sweep_id, train, count=3) == 3
    assert open_sweep(sweep_id).remaining() == 4
    assert wandb.agent(sweep_id, train, count=2) == 2
    assert wandb.agent(sweep_id, train) == 2
    assert wandb.agent(sweep_id, train) == 0
    assert seen == list(range(7))
    assert open_sweep(sweep_id).state == "finished"


def test_grid_with_run_cap_stops_at_the_cap_and_keeps_the_rest_queued():
    sweep_id = wandb.sweep(grid(6, run_cap=4), project=PROJECT)
    assert wandb.agent(sweep_id, unit) == 4
    assert wandb.agent(sweep_id, unit) == 0
    table = views(sweep_id)
    assert [v.params["x"] for v in table if v.state == "finished"] == [0, 1, 2, 3]
    assert sorted(v.params["x"] for v in table if v.state == "queued") == [4, 5]


# -- the sweep's state ---------------------------------------------------------------------------
@pytest.mark.parametrize("state", ["stopped", "cancelled", "finished"])
def test_an_agent_on_a_stopped_cancelled_or_finished_sweep_returns_at_once(state, capsys):
    sweep_id = wandb.sweep(grid(3), project=PROJECT)
    open_sweep(sweep_id).set_state(state)
    started = time.monotonic()
    assert wandb.agent(sweep_id, unit) == 0
    assert time.monotonic() - started < 2
    assert f"is {state}" in capsys.readouterr().err
    assert [v.state for v in views(sweep_id)] == ["queued"] * 3


def test_a_paused_sweep_holds_the_agent_until_it_is_resumed():
    sweep_id = wandb.sweep(grid(2), project=PROJECT)
    open_sweep(sweep_id).set_state("paused")
    result = []
    agent = threading.Thread(target=lambda: result.append(wandb.agent(sweep_id, unit)), daemon=True)
    agent.start()
    agent.join(1.0)
    assert agent.is_alive() and result == []
    assert [v.state for v in views(sweep_id)] == ["queued", "queued"]
    open_sweep(sweep_id).set_state("running")
    agent.join(30)
    assert not agent.is_alive() and result == [2]


def test_a_sweep_paused_between_trials_stops_the_next_one_from_starting():
    sweep_id = wandb.sweep(grid(3), project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"loss": 1.0})
        open_sweep(sweep_id).set_state("paused")

    result = []
    agent = threading.Thread(target=lambda: result.append(wandb.agent(sweep_id, train)), daemon=True)
    agent.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(v.state == "finished" for v in views(sweep_id)):
        time.sleep(0.05)
    agent.join(0.5)
    assert agent.is_alive()
    assert [v.state for v in views(sweep_id)] == ["finished", "queued", "queued"]
    open_sweep(sweep_id).set_state("cancelled")
    agent.join(30)
    assert result == [1]


def test_requeue_failed_runs_the_failed_points_again_with_exactly_their_values():
    sweep_id = wandb.sweep({"method": "random", "metric": {"name": "loss"}, "parameters": {
        "x": {"min": 0.0, "max": 1.0}, "n": {"distribution": "normal"},
        "c": {"values": [[1, 2], {"k": 1}, None]},
        "opt": {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1}}}}},
        project=PROJECT, seed=3)
    broken = {"on": True}

    def train():
        with wandb.init() as run:
            if broken["on"] and run.config.x < 0.5:
                raise RuntimeError("flaky")
            run.log({"loss": run.config.x})

    wandb.agent(sweep_id, train, count=8)
    failed = [v for v in views(sweep_id) if v.state == "failed"]
    assert 1 <= len(failed) < 8
    assert sorted(open_sweep(sweep_id).requeue_failed()) == [v.number for v in failed]
    assert open_sweep(sweep_id).requeue_failed() == []  # once each
    broken["on"] = False
    assert wandb.agent(sweep_id, train, count=len(failed)) == len(failed)
    retries = {v.retry_of: v for v in views(sweep_id) if v.retry_of is not None}
    runs = {r.id: r for r in wandb.Api().runs(PROJECT, filters={"sweep": sweep_id})}
    for v in failed:
        again = retries[v.number]
        assert again.state == "finished" and again.params == v.params
        assert runs[again.run_id].config["c"] == v.params["c"]
        assert runs[again.run_id].config["opt"] == {"lr": v.params["opt.lr"]}


def test_requeue_failed_reopens_a_finished_grid():
    sweep_id = wandb.sweep(grid(3), project=PROJECT)

    def train():
        with wandb.init() as run:
            if run.config.x == 1 and len(views(sweep_id)) == 3:
                raise RuntimeError("once")
            run.log({"loss": 1.0})

    assert wandb.agent(sweep_id, train) == 3
    assert open_sweep(sweep_id).state == "finished"
    assert open_sweep(sweep_id).requeue_failed() == [1]
    assert open_sweep(sweep_id).state == "running"
    assert wandb.agent(sweep_id, train) == 1
    assert [(v.params["x"], v.state) for v in views(sweep_id)] == [
        (0, "finished"), (1, "failed"), (2, "finished"), (1, "finished")]
    assert open_sweep(sweep_id).state == "finished"


# -- the metric ----------------------------------------------------------------------------------
def test_goal_maximize():
    sweep_id = wandb.sweep({"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                            "parameters": {"x": {"values": [0.2, 0.9, 0.5]}}}, project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"acc": run.config.x})

    wandb.agent(sweep_id, train)
    sweep = open_sweep(sweep_id)
    assert sweep.best().params == {"x": 0.9} and sweep.best().value == 0.9
    assert sweep.study.best_value == 0.9  # what the samplers learn from


def test_the_metric_is_the_summary_value_define_metric_makes():
    sweep_id = wandb.sweep({"method": "grid", "metric": {"name": "val/loss"},
                            "parameters": {"how": {"values": ["min", "last"]}}}, project=PROJECT)
    curve = [3.0, 1.0, 2.0]

    def train():
        with wandb.init() as run:
            if run.config.how == "min":
                run.define_metric("val/loss", summary="min")
            for v in curve:
                run.log({"val/loss": v})

    wandb.agent(sweep_id, train)
    runs = {r.id: r for r in wandb.Api().runs(PROJECT, filters={"sweep": sweep_id})}
    by_how = {v.params["how"]: v for v in views(sweep_id)}
    assert by_how["min"].value == 1.0 and by_how["last"].value == 2.0
    for v in by_how.values():
        assert runs[v.run_id].summary["val/loss"] == v.value


def test_a_summary_set_by_hand_is_the_value():
    sweep_id = wandb.sweep(grid(1), project=PROJECT)

    def train():
        with wandb.init() as run:
            run.log({"loss": 5.0})
            run.summary["loss"] = 0.25

    wandb.agent(sweep_id, train)
    assert views(sweep_id)[0].value == 0.25


def test_a_trial_that_never_logs_the_metric_finishes_without_a_value():
    sweep_id = wandb.sweep(grid(2), project=PROJECT)
    wandb.agent(sweep_id, logs(lambda c: None))  # logs {"loss": None}
    table = views(sweep_id)
    assert [(v.state, v.value) for v in table] == [("finished", None), ("finished", None)]
    assert open_sweep(sweep_id).best() is None


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("config", "named"), [
    ({"method": "grid", "parameters": {"lr": {"min": 0.1}}}, "parameters.lr"),
    ({"method": "bayes", "parameters": {"lr": {"values": [1, 2]}}}, "metric"),
    ({"method": "random", "parameters": {"opt": {"parameters": {"beta": {
        "distribution": "beta", "a": -1, "b": 2}}}}}, "parameters.opt.parameters.beta"),
    ({"method": "random", "run_cap": 0, "parameters": {"x": {"value": 1}}}, "run_cap"),
    ({"method": "grid", "parameters": {"x": {"distribution": "uniform", "min": 0, "max": 1}}},
     "parameters.x"),
    # the pruner takes only a whole number of brackets: refused here, not in agent()
    ({**RANDOM, "early_terminate": {"type": "hyperband", "max_iter": 27, "s": 1.5}},
     "early_terminate.s: must be an integer"),
    # values a float cannot hold: refused here, not an OverflowError out of agent()
    ({**RANDOM, "parameters": {"x": {"distribution": "log_normal", "mu": 800}}}, "parameters.x: exp("),
    ({**RANDOM, "parameters": {"x": {"min": -1e308, "max": 1e308}}}, "parameters.x: max - min"),
    ({**RANDOM, "parameters": {"x": {"distribution": "q_uniform", "min": 0, "max": 1e300, "q": 1e-10}}},
     "parameters.x.q"),
])
def test_an_invalid_config_names_the_parameter_and_makes_nothing(config, named, store):
    with pytest.raises(SweepConfigError) as e:
        wandb.sweep(config, project=PROJECT)
    assert isinstance(e.value, ValueError)
    assert named in str(e.value)
    assert not (store / "sweeps").exists()


@pytest.mark.parametrize("bad", ["../x", "", None, "  ", "a/../b", "x" * 40, "UPPER", "a b", 3])
def test_a_bad_sweep_id_gets_one_clear_usage_error(bad, store):
    with pytest.raises(UsageError, match="sweep id"):
        wandb.agent(bad, unit)
    assert not (store / "sweeps").exists()


def test_an_unknown_sweep_id_says_so():
    with pytest.raises(UsageError, match="no sweep 'nosuch1'"):
        wandb.agent("nosuch1", unit)


def test_a_trial_an_agent_of_this_process_let_go_of_is_recovered():
    """A trial left running by an agent of this very process that is no longer running it (an
    error escaped it) is ended `crashed` and its point enqueued again, as a dead agent's is."""
    import os
    import socket

    import psutil

    sweep_id = wandb.sweep(grid(2), project=PROJECT)
    sweep = open_sweep(sweep_id)
    trial = sweep.study.ask()
    me = psutil.Process()
    trial.set_user_attr("nbt_agent", {"host": socket.gethostname(), "pid": os.getpid(),
                                      "ctime": round(me.create_time(), 2)})
    trial.set_user_attr("nbt_started", time.time())
    assert sweep.recover() == [0]
    assert wandb.agent(sweep_id, unit) == 2
    assert [(v.params["x"], v.state) for v in views(sweep_id)] == [
        (0, "crashed"), (1, "finished"), (0, "finished")]


DIES_AFTER_ASKING = """
import os, signal, sys
from nbtracker.sweeps.engine import _own, open_sweep
sweep = open_sweep(sys.argv[1])
trial = sweep.study.ask()  # a grid point taken; the agent dies before reading its values
trial.set_user_attr("nbt_agent", _own())
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_grid_point_whose_agent_died_before_reading_it_runs_again(tmp_path, store):
    import os
    import subprocess
    import sys

    sweep_id = wandb.sweep(grid(3), project=PROJECT)
    program = tmp_path / "dies.py"
    program.write_text(DIES_AFTER_ASKING)
    subprocess.run([sys.executable, str(program), sweep_id], env={**os.environ, "NBTRACKER_DIR": str(store)},
                   timeout=60)
    seen = []
    assert wandb.agent(sweep_id, logs(lambda c: seen.append(c.x) or 1.0)) == 3
    assert sorted(seen) == [0, 1, 2]
    table = views(sweep_id)
    assert [v.state for v in table] == ["crashed", "finished", "finished", "finished"]
    assert table[3].retry_of == 0 and table[3].params == {"x": 0}
    assert open_sweep(sweep_id).state == "finished"


# -- what the agent samples -------------------------------------------------------------------
EVERY_DISTRIBUTION = {
    "u": {"min": -1.0, "max": 3.0},
    "i": {"min": 2, "max": 9},
    "c": {"values": ["a", "b", "c"]},
    "p": {"values": ["x", "y"], "probabilities": [0.9, 0.1]},
    "k": {"value": 7},
    "q": {"distribution": "q_uniform", "min": 0.0, "max": 1.0, "q": 0.25},
    "lv": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1},
    "ln": {"distribution": "log_uniform", "min": -3, "max": 0},
    "qlv": {"distribution": "q_log_uniform_values", "min": 8, "max": 256, "q": 8},
    "qln": {"distribution": "q_log_uniform", "min": 0, "max": 3, "q": 1},
    "ilv": {"distribution": "inv_log_uniform_values", "min": 0.01, "max": 1},
    "il": {"distribution": "inv_log_uniform", "min": 0, "max": 2},
    "n": {"distribution": "normal", "mu": 1.0, "sigma": 2.0},
    "qn": {"distribution": "q_normal", "mu": 0, "sigma": 3, "q": 2},
    "lgn": {"distribution": "log_normal", "mu": 0, "sigma": 1},
    "qlgn": {"distribution": "q_log_normal", "mu": 1, "sigma": 0.5, "q": 0.5},
    "b": {"distribution": "beta", "a": 2, "b": 5},
    "qb": {"distribution": "q_beta", "a": 2, "b": 2, "q": 0.1},
    "nested": {"parameters": {"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1}}},
}


def test_the_agents_trials_sample_every_distribution_within_bounds():
    """The shapes are tested against each distribution's CDF in test_sweep_space.py, on one
    sampler; the agent seeds a sampler per trial (so a trial's values depend on its number
    alone): its trials are still spread over each range as they should be."""
    stats = pytest.importorskip("scipy.stats")
    sweep_id = wandb.sweep({"method": "random", "parameters": EVERY_DISTRIBUTION},
                           project=PROJECT, seed=5)
    configs = []

    def train():
        run = wandb.init(mode="disabled")  # nothing stored: the sweep's own record is enough
        configs.append(dict(run.config))

    assert wandb.agent(sweep_id, train, count=60) == 60
    col = {k: [c[k] for c in configs] for k in EVERY_DISTRIBUTION}
    assert all(-1 <= x <= 3 for x in col["u"]) and all(type(x) is int and 2 <= x <= 9 for x in col["i"])
    assert set(col["c"]) == {"a", "b", "c"} and set(col["p"]) == {"x", "y"} and col["p"].count("x") > 45
    assert set(col["k"]) == {7}
    assert set(col["q"]) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert all(1e-4 <= x <= 1e-1 for x in col["lv"]) and all(0.049 < x <= 1 for x in col["ln"])
    assert all(type(x) is int and x % 8 == 0 and 8 <= x <= 256 for x in col["qlv"])
    assert all(type(x) is int and 1 <= x <= 20 for x in col["qln"])
    assert all(0.01 <= x <= 1 for x in col["ilv"]) and all(0.135 < x <= 1 for x in col["il"])
    assert all(type(x) is int and x % 2 == 0 for x in col["qn"])
    assert all(x > 0 for x in col["lgn"]) and all(x % 0.5 == 0 for x in col["qlgn"])
    assert all(0 <= x <= 1 for x in col["b"] + col["qb"])
    assert all(1e-5 <= c["nested"]["lr"] <= 1 for c in configs)
    # spread as they should be: uniform, normal and log-uniform against their CDFs
    assert stats.kstest(col["u"], stats.uniform(-1, 4).cdf).pvalue > 0.01
    assert stats.kstest(col["n"], stats.norm(1, 2).cdf).pvalue > 0.01
    assert stats.kstest(col["lv"], stats.loguniform(1e-4, 1e-1).cdf).pvalue > 0.01
    assert stats.kstest(col["b"], stats.beta(2, 5).cdf).pvalue > 0.01
    assert len(set(col["u"])) == 60


PG_URL = os.environ.get("NBTRACKER_TEST_DATABASE_URL")


@pytest.mark.skipif(not PG_URL, reason="set NBTRACKER_TEST_DATABASE_URL to a PostgreSQL database")
def test_a_function_mode_sweep_in_postgresql(tmp_path):
    """Ctrl-C, a resumed agent and run_cap, with the study in PostgreSQL; another machine (a
    store of its own) sees the same trials by the sweep's id and the database's URL."""
    sweep_id = wandb.sweep(grid(4, run_cap=3), project=PROJECT, storage=PG_URL)
    calls = []

    def train():
        with wandb.init() as run:
            calls.append(run.config.x)
            run.log({"loss": run.config.x})
            if len(calls) == 2:
                raise KeyboardInterrupt

    assert wandb.agent(sweep_id, train) == 2
    assert wandb.agent(sweep_id, train) == 2  # the rest of run_cap
    assert calls == [0, 1, 2, 3]
    table = views(sweep_id)
    assert [(v.params["x"], v.state) for v in table] == [
        (0, "finished"), (1, "interrupted"), (2, "finished"), (3, "finished"), (1, "queued")]
    elsewhere = open_sweep(sweep_id, storage=PG_URL, root=tmp_path / "other-machine")
    assert [(v.number, v.state, v.value) for v in elsewhere.views()] == [
        (v.number, v.state, v.value) for v in table]
    assert elsewhere.remaining() == 0 and elsewhere.state == "finished"
