"""What a batch of records may and may not do to a run on the team server: name another run,
carry a time that is not a number, nest too deep, hold keys the database refuses, and the
records read back page by page (in-process app; PostgreSQL where the database matters)."""

from __future__ import annotations

import json

import orjson
import pytest

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from serverproc import TEST_DATABASE_URL, fresh_pg_database, make_app  # noqa: E402

API = "/api/v1"


@pytest.fixture
def client(tmp_path):
    app, key = make_app(tmp_path / "srv")
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


@pytest.fixture
def pg_client(tmp_path):
    if not TEST_DATABASE_URL:
        pytest.skip("NBTRACKER_TEST_DATABASE_URL is not set (a PostgreSQL database to test on)")
    url, drop = fresh_pg_database(TEST_DATABASE_URL)
    app, key = make_app(tmp_path / "srv", db_url=url)
    try:
        with TestClient(app) as c:
            c.headers["Authorization"] = f"Bearer {key}"
            yield c
    finally:
        app.state.server.engine.dispose()
        drop()


def post(c, project, run, recs, first=None):
    first = recs[0]["seq"] if first is None else first
    body = json.dumps({"first_seq": first, "records": recs})
    return c.post(f"{API}/projects/{project}/runs/{run}/records", content=body,
                  headers={"Content-Type": "application/json"})


def run_rec(project, run_id, seq=1, ts=1000.0, **extra):
    return {"t": "run", "seq": seq, "id": run_id, "project": project, "ts": ts, **extra}


# -- a run record names the run it is uploaded to ----------------------------------------------

@pytest.mark.parametrize("rec", [run_rec("p", "other"), run_rec("elsewhere", "r1"),
                                 {"t": "run", "seq": 1, "ts": 1.0}])
def test_a_run_record_must_name_the_run_it_is_uploaded_to(client, rec):
    r = post(client, "p", "r1", [rec])
    assert r.status_code == 422, r.text
    assert "must name the run it is uploaded to" in r.json()["detail"]
    assert client.get(f"{API}/projects/p/runs/r1").status_code in (200, 404)
    # nothing of the batch was stored
    got = client.get(f"{API}/projects/p/runs/r1/records")
    assert got.status_code == 404 or got.content == b""


def test_a_later_run_record_naming_another_run_refuses_the_batch(client):
    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    r = post(client, "p", "r1", [{"t": "history", "seq": 2, "step": 0, "d": {"x": 1}},
                                 run_rec("p", "victim", seq=3)])
    assert r.status_code == 422, r.text
    item = client.get(f"{API}/projects/p/runs/r1").json()
    assert (item["project"], item["id"]) == ("p", "r1")
    assert (item["state"]["project"], item["state"]["id"]) == ("p", "r1")
    assert item["next_seq"] == 2


def test_the_run_item_names_the_run_as_its_url_does(client):
    """Whatever a stored state says (one stored before run records were checked), the item and
    the listing name the row's project and id."""
    from nbtracker.store.state import RunState

    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    s = RunState()
    s.apply(run_rec("victim-project", "victim"))
    set_state(client, "r1", s)
    item = client.get(f"{API}/projects/p/runs/r1").json()
    assert (item["project"], item["id"]) == ("p", "r1")
    assert (item["state"]["project"], item["state"]["id"]) == ("p", "r1")
    listed = client.get(f"{API}/projects/p/runs").json()["runs"]
    assert [(x["state"]["project"], x["state"]["id"]) for x in listed] == [("p", "r1")]
    r = client.get(f"{API}/projects/p/runs", params={"filters": '{"project": "p", "id": "r1"}'})
    assert r.json()["total"] == 1


def set_state(client, run_id, state) -> None:
    """Store `state` as the replayed state of `run_id` (as a database written by an older
    version could hold it)."""
    from nbtracker.server.db import write_transaction
    from nbtracker.server.schema import runs

    with write_transaction(client.app.state.server.engine) as conn:
        conn.execute(runs.update().where(runs.c.run_id == run_id).values(state=state.dump()))


# -- times -------------------------------------------------------------------------------------

@pytest.mark.parametrize("ts", ["yesterday", None, True, [1]])
def test_a_record_whose_ts_is_not_a_number_is_refused(client, ts):
    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    r = post(client, "p", "r1", [{"t": "history", "seq": 2, "step": 0, "d": {"x": 1}, "ts": ts}])
    assert r.status_code == 422, r.text
    assert "ts" in r.json()["detail"]
    r = post(client, "p", "r2", [run_rec("p", "r2", ts=ts)])
    assert r.status_code == 422, r.text
    assert client.get(f"{API}/projects/p/runs").status_code == 200


def test_the_listing_survives_a_stored_run_whose_times_are_not_numbers(client):
    """A state stored before times were checked (or by a future version) does not break the
    project's listing."""
    from nbtracker.store.state import RunState

    assert post(client, "p", "good", [run_rec("p", "good")]).status_code == 200
    assert post(client, "p", "bad", [run_rec("p", "bad")]).status_code == 200
    s = RunState()
    s.apply(run_rec("p", "bad"))
    s.created, s.updated, s._segment_start = "yesterday", "today", "then"
    set_state(client, "bad", s)
    r = client.get(f"{API}/projects/p/runs")
    assert r.status_code == 200, r.text
    assert {x["id"] for x in r.json()["runs"]} == {"good", "bad"}
    r = client.get(f"{API}/projects/p/runs", params={"filters": '{"state": "running"}',
                                                     "order": "created_at"})
    assert r.status_code == 200, r.text


# -- records read back page by page ------------------------------------------------------------

def read_pages(c, project, run_id, limit):
    """Every record of the run, read page by page as X-Next-Seq says; and the page sizes."""
    after, got, sizes = 0, [], []
    for _ in range(1000):
        r = c.get(f"{API}/projects/{project}/runs/{run_id}/records",
                  params={"after_seq": after, "limit": limit})
        assert r.status_code == 200, r.text
        lines = r.content.splitlines()
        nxt = int(r.headers["X-Next-Seq"])
        if not lines:
            assert nxt == after + 1
            return got, sizes
        page = [orjson.loads(line) for line in lines]
        assert nxt == page[-1]["seq"] + 1
        got += page
        sizes.append(len(page))
        after = nxt - 1
    raise AssertionError("the pages never end")


def test_records_read_page_by_page_come_back_each_exactly_once(client):
    # two batches, seqs skipping inside the second (a corrupt line the client skipped)
    recs = [run_rec("p", "r1")] + [{"t": "history", "seq": i, "step": i, "d": {"x": i}}
                                   for i in range(2, 12)]
    assert post(client, "p", "r1", recs).status_code == 200
    more = [{"t": "history", "seq": s, "step": s, "d": {"x": s}} for s in (12, 15, 16, 20, 21)]
    assert post(client, "p", "r1", more, first=12).status_code == 200
    got, sizes = read_pages(client, "p", "r1", limit=3)
    assert [r["seq"] for r in got] == [r["seq"] for r in recs + more]
    assert got == recs + more
    assert max(sizes) == 3 and len(sizes) == 6
    r = client.get(f"{API}/projects/p/runs/r1/records", params={"after_seq": 21})
    assert r.content == b"" and r.headers["X-Next-Seq"] == "22"


def test_a_page_of_records_is_bounded_in_bytes(client, monkeypatch):
    from nbtracker.server import runs as run_store

    monkeypatch.setattr(run_store, "PAGE_BYTES", 1000)
    recs = [run_rec("p", "r1")] + [{"t": "alert", "seq": i, "title": "x" * 300}
                                   for i in range(2, 12)]
    recs.append({"t": "alert", "seq": 12, "title": "y" * 5000})  # alone past the bound
    assert post(client, "p", "r1", recs).status_code == 200
    got, sizes = read_pages(client, "p", "r1", limit=100_000)
    assert got == recs
    assert len(sizes) > 3 and sizes[-1] == 1
    r = client.get(f"{API}/projects/p/runs/r1/records", params={"limit": 100_000})
    assert len(r.content) <= 1000


# -- /histories -----------------------------------------------------------------------------------

def test_histories_answer_each_run_and_key_once(client):
    recs = [run_rec("p", "r1")] + [{"t": "history", "seq": i, "step": i, "d": {"x": i, "y": -i}}
                                   for i in range(2, 7)]
    assert post(client, "p", "r1", recs).status_code == 200
    body = {"runs": [{"project": "p", "id": "r1"}] * 3, "keys": ["x", "y", "x", "x"], "samples": 10}
    r = client.post(f"{API}/histories", json=body)
    assert r.status_code == 200, r.text
    series = r.json()["series"]
    assert sorted(s["key"] for s in series) == ["x", "y"]
    assert next(s for s in series if s["key"] == "x")["value"] == [2, 3, 4, 5, 6]


def test_histories_refuse_an_answer_past_the_bound(client):
    from nbtracker.server.histories import MAX_POINTS

    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    assert post(client, "p", "r2", [run_rec("p", "r2")]).status_code == 200
    runs = [{"project": "p", "id": "r1"}, {"project": "p", "id": "r2"}]
    keys = [f"k{i}" for i in range(MAX_POINTS // 100_000 // 2 + 1)]
    r = client.post(f"{API}/histories", json={"runs": runs, "keys": keys, "samples": 100_000})
    assert r.status_code == 413, r.text
    assert "at most" in r.json()["detail"]
    # duplicates do not count: the same request with each run named twice is as large
    r = client.post(f"{API}/histories", json={"runs": runs * 2, "keys": keys[:-1] * 3,
                                              "samples": 100_000})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("runs, keys", [
    ([{"project": "p\x00", "id": "r1"}], ["x"]),
    ([{"project": "a/b", "id": "r1"}], ["x"]),
    ([{"project": "p", "id": "r1"}], ["a\x00b"]),
    ([{"project": "p", "id": "r1"}], ["x", "a\nb"]),
])
def test_histories_refuse_bad_projects_and_keys(client, runs, keys):
    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    r = client.post(f"{API}/histories", json={"runs": runs, "keys": keys})
    assert r.status_code == 422, r.text


# -- one run id, one log ---------------------------------------------------------------------------

def fingerprint(first_line: bytes) -> str:
    import hashlib

    return hashlib.sha256(first_line).hexdigest()


def test_a_run_upsert_with_another_fingerprint_is_another_run(client):
    url = f"{API}/projects/p/runs/exp1"
    a = fingerprint(b'{"t": "run", "seq": 1, "host": "m1"}\n')
    b = fingerprint(b'{"t": "run", "seq": 1, "host": "m2"}\n')
    assert client.put(url, json={"fingerprint": a}).status_code == 200
    assert client.put(url, json={"fingerprint": a, "live": False}).status_code == 200
    assert client.put(url, json={}).status_code == 200  # a client that sends none
    r = client.put(url, json={"fingerprint": b, "live": True})
    assert r.status_code == 409, r.text
    assert r.json()["detail"].startswith("another run with this id is already on the server "
                                         "(its first record differs)")
    assert "next_seq" not in r.json()
    assert client.get(url).json()["status"] == "crashed"  # the refused upsert changed nothing
    assert client.put(url, json={"fingerprint": a}).status_code == 200
    for bad in ("x", a.upper(), 5, a + "\n"):
        assert client.put(url, json={"fingerprint": bad}).status_code == 422


def test_a_batch_with_another_first_record_is_another_run(client):
    mine = [run_rec("p", "exp1", host="m1")] + [
        {"t": "history", "seq": i, "step": i, "d": {"m1": i}} for i in range(2, 6)]
    theirs = [run_rec("p", "exp1", host="m2")] + [
        {"t": "history", "seq": i, "step": i, "d": {"m2": i}} for i in range(2, 9)]
    assert post(client, "p", "exp1", mine).json() == {"next_seq": 6}
    r = post(client, "p", "exp1", theirs)
    assert r.status_code == 409, r.text
    assert "another run with this id" in r.json()["detail"] and "next_seq" not in r.json()
    # a log whose first record comes at a lower seq is not this run's either
    r = post(client, "p", "exp1", [{"t": "history", "seq": 1, "step": 0, "d": {"m3": 0}},
                                   {"t": "history", "seq": 9, "step": 1, "d": {"m3": 1}}])
    assert r.status_code == 409, r.text
    # the run's own client resending its first batch (a lost answer) is fine
    assert post(client, "p", "exp1", mine + [{"t": "history", "seq": 6, "step": 6,
                                              "d": {"m1": 6}}]).json() == {"next_seq": 7}
    got = client.get(f"{API}/projects/p/runs/exp1/records").content.splitlines()
    assert [orjson.loads(x) for x in got][:5] == mine and len(got) == 6


# -- nesting -----------------------------------------------------------------------------------------

def nested(n: int):
    v = 1
    for _ in range(n):
        v = {"a": v}
    return v


def test_deeply_nested_records_are_stored_or_refused_never_an_error(client):
    from nbtracker.server.runs import MAX_DEPTH

    ok = MAX_DEPTH - 10  # past orjson's own limit (254): stored through the json module
    recs = [run_rec("p", "r1"), {"t": "config", "seq": 2, "d": {"x": nested(ok)}}]
    r = post(client, "p", "r1", recs)
    assert r.status_code == 200, r.text
    got = client.get(f"{API}/projects/p/runs/r1/records").content.splitlines()
    assert [json.loads(line) for line in got] == recs
    assert client.get(f"{API}/projects/p/runs/r1").json()["state"]["config"]["x"] == nested(ok)
    assert client.get(f"{API}/projects/p/runs").status_code == 200
    r = post(client, "p", "r1", [{"t": "config", "seq": 3, "d": {"x": nested(900)}}])
    assert r.status_code == 422, r.text
    assert "deeper" in r.json()["detail"]
    r = post(client, "p", "r1", [{"t": "history", "seq": 3, "step": 0, "d": {"x": 1}}])
    assert r.json() == {"next_seq": 4}


def test_deeply_nested_filters_are_refused(client):
    assert post(client, "p", "r1", [run_rec("p", "r1")]).status_code == 200
    flt = {"id": "r1"}
    for _ in range(400):
        flt = {"$and": [flt]}
    r = client.get(f"{API}/projects/p/runs", params={"filters": json.dumps(flt)})
    assert r.status_code == 422, r.text
    flt = {"id": "r1"}
    for _ in range(20):
        flt = {"$and": [flt]}
    r = client.get(f"{API}/projects/p/runs", params={"filters": json.dumps(flt)})
    assert r.status_code == 200 and r.json()["total"] == 1


# -- keys the database refuses -------------------------------------------------------------------

def check_odd_history_keys(c):
    recs = [run_rec("p", "r1"),
            {"t": "history", "seq": 2, "step": 0, "d": {"a\x00b": 1.0, "x": 1.0}},
            {"t": "history", "seq": 3, "step": 1, "d": {"k" * 3000: 2.0, "x": 2.0}}]
    r = post(c, "p", "r1", recs)
    assert r.status_code == 200, r.text
    got = [orjson.loads(line) for line in c.get(f"{API}/projects/p/runs/r1/records").content.splitlines()]
    assert got == recs  # the records keep every key
    r = c.post(f"{API}/histories", json={"runs": [{"project": "p", "id": "r1"}],
                                         "keys": ["x", "k" * 3000]})
    assert r.status_code == 200, r.text
    by_key = {s["key"]: s["value"] for s in r.json()["series"]}
    assert by_key == {"x": [1.0, 2.0], "k" * 3000: []}
    assert "a\\u0000b" in c.get(f"{API}/projects/p/runs/r1").text  # in the summary


def test_history_keys_the_database_refuses_are_kept_in_the_records(client):
    check_odd_history_keys(client)


def test_history_keys_the_database_refuses_are_kept_in_the_records_postgresql(pg_client):
    check_odd_history_keys(pg_client)
