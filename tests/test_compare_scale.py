"""Comparisons at scale: any number of runs draws, long runs are read through their summaries,
group bands come from full-resolution data, zooming refines from the full data."""

from __future__ import annotations

import nbtracker


def many_runs(n: int, steps: int = 8, project: str = "many") -> list:
    """`n` finished runs; run i logs loss = i + 1/(s+1) at steps 0..steps-1 (last value i + 1/steps)."""
    for i in range(n):
        run = nbtracker.init(project=project, name=f"r{i:04d}", group="g" if i % 2 else "h")
        for s in range(steps):
            run.log({"loss": i + 1.0 / (s + 1)})
        run.finish(quiet=True)
    return list(nbtracker.Api().runs(project, order="+created_at"))


def test_a_thousand_runs_draw_the_top_fifty_with_a_note():
    runs = many_runs(1000)
    chart = nbtracker.compare(*runs, metrics=["loss"])
    spec = chart.to_dict()  # altair refused more than 5,000 rows here (MaxRowsError)
    text = str(spec)
    assert "showing 50 of 1,000 runs" in text
    assert "lowest" in text  # the direction taken is named
    shown = {row["run"] for ds in spec["datasets"].values() for row in ds if "run" in row}
    assert shown == {f"r{i:04d}" for i in range(50)}  # lowest last loss: the first fifty


# -- series summaries ------------------------------------------------------------------------

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nbtracker.charts.comparison import Comparison, curve_points, group_stats  # noqa: E402
from nbtracker.sdk.run import SUMMARY_MIN_ROWS  # noqa: E402
from nbtracker.store import summaries  # noqa: E402


def long_run(name: str, steps: int, project: str = "long", spike: tuple | None = None,
             group: str | None = None, **fn) -> None:
    """A run logging loss (and acc) at every step, `spike` = (step, value) put into loss."""
    run = nbtracker.init(project=project, name=name, group=group)
    x = np.arange(steps)
    loss = 1.0 / (1.0 + x / 1000.0) + 0.01 * np.sin(x / 7.0)
    if spike is not None:
        loss[spike[0]] = spike[1]
    acc = 1.0 - loss
    for s, a, b in zip(x.tolist(), loss.tolist(), acc.tolist()):
        run.log({"loss": a, "acc": b}, step=s)
    run.finish(quiet=True)


def test_the_summary_threshold_is_the_writers():
    assert SUMMARY_MIN_ROWS == summaries.BASE * summaries.MIN_BUCKETS


def test_summaries_are_built_at_finish_and_keep_every_extreme():
    long_run("spiky", 100_000, spike=(54_321, 7.5))
    [run] = nbtracker.Api().runs("long")
    path = run.storage_dir + "/" + summaries.SUMS_NAME
    s = summaries.read(run.storage_dir)
    assert s is not None and s.n("loss") == 100_000  # built when the run finished
    x = np.arange(100_000, dtype=float)
    y = run.history()["loss"].to_numpy()
    for level in range(len(s.keys["loss"]["levels"])):
        t = s.table("loss", level)
        size = s.keys["loss"]["levels"][level][0]
        want = summaries.buckets_of(x, y, size)
        exact = [i for i in range(len(summaries.FIELDS)) if i != summaries.SUM]
        assert np.array_equal(t[:, exact], want[:, exact])  # every bucket, against the points
        assert t[:, summaries.SUM] == pytest.approx(want[:, summaries.SUM], rel=1e-12)
    # the chart: about two points per column, the spike at its exact step
    comp = Comparison.build([run], metrics=["loss"], width=400)
    [curve] = comp.metric_panels[0].curves
    assert len(curve.x) <= 2 * 400 + 2
    assert 7.5 in curve.y.tolist() and curve.x[curve.y.tolist().index(7.5)] == 54_321
    assert curve.x[0] == 0 and curve.x[-1] == 99_999 and curve.y[-1] == y[-1]
    assert y.min() in curve.y and y.max() in curve.y
    assert path


def test_a_missing_stale_or_damaged_summary_is_rebuilt_from_the_log(tmp_path):
    long_run("r", 20_000, spike=(777, -3.0))
    [run] = nbtracker.Api().runs("long")
    path = tmp_path / "store" / "runs" / "long" / run.id / summaries.SUMS_NAME
    good = path.read_bytes()

    def drawn():
        comp = Comparison.build(list(nbtracker.Api().runs("long")), metrics=["loss"], width=100)
        c = comp.metric_panels[0].curves[0]
        return c.x.tolist(), c.y.tolist()

    want = drawn()
    assert -3.0 in want[1]
    path.unlink()  # missing
    assert drawn() == want and path.read_bytes() == good
    damaged = bytearray(good)
    body = 12 + int.from_bytes(good[4:8], "little")
    damaged[body + 100] ^= 0xFF  # in the first level of loss, the one drawn
    path.write_bytes(bytes(damaged))
    assert drawn() == want and path.read_bytes() == good
    path.write_bytes(good[:50])  # torn header
    assert drawn() == want and path.read_bytes() == good
    # the log grew (the run was resumed): the summary no longer matches it
    assert summaries.read(path.parent) is not None
    run2 = nbtracker.init(project="long", id=run.id, resume="must")
    run2.log({"loss": 42.0}, step=20_000)
    run2.finish(quiet=True)
    again = drawn()
    assert again[0][-1] == 20_000 and again[1][-1] == 42.0


def test_group_bands_come_from_every_point():
    """A spike in one run at one step shows in its group's band exactly (mean and std at that
    step over the group's runs), though the chart holds only ~2 points per column."""
    for i in range(3):
        long_run(f"g{i}", 30_000, group="G", spike=(12_345, 100.0) if i == 1 else None)
    runs = list(nbtracker.Api().runs("long", order="+created_at"))
    comp = Comparison.build(runs, metrics=["loss"], group_by="group", width=200)
    [band] = comp.metric_panels[0].bands
    assert len(band.x) <= 4 * 200 + 2
    at = band.x.tolist().index(12_345)
    others = [r.history()["loss"].to_numpy()[12_345] for r in runs]
    assert others[1] == 100.0
    assert band.mean[at] == pytest.approx(np.mean(others), rel=1e-12)
    assert band.std[at] == pytest.approx(np.std(others, ddof=1), rel=1e-12)
    assert band.count[at] == 3 and band.upper.max() == band.upper[at]
    spec = nbtracker.compare(*runs, metrics=["loss"], group_by="group").to_dict()
    [rows] = spec["datasets"].values()
    assert 12_345 in rows[0]["x"]


def test_group_stats_by_hand():
    x, mean, std, count = group_stats([(np.array([0.0, 1, 2]), np.array([1.0, 3, 5])),
                                       (np.array([0.0, 1]), np.array([3.0, 7]))], bins=10)
    assert x.tolist() == [0, 1, 2] and mean.tolist() == [2, 5, 5] and count.tolist() == [2, 2, 1]
    assert std.tolist() == pytest.approx([2 ** 0.5, 8 ** 0.5, 0])


def test_curve_points_are_two_per_column_and_the_ends():
    x = np.arange(1000, dtype=float)
    y = np.sin(x)
    y[500] = 9
    t = summaries.buckets_of(x, y, 1)
    xs, ys = curve_points(t, 0, 999, 10)
    assert len(xs) <= 22 and xs[0] == 0 and xs[-1] == 999 and 9 in ys
    assert (np.diff(xs) > 0).all()


# -- zoom, the widget and the static form ------------------------------------------------------

def test_a_zoom_draws_nothing_from_outside_its_range():
    """The summary buckets at a zoomed range's edges reach outside it: an extreme there must
    not be drawn, nor stretch the scale."""
    from nbtracker.notebook import compare_view

    long_run("edge", 100_000, project="edge", spike=(40_010, -50.0))
    [run] = nbtracker.Api().runs("edge")
    view = compare_view(run, metrics=["loss"], width=200)
    view._handle_custom_msg({"type": "zoom", "x0": 40_020, "x1": 95_000}, [])
    [rows] = view.spec["datasets"].values()
    xs = rows[0]["x"]
    assert min(xs) >= 40_020 and max(xs) <= 95_000
    assert min(rows[0]["value"]) > 0  # the spike at 40,010 is outside


def test_zooming_refines_from_the_full_data():
    """The view asks for a range; the new spec holds every point of it (the whole chart held a
    point every ~50 steps), and the reset goes back to the whole range."""
    from nbtracker.notebook import compare_view

    long_run("z", 50_000, spike=(30_017, 5.0))
    [run] = nbtracker.Api().runs("long")
    view = compare_view(run, metrics=["loss"], width=200)
    meta = view.spec["usermeta"]["nbtracker"]
    assert meta["range"] is None and meta["zoom"] == ["zoom0"] and meta["extent"] == [0, 49_999]
    [rows] = view.spec["datasets"].values()
    assert len(rows[0]["x"]) <= 2 * 200 + 2
    view._handle_custom_msg({"type": "zoom", "x0": 30_000, "x1": 30_100}, [])
    spec = view.spec
    assert spec["usermeta"]["nbtracker"]["range"] == [30_000.0, 30_100.0]
    assert spec["vconcat"][0]["layer"][0]["encoding"]["x"]["scale"]["domain"] == [30_000, 30_100]
    [rows] = spec["datasets"].values()
    y = run.history()["loss"].to_numpy()
    assert rows[0]["x"] == list(range(30_000, 30_101))  # every point: 101 < 2 per column
    assert rows[0]["value"] == y[30_000:30_101].tolist() and 5.0 in rows[0]["value"]
    view._handle_custom_msg({"type": "zoom", "x0": None, "x1": None}, [])
    assert view.spec["usermeta"]["nbtracker"]["range"] is None
    import altair as alt

    for smooth, group_by in ((0.0, None), (0.6, None), (0.6, "group")):  # valid vega-lite
        spec = compare_view(run, metrics=["loss", "acc"], smooth=smooth, group_by=group_by).spec
        alt.VConcatChart.from_dict(spec, validate=True).to_dict(validate=True)
    # the altair value has no zoom selection: nothing would answer it
    spec = nbtracker.compare(run, metrics=["loss"]).to_dict()
    assert "params" not in spec["vconcat"][0]["layer"][0]
    assert spec["usermeta"]["nbtracker"]["zoom"] == []


def test_compare_view_and_magic_show_the_same_note():
    from nbtracker.notebook import compare_view

    runs = many_runs(60, steps=3, project="sixty")
    spec = compare_view(*runs).spec
    assert spec["vconcat"][0]["title"]["subtitle"].startswith("showing 50 of 60 runs: the lowest")
    assert spec["usermeta"]["nbtracker"]["note"].startswith("showing 50 of 60 runs")
    # grouped: every run counts, in one band per group
    spec = compare_view(*runs, group_by="group").spec
    [rows] = spec["datasets"].values()
    assert sorted(r["group"] for r in rows) == ["g", "h"] and set(rows[0]["count"]) == {30}


def test_the_direction_follows_the_metric_definition():
    for i in range(6):
        run = nbtracker.init(project="dir", name=f"d{i}")
        run.define_metric("score", summary="max")
        run.log({"score": float(i), "loss": float(i)})
        run.finish(quiet=True)
    runs = list(nbtracker.Api().runs("dir", order="+created_at"))
    comp = Comparison.build(runs, limit=2)
    by = {p.metric: p for p in comp.metric_panels}
    assert [c.label for c in by["score"].curves] == ["d4", "d5"]
    assert "highest last score (its summary is max)" in by["score"].note
    assert [c.label for c in by["loss"].curves] == ["d0", "d1"]
    assert "lowest last loss" in by["loss"].note


def test_a_guessed_direction_reads_whole_words():
    from nbtracker.charts.comparison import direction

    for metric in ("answer_accuracy", "eval/power", "cancer_auc", "tower_success_rate",
                   "reward_distance_bonus", "acc"):
        assert direction([], metric)[0] is False, metric  # higher is better
    for metric in ("val/loss", "train_loss", "error-rate", "top1_err", "valLoss", "eval/wer"):
        assert direction([], metric)[0] is True, metric


def test_comparison_panels_hold_the_charts_data():
    svg = pytest.importorskip("nbtracker.charts.svg")
    from nbtracker.notebook import comparison_panels

    runs = many_runs(60, steps=3, project="panels")
    panels, note = comparison_panels(*runs, metrics=["loss"])
    assert note.startswith("showing 50 of 60 runs") and len(panels) == 1
    [panel] = panels
    assert isinstance(panel, svg.Panel) and panel.title == "loss" and len(panel.series) == 50
    assert panel.series[0].label == "r0000" and panel.series[0].y.tolist() == [1.0, 0.5, 1 / 3]
    panels, _ = comparison_panels(*runs, metrics=["loss"], group_by="group")
    assert sorted(b.label for b in panels[0].bands) == ["g", "h"]


def test_a_sparse_metric_of_a_long_run_is_read_from_its_summary(monkeypatch):
    run = nbtracker.init(project="sparse", name="s")
    for s in range(10_000):
        run.log({"loss": 1.0 / (s + 1)}, step=s)
        if s % 1000 == 999:
            run.log({"val": s / 10_000}, step=s)
    run.finish(quiet=True)
    [r] = nbtracker.Api().runs("sparse")

    def no_log_reads(*a, **k):
        raise AssertionError("read the log")

    monkeypatch.setattr(summaries, "series_of", no_log_reads)
    comp = Comparison.build([r], metrics=["val", "loss"], width=50)
    val, loss = comp.metric_panels
    assert val.curves[0].x.tolist() == list(range(999, 10_000, 1000))
    assert val.curves[0].y.tolist() == [s / 10_000 for s in range(999, 10_000, 1000)]
    assert loss.curves[0].y.max() == 1.0 and loss.curves[0].x[-1] == 9_999


def test_the_magic_compares_many_runs_in_a_zoomable_view(monkeypatch):
    from IPython.testing.globalipapp import get_ipython

    from nbtracker.notebook import ChartView, magics

    runs = many_runs(60, steps=3, project="magic")
    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    ip.run_line_magic("tracker", " ".join(f"compare magic/{r.id}" if i == 0 else f"magic/{r.id}"
                                          for i, r in enumerate(runs)))
    view = shown[0]
    assert isinstance(view, ChartView)
    assert view.spec["usermeta"]["nbtracker"]["zoom"] == ["zoom0"]
    assert view.spec["vconcat"][0]["title"]["subtitle"].startswith("showing 50 of 60 runs")


def test_a_metric_with_a_none_cell_still_draws():
    runs = []
    for name in ("a", "b"):
        run = nbtracker.init(project="none-cell", name=name)
        for i in range(100):
            run.log({"tokens": None if i == 50 else float(i)})
        run.finish(quiet=True)
        runs.append(run)
    from nbtracker.notebook import comparison_panels

    runs = list(nbtracker.Api().runs("none-cell", order="+created_at"))
    [panel], _ = comparison_panels(*runs, metrics=["tokens"])
    for series in panel.series:
        assert len(series.x) == 99 and 50 not in series.x.tolist()


def test_group_bands_of_runs_logging_at_different_steps():
    """One run logs every step, the other every 10th: the band counts both runs at every step
    they both span, reading the sparse one off its line, and does not saw-tooth."""
    x1 = np.arange(0, 101, dtype=float)
    x2 = np.arange(0, 101, 10, dtype=float)
    x, mean, std, count = group_stats([(x1, np.ones_like(x1)), (x2, np.full_like(x2, 3.0))],
                                      bins=100)
    assert x.tolist() == x1.tolist()
    assert set(count.tolist()) == {2} and set(mean.tolist()) == {2.0}
    assert std == pytest.approx(np.full(len(x), 2 ** 0.5))
