"""log(): steps, commit, values, keys, summary rules, config — through the public API."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

import nbtracker
from nbtracker.store.recordlog import read_records


def history(run):
    return nbtracker.Api().run(run.path).history()


def records(run, t=None):
    recs = list(read_records(f"{run.storage_dir}/records.jsonl"))
    return [r for r in recs if t is None or r["t"] == t]


# -- steps ------------------------------------------------------------------------------

def test_log_without_step_commits_and_advances():
    run = nbtracker.init(project="p")
    for i in range(5):
        nbtracker.log({"x": i * 2})
    assert run.step == 5
    run.finish()
    df = history(run)
    assert df["_step"].tolist() == [0, 1, 2, 3, 4]
    assert df["x"].tolist() == [0, 2, 4, 6, 8]


def test_step_argument_accumulates_and_a_lower_step_is_kept_at_its_step(capsys):
    run = nbtracker.init(project="p")
    nbtracker.log({"a": 1}, step=3)
    nbtracker.log({"b": 2}, step=3)
    nbtracker.log({"c": 3}, step=7)
    nbtracker.log({"d": 4}, step=5)  # lower than 7: kept at step 5, one note
    nbtracker.log({"e": 5}, step=3)  # also lower: joins step 3's row, no second note
    nbtracker.log({"f": 6})  # the current step is still 7
    run.finish()
    err = capsys.readouterr().err
    assert err.count("lower than the current step") == 1
    df = history(run)
    assert df["_step"].tolist() == [3, 5, 7]
    row3 = df[df["_step"] == 3].iloc[0]
    assert row3["a"] == 1 and row3["b"] == 2 and row3["e"] == 5 and math.isnan(row3["c"])
    assert df[df["_step"] == 5].iloc[0]["d"] == 4
    assert df[df["_step"] == 7].iloc[0]["f"] == 6


def test_commit_false_accumulates_then_log_commits():
    run = nbtracker.init(project="p")
    nbtracker.log({"a": 1}, commit=False)
    nbtracker.log({"b": 2}, commit=False)
    assert run.step == 0
    nbtracker.log({"c": 3})
    assert run.step == 1
    nbtracker.log({"a": 10})
    run.finish()
    df = history(run)
    assert len(df) == 2
    assert df.iloc[0][["a", "b", "c"]].tolist() == [1, 2, 3]
    assert df.iloc[1]["a"] == 10


def test_step_then_plain_log_lands_in_same_step():
    run = nbtracker.init(project="p")
    nbtracker.log({"train": 1.0}, step=4)
    nbtracker.log({"val": 2.0})  # joins step 4, then advances to 5
    nbtracker.log({"val": 3.0})
    run.finish()
    df = history(run)
    assert df["_step"].tolist() == [4, 5]
    assert df.iloc[0]["train"] == 1.0 and df.iloc[0]["val"] == 2.0


def test_numpy_step_and_bad_step(capsys):
    run = nbtracker.init(project="p")
    nbtracker.log({"a": 1}, step=np.int64(2))
    nbtracker.log({"a": 2}, step="soon")
    run.finish()
    assert "step must be an integer from 0 to 2**64 - 1" in capsys.readouterr().err
    df = history(run)
    assert df["_step"].tolist() == [2]
    assert df["a"].tolist() == [2]  # the bad-step call went to the current step, later wins


def test_steps_beyond_2_53_are_exact_and_beyond_64_bits_are_refused_with_one_line(capsys):
    run = nbtracker.init(project="p")
    big = 2**53 + 1
    nbtracker.log({"a": 1}, step=np.int64(big))  # a float would make it 2**53
    nbtracker.log({"a": 2}, step=2**64 - 1)
    nbtracker.log({"a": 3}, step=2**64)  # cannot be written: the current step instead
    nbtracker.log({"a": 4}, step=-1)
    run.finish()
    err = capsys.readouterr().err
    assert err.count("step must be an integer from 0 to 2**64 - 1") == 1
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert [(r["_step"], r["a"]) for r in rows] == [(big, 1), (2**64 - 1, 4)]


def test_two_time_scales():
    run = nbtracker.init(project="p")
    nbtracker.log({"train_accuracy": 0.9, "batch": 200})
    nbtracker.log({"val_accuracy": 0.8, "epoch": 4})
    run.finish()
    df = history(run)
    assert df["batch"].tolist()[0] == 200 and df["epoch"].tolist()[1] == 4


# -- values ---------------------------------------------------------------------------

def test_values_kept_as_logged():
    run = nbtracker.init(project="p")
    nbtracker.log({"nan": float("nan"), "inf": float("inf"), "ninf": -math.inf,
                   "np32": np.float32(0.5), "np64": np.float64(0.25), "npint": np.int64(7),
                   "zero_d": np.array(3.5), "flag": True, "text": "hello", "none": None,
                   "nested": {"a": 1, "b": {"c": 2.5}}, "small": [1, 2, 3],
                   "big_int": 2**70})
    run.finish()
    row = history(run).iloc[0]
    assert math.isnan(row["nan"])
    assert row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["np32"] == 0.5 and row["np64"] == 0.25 and row["npint"] == 7
    assert row["zero_d"] == 3.5 and bool(row["flag"]) is True and row["text"] == "hello"
    assert row["nested/a"] == 1 and row["nested/b/c"] == 2.5
    assert list(row["small"]) == [1, 2, 3]
    assert row["big_int"] == float(2**70)
    s = nbtracker.Api().run(run.path).summary
    assert math.isnan(s["nan"]) and s["inf"] == math.inf
    assert s["nested"] == {"a": 1, "b": {"c": 2.5}}


def test_bad_values_and_keys_warn_once_and_keep_the_rest(capsys):
    run = nbtracker.init(project="p")
    for i in range(3):
        nbtracker.log({"ok": i, "obj": object(), "": 1, "x" * 300: 2, "ctl\x01": 3,
                       "_step": 9, 5: "int key", "fn": len})
    run.finish()
    err = capsys.readouterr().err
    for needle in ("'obj'", "must not be empty", "at most 256", "control characters",
                   "reserved", "'fn'"):
        assert err.count(needle) == 1, needle
    df = history(run)
    assert df["ok"].tolist() == [0, 1, 2]
    assert df["5"].tolist() == ["int key"] * 3  # numeric keys are turned into text
    assert "obj" not in df.columns and "fn" not in df.columns


class _Broken:
    """A 0-d value whose reading fails, like a tensor on the "meta" device."""

    ndim = 0

    def item(self):
        raise RuntimeError("Tensor.item() cannot be called on meta tensors")

    def __float__(self):
        raise RuntimeError("no value")


def test_a_value_that_fails_when_read_is_one_warning_and_the_rest_is_kept(capsys):
    run = nbtracker.init(project="p")
    for _ in range(2):
        nbtracker.log({"loss": 0.5, "per_layer": [_Broken()], "scalar": _Broken()})
    run.finish()
    err = capsys.readouterr().err
    assert err.count("'per_layer'") == 1 and err.count("'scalar'") == 1, err
    df = history(run)
    assert df["loss"].tolist() == [0.5, 0.5] and "per_layer" not in df.columns


def test_large_arrays_become_histograms():
    run = nbtracker.init(project="p")
    nbtracker.log({"w": np.arange(1000.0), "short": np.array([1.0, 2.0])})
    run.finish()
    row = history(run).iloc[0]
    assert row["w"]["_type"] == "histogram" and sum(row["w"]["values"]) == 1000
    assert list(row["short"]) == [1.0, 2.0]


def test_log_takes_a_mapping_only(capsys):
    run = nbtracker.init(project="p")
    nbtracker.log([("a", 1)])
    run.finish()
    assert "log() takes a dict" in capsys.readouterr().err
    assert records(run, "history") == []


def test_log_before_init_raises_and_after_finish_warns(capsys):
    with pytest.raises(nbtracker.Error, match="call nbtracker.init"):
        nbtracker.log({"a": 1})
    run = nbtracker.init(project="p")
    run.finish()
    with pytest.raises(nbtracker.Error):
        nbtracker.log({"a": 1})  # module-level: no current run any more
    run.log({"a": 1})
    run.log({"a": 2})
    assert capsys.readouterr().err.count("is finished") == 1
    assert records(run, "history") == []


def test_unknown_kwargs_warn_once(capsys):
    run = nbtracker.init(project="p", sync_tensorboard=False, whatever=1)
    nbtracker.log({"a": 1}, made_up=True)
    nbtracker.log({"a": 2}, made_up=True)
    run.finish(extra=1)
    err = capsys.readouterr().err
    assert err.count("'made_up'") == 1 and "'whatever'" in err and "'extra'" in err


# -- summary --------------------------------------------------------------------------

def test_summary_rules():
    run = nbtracker.init(project="p")
    nbtracker.define_metric("loss", summary="min")
    nbtracker.define_metric("acc", summary="max")
    nbtracker.define_metric("lr", summary="first")
    nbtracker.define_metric("t", summary="mean")
    nbtracker.define_metric("val/*", summary="best", goal="maximize")
    nbtracker.define_metric("noise", summary="none")
    nbtracker.define_metric("both", summary="min,max")
    losses = [0.9, 0.3, 0.5, 0.4]
    for i, v in enumerate(losses):
        nbtracker.log({"loss": v, "acc": 1 - v, "lr": 0.1 / (i + 1), "t": i, "val/f1": v,
                       "noise": i, "both": v, "plain": v})
    s = run.summary
    assert s["loss"] == 0.3 and s["acc"] == pytest.approx(0.7) and s["lr"] == 0.1
    assert s["t"] == pytest.approx(1.5) and s["val/f1"] == 0.9 and "noise" not in s
    assert s["both"] == {"min": 0.3, "max": 0.9} and s["plain"] == 0.4
    run.summary["loss"] = 123.0  # by hand wins
    nbtracker.log({"loss": 0.01})
    assert run.summary["loss"] == 123.0
    run.finish()
    stored = nbtracker.Api().run(run.path).summary
    assert dict(stored) == dict(s)


def test_summary_rule_defined_after_logging_starts():
    run = nbtracker.init(project="p")
    nbtracker.log({"loss": 0.5})
    nbtracker.define_metric("loss", summary="max")
    nbtracker.log({"loss": 0.2})
    assert run.summary["loss"] == 0.5
    run.finish()


def test_step_metric_glob_syncs_the_x_axis():
    run = nbtracker.init(project="p")
    nbtracker.define_metric("epoch")
    nbtracker.define_metric("val/*", step_metric="epoch")
    nbtracker.log({"epoch": 1})
    nbtracker.log({"val/loss": 0.5})
    nbtracker.log({"train/loss": 0.4})
    run.finish()
    df = history(run)
    assert df.loc[df["val/loss"].notna(), "epoch"].tolist() == [1]
    assert math.isnan(df.loc[df["train/loss"].notna(), "epoch"].iloc[0])
    metrics = nbtracker.Api().run(run.path).metrics
    assert {"name": "val/*", "step_metric": "epoch"} in metrics


def test_bad_define_metric_warns(capsys):
    run = nbtracker.init(project="p")
    assert run.define_metric("x", summary="median") is None
    assert "summary rule 'median'" in capsys.readouterr().err
    run.finish()


# -- config ---------------------------------------------------------------------------

def test_config_dict_attr_argparse_and_changes(capsys):
    ns = argparse.Namespace(batch_size=32, optimizer="adam")
    run = nbtracker.init(project="p", config={"lr": 1e-3, "epochs": 5})
    nbtracker.config.update({"dropout_rate": 0.5})
    nbtracker.config.hidden = 128
    nbtracker.config["seed"] = np.int64(3)
    nbtracker.config.update(ns)
    nbtracker.config.update({"lr": 1e-3})  # same value: fine
    nbtracker.config.lr = 0.1  # change: refused with a warning
    err = capsys.readouterr().err
    assert "config['lr'] is 0.001; not changed to 0.1" in err
    assert run.config.lr == 1e-3 and run.config["hidden"] == 128
    nbtracker.config.update({"lr": 0.2}, allow_val_change=True)
    assert run.config["lr"] == 0.2
    run.finish()
    stored = nbtracker.Api().run(run.path).config
    assert stored == {"lr": 0.2, "epochs": 5, "dropout_rate": 0.5, "hidden": 128, "seed": 3,
                      "batch_size": 32, "optimizer": "adam"}


def test_config_assignment_before_and_after_init():
    nbtracker.config = {"learning_rate": 0.001, "epochs": 5}
    run = nbtracker.init(project="p", config={"batch_size": 128})
    assert dict(nbtracker.config) == {"learning_rate": 0.001, "epochs": 5, "batch_size": 128}
    nbtracker.config = {"extra": 1}
    assert nbtracker.config["extra"] == 1 and nbtracker.config is run.config
    run.finish()
    assert nbtracker.Api().run(run.path).config["extra"] == 1


def test_init_allow_val_change_and_key_filters():
    run = nbtracker.init(project="p", config={"a": 1, "b": 2, "secret": 3},
                         config_exclude_keys=["secret"], allow_val_change=True)
    run.config.a = 5
    assert run.config.as_dict() == {"a": 5, "b": 2}
    run.finish()


def test_values_numpy_cannot_turn_into_numbers_are_skipped_with_one_line(capsys):
    run = nbtracker.init(project="p")
    nbtracker.log({"d": [np.datetime64("2020-01-01")], "s": np.array(["a"] * 40), "ok": 1.0})
    run.finish()  # must not fail on what log() took
    err = capsys.readouterr().err
    assert "skipped key 'd'" in err and "skipped key 's'" in err
    assert run.state == "finished"
    assert history(run)["ok"].tolist() == [1.0]
