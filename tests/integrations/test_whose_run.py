"""Which run an integration logs to when a run is already current: the user's is used, a run an
earlier training of the same framework left open (it raised, or was stopped with Ctrl-C) is
finished and the new training gets its own, and a run of another integration (Optuna's study
run while the objective trains) is left alone: the training logs to a run of its own beside it.
Frameworks of their own are in test_keras.py, test_transformers.py and test_accelerate.py."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import weakref

import pytest

np = pytest.importorskip("numpy")

import nbtracker  # noqa: E402


def by_creation(project: str | None = None) -> list:
    return sorted(nbtracker.Api().runs(project), key=lambda r: r.created)


def test_xgboost_a_training_stopped_by_ctrl_c_is_not_continued_by_the_next():
    xgb = pytest.importorskip("xgboost")
    from nbtracker.integrations.xgboost import NbtrackerCallback

    class CtrlCAt(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            if epoch == 2:
                raise KeyboardInterrupt
            return False

    rng = np.random.default_rng(0)
    x = rng.random((32, 3))
    d = xgb.DMatrix(x, x.sum(1))
    with pytest.raises(KeyboardInterrupt):
        xgb.train({"eta": 0.3}, d, 5, evals=[(d, "t")], verbose_eval=False,
                  callbacks=[NbtrackerCallback(), CtrlCAt()])
    evals: dict = {}
    xgb.train({"eta": 0.5}, d, 3, evals=[(d, "t")], evals_result=evals, verbose_eval=False,
              callbacks=[NbtrackerCallback(log_feature_importance=False)])
    assert nbtracker.run is None
    first, second = by_creation()
    assert (first.state, second.state) == ("failed", "finished")  # Ctrl-C already handled
    assert [r["epoch"] for r in first.scan_history()] == [0, 1, 2]
    rows = list(second.scan_history())
    assert [r["epoch"] for r in rows] == [0, 1, 2]
    assert [r["t-rmse"] for r in rows] == evals["t"]["rmse"]

    def eta(run):
        return float(run.config["learner"]["gradient_booster"]["tree_train_param"]["eta"])

    assert (eta(first), eta(second)) == (pytest.approx(0.3), 0.5)


@pytest.mark.parametrize("n_jobs", [1, 2])  # 2: trials train at once, in two threads
def test_xgboost_in_an_optuna_objective_trains_into_runs_of_its_own(n_jobs):
    xgb = pytest.importorskip("xgboost")
    optuna = pytest.importorskip("optuna")
    from nbtracker.integrations.optuna import NbtrackerCallback as StudyCallback
    from nbtracker.integrations.xgboost import NbtrackerCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(0)
    x = rng.random((32, 3))
    d = xgb.DMatrix(x, x.sum(1))

    def objective(trial):
        evals: dict = {}
        rounds = 20 + 10 * trial.number
        xgb.train({"eta": trial.suggest_float("eta", 0.1, 0.9)}, d, rounds,
                  evals=[(d, "t")], evals_result=evals, verbose_eval=False,
                  callbacks=[NbtrackerCallback(log_feature_importance=False)])
        assert len(evals["t"]["rmse"]) == rounds
        return evals["t"]["rmse"][-1]

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=4, n_jobs=n_jobs, callbacks=[StudyCallback()])
    nbtracker.finish()  # the study's run
    runs = by_creation()
    trainings = [r for r in runs if "learner" in r.config]
    (study_run,) = [r for r in runs if "study_name" in r.config]
    assert sorted(len(list(r.scan_history())) for r in trainings) == [20, 30, 40, 50]
    assert all(r.state == "finished" for r in runs)
    rows = list(study_run.scan_history())
    assert sorted(r["value"] for r in rows) == sorted(t.value for t in study.trials)
    assert not any("t-rmse" in r for r in rows)


def test_lightning_in_an_optuna_objective_trains_into_runs_of_its_own():
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("torch")
    try:
        from tiny_lightning import Tiny, loader, trainer
    except ImportError:
        pytest.skip("lightning is not installed")
    from nbtracker.integrations.lightning import NbtrackerLogger
    from nbtracker.integrations.optuna import NbtrackerCallback as StudyCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    steps = []

    def objective(trial):
        t = trainer(NbtrackerLogger(project="fits"), max_epochs=1)
        t.fit(Tiny(lr=trial.suggest_float("lr", 0.01, 0.1)), loader())
        steps.append(t.global_step)
        return float(t.callback_metrics["train/loss_epoch"])

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=2, callbacks=[StudyCallback(nbtracker_kwargs={
        "project": "study"})])
    assert nbtracker.run is not None and nbtracker.run.project == "study"
    nbtracker.finish()
    fits = by_creation("fits")
    assert len(fits) == 2 and all(r.state == "finished" for r in fits)
    for run, n in zip(fits, steps):
        gs = [r["trainer/global_step"] for r in run.scan_history() if "train/loss_step" in r]
        assert gs == list(range(n))
    (study_run,) = nbtracker.Api().runs("study")
    assert [r["value"] for r in study_run.scan_history()] == [t.value for t in study.trials]


def test_lightning_a_users_run_finished_during_fit_gets_nothing_more(capfd):
    pytest.importorskip("torch")
    try:
        from tiny_lightning import Tiny, loader, pl, trainer
    except ImportError:
        pytest.skip("lightning is not installed")
    from nbtracker.integrations.lightning import NbtrackerLogger

    class FinishAtStep2(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                nbtracker.finish()

    nbtracker.init(project="mine")
    t = trainer(NbtrackerLogger(), max_epochs=1, callbacks=[FinishAtStep2()])
    t.fit(Tiny(), loader())
    assert t.global_step == 4 and nbtracker.run is None
    (run,) = nbtracker.Api().runs()  # no other run, the user's not continued
    assert (run.project, run.state) == ("mine", "finished")
    # the second batch's metrics are logged after its on_train_batch_end: too late
    assert [r["trainer/global_step"] for r in run.scan_history()] == [0]
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "is finished" in warnings[0], warnings


def _xgb_failing(xgb, d, big_refs=None):
    """An xgboost training that raises after its first round, its frame holding a big array."""
    from nbtracker.integrations.xgboost import NbtrackerCallback

    class Boom(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log):
            raise RuntimeError("boom")

    class Big:
        def __init__(self):
            self.a = np.zeros(1000)

    def training():
        big = Big()
        if big_refs is not None:
            big_refs.append(weakref.ref(big))
        xgb.train({"eta": 0.3}, d, 3, evals=[(d, "t")], verbose_eval=False,
                  callbacks=[NbtrackerCallback(log_feature_importance=False), Boom()])

    try:
        training()
    except RuntimeError as e:  # what IPython keeps of a cell's uncaught exception
        sys.last_type, sys.last_value, sys.last_traceback = type(e), e, e.__traceback__


def test_failed_trainings_keep_nothing_of_theirs_alive(monkeypatch):
    xgb = pytest.importorskip("xgboost")
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        monkeypatch.setattr(sys, name, None, raising=False)
    x = np.random.default_rng(0).random((16, 3))
    d = xgb.DMatrix(x, x.sum(1))
    refs: list = []
    for _ in range(3):
        _xgb_failing(xgb, d, refs)
    sys.last_type = sys.last_value = sys.last_traceback = None
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    assert [r.state for r in by_creation()] == ["failed", "failed", "running"]


def test_a_failed_training_in_a_finished_thread_is_failed_by_the_next_training(monkeypatch):
    xgb = pytest.importorskip("xgboost")
    for name in ("last_type", "last_value", "last_traceback", "last_exc"):
        monkeypatch.setattr(sys, name, None, raising=False)
    from nbtracker.integrations.xgboost import NbtrackerCallback

    x = np.random.default_rng(0).random((16, 3))
    d = xgb.DMatrix(x, x.sum(1))
    t = threading.Thread(target=_xgb_failing, args=(xgb, d))  # an Optuna trial's thread, say
    t.start()
    t.join()
    xgb.train({"eta": 0.5}, d, 2, evals=[(d, "t")], verbose_eval=False,
              callbacks=[NbtrackerCallback(log_feature_importance=False)])
    assert [r.state for r in by_creation()] == ["failed", "finished"]


def test_a_training_that_never_reached_its_end_is_failed_at_exit(tmp_path):
    pytest.importorskip("xgboost")
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(f"""
        import sys, threading
        import numpy as np, xgboost as xgb
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        from test_whose_run import _xgb_failing
        x = np.random.default_rng(0).random((16, 3))
        d = xgb.DMatrix(x, x.sum(1))
        t = threading.Thread(target=_xgb_failing, args=(xgb, d))
        t.start(); t.join()
        _xgb_failing(xgb, d)  # the script goes on, then exits normally
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    subprocess.run([sys.executable, str(script)], check=True, env=env, capture_output=True)
    assert [r.state for r in by_creation()] == ["failed", "failed"]
