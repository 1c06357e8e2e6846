"""The team server's speed beside an MLflow tracking server, on one machine, in one run.

    python bench/bench_server.py [--seconds 10] [--repeats 3] [--quick]
                                 [--engines sqlite,postgresql] [--writers 1,16]

Ingestion: metric points per second into each database kind (SQLite; PostgreSQL 15 at
`--pg`, a fresh database per server, dropped at the end) from 1 and from 16 concurrent writers
(processes, each its own run, each its own keep-alive `requests` session):

    mlflow     `POST /api/2.0/mlflow/runs/log-batch` with 1000 metrics (100 steps × 10 keys),
               the largest batch MLflow accepts; `mlflow server` from bench/.venv-peers
               (bench/setup_peers.sh), its default workers
    nbtracker  `POST /api/v1/projects/{p}/runs/{id}/records` with 1000 history records of 10
               metrics (10,000 points a request) and of 3 metrics (3,000 points); `nbtracker
               server` from this tree

Each server first gets `--warmup` seconds of untimed traffic from 16 writers. Each cell then runs
`--repeats` windows of `--seconds / --repeats` seconds, fresh runs each (each writer finishes the
request it has in flight; the window ends at the last answer) and reports the median.

Histories: 100 runs × 3 metrics × 100,000 steps are ingested once per database, then
`POST /api/v1/histories` for all 300 series with samples=1000 is timed 5 times (median): until
the whole answer is in, and with `json.loads` of it.

Results are also written to bench/results/server.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_BIN = HERE / ".venv-peers" / "bin"
MLFLOW_BATCH = 1000  # MLflow's limit on metrics per log-batch call
NBT_BATCH = 1000  # the server's limit on records per request
PROJECT = "bench"

# float texts the writers cycle through, built once (the client does no float formatting in the loop)
VALS = [repr(math.sin(i * 0.013) * 0.5 + 1.0 + i * 1e-6) for i in range(1009)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- PostgreSQL

class PgDatabase:
    """A fresh database on the PostgreSQL server at `base` (trust auth), dropped by drop()."""

    def __init__(self, base: str, prefix: str):
        import psycopg

        self.base = base.rstrip("/")
        self.name = f"{prefix}_{secrets.token_hex(4)}"
        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{self.name}"')

    @property
    def url(self) -> str:
        return f"{self.base}/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(f"{self.base}/postgres", autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ------------------------------------------------------------------------------------- servers

class Server:
    """A server subprocess on 127.0.0.1 (its own process group), its output in a log file."""

    def __init__(self, cmd: list[str], env: dict, log: Path, health: str, timeout: float = 120):
        self.log = log
        self.out = open(log, "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{cmd[0]} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if requests.get(health, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{cmd[0]} did not answer {health} in {timeout:.0f} s:\n{self.tail()}")
            time.sleep(0.25)

    def tail(self, n: int = 30) -> str:
        self.out.flush()
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group: uvicorn/gunicorn workers too
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.out.close()


class MlflowSide:
    """`mlflow server` over a SQLite file or a PostgreSQL database; runs made over REST."""

    name = "mlflow"

    def __init__(self, engine: str, work: Path, pg: str, workers: int | None):
        self.engine = engine
        self.pg = None
        if engine == "sqlite":
            store = f"sqlite:///{work / 'mlflow.db'}"
        else:
            self.pg = PgDatabase(pg, "nbt_bench_mlflow")
            store = self.pg.url.replace("postgresql://", "postgresql+psycopg2://", 1)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [str(PEERS_BIN / "mlflow"), "server", "--backend-store-uri", store,
               "--artifacts-destination", str(work / "mlartifacts"),
               "--host", "127.0.0.1", "--port", str(port)]
        if workers:
            cmd += ["--workers", str(workers)]
        env = dict(os.environ, MLFLOW_TRACKING_URI="")
        env.pop("MLFLOW_TRACKING_URI")
        try:
            self.server = Server(cmd, env, work / f"mlflow-{engine}.log", self.url + "/health")
        except Exception:
            if self.pg:
                self.pg.drop()
            raise
        self.session = requests.Session()
        r = self.session.post(self.url + "/api/2.0/mlflow/experiments/create",
                              json={"name": f"bench-{secrets.token_hex(3)}"})
        r.raise_for_status()
        self.experiment = r.json()["experiment_id"]
        self.headers: dict = {}

    def new_run(self) -> str:
        r = self.session.post(self.url + "/api/2.0/mlflow/runs/create",
                              json={"experiment_id": self.experiment,
                                    "start_time": int(time.time() * 1000)})
        r.raise_for_status()
        return r.json()["run"]["info"]["run_id"]

    def close(self) -> None:
        self.session.close()
        self.server.stop()
        if self.pg:
            self.pg.drop()


class MlflowBatches:
    """log-batch bodies: 100 steps × `keys` metrics = 1000 metrics a call."""

    url_fmt = "{url}/api/2.0/mlflow/runs/log-batch"

    def __init__(self, run_id: str, keys: int):
        self.run_id = run_id
        self.keys = keys
        self.steps_per = MLFLOW_BATCH // keys
        self.step = 0
        self.points = self.steps_per * keys

    def next_body(self) -> bytes:
        ts = int(time.time() * 1000)
        parts = []
        for s in range(self.step, self.step + self.steps_per):
            for k in range(self.keys):
                v = VALS[(s + 37 * k) % 1009]
                parts.append(f'{{"key":"m{k}","value":{v},"timestamp":{ts},"step":{s}}}')
        self.step += self.steps_per
        return f'{{"run_id":"{self.run_id}","metrics":[{",".join(parts)}]}}'.encode()

    def check(self, r: requests.Response) -> None:
        if r.status_code != 200:
            raise RuntimeError(f"log-batch {r.status_code}: {r.text[:300]}")


def run_record_template() -> dict:
    """The `run` record a real offline run writes first (its fields, whatever they are today)."""
    os.environ["NBTRACKER_SILENT"] = "true"
    import nbtracker

    with tempfile.TemporaryDirectory() as d:
        run = nbtracker.init(project=PROJECT, dir=d, mode="offline")
        nbtracker.finish()
        with open(os.path.join(run.storage_dir, "records.jsonl"), "rb") as f:
            rec = json.loads(f.readline())
    assert rec["t"] == "run", rec
    return rec


class NbtSide:
    """`nbtracker server` from this tree over a SQLite file or a PostgreSQL database."""

    name = "nbtracker"
    key_re = re.compile(rb"admin API key: (nbt_\S+)")

    def __init__(self, engine: str, work: Path, pg: str):
        self.engine = engine
        self.pg = None
        if engine == "sqlite":
            db = f"sqlite:///{work / 'nbtracker.db'}"
        else:
            self.pg = PgDatabase(pg, "nbt_bench_nbtracker")
            db = self.pg.url
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        cmd = [sys.executable, "-m", "nbtracker", "server", "--db", db,
               "--data-dir", str(work / "data"), "--host", "127.0.0.1", "--port", str(port)]
        env = dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_SILENT="true", PYTHONUNBUFFERED="1")
        for k in ("NBTRACKER_BASE_URL", "NBTRACKER_API_KEY"):
            env.pop(k, None)
        try:
            self.server = Server(cmd, env, work / f"nbtracker-{engine}.log",
                                 self.url + "/api/v1/health")
            key = self.key_re.search(self.server.log.read_bytes())
            if not key:
                raise RuntimeError(f"no admin key in the server's output:\n{self.server.tail()}")
        except Exception:
            if self.pg:
                self.pg.drop()
            raise
        self.headers = {"Authorization": f"Bearer {key.group(1).decode()}"}
        self.session = requests.Session()
        self.session.headers.update(self.headers)
        self.run_rec = run_record_template()

    def new_run(self) -> tuple:
        """Upsert a run and send its `run` record (seq 1); history starts at seq 2."""
        rid = secrets.token_hex(6)
        base = f"{self.url}/api/v1/projects/{PROJECT}/runs/{rid}"
        r = self.session.put(base, json={})
        r.raise_for_status()
        assert r.json()["next_seq"] == 1, r.text
        rec = dict(self.run_rec, id=rid, project=PROJECT, name=rid, seq=1, ts=time.time())
        r = self.session.post(base + "/records", json={"first_seq": 1, "records": [rec]})
        r.raise_for_status()
        return (PROJECT, rid, r.json()["next_seq"])

    def histories(self, runs: list[tuple], keys: list[str], samples: int) -> tuple:
        """POST /histories: seconds until the body is in, seconds with json decoding, bytes, doc."""
        body = {"runs": [{"project": p, "id": rid} for p, rid, _ in runs], "keys": keys,
                "samples": samples, "min_step": None, "max_step": None}
        t = time.perf_counter()
        r = self.session.post(self.url + "/api/v1/histories", json=body)
        fetched = time.perf_counter() - t  # the whole body is in (requests reads it all)
        r.raise_for_status()
        out = r.json()
        return fetched, time.perf_counter() - t, len(r.content), out

    def close(self) -> None:
        self.session.close()
        self.server.stop()
        if self.pg:
            self.pg.drop()


class NbtBatches:
    """Record batches as the uploader sends them: the log lines, joined, `keys` metrics a step."""

    def __init__(self, project: str, run_id: str, next_seq: int, keys: int,
                 batch: int = NBT_BATCH, step: int = 0):
        self.url_fmt = "{url}" + f"/api/v1/projects/{project}/runs/{run_id}/records"
        self.seq = next_seq
        self.step = step
        self.batch = batch
        self.points = batch * keys
        names = [f"m{k}" for k in range(keys)]
        self.d = [",".join(f'"{n}":{VALS[(i + 37 * k) % 1009]}' for k, n in enumerate(names))
                  for i in range(1009)]

    def next_body(self) -> bytes:
        ts = time.time()
        first = self.seq
        lines = [f'{{"t":"history","seq":{q},"ts":{ts:.6f},"step":{s},"d":{{{self.d[s % 1009]}}}}}'
                 for q, s in zip(range(first, first + self.batch),
                                 range(self.step, self.step + self.batch))]
        self.seq += self.batch
        self.step += self.batch
        return f'{{"first_seq":{first},"records":[{",".join(lines)}]}}'.encode()

    def check(self, r: requests.Response) -> None:
        if r.status_code != 200:
            raise RuntimeError(f"records {r.status_code}: {r.text[:300]}")
        if r.json()["next_seq"] != self.seq:
            raise RuntimeError(f"next_seq {r.json()['next_seq']}, expected {self.seq}")


# ------------------------------------------------------------------------------------ writers

def _writer(side_kind: str, url: str, headers: dict, target, keys: int, seconds: float,
            barrier, q) -> None:
    """One writer process: warm up with one request, wait for all, then send for `seconds`."""
    try:
        s = requests.Session()
        s.headers.update(headers)
        s.headers["Content-Type"] = "application/json"
        batches = (MlflowBatches(target, keys) if side_kind == "mlflow"
                   else NbtBatches(*target, keys))
        post_url = batches.url_fmt.format(url=url)
        batches.check(s.post(post_url, data=batches.next_body()))  # warm: connection, caches
        barrier.wait(timeout=600)
        t0 = time.monotonic()
        deadline = t0 + seconds
        points = reqs = 0
        lat = []
        while time.monotonic() < deadline:
            body = batches.next_body()
            t = time.monotonic()
            r = s.post(post_url, data=body)
            lat.append(time.monotonic() - t)
            batches.check(r)
            points += batches.points
            reqs += 1
        q.put({"t0": t0, "t1": time.monotonic(), "points": points, "requests": reqs,
               "median_request_s": statistics.median(lat) if lat else None})
    except BaseException as e:  # reported to the parent; the barrier is broken so nobody waits
        try:
            barrier.abort()
        except Exception:
            pass
        q.put({"error": f"{type(e).__name__}: {e}"})


def ingest_window(side, writers: int, keys: int, seconds: float) -> dict:
    """Fresh runs, one per writer process; points/s over the window (first start to last answer)."""
    ctx = mp.get_context("fork")
    targets = [side.new_run() for _ in range(writers)]
    barrier = ctx.Barrier(writers)
    q = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(side.name, side.url, side.headers, t, keys,
                                                seconds, barrier, q), daemon=True)
             for t in targets]
    for p in procs:
        p.start()
    res = [q.get(timeout=seconds + 900) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    errors = [r["error"] for r in res if "error" in r]
    if errors:
        raise RuntimeError(errors[0])
    span = max(r["t1"] for r in res) - min(r["t0"] for r in res)
    points = sum(r["points"] for r in res)
    return {"points": points, "seconds": span, "points_per_s": points / span,
            "requests": sum(r["requests"] for r in res),
            "median_request_s": statistics.median(r["median_request_s"] for r in res
                                                  if r["median_request_s"] is not None)}


def warm_up(side, writers: int, keys: int, seconds: float) -> None:
    """An untimed window from many writers, so every worker process of the server has served
    requests (MLflow's workers each take several seconds of traffic to reach their speed)."""
    if seconds > 0:
        ingest_window(side, writers, keys, seconds)


def ingest_cell(side, writers: int, keys: int, seconds: float, repeats: int) -> dict:
    reps = [ingest_window(side, writers, keys, seconds / repeats) for _ in range(repeats)]
    return {"points_per_s": statistics.median(r["points_per_s"] for r in reps),
            "repeats": reps}


def _filler(url: str, headers: dict, targets: list, steps: int, keys: int, q) -> None:
    try:
        s = requests.Session()
        s.headers.update(headers)
        s.headers["Content-Type"] = "application/json"
        for t in targets:
            b = NbtBatches(*t, keys)
            post_url = b.url_fmt.format(url=url)
            for _ in range(math.ceil(steps / NBT_BATCH)):
                b.check(s.post(post_url, data=b.next_body()))
        q.put({"ok": len(targets)})
    except BaseException as e:
        q.put({"error": f"{type(e).__name__}: {e}"})


def histories(side: NbtSide, runs: int, steps: int, repeats: int, writers: int = 4) -> dict:
    """Ingest `runs` × 3 metrics × `steps` once (from `writers` processes), then time
    POST /histories for every run and key, samples=1000, `repeats` times."""
    keys = ["m0", "m1", "m2"]
    targets = [side.new_run() for _ in range(runs)]
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    t = time.perf_counter()
    procs = [ctx.Process(target=_filler, args=(side.url, side.headers, targets[i::writers],
                                               steps, len(keys), q), daemon=True)
             for i in range(writers)]
    for p in procs:
        p.start()
    res = [q.get(timeout=7200) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    fill_s = time.perf_counter() - t
    errors = [r["error"] for r in res if "error" in r]
    if errors:
        raise RuntimeError(errors[0])
    times, decoded = [], []
    for _ in range(repeats):
        dt, dt_json, size, out = side.histories(targets, keys, 1000)
        times.append(dt)
        decoded.append(dt_json)
    series = out["series"]
    assert len(series) == runs * len(keys), len(series)
    for x in series:
        assert len(x["step"]) <= 1000 and x["step"][0] == 0 and x["step"][-1] == steps - 1, \
            (x["key"], len(x["step"]), x["step"][:2], x["step"][-2:])
    return {"runs": runs, "keys": len(keys), "steps": steps, "samples": 1000,
            "points": runs * len(keys) * steps, "ingest_s": fill_s,
            "ingest_points_per_s": runs * len(keys) * steps / fill_s,
            "median_s": statistics.median(times), "times_s": times,
            "median_with_json_s": statistics.median(decoded), "response_bytes": size,
            "points_returned": sum(len(x["step"]) for x in series)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="ingestion per cell (all repeats)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--writers", default="1,16")
    ap.add_argument("--trackers", default="mlflow,nbtracker")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432",
                    help="PostgreSQL server (trust auth; a fresh database is made per server)")
    ap.add_argument("--mlflow-workers", type=int, default=None,
                    help="mlflow server --workers (default: MLflow's own default)")
    ap.add_argument("--warmup", type=float, default=6.0,
                    help="seconds of untimed ingestion from 16 writers after each server starts")
    ap.add_argument("--hist-runs", type=int, default=100, help="0: no histories")
    ap.add_argument("--hist-steps", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true",
                    help="short windows, one repeat, histories of 10 runs × 10,000 steps")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.repeats, a.warmup = min(a.seconds, 3.0), 1, min(a.warmup, 3.0)
        a.hist_runs, a.hist_steps = min(a.hist_runs, 10), min(a.hist_steps, 10_000)
    engines = a.engines.split(",")
    writer_counts = [int(w) for w in a.writers.split(",")]
    trackers = a.trackers.split(",")

    work = Path(tempfile.mkdtemp(prefix="nbt-bench-server-"))
    cells: list[dict] = []
    hists: dict[str, dict] = {}
    try:
        for engine in engines:
            if "mlflow" in trackers:
                (work / f"mlflow-{engine}").mkdir()
                side = MlflowSide(engine, work / f"mlflow-{engine}", a.pg, a.mlflow_workers)
                try:
                    warm_up(side, 16, 10, a.warmup)
                    for w in writer_counts:
                        c = ingest_cell(side, w, 10, a.seconds, a.repeats)
                        cells.append({"engine": engine, "writers": w, "tracker": "mlflow",
                                      "shape": "100 steps × 10 keys", **c})
                        print(f"  {engine} mlflow {w} writers: {c['points_per_s']:,.0f} points/s",
                              file=sys.stderr)
                finally:
                    side.close()
            if "nbtracker" in trackers:
                (work / f"nbtracker-{engine}").mkdir()
                side = NbtSide(engine, work / f"nbtracker-{engine}", a.pg)
                try:
                    warm_up(side, 16, 10, a.warmup)
                    for w in writer_counts:
                        for keys in (10, 3):
                            c = ingest_cell(side, w, keys, a.seconds, a.repeats)
                            cells.append({"engine": engine, "writers": w, "tracker": "nbtracker",
                                          "shape": f"1000 records × {keys} keys", **c})
                            print(f"  {engine} nbtracker {w} writers × {keys} keys: "
                                  f"{c['points_per_s']:,.0f} points/s", file=sys.stderr)
                    if a.hist_runs:
                        h = histories(side, a.hist_runs, a.hist_steps, 5)
                        hists[engine] = h
                        print(f"  {engine} histories: {h['median_s']:.3f} s", file=sys.stderr)
                finally:
                    side.close()
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    print_table(cells)
    for engine, h in hists.items():
        print(f"histories {engine}: {h['runs']} runs × {h['keys']} metrics × {h['steps']:,} steps, "
              f"samples={h['samples']}: {h['median_s']:.3f} s (median of {len(h['times_s'])}; "
              f"{min(h['times_s']):.3f}–{max(h['times_s']):.3f}; {h['median_with_json_s']:.3f} s with "
              f"json.loads of its {h['response_bytes'] / 2**20:.1f} MiB); ingested once in "
              f"{h['ingest_s']:.0f} s ({h['ingest_points_per_s']:,.0f} points/s, 4 writers)")
    out = {"cells": cells, "histories": hists, "seconds": a.seconds, "repeats": a.repeats, "warmup": a.warmup,
           "cores": os.cpu_count(), "when": time.strftime("%Y-%m-%dT%H:%M:%S")}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "server.json").write_text(json.dumps(out, indent=2))


def print_table(cells: list[dict]) -> None:
    base = {(c["engine"], c["writers"]): c["points_per_s"] for c in cells if c["tracker"] == "mlflow"}
    print(f"\n{'engine':<12}{'writers':>8}  {'tracker':<34}{'points/s':>12}{'× mlflow':>10}")
    for c in cells:
        m = base.get((c["engine"], c["writers"]))
        ratio = f"{c['points_per_s'] / m:.1f}" if m else "-"
        label = f"{c['tracker']} ({c['shape']})"
        print(f"{c['engine']:<12}{c['writers']:>8}  {label:<34}{c['points_per_s']:>12,.0f}{ratio:>10}")


if __name__ == "__main__":
    sys.exit(main())
