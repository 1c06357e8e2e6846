"""%tracker argument parsing and behaviour in an IPython shell (no browser needed)."""

from __future__ import annotations

import pytest

import nbtracker
from nbtracker.notebook.magics import MagicUsageError, _init_parser, parse_config, parse_filter, parse_value


def test_values_and_config():
    assert parse_value("1e-3") == 0.001 and parse_value("5") == 5
    assert parse_value("adam") == "adam" and parse_value("True") is True
    assert parse_value("false") is False and parse_value("none") is None
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_config(["lr=1e-3", "epochs=5", "opt=adam", "expr=a=b"]) == {
        "lr": 0.001, "epochs": 5, "opt": "adam", "expr": "a=b"}
    with pytest.raises(MagicUsageError, match="key=value"):
        parse_config(["lr"])


def test_init_options():
    a = _init_parser().parse_args(
        "--project mnist --name baseline --group sweep1 --tags cnn,small lr=1e-3".split())
    assert (a.project, a.name, a.group, a.tags, a.config) == (
        "mnist", "baseline", "sweep1", "cnn,small", ["lr=1e-3"])
    assert _init_parser().parse_args(["--id", "x1", "--resume"]).resume == "allow"
    with pytest.raises(MagicUsageError, match="invalid choice.*--help"):
        _init_parser().parse_args(["--mode", "sometimes"])


def test_filters():
    assert parse_filter('{"config.lr": 0.01}') == {"config.lr": 0.01}
    assert parse_filter("config.lr > 0.001") == {"config.lr": {"$gt": 0.001}}
    assert parse_filter("state == finished and summary.acc >= 0.9") == {"$and": [
        {"state": {"$eq": "finished"}}, {"summary.acc": {"$gte": 0.9}}]}
    assert parse_filter("name =~ ^base") == {"name": {"$regex": "^base"}}
    assert parse_filter(None) is None
    for bad in ("config.lr", "{not json", "a >> 3"):
        with pytest.raises(MagicUsageError):
            parse_filter(bad)


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    return ip


def test_bad_arguments_print_one_line(shell, capsys):
    for line in ("frobnicate", "init --mode sometimes", "compare", "runs --filter 'a >> 1'",
                 "silent maybe", "init lr"):
        shell.run_line_magic("tracker", line)
        err = capsys.readouterr().err.strip()
        assert err.startswith("nbtracker:") and "Traceback" not in err, line
        assert len(err.splitlines()) == 1, err


def test_init_finish_and_cell_magic_states(shell, capsys):
    shell.run_line_magic("tracker", "init --project mag --name first --tags a,b lr=0.5 --no-panel")
    run = nbtracker.run
    assert run.name == "first" and run.tags == ("a", "b") and run.config["lr"] == 0.5
    shell.run_line_magic("tracker", "init --project mag --name second --no-panel")
    assert nbtracker.Api().run(run.path).state == "finished"  # re-running init finishes it
    shell.run_line_magic("tracker", "finish")
    assert nbtracker.run is None

    shell.run_cell_magic("tracker", "--project mag --name ok --no-panel",
                         "import nbtracker\nnbtracker.log({'x': 1})")
    shell.run_cell_magic("tracker", "--project mag --name bad --no-panel",
                         "raise ValueError('boom')")
    shell.run_cell_magic("tracker", "--project mag --name stop --no-panel",
                         "raise KeyboardInterrupt")
    states = {r.name: r.state for r in nbtracker.Api().runs("mag")}
    assert states == {"first": "finished", "second": "finished", "ok": "finished",
                      "bad": "failed", "stop": "interrupted"}
    assert nbtracker.run is None
    shell.run_cell("1 + 1")  # the shell is still usable


def test_status_and_silent(shell, capsys):
    shell.run_line_magic("tracker", "status")
    assert "no active run" in capsys.readouterr().out
    shell.run_line_magic("tracker", "silent on")
    shell.run_line_magic("tracker", "init --project mag --no-panel")
    nbtracker.log({"a": object()})
    shell.run_line_magic("tracker", "finish")
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    shell.run_line_magic("tracker", "silent off")


def test_runs_group_by_and_panel_mode(shell, capsys, monkeypatch):
    from nbtracker.notebook import live, magics

    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    for name, g in [("a", "x"), ("b", "y"), ("c", "x")]:
        with nbtracker.init(project="grp", name=name, group=g) as r:
            r.log({"loss": 1.0})
    shell.run_line_magic("tracker", "runs grp --group-by group")
    assert shown[-1].group_by == "group" and shown[-1].count == 3
    monkeypatch.setattr(live, "_mode", None)
    monkeypatch.delenv(live.PANEL_ENV, raising=False)
    assert live.panel_mode() == "widget"
    shell.run_line_magic("tracker", "panel static")
    assert live.panel_mode() == "static" and "static" in capsys.readouterr().out
    shell.run_line_magic("tracker", "panel sometimes")
    assert "usage: %tracker panel" in capsys.readouterr().err
    assert live.panel_mode() == "static"
    shell.run_line_magic("tracker", "panel auto")
    monkeypatch.setitem(__import__("sys").modules, "google.colab", object())
    assert live.panel_mode() == "static"  # Colab: static by default
