"""One tracker, measured in this interpreter; prints one JSON line.

    python bench/peer_worker.py --tracker NAME --steps N --repeats R --dir TMP

Each repeat is a fresh run that logs a dict of 10 floats N times. Reported (medians over the
repeats): per-call latency median and p99 of the logging call (µs), loop time, finish time,
read-back time (the whole history into memory through the tracker's own reader; null when it
has none offline) and init → first log time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

KEYS = [f"m{i}" for i in range(10)]


def rows(n: int):
    # values vary per step; built up front so the loop measures only the logging call
    return [{k: (i * 0.001 + j) % 7.3 for j, k in enumerate(KEYS)} for i in range(min(n, 4096))]


class Tracker:
    """init(dir) -> log(row, step) -> finish() -> read() (None when there is no reader)."""

    def read(self):
        return None


class Floor(Tracker):
    def init(self, d):
        import orjson

        self.dumps = orjson.dumps
        self.opt = orjson.OPT_APPEND_NEWLINE
        self.path = os.path.join(d, "floor.jsonl")
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(self, row, step):
        os.write(self.fd, self.dumps(row, option=self.opt))

    def finish(self):
        os.fsync(self.fd)
        os.close(self.fd)

    def read(self):
        import orjson
        import pandas as pd

        with open(self.path, "rb") as f:
            return pd.DataFrame([orjson.loads(line) for line in f])


class Nbtracker(Tracker):
    def init(self, d):
        import nbtracker

        self.nb = nbtracker
        self.dir = d
        self.run = nbtracker.init(project="bench", dir=d, mode="offline")
        self.log = nbtracker.log

    def finish(self):
        self.nb.finish()

    def read(self):
        return self.nb.Api(dir=self.dir).run(f"bench/{self.run.id}").history()


class Wandb(Tracker):
    def init(self, d):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project="bench", dir=d, mode="offline")
        self.log = self.run.log

    def finish(self):
        self.run.finish()


class Trackio(Tracker):
    def init(self, d):
        import trackio

        self.t = trackio
        self.project = f"bench-{os.getpid()}-{time.time_ns()}"
        self.run = trackio.init(project=self.project)
        self.log = lambda row, step: trackio.log(row)

    def finish(self):
        self.t.finish()

    def read(self):
        # trackio keeps runs in a local SQLite database; its storage class reads them back
        from trackio.sqlite_storage import SQLiteStorage

        return SQLiteStorage.get_logs(self.project, self.run.name)


class Mlflow(Tracker):
    synchronous = True

    def init(self, d):
        import mlflow

        self.mlflow = mlflow
        mlflow.set_tracking_uri(f"sqlite:///{d}/mlflow.db")
        mlflow.set_registry_uri(f"file://{d}/registry")  # no model registry needed here
        mlflow.set_experiment("bench")
        self.run = mlflow.start_run()

    def log(self, row, step):
        self.mlflow.log_metrics(row, step=step, synchronous=self.synchronous)

    def finish(self):
        self.mlflow.end_run()  # waits for asynchronous logging to be flushed

    def read(self):
        # the metric history of every key, as MlflowClient returns it
        from mlflow.tracking import MlflowClient

        c = MlflowClient()
        return {k: c.get_metric_history(self.run.info.run_id, k) for k in KEYS}


class MlflowAsync(Mlflow):
    synchronous = False


class TensorboardX(Tracker):
    def init(self, d):
        from tensorboardX import SummaryWriter

        self.w = SummaryWriter(logdir=d)

    def log(self, row, step):
        for k, v in row.items():
            self.w.add_scalar(k, v, step)

    def finish(self):
        self.w.close()


TRACKERS = {"floor": Floor, "nbtracker": Nbtracker, "wandb": Wandb, "trackio": Trackio,
            "mlflow_sync": Mlflow, "mlflow_async": MlflowAsync, "tensorboardX": TensorboardX}


def one(name: str, steps: int) -> dict:
    data = rows(steps)
    m = len(data)
    with tempfile.TemporaryDirectory() as d:
        os.environ["TRACKIO_DIR"] = d
        t = TRACKERS[name]()
        t0 = time.perf_counter()
        t.init(d)
        t.log(data[0], 0)
        first = time.perf_counter() - t0
        pc = time.perf_counter_ns
        lat = [0] * (steps - 1)
        log = t.log
        loop0 = time.perf_counter()
        for i in range(1, steps):
            r = data[i % m]
            a = pc()
            log(r, i)
            lat[i - 1] = pc() - a
        loop = time.perf_counter() - loop0
        f0 = time.perf_counter()
        t.finish()
        fin = time.perf_counter() - f0
        r0 = time.perf_counter()
        got = t.read()
        read = time.perf_counter() - r0 if got is not None else None
    lat.sort()
    return {"median_us": lat[len(lat) // 2] / 1e3, "p99_us": lat[int(len(lat) * 0.99)] / 1e3,
            "loop_s": loop, "finish_s": fin, "read_s": read, "first_log_ms": first * 1e3}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tracker", required=True, choices=sorted(TRACKERS))
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    os.environ.setdefault("NBTRACKER_SILENT", "true")
    os.environ.setdefault("WANDB_SILENT", "true")
    try:
        results = [one(a.tracker, a.steps) for _ in range(a.repeats)]
    except ImportError as e:
        print(json.dumps({"tracker": a.tracker, "skipped": f"not installed here: {e}"}))
        return
    out = {"tracker": a.tracker, "steps": a.steps, "repeats": a.repeats,
           "python": sys.executable}
    for k in results[0]:
        vals = [r[k] for r in results if r[k] is not None]
        out[k] = statistics.median(vals) if vals else None
    print(json.dumps(out))


if __name__ == "__main__":
    main()
