"""nbtracker.plot (wandb.plot's functions): the values of the curves and the confusion matrix,
the tables the table charts keep, logging and reading back through the Api, split_table, one
clear error for bad input, what the live panel is sent, and the static form's SVG.
The panel in a browser: tests/browser/test_plot.py."""

from __future__ import annotations

import base64
import json
import re
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import run_python

import nbtracker
from nbtracker import plot
from nbtracker.notebook import extras, live

SVGNS = "{http://www.w3.org/2000/svg}"


def rows_of(chart, cls) -> list[tuple]:
    return [tuple(r[1:]) for r in chart.table.data if r[0] == cls]


# -- values ----------------------------------------------------------------------------------------

# sklearn's documented example: y_true = [0, 0, 1, 1], scores of class 1 = [0.1, 0.4, 0.35, 0.8]
Y = [0, 0, 1, 1]
P = [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]]


def test_roc_curve_by_hand():
    chart = plot.roc_curve(Y, P)
    assert chart.table.columns == ["class", "fpr", "tpr"]
    # class 1, descending scores 0.8 (+), 0.4 (-), 0.35 (+), 0.1 (-); none collinear
    assert rows_of(chart, 1) == [(0, 0), (0, 0.5), (0.5, 0.5), (0.5, 1), (1, 1)]
    # class 0 (scores 0.9 +, 0.65 -, 0.6 +, 0.2 -): the same shape
    assert rows_of(chart, 0) == rows_of(chart, 1)
    spec = chart.spec
    assert spec.spec_name == "wandb/area-under-curve/v0" and spec.kind == "roc_curve"
    assert spec.fields == {"x": "fpr", "y": "tpr", "class": "class"}
    assert spec.string_fields == {"title": "ROC Curve", "x-axis-title": "False positive rate",
                                  "y-axis-title": "True positive rate"}


def test_roc_curve_drops_collinear_points_and_keeps_ties_together():
    # scores 0.9 0.8 0.7 all positive: one straight segment up, then one across
    chart = plot.roc_curve([1, 1, 1, 0, 0], [[0, .9], [0, .8], [0, .7], [0, .2], [0, .2]],
                           classes_to_plot=[1])
    assert rows_of(chart, 1) == [(0, 0), (0, 1 / 3), (0, 1), (1, 1)]


def test_pr_curve_by_hand():
    chart = plot.pr_curve(Y, P, classes_to_plot=[1], interp_size=3)
    # sklearn: precision [.5, 2/3, .5, 1, 1], recall [1, 1, .5, .5, 0]; the best precision at
    # recall >= r, read at r = 1, 0.5, 0
    assert chart.table.columns == ["class", "precision", "recall"]
    assert rows_of(chart, 1) == [(pytest.approx(2 / 3), 1.0), (1.0, 0.5), (1.0, 0.0)]
    assert chart.spec.fields == {"x": "recall", "y": "precision", "class": "class"}
    assert chart.spec.string_fields["title"] == "Precision-Recall Curve"
    assert len(plot.pr_curve(Y, P).table.data) == 2 * 21  # interp_size default, every class


def test_curves_name_classes_by_labels_and_pick_the_class_column():
    chart = plot.roc_curve(Y, P, labels=["neg", "pos"])
    assert {r[0] for r in chart.table.data} == {"neg", "pos"}
    # class 1 absent from y_true: class 2 reads column 2 (wandb: the 2nd class, column 1)
    probas = [[0.8, 0.15, 0.05], [0.5, 0.1, 0.4], [0.3, 0.5, 0.2], [0.1, 0.1, 0.8]]
    three = plot.roc_curve([0, 0, 2, 2], probas, labels=["a", "b", "c"])
    assert {r[0] for r in three.table.data} == {"a", "c"}
    assert rows_of(three, "c") == rows_of(chart, "pos")  # column 2 is the example's scores
    # ties (0.3 twice, one positive and one negative) are one threshold
    tied = plot.roc_curve(Y, [[0, 0.05], [0, 0.3], [0, 0.3], [0, 0.7]], classes_to_plot=[1])
    assert rows_of(tied, 1) == [(0, 0), (0, 0.5), (0.5, 1), (1, 1)]
    # string labels: the i-th sorted class reads column i
    s = plot.pr_curve(["x", "x", "y", "y"], P, interp_size=2)
    assert rows_of(s, "y") == [(pytest.approx(2 / 3), 1.0), (1.0, 0.0)]


def test_curves_read_each_class_column_when_a_class_is_missing_from_y_true(capsys):
    # a model of classes 1, 2, 3 (columns 0, 1, 2) evaluated on a batch without class 3
    y = [1, 1, 2, 2, 1, 2]
    probas = np.array([[.7, .2, .1], [.6, .3, .1], [.2, .7, .1], [.1, .6, .3], [.5, .1, .4],
                       [.3, .4, .3]])
    right = plot.roc_curve(y, probas[:, :2])  # every column's class present: no doubt
    assert capsys.readouterr().err == ""
    assert (0, 1) in rows_of(right, 1) and (0, 1) in rows_of(right, 2)  # each column separates
    for make in (plot.roc_curve, plot.pr_curve):
        assert make(y, probas).table.data == make(y, probas[:, :2]).table.data
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "y_true holds 2 classes for the 3 columns" in err
        assert "(1 -> 0, 2 -> 1)" in err and "labels=" in err
    # labels naming every column's class: certain, no warning
    assert plot.roc_curve(y, probas, labels=np.array([1, 2, 3])).table.data == right.table.data
    assert plot.roc_curve(["b", "c"] * 3, probas, labels=["a", "b", "c"]).table.data[0][0] == "b"
    assert capsys.readouterr().err == ""
    # integer classes from 0: column = class (sklearn's columns of 0 … n-1), no warning
    zero = plot.roc_curve([c - 1 for c in y], probas)
    assert rows_of(zero, 0) == rows_of(right, 1) and rows_of(zero, 1) == rows_of(right, 2)
    assert capsys.readouterr().err == ""


def test_confusion_matrix_by_hand():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2]
    preds = [0, 0, 1, 1, 2, 2, 2, 2, 0]
    chart = plot.confusion_matrix(y_true=y_true, preds=preds, class_names=["cat", "dog", "owl"])
    assert chart.table.columns == ["Actual", "Predicted", "nPredictions"]
    assert [r[2] for r in chart.table.data] == [2, 1, 0, 0, 1, 1, 1, 0, 3]
    assert chart.table.data[1][:2] == ["cat", "dog"]
    assert chart.spec.spec_name == "wandb/confusion_matrix/v1"
    assert chart.spec.string_fields == {"title": "Confusion Matrix Curve"}
    # from probabilities (the most probable class), names as labels, no class_names
    probs = np.eye(3)[preds] * 0.8 + 0.1
    assert plot.confusion_matrix(probs, y_true).table.data == [
        [f"Class_{i + 1}", f"Class_{j + 1}", n] for (i, j), n in
        zip([(i, j) for i in range(3) for j in range(3)], [2, 1, 0, 0, 1, 1, 1, 0, 3])]
    named = plot.confusion_matrix(y_true=["cat", "owl"], preds=["owl", "owl"],
                                  class_names=["cat", "dog", "owl"])
    assert [r[2] for r in named.table.data] == [0, 0, 1, 0, 0, 0, 0, 0, 1]
    # without class_names the classes are the labels seen, sorted
    seen = plot.confusion_matrix(y_true=[5, 3], preds=[3, 3])
    assert seen.table.data == [["Class_1", "Class_1", 1], ["Class_1", "Class_2", 0],
                               ["Class_2", "Class_1", 1], ["Class_2", "Class_2", 0]]


def test_confusion_matrix_takes_numpy_numbers_and_bools_as_class_indices():
    # wandb's own docstring example: preds a list of numpy ints, y_true a numpy array
    names = ["Lion", "Tiger", "Elephant", "Zebra"]
    rng = np.random.default_rng(3)
    y_true = rng.choice([0, 1, 2, 3], size=200, p=[0.2, 0.3, 0.25, 0.25])
    preds = [y if rng.random() < 0.85 else rng.choice([x for x in range(4) if x != y])
             for y in y_true]
    cm = plot.confusion_matrix(preds=preds, y_true=y_true, class_names=names)
    assert sum(r[2] for r in cm.table.data) == 200
    assert cm.table.data[0][2] == sum(1 for t, p in zip(y_true, preds) if t == p == 0)
    as_floats = plot.confusion_matrix(preds=np.asarray(preds, dtype=np.float32).tolist(),
                                      y_true=[np.float64(v) for v in y_true], class_names=names)
    assert as_floats.table.data == cm.table.data
    b = plot.confusion_matrix(preds=[True, False, np.True_], y_true=[True, True, np.False_],
                              class_names=["neg", "pos"])
    assert b.table.data == [["neg", "neg", 0], ["neg", "pos", 1], ["pos", "neg", 1],
                            ["pos", "pos", 1]]
    with pytest.raises(plot.PlotError, match="label 1.5 in preds"):
        plot.confusion_matrix(preds=[np.float64(1.5)], y_true=[0], class_names=names)


def test_against_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    for n, k in ((60, 2), (300, 4)):
        y = rng.integers(0, k, n)
        p = np.round(rng.dirichlet(np.ones(k), n), 2)  # ties
        roc = plot.roc_curve(y, p)
        pr = plot.pr_curve(y, p, interp_size=11)
        grid = np.linspace(0, 1, 11)[::-1]
        for c in range(k):
            fpr, tpr, _ = metrics.roc_curve(y, p[:, c], pos_label=c)
            assert rows_of(roc, c) == list(zip(fpr.tolist(), tpr.tolist()))
            prec, rec, _ = metrics.precision_recall_curve(y, p[:, c], pos_label=c)
            prec = np.maximum.accumulate(prec)[::-1]
            want = prec[np.searchsorted(rec[::-1], grid, side="left")]
            assert rows_of(pr, c) == list(zip(want.tolist(), grid.tolist()))
        preds = rng.integers(0, k, n)
        cm = metrics.confusion_matrix(y, preds, labels=list(range(k)))
        got = plot.confusion_matrix(y_true=y, preds=preds, class_names=[str(i) for i in range(k)])
        assert [r[2] for r in got.table.data] == cm.ravel().tolist()


def test_line_series_table_shape(capsys):
    xs = np.arange(5)
    chart = plot.line_series(xs, [xs * 2, xs ** 2], keys=["double", "square"], title="t",
                             xname="epoch")
    assert chart.table.columns == ["step", "lineKey", "lineVal"]
    assert len(chart.table.data) == 10
    assert chart.table.data[:2] == [[0, "double", 0], [1, "double", 2]]
    assert chart.table.data[5:7] == [[0, "square", 0], [1, "square", 1]]
    assert chart.spec.spec_name == "wandb/lineseries/v0"
    assert chart.spec.fields == {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"}
    assert chart.spec.string_fields == {"title": "t", "xname": "epoch"}
    # one x sequence per line, default keys line_0, line_1; a short line is cut, with a warning
    per = plot.line_series([[0, 1, 2], [10, 20]], [[1, 2, 3], [4, 5, 6]])
    assert per.table.data == [[0, "line_0", 1], [1, "line_0", 2], [2, "line_0", 3],
                              [10, "line_1", 4], [20, "line_1", 5]]
    assert "'line_1' has 2 x values and 3 y values" in capsys.readouterr().err
    assert plot.line_series([1, 2], [[3, 4]]).spec.string_fields == {"title": "", "xname": "x"}


def test_table_charts_keep_the_table_and_name_its_columns():
    t = nbtracker.Table(columns=["x", "y", "s"], data=[[1, 2, "a"], [2, 3, "b"]])
    assert plot.line(t, "x", "y", stroke="s", title="T").spec.fields == {"x": "x", "y": "y",
                                                                          "stroke": "s"}
    assert plot.scatter(t, "x", "y").spec.spec_name == "wandb/scatter/v0"
    b = plot.bar(t, "s", "y", title="bars")
    assert (b.spec.spec_name, b.spec.fields, b.spec.string_fields) == (
        "wandb/bar/v0", {"label": "s", "value": "y"}, {"title": "bars"})
    assert plot.histogram(t, "y").spec.fields == {"value": "y"}
    assert plot.line(t, "x", "y").table is t
    import pandas as pd

    df = pd.DataFrame({"a": [1, 2], "b": [3.5, 4.5]})
    assert plot.scatter(df, "a", "b").table.data == [[1, 3.5], [2, 4.5]]
    custom = plot.plot_table("team/fancy/v2", t, {"anything": "nope"}, {"title": "x"})
    assert custom.spec.spec_name == "team/fancy/v2" and custom.spec.as_ref()["kind"] == "custom"


@pytest.mark.parametrize("make, message", [
    (lambda: plot.line([[1, 2]], "x", "y"), "expected an nbtracker.Table"),
    (lambda: plot.line(nbtracker.Table(columns=["x", "y"]), "x", "loss"),
     "column 'loss' (field 'y') is not in the table"),
    (lambda: plot.plot_table("wandb/bar/v0", nbtracker.Table(columns=["a"]), {"label": "a"}),
     "needs the field 'value'"),
    (lambda: plot.plot_table("wandb/line/v0", nbtracker.Table(columns=["a"]), ["a"]),
     "fields must be a dict"),
    (lambda: plot.roc_curve(None, P), "y_true and y_probas are required"),
    (lambda: plot.roc_curve(Y, [0.1, 0.2, 0.3, 0.4]), "y_probas must be 2-d"),
    (lambda: plot.roc_curve(Y[:3], P), "y_true has 3 labels and y_probas 4 rows"),
    (lambda: plot.pr_curve(Y, [[0.5, np.nan]] * 4), "NaN"),
    (lambda: plot.pr_curve(Y, P, interp_size=1), "interp_size"),
    (lambda: plot.roc_curve([0, 1, 2, 2], P, labels=["a", "b"]), "class 2 has no column"),
    (lambda: plot.roc_curve(Y, P, labels=["a"]), "labels has 1 names; class 1 has none"),
    (lambda: plot.confusion_matrix(P, Y, preds=Y), "Only one of `probs` or `preds`"),
    (lambda: plot.confusion_matrix(y_true=Y), "give the predictions"),
    (lambda: plot.confusion_matrix(y_true=Y, preds=Y[:2]), "must be equal"),
    (lambda: plot.confusion_matrix(y_true=[0, 3], preds=[0, 1], class_names=["a", "b"]),
     "label 3 in y_true is neither a class index (0 to 1) nor one of class_names"),
    (lambda: plot.confusion_matrix(y_true=[0, "a"], preds=[0, 0]), "cannot be ordered"),
    (lambda: plot.line_series([], [[1]]), "xs is empty"),
    (lambda: plot.line_series([1, 2], [[1, 2]], keys=["a", "b"]), "Number of keys (2)"),
    (lambda: plot.line_series([[1], [2]], [[1]]), "Number of x-series (2)"),
])
def test_bad_input_is_one_clear_error(make, message):
    with pytest.raises(plot.PlotError) as e:
        make()
    assert message in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, nbtracker.Error)


# -- logging and reading back ------------------------------------------------------------------------

def test_logged_chart_reads_back_as_table_and_spec():
    run = nbtracker.init(project="plots")
    t = nbtracker.Table(columns=["step", "loss"], data=[[i, 1 / (i + 1)] for i in range(5)])
    run.log({"charts": {"loss": plot.line(t, "step", "loss", title="loss <b>")}, "acc": 0.5})
    run.log({"roc": plot.roc_curve(Y, P, labels=["neg", "pos"])})
    run.finish()
    api_run = nbtracker.Api().run(run.path)
    item, = api_run.media("charts/loss")
    assert item.kind == "chart" and item.step == 0
    assert item.spec == {"preset": "wandb/line/v0", "kind": "line",
                         "fields": {"x": "step", "y": "loss", "stroke": None},
                         "string_fields": {"title": "loss <b>"}, "split_table": False}
    assert item.table.values.tolist() == t.data and list(item.table.columns) == ["step", "loss"]
    roc = api_run.media("roc")[-1]
    assert roc.spec["kind"] == "roc_curve"
    assert roc.table.values.tolist() == plot.roc_curve(Y, P, labels=["neg", "pos"]).table.data
    # the history holds the reference: a table-file with the chart's spec
    ref = api_run.history().set_index("_step")["roc"][1]
    assert ref["_type"] == "table-file" and ref["nrows"] == 10 and ref["chart"] == roc.spec
    assert "roc_table" not in api_run.history().columns
    assert api_run.summary["acc"] == 0.5


def test_nan_and_infinities_in_tables_read_back_as_themselves():
    import math

    run = nbtracker.init(project="plots")
    single = plot.roc_curve([0, 0, 0], [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])  # no negative: NaN
    nan, inf = float("nan"), float("inf")
    rows = [[nan, "a", [1.0, nan]], [inf, "c", {"x": -inf}], [1.5, "b", None]]
    small = nbtracker.Table(columns=["f", "s", "nested"], data=rows)
    big = nbtracker.Table(columns=["f", "mixed"], data=[[nan, inf], [-inf, "x"]] * 600)  # Parquet
    run.log({"roc": single, "small": small, "big": big})
    run.finish()
    api_run = nbtracker.Api().run(run.path)
    fpr = api_run.media("roc")[-1].table["fpr"].tolist()
    assert len(fpr) == len(single.table.data) and all(math.isnan(f) for f in fpr)
    got = api_run.media("small")[-1].load().values.tolist()
    assert math.isnan(got[0][0]) and math.isnan(got[0][2][1]) and got[0][2][0] == 1.0
    assert got[1] == [inf, "c", {"x": -inf}]
    assert got[2] == [1.5, "b", None]
    b = api_run.media("big")[-1]
    assert b.ref["format"] == "parquet"
    first = b.load().values.tolist()[:2]
    assert math.isnan(first[0][0]) and first[0][1] == inf and first[1] == [-inf, "x"]


def test_split_table_logs_the_table_on_its_own_too():
    run = nbtracker.init(project="plots")
    cm = plot.confusion_matrix(y_true=[0, 1, 1], preds=[0, 1, 0], split_table=True)
    run.log({"eval/cm": cm})
    run.finish()
    assert cm.spec.key == "eval/cm" and cm.spec.table_key == "Custom Chart Tables/eval/cm_table"
    api_run = nbtracker.Api().run(run.path)
    chart, = api_run.media("eval/cm")
    table, = api_run.media("Custom Chart Tables/eval/cm_table")
    assert chart.spec["split_table"] is True and table.kind == "table" and table.spec is None
    assert table.ref["path"] == chart.ref["path"]  # one file
    assert table.load().values.tolist() == chart.table.values.tolist() == cm.table.data


def test_a_chart_whose_table_cannot_be_written_is_one_warning(capsys):
    run = nbtracker.init(project="plots")
    t = nbtracker.Table(columns=["x", "y"], data=[[1, 2]])
    t._fail("broken on purpose")
    run.log({"bad": plot.line(t, "x", "y"), "loss": 1.0})
    run.finish()
    assert "bad" in capsys.readouterr().err
    assert nbtracker.Api().run(run.path).history()["loss"].tolist() == [1.0]


def test_import_nbtracker_does_not_load_plot():
    out = run_python("""
        import sys, nbtracker
        assert "nbtracker.plot" not in sys.modules and "numpy" not in sys.modules
        assert "plot" in nbtracker.__all__
        assert nbtracker.plot.roc_curve is sys.modules["nbtracker.plot"].roc_curve
        import nbtracker.plot as p
        assert p is nbtracker.plot
        print("ok")
    """)
    assert out.stdout.strip() == "ok"


# -- the live panel ------------------------------------------------------------------------------------

def test_panel_gets_a_charts_rows_evenly_spread_beyond_its_limit(monkeypatch):
    monkeypatch.setattr(extras, "CHART_ROWS", 100)
    run = nbtracker.init(project="plots")
    panel = live.LivePanel()
    sent: list = []
    panel.send = lambda content, buffers=None: sent.append((content, buffers))
    live.LiveFeed(run, panel)
    xs = list(range(250))
    run.log({"long": plot.line_series(xs, [xs], keys=["a"]),
             "plain": nbtracker.Table(columns=["x"], data=[[x] for x in xs])})
    deadline = time.monotonic() + 10
    bodies: dict = {}
    while time.monotonic() < deadline and len(bodies) < 2:
        time.sleep(0.1)
        for m, b in sent:
            if m["type"] == "file" and b:
                bodies[m["path"]] = json.loads(b[0])
    media = {m: e for msg, _ in sent if msg["type"] == "media" for m, e in msg["keys"].items()}
    ref = media["long"]["entries"][0]["ref"]
    assert ref["chart"]["preset"] == "wandb/lineseries/v0"
    chart_body = bodies[ref["path"]]
    assert chart_body["nrows"] == 250 and chart_body["sampled"] is True
    steps = [r[0] for r in chart_body["data"]]
    assert len(steps) == 100 and steps[0] == 0 and steps[-1] == 249 and steps == sorted(steps)
    plain = bodies[media["plain"]["entries"][0]["ref"]["path"]]
    assert len(plain["data"]) == 250 and "sampled" not in plain  # a table: its first rows
    run.finish()


# -- the static form --------------------------------------------------------------------------------

def static_svgs(run) -> dict[str, list[ET.Element]]:
    """key -> the SVG images (parsed) in the media block of the finished run's static form."""
    html = live.LiveFeed(run, live.StaticSink()).static_bundle()["text/html"]
    out = {}
    for m in re.finditer(r'<div class="nbt-media nbt-kind-([^"]*)" data-key="([^"]*)"(.*?)'
                         r'(?=<div class="nbt-media |<details class="nbt-info|$)', html, flags=re.S):
        imgs = re.findall(r'src="data:image/svg\+xml;base64,([^"]*)"', m.group(3))
        out[m.group(2)] = ([ET.fromstring(base64.b64decode(s)) for s in imgs], m.group(1), m.group(3))
    return out


def curves_of(svg: ET.Element) -> list[ET.Element]:
    """The curves of a chart (paths that are lines, named by their <title>)."""
    return [p for p in svg.iter(f"{SVGNS}path")
            if p.get("fill") == "none" and p.find(f"{SVGNS}title") is not None]


def test_static_form_draws_each_chart_as_svg():
    run = nbtracker.init(project="plots")
    t = nbtracker.Table(columns=["x", "y", "split"],
                        data=[[i, i * i, s] for s in ("a", "<b>") for i in range(6)])
    bars = nbtracker.Table(columns=["class", "acc"], data=[["cat", 0.9], ["<i>dog</i>", 0.3]])
    run.log({"line": plot.line(t, "x", "y", stroke="split", title="<script>x</script>"),
             "scatter": plot.scatter(t, "x", "y"),
             "bars": plot.bar(bars, "class", "acc"),
             "hist": plot.histogram(nbtracker.Table(columns=["v"], data=[[v] for v in range(100)]), "v"),
             "cm": plot.confusion_matrix(y_true=[0, 0, 1, 2], preds=[0, 1, 1, 2],
                                         class_names=["a", "b", "c"]),
             "roc": plot.roc_curve(Y, P),
             "custom": plot.plot_table("team/fancy/v2", bars, {"v": "acc"})})
    run.finish()
    blocks = static_svgs(run)
    (line,), kind, html = blocks["line"]
    assert "nbt-kind-chart" in kind and "data · 12 rows" in html  # the table folded under it
    paths = curves_of(line)
    assert sorted(p.find(f"{SVGNS}title").text for p in paths) == ["<b>", "a"]
    assert all(len(re.findall(r"[ML]", p.get("d"))) == 6 for p in paths)  # every point
    assert any(t.text == "<script>x</script>" for t in line.iter(f"{SVGNS}text"))  # as text
    (scatter,), _, _ = blocks["scatter"]
    dots = [p for p in scatter.iter(f"{SVGNS}path") if p.get("stroke-linecap") == "round"]
    assert len(dots) == 1 and dots[0].get("d").count("h0") == 12
    (bar,), _, _ = blocks["bars"]
    rects = [r for r in bar.iter(f"{SVGNS}rect") if r.get("class") == "bar"]
    assert len(rects) == 2 and float(rects[0].get("width")) > 2.5 * float(rects[1].get("width"))
    assert rects[1].find(f"{SVGNS}title").text == "<i>dog</i>: 0.3"
    (hist,), _, _ = blocks["hist"]
    assert hist.find(f"{SVGNS}path[@fill='#4c78a8']").get("d").count("z") >= 5
    (cm,), _, _ = blocks["cm"]
    cells = [r for r in cm.iter(f"{SVGNS}rect") if r.get("class") == "cell"]
    assert len(cells) == 9
    assert [t.text for t in cm.iter(f"{SVGNS}text") if t.get("class") == "count"] == [
        "1", "1", "0", "0", "1", "0", "0", "0", "1"]
    (roc,), _, _ = blocks["roc"]
    texts = {t.text for t in roc.iter(f"{SVGNS}text")}
    assert {"ROC Curve", "False positive rate", "True positive rate"} <= texts
    curves = curves_of(roc)
    assert len(curves) == 2 and all(len(re.findall(r"[ML]", p.get("d"))) == 5 for p in curves)
    imgs, _, html = blocks["custom"]
    assert imgs == [] and "team/fancy/v2" in html and "is not drawn here" in html
    assert "&lt;i&gt;dog&lt;/i&gt;" in html and "<i>dog" not in html  # the table instead, escaped


def test_static_histogram_of_extreme_values_is_drawn_with_its_table():
    run = nbtracker.init(project="plots")
    one = nbtracker.Table(columns=["v"], data=[[-1e308], [1e308], [0.0], [float("inf")]])
    run.log({"huge": plot.histogram(one, "v"),
             "same": plot.histogram(nbtracker.Table(columns=["v"], data=[[1e308]] * 3), "v")})
    run.finish()
    blocks = static_svgs(run)
    (huge,), _, html = blocks["huge"]
    bars = huge.find(f"{SVGNS}path[@fill='#4c78a8']").get("d")
    assert "nan" not in bars.lower() and "inf" not in bars.lower() and bars.count("z") >= 3
    assert "data · 4 rows" in html and "1.000e+308" in html  # the table folded under it
    assert "1 values that are not finite numbers left out" in html
    (same,), _, html = blocks["same"]
    assert same.find(f"{SVGNS}path[@fill='#4c78a8']").get("d").count("z") == 1
    assert "data · 3 rows" in html
