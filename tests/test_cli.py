"""The `nbtracker` command line, run as a user would (a subprocess)."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from helpers import run_cli, run_python

import nbtracker


@pytest.fixture
def two_runs():
    a = nbtracker.init(project="cli", name="alpha", config={"lr": 0.01, "opt": {"name": "sgd"}})
    for i in range(20):
        nbtracker.log({"loss": 1 / (i + 1), "acc": i / 20})
    nbtracker.run.summary["best"] = 0.5
    a.finish()
    b = nbtracker.init(project="cli", name="beta", config={"lr": 0.1})
    nbtracker.log({"loss": 9.0})
    b.finish()
    other = nbtracker.init(project="elsewhere", name="gamma")
    other.finish()
    return a, b, other


@pytest.mark.parametrize("cmd", ["", "runs", "show", "export", "reindex", "offline", "online",
                                 "version"])
def test_help_everywhere(cmd):
    p = run_cli(*([cmd] if cmd else []), "--help")
    assert "usage: nbtracker" in p.stdout and (cmd in p.stdout)


def test_runs_table_and_formats(two_runs):
    a, b, other = two_runs
    out = run_cli("runs", "cli").stdout
    assert "alpha" in out and "beta" in out and a.id in out and "gamma" not in out
    assert out.index("beta") < out.index("alpha")  # newest first
    assert "finished" in out
    every = run_cli("runs").stdout
    assert "gamma" in every
    rows = [json.loads(line) for line in run_cli("runs", "cli", "--format", "json").stdout.splitlines()]
    assert {r["name"] for r in rows} == {"alpha", "beta"}
    assert next(r for r in rows if r["name"] == "alpha")["config.opt.name"] == "sgd"
    filtered = run_cli("runs", "cli", "--filter", '{"config.lr": 0.01}').stdout
    assert "alpha" in filtered and "beta" not in filtered
    csv = pd.read_csv(io.StringIO(run_cli("runs", "cli", "--format", "csv").stdout))
    assert sorted(csv["name"]) == ["alpha", "beta"]


def test_show_by_path_id_and_name(two_runs):
    a, _, _ = two_runs
    for ref in (f"cli/{a.id}", a.id, "alpha"):
        out = run_cli("show", ref).stdout
        assert f"cli/{a.id}" in out and "lr = 0.01" in out and "opt.name = sgd" in out
        assert "best = 0.5" in out and "loss = 0.05" in out  # summary and last values
        assert "acc = 0.95" in out


def test_export_formats(two_runs, tmp_path):
    a, _, _ = two_runs
    df = pd.read_csv(io.StringIO(run_cli("export", a.id, "--format", "csv").stdout))
    assert len(df) == 20 and df["loss"].tolist() == [1 / (i + 1) for i in range(20)]
    lines = run_cli("export", a.id, "--format", "json").stdout.splitlines()
    assert [json.loads(x)["_step"] for x in lines] == list(range(20))
    out = tmp_path / "h.parquet"
    run_cli("export", a.id, "--format", "parquet", "-o", str(out))
    pq = pd.read_parquet(out)
    assert pq["acc"].tolist() == [i / 20 for i in range(20)]


def test_reindex_after_losing_the_index(two_runs, store):
    (store / "index.sqlite").unlink()
    assert "indexed 3 run(s)" in run_cli("reindex").stdout
    assert "alpha" in run_cli("runs", "cli").stdout


def test_offline_online_persist_and_env_wins(store):
    run_cli("online")
    assert json.loads((store / "settings.json").read_text())["mode"] == "online"
    code = "import nbtracker; r = nbtracker.init(project='m'); print(r.mode); r.finish()"
    assert run_python(code, env={"NBTRACKER_SILENT": "1"}).stdout.strip() == "online"
    run_cli("offline")
    assert run_python(code, env={"NBTRACKER_SILENT": "1"}).stdout.strip() == "offline"
    assert run_python(code, env={"NBTRACKER_SILENT": "1", "NBTRACKER_MODE": "online"}
                      ).stdout.strip() == "online"


def test_version():
    assert run_cli("version").stdout.strip() == f"nbtracker {nbtracker.__version__}"


def test_bad_reference_is_one_line_not_a_traceback(two_runs):
    p = run_cli("show", "no-such-run", check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "no run" in p.stderr
    p = run_cli("runs", "--filter", "{broken", check=False)
    assert p.returncode != 0 and "Traceback" not in p.stderr
