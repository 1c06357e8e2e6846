"""Team server speed: ingestion (metric points per second, 1 and 16 writers) and the
downsampled histories of 100 runs × 3 metrics × 100,000 steps, on SQLite and PostgreSQL.

    python bench/bench_server.py                          # SQLite
    python bench/bench_server.py --pg postgresql://postgres@127.0.0.1:5432/test

Each database gets a fresh server process (`nbtracker server`) on loopback. Ingestion goes
through the HTTP API as the uploader sends it (batches of 1000 records, 3 metrics each). For
the histories fetch, one run of 100,000 steps is uploaded through the API and its stored rows
are copied to 99 more runs in SQL (the same layout a real upload writes), then
`POST /api/v1/histories` asks for 1000 buckets per series.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import requests

REPO = Path(__file__).resolve().parent.parent
KEYS = ("loss", "acc", "lr")


def start_server(data_dir: Path, db: str | None):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "nbtracker", "server", "--data-dir", str(data_dir), "--port", "0"]
    if db:
        cmd += ["--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    key = url = None
    for line in proc.stdout:
        m = re.match(r"admin API key: (\S+)", line)
        key = m.group(1) if m else key
        m = re.match(r"nbtracker server listening on (\S+)", line)
        if m:
            url = m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, url, key


def batch_body(first: int, n: int) -> bytes:
    lines = []
    for seq in range(first, first + n):
        step = seq - 1
        lines.append(orjson.dumps({"t": "history", "seq": seq, "ts": 1.7e9 + step, "step": step,
                                   "d": {"loss": 1.0 / (step + 1), "acc": step * 1e-5, "lr": 0.001}}))
    return b'{"first_seq":%d,"records":[' % first + b",".join(lines) + b"]}"


def upload(url: str, key: str, project: str, run_id: str, records: int) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    s.put(f"{url}/api/v1/projects/{project}/runs/{run_id}").raise_for_status()
    bodies = [batch_body(first, min(1000, records - first + 1)) for first in range(1, records + 1, 1000)]
    for body in bodies:
        r = s.post(f"{url}/api/v1/projects/{project}/runs/{run_id}/records", data=body,
                   headers={"Content-Type": "application/json"})
        r.raise_for_status()


def ingest(url: str, key: str, writers: int, records: int) -> float:
    """Metric points per second with `writers` concurrent writers (one run each)."""
    tag = secrets.token_hex(3)
    threads = [threading.Thread(target=upload, args=(url, key, "ingest", f"w{tag}{i}", records))
               for i in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return writers * records * len(KEYS) / (time.perf_counter() - t0)


def clone_runs(db_url: str, project: str, source: str, copies: int) -> None:
    """Copy run `source`'s rows (run, series, chunks) to runs c1..c<copies> in SQL."""
    import sqlalchemy as sa

    from nbtracker.server.db import create_db_engine
    from nbtracker.server.schema import projects, runs, series, series_chunks

    engine = create_db_engine(db_url)
    with engine.begin() as conn:
        pid = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).scalar()
        q = sa.select(runs).where(runs.c.project_id == pid, runs.c.run_id == source)
        src = conn.execute(q).mappings().one()
        srows = conn.execute(sa.select(series).where(series.c.run_pk == src["pk"])).mappings().all()
        q = sa.select(series_chunks).where(series_chunks.c.run_pk == src["pk"])
        crows = conn.execute(q).mappings().all()
        for i in range(1, copies + 1):
            row = {k: v for k, v in src.items() if k != "pk"} | {"run_id": f"c{i}"}
            pk = conn.execute(sa.insert(runs).values(row).returning(runs.c.pk)).scalar()
            conn.execute(sa.insert(series), [dict(r) | {"run_pk": pk} for r in srows])
            conn.execute(sa.insert(series_chunks), [dict(r) | {"run_pk": pk} for r in crows])
    engine.dispose()


def histories(url: str, key: str, db_url: str, steps: int, runs: int, samples: int) -> tuple[float, int]:
    upload(url, key, "hist", "c0", steps)
    clone_runs(db_url, "hist", "c0", runs - 1)
    body = {"runs": [{"project": "hist", "id": f"c{i}"} for i in range(runs)], "keys": list(KEYS),
            "samples": samples}
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        r = s.post(f"{url}/api/v1/histories", json=body)
        r.raise_for_status()
        times.append(time.perf_counter() - t0)
    series = r.json()["series"]
    assert len(series) == runs * len(KEYS) and all(x["step"][-1] == steps - 1 for x in series)
    return min(times), len(r.content)


def bench(db: str | None, label: str, args) -> None:
    from nbtracker.server.db import database_url

    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = start_server(Path(tmp), db)
        try:
            one = ingest(url, key, 1, args.records)
            many = ingest(url, key, 16, args.records // 4)
            secs, size = histories(url, key, str(database_url(db, tmp).render_as_string(False)),
                                   args.steps, args.runs, args.samples)
        finally:
            proc.terminate()
            proc.wait()
    print(f"{label:10s} ingest 1 writer: {one:10,.0f} points/s   16 writers: {many:10,.0f} points/s   "
          f"histories {args.runs}x{len(KEYS)}x{args.steps:,} -> {args.samples} buckets: "
          f"{secs:.3f} s ({size / 1e6:.1f} MB)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pg", help="a PostgreSQL URL: also bench on a fresh database there")
    p.add_argument("--records", type=int, default=50_000, help="records per writer (1 writer)")
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--samples", type=int, default=1000)
    args = p.parse_args()
    bench(None, "SQLite", args)
    if args.pg:
        sys.path.insert(0, str(REPO / "tests"))
        from serverproc import fresh_pg_database

        url, drop = fresh_pg_database(args.pg)
        try:
            bench(url, "PostgreSQL", args)
        finally:
            drop()


if __name__ == "__main__":
    main()
