"""Chart builders, downsampling and smoothing, against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import nbtracker
from nbtracker.charts import (
    MISSING,
    StreamingMinMax,
    compare_chart,
    config_diff,
    ema,
    long_history,
    minmax_downsample,
)


def test_minmax_downsample_by_hand():
    x = np.arange(10.0)
    y = np.array([5, 1, 7, 3, 9, 2, 8, 0, 6, 4.0])
    # two buckets: [0..4] keeps min 1 (x=1), max 9 (x=4); [5..9] keeps max 8 (x=6), min 0 (x=7);
    # plus the first and last points
    xs, ys = minmax_downsample(x, y, 2)
    assert xs.tolist() == [0, 1, 4, 6, 7, 9] and ys.tolist() == [5, 1, 9, 8, 0, 4]
    # short series come back whole, minus non-finite points
    xs, ys = minmax_downsample([0, 1, 2], [1.0, float("nan"), float("inf")], 5)
    assert xs.tolist() == [0] and ys.tolist() == [1.0]


def test_minmax_downsample_bounds_and_extremes():
    rng = np.random.default_rng(1)
    x = np.arange(100_000.0)
    y = rng.normal(size=x.size)
    y[31_337] = 50.0
    xs, ys = minmax_downsample(x, y, 100)
    assert len(xs) <= 202 and xs[0] == 0 and xs[-1] == x[-1]
    assert ys.max() == 50.0 and ys.min() == y.min()
    assert (np.diff(xs) > 0).all()


def apply(front: dict, key: str, change: dict) -> None:
    """What a front-end does with a push() result."""
    if change.get("reset") is not None:
        front[key] = list(zip(*change["reset"]))
    else:
        front.setdefault(key, []).extend(zip(*change["append"]))
    front[key + "/tail"] = list(zip(*change["tail"]))


def test_streaming_minmax_by_hand():
    s = StreamingMinMax(max_buckets=2)
    r = s.push([0, 1], [3.0, 5.0])  # width 1: bucket 0 complete, bucket 1 open
    assert r["append"][0].tolist() == [0] and r["tail"][0].tolist() == [1]
    r = s.push([2, 3], [4.0, 1.0])  # 3 complete buckets > 2: width 2, buckets {0,1} and {2,3}
    assert "reset" in r and s.width == 2
    assert list(zip(*r["reset"])) == [(0, 3.0), (1, 5.0)]  # bucket [0, 2): min 3 at 0, max 5 at 1
    assert list(zip(*r["tail"])) == [(2, 4.0), (3, 1.0)]  # open bucket [2, 4): max then min
    px, py = s.points()
    assert list(zip(px, py)) == [(0, 3.0), (1, 5.0), (2, 4.0), (3, 1.0)]


def test_streaming_minmax_bounded_exact_and_replayable():
    rng = np.random.default_rng(7)
    s = StreamingMinMax(max_buckets=50)
    front: dict = {}
    all_y = []
    resets = 0
    for b in range(300):
        x = np.arange(b * 37, (b + 1) * 37, dtype=float)
        y = np.sin(x / 300) + rng.normal(scale=0.1, size=x.size)
        all_y.append(y)
        r = s.push(x, y)
        resets += "reset" in r
        apply(front, "k", r)
        assert len(front["k"]) + len(front["k/tail"]) <= 2 * 50 + 3
    y = np.concatenate(all_y)
    px, py = s.points()
    assert front["k"] + front["k/tail"] == list(zip(px, py))
    assert resets > 0 and py.max() == y.max() and py.min() == y.min()
    assert px[-1] == 300 * 37 - 1  # the newest point is always shown
    assert set(py) <= set(y)  # only logged values


def test_ema_is_tensorboards_debiased_average():
    # s = 0.5, alpha = 0.5, adjust=True:
    # e1 = 1; e2 = (2 + 0.5*1) / (1 + 0.5) = 1.6667; e3 = (3 + 0.5*2 + 0.25*1) / 1.75 = 2.4286
    out = ema(pd.Series([1.0, 2.0, 3.0]), 0.5)
    assert out.tolist() == pytest.approx([1.0, 5 / 3, 4.25 / 1.75])
    assert ema(pd.Series([1.0, 2.0]), 0.0).tolist() == [1.0, 2.0]
    with_nan = ema(pd.Series([1.0, float("nan"), 3.0]), 0.5)
    assert math.isnan(with_nan[1]) and with_nan[2] == pytest.approx((3 + 0.5) / 1.5)
    with pytest.raises(ValueError):
        ema(pd.Series([1.0]), 1.0)


def two_groups():
    runs = []
    for name, group, values in [("a1", "A", [1.0, 3.0]), ("a2", "A", [3.0, 5.0]),
                                ("b1", "B", [10.0, 10.0])]:
        with nbtracker.init(project="charts", name=name, group=group,
                            config={"lr": 0.1 if group == "A" else 0.2, "seed": name}) as r:
            for v in values:
                r.log({"loss": v, "text": "x"})
        runs.append(r)
    return nbtracker.Api().runs("charts", order="+created_at")


def test_long_history_and_grouped_bands():
    runs = two_groups()
    long = long_history(runs)
    assert set(long["metric"]) == {"loss"} and len(long) == 6
    assert long[long["run"] == "a2"]["value"].tolist() == [3.0, 5.0]
    chart = compare_chart(runs, group_by="group")
    spec = chart.to_dict()
    rows = next(iter(spec["datasets"].values()))
    a = sorted((r["x"], r["mean"], r["std"]) for r in rows if r["group"] == "A")
    # step 0: mean(1, 3) = 2, sample std sqrt(2); step 1: mean(3, 5) = 4
    assert a == [(0, 2.0, pytest.approx(math.sqrt(2))), (1, 4.0, pytest.approx(math.sqrt(2)))]
    b = [(r["x"], r["mean"], r["std"]) for r in rows if r["group"] == "B"]
    assert sorted(b) == [(0, 10.0, 0.0), (1, 10.0, 0.0)]
    marks = {layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
             for layer in spec["layer"]}
    assert marks == {"area", "line"}
    by_config = compare_chart(runs, group_by="config.lr").to_dict()
    groups = {r["group"] for r in next(iter(by_config["datasets"].values()))}
    assert groups == {"0.1", "0.2"}


def test_smoothing_draws_raw_and_smoothed_and_saves(tmp_path):
    runs = two_groups()
    chart = compare_chart(runs, metrics=["loss"], smooth=0.5)
    spec = chart.to_dict()
    rows = next(iter(spec["datasets"].values()))
    a1 = [r for r in rows if r["run"] == "a1"]
    assert [r["smoothed"] for r in a1] == pytest.approx([1.0, (3 + 0.5) / 1.5])
    for ext in ("png", "svg", "html"):
        path = tmp_path / f"chart.{ext}"
        chart.properties(title="restyled").save(str(path))
        assert path.stat().st_size > 1000
    with pytest.raises(ValueError, match="no numeric values"):
        compare_chart(runs, metrics=["text"])


def test_long_runs_are_downsampled_in_the_spec():
    with nbtracker.init(project="big-chart") as r:
        for i in range(20_000):
            r.log({"loss": math.sin(i / 100)})
    spec = compare_chart([nbtracker.Api().find(r)], max_points=1000).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) <= 1000 and max(x["value"] for x in rows) == pytest.approx(1.0, abs=1e-4)


def test_config_diff():
    runs = two_groups()
    df = config_diff(runs)
    assert list(df.index) == ["lr", "seed"] and df["differs"].all()
    with nbtracker.init(project="charts2", name="n1", config={"opt": {"name": "sgd", "m": 0.9}}) as r1:
        pass
    with nbtracker.init(project="charts2", name="n2", config={"opt": {"name": "adam", "m": 0.9},
                                                             "extra": 1}) as r2:
        pass
    df = config_diff([r1, r2])
    assert list(df.index) == ["extra", "opt.name"]
    assert df.loc["extra", "n1"] == MISSING and df.loc["opt.name", "n2"] == "adam"
    full = config_diff([r1, r2], show_all=True)
    assert list(full.index) == ["extra", "opt.name", "opt.m"] and not full.loc["opt.m", "differs"]
