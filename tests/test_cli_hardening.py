"""The command line under bad input: filters that cannot be read, exact export of awkward numbers,
and run text that tries to drive the terminal."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest
from helpers import run_cli

import nbtracker
from nbtracker.store.recordlog import encode, pack, read_records

BAD_FILTERS = [
    "{not json",
    '{"name": {"$regex": "("}}',
    '{"name": {"$in": "alpha"}}',
    '{"name": {"$nin": 3}}',
    '{"name": {"$like": "a%"}}',
    '{"$where": "1"}',
    '{"name": {"$options": "i"}}',
    '{"name": {"$regex": "a", "$options": "q"}}',
    '{"$or": {"name": "a"}}',
    "[1, 2]",
]


@pytest.mark.parametrize("expr", BAD_FILTERS)
def test_bad_filter_is_one_line_and_exit_2(expr):
    run = nbtracker.init(project="cli", name="alpha")
    run.finish()
    p = run_cli("runs", "--filter", expr, check=False)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("nbtracker: ")
    assert p.stdout == ""


def test_regex_options_and_nan_filters_from_the_command_line():
    a = nbtracker.init(project="cli", name="Baseline-1", config={"x": math.nan, "y": math.inf})
    a.finish()
    b = nbtracker.init(project="cli", name="tuned", config={"x": 1.0, "y": 2.0})
    b.finish()

    def ids(expr: str) -> set[str]:
        p = run_cli("runs", "cli", "--filter", expr, "--format", "json")
        return {json.loads(line)["id"] for line in p.stdout.splitlines()}

    assert ids('{"name": {"$regex": "^base", "$options": "i"}}') == {a.id}
    assert ids('{"config.x": NaN}') == {a.id}
    assert ids('{"config.y": {"$gt": 1e308}}') == {a.id}
    assert ids('{"config.y": {"$lt": Infinity}}') == {b.id}


# -- export ------------------------------------------------------------------------------

def append_history(run, step: int, values: dict) -> None:
    """Append a history record to a finished run's log, as another writer of the format would
    (large integers through the log's own codec)."""
    log = Path(run.dir).parent / "records.jsonl"
    last = list(read_records(log))[-1]
    d, nf = pack(values)
    rec = {"t": "history", "seq": last["seq"] + 1, "ts": last["ts"], "step": step, "d": d}
    if nf:
        rec["nf"] = nf
    with open(log, "ab") as f:
        f.write(encode(rec))


AWKWARD = [
    {"v": 0.1 + 0.2, "ts": 1796004006.8876281, "n": 2**63, "f": math.nan, "g": math.inf},
    {"v": 1 / 3, "ts": 1e-300, "n": 2**63 + 1, "f": -math.inf, "g": 5},
    {"v": 123456789.12345679, "n": -(2**62) - 3},  # no f, g: missing, not NaN
]


@pytest.fixture
def awkward():
    run = nbtracker.init(project="exp", name="awkward")
    for row in AWKWARD:
        nbtracker.log(row)
    run.finish()
    append_history(run, 3, {"n": 2**70, "v": 2.5})
    return run


def same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def expected_rows() -> list[dict]:
    return [*AWKWARD, {"n": 2**70, "v": 2.5}]


def test_export_json_is_exact(awkward):
    p = run_cli("export", f"exp/{awkward.id}", "--format", "json")
    lines = p.stdout.splitlines()
    assert len(lines) == 4
    assert "NaN" in lines[0] and "Infinity" in lines[0] and "-Infinity" in lines[1]
    rows = [json.loads(line) for line in lines]
    for i, (got, want) in enumerate(zip(rows, expected_rows())):
        assert got["_step"] == i
        for k in ("v", "ts", "n", "f", "g"):
            assert same(got[k], want.get(k)), (i, k, got[k], want.get(k))
    assert repr(rows[0]["v"]) == "0.30000000000000004"
    # the times are the log's, to the last bit
    log_ts = [r["ts"] for r in read_records(Path(awkward.dir).parent / "records.jsonl")
              if r["t"] == "history"]
    assert [r["_timestamp"] for r in rows] == log_ts


def test_export_csv_is_exact(awkward, tmp_path):
    out = tmp_path / "h.csv"
    p = run_cli("export", awkward.id, "--format", "csv", "-o", str(out))
    assert "wrote 4 rows" in p.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4
    for got, want in zip(rows, expected_rows()):
        assert float(got["v"]) == want["v"] and int(got["n"]) == want["n"]
        assert float(got["ts"]) == want["ts"] if "ts" in want else got["ts"] == ""
        for k in ("f", "g"):
            if k in want:
                assert same(float(got[k]) if isinstance(want[k], float) else int(got[k]), want[k])
            else:
                assert got[k] == ""  # missing stays distinguishable from NaN
    assert rows[0]["v"] == "0.30000000000000004" and rows[3]["n"] == str(2**70)


# -- terminal escapes -------------------------------------------------------------------

EVIL = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil\r\n"
CONTROL = [chr(c) for c in (*range(0x20), *range(0x7f, 0xa0))] + ["\u202e", "\u2066", "\u2028"]


def assert_clean(text: str) -> None:
    bad = sorted({c for c in text if c in CONTROL and c != "\n"})
    assert not bad, [hex(ord(c)) for c in bad]


def test_runs_and_show_escape_control_characters():
    run = nbtracker.init(project="esc", name="n" + EVIL, group="g" + EVIL, job_type="j" + EVIL,
                         tags=["t" + EVIL], notes="notes" + EVIL,
                         config={"k" + EVIL: "v" + EVIL, "plain": "v" + EVIL})
    nbtracker.log({"loss" + EVIL: 1.0, "text": "s" + EVIL})
    run.summary["sum" + EVIL] = "x" + EVIL
    nbtracker.alert("title" + EVIL, "text" + EVIL)
    run.finish()

    for args in (("runs",), ("runs", "esc"), ("show", f"esc/{run.id}")):
        p = run_cli(*args)
        assert_clean(p.stdout)
        assert_clean(p.stderr)
        assert "\\x1b" in p.stdout, (args, p.stdout)
    show = run_cli("show", run.id).stdout
    for text in ("n", "g", "notes", "t", "title", "text", "sum"):
        assert text + "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\u202eevil\\r\\n" in show, text

    # a name given later through the Api is shown escaped too
    r = nbtracker.Api().run(f"esc/{run.id}")
    r.name = "renamed\x1b[31m"
    r.update()
    p = run_cli("runs", "esc")
    assert_clean(p.stdout)
    assert "renamed\\x1b[31m" in p.stdout



def test_runs_json_and_csv_keep_config_and_summary_exact():
    run = nbtracker.init(project="exact", name="r", config={"lr": 0.1 + 0.2, "n": 2**63 + 5,
                                                          "x": math.nan, "big": 2**70})
    nbtracker.log({"acc": 1 / 3, "loss": math.inf})
    run.summary["best"] = 2 / 3
    run.finish()
    p = run_cli("runs", "exact", "--format", "json")
    (row,) = [json.loads(line) for line in p.stdout.splitlines()]
    assert row["config.lr"] == 0.1 + 0.2 and row["config.n"] == 2**63 + 5
    assert row["config.big"] == 2**70 and math.isnan(row["config.x"])
    assert row["summary.acc"] == 1 / 3 and row["summary.best"] == 2 / 3
    assert row["summary.loss"] == math.inf
    assert row["name"] == "r" and row["created_at"].endswith("Z")

    p = run_cli("runs", "exact", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(p.stdout)))
    assert row["config.lr"] == "0.30000000000000004" and row["config.big"] == str(2**70)
    assert row["config.n"] == str(2**63 + 5) and row["config.x"] == "nan"
    assert row["summary.acc"] == repr(1 / 3) and row["summary.loss"] == "inf"


def test_show_prints_values_exactly():
    run = nbtracker.init(project="exact", name="s", config={"lr": 0.1 + 0.2, "big": 2**70,
                                                          "x": -math.inf})
    nbtracker.log({"acc": 1 / 3, "n": 2**63 + 1})
    run.finish()
    out = run_cli("show", run.id).stdout
    for line in ("lr = 0.30000000000000004", f"big = {2**70}", "x = -inf",
                 f"acc = {1 / 3!r}", f"n = {2**63 + 1}"):
        assert f"  {line}\n" in out, (line, out)


def run_cli_on_a_terminal(*args: str) -> str:
    """The CLI's stdout when it is a terminal (a pseudo-terminal here)."""
    import os
    import pty
    import subprocess
    import sys

    from helpers import REPO

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    master, slave = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "nbtracker", *args], stdout=slave,
                         stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(timeout=60) == 0
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_csv_on_a_terminal_is_escaped_but_exact_in_a_pipe():
    run = nbtracker.init(project="tty", name="n" + EVIL, config={"c": "v" + EVIL})
    nbtracker.log({"text": "s" + EVIL})
    run.finish()
    for args in (("runs", "tty", "--format", "csv"), ("export", run.id, "--format", "csv")):
        shown = run_cli_on_a_terminal(*args)
        assert_clean(shown)
        assert "\\x1b]0;owned" in shown
        piped = run_cli(*args).stdout
        assert EVIL.replace("\r\n", "") in piped.replace("\r\n", "")  # data kept as it is


def test_export_parquet_keeps_ints_beyond_64_bits_as_their_digits(tmp_path):
    import pandas as pd

    run = nbtracker.init(project="pq", id="pq1")
    nbtracker.log({"n": 2**63 - 1, "x": 0.1 + 0.2})
    nbtracker.log({"n": 2**70, "x": 1.5})
    nbtracker.finish()
    out = tmp_path / "h.parquet"
    p = run_cli("export", run.path, "--format", "parquet", "-o", str(out))
    assert "Traceback" not in p.stderr
    df = pd.read_parquet(out)
    assert [int(v) for v in df["n"]] == [2**63 - 1, 2**70]
    assert df["x"].tolist() == [0.1 + 0.2, 1.5]
