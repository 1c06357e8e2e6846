"""Chart builders, downsampling and smoothing, against values worked out by hand."""

from __future__ import annotations

import math
import subprocess
import sys

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
    line_chart,
    long_history,
    minmax_downsample,
)

SQRT2 = math.sqrt(2)


# -- stand-ins for runs: what the builders read from an ApiRun ---------------------------------

class FakeRun:
    def __init__(self, id: str, name: str, columns: dict, group: str | None = None,
                 config: dict | None = None):
        self.id, self.name, self.group, self.config = id, name, group, config or {}
        steps = len(next(iter(columns.values())))
        self._df = pd.DataFrame({"_step": np.arange(steps), **columns,
                                 "_runtime": np.arange(steps) * 0.5 + 0.25,
                                 "_timestamp": 1.7e9 + np.arange(steps) * 0.5})

    def history(self) -> pd.DataFrame:
        return self._df.copy()


def three_runs() -> list[FakeRun]:
    """Group A: a1 logs loss 1, 3, 5 at steps 0-2; a2 logs 3, 7 then inf (skipped). Group B: b1
    logs 10 three times. Only a1 logs acc, only b1 a text column: loss is the shared metric."""
    return [
        FakeRun("id1", "a1", {"loss": [1.0, 3.0, 5.0], "acc": [0.1, 0.2, np.nan]}, "A",
                {"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}, "seed": 1}),
        FakeRun("id2", "a2", {"loss": [3.0, 7.0, np.inf]}, "A",
                {"lr": 0.1, "opt": {"name": "adam", "momentum": 0.9}}),
        FakeRun("id3", "b1", {"loss": [10.0, 10.0, 10.0], "note": ["x", "y", "z"]}, "B",
                {"lr": 0.2, "opt": {"name": "sgd", "momentum": 0.9}, "seed": 1}),
    ]


def datasets(chart) -> list[list[dict]]:
    """The data rows of a chart's spec, one list per dataset."""
    return list(chart.to_dict()["datasets"].values())


def encodings(spec, channel: str) -> list[dict]:
    """Every encoding of `channel` anywhere in a spec."""
    found = []
    if isinstance(spec, dict):
        enc = spec.get("encoding")
        if isinstance(enc, dict) and channel in enc:
            found.append(enc[channel])
        for v in spec.values():
            found += encodings(v, channel)
    elif isinstance(spec, list):
        for v in spec:
            found += encodings(v, channel)
    return found


def marks(spec) -> list[tuple[str, float | None]]:
    """(mark type, opacity) of every layer of a layered spec."""
    out = []
    for layer in spec["layer"]:
        m = layer["mark"]
        out.append((m, None) if isinstance(m, str) else (m["type"], m.get("opacity")))
    return out


# -- minmax_downsample ---------------------------------------------------------------------

def test_minmax_downsample_by_hand():
    x = np.arange(10.0)
    y = np.array([5, 1, 7, 3, 9, 2, 8, 0, 6, 4.0])
    # two buckets, x 0-4 and 5-9: the first keeps its min 1 (x=1) and max 9 (x=4), the second
    # its max 8 (x=6) and min 0 (x=7); plus the first and last points
    xs, ys = minmax_downsample(x, y, 2)
    assert xs.tolist() == [0, 1, 4, 6, 7, 9] and ys.tolist() == [5, 1, 9, 8, 0, 4]
    # three buckets, x 0-2 / 3-5 / 6-9: min 1 (x=1) max 7 (x=2); max 9 (x=4) min 2 (x=5);
    # max 8 (x=6) min 0 (x=7); plus the ends
    xs, ys = minmax_downsample(x, y, 3)
    assert xs.tolist() == [0, 1, 2, 4, 5, 6, 7, 9] and ys.tolist() == [5, 1, 7, 9, 2, 8, 0, 4]
    # a flat bucket (x 0-2, all 2) keeps one point, which is also the first point
    xs, ys = minmax_downsample(np.arange(6.0), [2, 2, 2, 5, 1, 3.0], 2)
    assert xs.tolist() == [0, 3, 4, 5] and ys.tolist() == [2, 5, 1, 3]


def test_minmax_downsample_short_series_and_non_finite():
    xs, ys = minmax_downsample([0, 1, 2, 3], [1.0, float("nan"), float("inf"), -2.0], 5)
    assert xs.tolist() == [0, 3] and ys.tolist() == [1.0, -2.0]
    # 2n points or fewer come back as they are
    xs, ys = minmax_downsample(np.arange(4.0), [4.0, 3.0, 2.0, 1.0], 2)
    assert xs.tolist() == [0, 1, 2, 3] and ys.tolist() == [4, 3, 2, 1]
    xs, ys = minmax_downsample([], [], 3)
    assert len(xs) == 0 and len(ys) == 0
    with pytest.raises(ValueError, match="n_buckets"):
        minmax_downsample([0, 1], [0, 1], 0)


def test_minmax_downsample_bounds_and_extremes():
    rng = np.random.default_rng(1)
    x = np.cumsum(rng.uniform(0.1, 2.0, size=100_000))  # ascending, uneven
    y = rng.normal(size=x.size)
    y[31_337], y[77] = 50.0, -40.0
    y[[0, 5, 99_999]] = [np.nan, np.inf, -np.inf]  # dropped first: the ends are 1 and 99_998
    for n in (1, 7, 100):
        xs, ys = minmax_downsample(x, y, n)
        assert len(xs) <= 2 * n + 2
        assert np.isfinite(ys).all() and (np.diff(xs) > 0).all()
        assert xs[0] == x[1] and xs[-1] == x[99_998]
        assert ys.max() == 50.0 and ys.min() == -40.0
        assert set(zip(xs, ys)) <= set(zip(x, y))  # only real points


# -- StreamingMinMax -------------------------------------------------------------------------

def sent_shape(r: dict) -> None:
    """A push() result is what the live feed sends as one series' delta: a reset or an append,
    and the new tail (the browser test checks that the real front-end rebuilds held() from it)."""
    assert set(r) in ({"reset", "tail"}, {"append", "tail"}), set(r)
    for xy in r.values():
        assert len(xy) == 2 and len(xy[0]) == len(xy[1])


def held(s: StreamingMinMax) -> list:
    return list(zip(*s.points()))


def test_streaming_minmax_by_hand():
    s = StreamingMinMax(max_buckets=2)
    r = s.push([0, 1], [3.0, 5.0])  # width 1: bucket 0 complete, bucket 1 open
    assert list(zip(*r["append"])) == [(0, 3.0)] and list(zip(*r["tail"])) == [(1, 5.0)]
    r = s.push([2, 3], [4.0, 1.0])  # 3 complete buckets > 2: width 2, buckets [0, 2) and [2, 4)
    assert "reset" in r and s.width == 2
    assert list(zip(*r["reset"])) == [(0, 3.0), (1, 5.0)]  # [0, 2): min 3 at 0, max 5 at 1
    assert list(zip(*r["tail"])) == [(2, 4.0), (3, 1.0)]  # open [2, 4): max then min, x order
    r = s.push([4, 5], [2.0, 2.0])  # [2, 4) completes; [4, 6) opens with min = max = (4, 2)
    assert list(zip(*r["append"])) == [(2, 4.0), (3, 1.0)]
    assert list(zip(*r["tail"])) == [(4, 2.0), (5, 2.0)]  # its one point, then the newest
    assert held(s) == [(0, 3.0), (1, 5.0), (2, 4.0), (3, 1.0), (4, 2.0), (5, 2.0)]


def test_streaming_minmax_bounded():
    rng = np.random.default_rng(7)
    s = StreamingMinMax(max_buckets=50)
    ys = []
    resets = 0
    for b in range(300):
        x = np.arange(b * 37, (b + 1) * 37, dtype=float)
        y = np.sin(x / 300) + rng.normal(scale=0.1, size=x.size)
        y[3] = np.nan  # skipped
        ys.append(y)
        r = s.push(x, y)
        sent_shape(r)
        resets += "reset" in r
        assert len(held(s)) <= 2 * 50 + 3 and len(s) <= 50 + 1
    y = np.concatenate(ys)
    px, py = s.points()
    assert resets > 0  # 11,100 steps do not fit 50 buckets of width 1
    assert py.max() == np.nanmax(y) and py.min() == np.nanmin(y)
    assert px[-1] == 300 * 37 - 1  # the newest point is always shown
    assert (np.diff(px) >= 0).all() and set(py) <= set(y[np.isfinite(y)])


def test_streaming_minmax_one_large_batch_and_then_small_ones():
    s = StreamingMinMax(max_buckets=100)
    x = np.arange(1_000_000.0)
    y = np.cos(x / 5000)
    y[123_456] = 7.0
    r = s.push(x, y)
    sent_shape(r)
    assert "reset" not in r  # nothing was sent before: a first batch is appended
    assert len(held(s)) <= 2 * 100 + 3 and 7.0 in dict(held(s)).values()
    for i in range(50):
        sent_shape(s.push(1e6 + np.arange(i * 100, (i + 1) * 100.0), np.full(100, -3.0)))
    assert len(held(s)) <= 2 * 100 + 3
    assert min(p[1] for p in held(s)) == -3.0 and max(p[1] for p in held(s)) == 7.0


def test_streaming_minmax_places_points_that_step_back_and_skips_non_finite():
    s = StreamingMinMax(max_buckets=10)
    sent_shape(s.push([0, 1, 2, 3], [1.0, 2.0, 3.0, 4.0]))
    r = s.push([1, 2, 5], [9.0, 0.5, 8.0])  # x went back: 1 and 2 join the buckets of x 1, 2
    sent_shape(r)
    assert "reset" in r
    # bucket 1 holds (1, 2.0) and (1, 9.0); bucket 2 holds (2, 3.0) and (2, 0.5)
    assert held(s) == [(0, 1.0), (1, 2.0), (1, 9.0), (2, 0.5), (2, 3.0), (3, 4.0), (5, 8.0)]
    assert list(zip(*r["reset"])) + list(zip(*r["tail"])) == held(s)  # a reset sends them all
    sent_shape(s.push([4, 6, 6], [0.0, 1.0, np.inf]))  # 4 < 5 is placed at 4, inf skipped
    sent_shape(s.push([], []))
    assert held(s) == [(0, 1.0), (1, 2.0), (1, 9.0), (2, 0.5), (2, 3.0),
                       (3, 4.0), (4, 0.0), (5, 8.0), (6, 1.0)]
    with pytest.raises(ValueError, match="max_buckets"):
        StreamingMinMax(max_buckets=0)


def test_streaming_minmax_stays_bounded_when_points_keep_stepping_back():
    s = StreamingMinMax(max_buckets=20)
    rng = np.random.default_rng(3)
    for b in range(200):
        x = np.arange(b * 10, (b + 1) * 10, dtype=float)
        sent_shape(s.push(x, rng.normal(size=10)))
        back = rng.uniform(-50, b * 10, size=2)  # earlier x, some before the first point
        sent_shape(s.push(back, [100.0 + b, -100.0 - b]))
        assert len(held(s)) <= 2 * 20 + 3
    px, py = s.points()
    assert py.max() == 100.0 + 199 and py.min() == -100.0 - 199  # nothing placed was lost


def test_downsample_module_does_not_import_altair():
    code = ("import sys, numpy as np; from nbtracker.charts.downsample import StreamingMinMax; "
            "StreamingMinMax().push(np.arange(3.0), np.arange(3.0)); print('altair' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- ema -----------------------------------------------------------------------------------

def test_ema_is_tensorboards_debiased_average():
    # s = 0.5, so alpha = 0.5; adjust=True divides by the sum of the weights:
    # e1 = 1
    # e2 = (2 + 0.5*1) / (1 + 0.5) = 2.5 / 1.5 = 1.6666667
    # e3 = (3 + 0.5*2 + 0.25*1) / (1 + 0.5 + 0.25) = 4.25 / 1.75 = 2.4285714
    out = ema(pd.Series([1.0, 2.0, 3.0], index=[10, 20, 30]), 0.5)
    assert out.tolist() == pytest.approx([1.0, 1.6666667, 2.4285714])
    assert out.index.tolist() == [10, 20, 30]
    assert ema(pd.Series([1.0, 5.0, 2.0]), 0.0).tolist() == [1.0, 5.0, 2.0]


def test_ema_skips_non_finite_values():
    # NaN and inf stay where they are; the average runs over 1, 3: (3 + 0.5*1) / 1.5 = 2.3333333
    out = ema(pd.Series([1.0, np.nan, np.inf, 3.0]), 0.5)
    assert math.isnan(out[1]) and out[2] == np.inf
    assert out[[0, 3]].tolist() == pytest.approx([1.0, 3.5 / 1.5])
    for bad in (1.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="smoothing"):
            ema(pd.Series([1.0]), bad)


# -- long_history ------------------------------------------------------------------------------

def test_long_history_keeps_shared_finite_metrics():
    df = long_history(three_runs())
    assert list(df.columns) == ["run", "run_id", "group", "x", "metric", "value"]
    assert set(df["metric"]) == {"loss"}  # acc and note are not logged (as numbers) by all
    assert list(zip(df["run"], df["x"], df["value"])) == [
        ("a1", 0, 1.0), ("a1", 1, 3.0), ("a1", 2, 5.0),
        ("a2", 0, 3.0), ("a2", 1, 7.0),  # inf at step 2 dropped
        ("b1", 0, 10.0), ("b1", 1, 10.0), ("b1", 2, 10.0)]
    assert df["run_id"].tolist()[:4] == ["id1"] * 3 + ["id2"] and set(df["group"]) == {"A", "B"}
    acc = long_history(three_runs(), metrics=["acc"])
    assert acc["value"].tolist() == [0.1, 0.2]  # a1 only, NaN dropped


def test_long_history_other_x_axes_and_group_by():
    runs = three_runs()
    runs[0]._df["epoch"] = [0.0, np.nan, 1.0]  # the row without an epoch is dropped
    runs[1]._df["epoch"] = [0.0, 0.0, 0.0]
    df = long_history(runs, metrics=["loss"], x="epoch")  # b1 never logged epoch
    assert list(zip(df["run"], df["x"], df["value"])) == [("a1", 0, 1.0), ("a1", 1, 5.0),
                                                          ("a2", 0, 3.0), ("a2", 0, 7.0)]
    assert df.attrs["x"] == "epoch"
    t = long_history(runs, x="_runtime")
    assert t[t["run"] == "b1"]["x"].tolist() == [0.25, 0.75, 1.25]
    g = long_history(runs, group_by="config.opt.name")
    assert dict(zip(g["run"], g["config.opt.name"])) == {"a1": "sgd", "a2": "adam", "b1": "sgd"}


def test_long_history_names_runs_uniquely():
    runs = [FakeRun("x1", "same", {"loss": [1.0]}), FakeRun("x2", "same", {"loss": [2.0]})]
    assert long_history(runs)["run"].tolist() == ["same (x1)", "same (x2)"]


# -- line_chart and group bands --------------------------------------------------------------------

def test_line_chart_overlays_runs():
    chart = line_chart(long_history(three_runs()))
    spec = chart.to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 8 and {r["run"] for r in rows} == {"a1", "a2", "b1"}
    assert spec["width"] == 480 and spec["title"] == "loss"
    assert spec["encoding"]["color"]["field"] == "run"
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["run", "x", "value"]
    assert encodings(spec, "x")[0]["title"] == "step"


def test_smoothing_draws_raw_faint_under_ema():
    spec = line_chart(long_history(three_runs()), smooth=0.5).to_dict()
    assert marks(spec) == [("line", 0.25), ("line", None)]
    rows = next(iter(spec["datasets"].values()))
    a1 = [r for r in rows if r["run"] == "a1"]
    # a1 is 1, 3, 5: e2 = (3 + 0.5) / 1.5 = 2.3333333; e3 = (5 + 1.5 + 0.25) / 1.75 = 3.8571429
    assert [r["value"] for r in a1] == [1.0, 3.0, 5.0]
    assert [r["smoothed"] for r in a1] == pytest.approx([1.0, 2.3333333, 3.8571429])
    assert [r["smoothed"] for r in rows if r["run"] == "b1"] == [10.0, 10.0, 10.0]


def test_group_bands_by_hand():
    spec = line_chart(long_history(three_runs()), group_by="group").to_dict()
    assert marks(spec) == [("area", 0.2), ("line", None)]
    rows = next(iter(spec["datasets"].values()))
    got = {(r["group"], r["x"]): (r["mean"], r["std"], r["count"], r["lower"], r["upper"])
           for r in rows}
    # A at step 0: 1 and 3 -> mean 2, std sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2)
    # A at step 1: 3 and 7 -> mean 5, std sqrt((4 + 4) / 1) = 2 sqrt(2)
    # A at step 2: a2's inf is skipped, only a1's 5 -> mean 5, std 0, 1 run
    # B: one run, 10 everywhere
    assert got == {
        ("A", 0): (2.0, pytest.approx(SQRT2), 2, pytest.approx(2 - SQRT2), pytest.approx(2 + SQRT2)),
        ("A", 1): (5.0, pytest.approx(2 * SQRT2), 2, pytest.approx(5 - 2 * SQRT2),
                   pytest.approx(5 + 2 * SQRT2)),
        ("A", 2): (5.0, 0.0, 1, 5.0, 5.0),
        ("B", 0): (10.0, 0.0, 1, 10.0, 10.0),
        ("B", 1): (10.0, 0.0, 1, 10.0, 10.0),
        ("B", 2): (10.0, 0.0, 1, 10.0, 10.0),
    }
    assert encodings(spec, "color")[0]["field"] == "group"


def test_group_bands_smooth_the_mean():
    spec = line_chart(long_history(three_runs()), group_by="group", smooth=0.5).to_dict()
    assert marks(spec) == [("area", 0.2), ("line", 0.25), ("line", None)]
    rows = next(iter(spec["datasets"].values()))
    a = sorted((r["x"], r["mean"], r["smoothed"]) for r in rows if r["group"] == "A")
    # means 2, 5, 5: e2 = (5 + 0.5*2) / 1.5 = 4; e3 = (5 + 0.5*5 + 0.25*2) / 1.75 = 4.5714286
    assert a == [(0, 2.0, 2.0), (1, 5.0, pytest.approx(4.0)), (2, 5.0, pytest.approx(4.5714286))]


def test_group_by_config_key_and_wall_time():
    runs = three_runs()
    chart = compare_chart(runs, group_by="config.lr")
    rows = next(iter(chart.to_dict()["datasets"].values()))
    assert {r["group"] for r in rows} == {"0.1", "0.2"}
    assert encodings(chart.to_dict(), "color")[0]["title"] == "config.lr"
    with pytest.raises(ValueError, match=r"long_history\(runs, group_by='config.lr'\)"):
        line_chart(long_history(runs), group_by="config.lr")
    # runs logged at different times: x is cut into bins and each run counts once per bin
    runs[1]._df["_runtime"] += 0.1
    spec = compare_chart(runs[:2], x="_runtime", group_by="group").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert [r["count"] for r in rows] == [2, 2, 1] and [r["mean"] for r in rows] == [2.0, 5.0, 5.0]
    assert encodings(spec, "x")[0]["title"] == "time (s)"


def test_one_chart_per_metric():
    runs = [FakeRun("i1", "r1", {"loss": [1.0, 2.0], "acc": [0.5, 0.6]}),
            FakeRun("i2", "r2", {"loss": [2.0, 1.0], "acc": [0.4, 0.7]})]
    spec = compare_chart(runs, title="both").to_dict()
    assert spec["title"] == "both" and [c["title"] for c in spec["vconcat"]] == ["loss", "acc"]
    assert spec["resolve"]["scale"]["color"] == "shared"
    assert [len(rows) for rows in spec["datasets"].values()] == [4, 4]


def test_long_runs_are_downsampled_in_the_spec():
    x = np.arange(50_000)
    runs = [FakeRun(f"i{k}", f"r{k}", {"loss": np.sin(x / 1000 + k)}) for k in range(6)]
    runs[2]._df.loc[40_000, "loss"] = 9.0
    for chart, limit in ((compare_chart(runs), 2000), (compare_chart(runs, smooth=0.9), 2000),
                         (compare_chart(runs, group_by="group", max_points=500), 500)):
        assert len(datasets(chart)[0]) <= limit  # 300,000 points in; altair refuses > 5000 rows
    rows = datasets(compare_chart(runs))[0]
    assert max(r["value"] for r in rows) == 9.0 and {r["x"] for r in rows} >= {0, 49_999}


def test_no_values_is_an_error():
    runs = three_runs()
    with pytest.raises(ValueError, match="no numeric values"):
        compare_chart(runs, metrics=["note"])
    with pytest.raises(ValueError, match="smooth"):
        line_chart(long_history(runs), smooth=1.5)


def test_charts_save_as_png_svg_html(tmp_path):
    pytest.importorskip("vl_convert")
    runs = [FakeRun("i1", "r1", {"loss": [3.0, 2.0, 1.5], "acc": [0.1, 0.5, 0.7]}, "g"),
            FakeRun("i2", "r2", {"loss": [3.5, 2.5, 1.0], "acc": [0.2, 0.4, 0.8]}, "g")]
    chart = compare_chart(runs, group_by="group", smooth=0.3).properties(title="restyled")
    for ext, magic in (("png", b"\x89PNG"), ("svg", b"<svg"), ("html", b"<!DOCTYPE html>")):
        path = tmp_path / f"chart.{ext}"
        chart.save(str(path))
        assert path.read_bytes().lstrip().startswith(magic) and path.stat().st_size > 1000


# -- config_diff ---------------------------------------------------------------------------------

def test_config_diff_by_hand():
    runs = three_runs()
    df = config_diff(runs)
    # lr: 0.1 / 0.1 / 0.2; opt.name: sgd / adam / sgd; seed missing in a2; opt.momentum equal
    assert list(df.columns) == ["a1", "a2", "b1", "differs"]
    assert list(df.index) == ["lr", "opt.name", "seed"] and df["differs"].all()
    assert df.loc["seed"].tolist()[:3] == [1, MISSING, 1]
    assert df.loc["opt.name", "a2"] == "adam"
    full = config_diff(runs, show_all=True)
    assert list(full.index) == ["lr", "opt.name", "seed", "opt.momentum"]
    assert full.loc["opt.momentum"].tolist() == [0.9, 0.9, 0.9, False]
    assert full.index.name == "key" and full["differs"].dtype == bool


def test_config_diff_edge_cases():
    same = [FakeRun("i1", "r", {"l": [1.0]}, config={"a": None, "b": [1, 2]}),
            FakeRun("i2", "r", {"l": [1.0]}, config={"b": [1, 2]})]
    df = config_diff(same, show_all=True)
    assert list(df.columns) == ["r (i1)", "r (i2)", "differs"]  # names repeat: ids added
    assert df.loc["a"].tolist() == [None, MISSING, True]  # missing is not None
    assert df.loc["b"].tolist() == [[1, 2], [1, 2], False]
    assert config_diff(same[:1]).empty and config_diff(same[0], show_all=True).shape == (2, 2)


# -- with real runs ------------------------------------------------------------------------------

def logged_runs():
    for name, group, values in [("a1", "A", [1.0, 3.0]), ("a2", "A", [3.0, 5.0]),
                                ("b1", "B", [10.0, 10.0])]:
        run = nbtracker.init(project="charts", name=name, group=group,
                             config={"lr": 0.1 if group == "A" else 0.2, "model": {"seed": name}})
        for v in values:
            nbtracker.log({"loss": v, "text": "x"})
        run.finish()
    return nbtracker.Api().runs("charts", order="+created_at")


def test_real_runs(tmp_path):
    runs = logged_runs()
    assert [r.name for r in runs] == ["a1", "a2", "b1"]
    long = long_history(runs)
    assert set(long["metric"]) == {"loss"} and len(long) == 6
    chart = compare_chart(runs, group_by="group", smooth=0.5)
    rows = datasets(chart)[0]
    a = sorted((r["x"], r["mean"], r["std"], r["smoothed"]) for r in rows if r["group"] == "A")
    # step 0: mean(1, 3) = 2, std sqrt(2); step 1: mean(3, 5) = 4, std sqrt(2);
    # smoothed: 2, then (4 + 0.5*2) / 1.5 = 3.3333333
    assert a == [(0, 2.0, pytest.approx(SQRT2), 2.0),
                 (1, 4.0, pytest.approx(SQRT2), pytest.approx(3.3333333))]
    chart.save(str(tmp_path / "runs.svg"))
    df = config_diff(runs)
    assert list(df.index) == ["lr", "model.seed"]
    assert df.loc["model.seed"].tolist() == ["a1", "a2", "b1", True]
    t = long_history(runs, x="_runtime")
    assert len(t) == 6 and (t["x"] >= 0).all()
