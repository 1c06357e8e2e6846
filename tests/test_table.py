"""The run table's Python side: columns of runs, their compact encoding, the widget's traits and
the static HTML form. (The table itself is tested in the browser: tests/browser/test_runtable.py.)"""

from __future__ import annotations

import json

import nbtracker
from nbtracker.notebook import contract, run_rows, runs_table, table_static_html
from nbtracker.notebook.table import decode_column as _decode
from nbtracker.notebook.table import encode_column, run_columns, static_html


def _make_runs():
    for i, (name, lr) in enumerate([("a", 0.1), ("b", 0.01), ("<b>c</b>", 0.1)]):
        with nbtracker.init(project="t", name=name, group="g" if i else None, tags=["x", "y"],
                            config={"lr": lr, "model": {"width": 64, "act": "relu"}, "flag": True,
                                    "note": "same"}) as r:
            r.log({"loss": 1.0 / (i + 1), "acc": float("nan") if i == 1 else 0.5})
            r.summary["label"] = "best"
    return list(nbtracker.Api().runs("t", order="+created_at"))


def test_run_columns_flatten_kinds_and_defaults():
    columns, data = run_columns(_make_runs())
    kinds = {c["key"]: c["kind"] for c in columns}
    assert kinds["config.lr"] == "number" and kinds["config.model.width"] == "number"
    assert kinds["config.flag"] == "text" and kinds["config.model.act"] == "text"
    assert kinds["summary.loss"] == "number" and kinds["summary.label"] == "text"
    assert data["name"] == ["a", "b", "<b>c</b>"]
    assert data["config.model.width"] == [64, 64, 64]
    assert data["summary.acc"] == [0.5, "NaN", 0.5]  # JSON has no NaN
    assert data["group"] == ["", "g", "g"] and data["tags"] == ["x, y"] * 3
    shown = [c["key"] for c in columns if c["visible"]]
    # the config key that differs first, then the others, up to five
    assert [k for k in shown if k.startswith("config.")][0] == "config.lr"
    assert {"name", "state", "created", "runtime", "group", "tags"} <= set(shown)
    assert "id" not in shown and "steps" not in shown
    json.dumps(data, allow_nan=False)


def test_many_config_keys_are_not_all_shown():
    with nbtracker.init(project="w", config={f"k{j}": j for j in range(200)}) as r:
        r.log({f"m{j}": j for j in range(20)})
    columns, _ = run_columns(list(nbtracker.Api().runs("w")))
    shown = [c["key"] for c in columns if c["visible"]]
    assert len([k for k in shown if k.startswith("config.")]) == 5
    assert len([k for k in shown if k.startswith("summary.")]) == 5
    assert len(columns) > 200


def test_encode_column_is_compact_and_exact():
    repeated = [0.1, 0.01, 0.1, None, 0.1, 0.01] * 100
    enc = encode_column(repeated)
    assert enc["d"] == [0.1, 0.01, None] and len(enc["c"]) == 600
    assert _decode(enc, 600) == repeated
    assert encode_column(["x"] * 50) == {"d": ["x"], "c": 0}
    unique = [f"run-{i}" for i in range(100)]
    assert encode_column(unique) == {"v": unique}
    mixed = [1, True, 1.0, "1"] * 10  # equal in Python, different in the table
    got = _decode(encode_column(mixed), 40)
    assert [type(v) for v in got] == [type(v) for v in mixed] and got == mixed


def test_runs_table_traits_and_compare():
    runs = _make_runs()
    table = runs_table("t", order="-summary.loss", group_by="config.lr")
    assert table.count == 3 and len(table.data) == len(table.columns)
    keys = [c["key"] for c in table.columns]
    names = _decode(table.data[keys.index("name")], 3)
    assert names == ["a", "b", "<b>c</b>"]  # highest loss first
    assert (table.sort_key, table.sort_desc, table.group_by) == ("summary.loss", True, "config.lr")
    assert set(table.visible) <= set(keys) and "name" in table.visible
    # the whole state travels as a few lists, not one dict per run
    assert all(set(enc) in ({"v"}, {"d", "c"}) for enc in table.data)
    for name in contract.TRAITS["runs"]:  # what the front-end checks before drawing
        assert contract.check_trait("runs", name, getattr(table, name)) == [], name
    assert not hasattr(table, "rows")
    table._handle_custom_msg({"type": "compare", "ids": [runs[0].id, runs[1].id]}, [])
    assert table.selected == [runs[0].id, runs[1].id]
    assert contract.check_trait("runs", "comparison", table.comparison) == []
    assert table.comparison["spec"] and [r["key"] for r in table.comparison["diff"]["rows"]] == ["lr"]


def test_run_rows_stay_importable_and_leave_out_missing_keys():
    with nbtracker.init(project="r", config={"a": 1}):
        pass
    with nbtracker.init(project="r", config={"b": 2}):
        pass
    columns, rows = run_rows(list(nbtracker.Api().runs("r", order="+created_at")))
    assert rows[0]["config.a"] == 1 and "config.b" not in rows[0]
    assert rows[1]["config.b"] == 2 and "config.a" not in rows[1]


def test_table_static_html_escapes_and_limits():
    columns = [{"key": "name", "label": "name <i>", "kind": "text"},
               {"key": "config.note", "label": "note", "kind": "text"},
               {"key": "summary.loss", "label": "loss", "kind": "number"},
               {"key": "id", "label": "id", "kind": "text", "visible": False}]
    rows = [{"name": f"<b>run {i}</b>", "config.note": 'a "q" & <script>', "summary.loss": i / 3,
             "id": "hidden-id"} for i in range(120)]
    out = table_static_html(columns, rows, limit=50)
    assert "<b>" not in out and "<script>" not in out and "<i>" not in out
    assert "&lt;b&gt;run 0&lt;/b&gt;" in out and "&lt;b&gt;run 49&lt;/b&gt;" in out
    assert "run 50" not in out
    assert "a &quot;q&quot; &amp; &lt;script&gt;" in out
    assert "hidden-id" not in out
    assert out.count("<tr>") == 51
    assert "… and 70 more runs" in out
    assert "0.33333" in out
    short = table_static_html(columns, rows[:1])
    assert "more run" not in short
    assert "… and 1 more run<" in table_static_html(columns, rows[:2], limit=1)


def test_table_static_html_of_real_runs():
    columns, rows = run_rows(_make_runs())
    out = table_static_html(columns, rows)
    assert "&lt;b&gt;c&lt;/b&gt;" in out and "<b>c</b>" not in out
    assert "config.lr" in out and "hidden" not in out


def test_listing_copies_config_apart():
    with nbtracker.init(project="c", config={"model": {"width": 64, "layers": [1, 2]}}):
        pass
    run = nbtracker.Api().runs("c")[0]
    run.config["model"]["layers"].append(3)
    run.config["model"]["width"] = 128
    again = nbtracker.Api().runs("c")[0]
    assert again.config == {"model": {"width": 64, "layers": [1, 2]}}
    run.update()
    assert nbtracker.Api().runs("c")[0].config == {"model": {"width": 128, "layers": [1, 2, 3]}}


def test_static_html_of_a_table_widget():
    for i in range(60):
        with nbtracker.init(project="s", name=f"<i>run {i:02d}</i>", config={"lr": i / 100}):
            pass
    table = runs_table("s", order="+name")
    out = static_html(table)
    assert "&lt;i&gt;run 00&lt;/i&gt;" in out and "&lt;i&gt;run 49&lt;/i&gt;" in out
    assert "run 50" not in out and "<i>" not in out
    assert "… and 10 more runs" in out
    assert ">config.lr<" in out and ">id<" not in out  # the columns the table shows
