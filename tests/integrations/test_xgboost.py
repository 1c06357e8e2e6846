"""XGBoost: NbtrackerCallback logs each round's evaluation results as xgboost records them
(`evals_result`), the booster's configuration, the best round and the feature importance."""

from __future__ import annotations

import json

import pytest

xgb = pytest.importorskip("xgboost")
np = pytest.importorskip("numpy")

import nbtracker  # noqa: E402
from nbtracker.integrations.xgboost import NbtrackerCallback  # noqa: E402


def data(n: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return x[:200], y[:200], x[200:], y[200:]


PARAMS = {"objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "max_depth": 2,
          "eta": 0.3, "seed": 0}


def user_keys(rows: list[dict]) -> set[str]:
    return {k for r in rows for k in r if not k.startswith("_")}


def test_train_with_early_stopping_in_a_run_of_its_own(monkeypatch):
    monkeypatch.setenv("NBTRACKER_PROJECT", "xgb-train")
    xtr, ytr, xva, yva = data()
    dtr, dva = xgb.DMatrix(xtr, ytr), xgb.DMatrix(xva, yva)
    evals_result: dict = {}
    booster = xgb.train(PARAMS, dtr, num_boost_round=40, evals=[(dtr, "train"), (dva, "valid")],
                        early_stopping_rounds=3, evals_result=evals_result, verbose_eval=False,
                        callbacks=[NbtrackerCallback()])
    assert nbtracker.run is None  # started by the callback, finished by it

    (run,) = nbtracker.Api().runs("xgb-train")
    assert run.state == "finished"
    rows = list(run.scan_history())
    rounds = booster.num_boosted_rounds()
    assert 3 < rounds < 40  # early stopping stopped it
    per_round, (last,) = rows[:-1], rows[-1:]
    assert [r["_step"] for r in per_round] == [r["epoch"] for r in per_round] == list(range(rounds))
    assert user_keys(per_round) == {"train-logloss", "train-auc", "valid-logloss", "valid-auc",
                                    "epoch"}
    for data_name, metrics in evals_result.items():
        for metric, values in metrics.items():
            assert [r[f"{data_name}-{metric}"] for r in per_round] == values
    # config: the booster's own configuration
    config = json.loads(booster.save_config())
    assert run.config["learner"]["objective"] == config["learner"]["objective"]
    assert run.config["learner"]["gradient_booster"]["tree_train_param"]["max_depth"] == "2"
    # summary: the best round as early stopping found it; losses by their minimum, AUC its maximum
    assert run.summary["best_iteration"] == booster.best_iteration
    assert run.summary["best_score"] == booster.best_score
    assert run.summary["valid-logloss"] == min(evals_result["valid"]["logloss"])
    assert run.summary["valid-auc"] == max(evals_result["valid"]["auc"])
    assert {"name": "valid-auc", "summary": ["max"]} in run.metrics
    # the feature importance table, in a row after the last round
    assert last["_step"] == rounds and user_keys([last]) == {"Feature Importance"}
    (table,) = run.media("Feature Importance")
    df = table.load()
    assert list(df.columns) == ["Feature", "Importance"]
    assert dict(zip(df["Feature"], df["Importance"])) == booster.get_score(importance_type="gain")


def test_sklearn_api_into_the_users_run_with_the_model_kept():
    pytest.importorskip("sklearn")
    from sklearn.base import clone

    xtr, ytr, xva, yva = data()
    run = nbtracker.init(project="xgb-sklearn")
    clf = xgb.XGBClassifier(n_estimators=12, max_depth=2, learning_rate=0.3,
                            eval_metric="logloss", random_state=0,
                            callbacks=[NbtrackerCallback(log_model=True,
                                                         importance_type="weight")])
    clf.fit(xtr, ytr, eval_set=[(xtr, ytr), (xva, yva)], verbose=False)
    assert nbtracker.run is run and run.state == "running"  # the user's run stays open
    run.finish()

    api_run = nbtracker.Api().run(run.path)
    rows = list(api_run.scan_history())
    results = clf.evals_result()
    assert [r["validation_1-logloss"] for r in rows[:-1]] == results["validation_1"]["logloss"]
    assert [r["validation_0-logloss"] for r in rows[:-1]] == results["validation_0"]["logloss"]
    assert [r["epoch"] for r in rows[:-1]] == list(range(12))
    assert "best_score" not in api_run.summary  # no early stopping: no best round
    df = api_run.media("Feature Importance")[0].load()
    assert dict(zip(df["Feature"], df["Importance"])) == clf.get_booster().get_score(
        importance_type="weight")
    # the model file, loaded back, predicts as the trained model does
    saved = api_run.file(f"{run.id}_model.json").path
    booster = xgb.Booster(model_file=str(saved))
    np.testing.assert_array_equal(booster.predict(xgb.DMatrix(xva)),
                                  clf.get_booster().predict(xgb.DMatrix(xva)))

    # sklearn's clone copies the callback: with no run open, the copy starts a run of its own
    clone(clf).set_params(n_estimators=4, early_stopping_rounds=2).fit(
        xtr, ytr, eval_set=[(xva, yva)], verbose=False)
    (other,) = [r for r in nbtracker.Api().runs() if r.id != run.id]
    assert other.state == "finished"
    assert [r["epoch"] for r in other.scan_history() if "epoch" in r] == [0, 1, 2, 3]
    assert {f.name for f in other.files()} >= {f"{other.id}_model.json"}


def test_cv_logs_mean_and_std_as_xgboost_names_them():
    xtr, ytr, _, _ = data()
    run = nbtracker.init(project="xgb-cv")
    table = xgb.cv({"objective": "binary:logistic", "max_depth": 2, "seed": 0},
                   xgb.DMatrix(xtr, ytr), num_boost_round=5, nfold=3, seed=0,
                   callbacks=[NbtrackerCallback()])
    run.finish()
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert user_keys(rows) == set(table.columns) | {"epoch"}
    for col in table.columns:
        assert [r[col] for r in rows] == table[col].tolist()


@pytest.mark.parametrize("cv", [False, True])
def test_a_custom_metric_named_like_a_built_in_one_is_kept_beside_it(cv, capfd):
    xtr, ytr, xva, yva = data()
    dtr, dva = xgb.DMatrix(xtr, ytr), xgb.DMatrix(xva, yva)

    def rmse_times_ten(preds, dmatrix):  # "rmse" again, not xgboost's
        return "rmse", 10 * float(np.sqrt(np.mean((preds - dmatrix.get_label()) ** 2)))

    params = {**PARAMS, "eval_metric": "rmse"}
    run = nbtracker.init(project="xgb-twice")
    if cv:
        result = xgb.cv(params, dtr, num_boost_round=3, nfold=2, custom_metric=rmse_times_ten,
                        callbacks=[NbtrackerCallback()])
        # xgboost's own table has both, one after the other, as rows
        expected = {f"{d}-rmse{suffix}-{stat}": result[f"{d}-rmse-{stat}"].tolist()[i::2]
                    for d in ("train", "test") for stat in ("mean", "std")
                    for i, suffix in ((0, ""), (1, "-2"))}
    else:
        evals_result: dict = {}
        xgb.train(params, dtr, num_boost_round=3, evals=[(dva, "valid")], verbose_eval=False,
                  custom_metric=rmse_times_ten, evals_result=evals_result,
                  callbacks=[NbtrackerCallback()])
        both = evals_result["valid"]["rmse"]  # both in one list, the built-in first
        expected = {"valid-rmse": both[0::2], "valid-rmse-2": both[1::2]}
    run.finish()
    rows = [r for r in nbtracker.Api().run(run.path).scan_history() if "epoch" in r]
    assert user_keys(rows) == {*expected, "epoch"}
    for key, values in expected.items():
        assert [r[key] for r in rows] == values, key
    err = capfd.readouterr().err
    assert err.count("custom metric named like a built-in one") == 1
    assert ("'train-rmse-2', 'test-rmse-2'" if cv else "'valid-rmse-2'") in err


def test_a_failure_inside_the_callback_is_one_warning_and_training_goes_on(capfd):
    xtr, ytr, xva, yva = data()
    run = nbtracker.init(project="xgb-broken")
    booster = xgb.train(PARAMS, xgb.DMatrix(xtr, ytr), num_boost_round=5,
                        evals=[(xgb.DMatrix(xva, yva), "valid")], verbose_eval=False,
                        callbacks=[NbtrackerCallback(importance_type="no-such-type")])
    assert booster.num_boosted_rounds() == 5
    run.finish()
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert [r["epoch"] for r in rows] == list(range(5))  # every round logged, no table
    warnings = [ln for ln in capfd.readouterr().err.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "feature importance failed" in warnings[0]


def test_tracking_disabled_trains_silently(monkeypatch, capfd):
    monkeypatch.setenv("NBTRACKER_MODE", "disabled")
    xtr, ytr, xva, yva = data()
    booster = xgb.train(PARAMS, xgb.DMatrix(xtr, ytr), num_boost_round=4,
                        evals=[(xgb.DMatrix(xva, yva), "valid")], early_stopping_rounds=2,
                        verbose_eval=False, callbacks=[NbtrackerCallback(log_model=True)])
    assert booster.num_boosted_rounds() >= 1
    assert "warning" not in capfd.readouterr().err
    assert nbtracker.Api().runs() == []
