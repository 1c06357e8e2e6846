"""LightGBM: nbtracker_callback logs each round's evaluation results as LightGBM records them
(`record_evaluation`), the training parameters; log_summary the best round and importances."""

from __future__ import annotations

import pytest

lgb = pytest.importorskip("lightgbm")
np = pytest.importorskip("numpy")

import nbtracker  # noqa: E402
from nbtracker.integrations.lightgbm import log_summary, nbtracker_callback  # noqa: E402


def data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return x[:200], y[:200], x[200:], y[200:]


PARAMS = {"objective": "binary", "metric": ["binary_logloss", "auc"], "num_leaves": 4,
          "learning_rate": 0.3, "verbose": -1, "seed": 0}


def user_keys(rows: list[dict]) -> set[str]:
    return {k for r in rows for k in r if not k.startswith("_")}


def train(callbacks, rounds=40, early=3):
    xtr, ytr, xva, yva = data()
    dtr = lgb.Dataset(xtr, ytr, feature_name=[f"x{i}" for i in range(5)])
    dva = lgb.Dataset(xva, yva, reference=dtr)
    record: dict = {}
    booster = lgb.train(PARAMS, dtr, num_boost_round=rounds, valid_sets=[dtr, dva],
                        valid_names=["train", "valid"],
                        callbacks=[*callbacks, lgb.early_stopping(early, verbose=False),
                                   lgb.record_evaluation(record)])
    return booster, record


def test_train_early_stopping_and_log_summary_in_a_run_of_its_own(monkeypatch):
    monkeypatch.setenv("NBTRACKER_PROJECT", "lgb-train")
    booster, record = train([nbtracker_callback()])
    assert nbtracker.run is not None and nbtracker.run.state == "running"
    log_summary(booster, save_model_checkpoint=True)
    assert nbtracker.run is None  # log_summary finished the run the callback started

    (run,) = nbtracker.Api().runs("lgb-train")
    assert run.state == "finished"
    rows = list(run.scan_history())
    rounds = len(record["valid"]["auc"])
    assert booster.best_iteration < rounds < 40  # early stopping stopped it
    per_round = rows[:rounds]
    assert [r["_step"] for r in per_round] == [r["iteration"] for r in per_round] == list(range(rounds))
    assert user_keys(per_round) == {"train_binary_logloss", "train_auc", "valid_binary_logloss",
                                    "valid_auc", "iteration"}
    for data_name, metrics in record.items():
        for metric, values in metrics.items():
            assert [r[f"{data_name}_{metric}"] for r in per_round] == values
    # config: the parameters LightGBM trained with
    assert {k: run.config[k] for k in PARAMS} == PARAMS
    assert run.config["num_iterations"] == 40
    # summary: the best round, and losses by their minimum, AUC by its maximum
    assert run.summary["best_iteration"] == booster.best_iteration
    assert run.summary["best_score"] == {d: dict(m) for d, m in booster.best_score.items()}
    assert run.summary["valid_binary_logloss"] == min(record["valid"]["binary_logloss"])
    assert run.summary["valid_auc"] == max(record["valid"]["auc"])
    # the feature importance table after the last round, and the model at its best round
    (table,) = run.media("Feature Importance")
    assert table.step == rounds
    df = table.load()
    assert df["Feature"].tolist() == booster.feature_name() == [f"x{i}" for i in range(5)]
    assert df["Importance"].tolist() == booster.feature_importance().tolist()
    saved = run.file(f"model_ckpt_{booster.best_iteration}.txt").path
    x = data()[2]
    np.testing.assert_array_equal(lgb.Booster(model_file=str(saved)).predict(x),
                                  booster.predict(x, num_iteration=booster.best_iteration))


def test_sklearn_api_into_the_users_run():
    pytest.importorskip("sklearn")
    xtr, ytr, xva, yva = data()
    run = nbtracker.init(project="lgb-sklearn", config={"note": "mine"})
    reg = lgb.LGBMRegressor(n_estimators=8, num_leaves=4, verbose=-1)
    reg.fit(xtr, ytr.astype(float), eval_X=(xva,), eval_y=(yva.astype(float),),
            callbacks=[nbtracker_callback(define_metric=False)])
    log_summary(reg.booster_, feature_importance=False)
    assert nbtracker.run is run and run.state == "running"  # the user's run stays open
    run.finish()
    api_run = nbtracker.Api().run(run.path)
    rows = list(api_run.scan_history())
    assert [r["valid_0_l2"] for r in rows] == reg.evals_result_["valid_0"]["l2"]
    assert [r["iteration"] for r in rows] == list(range(8))
    assert api_run.config["note"] == "mine" and api_run.config["num_leaves"] == 4
    assert api_run.summary["valid_0_l2"] == rows[-1]["valid_0_l2"]  # no define_metric: last
    assert api_run.media("Feature Importance") == []


def test_cv_logs_mean_and_stdv_as_record_evaluation_names_them():
    xtr, ytr, _, _ = data()
    run = nbtracker.init(project="lgb-cv")
    record: dict = {}
    result = lgb.cv({"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 0},
                    lgb.Dataset(xtr, ytr), num_boost_round=5, nfold=3,
                    callbacks=[nbtracker_callback(), lgb.record_evaluation(record)])
    run.finish()
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert user_keys(rows) == {"valid_binary_logloss-mean", "valid_binary_logloss-stdv",
                               "iteration"}
    for metric, values in record["valid"].items():
        assert [r[f"valid_{metric}"] for r in rows] == values == result[f"valid {metric}"]


def test_a_custom_metric_named_like_a_built_in_one_is_kept_beside_it(capfd):
    xtr, ytr, xva, yva = data()

    def feval(preds, dataset):  # "binary_logloss" again, ten times the value: not LightGBM's
        return [("binary_logloss", 10 * float(np.mean((preds - dataset.get_label()) ** 2)),
                 False), ("mine", 1.0, False)]

    record: dict = {}
    lgb.train({**PARAMS, "metric": ["binary_logloss"]}, lgb.Dataset(xtr, ytr), num_boost_round=3,
              valid_sets=[lgb.Dataset(xva, yva)], feval=feval,
              callbacks=[nbtracker_callback(), lgb.record_evaluation(record)])
    run = nbtracker.run
    run.finish()
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert user_keys(rows) == {"valid_0_binary_logloss", "valid_0_binary_logloss-2",
                               "valid_0_mine", "iteration"}
    # record_evaluation keeps both in one list, the built-in first, round by round
    both = record["valid_0"]["binary_logloss"]
    assert [r["valid_0_binary_logloss"] for r in rows] == both[0::2]
    assert [r["valid_0_binary_logloss-2"] for r in rows] == both[1::2]
    assert both[1] > 1 > both[0]
    err = capfd.readouterr().err
    assert err.count("custom metric named like a built-in one") == 1
    assert "'valid_0_binary_logloss-2'" in err


def test_a_second_training_without_log_summary_gets_a_run_of_its_own():
    cb = nbtracker_callback()
    train([cb], rounds=4, early=10)
    first = nbtracker.run
    train([cb], rounds=3, early=10)
    second = nbtracker.run
    assert second is not first and first.state == "finished"
    nbtracker.finish()
    counts = sorted(len(list(r.scan_history())) for r in nbtracker.Api().runs())
    assert counts == [3, 4]


def test_log_summary_needs_a_booster_and_a_run():
    with pytest.raises(nbtracker.UsageError, match="booster_"):
        log_summary(object())
    booster, _ = train([], rounds=2, early=10)
    with pytest.raises(nbtracker.UsageError, match="needs a run"):
        log_summary(booster)


def test_log_summary_after_a_callback_that_could_not_start_its_run_warns(tmp_path, monkeypatch,
                                                                          capfd):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "file" / "store"))  # cannot be made
    booster, record = train([nbtracker_callback()], rounds=4, early=10)
    assert len(record["valid"]["auc"]) == 4
    log_summary(booster, save_model_checkpoint=True)  # no exception: the script goes on
    err = capfd.readouterr().err
    assert err.count("nbtracker_callback: starting the run failed") == 1
    assert err.count("log_summary: nbtracker_callback could not start a run") == 1
    assert nbtracker.run is None
    # a training that starts its run again: log_summary without a run is a mistake again
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "store"))
    booster, _ = train([nbtracker_callback()], rounds=2, early=10)
    log_summary(booster)
    with pytest.raises(nbtracker.UsageError, match="needs a run"):
        log_summary(booster)


def test_tracking_disabled_trains_silently(monkeypatch, capfd):
    monkeypatch.setenv("NBTRACKER_MODE", "disabled")
    booster, record = train([nbtracker_callback()], rounds=4, early=10)
    log_summary(booster, save_model_checkpoint=True)
    assert len(record["valid"]["auc"]) == 4
    assert "warning" not in capfd.readouterr().err
    assert nbtracker.run is None and nbtracker.Api().runs() == []


def test_trainings_in_threads_each_log_to_their_own_run(capfd):
    import threading

    started = threading.Barrier(2, timeout=30)
    out: dict = {}

    class WaitForTheOther:  # both trainings under way at once
        order, before_iteration = 30, False

        def __call__(self, env):
            if env.iteration == 1:
                started.wait()

    def training(tag, rounds):
        cb = nbtracker_callback()
        booster, record = train([cb, WaitForTheOther()], rounds=rounds, early=100)
        started.wait()  # the other training is still on
        log_summary(booster, feature_importance=False)
        out[tag] = (cb._run, len(record["valid"]["auc"]), booster.best_iteration)

    threads = [threading.Thread(target=training, args=(t, n)) for t, n in (("a", 4), ("b", 6))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert "warning" not in capfd.readouterr().err
    assert sorted(out) == ["a", "b"] and out["a"][0] is not out["b"][0]
    for run, rounds, best in out.values():
        api = nbtracker.Api().run(f"{run.project}/{run.id}")
        assert api.state == "finished"
        assert [r["iteration"] for r in api.scan_history()] == list(range(rounds))
        assert api.summary["best_iteration"] == best


def test_log_summary_of_a_booster_whose_run_is_over_warns(capfd):
    first, _ = train([nbtracker_callback()], rounds=2, early=10)
    second, _ = train([nbtracker_callback()], rounds=3, early=10)  # finishes the first's run
    log_summary(first)  # not into the second's run, and no exception
    err = capfd.readouterr().err
    assert err.count("warning") == 1 and "is finished" in err
    log_summary(second)
    a, b = sorted(nbtracker.Api().runs(), key=lambda r: r.created)
    assert "best_iteration" not in a.summary and b.summary["best_iteration"] == second.best_iteration
