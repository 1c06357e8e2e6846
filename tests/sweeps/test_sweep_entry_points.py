"""`nbtracker.agent` and `nbtracker.sweep` stay the functions whatever was imported or called
before: the submodule `nbtracker.sweeps.agent` shares the function's name, and importing a
submodule binds it on its package."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("optuna")

PROGRAM = """
import nbtracker
sid = nbtracker.sweep({"method": "random", "parameters": {"a": {"values": [1, 2]}}}, project="p")

def train():
    nbtracker.init().finish()

assert nbtracker.agent(sid, function=train, count=1) == 1
assert nbtracker.agent(sid, function=train, count=1) == 1   # a second call, as in a notebook
import nbtracker.sweeps.agent                                 # the submodule, imported by name
from nbtracker.sweeps import agent
assert callable(agent) and callable(nbtracker.agent), (agent, nbtracker.agent)
assert nbtracker.agent(sid, function=train, count=1) == 1
print("ok")
"""


def test_agent_can_be_called_again(store):
    env = {"NBTRACKER_DIR": str(store), "NBTRACKER_SILENT": "true", "PATH": "/usr/bin:/bin"}
    import os

    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"
