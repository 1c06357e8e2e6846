"""What the agent prints follows nbtracker's output rules: silent when asked, and a value's
control characters never reach the terminal as such."""

from __future__ import annotations

import pytest

import nbtracker

pytest.importorskip("optuna")


def _train():
    nbtracker.init()
    nbtracker.log({"loss": 1.0})


def test_a_silent_agent_prints_nothing(capfd, monkeypatch):
    sid = nbtracker.sweep({"method": "grid", "parameters": {"x": {"values": [1, 2]}}})
    capfd.readouterr()
    monkeypatch.setenv("NBTRACKER_SILENT", "true")
    assert nbtracker.agent(sid, function=_train) == 2
    assert capfd.readouterr().err == ""


def test_parameter_values_cannot_drive_the_terminal(capfd):
    sid = nbtracker.sweep({"method": "grid", "parameters": {
        "name": {"values": ["\x1b]0;owned\x07\x1b[2J", "plain"]}}})
    nbtracker.agent(sid, function=_train)
    err = capfd.readouterr().err
    assert "\x1b" not in err and "\x07" not in err
    assert "\\x1b]0;owned\\x07" in err
