"""What `Api().run(p).history()` and `scan_history()` read back equals a plain replay of the
record log, value for value, whatever the shape of the rows and whether or not the column
blocks (history.cols) are there."""

from __future__ import annotations

import json
import math
import os

import pytest
from helpers import run_python

import nbtracker
from nbtracker.store.columns import COLS_NAME

NAN = float("nan")
ABSENT = object()
SPECIAL = {"nan": NAN, "inf": math.inf, "-inf": -math.inf}


def replay(run) -> list[dict]:
    """The history rows of the run's log, read with nothing but json: records in log order,
    one row per step in step order, a later record's value winning whatever it is."""
    rows: dict[int, dict] = {}
    with open(os.path.join(run.storage_dir, "records.jsonl"), "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            rec = json.loads(line)
            if rec["t"] != "history":
                continue
            d = dict(rec["d"])
            for k, name in (rec.get("nf") or {}).items():
                d[k] = SPECIAL[name] if name in SPECIAL else int(name)
            row = rows.setdefault(rec["step"], {})
            row.update(d)
            row["_timestamp"] = rec["ts"]
    return [dict(rows[s], _step=s) for s in sorted(rows)]


def same(expected, actual) -> bool:
    if expected is ABSENT:
        return isinstance(actual, float) and math.isnan(actual)
    if expected is None:
        return actual is None
    if isinstance(expected, float) and math.isnan(expected):
        return isinstance(actual, float) and math.isnan(actual)
    if type(expected) is int and abs(expected) > 2**53:  # float64 cannot hold it: must be an int
        return type(actual) is int and actual == expected
    return type(actual) is not bool and actual == expected if type(expected) is not bool \
        else actual is expected


def assert_replayed(df, run, keys=None) -> None:
    """`df` (a history() frame) holds exactly the replayed rows, cell for cell."""
    rows = replay(run)
    if keys is not None:
        rows = [r for r in rows if all(k in r for k in keys)]
    metrics = list(keys) if keys is not None else \
        list(dict.fromkeys(k for r in rows for k in r if k not in ("_step", "_timestamp")))
    assert list(df.columns) == ["_step", *metrics, "_runtime", "_timestamp"]
    assert len(df) == len(rows)
    assert df["_step"].tolist() == [r["_step"] for r in rows]
    assert df["_timestamp"].tolist() == [r["_timestamp"] for r in rows]
    for k in metrics:
        got = df[k].tolist()
        for r, g in zip(rows, got):
            assert same(r.get(k, ABSENT), g), (k, r["_step"], r.get(k, ABSENT), g)


def history(run, **kw):
    return nbtracker.Api().run(run.path).history(**kw)


def without_blocks(run, **kw):
    cols = os.path.join(run.storage_dir, COLS_NAME)
    if os.path.exists(cols):
        os.rename(cols, cols + ".off")
    try:
        return history(run, **kw)
    finally:
        if os.path.exists(cols + ".off"):
            os.rename(cols + ".off", cols)


BIG = [2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, -(2**53) - 3]


def test_ints_beyond_2_53_read_back_exactly():
    run = nbtracker.init(project="exact")
    for i in range(300):  # enough rows for column blocks
        nbtracker.log({"n": 2**53 + 2 * i + 1, "m": -(2**62) - i, "x": i * 0.5})
    for i, v in enumerate(BIG):
        nbtracker.log({"big": v, "small": i})  # ints beyond 2**53 among gaps in "big"
        nbtracker.log({"small": i})
    nbtracker.log({"mix": 1.5})
    nbtracker.log({"mix": 2**60 + 1})  # among floats
    run.finish()
    df = history(run)
    n = df["n"].tolist()[:300]
    assert n == [2**53 + 2 * i + 1 for i in range(300)] and all(type(v) is int for v in n)
    assert df["m"].tolist()[:300] == [-(2**62) - i for i in range(300)]
    assert str(history(run, keys=["n"])["n"].dtype) == "int64"  # no cell missing
    big = df["big"].dropna().tolist()
    assert big == BIG and all(type(v) is int for v in big)
    assert df["mix"].dropna().tolist()[-1] == 2**60 + 1
    assert_replayed(df, run)
    assert_replayed(without_blocks(run), run)


def test_ints_beyond_64_bits_in_the_log_read_back_exactly():
    """Ints outside [-2**63, 2**64) sit in the log as digits in `nf`."""
    run = nbtracker.init(project="exact")
    for i in range(100):
        nbtracker.log({"v": i})
    run.finish()
    log = os.path.join(run.storage_dir, "records.jsonl")
    seq = sum(1 for _ in open(log)) + 1
    with open(log, "a") as f:
        for j, v in enumerate([2**64 + 5, -(2**70)]):
            f.write(json.dumps({"t": "history", "seq": seq + j, "ts": 2e9 + j, "step": 100 + j,
                                "d": {"v": None}, "nf": {"v": str(v)}}) + "\n")
    df = history(run)
    assert df["v"].tolist()[-2:] == [2**64 + 5, -(2**70)]
    assert df["v"].tolist()[:100] == list(range(100))
    assert_replayed(df, run)
    rows = list(nbtracker.Api().run(run.path).scan_history())
    assert [r["v"] for r in rows[-2:]] == [2**64 + 5, -(2**70)]


def test_steps_beyond_2_53_read_back_exactly():
    run = nbtracker.init(project="exact")
    steps = [2**53 + 1, 2**53 + 2, 2**63 - 1, 2**64 - 1]
    for s in steps:
        nbtracker.log({"a": 1.0}, step=s)
    run.finish()
    df = history(run)
    assert df["_step"].tolist() == steps
    assert [r["_step"] for r in nbtracker.Api().run(run.path).scan_history()] == steps
    assert_replayed(df, run)


def test_steps_beyond_2_53_in_blocks():
    run = nbtracker.init(project="exact")
    for i in range(200):
        nbtracker.log({"a": float(i)}, step=2**53 - 100 + i)
    run.finish()
    df = history(run)
    assert df["_step"].tolist() == [2**53 - 100 + i for i in range(200)]
    assert_replayed(df, run)


def test_a_later_nan_or_none_wins_at_a_shared_step():
    run = nbtracker.init(project="exact")
    for s in range(200):  # blocks for both key sets
        nbtracker.log({"a": float(s), "b": 1.0}, commit=False)
        nbtracker.log({"a": NAN if s % 3 == 0 else float(-s)})
    nbtracker.log({"c": 1.0, "d": 5}, commit=False)
    nbtracker.log({"c": None, "d": None})
    nbtracker.log({"e": 2.5}, step=500)
    nbtracker.log({"e": NAN}, step=500)
    run.finish()
    df = history(run)
    a = df["a"].tolist()
    assert all(math.isnan(a[s]) if s % 3 == 0 else a[s] == -s for s in range(200))
    row = df[df["_step"] == 200].iloc[0]
    assert row["c"] is None and row["d"] is None
    assert math.isnan(df[df["_step"] == 500]["e"].item())
    assert_replayed(df, run)
    assert_replayed(without_blocks(run), run)


def test_none_reads_back_as_none_and_nan_as_nan():
    run = nbtracker.init(project="exact")
    nbtracker.log({"f": 1.0, "g": 1.0})
    nbtracker.log({"f": None, "g": NAN})
    nbtracker.log({"f": 2.0, "g": 3.0})
    run.finish()
    df = history(run)
    assert df["f"].tolist()[1] is None and str(df["f"].dtype) == "object"
    assert math.isnan(df["g"].tolist()[1]) and str(df["g"].dtype) == "float64"
    assert_replayed(df, run)


def test_keys_keep_the_rows_holding_every_key():
    run = nbtracker.init(project="exact")
    for s in range(300):
        row = {"loss": s * 0.1}
        if s % 10 == 0:
            row["val"] = float(s)
        if s % 15 == 0:
            row["acc"] = s
        nbtracker.log(row)
    run.finish()
    r = nbtracker.Api().run(run.path)
    both = r.history(keys=["val", "acc"])
    assert both["_step"].tolist() == list(range(0, 300, 30))
    assert list(both.columns) == ["_step", "val", "acc", "_runtime", "_timestamp"]
    assert_replayed(both, run, keys=["val", "acc"])
    scanned = list(r.scan_history(keys=["val", "acc"]))
    assert [x["_step"] for x in scanned] == list(range(0, 300, 30))
    assert all(set(x) == {"_step", "val", "acc", "_timestamp", "_runtime"} for x in scanned)


def test_keys_never_logged_give_an_empty_frame():
    run = nbtracker.init(project="exact")
    for s in range(100):
        nbtracker.log({"loss": s * 0.1})
    run.finish()
    r = nbtracker.Api().run(run.path)
    df = r.history(keys=["nope"])
    assert len(df) == 0 and list(df.columns) == ["_step", "nope", "_runtime", "_timestamp"]
    df = r.history(keys=["loss", "nope"])
    assert len(df) == 0 and list(df.columns) == ["_step", "loss", "nope", "_runtime", "_timestamp"]
    assert list(r.scan_history(keys=["loss", "nope"])) == []


@pytest.mark.parametrize("name", ["_seq", "seq", "index", "t", "d", "nf", "step", "ts", "level_0"])
def test_any_metric_name_reads_back(name):
    run = nbtracker.init(project="exact")
    for s in range(100):
        nbtracker.log({name: float(s), "x": 1.0})
    nbtracker.log({name: "text"})
    run.finish()
    df = history(run)
    assert df[name].tolist() == [float(s) for s in range(100)] + ["text"]
    assert_replayed(df, run)
    assert [row[name] for row in nbtracker.Api().run(run.path).scan_history()][:3] == [0.0, 1.0, 2.0]


def _shapes(steps: int) -> None:
    """Rows shaped like real training loops, in one run."""
    for s in range(steps):
        x = s * 1e-3
        if s % 100 == 0:
            nbtracker.log({"val/loss": x, "val/acc": s}, commit=False)
        row = {"loss": x, "lr": x / 10}
        if s % 97 == 0:
            row["note"] = f"checkpoint {s}"
        if s % 89 == 0:
            row["loss"] = NAN
        if s % 250 == 0:
            row["huge"] = 2**62 + s
        nbtracker.log(row)
        nbtracker.log({f"k{s % 11}": float(s)}, step=s + 1)  # eleven rotating key sets
        if s % 1000 == 0:
            nbtracker.config.update({f"c{s}": s})


def test_history_of_mixed_shapes_is_the_replay():
    run = nbtracker.init(project="exact")
    _shapes(20000)
    run.finish()
    assert os.path.getsize(os.path.join(run.storage_dir, COLS_NAME)) > 0
    df = history(run)
    assert_replayed(df, run)
    assert_replayed(without_blocks(run), run)
    rows = replay(run)
    scanned = list(nbtracker.Api().run(run.path).scan_history())
    assert len(scanned) == len(rows)
    for want, got in zip(rows, scanned):
        assert set(got) - {"_runtime"} == set(want)
        assert all(same(want[k], got[k]) for k in want)
    sub = nbtracker.Api().run(run.path).history(keys=["val/acc", "loss"])
    assert_replayed(sub, run, keys=["val/acc", "loss"])


def test_summary_last_values_across_interleaved_key_sets():
    run = nbtracker.init(project="exact")
    for s in range(200):  # two key sets, both open as blocks
        nbtracker.log({"a": float(s), "b": 1.0}, step=2 * s)
        nbtracker.log({"a": -float(s)}, step=2 * s + 1)
    assert run.summary["a"] == -199.0
    nbtracker.log({"a": "text"})
    nbtracker.log({"b": 7.0})
    assert run.summary["a"] == "text" and run.summary["b"] == 7.0
    for s in range(300):
        nbtracker.log({"c": float(s)})
        nbtracker.log({"a": float(s), "c": 0.5}, commit=False)
    run.finish()
    s = nbtracker.Api().run(run.path).summary
    assert s["a"] == 299.0 and s["b"] == 7.0 and s["c"] == 0.5


def test_a_live_run_reads_back_the_replay():
    """Open blocks are not written yet: their rows come from the log."""
    run = nbtracker.init(project="exact")
    _shapes(3000)
    assert_replayed(history(run), run)
    run.finish()
    assert_replayed(history(run), run)


def test_killed_and_resumed_run_reads_back_the_replay():
    code = """
        import os, nbtracker
        run = nbtracker.init(project="exact", id="kill1")
        for s in range(20000):
            nbtracker.log({"a": s * 0.5, "n": s}, commit=False)
            nbtracker.log({"b": -s * 0.25})
            if s % 300 == 0:
                nbtracker.log({"t": "x"})
        os._exit(0)  # no finish(): open blocks are lost, the log holds every row
    """
    run_python(code)
    run = nbtracker.init(project="exact", id="kill1", resume="must")
    for s in range(20000, 30000):
        nbtracker.log({"a": s * 0.5, "n": s}, commit=False)
        nbtracker.log({"b": NAN if s % 7 == 0 else -s * 0.25})
    run.finish()
    df = history(run)
    assert len(df) == 30000 + 67 and df["n"].dropna().tolist() == list(range(30000))
    assert_replayed(df, run)
    assert_replayed(without_blocks(run), run)


def test_step_metric_defined_mid_run_applies_to_a_repeated_key_set():
    """Rows of a key set already seen take the step-sync path once define_metric says so."""
    run = nbtracker.init(project="exact")
    for s in range(100):
        nbtracker.log({"val/acc": s / 100})
    nbtracker.log({"epoch": 7})
    nbtracker.define_metric("val/*", step_metric="epoch")
    nbtracker.log({"val/acc": 0.5})
    run.finish()
    df = history(run)
    assert df["epoch"].tolist()[-2:] == [7, 7]
    assert_replayed(df, run)


def test_none_in_a_text_column_reads_back_as_none():
    run = nbtracker.init(project="exact")
    nbtracker.log({"note": None})
    nbtracker.log({"note": ""})
    nbtracker.log({"note": "ok"})
    nbtracker.finish()
    df = nbtracker.Api().run(run.path).history()
    assert df["note"].tolist() == [None, "", "ok"]
