"""The team server through its HTTP API, against a real `nbtracker server` process."""

from __future__ import annotations

import math
import time

import orjson
import pytest
import requests
from serverproc import ServerProcess, cli

from nbtracker.store.recordlog import make_record

pytest.importorskip("fastapi", reason="the server extra is not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server (SQLite) for the module; tests use their own project names."""
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture
def api(server):
    return server.session()


def records(start: int, n: int, step0: int = 0) -> list[dict]:
    out = []
    for i in range(n):
        rec = make_record("history", {"loss": 1.0 / (i + 1), "i": i}, step=step0 + i)
        rec["seq"], rec["ts"] = start + i, 1000.0 + i
        out.append(rec)
    return out


def post(api, url, project, run, first, recs):
    body = b'{"first_seq":%d,"records":[' % first + b",".join(orjson.dumps(r) for r in recs) + b"]}"
    return api.post(f"{url}/api/v1/projects/{project}/runs/{run}/records", data=body,
                    headers={"Content-Type": "application/json"})


def stored(api, url, project, run, after=0) -> list[dict]:
    r = api.get(f"{url}/api/v1/projects/{project}/runs/{run}/records", params={"after_seq": after})
    assert r.status_code == 200, r.text
    return [orjson.loads(line) for line in r.content.splitlines()]


def test_health_is_public_and_whoami_needs_a_key(server):
    assert requests.get(server.url + "/api/v1/health").json()["ok"] is True
    assert requests.get(server.url + "/api/v1/whoami").status_code == 401
    r = server.session().get(server.url + "/api/v1/whoami")
    assert r.json() == {"user": "admin", "admin": True}


def test_first_start_prints_an_admin_key_once(server):
    assert server.admin_key and server.admin_key.startswith("nbt_") and len(server.admin_key) == 44
    server.restart()
    assert not any("admin API key" in line for line in server.output)
    assert server.session().get(server.url + "/api/v1/whoami").status_code == 200


def test_upsert_is_idempotent_and_creates_the_project(server, api):
    url = f"{server.url}/api/v1/projects/p-upsert/runs/r1"
    assert api.put(url, json={}).json() == {"next_seq": 1, "eseq": 0, "blobs": []}
    assert api.put(url).json() == {"next_seq": 1, "eseq": 0, "blobs": []}
    names = [p["name"] for p in api.get(server.url + "/api/v1/projects").json()["projects"]]
    assert "p-upsert" in names


def test_batches_are_stored_exactly_once(server, api):
    u = server.url
    api.put(f"{u}/api/v1/projects/p-once/runs/r1")
    recs = records(1, 30)
    assert post(api, u, "p-once", "r1", 1, recs[:10]).json() == {"next_seq": 11}
    # the answer to that batch was lost: the client sends it again with more
    assert post(api, u, "p-once", "r1", 1, recs[:20]).json() == {"next_seq": 21}
    # a pure duplicate changes nothing
    assert post(api, u, "p-once", "r1", 5, recs[4:15]).json() == {"next_seq": 21}
    # a gap is refused with the seq the server expects
    r = post(api, u, "p-once", "r1", 25, recs[24:])
    assert r.status_code == 409 and r.json()["next_seq"] == 21
    assert post(api, u, "p-once", "r1", 21, recs[20:]).json() == {"next_seq": 31}
    assert stored(api, u, "p-once", "r1") == recs
    assert [r["seq"] for r in stored(api, u, "p-once", "r1", after=25)] == list(range(26, 31))


def test_seqs_may_skip_inside_a_batch(server, api):
    u = server.url
    recs = records(1, 5)
    del recs[2]  # seq 3 was a corrupt line in the client's log
    assert post(api, u, "p-skip", "r1", 1, recs).json() == {"next_seq": 6}
    assert [r["seq"] for r in stored(api, u, "p-skip", "r1")] == [1, 2, 4, 5]


@pytest.mark.parametrize("body, status", [
    (b'{"first_seq":1,"records":[1]}', 422),
    (b'{"first_seq":1,"records":[{"t":"history"}]}', 422),
    (b'{"first_seq":1,"records":[{"t":"x","seq":2},{"t":"x","seq":2}]}', 422),
    (b'{"first_seq":3,"records":[{"t":"x","seq":2}]}', 422),
    (b'{"first_seq":1,"records":[{"t":"x","seq":"1"}]}', 422),
    (b'{"first_seq":true,"records":[]}', 422),
    (b'not json', 400),
])
def test_malformed_batches_are_refused(server, api, body, status):
    r = api.post(f"{server.url}/api/v1/projects/p-bad/runs/r1/records", data=body)
    assert r.status_code == status, r.text


def test_records_come_back_as_sent_big_ints_and_nan(server, api):
    u = server.url
    recs = [make_record("history", {"big": 2**70, "neg": -(2**65), "nan": math.nan,
                                    "inf": -math.inf, "s": "text", "none": None}, step=0),
            make_record("config", {"deep": {"x": 2**80, "y": [1.5, math.inf]}})]
    for i, r in enumerate(recs, 1):
        r["seq"], r["ts"] = i, 5.0
    lines = [orjson.dumps(r) for r in recs]
    body = b'{"first_seq":1,"records":[' + b",".join(lines) + b"]}"
    assert api.post(f"{u}/api/v1/projects/p-exact/runs/r1/records", data=body).json() == {"next_seq": 3}
    r = api.get(f"{u}/api/v1/projects/p-exact/runs/r1/records")
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.headers["x-next-seq"] == "3"
    assert r.content.splitlines() == lines


def test_user_keys_and_revocation_through_the_cli(server):
    key = server.create_user("carol")
    s = server.session(key)
    assert s.get(server.url + "/api/v1/whoami").json() == {"user": "carol", "admin": False}
    key_id = key[4:12]
    listing = cli("key", "ls", "carol", *server.db_args()).stdout
    assert key_id in listing and key not in listing
    cli("key", "revoke", key_id, *server.db_args())
    assert s.get(server.url + "/api/v1/whoami").status_code == 401


def _status(api, url, project, run) -> str:
    return api.get(f"{url}/api/v1/projects/{project}/runs/{run}").json()["status"]


def test_a_running_run_is_crashed_once_its_process_stops_speaking(tmp_path):
    srv = ServerProcess(tmp_path / "srv", extra_args=("--live-timeout", "1"))
    try:
        api, u = srv.session(), srv.url
        run_url = f"{u}/api/v1/projects/p-live/runs/r1"
        run_rec = {"t": "run", "id": "r1", "project": "p-live", "name": "n", "seq": 1, "ts": 1.0}
        assert api.put(run_url, json={"live": True}).status_code == 200
        assert post(api, u, "p-live", "r1", 1, [run_rec]).status_code == 200
        assert _status(api, u, "p-live", "r1") == "running"
        listed = api.get(f"{u}/api/v1/projects/p-live/runs",
                         params={"filters": '{"state": "running"}'}).json()
        assert [r["id"] for r in listed["runs"]] == ["r1"]
        time.sleep(1.3)  # no word from the run's process for longer than --live-timeout
        assert _status(api, u, "p-live", "r1") == "crashed"
        api.put(run_url, json={"live": True})  # it speaks again
        assert _status(api, u, "p-live", "r1") == "running"
        api.put(run_url, json={"live": False})  # `nbtracker sync`: its process is gone
        assert _status(api, u, "p-live", "r1") == "crashed"
        exit_rec = {"t": "exit", "state": "finished", "exit_code": 0, "seq": 2, "ts": 2.0}
        assert post(api, u, "p-live", "r1", 2, [exit_rec]).status_code == 200
        assert _status(api, u, "p-live", "r1") == "finished"
        assert api.put(run_url, json={"live": "yes"}).status_code == 422
    finally:
        srv.stop()


def test_a_key_id_never_reads_as_an_option(server, monkeypatch):
    """One key in 64 would start with '-' and `nbtracker key revoke ID` could not name it."""
    from nbtracker.server import accounts

    draws = iter(["-" + "a" * 39, "-" + "b" * 39, "c" * 40])
    monkeypatch.setattr(accounts.secrets, "token_urlsafe", lambda n: next(draws))
    assert accounts.new_key() == "nbt_" + "c" * 40
    key = server.create_user("dash")
    cli("key", "revoke", key[4:12], *server.db_args())
    assert server.session(key).get(server.url + "/api/v1/whoami").status_code == 401
