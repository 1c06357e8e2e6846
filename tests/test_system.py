"""System metrics: the sampler records the machine's load at the configured interval, stops at
finish, is off when asked, and reads back as `history(stream="system")` — locally and from a
team server."""

from __future__ import annotations

import math
import os
import sys
import threading
import time
import types
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
        # the run's other parts (code, console) emit their own kinds: only the samples here
        run.add_event_listener(
            lambda kind, payload: events.append((kind, payload)) if kind == "system" else None)
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


class FakeNvml(types.ModuleType):
    """A stand-in for nvidia-ml-py's `pynvml`: `devices` are dicts of readings (a reading that
    is an exception class is raised, as NVML does for what a board does not support)."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):
        pass

    class NVMLError_DriverNotLoaded(NVMLError):
        pass

    class NVMLError_NoPermission(NVMLError):
        pass

    NVML_TEMPERATURE_GPU = 0

    def __init__(self, devices: list[dict], init_error: type | None = None,
                 shutdown_error: type | None = None):
        super().__init__("pynvml")
        self.devices, self.init_error, self.shutdown_error = devices, init_error, shutdown_error
        self.calls: list[tuple[str, str]] = []  # (what, thread name)
        self.live = False

    def _call(self, what: str) -> None:
        self.calls.append((what, threading.current_thread().name))

    def _read(self, h: int, key: str):
        if not self.live:
            raise self.NVMLError("Uninitialized")
        v = self.devices[h][key]
        if isinstance(v, type) and issubclass(v, Exception):
            raise v("Not Supported")
        return v

    def nvmlInit(self):
        self._call("init")
        if self.init_error is not None:
            raise self.init_error("Driver Not Loaded")
        self.live = True

    def nvmlShutdown(self):
        self._call("shutdown")
        if not self.live:
            raise self.NVMLError("Uninitialized")
        if self.shutdown_error is not None:
            raise self.shutdown_error("Unknown Error")
        self.live = False

    def nvmlDeviceGetCount(self):
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, i):
        if isinstance(self.devices[i].get("handle"), type):
            raise self.devices[i]["handle"]("Insufficient Permissions")
        return i

    def nvmlDeviceGetUtilizationRates(self, h):
        util = self._read(h, "util")
        return types.SimpleNamespace(gpu=util[0], memory=util[1])

    def nvmlDeviceGetMemoryInfo(self, h):
        used, total = self._read(h, "mem")
        return types.SimpleNamespace(used=used, free=total - used, total=total)

    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == self.NVML_TEMPERATURE_GPU
        return self._read(h, "temp")

    def nvmlDeviceGetPowerUsage(self, h):
        return self._read(h, "mW")


def _sampled_with(nvml: FakeNvml | None, monkeypatch):
    """A run sampled every 0.1 s with `nvml` as pynvml (None: pynvml as imported), until it has
    2 samples; its system stream as the Api reads it."""
    if nvml is not None:
        monkeypatch.setitem(sys.modules, "pynvml", nvml)
    run = nbtracker.init(project="gpu", settings={"system_interval": 0.1})
    t0 = time.time()
    while time.time() - t0 < 10 and len(_system_records(run)) < 2:
        run.log({"loss": 1.0})
        time.sleep(0.05)
    run.finish(quiet=True)
    return run, nbtracker.Api().run(run.path).history(stream="system")


@pytest.mark.parametrize("case", ["no driver", "no devices"])
def test_nvml_without_a_driver_or_a_gpu_is_no_error_and_no_gpu_keys(case, monkeypatch, capsys):
    nvml = (FakeNvml([], init_error=FakeNvml.NVMLError_DriverNotLoaded) if case == "no driver"
            else FakeNvml([]))
    run, df = _sampled_with(nvml, monkeypatch)
    [line] = capsys.readouterr().err.splitlines()  # the start line and nothing else
    assert "started" in line
    assert len(df) >= 2 and set(df.columns) == {f"system.{k}" for k in KEYS} | {
        "_runtime", "_timestamp"}
    assert run.state == "finished"
    whats = [w for w, _ in nvml.calls]
    assert whats == (["init"] if case == "no driver" else ["init", "shutdown"])
    debug = (Path(run.storage_dir) / layout.DEBUG_NAME).read_text()
    assert ("NVML did not start (Driver Not Loaded)" in debug) == (case == "no driver")


def test_nvml_readings_of_two_gpus_are_their_keys_and_nvml_is_shut_down_at_finish(monkeypatch):
    nvml = FakeNvml([
        {"util": (87, 40), "mem": (3 * 2**30, 12 * 2**30), "temp": 71, "mW": 215_500},
        {"util": (5, 1), "mem": (2**30, 16 * 2**30), "temp": 40, "mW": 30_250}])
    run, df = _sampled_with(nvml, monkeypatch)
    assert len(df) >= 2
    expected = {"gpu.0.gpu": 87, "gpu.0.memory": 40, "gpu.0.memoryAllocated": 25.0,
                "gpu.0.temp": 71, "gpu.0.powerWatts": 215.5,
                "gpu.1.gpu": 5, "gpu.1.memory": 1, "gpu.1.memoryAllocated": 6.25,
                "gpu.1.temp": 40, "gpu.1.powerWatts": 30.25}
    assert set(df.columns) == {f"system.{k}" for k in KEYS | set(expected)} | {
        "_runtime", "_timestamp"}
    for k, v in expected.items():
        assert df[f"system.{k}"].tolist() == [v] * len(df), k
    assert df["system.cpu"].between(0, 100).all()  # the machine's keys beside them
    # NVML started once and shut down once, by the sampler, when the run finished
    assert nvml.calls == [("init", THREAD), ("shutdown", THREAD)] and not nvml.live
    assert not _samplers()


def test_a_reading_a_gpu_does_not_support_is_left_out(monkeypatch):
    nvml = FakeNvml([
        {"util": (10, 2), "mem": (2**30, 4 * 2**30), "temp": 50,
         "mW": FakeNvml.NVMLError_NotSupported},
        {"util": FakeNvml.NVMLError_NotSupported, "mem": (2**29, 4 * 2**30), "temp": 45,
         "mW": 90_000}])
    run, df = _sampled_with(nvml, monkeypatch)
    gpu = {c for c in df.columns if c.startswith("system.gpu")}
    assert gpu == {"system.gpu.0.gpu", "system.gpu.0.memory", "system.gpu.0.memoryAllocated",
                   "system.gpu.0.temp", "system.gpu.1.memoryAllocated", "system.gpu.1.temp",
                   "system.gpu.1.powerWatts"}
    assert df["system.gpu.0.memoryAllocated"].tolist() == [25.0] * len(df)
    assert df["system.gpu.1.powerWatts"].tolist() == [90.0] * len(df)
    assert [w for w, _ in nvml.calls] == ["init", "shutdown"]


def test_a_gpu_that_cannot_be_opened_leaves_the_others(monkeypatch):
    nvml = FakeNvml([{"handle": FakeNvml.NVMLError_NoPermission},
                     {"util": (60, 20), "mem": (2**30, 8 * 2**30), "temp": 55, "mW": 100_000}])
    run, df = _sampled_with(nvml, monkeypatch)
    gpu = {c for c in df.columns if c.startswith("system.gpu")}
    assert gpu == {f"system.gpu.1.{k}" for k in ("gpu", "memory", "memoryAllocated", "temp",
                                                 "powerWatts")}  # the device's own index
    assert df["system.gpu.1.gpu"].tolist() == [60] * len(df)
    assert "GPU 0" in (Path(run.storage_dir) / layout.DEBUG_NAME).read_text()
    assert [w for w, _ in nvml.calls] == ["init", "shutdown"]


@pytest.mark.parametrize("case", ["import fails", "shutdown fails"])
def test_a_broken_nvml_costs_only_the_gpu_keys(case, monkeypatch, tmp_path):
    if case == "import fails":  # an install whose import raises more than ImportError
        (tmp_path / "lib").mkdir()
        (tmp_path / "lib" / "pynvml.py").write_text("raise OSError('libnvidia-ml.so: bad ELF')\n")
        monkeypatch.syspath_prepend(str(tmp_path / "lib"))
        monkeypatch.delitem(sys.modules, "pynvml", raising=False)
        run, df = _sampled_with(None, monkeypatch)
    else:  # no devices, and NVML fails to shut down
        run, df = _sampled_with(FakeNvml([], shutdown_error=FakeNvml.NVMLError), monkeypatch)
    assert len(df) >= 2 and set(df.columns) == {f"system.{k}" for k in KEYS} | {
        "_runtime", "_timestamp"}
    debug = (Path(run.storage_dir) / layout.DEBUG_NAME).read_text()
    assert ("pynvml could not be imported (OSError" in debug) == (case == "import fails")


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
