"""Charts logged as data, under wandb.plot's names: `line`, `scatter`, `bar`, `histogram`,
`line_series`, `confusion_matrix`, `pr_curve`, `roc_curve`, `plot_table` (also
`nbtracker.plot_table`, as wandb exports it) and its older form `visualize`.

Each returns a `CustomChart`: the data as an `nbtracker.Table` (`.table`) and a
`CustomChartSpec` (`.spec`) naming the chart's preset (wandb's names, e.g. "wandb/line/v0"),
the table columns it draws (`fields`) and its texts (`string_fields`: title, axis titles).

>>> run.log({"roc": nbtracker.plot.roc_curve(y_true, y_probas, labels=["cat", "dog"])})

`log()` stores the table like any Table and keeps the spec in the history reference, under the
key given:

    {"_type": "table-file", "path": "media/tables/….table.json", "sha256": …, "nrows": …, …,
     "chart": {"preset": "wandb/area-under-curve/v0", "kind": "roc_curve",
               "fields": {"x": "fpr", "y": "tpr", "class": "class"},
               "string_fields": {"title": "ROC Curve", "x-axis-title": …, "y-axis-title": …},
               "split_table": false}}

so anything that reads tables reads it, and what knows charts draws it: the live panel (with the
bundled vega-lite) and a finished run's static form (an SVG image, `charts/custom.py`). With
`split_table=True` the table is also logged on its own under "Custom Chart Tables/<key>_table",
where wandb puts it (the same file). Read back: `Api().run(path).media("roc")[-1]` has `.spec`
and `.table` (a DataFrame).

Curves and the confusion matrix are computed as wandb computes them (with scikit-learn), here
with numpy alone. Where we differ on purpose: values are kept at full precision and every point
is kept (wandb rounds pr/roc tables to 3 decimals and resamples them beyond 10,000 rows); when
a class is missing from y_true, `labels` naming every column (e.g. `labels=model.classes_`) says
which column is whose, and integer classes from 0 read column = class (wandb takes the i-th column
for the i-th class present in y_true, the wrong column when a class before it is missing; where
nothing says otherwise we do too, with a warning naming what was assumed); counts are integers.
Bad input raises `PlotError` (a ValueError) with one line saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .charts.presets import PRESETS, preset_kind
from .errors import Error
from .sdk.media.base import Media, to_numpy
from .sdk.media.table import Table

__all__ = ["line", "scatter", "bar", "histogram", "line_series", "confusion_matrix",
           "pr_curve", "roc_curve", "plot_table", "visualize", "CustomChart", "CustomChartSpec",
           "PlotError", "PRESETS"]

SPLIT_SECTION = "Custom Chart Tables"


class PlotError(Error, ValueError):
    """Input a chart cannot be made of; the message says what is wrong."""


@dataclass
class CustomChartSpec:
    """Which chart draws a table: a preset, the columns of its fields, its texts."""

    spec_name: str
    fields: dict[str, Any]
    string_fields: dict[str, Any]
    key: str = ""
    panel_type: str = "Vega2"
    split_table: bool = False
    kind: str = ""

    @property
    def table_key(self) -> str:
        """Where wandb logs the chart's table (set when the chart is logged)."""
        if not self.key:
            raise Error("the chart's key is set when it is logged")
        return f"{SPLIT_SECTION}/{self.key}_table" if self.split_table else f"{self.key}_table"

    def as_ref(self) -> dict:
        """The spec as the history reference holds it (JSON values)."""
        from .sdk.media.base import plain

        return {"preset": self.spec_name, "kind": self.kind or preset_kind(self.spec_name),
                "fields": plain(dict(self.fields)), "string_fields": plain(dict(self.string_fields)),
                "split_table": bool(self.split_table)}


class CustomChart(Media):
    """A table and the spec of the chart that draws it; `run.log({key: chart})` stores both."""

    def __init__(self, table: Table, spec: CustomChartSpec):
        self.table = table
        self.spec = spec

    def set_key(self, key: str) -> None:
        self.spec.key = key

    def _as(self, kind: str) -> CustomChart:
        self.spec.kind = kind
        return self

    def _bind(self, media_dir: Path) -> dict:
        ref = self.table.bind(media_dir)
        for n in self.table._notes or ():
            self._note(n)
        return {**ref, "chart": self.spec.as_ref()}

    def _companions(self, key: str, ref: dict) -> dict[str, dict]:
        """Values logged beside the chart (sdk.values.Normaliser): with split_table, the table
        under wandb's "Custom Chart Tables/<key>_table"."""
        self.set_key(key)
        if not self.spec.split_table:
            return {}
        return {self.spec.table_key: {k: v for k, v in ref.items() if k != "chart"}}

    def __repr__(self) -> str:
        return (f"<nbtracker.plot.CustomChart {self.spec.spec_name} {len(self.table.data)} rows"
                f"{' (cannot be logged: ' + self._problem + ')' if self._problem else ''}>")


# -- the table charts ----------------------------------------------------------------------------

def _table(fn: str, table: Any) -> Table:
    if isinstance(table, Table):
        return table
    if hasattr(table, "columns") and hasattr(table, "iloc"):  # a pandas DataFrame
        return Table(dataframe=table)
    raise PlotError(f"plot.{fn}: expected an nbtracker.Table (or a pandas DataFrame), not "
                    f"{type(table).__name__}")


def plot_table(vega_spec_name: str, data_table: Table, fields: dict[str, Any],
               string_fields: dict[str, Any] | None = None,
               split_table: bool = False) -> CustomChart:
    """A chart of `data_table` drawn by the preset `vega_spec_name`, `fields` naming the table
    columns of the preset's fields.

    Args:
        vega_spec_name: the preset: "wandb/line/v0", "wandb/scatter/v0", "wandb/bar/v0",
            "wandb/histogram/v0", "wandb/lineseries/v0", "wandb/confusion_matrix/v1" and
            "wandb/area-under-curve/v0" are drawn; another name (a custom Vega spec of a wandb
            workspace) is kept with the table and the table is shown instead.
        data_table: an nbtracker.Table (or a pandas DataFrame).
        fields: preset field -> table column, e.g. {"x": "step", "y": "loss"}.
        string_fields: texts, e.g. {"title": "Loss"}.
        split_table: also log the table on its own, under "Custom Chart Tables/<key>_table".

    >>> run.log({"chart": nbtracker.plot.plot_table("wandb/line/v0", table, {"x": "x", "y": "y"},
    ...                                             {"title": "y over x"})})
    """
    if not isinstance(vega_spec_name, str) or not vega_spec_name:
        raise PlotError(f"plot.plot_table: vega_spec_name must be a preset name, not "
                        f"{vega_spec_name!r}")
    table = _table("plot_table", data_table)
    if not isinstance(fields, dict):
        raise PlotError(f"plot.plot_table: fields must be a dict (preset field -> column), not "
                        f"{type(fields).__name__}")
    if string_fields is not None and not isinstance(string_fields, dict):
        raise PlotError(f"plot.plot_table: string_fields must be a dict, not "
                        f"{type(string_fields).__name__}")
    preset = PRESETS.get(vega_spec_name)
    if preset is not None:
        _, required, optional = preset
        for f in required:
            if fields.get(f) is None:
                raise PlotError(f"plot.plot_table: preset {vega_spec_name!r} needs the field {f!r} "
                                f"(fields given: {sorted(fields)})")
        for f in (*required, *optional):
            col = fields.get(f)
            if col is not None and str(col) not in table.columns:
                raise PlotError(f"plot: column {str(col)!r} (field {f!r}) is not in the table; its "
                                f"columns are {table.columns}")
    return CustomChart(table, CustomChartSpec(spec_name=vega_spec_name, fields=dict(fields),
                                              string_fields=dict(string_fields or {}),
                                              split_table=bool(split_table)))


def visualize(id: str, value: Table) -> CustomChart:
    """`plot_table`'s older form (wandb.visualize): the table drawn by the preset `id`, each of
    the preset's fields reading the column of its own name (e.g. "x", "y").

    A field without such a column leaves the chart undrawn, its table shown with one line
    saying which field has no column.

    >>> run.log({"fit": nbtracker.visualize("wandb/line/v0", table)})  # columns "x", "y"
    """
    if not isinstance(id, str) or not id:
        raise PlotError(f"plot.visualize: id must be a preset name, not {id!r}")
    if not isinstance(value, Table):
        raise PlotError(f"plot.visualize: expected an nbtracker.Table, not {type(value).__name__}")
    _, required, optional = PRESETS.get(id, ("custom", (), ()))
    fields = {f: f for f in (*required, *optional) if f in value.columns}
    return CustomChart(value, CustomChartSpec(spec_name=id, fields=fields, string_fields={}))


def _title(title: str | None, default: str) -> str:
    return default if title is None else str(title)


def line(table: Table, x: str, y: str, stroke: str | None = None, title: str | None = "",
         split_table: bool = False) -> CustomChart:
    """A line chart of column `y` over column `x`, one line per value of column `stroke`.

    >>> t = nbtracker.Table(data=[[i, i * i, "sq"] for i in range(10)], columns=["x", "y", "s"])
    >>> run.log({"curve": nbtracker.plot.line(t, "x", "y", stroke="s", title="squares")})
    """
    return plot_table("wandb/line/v0", _table("line", table), {"x": x, "y": y, "stroke": stroke},
                      {"title": _title(title, "")}, split_table)


def scatter(table: Table, x: str, y: str, title: str | None = "",
            split_table: bool = False) -> CustomChart:
    """A scatter plot of column `y` against column `x`.

    >>> run.log({"fit": nbtracker.plot.scatter(table, "predicted", "actual")})
    """
    return plot_table("wandb/scatter/v0", _table("scatter", table), {"x": x, "y": y},
                      {"title": _title(title, "")}, split_table)


def bar(table: Table, label: str, value: str, title: str | None = "",
        split_table: bool = False) -> CustomChart:
    """A bar per row: its name from column `label`, its length from column `value`.

    >>> t = nbtracker.Table(data=[["cat", 0.9], ["dog", 0.7]], columns=["class", "acc"])
    >>> run.log({"acc": nbtracker.plot.bar(t, "class", "acc", title="accuracy per class")})
    """
    return plot_table("wandb/bar/v0", _table("bar", table), {"label": label, "value": value},
                      {"title": _title(title, "")}, split_table)


def histogram(table: Table, value: str, title: str | None = "",
              split_table: bool = False) -> CustomChart:
    """A histogram of the values of column `value`.

    >>> t = nbtracker.Table(data=[[s] for s in scores], columns=["score"])
    >>> run.log({"scores": nbtracker.plot.histogram(t, "score", title="score distribution")})
    """
    return plot_table("wandb/histogram/v0", _table("histogram", table), {"value": value},
                      {"title": _title(title, "")}, split_table)


def _values(v: Any) -> list:
    """A sequence (list, tuple, numpy array, tensor, pandas Series) as a list of Python values."""
    if hasattr(v, "detach") or hasattr(v, "dtype"):
        return to_numpy(v).tolist()
    if hasattr(v, "tolist") and not isinstance(v, (list, tuple)):
        return v.tolist()
    return list(v)


def _is_series(v: Any) -> bool:
    return isinstance(v, Iterable) and not isinstance(v, (str, bytes))


def line_series(xs: Any, ys: Any, keys: Sequence[str] | None = None, title: str | None = "",
                xname: str | None = "x", split_table: bool = False) -> CustomChart:
    """Several lines in one chart: `ys` is a list of y sequences; `xs` one x sequence for all
    of them or one per line; `keys` names the lines (default line_0, line_1, …).

    >>> xs = list(range(10))
    >>> run.log({"powers": nbtracker.plot.line_series(xs, [[x, x**2] for x in ...], keys=["x", "x²"],
    ...                                               xname="step")})

    As wandb, a line whose x and y sequences differ in length is cut to the shorter (with a
    warning naming it).
    """
    try:
        ys_l = [_values(y) for y in _values(ys)] if _is_series(ys) or hasattr(ys, "dtype") else None
    except TypeError:
        ys_l = None
    if ys_l is None or any(not isinstance(y, list) for y in ys_l):
        raise PlotError("plot.line_series: ys must be a list of y sequences (one per line)")
    try:
        xs_l = _values(xs)
    except TypeError:
        raise PlotError(f"plot.line_series: xs must be a sequence, not {type(xs).__name__}") from None
    if not xs_l:
        raise PlotError("plot.line_series: xs is empty")
    if not _is_series(xs_l[0]):  # one x sequence for every line
        xs_l = [xs_l] * len(ys_l)
    else:
        xs_l = [_values(x) for x in xs_l]
    if len(xs_l) != len(ys_l):
        raise PlotError(f"Number of x-series ({len(xs_l)}) must match y-series ({len(ys_l)}).")
    keys_l = [f"line_{i}" for i in range(len(ys_l))] if keys is None else [str(k) for k in keys]
    if len(keys_l) != len(ys_l):
        raise PlotError(f"Number of keys ({len(keys_l)}) must match y-series ({len(ys_l)}).")
    data = []
    for k, xx, yy in zip(keys_l, xs_l, ys_l):
        if len(xx) != len(yy):
            from .sdk.output import warn

            warn(f"plot.line_series: line {k!r} has {len(xx)} x values and {len(yy)} y values; "
                 f"drawn to the shorter ({min(len(xx), len(yy))} points)")
        data.extend([x, k, y] for x, y in zip(xx, yy))
    table = Table(data=data, columns=["step", "lineKey", "lineVal"])
    return plot_table("wandb/lineseries/v0", table,
                      {"step": "step", "lineKey": "lineKey", "lineVal": "lineVal"},
                      {"title": _title(title, ""), "xname": _title(xname, "x")}, split_table)


# -- classification charts ---------------------------------------------------------------------

def _labels(fn: str, name: str, v: Any) -> list:
    if v is None:
        raise PlotError(f"plot.{fn}: {name} is required")
    try:
        out = _values(v)
    except TypeError:
        raise PlotError(f"plot.{fn}: {name} must be a sequence of labels, not "
                        f"{type(v).__name__}") from None
    if any(_is_series(x) for x in out):
        raise PlotError(f"plot.{fn}: {name} must hold one label per sample (1-d)")
    return out


def _class_index(v: Any) -> int | None:
    """A label as a class index: an integer (Python or numpy), a float holding one, a bool as
    0/1; else None."""
    import numbers

    import numpy as np

    if isinstance(v, (numbers.Integral, np.bool_)):  # bool, numpy's integers and bool
        return int(v)
    if isinstance(v, numbers.Real):  # float, numpy floating
        f = float(v)
        return int(f) if f.is_integer() else None
    return None


def confusion_matrix(probs: Any = None, y_true: Any = None, preds: Any = None,
                     class_names: Sequence[str] | None = None,
                     title: str | None = "Confusion Matrix Curve",
                     split_table: bool = False) -> CustomChart:
    """A confusion matrix: how many samples of each actual class were predicted as each class.

    Args:
        probs: predicted probabilities, shape (n_samples, n_classes); the prediction is the
            most probable class. Give either `probs` or `preds`.
        y_true: the true labels.
        preds: the predicted labels.
        class_names: the classes' names; labels are then class indices (0 … n-1: integers,
            numpy's too, floats holding one, bools as 0/1) or names.
            Without them the classes are the labels seen, sorted, named Class_1, Class_2, ….
        title: the chart's title.
        split_table: also log the table on its own (see `plot_table`).

    The table has one row per (actual, predicted) pair: Actual, Predicted, nPredictions.

    >>> run.log({"cm": nbtracker.plot.confusion_matrix(y_true=y, preds=p,
    ...                                                class_names=["cat", "dog", "owl"])})
    """
    if probs is not None and preds is not None:
        raise PlotError("Only one of `probs` or `preds` should be provided, not both.")
    truth = _labels("confusion_matrix", "y_true", y_true)
    if probs is not None:
        import numpy as np

        p = to_numpy(probs)
        if p.ndim != 2 or not p.size:
            raise PlotError(f"plot.confusion_matrix: probs must be 2-d (n_samples, n_classes), "
                            f"not of shape {tuple(p.shape)}")
        predicted = np.argmax(p, axis=1).tolist()
    elif preds is None:
        raise PlotError("plot.confusion_matrix: give the predictions, as `preds` (labels) or "
                        "`probs` (probabilities)")
    else:
        predicted = _labels("confusion_matrix", "preds", preds)
    if len(predicted) != len(truth):
        raise PlotError("The number of predictions and true labels must be equal.")
    if class_names is not None:
        names = [str(c) for c in _values(class_names)]
        n = len(names)
        by_name = {c: i for i, c in enumerate(names)}

        def index(v: Any, which: str) -> int:
            if isinstance(v, str) and v in by_name:
                return by_name[v]
            i = _class_index(v)
            if i is not None and 0 <= i < n:
                return i
            shown = v.item() if hasattr(v, "item") else v  # numpy's 1.5 as 1.5
            raise PlotError(f"plot.confusion_matrix: label {shown!r} in {which} is neither a "
                            f"class index (0 to {n - 1}) nor one of class_names")
    else:
        try:
            seen = sorted(set(predicted) | set(truth))
        except TypeError:
            raise PlotError("plot.confusion_matrix: labels of different types (e.g. numbers and "
                            "strings) cannot be ordered; give class_names") from None
        n = len(seen)
        names = [f"Class_{i + 1}" for i in range(n)]
        at = {v: i for i, v in enumerate(seen)}

        def index(v: Any, which: str) -> int:
            return at[v]

    counts = [[0] * n for _ in range(n)]
    for t, p_ in zip(truth, predicted):
        counts[index(t, "y_true")][index(p_, "preds")] += 1
    data = [[names[i], names[j], counts[i][j]] for i in range(n) for j in range(n)]
    table = Table(columns=["Actual", "Predicted", "nPredictions"], data=data)
    return plot_table("wandb/confusion_matrix/v1", table,
                      {"Actual": "Actual", "Predicted": "Predicted", "nPredictions": "nPredictions"},
                      {"title": _title(title, "Confusion Matrix Curve")}, split_table)


def _scores(fn: str, y_true: Any, y_probas: Any):
    """y_true (1-d) and y_probas (n_samples, n_classes) as numpy arrays, checked."""
    import numpy as np

    if y_true is None or y_probas is None:
        raise PlotError(f"plot.{fn}: y_true and y_probas are required")
    truth = np.asarray(_labels(fn, "y_true", y_true))
    probas = to_numpy(y_probas)
    if probas.ndim != 2:
        raise PlotError(f"plot.{fn}: y_probas must be 2-d (n_samples, n_classes), not of shape "
                        f"{tuple(probas.shape)}; for one score per sample of a binary problem "
                        "pass np.stack([1 - p, p], axis=1)")
    if len(probas) != len(truth):
        raise PlotError(f"plot.{fn}: y_true has {len(truth)} labels and y_probas {len(probas)} "
                        "rows")
    if not len(truth):
        raise PlotError(f"plot.{fn}: no samples")
    try:
        probas = probas.astype(np.float64)
    except (TypeError, ValueError):
        raise PlotError(f"plot.{fn}: y_probas must hold numbers") from None
    if not np.isfinite(probas).all():
        raise PlotError(f"plot.{fn}: y_probas holds NaN or infinite values")
    if truth.dtype == object:
        raise PlotError(f"plot.{fn}: y_true holds labels of mixed types")
    return truth, probas


def _curves(fn: str, y_true: Any, y_probas: Any, labels: Any, classes_to_plot: Any):
    """(label, is-positive mask, scores) of each class to plot: the classes in y_true, sorted
    (as wandb chooses them); `labels[c]` names an integer class c.

    The column of y_probas a class reads, where it is certain:
    - `labels` naming every column (len(labels) == number of columns): column i is the class
      labels[i], e.g. labels=model.classes_; or, with integer classes 0 … n-1 not among the
      labels (names), column c is class c;
    - every column has a class in y_true: column i is the i-th class (sklearn's order);
    - integer classes from 0 (0 in y_true, none beyond the last column): column c is class c
      (sklearn's columns of the classes 0 … n-1).
    Otherwise (a class is missing from y_true and the classes do not say which) wandb's rule,
    column i for the i-th class of y_true, with one warning naming what was assumed.
    """
    import numpy as np

    truth, probas = _scores(fn, y_true, y_probas)
    n_cols = probas.shape[1]
    classes = np.unique(truth)
    wanted = classes if classes_to_plot is None else np.asarray(_values(classes_to_plot))
    values = [c.item() for c in classes]
    integer = classes.dtype.kind in "iu"
    names = None if labels is None else _values(labels)
    zero_based = integer and values[0] >= 0 and values[-1] < n_cols
    if names is not None and len(names) == n_cols and all(v in names for v in values):
        column = {v: names.index(v) for v in values}
    elif zero_based and ((names is not None and len(names) == n_cols) or values[0] == 0):
        column = {v: int(v) for v in values}
    else:
        column = {v: i for i, v in enumerate(values)}
        if len(values) < n_cols:
            from .sdk.output import warn

            shown = ", ".join(f"{v!r} -> {i}" for v, i in list(column.items())[:6])
            warn(f"plot.{fn}: y_true holds {len(values)} classes for the {n_cols} columns of "
                 f"y_probas; assumed column i is the i-th class of y_true, sorted ({shown}"
                 f"{', …' if len(values) > 6 else ''}); pass labels= naming each column's class "
                 "(e.g. labels=model.classes_) to say which")
    out = []
    for i in np.where(np.isin(classes, wanted))[0]:
        c = classes[i]
        v = values[i]
        col = column[v]
        if col >= n_cols:
            raise PlotError(f"plot.{fn}: class {v!r} has no column in y_probas (it has "
                            f"{n_cols})")
        label = v
        if names is not None and integer and not (len(names) == n_cols and v in names):
            if not 0 <= int(v) < len(names):
                raise PlotError(f"plot.{fn}: labels has {len(names)} names; class {int(v)} has none")
            label = names[int(v)]
        out.append((label, truth == c, probas[:, col]))
    return out


def _clf_curve(positive, score):
    """(false positives, true positives) at each distinct score threshold, highest first:
    sklearn's `confusion_matrix_at_thresholds` for unweighted samples."""
    import numpy as np

    order = np.argsort(-score, kind="stable")
    score, positive = score[order], positive[order].astype(np.float64)
    ends = np.r_[np.nonzero(np.diff(score))[0], len(score) - 1]
    tps = np.cumsum(positive)[ends]
    fps = 1 + ends - tps
    return fps, tps


def _pr(positive, score):
    """(precision, recall), recall decreasing, ending at (1, 0): sklearn's
    `precision_recall_curve` (drop_intermediate=False)."""
    import numpy as np

    fps, tps = _clf_curve(positive, score)
    ps = tps + fps
    precision = np.divide(tps, ps, out=np.zeros_like(tps), where=ps != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def _roc(positive, score):
    """(fpr, tpr) from (0, 0): sklearn's `roc_curve` (drop_intermediate=True); NaN where a
    class has no positive (or no negative) sample, as there."""
    import numpy as np

    fps, tps = _clf_curve(positive, score)
    if len(fps) > 2:  # drop the points on a straight line between their neighbours
        keep = np.where(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])[0]
        fps, tps = fps[keep], tps[keep]
    fps, tps = np.r_[0.0, fps], np.r_[0.0, tps]
    fpr = fps / fps[-1] if fps[-1] > 0 else np.full(fps.shape, np.nan)
    tpr = tps / tps[-1] if tps[-1] > 0 else np.full(tps.shape, np.nan)
    return fpr, tpr


def pr_curve(y_true: Any = None, y_probas: Any = None, labels: Sequence[str] | None = None,
             classes_to_plot: Sequence[Any] | None = None, interp_size: int = 21,
             title: str | None = "Precision-Recall Curve",
             split_table: bool = False) -> CustomChart:
    """Precision-recall curves, one per class (one class against the rest).

    Args:
        y_true: the true labels, shape (n_samples,).
        y_probas: each class's score, shape (n_samples, n_classes).
        labels: one per column of y_probas: column i is the class labels[i] (e.g.
            labels=model.classes_), or names of integer classes: class c is drawn as
            labels[c] and reads column c. Without them integer classes from 0 (0 in y_true)
            read column = class, others column i for the i-th class of y_true, sorted
            (sklearn's order when every column's class is in y_true; else wandb's rule, with a
            warning naming what was assumed).
        classes_to_plot: the classes (values of y_true) to draw; default all in y_true.
        interp_size: the recall values the curves are read at (evenly spaced in 0..1).
        title: the chart's title.
        split_table: also log the table on its own (see `plot_table`).

    Precision at recall r is the best precision at any threshold whose recall is at least r
    (the interpolated curve, as wandb draws it). Table: class, precision, recall.

    >>> run.log({"pr": nbtracker.plot.pr_curve(y_true, y_probas, labels=["cat", "dog"])})
    """
    import numpy as np

    if not isinstance(interp_size, (int, np.integer)) or isinstance(interp_size, bool) \
            or interp_size < 2:
        raise PlotError(f"plot.pr_curve: interp_size must be an integer of at least 2, not "
                        f"{interp_size!r}")
    grid = np.linspace(0, 1, int(interp_size))[::-1]
    data = []
    for label, positive, score in _curves("pr_curve", y_true, y_probas, labels, classes_to_plot):
        precision, recall = _pr(positive, score)
        precision = np.maximum.accumulate(precision)[::-1]  # best precision at recall >= r
        recall = recall[::-1]
        at = np.searchsorted(recall, grid, side="left")
        data.extend([label, p, r] for p, r in zip(precision[at].tolist(), grid.tolist()))
    table = Table(columns=["class", "precision", "recall"], data=data)
    return plot_table("wandb/area-under-curve/v0", table,
                      {"x": "recall", "y": "precision", "class": "class"},
                      {"title": _title(title, "Precision-Recall Curve"), "x-axis-title": "Recall",
                       "y-axis-title": "Precision"}, split_table)._as("pr_curve")


def roc_curve(y_true: Any = None, y_probas: Any = None, labels: Sequence[str] | None = None,
              classes_to_plot: Sequence[Any] | None = None, title: str | None = "ROC Curve",
              split_table: bool = False) -> CustomChart:
    """ROC curves (true positive rate over false positive rate), one per class (one class
    against the rest).

    Args:
        y_true: the true labels, shape (n_samples,).
        y_probas: each class's score, shape (n_samples, n_classes).
        labels: one per column of y_probas: column i is the class labels[i] (e.g.
            labels=model.classes_), or names of integer classes: class c is drawn as
            labels[c] and reads column c. Without them integer classes from 0 (0 in y_true)
            read column = class, others column i for the i-th class of y_true, sorted
            (sklearn's order when every column's class is in y_true; else wandb's rule, with a
            warning naming what was assumed).
        classes_to_plot: the classes (values of y_true) to draw; default all in y_true.
        title: the chart's title.
        split_table: also log the table on its own (see `plot_table`).

    The points are sklearn's `roc_curve` points (collinear ones dropped). Table: class, fpr, tpr.

    >>> run.log({"roc": nbtracker.plot.roc_curve(y_true, y_probas)})
    """
    data = []
    for label, positive, score in _curves("roc_curve", y_true, y_probas, labels, classes_to_plot):
        fpr, tpr = _roc(positive, score)
        data.extend([label, f, t] for f, t in zip(fpr.tolist(), tpr.tolist()))
    table = Table(columns=["class", "fpr", "tpr"], data=data)
    return plot_table("wandb/area-under-curve/v0", table, {"x": "fpr", "y": "tpr", "class": "class"},
                      {"title": _title(title, "ROC Curve"), "x-axis-title": "False positive rate",
                       "y-axis-title": "True positive rate"}, split_table)._as("roc_curve")
