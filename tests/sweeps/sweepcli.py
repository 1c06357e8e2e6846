"""Helpers for tests of sweeps through the command line: `nbtracker sweep` and `nbtracker agent`
as real processes, trial programs that can be held, and a watch on the processes they start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]

# A trial program: logs its parameters and `loss`, and while the file `go` is missing from $WATCH
# it holds: it starts a child, which starts a grandchild that calls setsid() (leaving the trial's
# process group), writes their pids to $WATCH/trial-<run id>.json and waits until the file
# `release` appears. With `fail_on` in $WATCH, the point a == that number exits with status 3.
HOLD_PROGRAM = """
import argparse, json, os, subprocess, sys, time
from pathlib import Path
import nbtracker

p = argparse.ArgumentParser()
p.add_argument("--a", type=int)
p.add_argument("--b", type=int, default=0)
args = p.parse_args()
watch = Path(os.environ["WATCH"])
run = nbtracker.init()
run.log({"loss": float(args.a * 10 + args.b), "a": args.a, "b": args.b})
fail = watch / "fail_on"
if fail.exists() and int(fail.read_text()) == args.a:
    sys.exit(3)
if not (watch / "go").exists():
    base = watch / f"pids-{run.id}"
    grand = ("import os, sys, time; os.setsid(); "
             "open(sys.argv[1] + '.tmp', 'w').write(str(os.getpid())); "
             "os.replace(sys.argv[1] + '.tmp', sys.argv[1]); time.sleep(300)")
    child = ("import subprocess, sys, time; "
             f"subprocess.Popen([sys.executable, '-c', {grand!r}, sys.argv[1] + '.g']); "
             "time.sleep(300)")
    c = subprocess.Popen([sys.executable, "-c", child, str(base)])
    deadline = time.monotonic() + 30
    while not Path(f"{base}.g").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    pids = {"main": os.getpid(), "child": c.pid, "grand": int(Path(f"{base}.g").read_text())}
    tmp = watch / f"trial-{run.id}.tmp"
    tmp.write_text(json.dumps(pids))
    os.replace(tmp, watch / f"trial-{run.id}.json")
    while not (watch / "release").exists():
        time.sleep(0.05)
    c.kill()
run.finish()
"""


def env_for(store: Path | None = None, **extra: str) -> dict[str, str]:
    """The test's environment, this checkout first on PYTHONPATH (trials included)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["NBTRACKER_SYSTEM_INTERVAL"] = "0"
    if store is not None:
        env["NBTRACKER_DIR"] = str(store)
    env.update(extra)
    return env


def nbt(*args: str, env: dict | None = None, cwd: Path | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `nbtracker ARGS` to the end (not checked: tests look at the exit status)."""
    return subprocess.run([sys.executable, "-m", "nbtracker", *args], capture_output=True,
                          text=True, env=env or env_for(), cwd=cwd, timeout=timeout)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def make_sweep(config: str, folder: Path, *args: str, env: dict | None = None) -> str:
    """`nbtracker sweep` of `config` (YAML text, written to folder/sweep.yaml); the id it printed."""
    path = write(folder / "sweep.yaml", config)
    p = nbt("sweep", *args, str(path), env=env)
    assert p.returncode == 0, p.stderr
    sweep_id = p.stdout.strip().splitlines()[-1]
    assert sweep_id.isalnum() and sweep_id.islower(), p.stdout
    return sweep_id


class Agents:
    """`nbtracker agent` processes started by a test; each is killed at teardown if still there,
    with every process of the trials they started (found by pid files in `watch`)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.watch = tmp_path / "watch"
        self.watch.mkdir(exist_ok=True)
        self._seen: set[str] = set()

    def start(self, sweep_id: str, *args: str, env: dict | None = None,
              cwd: Path | None = None) -> subprocess.Popen:
        log = self.tmp / f"agent-{len(self.procs)}.log"
        env = env or env_for()
        env.setdefault("WATCH", str(self.watch))
        with open(log, "wb") as out:
            p = subprocess.Popen([sys.executable, "-m", "nbtracker", "agent", sweep_id, *args],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env=env, cwd=cwd or self.tmp, start_new_session=True)
        self.procs.append(p)
        self.logs.append(log)
        return p

    def log(self, i: int = -1) -> str:
        return self.logs[i].read_text(errors="replace")

    def wait(self, p: subprocess.Popen, timeout: float = 60) -> int:
        try:
            return p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("the agent did not end in time:\n"
                                 + self.log(self.procs.index(p))) from None

    def trial_pids(self, timeout: float = 30) -> dict[str, Any]:
        """The pids a held trial wrote ({"run": id, "main", "child", "grand"}), once it has."""
        def found():
            for f in sorted(self.watch.glob("trial-*.json")):
                d = json.loads(f.read_text())
                if f.stem not in self._seen:
                    self._seen.add(f.stem)
                    return {"run": f.stem.removeprefix("trial-"), **d}
            return None

        return wait_for(found, timeout, "a held trial's pids", self.log)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    pass
                p.wait(timeout=10)
        for f in self.watch.glob("trial-*.json"):
            for pid in json.loads(f.read_text()).values():
                kill(pid)


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def alive(pids) -> list[int]:
    """Those of `pids` that are live processes (zombies count as gone)."""
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


def wait_for(cond: Callable[[], Any], timeout: float, what: str,
             detail: Callable[[], str] | None = None, every: float = 0.05) -> Any:
    """Poll `cond` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}"
                                 + (":\n" + detail() if detail else ""))
        time.sleep(every)


def views(sweep_id: str, root: Path, storage: str | None = None) -> list:
    """The sweep's trials table (engine.TrialView rows)."""
    from nbtracker.sweeps.engine import open_sweep

    return open_sweep(sweep_id, root=root, storage=storage).views()


def sweep_state(sweep_id: str, root: Path) -> str:
    from nbtracker.sweeps.engine import open_sweep

    return open_sweep(sweep_id, root=root).state


# a grid of three points whose program (HOLD_PROGRAM) holds each trial until told
HOLD_SWEEP = """
program: train.py
method: grid
project: held
metric: {name: loss, goal: minimize}
parameters:
  a: {values: [1, 2, 3]}
"""
