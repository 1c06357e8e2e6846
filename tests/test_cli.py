"""The `nbtracker` command line, run as a user runs it: in a separate process."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pandas as pd
import pytest
from helpers import REPO, run_cli, run_python

import nbtracker

COMMANDS = ["runs", "show", "export", "reindex", "offline", "online", "version"]

STEPS = 20
LOSS = [1 / (i + 1) for i in range(STEPS)]
ACC = [i / STEPS for i in range(STEPS)]
VAL = [(abs(i - 10) + 1) / 8 for i in range(STEPS)]  # lowest in the middle, not at the end


@pytest.fixture
def logged():
    """Three runs: alpha (finished, 20 steps), beta (failed) in project "cli"; gamma elsewhere."""
    alpha = nbtracker.init(project="cli", name="alpha", config={"lr": 0.01, "opt": {"name": "sgd"}})
    nbtracker.define_metric("val_loss", summary="min")
    for i in range(STEPS):
        nbtracker.log({"loss": LOSS[i], "acc": ACC[i], "val_loss": VAL[i]})
    nbtracker.run.summary["best"] = 0.5
    alpha.finish()
    beta = nbtracker.init(project="cli", name="beta", config={"lr": 0.1})
    nbtracker.log({"loss": 9.0})
    beta.finish(exit_code=1)
    gamma = nbtracker.init(project="elsewhere", name="gamma")
    nbtracker.log({"loss": 3.0})
    gamma.finish()
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


def line_of(out: str, run_id: str) -> str:
    lines = [ln for ln in out.splitlines() if run_id in ln]
    assert len(lines) == 1, out
    return lines[0]


def sections(show_output: str) -> dict[str, dict[str, str]]:
    """The `key = value` lines of `nbtracker show`, by section title."""
    out: dict[str, dict[str, str]] = {}
    current = None
    for ln in show_output.splitlines():
        if ln and not ln.startswith(" ") and ln.endswith(":"):
            current = out.setdefault(ln[:-1], {})
        elif current is not None and ln.startswith("  ") and " = " in ln:
            k, _, v = ln.strip().partition(" = ")
            current[k] = v
    return out


def json_lines(text: str) -> list[dict]:
    return [json.loads(ln) for ln in text.splitlines() if ln.strip()]


# -- help and version ------------------------------------------------------------------------

def test_top_level_help_lists_every_command():
    p = run_cli("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: nbtracker")
    listed = {ln.split()[0] for ln in p.stdout.splitlines() if ln.startswith("    ")}
    assert set(COMMANDS) <= listed


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help(cmd):
    p = run_cli(cmd, "--help")
    assert p.returncode == 0
    assert p.stdout.startswith(f"usage: nbtracker {cmd}")
    assert p.stderr == ""


def test_version_is_the_package_version():
    p = run_cli("version")
    assert p.stdout.strip() == f"nbtracker {nbtracker.__version__}"


# -- runs ------------------------------------------------------------------------------------

def test_runs_lists_names_ids_and_states(logged):
    alpha, beta, gamma = logged["alpha"], logged["beta"], logged["gamma"]
    live = nbtracker.init(project="cli", name="delta")  # still running while the CLI looks
    nbtracker.log({"loss": 1.0})
    out = run_cli("runs", "cli").stdout
    for run, state in ((alpha, "finished"), (beta, "failed"), (live, "running")):
        cells = line_of(out, run.id).split()
        assert cells[0] == run.id and run.name in cells and state in cells
    assert line_of(out, alpha.id).split()[-2] == str(STEPS)  # STEPS column
    assert gamma.id not in out and "gamma" not in out
    # newest first
    assert out.index(live.id) < out.index(beta.id) < out.index(alpha.id)
    everything = run_cli("runs").stdout
    assert gamma.id in everything and alpha.id in everything
    live.finish()


def test_runs_json_format(logged):
    rows = json_lines(run_cli("runs", "cli", "--format", "json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert set(by_name) == {"alpha", "beta"}
    a = by_name["alpha"]
    assert a["id"] == logged["alpha"].id and a["state"] == "finished"
    assert a["config.lr"] == 0.01 and a["config.opt.name"] == "sgd"
    assert a["summary.loss"] == pytest.approx(LOSS[-1]) and a["summary.val_loss"] == min(VAL)
    assert a["summary.best"] == 0.5
    assert by_name["beta"]["state"] == "failed" and by_name["beta"]["summary.loss"] == 9.0


def test_runs_filter(logged):
    out = run_cli("runs", "cli", "--filter", '{"config.lr": 0.01}').stdout
    assert logged["alpha"].id in out and logged["beta"].id not in out
    rows = json_lines(run_cli("runs", "--filter", '{"summary.loss": {"$gt": 2}}',
                              "--format", "json").stdout)
    assert {r["name"] for r in rows} == {"beta", "gamma"}


def test_runs_of_an_empty_project_says_so(logged):
    p = run_cli("runs", "no-such-project")
    assert p.returncode == 0 and logged["alpha"].id not in p.stdout
    assert "no runs" in p.stdout


# -- show ------------------------------------------------------------------------------------

def test_show_by_path_id_and_unique_name(logged):
    alpha = logged["alpha"]
    for ref in (f"cli/{alpha.id}", alpha.id, "alpha"):
        out = run_cli("show", ref).stdout
        assert f"cli/{alpha.id}" in out and "alpha" in out and "finished" in out
        s = sections(out)
        assert s["config"] == {"lr": "0.01", "opt.name": "sgd"}
        summary, last = s["summary"], s["last values"]
        assert float(summary["loss"]) == pytest.approx(LOSS[-1], rel=1e-5)
        assert float(summary["acc"]) == pytest.approx(ACC[-1], rel=1e-5)
        assert float(summary["val_loss"]) == pytest.approx(min(VAL), rel=1e-5)
        assert float(summary["best"]) == 0.5
        assert float(last["val_loss"]) == pytest.approx(VAL[-1], rel=1e-5)
        assert float(last["loss"]) == pytest.approx(LOSS[-1], rel=1e-5)
        assert "best" not in last


# -- export ----------------------------------------------------------------------------------

def test_export_csv_json_parquet(logged, tmp_path):
    alpha = logged["alpha"]
    df = pd.read_csv(io.StringIO(run_cli("export", alpha.id, "--format", "csv").stdout))
    assert len(df) == STEPS and df["_step"].tolist() == list(range(STEPS))
    assert df["loss"].tolist() == LOSS and df["acc"].tolist() == ACC
    assert df["val_loss"].tolist() == VAL

    rows = json_lines(run_cli("export", f"cli/{alpha.id}", "--format", "json").stdout)
    assert [r["_step"] for r in rows] == list(range(STEPS))
    assert [r["loss"] for r in rows] == pytest.approx(LOSS)

    out = tmp_path / "alpha.parquet"
    p = run_cli("export", "alpha", "--format", "parquet", "-o", str(out))
    assert f"wrote {STEPS} rows" in p.stderr
    pq = pd.read_parquet(out)
    assert len(pq) == STEPS and pq["_step"].tolist() == list(range(STEPS))
    assert pq["acc"].tolist() == ACC and pq["val_loss"].tolist() == VAL
    assert {"_runtime", "_timestamp"} <= set(pq.columns)


def test_export_merges_rows_of_one_step(tmp_path):
    run = nbtracker.init(project="cli", name="merged")
    for epoch in range(5):
        nbtracker.log({"train_loss": epoch + 0.5}, step=epoch)
        nbtracker.log({"val_loss": epoch + 0.25}, step=epoch)
    run.finish()
    df = pd.read_csv(io.StringIO(run_cli("export", run.id).stdout))
    assert df["_step"].tolist() == list(range(5))
    assert df["train_loss"].tolist() == [e + 0.5 for e in range(5)]
    assert df["val_loss"].tolist() == [e + 0.25 for e in range(5)]


def test_export_parquet_of_mixed_type_column(tmp_path):
    run = nbtracker.init(project="cli")
    nbtracker.log({"phase": "warmup", "loss": 1.0})
    nbtracker.log({"phase": 2, "loss": 0.5})
    run.finish()
    out = tmp_path / "mixed.parquet"
    p = run_cli("export", run.id, "--format", "parquet", "-o", str(out), check=False)
    assert "Traceback" not in p.stderr
    assert p.returncode == 0 and pd.read_parquet(out)["loss"].tolist() == [1.0, 0.5]


def test_output_cut_short_by_the_reader_is_not_an_error():
    run = nbtracker.init(project="cli", id="long")
    for i in range(5000):
        nbtracker.log({"loss": 1 / (i + 1), "acc": i / 5000})
    run.finish()
    p = subprocess.Popen([sys.executable, "-m", "nbtracker", "export", "long"], cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b"_step,")
    p.stdout.close()  # as `| head -1` does
    rc = p.wait(timeout=60)
    err = p.stderr.read().decode()
    p.stderr.close()
    assert rc == 0 and "Broken pipe" not in err and "Traceback" not in err


# -- reindex ---------------------------------------------------------------------------------

def test_reindex_after_losing_the_index(logged, store):
    (store / "index.sqlite").unlink()
    p = run_cli("reindex")
    assert f"indexed {len(logged)} run(s)" in p.stdout
    assert (store / "index.sqlite").exists()
    out = run_cli("runs").stdout
    for run in logged.values():
        assert run.id in line_of(out, run.id) and run.name in line_of(out, run.id)
    assert "alpha" in run_cli("show", "alpha").stdout


def test_runs_survive_a_damaged_index(logged, store):
    (store / "index.sqlite").write_bytes(b"this is not a database" * 100)
    out = run_cli("runs", "cli").stdout
    assert logged["alpha"].id in out and logged["beta"].id in out
    assert f"indexed {len(logged)} run(s)" in run_cli("reindex").stdout


# -- offline / online ------------------------------------------------------------------------

MODE_OF_A_NEW_RUN = """
    import nbtracker
    run = nbtracker.init(project="modes")
    print(run.mode)
    run.finish()
"""


def test_offline_online_persist_the_default_mode(store):
    silent = {"NBTRACKER_SILENT": "1"}
    p = run_cli("online")
    assert "online" in p.stdout
    assert json.loads((store / "settings.json").read_text())["mode"] == "online"
    assert run_python(MODE_OF_A_NEW_RUN, env=silent).stdout.strip() == "online"
    run_cli("offline")
    assert json.loads((store / "settings.json").read_text())["mode"] == "offline"
    assert run_python(MODE_OF_A_NEW_RUN, env=silent).stdout.strip() == "offline"
    # the environment wins over the persisted mode
    assert run_python(MODE_OF_A_NEW_RUN, env={**silent, "NBTRACKER_MODE": "online"}
                      ).stdout.strip() == "online"


# -- errors ----------------------------------------------------------------------------------

def assert_one_line_error(p: subprocess.CompletedProcess) -> None:
    assert p.returncode != 0
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith("nbtracker: ")


@pytest.mark.parametrize("args", [("show", "no-such-run"), ("show", "cli/nosuchid"),
                                  ("export", "nosuchid"), ("show", "../../etc")])
def test_bad_run_reference_is_a_one_line_error(logged, args):
    p = run_cli(*args, check=False)
    assert_one_line_error(p)
    assert p.stdout == ""


def test_ambiguous_run_name_is_a_one_line_error_naming_the_runs():
    ids = []
    for _ in range(2):
        with nbtracker.init(project="cli", name="twin", reinit=True) as run:
            run.log({"x": 1})
        ids.append(run.id)
    p = run_cli("show", "twin", check=False)
    assert_one_line_error(p)
    assert all(f"cli/{i}" in p.stderr for i in ids)
    assert ids[0] in run_cli("show", f"cli/{ids[0]}").stdout


def test_malformed_filter_is_a_one_line_error(logged):
    assert_one_line_error(run_cli("runs", "--filter", "{broken", check=False))


@pytest.mark.parametrize("flt", ['{"config.lr": {"$almost": 1}}', "[1]"])
def test_unusable_filter_is_a_one_line_error(logged, flt):
    assert_one_line_error(run_cli("runs", "--filter", flt, check=False))
