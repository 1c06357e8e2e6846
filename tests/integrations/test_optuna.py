"""Optuna studies recorded by `nbtracker.integrations.optuna.NbtrackerCallback`, read back through
`nbtracker.Api()` and checked against the study's own trials."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

import nbtracker  # noqa: E402
from nbtracker.integrations.optuna import NbtrackerCallback  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
N = 6

optuna.logging.set_verbosity(optuna.logging.ERROR)


def quadratic(trial):
    x = trial.suggest_float("x", -10, 10)
    kind = trial.suggest_categorical("kind", ["a", "b"])
    return (x - 2) ** 2 + (0.5 if kind == "b" else 0.0)


def new_study(**kwargs):
    kwargs.setdefault("sampler", optuna.samplers.TPESampler(seed=0))
    return optuna.create_study(**kwargs)


def runs(project: str) -> dict:
    """The project's runs by name."""
    return {r.name: r for r in nbtracker.Api().runs(project)}


def rows(run) -> list[dict]:
    return list(run.scan_history())


def test_one_run_has_a_row_per_trial_at_its_number():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "hpo", "name": "study"})
    study = new_study(study_name="quad")
    study.optimize(quadratic, n_trials=N, callbacks=[cb])
    assert cb.run.state == "running"  # a second optimize() goes on in the same run
    study.optimize(quadratic, n_trials=2, callbacks=[cb])
    nbtracker.finish()

    run = runs("hpo")["study"]
    got = rows(run)
    assert [r["_step"] for r in got] == [t.number for t in study.trials] == list(range(N + 2))
    assert [r["value"] for r in got] == [t.value for t in study.trials]
    assert [(r["x"], r["kind"]) for r in got] == [(t.params["x"], t.params["kind"])
                                                  for t in study.trials]
    assert {r["state"] for r in got} == {"COMPLETE"}
    assert run.config == {"direction": ["MINIMIZE"], "study_name": "quad",
                          "sampler": "TPESampler", "pruner": "MedianPruner"}
    assert run.summary["best_value"] == study.best_value
    assert run.summary["best_params"] == study.best_params
    assert run.summary["best_trial"] == study.best_trial.number
    assert run.state == "finished"


def test_the_best_follows_the_study_as_trials_finish():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "best"})
    study = new_study(direction="maximize")
    seen = []

    def check(study, trial):  # runs after ours: the summary already holds this trial's best
        seen.append((cb.run.summary["best_trial"], cb.run.summary["best_value"]))

    study.optimize(lambda t: -quadratic(t), n_trials=N, callbacks=[cb, check])
    best = []
    for t in study.trials:
        if not best or t.value > best[-1][1]:
            best.append((t.number, t.value))
        else:
            best.append(best[-1])
    assert seen == best


def test_an_active_run_is_used_and_left_open():
    mine = nbtracker.init(project="mine", config={"lr": 0.1})
    study = new_study()
    study.optimize(quadratic, n_trials=3, callbacks=[NbtrackerCallback()])
    assert nbtracker.run is mine and mine.state == "running"
    nbtracker.log({"after": 1.0}, step=3)
    mine.finish()
    (run,) = nbtracker.Api().runs("mine")
    assert [r.get("value") for r in rows(run)] == [t.value for t in study.trials] + [None]
    assert run.config["lr"] == 0.1 and run.config["sampler"] == "TPESampler"


def test_multirun_has_a_run_per_trial():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "multi", "tags": ["quad"]},
                           as_multirun=True)
    study = new_study(study_name="s1")
    study.optimize(quadratic, n_trials=N, callbacks=[cb])
    got = runs("multi")
    assert sorted(got) == sorted(f"trial-{t.number}" for t in study.trials)
    for t in study.trials:
        run = got[f"trial-{t.number}"]
        assert run.config == t.params
        assert run.summary["value"] == t.value
        assert run.summary["trial_number"] == t.number and run.summary["state"] == "COMPLETE"
        assert run.group == "s1" and run.tags == ["quad", "s1"] and run.state == "finished"
        (row,) = rows(run)
        assert row["value"] == t.value and row["x"] == t.params["x"]
        assert row["trial_number"] == t.number and row["_step"] == 0
    assert nbtracker.run is None


def test_track_in_nbtracker_logs_inside_the_trials_run():
    mine = nbtracker.init(project="outer")
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "tracked"}, as_multirun=True)

    @cb.track_in_nbtracker()
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        assert nbtracker.run is cb.run and nbtracker.run.name == f"trial-{trial.number}"
        for epoch in range(4):
            loss = (x - 2) ** 2 / (epoch + 1)
            trial.report(loss, epoch)
            nbtracker.log({"epoch_loss": loss})
        return loss

    study = new_study()
    study.optimize(objective, n_trials=4, callbacks=[cb])
    assert nbtracker.run is mine  # the user's run is current again after each trial
    got = runs("tracked")
    assert len(got) == 4
    for t in study.trials:
        run = got[f"trial-{t.number}"]
        history = rows(run)
        inner = [(r["_step"], r["epoch_loss"]) for r in history if "epoch_loss" in r]
        assert inner == sorted(t.intermediate_values.items())
        assert history[-1]["value"] == t.value and history[-1]["_step"] == 4
        assert run.config == t.params and run.summary["value"] == t.value
    assert rows(nbtracker.Api().runs("outer")[0]) == []


def test_code_written_for_wandbs_callback_runs_unchanged():
    from nbtracker.integrations.optuna import NbtrackerCallback as WeightsAndBiasesCallback

    wandbc = WeightsAndBiasesCallback(wandb_kwargs={"project": "from-wandb"}, as_multirun=True)

    @wandbc.track_in_wandb()
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        nbtracker.log({"power": 2, "base of metric": x - 2})
        return (x - 2) ** 2

    study = new_study()
    study.optimize(objective, n_trials=3, callbacks=[wandbc])
    got = runs("from-wandb")
    for t in study.trials:
        (inner, last) = rows(got[f"trial-{t.number}"])
        assert inner["base of metric"] == t.params["x"] - 2 and last["value"] == t.value
    with pytest.raises(TypeError):
        NbtrackerCallback(nbtracker_kwargs={}, wandb_kwargs={})


def pruned_at_3(trial):
    x = trial.suggest_float("x", -10, 10)
    for step in range(3):
        # the same curve for every trial but trial 3's, far above: the median pruner stops it
        trial.report(step + (1000.0 if trial.number == 3 else 0.0), step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return (x - 2) ** 2


@pytest.mark.parametrize("multirun", [False, True], ids=["one-run", "multirun"])
def test_a_pruned_trial_is_recorded_pruned_without_a_value(multirun):
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "prune"}, as_multirun=multirun)
    study = new_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    study.optimize(pruned_at_3, n_trials=N, callbacks=[cb])
    nbtracker.finish()
    t3 = study.trials[3]
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3 + ["PRUNED"] + ["COMPLETE"] * 2
    assert t3.value == t3.intermediate_values[0]  # Optuna's stand-in value: not logged as value
    if multirun:
        got = runs("prune")
        run = got["trial-3"]
        (row,) = rows(run)
        assert run.summary["state"] == "PRUNED" and "value" not in run.summary
        assert run.state == "finished"
        assert [got[f"trial-{t.number}"].summary["state"] for t in study.trials] == [
            t.state.name for t in study.trials]
    else:
        (run,) = nbtracker.Api().runs("prune")
        got = rows(run)
        assert [r["state"] for r in got] == [t.state.name for t in study.trials]
        assert [r.get("value") for r in got] == [
            t.value if t.state.name == "COMPLETE" else None for t in study.trials]
        row = got[3]
    assert "value" not in row and row["state"] == "PRUNED"
    assert row["pruned_step"] == 0 and row["pruned_intermediate_value"] == t3.intermediate_values[0]


def failing_at_2(trial):
    x = trial.suggest_float("x", -10, 10)
    if trial.number == 2:
        raise RuntimeError("diverged")
    return (x - 2) ** 2


def test_a_failed_trial_is_recorded_and_the_study_goes_on():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "fail"})
    study = new_study()
    study.optimize(failing_at_2, n_trials=N, callbacks=[cb], catch=(RuntimeError,))
    assert len(study.trials) == N
    nbtracker.finish()
    (run,) = nbtracker.Api().runs("fail")
    got = rows(run)
    assert [r["_step"] for r in got] == list(range(N))
    assert got[2]["state"] == "FAIL" and "value" not in got[2] and got[2]["x"] == study.trials[2].params["x"]
    assert [r.get("value") for r in got] == [t.value for t in study.trials]


@pytest.mark.parametrize("decorated", [False, True], ids=["callback", "decorated"])
def test_a_failed_trial_has_a_failed_run(decorated):
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "failm"}, as_multirun=True)
    objective = cb.track_in_nbtracker()(failing_at_2) if decorated else failing_at_2
    study = new_study()
    study.optimize(objective, n_trials=4, callbacks=[cb], catch=(RuntimeError,))
    got = runs("failm")
    assert [got[f"trial-{n}"].state for n in range(4)] == ["finished", "finished", "failed",
                                                            "finished"]
    run = got["trial-2"]
    assert run.summary["state"] == "FAIL" and "value" not in run.summary
    assert run.config == study.trials[2].params
    if decorated:
        assert run.summary["error"] == "RuntimeError: diverged"
    assert nbtracker.run is None


def test_a_failure_optuna_does_not_catch_still_ends_the_trials_run():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "raise"}, as_multirun=True)
    study = new_study()
    with pytest.raises(RuntimeError):
        study.optimize(cb.track_in_nbtracker()(failing_at_2), n_trials=4, callbacks=[cb])
    got = runs("raise")
    assert {n: r.state for n, r in got.items()} == {"trial-0": "finished", "trial-1": "finished",
                                                    "trial-2": "failed"}
    assert nbtracker.run is None


def two_objectives(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2, (x + 1) ** 2


@pytest.mark.parametrize("multirun", [False, True], ids=["one-run", "multirun"])
def test_multi_objective_keys(multirun):
    cb = NbtrackerCallback(metric_name=["loss", "cost"], as_multirun=multirun,
                           nbtracker_kwargs={"project": "mo"})
    study = new_study(directions=["minimize", "minimize"])
    study.optimize(two_objectives, n_trials=8, callbacks=[cb])
    nbtracker.finish()
    if multirun:
        got = runs("mo")
        for t in study.trials:
            s = got[f"trial-{t.number}"].summary
            assert (s["loss"], s["cost"]) == tuple(t.values)
    else:
        (run,) = nbtracker.Api().runs("mo")
        assert [(r["loss"], r["cost"]) for r in rows(run)] == [tuple(t.values) for t in study.trials]
        assert run.config["direction"] == ["MINIMIZE", "MINIMIZE"]
        assert run.summary["best_trials"] == sorted(t.number for t in study.best_trials)


def test_one_name_for_several_objectives_is_numbered():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "mo2"})
    study = new_study(directions=["minimize", "maximize"])
    study.optimize(two_objectives, n_trials=3, callbacks=[cb])
    nbtracker.finish()
    (run,) = nbtracker.Api().runs("mo2")
    assert [(r["value_0"], r["value_1"]) for r in rows(run)] == [tuple(t.values)
                                                                 for t in study.trials]


@pytest.mark.parametrize("multirun", [False, True], ids=["one-run", "multirun"])
def test_metric_names_that_do_not_match_the_objectives_warn_and_the_study_goes_on(multirun,
                                                                                 capsys):
    cb = NbtrackerCallback(metric_name=["a", "b", "c"], as_multirun=multirun,
                           nbtracker_kwargs={"project": "names"})
    study = new_study(directions=["minimize", "minimize"])
    study.optimize(two_objectives, n_trials=4, callbacks=[cb])
    nbtracker.finish()
    assert len(study.trials) == 4 and {t.state.name for t in study.trials} == {"COMPLETE"}
    err = capsys.readouterr().err
    assert err.count("metric_name names 3 (a, b, c)") == 1 and "value_0, value_1" in err
    if multirun:
        got = runs("names")
        assert [(got[f"trial-{t.number}"].summary["value_0"],
                 got[f"trial-{t.number}"].summary["value_1"]) for t in study.trials] == [
            tuple(t.values) for t in study.trials]
    else:
        (run,) = nbtracker.Api().runs("names")
        assert [(r["value_0"], r["value_1"]) for r in rows(run)] == [tuple(t.values)
                                                                     for t in study.trials]
    with pytest.raises(TypeError):
        NbtrackerCallback(metric_name=3)


def test_two_studies_in_one_run_keep_their_rows_config_and_best_apart():
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "two"})
    s1 = new_study(study_name="s1")
    s1.optimize(quadratic, n_trials=3, callbacks=[cb])
    s2 = new_study(study_name="s2", direction="maximize")
    s2.optimize(lambda t: -quadratic(t), n_trials=3, callbacks=[cb])
    s1.optimize(quadratic, n_trials=1, callbacks=[cb])  # the first study again
    nbtracker.finish()
    (run,) = nbtracker.Api().runs("two")
    got = rows(run)
    # s1's rows stay at their trial numbers; s2's go to the next steps, under its name
    assert [(r["_step"], r.get("value"), r.get("trial_number")) for r in got[:3]] == [
        (t.number, t.value, None) for t in s1.trials[:3]]
    assert [(r["_step"], r["s2/value"], r["s2/trial_number"], r["s2/x"]) for r in got[3:6]] == [
        (3 + t.number, t.value, t.number, t.params["x"]) for t in s2.trials]
    assert all("value" not in r for r in got[3:6])
    last = got[6]
    assert (last["_step"], last["value"], last["trial_number"]) == (6, s1.trials[3].value, 3)
    assert run.config == {"direction": ["MINIMIZE"], "study_name": "s1", "sampler": "TPESampler",
                          "pruner": "MedianPruner", "s2/direction": ["MAXIMIZE"],
                          "s2/sampler": "TPESampler", "s2/pruner": "MedianPruner"}
    assert (run.summary["best_value"], run.summary["best_trial"]) == (s1.best_value,
                                                                       s1.best_trial.number)
    assert (run.summary["s2/best_value"], run.summary["s2/best_params"]) == (s2.best_value,
                                                                             s2.best_params)


def epochs_then_value(trial):
    x = trial.suggest_float("x", -10, 10)
    for epoch in range(3):
        nbtracker.log({"epoch_loss": (x - epoch) ** 2})
    return (x - 2) ** 2


@pytest.mark.parametrize("whose", ["user", "callback"])
def test_trial_rows_never_join_rows_the_objective_logged(whose):
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "epochs"})
    if whose == "user":
        mine = nbtracker.init(project="epochs")
        mine.log({"before": 1.0})
        objective = epochs_then_value
    else:  # the study's run starts with the first trial; the objective logs into it
        objective = cb.track_in_nbtracker()(epochs_then_value)
    study = new_study()
    study.optimize(objective, n_trials=3, callbacks=[cb])
    nbtracker.finish()
    (run,) = nbtracker.Api().runs("epochs")
    got = rows(run)
    first = 1 if whose == "user" else 0
    trial_rows = [r for r in got if "value" in r]
    assert [(r["_step"], r["trial_number"], r["value"]) for r in trial_rows] == [
        (first + 4 * t.number + 3, t.number, t.value) for t in study.trials]
    assert all("epoch_loss" not in r for r in trial_rows)
    assert [r["epoch_loss"] for r in got if "epoch_loss" in r] == [
        (t.params["x"] - e) ** 2 for t in study.trials for e in range(3)]


@pytest.mark.parametrize("multirun", [False, True], ids=["one-run", "multirun"])
def test_parallel_trials_are_all_recorded(multirun):
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "par"}, as_multirun=multirun)
    study = new_study(sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial):
        import time

        x = trial.suggest_float("x", -10, 10)
        time.sleep(0.01 * (trial.number % 3))  # trials end out of order
        return (x - 2) ** 2

    study.optimize(objective, n_trials=12, n_jobs=2, callbacks=[cb])
    nbtracker.finish()
    want = {t.number: t.value for t in study.trials}
    if multirun:
        got = runs("par")
        assert {int(n.split("-")[1]): r.summary["value"] for n, r in got.items()} == want
        assert all(r.state == "finished" for r in got.values())
    else:
        (run,) = nbtracker.Api().runs("par")
        assert {r["_step"]: r["value"] for r in rows(run)} == want
        assert len(rows(run)) == 12
        assert run.summary["best_value"] == study.best_value


@pytest.mark.parametrize("via", ["callback.run", "nbtracker.log"])
def test_parallel_trials_and_the_run_a_log_goes_to(via, capfd):
    cb = NbtrackerCallback(nbtracker_kwargs={"project": "par2"}, as_multirun=True)
    both_open = threading.Barrier(2, timeout=10)

    @cb.track_in_nbtracker()
    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        both_open.wait()  # two trials' runs are open at once
        log = cb.run.log if via == "callback.run" else nbtracker.log
        for step in range(3):
            log({"inner": x + step})
        both_open.wait()
        return x

    study = new_study(sampler=optuna.samplers.RandomSampler(seed=1))
    study.optimize(objective, n_trials=4, n_jobs=2, callbacks=[cb])
    got = runs("par2")
    assert sorted(got) == [f"trial-{n}" for n in range(4)]  # no trial lost either way
    warned = "nbtracker.log() went to the newest run" in capfd.readouterr().err
    if via == "callback.run":  # each trial's values in its own run
        for t in study.trials:
            inner = [r["inner"] for r in rows(got[f"trial-{t.number}"]) if "inner" in r]
            assert inner == [t.value + s for s in range(3)]
        assert not warned
    else:  # one current run per process: the values went astray, and the user is told
        assert warned


def test_importing_nbtracker_does_not_import_optuna():
    code = ("import sys, nbtracker, nbtracker.integrations\n"
            "assert 'optuna' not in sys.modules, 'optuna imported'\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


# -- in a notebook -----------------------------------------------------------------------
NOTEBOOK = [
    # a study whose run the callback starts: its panel shows, and the run ends with the cell
    """import json, optuna, nbtracker
from nbtracker.integrations.optuna import NbtrackerCallback
optuna.logging.set_verbosity(optuna.logging.ERROR)
def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2
cb = NbtrackerCallback(nbtracker_kwargs={"project": "nb", "name": "own"})
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
study.optimize(objective, n_trials=6, callbacks=[cb])
print(json.dumps([t.value for t in study.trials]))""",
    "print(cb.run.state if cb.run else None, nbtracker.run)",
    # a run the user shows first: the next cell's study reaches its panel
    "%load_ext nbtracker\n%tracker init --project nb --name mine",
    """study2 = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
study2.optimize(objective, n_trials=5, callbacks=[NbtrackerCallback()])
print(json.dumps([t.value for t in study2.trials]))""",
    "%tracker finish",
]


@pytest.mark.slow
def test_a_study_in_a_notebook_reaches_the_live_panel(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK]
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    for cell in nb.cells:
        for out in cell.outputs:
            assert out.get("output_type") != "error", out
    printed = [o["text"] for c in nb.cells for o in c.outputs if o.get("name") == "stdout"]
    values, values2 = json.loads(printed[0]), json.loads(printed[2])
    assert printed[1].strip() == "finished None"  # the callback's run ended with its cell

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    panels = {m["state"]["info"]["name"]: m["state"] for m in state.values()
              if m["state"].get("_kind") == "live"}
    assert set(panels) == {"own", "mine"}
    for name, want in (("own", values), ("mine", values2)):
        panel = panels[name]
        assert panel["info"]["state"] == "finished"
        series = panel["snapshot"]["value"]
        xs = series["c"][0] + series["t"][0]
        ys = series["c"][1] + series["t"][1]
        assert xs == list(range(len(want)))
        for y, v in zip(ys, want):
            assert math.isclose(y, v, rel_tol=1e-5)
    # the panel's cell: the run's static form in place of the widget, once it finished
    first = [o for o in nb.cells[0].outputs if o.get("output_type") == "display_data"]
    assert any("own" in o["data"].get("text/html", "") for o in first)
