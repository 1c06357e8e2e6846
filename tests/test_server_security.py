"""Security of the team server: keys on every route, projects private to their users, no path
from a client reaching the file system, bounded bodies, the Host header, keys stored hashed."""

from __future__ import annotations

import gzip
import sqlite3

import orjson
import pytest
import requests

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.routing import APIRoute  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from serverproc import ServerProcess, cli, make_app  # noqa: E402

PUBLIC = {("GET", "/api/v1/health"), ("GET", "/openapi.json"), ("HEAD", "/openapi.json")}
SAMPLE = {"project": "p", "run_id": "r1", "sha256": "0" * 64, "path": "f.txt"}


@pytest.fixture
def app_and_key(tmp_path):
    return make_app(tmp_path / "srv")


@pytest.fixture
def client(app_and_key):
    app, key = app_and_key
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def served_routes(app) -> list:
    """Every route the app serves, routers included (the view the OpenAPI schema takes)."""
    from fastapi import routing

    if hasattr(routing, "iter_route_contexts"):
        return list(routing.iter_route_contexts(app.routes))
    return list(app.routes)


def route_calls(app):
    """(method, concrete path, route) for every route the app serves."""
    for route in served_routes(app):
        path = route.path
        for name, value in SAMPLE.items():
            path = path.replace(f"{{{name}}}", value).replace(f"{{{name}:path}}", value)
        assert "{" not in path, f"no sample value for a parameter of {route.path}"
        for method in sorted(getattr(route, "methods", None) or ()):
            yield method, path, route


def test_every_route_but_the_allow_list_needs_a_key(app_and_key):
    app, _ = app_and_key
    calls = list(route_calls(app))
    api_routes = {(c[0], c[2].path) for c in calls
                  if isinstance(getattr(c[2], "original_route", c[2]), APIRoute)}
    assert len(api_routes) >= 14, api_routes  # the enumeration sees the routers' routes
    with TestClient(app) as c:
        for method, path, route in calls:
            for headers in ({}, {"Authorization": "Bearer nbt_" + "x" * 40},
                            {"Authorization": "Basic YWRtaW46YWRtaW4="}):
                r = c.request(method, path, headers=headers, content=b"{}")
                if (method, route.path) in PUBLIC:
                    assert r.status_code == 200, (method, path)
                else:
                    assert r.status_code == 401, (method, path, headers, r.status_code, r.text)


def test_no_docs_page_that_loads_scripts(client):
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "nbtracker server"


def upload(c, project, run, recs, first=1):
    body = b'{"first_seq":%d,"records":[' % first + b",".join(orjson.dumps(r) for r in recs) + b"]}"
    return c.post(f"/api/v1/projects/{project}/runs/{run}/records", content=body)


def put_blob(c, project, run, data: bytes):
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    r = c.put(f"/api/v1/projects/{project}/runs/{run}/blobs/{sha}", content=data,
              headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 200, r.text
    return sha


def test_another_users_project_is_not_found_for_reading_and_writing(tmp_path):
    srv = ServerProcess(tmp_path / "srv")
    try:
        alice, bob = srv.session(srv.create_user("alice")), srv.session(srv.create_user("bob"))
        u = srv.url + "/api/v1"
        assert alice.put(f"{u}/projects/secret/runs/r1").status_code == 200
        assert upload(_Prefixed(alice, srv.url), "secret", "r1",
                      [{"t": "run", "seq": 1, "ts": 1.0, "id": "r1", "project": "secret"}]).ok
        sha = put_blob(_Prefixed(alice, srv.url), "secret", "r1", b"alice's data")
        run = f"{u}/projects/secret/runs/r1"
        reads = [bob.get(run), bob.get(f"{u}/projects/secret/runs"), bob.get(run + "/records"),
                 bob.get(run + "/files"), bob.get(run + "/files/x"), bob.get(f"{run}/blobs/{sha}"),
                 bob.post(f"{u}/histories", json={"runs": [{"project": "secret", "id": "r1"}],
                                                  "keys": ["loss"]})]
        writes = [bob.put(run), bob.put(f"{u}/projects/secret/runs/r2"),
                  upload(_Prefixed(bob, srv.url), "secret", "r1",
                         [{"t": "exit", "seq": 2, "ts": 2.0}], first=2),
                  bob.post(run + "/edits", json={"edits": [{"t": "meta", "seq": 1, "name": "x"}]}),
                  bob.put(f"{run}/blobs/{sha}", data=b"alice's data")]
        for r in reads + writes:
            assert r.status_code == 404, (r.request.method, r.request.url, r.status_code, r.text)
        # a project nobody has is 404 too, with the same answer
        assert bob.get(f"{u}/projects/nothing/runs/r1").json() == bob.get(run).json()
        assert "secret" not in str(bob.get(f"{u}/projects").json())
        # nothing of bob's reached alice's run; a member sees it, an admin sees it
        assert alice.get(run).json()["next_seq"] == 2
        cli("project", "add-member", "secret", "bob", *srv.db_args())
        assert bob.get(run).status_code == 200
        cli("project", "remove-member", "secret", "bob", *srv.db_args())
        assert bob.get(run).status_code == 404
        assert srv.session().get(run).status_code == 200
        cli("user", "disable", "alice", *srv.db_args())
        assert alice.get(run).status_code == 401
    finally:
        srv.stop()


class _Prefixed:
    """A requests session that takes paths like TestClient does."""

    def __init__(self, s: requests.Session, base: str):
        self.s, self.base = s, base

    def post(self, path, content=None, **kw):
        return self.s.post(self.base + path, data=content, **kw)

    def put(self, path, content=None, **kw):
        return self.s.put(self.base + path, data=content, **kw)


TRAVERSALS = ["../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "%2e%2e/%2e%2e/etc/passwd",
              "%252e%252e%252fetc%252fpasswd", "/etc/passwd", "a\x00b", "files/../../x",
              "..%2f..%2fetc%2fpasswd", "....//....//etc/passwd"]


def tree(root) -> set:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_file_names_are_labels_never_paths(tmp_path, client):
    data_dir = tmp_path / "srv"
    outside = tmp_path / "outside.txt"
    outside.write_text("outside")
    recs = [{"t": "run", "seq": 1, "ts": 1.0, "id": "r1", "project": "p"}]
    sha = put_blob(client, "p", "r1", b"the file")
    for i, name in enumerate(TRAVERSALS + [str(outside)], 2):
        recs.append({"t": "file", "seq": i, "ts": 1.0, "path": name, "size": 8, "sha256": sha})
    recs.append({"t": "file", "seq": len(recs) + 1, "ts": 1.0, "path": "evil",
                 "sha256": "../../../../etc/passwd"})
    assert upload(client, "p", "r1", recs).status_code == 200
    before = tree(data_dir)
    names = [f["path"] for f in client.get("/api/v1/projects/p/runs/r1/files").json()["files"]]
    assert set(TRAVERSALS) <= set(names)
    base = "/api/v1/projects/p/runs/r1/files/"
    for name in TRAVERSALS + [str(outside), "evil", "../nbtracker.sqlite", "../../blobs"]:
        for sent in (name, requests.utils.quote(name, safe=""),
                     requests.utils.quote(requests.utils.quote(name, safe=""), safe="")):
            try:
                r = client.get(base + sent)
            except Exception as e:  # a NUL the HTTP layer refuses to send
                assert "\x00" in sent, e
                continue
            assert r.status_code in (200, 404), (sent, r.status_code)
            if r.status_code == 200:
                assert r.content == b"the file", sent  # the label's blob, nothing else
    assert client.get(base + "evil").status_code == 404
    for bad in ("..%2f..%2fnbtracker.sqlite", "%2e%2e", "../" * 3 + "etc"):
        r = client.get(f"/api/v1/projects/p/runs/r1/blobs/{bad}")
        assert r.status_code in (404, 422)
        r = client.put(f"/api/v1/projects/p/runs/r1/blobs/{bad}", content=b"x")
        assert r.status_code in (404, 405, 422)
    assert tree(data_dir) == before
    assert outside.read_text() == "outside"
    assert {p for p in before if p.startswith("blobs/") and "/" in p[6:]} == {f"blobs/{sha[:2]}/{sha}"}


def test_a_blob_must_hash_to_its_name(client):
    r = client.put("/api/v1/projects/p/runs/r1/blobs/" + "a" * 64, content=b"not that")
    assert r.status_code == 400
    assert client.get("/api/v1/projects/p/runs/r1/blobs/" + "a" * 64).status_code == 404


def test_a_run_reads_only_blobs_it_uploaded(client):
    sha = put_blob(client, "p", "r1", b"mine")
    assert client.get(f"/api/v1/projects/p/runs/r1/blobs/{sha}").content == b"mine"
    client.put("/api/v1/projects/p/runs/r2")
    assert client.get(f"/api/v1/projects/p/runs/r2/blobs/{sha}").status_code == 404


def test_oversized_bodies_and_gzip_bombs_are_refused(tmp_path):
    app, key = make_app(tmp_path / "srv", max_request_bytes=100_000, max_blob_bytes=50_000)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        url = "/api/v1/projects/p/runs/r1/records"
        big = b'{"first_seq":1,"records":[' + b",".join(
            b'{"t":"x","seq":%d,"pad":"%s"}' % (i, b"x" * 100) for i in range(1, 1001)) + b"]}"
        assert c.post(url, content=big).status_code == 413
        many = b'{"first_seq":1,"records":[' + b",".join(
            b'{"t":"x","seq":%d}' % i for i in range(1, 1002)) + b"]}"
        assert len(many) < 100_000 and c.post(url, content=many).status_code == 413
        bomb = gzip.compress(b'{"first_seq":1,"records":[' + b" " * 50_000_000 + b"]}")
        assert len(bomb) < 100_000
        r = c.post(url, content=bomb, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413
        r = c.post(url, content=gzip.compress(b'{"first_seq":1,"records":[{"t":"x","seq":1}]}'),
                   headers={"Content-Encoding": "gzip"})
        assert r.json() == {"next_seq": 2}
        r = c.post(url, content=b"\x1f\x8b garbage", headers={"Content-Encoding": "gzip"})
        assert r.status_code == 400
        import hashlib
        blob = b"y" * 60_000
        sha = hashlib.sha256(blob).hexdigest()
        assert c.put(f"/api/v1/projects/p/runs/r1/blobs/{sha}", content=blob).status_code == 413
        r = c.put(f"/api/v1/projects/p/runs/r1/blobs/{sha}", content=gzip.compress(blob),
                  headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413
        assert c.get("/api/v1/health").status_code == 200  # still serving
    assert not list((tmp_path / "srv" / "blobs").rglob(sha))


def test_a_wrong_host_header_is_refused(tmp_path):
    srv = ServerProcess(tmp_path / "srv")
    try:
        h = srv.url + "/api/v1/health"
        for host in ("evil.example", f"evil.example:{srv.port}", "127.0.0.1.evil.example", ""):
            r = requests.get(h, headers={"Host": host})
            assert r.status_code in (400, 403), host
        for host in ("localhost", f"127.0.0.1:{srv.port}", f"[::1]:{srv.port}", "LOCALHOST"):
            assert requests.get(h, headers={"Host": host}).status_code == 200, host
        r = srv.session().get(srv.url + "/api/v1/whoami", headers={"Host": "rebind.example"})
        assert r.status_code == 400
    finally:
        srv.stop()
    srv = ServerProcess(tmp_path / "srv", extra_args=("--allowed-host", "tracker.lab"))
    try:
        assert requests.get(srv.url + "/api/v1/health", headers={"Host": "tracker.lab:80"}).ok
        assert requests.get(srv.url + "/api/v1/health", headers={"Host": "other.lab"}).status_code == 400
    finally:
        srv.stop()


def test_keys_are_stored_hashed(tmp_path):
    srv = ServerProcess(tmp_path / "srv")
    try:
        keys = [srv.admin_key, srv.create_user("dave")]
        keys.append(cli("key", "create", "dave", *srv.db_args()).stdout.split(": ")[1].strip())
        assert srv.session(keys[2]).get(srv.url + "/api/v1/whoami").json()["user"] == "dave"
    finally:
        srv.stop()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "srv").iterdir() if p.is_file())
    con = sqlite3.connect(tmp_path / "srv" / "nbtracker.sqlite")
    stored = con.execute("SELECT key_id, hash FROM api_keys").fetchall()
    assert len(stored) == 3
    import hashlib
    for key in keys:
        assert key.encode() not in raw and key[4:].encode() not in raw
        assert (key[4:12], hashlib.sha256(key.encode()).hexdigest()) in stored
