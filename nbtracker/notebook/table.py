"""The run table: runs as columns of values, sent to the RunTable widget compactly, and the same
table as static HTML for viewers without widgets.

A column is `{"key", "label", "kind"}` ("text" or "number"); its values travel as one entry of
the widget's `data` list, in the order of `columns`, encoded so that 10,000 runs do not mean
10,000 dicts with repeated keys:

- `{"v": [value, ...]}`: one value per run (null where the run has none);
- `{"d": [distinct, ...], "c": [code, ...]}`: a dictionary of distinct values and, per run, the
  index of its value in it (few distinct values: config keys, state, group);
- `{"d": [value], "c": 0}`: the same value for every run.

Grouping, sorting, filtering, choosing columns and the CSV export all happen in the browser on
these columns; only "Compare selected" asks the kernel.

>>> table = nbtracker.runs_table("mnist")      # group by config.lr, pick columns, export CSV
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..store.query import flatten
from . import static
from .widgets import RunTable, jsonable

__all__ = ["run_columns", "run_rows", "runs_table", "table_of_runs", "table_static_html",
           "static_html", "encode_column", "decode_column"]

# (key, label, kind) of the columns every run has, in the table's order
BASE_COLUMNS = [("name", "name", "text"), ("state", "state", "text"), ("group", "group", "text"),
                ("job_type", "job type", "text"), ("tags", "tags", "text"),
                ("created", "created", "text"), ("runtime", "runtime (s)", "number"),
                ("steps", "steps", "number"), ("id", "id", "text"), ("project", "project", "text")]
DEFAULT_CONFIG_COLUMNS = 5
DEFAULT_SUMMARY_COLUMNS = 5
STATIC_LIMIT = 50


def _cell(v: Any) -> Any:
    """A JSON value for a cell; NaN and infinities (not JSON) become text."""
    return v if v is None or v.__class__ in (str, int, bool) else jsonable(v)


_PLAIN = frozenset({type(None), str, int, bool})


def _settle(col: list) -> str:
    """Make a column's values JSON in place; its kind: "number" when every value is an int or
    float (or missing), else "text"."""
    classes = set(map(type, col))
    if not classes <= _PLAIN:
        if classes <= _PLAIN | {float}:
            for i, v in enumerate(col):
                if v.__class__ is float and not math.isfinite(v):
                    col[i] = _cell(v)
        else:
            col[:] = [_cell(v) for v in col]
    classes.discard(type(None))
    return "number" if classes and classes <= {int, float} else "text"


def run_columns(runs: list) -> tuple[list[dict], dict[str, list]]:
    """The table of these runs by column: (columns, {key: one value per run}).

    Columns: name, state, group, job type, tags, created, runtime, steps, id, project, then
    every flattened config key (`config.model.width`) and every scalar summary key
    (`summary.loss`), in the order first seen. Each column has `visible`: whether the table
    shows it before the user picks (name, state, created, runtime, group/tags when used, and a
    few config keys, those that differ first, and summary keys)."""
    n = len(runs)
    data: dict[str, list] = {k: [None] * n for k, _, _ in BASE_COLUMNS}
    kinds: dict[str, str] = {}
    config_keys: dict[str, None] = {}
    summary_keys: dict[str, None] = {}
    names, states, groups, jobs, tags, created = (data["name"], data["state"], data["group"],
                                                 data["job_type"], data["tags"], data["created"])
    runtime, steps, ids, projects = data["runtime"], data["steps"], data["id"], data["project"]
    localtime, strftime = time.localtime, time.strftime
    for i, r in enumerate(runs):
        names[i] = r.name
        states[i] = r.state
        groups[i] = r.group or ""
        jobs[i] = r.job_type or ""
        tags[i] = ", ".join(r.tags)
        created[i] = strftime("%Y-%m-%d %H:%M:%S", localtime(r.created))
        runtime[i] = round(r.runtime, 1)
        steps[i] = r.steps
        ids[i] = r.id
        projects[i] = r.project
        flat = flatten(r.config, ".", "config.")
        for k, v in r.summary_metrics.items():
            if not isinstance(v, dict):
                flat[f"summary.{k}"] = v
        for k, v in flat.items():
            col = data.get(k)
            if col is None:
                col = data[k] = [None] * n
                (config_keys if k.startswith("config.") else summary_keys)[k] = None
            col[i] = v
    for k in (*config_keys, *summary_keys):
        kinds[k] = _settle(data[k])
    columns = [{"key": k, "label": label, "kind": kind} for k, label, kind in BASE_COLUMNS]
    columns += [{"key": k, "label": k, "kind": kinds.get(k, "text")} for k in config_keys]
    columns += [{"key": k, "label": k, "kind": kinds.get(k, "text")} for k in summary_keys]
    shown = _default_visible(columns, data)
    for c in columns:
        c["visible"] = c["key"] in shown
    return columns, data


def _default_visible(columns: list[dict], data: dict[str, list]) -> set[str]:
    shown = {"name", "state", "created", "runtime"}
    for k in ("group", "tags"):
        if any(data[k]):
            shown.add(k)
    config = [c["key"] for c in columns if c["key"].startswith("config.")]
    differ = [k for k in config if _distinct(data[k]) > 1]
    same = [k for k in config if k not in differ]
    shown.update((differ + same)[:DEFAULT_CONFIG_COLUMNS])
    summary = [c["key"] for c in columns if c["key"].startswith("summary.")
               and c["kind"] == "number" and not c["key"].startswith("summary._")]
    shown.update(summary[:DEFAULT_SUMMARY_COLUMNS])
    return shown


def _distinct(col: list) -> int:
    try:
        return len(set(col))
    except TypeError:  # lists among the values
        return len({_hashable(v) for v in col})


def _hashable(v: Any) -> Any:
    return v if not isinstance(v, (list, dict)) else repr(v)


def run_rows(runs: list) -> tuple[list[dict], list[dict]]:
    """Columns and rows (one dict per run, by column key; keys the run lacks are left out) of
    the run table for these runs."""
    columns, data = run_columns(runs)
    keys = [c["key"] for c in columns]
    rows = []
    for i in range(len(runs)):
        rows.append({k: data[k][i] for k in keys if data[k][i] is not None})
    return columns, rows


def encode_column(values: list) -> dict:
    """One column's values for the widget: plain, or a dictionary and codes when they repeat
    (see the module docstring)."""
    n = len(values)
    classes = set(map(type, values))
    if classes <= _PLAIN | {float} and len(classes & {int, float, bool}) <= 1:
        # no two values of different number types: the values themselves can be the keys
        distinct = dict.fromkeys(values)
        if len(distinct) * 2 > n + 2:
            return {"v": list(values)}
        index = {v: i for i, v in enumerate(distinct)}
        try:
            codes = [index[v] for v in values]
        except KeyError:  # a NaN (equal to nothing, itself included)
            pass
        else:
            return {"d": list(distinct), "c": 0 if len(distinct) == 1 else codes}
    index2: dict[Any, int] = {}
    codes = []
    for v in values:
        key = (v.__class__, _hashable(v))  # 1, 1.0 and True stay apart
        c = index2.get(key)
        if c is None:
            c = index2[key] = len(index2)
            if len(index2) * 2 > n + 2:
                return {"v": list(values)}
        codes.append(c)
    distinct_values: list = [None] * len(index2)
    for v, c in zip(values, codes):
        distinct_values[c] = v
    return {"d": distinct_values, "c": 0 if len(distinct_values) == 1 else codes}


def decode_column(enc: dict, n: int) -> list:
    """The values of one encoded column (see `encode_column`)."""
    if "v" in enc:
        return list(enc["v"])
    d, c = enc.get("d", []), enc.get("c", 0)
    return [d[c]] * n if isinstance(c, int) else [d[k] for k in c]


def table_static_html(columns: list[dict], rows: list[dict], limit: int = STATIC_LIMIT,
                      total: int | None = None) -> str:
    """An HTML table of the first `limit` rows (dicts by column key) in the given columns (those
    not marked `"visible": False`), and "… and N more runs" below it (of `total` runs, when
    `rows` holds only the first ones); every value escaped, styles inline as in every static
    form (`static.py`). For viewers that draw no widgets.

    >>> html = table_static_html(*run_rows(nbtracker.Api().runs("mnist")))
    """
    cols = [c for c in columns if c.get("visible", True)]
    td = static.TD_STYLE
    head = "".join(f'<th style="{td}">{static.esc(c.get("label", c["key"]))}</th>' for c in cols)
    body = []
    for row in rows[:limit]:
        cells = []
        for c in cols:
            v = row.get(c["key"])
            align = ";text-align:right" if c.get("kind") == "number" else ""
            cells.append(f'<td style="{td}{align}">'
                         f'{"" if v is None else static.esc(static.value_text(v))}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = (len(rows) if total is None else total) - min(len(rows), limit)
    tail = (f'<p class="nbt-more">… and {more:,} more run{"s" if more != 1 else ""}</p>'
            if more > 0 else "")
    return (f'<table class="nbt-table" style="{static.TABLE_STYLE}"><thead><tr>{head}</tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>{tail}')


def static_html(table: RunTable, limit: int = STATIC_LIMIT) -> str:
    """The static form of a RunTable: its first `limit` runs in the order they were listed (the
    table's first sort), in the columns it shows."""
    n = min(table.count, limit)
    shown = set(table.visible)
    columns = [dict(c, visible=c["key"] in shown) for c in table.columns]
    data = {c["key"]: decode_column(enc, table.count)[:n]
            for c, enc in zip(table.columns, table.data) if c["key"] in shown}
    rows = [{k: v[i] for k, v in data.items()} for i in range(n)]
    return table_static_html(columns, rows, limit=limit, total=table.count)


def _order_key(order: str) -> tuple[str, bool]:
    key = order.lstrip("+-")
    key = {"created_at": "created", "createdAt": "created"}.get(key, key)
    return key, order.startswith("-")


def runs_table(project: str | None = None, filters: dict | None = None,
               order: str = "-created_at", group_by: str = "", api: Any = None) -> RunTable:
    """A table widget of runs: click a header to sort, type to filter, group by any column
    (collapsible groups with count and mean/min/max), choose columns, export the visible rows
    as CSV, tick runs and press Compare for their curves and config diff.

    Args:
        project: the project ("mnist"); every project when None.
        filters: MongoDB-style filters, as `Api.runs` takes them ({"config.lr": 1e-3}).
        order: the first sort ("-created_at", "+summary.loss", "config.lr").
        group_by: a column key to group by from the start ("group", "config.lr").
        api: an `nbtracker.Api` (a default one when None).

    >>> nbtracker.runs_table("mnist", group_by="config.lr")
    """
    from . import _api

    with _collector_paused():
        runs = list(_api(api).runs(project, filters=filters, order=order))
        return table_of_runs(runs, order=order, group_by=group_by)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Listing thousands of runs allocates many small containers and no cyclic garbage: the
    cycle collector's passes over them cost about a third of the time."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def table_of_runs(runs: list, order: str = "-created_at", group_by: str = "") -> RunTable:
    """The RunTable widget of these runs (`Api().runs(...)` objects), as `runs_table` shows
    them: the list is taken as it is, `order` names the first sort of the view."""
    from . import diff_rows

    with _collector_paused():
        columns, data = run_columns(runs)
        encoded = [encode_column(data[c["key"]]) for c in columns]
    key, desc = _order_key(order)
    table = RunTable(columns=[{k: c[k] for k in ("key", "label", "kind")} for c in columns],
                     data=encoded, count=len(runs),
                     visible=[c["key"] for c in columns if c["visible"]],
                     sort_key=key, sort_desc=desc, group_by=group_by)
    table.static = static.bundle(static_html(table), None,
                                 f"{len(runs)} runs: " + ", ".join(str(r.name) for r in runs[:20])
                                 + (" …" if len(runs) > 20 else ""), kind="runs")
    by_id = {r.id: r for r in runs}

    def on_msg(widget: RunTable, content: dict, buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "compare":
            return
        chosen = [by_id[i] for i in content.get("ids", []) if i in by_id]
        if not chosen:
            table.comparison = {"runs": [], "error": "select runs to compare"}
            return
        try:
            from ..charts import compare_chart

            spec = compare_chart(chosen).to_dict()
        except Exception as e:  # e.g. runs with no numeric history
            spec = None
            error = str(e)
        else:
            error = None
        labels, diff = diff_rows(chosen, show_all=False)
        table.selected = [r.id for r in chosen]
        table.comparison = {"runs": [r.id for r in chosen], "spec": spec, "error": error,
                            "diff": {"runs": labels, "rows": diff}}

    table.on_msg(on_msg)
    return table
