"""Exactly once under concurrency and crashes: several writers on two server processes over
one database (SQLite, PostgreSQL), and a server killed with SIGKILL mid-upload."""

from __future__ import annotations

import random
import threading
import time

import orjson
import pytest
import requests

from nbtracker.store.recordlog import make_record

pytest.importorskip("fastapi", reason="the server extra is not installed")

from serverproc import TEST_DATABASE_URL, ServerProcess, fresh_pg_database  # noqa: E402

pytestmark = pytest.mark.slow


def record(seq: int) -> dict:
    return make_record("history", {"loss": 1.0 / seq, "seq": seq}, step=seq - 1, seq=seq, ts=float(seq))


class Writer:
    """Uploads records 1..n of a run as the uploader does: resends after a lost answer (and,
    here, sometimes a few records already acknowledged), rewinds on 409, retries on errors."""

    def __init__(self, urls: list[str], key: str, project: str, run_id: str, n: int, seed: int):
        self.urls, self.project, self.run_id, self.n = urls, project, run_id, n
        self.rng = random.Random(seed)
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {key}"
        self.errors = 0

    def run(self, deadline: float) -> None:
        next_seq = 1
        while next_seq <= self.n:
            assert time.monotonic() < deadline, f"{self.run_id} stuck at {next_seq}"
            start = max(1, next_seq - self.rng.choice([0, 0, 0, 1, 5]))
            stop = min(self.n, start + self.rng.randint(1, 60))
            body = (b'{"first_seq":%d,"records":[' % start
                    + b",".join(orjson.dumps(record(s)) for s in range(start, stop + 1)) + b"]}")
            url = f"{self.rng.choice(self.urls)}/api/v1/projects/{self.project}/runs/{self.run_id}/records"
            try:
                r = self.s.post(url, data=body, timeout=30)
            except requests.RequestException:
                self.errors += 1
                time.sleep(0.05)
                continue
            if r.status_code in (200, 409):
                got = r.json()["next_seq"]
                assert got >= next_seq or r.status_code == 409
                next_seq = got
            elif r.status_code >= 500:
                self.errors += 1
                time.sleep(0.05)
            else:
                raise AssertionError(f"{r.status_code}: {r.text}")


def run_writers(urls, key, project, runs: int, n: int, threads: int, timeout: float = 240) -> list[Writer]:
    writers = [Writer(urls, key, project, f"run{i}", n, seed=i) for i in range(runs)]
    deadline = time.monotonic() + timeout
    failures = []

    def work(mine):
        try:
            for w in mine:
                w.run(deadline)
        except BaseException as e:  # noqa: BLE001 - reported below
            failures.append(e)

    ts = [threading.Thread(target=work, args=(writers[i::threads],)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not failures, failures
    return writers


def assert_exactly_once(url, key, project, runs: int, n: int) -> None:
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {key}"
    for i in range(runs):
        base = f"{url}/api/v1/projects/{project}/runs/run{i}"
        lines = s.get(base + "/records", params={"limit": 100_000}).content.splitlines()
        assert [orjson.loads(x)["seq"] for x in lines] == list(range(1, n + 1)), f"run{i}"
        assert lines == [orjson.dumps(record(q)) for q in range(1, n + 1)]
        state = s.get(base).json()
        assert state["next_seq"] == n + 1 and state["state"]["rows"] == n
        (h,) = s.post(f"{url}/api/v1/histories", json={"runs": [{"project": project, "id": f"run{i}"}],
                                                        "keys": ["seq"], "samples": n}).json()["series"]
        assert h["step"] == list(range(n)) and h["value"] == [float(q) for q in range(1, n + 1)]


def start_together(data_dir, db_url=None, count=2) -> list[ServerProcess]:
    """`count` servers started at the same moment on one fresh database (one migrates)."""
    servers = [ServerProcess(data_dir, db_url=db_url, start=False) for _ in range(count)]
    ts = [threading.Thread(target=s.start) for s in servers]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    keys = [s.admin_key for s in servers if s.admin_key]
    assert len(keys) == 1, "exactly one server creates the first admin"
    for s in servers:
        s.admin_key = keys[0]
    return servers


def two_servers_many_writers(tmp_path, db_url=None):
    servers = start_together(tmp_path / "srv", db_url)
    try:
        assert all(s.proc.poll() is None for s in servers)
        key = servers[0].admin_key
        writers = run_writers([s.url for s in servers], key, "conc", runs=12, n=600, threads=8)
        assert sum(w.errors for w in writers) == 0
        assert_exactly_once(servers[1].url, key, "conc", runs=12, n=600)
    finally:
        for s in servers:
            s.stop()


def test_two_servers_on_one_sqlite_database(tmp_path):
    two_servers_many_writers(tmp_path)


@pytest.fixture
def pg_url():
    if not TEST_DATABASE_URL:
        pytest.skip("NBTRACKER_TEST_DATABASE_URL is not set (a PostgreSQL server to test against)")
    url, drop = fresh_pg_database(TEST_DATABASE_URL)
    yield url
    drop()


def test_two_servers_on_one_postgresql_database(tmp_path, pg_url):
    two_servers_many_writers(tmp_path, pg_url)


def killed_and_restarted(tmp_path, db_url=None):
    srv = ServerProcess(tmp_path / "srv", db_url=db_url)
    try:
        key = srv.admin_key
        done = threading.Event()
        result: list = []

        def upload():
            try:
                result.append(run_writers([srv.url], key, "crash", runs=4, n=3000, threads=4))
            except BaseException as e:  # noqa: BLE001 - reported below
                result.append(e)
            done.set()

        threading.Thread(target=upload, daemon=True).start()
        for _ in range(3):
            time.sleep(0.7)
            srv.kill()
            time.sleep(0.3)
            srv.start()
        assert done.wait(240)
        assert not isinstance(result[0], BaseException), result[0]
        assert sum(w.errors for w in result[0]) > 0, "the kills happened while uploading"
        srv.kill()
        srv.start()
        assert_exactly_once(srv.url, key, "crash", runs=4, n=3000)
    finally:
        srv.stop()


def test_server_killed_and_restarted_mid_upload_sqlite(tmp_path):
    killed_and_restarted(tmp_path)


def test_server_killed_and_restarted_mid_upload_postgresql(tmp_path, pg_url):
    killed_and_restarted(tmp_path, pg_url)


def test_first_uploads_into_a_new_project_on_postgresql(tmp_path, pg_url):
    """Writers of one user starting at once on two servers, each the first into a project
    that does not exist yet: every one gets the project (created once), none a 404."""
    s1 = ServerProcess(tmp_path / "a", db_url=pg_url)
    s2 = ServerProcess(tmp_path / "b", db_url=pg_url)
    try:
        key = s1.create_user("alice")
        projects = [f"new-{i}" for i in range(20)]
        threads = 6
        barrier = threading.Barrier(threads)
        codes: list = []

        def work(i: int) -> None:
            s = requests.Session()
            s.headers["Authorization"] = f"Bearer {key}"
            url = (s1, s2)[i % 2].url + "/api/v1/projects"
            for p in projects:
                barrier.wait(30)
                r = s.put(f"{url}/{p}/runs/run-{i}", json={}, timeout=30)
                codes.append((p, r.status_code, r.text[:200]))

        ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        assert len(codes) == threads * len(projects)
        assert [c for c in codes if c[1] != 200] == []
        listed = s1.session(key).get(s1.url + "/api/v1/projects").json()["projects"]
        assert {(p["name"], p["owner"], p["runs"]) for p in listed} == \
            {(p, "alice", threads) for p in projects}
    finally:
        s1.stop()
        s2.stop()
