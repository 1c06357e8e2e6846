"""Shared fixtures: every test gets its own store root and a clean nbtracker state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import nbtracker
from nbtracker.sdk import init as sdk_init
from nbtracker.sdk import output

# Console and code capture add records and files to every run, which tests of other things count:
# off for them (also in module-scoped fixtures, which run before `store`), on where they are
# tested (test_console.py, test_code.py).
CAPTURE_OFF = {"NBTRACKER_CONSOLE": "off", "NBTRACKER_DISABLE_CODE": "true"}
os.environ.update(CAPTURE_OFF)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch) -> Path:
    """A fresh store root (NBTRACKER_DIR) and no run left over from another test."""
    root = tmp_path / "store"
    for var in list(os.environ):
        if var.startswith(("NBTRACKER_", "WANDB_")):
            monkeypatch.delenv(var)
    monkeypatch.setenv("NBTRACKER_DIR", str(root))
    for k, v in CAPTURE_OFF.items():
        monkeypatch.setenv(k, v)
    monkeypatch.chdir(tmp_path)
    output.set_silent(None)
    yield root
    for run in list(sdk_init._active):
        run.finish(quiet=True)
    sdk_init.pending_config = nbtracker.Config()
    output.set_silent(None)
