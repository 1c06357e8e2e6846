"""System metrics: a sampler thread that records the machine's load beside the run.

Every `run.settings.system_interval` seconds (default 2; 0 turns it off, as does
NBTRACKER_DISABLE_STATS) one `system` record goes into the run's log:

    {"t":"system","seq":…,"ts":…,"d":{"cpu":12.5,"proc.cpu":98.0,…}}

with wandb's key names:

    cpu                 CPU use of the whole machine, % (100 = every core busy)
    proc.cpu            CPU use of this process, % of one core (2 busy cores: 200)
    proc.cpu.threads    threads of this process
    memory              memory use of the whole machine, %
    memory.availableMB  memory available to new processes, MB
    proc.memory.rssMB   resident memory of this process, MB
    proc.memory.percent resident memory of this process, % of the machine's
    disk                use of the disk holding the run's directory, %
    disk.in, disk.out   MB read from / written to the machine's disks since the sampler started
    network.sent, network.recv   bytes sent / received by the machine since the sampler started
    gpu.{i}.gpu         NVIDIA GPU i: utilisation, %
    gpu.{i}.memory      time its memory was being read or written, %
    gpu.{i}.memoryAllocated   its memory in use, %
    gpu.{i}.temp        its temperature, °C
    gpu.{i}.powerWatts  its power draw, W

psutil supplies the first ones (without it: no system metrics, one line in the debug log),
nvidia-ml-py (`pip install 'nbtracker[gpu]'`) the GPU ones when an NVIDIA driver answers; a
machine without either has no GPU keys and no error (a broken nvidia-ml-py install costs the GPU
keys only). A key the machine cannot measure (no disk counters in some containers, no power
reading on some GPUs, a GPU NVML cannot open) is left out of the sample; GPU keys keep NVML's
device index.

The thread primes the CPU counters when it starts, records the first sample one interval later
and then one per interval on a fixed schedule (a late sample does not shift the next ones). It
never holds the run's lock while measuring, only to append the record; `close()` stops it
promptly. A forked child has no sampler: its copy of the run starts none and closes none.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ..store.recordlog import make_record
from . import output

_MB = 1024 * 1024
_JOIN_TIMEOUT = 2.0  # seconds close() waits for a sample being taken
_MAX_ERRORS = 3  # failed samples in a row before the sampler gives up


def start(run: Any) -> SystemSampler | None:
    interval = float(getattr(run.settings, "system_interval", 0) or 0)
    if interval <= 0:
        return None
    sampler = SystemSampler(run, interval)
    sampler.start()
    return sampler


class SystemSampler:
    """The sampler thread of one run (a part: `close(state)` at finish)."""

    def __init__(self, run: Any, interval: float):
        self._run = run
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nbtracker-system", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, state: str) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_JOIN_TIMEOUT)
            if self._thread.is_alive():
                self._debug(f"system sampler still busy after {_JOIN_TIMEOUT}s; left behind")

    def _debug(self, msg: str) -> None:
        output.debug(msg, self._run._debug_path)

    def _loop(self) -> None:
        try:
            probe = Probe(self._run.storage_dir)
        except ImportError:
            self._debug("psutil is not installed: no system metrics (pip install psutil)")
            return
        except Exception as e:
            self._debug(f"system metrics not recorded: {type(e).__name__}: {e}")
            return
        if probe.gpu_note:
            self._debug(probe.gpu_note)
        errors = 0
        due = time.monotonic() + self.interval
        try:
            while not self._stop.wait(max(0.0, due - time.monotonic())):
                now = time.monotonic()
                due += self.interval
                if due <= now:  # asleep (suspended machine, stalled process): no catching up
                    due = now + self.interval
                try:
                    d = probe.sample()
                except Exception as e:
                    errors += 1
                    self._debug(f"system sample failed ({errors}): {type(e).__name__}: {e}")
                    if errors >= _MAX_ERRORS:
                        self._debug("system sampler stopped after repeated failures")
                        return
                    continue
                errors = 0
                if d and not self._record(d):
                    return
        finally:
            probe.close()

    def _record(self, d: dict) -> bool:
        """Append one sample; False once the run is closed."""
        run = self._run
        rec = make_record("system", d)
        with run._mutex:
            if run._done:
                return False
            run._append(rec)
        run._emit("system", {"ts": rec["ts"], "d": d})
        return True


class Probe:
    """Reads the machine's counters: `sample()` gives one dict of the module's keys. Raises
    ImportError without psutil."""

    def __init__(self, disk_path: str):
        import psutil

        self._ps = psutil
        self._disk_path = disk_path
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)  # the first call only sets the reference point
        psutil.cpu_percent(None)
        self._disk0 = _optional(psutil.disk_io_counters)
        self._net0 = _optional(psutil.net_io_counters)
        self._gpus, self.gpu_note = Gpus.open()

    def sample(self) -> dict:
        ps, p = self._ps, self._proc
        d: dict[str, Any] = {"cpu": ps.cpu_percent(None)}
        with p.oneshot():
            d["proc.cpu"] = round(p.cpu_percent(None), 2)
            d["proc.cpu.threads"] = p.num_threads()
            rss = p.memory_info().rss
            d["proc.memory.rssMB"] = round(rss / _MB, 2)
            d["proc.memory.percent"] = round(p.memory_percent(), 2)
        vm = ps.virtual_memory()
        d["memory"] = vm.percent
        d["memory.availableMB"] = round(vm.available / _MB, 2)
        du = _optional(ps.disk_usage, self._disk_path)
        if du is not None:
            d["disk"] = du.percent
        io = _optional(ps.disk_io_counters) if self._disk0 is not None else None
        if io is not None:
            d["disk.in"] = round(max(0, io.read_bytes - self._disk0.read_bytes) / _MB, 3)
            d["disk.out"] = round(max(0, io.write_bytes - self._disk0.write_bytes) / _MB, 3)
        net = _optional(ps.net_io_counters) if self._net0 is not None else None
        if net is not None:
            d["network.sent"] = max(0, net.bytes_sent - self._net0.bytes_sent)
            d["network.recv"] = max(0, net.bytes_recv - self._net0.bytes_recv)
        if self._gpus is not None:
            d.update(self._gpus.sample())
        return d

    def close(self) -> None:
        if self._gpus is not None:
            self._gpus.close()


def _optional(fn, *args):
    """A psutil reading, or None where the machine has none (containers without disk counters,
    a run directory gone)."""
    try:
        return fn(*args)
    except (OSError, RuntimeError, ValueError, AttributeError):
        return None


def gpu_values(i: int, gpu: float | None = None, memory: float | None = None,
               used: int | None = None, total: int | None = None, temp: float | None = None,
               milliwatts: float | None = None) -> dict:
    """GPU `i`'s keys from NVML's readings (those it could not give are None and left out):
    utilisation and memory-busy %, memory used and total in bytes, °C, power in mW."""
    d: dict[str, Any] = {}
    if gpu is not None:
        d[f"gpu.{i}.gpu"] = gpu
    if memory is not None:
        d[f"gpu.{i}.memory"] = memory
    if used is not None and total:
        d[f"gpu.{i}.memoryAllocated"] = round(100.0 * used / total, 2)
    if temp is not None:
        d[f"gpu.{i}.temp"] = temp
    if milliwatts is not None:
        d[f"gpu.{i}.powerWatts"] = round(milliwatts / 1000.0, 3)
    return d


class Gpus:
    """NVIDIA GPUs through NVML (nvidia-ml-py's `pynvml`)."""

    @classmethod
    def open(cls) -> tuple[Gpus | None, str | None]:
        """(Gpus, a note or None), or (None, why there are none) — None too when there is
        nothing to say: no nvidia-ml-py installed is the usual case on a machine without a GPU.
        Never raises: a broken NVML costs the GPU keys, not the machine's."""
        try:
            import pynvml
        except ImportError:
            return None, None
        except Exception as e:  # a broken install
            return None, f"no GPU metrics: pynvml could not be imported ({type(e).__name__}: {e})"
        try:
            pynvml.nvmlInit()
        except Exception as e:  # no driver (NVMLError_LibraryNotFound, DriverNotLoaded, ...)
            return None, f"no GPU metrics: NVML did not start ({e})"
        handles: list[tuple[int, Any]] = []
        failed: list[str] = []
        try:
            for i in range(pynvml.nvmlDeviceGetCount()):
                try:
                    handles.append((i, pynvml.nvmlDeviceGetHandleByIndex(i)))
                except Exception as e:  # no permission, lost: the others are still read
                    failed.append(f"GPU {i} ({e})")
        except Exception as e:
            _shutdown(pynvml)
            return None, f"no GPU metrics: {e}"
        note = f"no GPU metrics for {', '.join(failed)}" if failed else None
        if not handles:
            _shutdown(pynvml)
            return None, note
        return cls(pynvml, handles), note

    def __init__(self, nvml: Any, handles: list[tuple[int, Any]]):
        self._nv = nvml
        self._handles = handles  # (device index, NVML handle)

    def sample(self) -> dict:
        nv = self._nv
        d: dict[str, Any] = {}
        for i, h in self._handles:
            util = _nvml(nv.nvmlDeviceGetUtilizationRates, h)
            mem = _nvml(nv.nvmlDeviceGetMemoryInfo, h)
            d.update(gpu_values(
                i,
                gpu=None if util is None else util.gpu,
                memory=None if util is None else util.memory,
                used=None if mem is None else mem.used,
                total=None if mem is None else mem.total,
                temp=_nvml(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU),
                milliwatts=_nvml(nv.nvmlDeviceGetPowerUsage, h)))
        return d

    def close(self) -> None:
        _shutdown(self._nv)


def _shutdown(nvml: Any) -> None:
    try:
        nvml.nvmlShutdown()
    except Exception:
        pass


def _nvml(fn, *args):
    """One NVML reading, or None where the GPU does not support it (NVMLError_NotSupported)."""
    try:
        return fn(*args)
    except Exception:
        return None
