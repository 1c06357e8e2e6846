"""System metrics: the sampler records the machine's load at the configured interval, stops at
finish, is off when asked, and reads back as `history(stream="system")` — locally and from a
team server."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from helpers import run_python

import nbtracker
from nbtracker.errors import UsageError
from nbtracker.sdk.system import gpu_values
from nbtracker.store import layout
from nbtracker.store.recordlog import read_records

THREAD = "nbtracker-system"
KEYS = {"cpu", "proc.cpu", "proc.cpu.threads", "memory", "memory.availableMB",
        "proc.memory.rssMB", "proc.memory.percent", "disk", "disk.in", "disk.out",
        "network.sent", "network.recv"}


def _samplers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD]


def _system_records(run) -> list[dict]:
    return [r for r in read_records(Path(run.storage_dir) / layout.LOG_NAME) if r["t"] == "system"]


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """A run sampled every 0.2 s for about 1.2 s (its first sample, then 1 s more) while it
    logs, with the samples the live panel was sent and the sampler threads seen while it ran."""
    root = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.startswith(("NBTRACKER_", "WANDB_")):
                mp.delenv(var)
        mp.setenv("NBTRACKER_DIR", str(root))
        mp.setenv("NBTRACKER_SILENT", "true")
        run = nbtracker.init(project="sys", settings={"system_interval": 0.2})
        events = []
        run.add_event_listener(lambda kind, payload: events.append((kind, payload)))
        t0 = time.time()
        while time.time() - t0 < 5 and not events:  # the first sample: psutil is imported
            run.log({"loss": 1.0})
            time.sleep(0.02)
        t0 = time.time()
        while time.time() - t0 < 1.0:  # five more
            run.log({"loss": 1.0})
            time.sleep(0.05)
        running = _samplers()
        run.finish()
        r = nbtracker.Api(dir=str(root)).run(run.path)
    return run, r, events, running


def test_samples_at_the_configured_interval(sampled):
    run, r, events, running = sampled
    assert len(running) == 1 and running[0].daemon
    df = r.history(stream="system")
    assert 5 <= len(df) <= 7, df
    ts = df["_timestamp"].to_numpy()
    gaps = ts[1:] - ts[:-1]
    assert (gaps > 0).all()
    assert 0.15 < float(pd.Series(gaps).median()) < 0.3, gaps
    runtime = df["_runtime"].to_numpy()
    assert 0.2 < runtime[0] < 5 and (runtime[1:] > runtime[:-1]).all()
    assert abs(df["_timestamp"].iloc[0] - r.created - runtime[0]) < 1e-6


def test_the_samples_hold_plausible_numbers_and_no_gpu_keys(sampled):
    _, r, _, _ = sampled
    df = r.history(stream="system")
    assert set(df.columns) == {f"system.{k}" for k in KEYS} | {"_runtime", "_timestamp"}
    assert list(df.columns[-2:]) == ["_runtime", "_timestamp"]
    cores = os.cpu_count() or 1
    assert df["system.cpu"].between(0, 100).all()
    assert df["system.proc.cpu"].between(0, 100 * cores + 1).all()
    assert (df["system.proc.memory.rssMB"] > 1).all()
    assert df["system.proc.memory.percent"].between(0, 100).all()
    assert df["system.memory"].between(0, 100).all() and (df["system.memory.availableMB"] > 0).all()
    assert df["system.disk"].between(0, 100).all()
    assert (df["system.proc.cpu.threads"] >= 2).all()  # the main thread and the sampler
    for k in ("disk.in", "disk.out", "network.sent", "network.recv"):  # since the start
        col = df[f"system.{k}"]
        assert (col >= 0).all() and col.is_monotonic_increasing, k
    assert not [c for c in df.columns if c.startswith("system.gpu")]  # no GPU on this machine


def test_the_live_panel_gets_each_sample_as_recorded(sampled):
    run, r, events, _ = sampled
    recs = _system_records(run)
    assert [k for k, _ in events] == ["system"] * len(recs)
    assert [p["ts"] for _, p in events] == [rec["ts"] for rec in recs]
    assert [p["d"] for _, p in events] == [rec["d"] for rec in recs]


def test_the_sampler_is_gone_after_finish_and_the_history_is_untouched(sampled):
    run, r, _, running = sampled
    assert not running[0].is_alive() and not _samplers()
    h = r.history()
    assert list(h.columns) == ["_step", "loss", "_runtime", "_timestamp"]
    assert len(h) == run.steps


def test_history_stream_options(sampled):
    _, r, _, _ = sampled
    full = r.history(stream="system")
    some = r.history(stream="system", keys=["cpu", "system.memory"], samples=3)
    assert list(some.columns) == ["system.cpu", "system.memory", "_runtime", "_timestamp"]
    picked = some["_timestamp"].tolist()
    assert len(picked) == 3 and picked == sorted(picked)
    assert set(picked) <= set(full["_timestamp"])
    assert picked[0] == full["_timestamp"].iloc[0] and picked[-1] == full["_timestamp"].iloc[-1]
    rows = r.history(stream="system", pandas=False)
    assert len(rows) == len(full) and set(rows[0]) == set(full.columns)
    assert rows[0]["system.cpu"] == full["system.cpu"].iloc[0]
    assert r.history(stream="events")["_timestamp"].tolist() == full["_timestamp"].tolist()
    with pytest.raises(UsageError, match="stream"):
        r.history(stream="gpu")


def test_finish_stops_the_sampler_promptly_between_samples():
    run = nbtracker.init(project="sys", settings={"system_interval": 60})
    time.sleep(0.2)
    assert len(_samplers()) == 1
    t0 = time.monotonic()
    run.finish(quiet=True)
    assert time.monotonic() - t0 < 1.0
    assert not _samplers() and not _system_records(run)  # the first sample was not due yet


@pytest.mark.parametrize("how", ["setting", "env_interval", "env_disable", "settings_disable"])
def test_off(how, monkeypatch):
    kw = {}
    if how == "setting":
        kw = {"settings": {"system_interval": 0}}
    elif how == "env_interval":
        monkeypatch.setenv("NBTRACKER_SYSTEM_INTERVAL", "0")
    elif how == "env_disable":
        monkeypatch.setenv("NBTRACKER_DISABLE_STATS", "true")
    else:
        kw = {"settings": {"disable_stats": True}}
    run = nbtracker.init(project="off", **kw)
    assert not _samplers()
    time.sleep(0.3)
    run.finish(quiet=True)
    assert not _system_records(run)
    df = nbtracker.Api().run(run.path).history(stream="system")
    assert len(df) == 0 and list(df.columns) == ["_runtime", "_timestamp"]


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("NBTRACKER_SYSTEM_INTERVAL", "0.1")
    run = nbtracker.init(project="env")
    time.sleep(0.45)
    run.finish(quiet=True)
    assert 2 <= len(_system_records(run)) <= 5


def test_a_forked_child_has_no_sampler_and_the_parent_keeps_sampling():
    run = nbtracker.init(project="fork", settings={"system_interval": 0.1})
    time.sleep(0.15)
    pid = os.fork()
    if pid == 0:  # the child: no sampler thread, and finishing the parent's run is a no-op
        code = 1
        try:
            if not _samplers():
                run.finish(quiet=True)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    before = len(_system_records(run))
    time.sleep(0.35)
    run.finish(quiet=True)
    after = _system_records(run)
    assert len(after) > before and len({r["seq"] for r in after}) == len(after)
    assert run.state == "finished"


def test_without_psutil_a_run_has_no_system_metrics_and_no_message(store):
    p = run_python("""
        import sys, time
        sys.modules["psutil"] = None  # as if it were not installed
        import nbtracker
        run = nbtracker.init(project="nopsutil", settings={"system_interval": 0.05})
        run.log({"loss": 1.0})
        time.sleep(0.3)
        run.finish()
        print(run.storage_dir)
    """, env={"NBTRACKER_SILENT": "true"})
    assert p.stderr == ""
    run_dir = Path(p.stdout.strip())
    assert not [r for r in read_records(run_dir / layout.LOG_NAME) if r["t"] == "system"]
    assert "psutil is not installed" in (run_dir / layout.DEBUG_NAME).read_text()
    (r,) = nbtracker.Api().runs("nopsutil")
    assert r.state == "finished" and r.history()["loss"].tolist() == [1.0]


def test_gpu_keys_from_nvml_readings():
    assert gpu_values(1, gpu=87, memory=40, used=3 * 2**30, total=12 * 2**30, temp=71,
                      milliwatts=215_500) == {
        "gpu.1.gpu": 87, "gpu.1.memory": 40, "gpu.1.memoryAllocated": 25.0, "gpu.1.temp": 71,
        "gpu.1.powerWatts": 215.5}
    # what a GPU cannot report (power on some boards) is left out, not guessed
    assert gpu_values(0, gpu=3, used=1, total=0) == {"gpu.0.gpu": 3}


def test_import_nbtracker_does_not_import_psutil():
    p = run_python("""
        import sys
        import nbtracker
        print(sorted(m for m in ("psutil", "pynvml", "torch") if m in sys.modules))
    """)
    assert p.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("fastapi", reason="the server extra is not installed")
    from serverproc import ServerProcess

    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.mark.slow  # starts a server
def test_system_history_of_a_run_on_a_team_server(server, monkeypatch, store):
    monkeypatch.setenv("NBTRACKER_BASE_URL", server.url)
    monkeypatch.setenv("NBTRACKER_API_KEY", server.admin_key)
    monkeypatch.setenv("NBTRACKER_SILENT", "true")
    run = nbtracker.init(project="remote-sys", settings={"system_interval": 0.1})
    run.log({"loss": 0.5})
    time.sleep(0.45)
    run.finish(timeout=30)
    assert run.upload_status()["state"] == "synced"
    local = nbtracker.Api(dir=str(store)).run(run.path).history(stream="system")
    api = nbtracker.Api()
    assert api.remote
    remote = api.run(run.path).history(stream="system")
    assert len(remote) >= 2
    pd.testing.assert_frame_equal(remote, local)
    assert not any(math.isnan(v) for v in remote["system.cpu"])


def test_cli_exports_the_system_stream(sampled):
    import csv
    import io
    import json

    from helpers import run_cli

    run, r, _, _ = sampled
    full = r.history(stream="system")
    root = str(Path(run.storage_dir).parents[2])
    p = run_cli("--dir", root, "export", run.path, "--stream", "system")
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert list(rows[0]) == list(full.columns) and len(rows) == len(full)
    assert [float(x["system.cpu"]) for x in rows] == full["system.cpu"].tolist()
    p = run_cli("--dir", root, "export", run.path, "--stream", "system", "--format", "json")
    assert [json.loads(line)["_timestamp"] for line in p.stdout.splitlines()] == \
        full["_timestamp"].tolist()
