"""Uploading while logging, against a real server on loopback (tests/serverproc.py), through a
fault-injecting proxy (tests/faultproxy.py): exactly once whatever fails in between."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest
from faultproxy import FaultProxy, chaos
from uploadcheck import assert_uploaded, server_records

import nbtracker
from nbtracker.sync import uploader
from nbtracker.sync.cursor import Cursor

serverproc = pytest.importorskip("serverproc", reason="the server's test harness is not here yet")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = serverproc.ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key(server):
    return server.create_user("alice")


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Short waits between retries and polls, so many faults fit in a test."""
    monkeypatch.setattr(uploader, "BACKOFF_BASE", 0.02)
    monkeypatch.setattr(uploader, "BACKOFF_CAP", 0.3)
    monkeypatch.setattr(uploader, "POLL", 0.05)


def online(monkeypatch, url: str, key: str) -> None:
    monkeypatch.setenv("NBTRACKER_BASE_URL", url)
    monkeypatch.setenv("NBTRACKER_API_KEY", key)
    monkeypatch.setenv("NBTRACKER_SILENT", "true")


def log_a_run(project: str, steps: int, every: int = 50, pause: float = 0.01, **init_kw):
    """A run with every kind of record: config, history (with NaN and big ints), summary by
    hand, a metric rule, an alert, an image, a saved file; logged in slices so the uploader
    sends many batches."""
    run = nbtracker.init(project=project, config={"lr": 1e-3, "layers": [64, 32]}, tags=["t"],
                         **init_kw)
    run.define_metric("val/loss", summary="min")
    for i in range(steps):
        run.log({"loss": 1.0 / (i + 1), "acc": i % 7, "val/loss": 2.0 - i / steps,
                 "odd": float("nan") if i % 97 == 0 else i, "big": 2**70 + i if i % 501 == 0 else i})
        if i % every == every - 1:
            time.sleep(pause)
        if i == steps // 3:
            run.log({"img": nbtracker.Image(np.full((4, 4), i % 255, dtype=np.uint8))})
            run.alert("halfway", "a third done")
            run.summary["best"] = i
            run.config.update({"phase": 2})
    with open("weights.bin", "wb") as f:
        f.write(os.urandom(3000))
    run.save("weights.bin")
    return run


def test_exactly_once_through_every_fault(server, key, monkeypatch):
    monkeypatch.setattr(uploader, "MAX_RECORDS", 40)  # many small batches: many faults
    proxy = FaultProxy(server.url, chaos(seed=7, rate=0.35))
    try:
        online(monkeypatch, proxy.url, key)
        run = log_a_run("chaos", 3000)
        t = time.monotonic()
        run.finish(timeout=120)
        assert run.upload_status()["state"] == "synced", run.upload_status()
        elapsed = time.monotonic() - t
    finally:
        proxy.stop()
    seen = {a if isinstance(a, str) else a[0] + str(a[1]) for a in proxy.actions("/records")}
    # every kind of fault met the record uploads at least once
    assert {"drop_before", "drop_after", "dup", "status500", "status503", "status429",
            "delay0.3", "reset"} <= seen, seen
    recs = assert_uploaded(server.url, key, run.storage_dir)
    assert recs[-1]["t"] == "exit" and len(recs) > 3000
    assert elapsed < 120
    files = _get(server, key, f"/projects/chaos/runs/{run.id}/files")["files"]
    assert {f["path"] for f in files} == {"weights.bin"}
    c = Cursor.load(run.storage_dir)
    assert c.next_seq == recs[-1]["seq"] + 1 and c.offset == os.path.getsize(
        os.path.join(run.storage_dir, "records.jsonl"))


def _get(server, key, path):
    import requests

    r = requests.get(server.url + "/api/v1" + path, headers={"Authorization": f"Bearer {key}"},
                     timeout=30)
    r.raise_for_status()
    return r.json()


def test_media_and_files_reach_the_server(server, key, monkeypatch):
    import requests

    online(monkeypatch, server.url, key)
    run = log_a_run("media", 200)
    run.finish(timeout=30)
    assert run.upload_status()["state"] == "synced"
    img = next(r for r in server_records(server.url, key, "media", run.id)
               if r["t"] == "history" and "img" in r["d"])["d"]["img"]
    r = requests.get(f"{server.url}/api/v1/projects/media/runs/{run.id}/blobs/{img['sha256']}",
                     headers={"Authorization": f"Bearer {key}"}, timeout=30)
    with open(os.path.join(run.storage_dir, img["path"]), "rb") as f:
        assert r.status_code == 200 and r.content == f.read()
    r = requests.get(f"{server.url}/api/v1/projects/media/runs/{run.id}/files/weights.bin",
                     headers={"Authorization": f"Bearer {key}"}, timeout=30)
    with open("weights.bin", "rb") as f:
        assert r.status_code == 200 and r.content == f.read()


@pytest.mark.slow
def test_server_killed_and_restarted_mid_run(server, key, monkeypatch):
    online(monkeypatch, server.url, key)
    run = nbtracker.init(project="restart")
    killed = threading.Event()

    def kill_and_restart():
        time.sleep(0.5)
        server.kill()  # SIGKILL: whatever it was doing is cut
        killed.set()
        time.sleep(1.5)
        server.restart()

    t = threading.Thread(target=kill_and_restart)
    t.start()
    states = set()
    for i in range(6000):
        run.log({"x": i})
        if i % 100 == 0:
            time.sleep(0.03)
            states.add(run.upload_status()["state"])
    t.join()
    assert killed.is_set() and "offline" in states  # the upload did see the server gone
    run.finish(timeout=60)
    assert run.upload_status()["state"] == "synced"
    assert_uploaded(server.url, key, run.storage_dir)


def test_refused_key_stops_uploading_with_one_line_while_logging_goes_on(server, capfd,
                                                                         monkeypatch):
    bad = "nbt_" + "x" * 36 + "BADK"
    monkeypatch.setenv("NBTRACKER_BASE_URL", server.url)
    monkeypatch.setenv("NBTRACKER_API_KEY", bad)
    run = nbtracker.init(project="refused")
    for i in range(500):
        run.log({"x": i})
    deadline = time.monotonic() + 10
    while run.upload_status()["state"] != "error" and time.monotonic() < deadline:
        time.sleep(0.05)
    st = run.upload_status()
    assert st["state"] == "error" and "401" in st["reason"] and st["behind"] >= 500
    for i in range(500):
        run.log({"x": i})
    assert run.step == 1000
    t = time.monotonic()
    run.finish()
    assert time.monotonic() - t < 2  # nothing to wait for: the uploader has stopped
    err = capfd.readouterr().err
    assert err.count("upload stopped") == 1, err
    assert bad not in err
    assert "nbtracker sync" in err
    local = nbtracker.Api(dir=os.environ["NBTRACKER_DIR"])  # Api() would ask the server
    assert local.run(f"refused/{run.id}").history()["x"].count() == 1000


def test_init_with_the_server_down_returns_fast_and_a_later_run_uploads_it(server, key,
                                                                           monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    down = f"http://127.0.0.1:{s.getsockname()[1]}"
    s.close()  # nothing listens there now
    online(monkeypatch, down, key)
    t = time.monotonic()
    run = nbtracker.init(project="down")
    init_s = time.monotonic() - t
    for i in range(300):
        run.log({"x": i})
    time.sleep(0.3)
    st = run.upload_status()
    assert st["state"] == "offline" and st["behind"] > 300 and "cannot reach" in st["reason"]
    t = time.monotonic()
    run.finish(timeout=0.5)
    fin_s = time.monotonic() - t
    assert init_s < 0.25, init_s
    assert 0.45 <= fin_s < 1.5, fin_s
    # the cursor names the server it was meant for; a new run for that server uploads it
    c = Cursor.load(run.storage_dir)
    assert c.base_url == down and c.next_seq == 1
    c.base_url = server.url  # the same server, found again at its real address
    c.save(run.storage_dir)
    online(monkeypatch, server.url, key)
    run2 = nbtracker.init(project="down")
    run2.log({"y": 1})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if Cursor.load(run.storage_dir).next_seq > 300:
            break
        time.sleep(0.1)
    run2.finish(timeout=30)
    assert_uploaded(server.url, key, run.storage_dir)
    assert_uploaded(server.url, key, run2.storage_dir)


def test_finish_with_the_server_down_takes_about_its_timeout(monkeypatch, capfd):
    monkeypatch.setenv("NBTRACKER_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("NBTRACKER_API_KEY", "nbt_" + "q" * 40)
    run = nbtracker.init(project="down2")
    for i in range(100):
        run.log({"x": i})
    t = time.monotonic()
    run.finish(timeout=0.5)
    took = time.monotonic() - t
    assert 0.45 <= took < 1.2, took
    err = capfd.readouterr().err
    line = next(x for x in err.splitlines() if "finished" in x)
    assert "not uploaded yet" in line and f"nbtracker sync {run.storage_dir}" in line
    assert "q" * 40 not in err


def test_upload_status_counts_what_is_behind(server, key, monkeypatch):
    online(monkeypatch, server.url, key)
    run = nbtracker.init(project="status")
    for i in range(2000):
        run.log({"x": i})
    deadline = time.monotonic() + 20
    while run.upload_status()["state"] != "synced" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.upload_status() == {"state": "synced", "behind": 0, "reason": None}
    # the live run's uploader told the server its process is alive
    assert nbtracker.Api().run(f"status/{run.id}").state == "running"
    run.finish(timeout=20)
    assert_uploaded(server.url, key, run.storage_dir)
    assert nbtracker.Api().run(f"status/{run.id}").state == "finished"


def test_key_appears_nowhere_in_the_run(server, key, monkeypatch, capfd):
    online(monkeypatch, server.url, key)
    monkeypatch.delenv("NBTRACKER_SILENT")
    run = log_a_run("secret", 300)
    run.finish(timeout=30)
    out = capfd.readouterr()
    assert key not in out.out and key not in out.err
    for dirpath, _, files in os.walk(run.storage_dir):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                assert key.encode() not in fh.read(), f
    assert key not in repr(run.settings)


@pytest.mark.slow
def test_no_network_call_on_the_logging_thread(server, key, monkeypatch):
    """A server that answers in 0.7 s does not slow log()."""
    proxy = FaultProxy(server.url, lambda m, p, n: ("delay", 0.7))
    try:
        online(monkeypatch, proxy.url, key)
        t = time.monotonic()
        run = nbtracker.init(project="slow")
        for i in range(3000):
            run.log({"x": i})
        took = time.monotonic() - t
        assert took < 1.0, took
        run.finish(timeout=60)
    finally:
        proxy.stop()
    assert_uploaded(server.url, key, run.storage_dir)


def test_live_panel_shows_the_upload_state(server, key, monkeypatch):
    from nbtracker.notebook import live

    run = nbtracker.init(project="panel", mode="offline")
    panel = live.LivePanel()
    live.LiveFeed(run, panel)
    assert panel.info["mode"] == "offline" and "upload" not in panel.info
    run.finish(quiet=True)

    monkeypatch.setenv("NBTRACKER_BASE_URL", "http://127.0.0.1:9")  # nothing listens
    monkeypatch.setenv("NBTRACKER_API_KEY", key)
    run = nbtracker.init(project="panel")
    panel = live.LivePanel()
    live.LiveFeed(run, panel)
    run.log({"x": 1})
    deadline = time.monotonic() + 5
    while "offline, 2" not in panel.info.get("upload", "") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel.info["upload"].startswith("offline, 2 records behind (cannot reach"), panel.info
    run.finish(timeout=0, quiet=True)

    online(monkeypatch, server.url, key)
    run = nbtracker.init(project="panel")
    panel = live.LivePanel()
    live.LiveFeed(run, panel)
    run.log({"x": 1})
    deadline = time.monotonic() + 10
    while panel.info.get("upload") != "synced" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert panel.info["mode"] == "online" and panel.info["upload"] == "synced"
    run.finish(timeout=10)


@pytest.mark.slow
@pytest.mark.parametrize("backup_at", ["mid-run", "before the run"])
def test_server_restored_from_an_older_backup_gets_the_records_again(backup_at, tmp_path,
                                                                     monkeypatch):
    """The server loses acknowledged records (restored from a backup) while a run uploads:
    the next batch meets a 409 (expecting record 1 when the backup predates the run), the uploader goes
    back to what the server has, and the server ends with every record once."""
    import shutil

    srv = serverproc.ServerProcess(tmp_path / "srv")
    try:
        key = srv.create_user("carol")
        online(monkeypatch, srv.url, key)

        def backup() -> None:
            srv.stop()
            shutil.copytree(srv.data_dir, tmp_path / "backup")
            srv.start()

        if backup_at == "before the run":
            backup()
        run = nbtracker.init(project="backup")

        def log_and_wait(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                run.log({"x": i})
            deadline = time.monotonic() + 20
            while run.upload_status()["state"] != "synced" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert run.upload_status()["state"] == "synced"

        log_and_wait(0, 500)
        if backup_at == "mid-run":
            backup()
        log_and_wait(500, 1500)
        acked = Cursor.load(run.storage_dir).next_seq
        srv.stop()
        shutil.rmtree(srv.data_dir)
        shutil.copytree(tmp_path / "backup", srv.data_dir)
        srv.start()
        if backup_at == "mid-run":
            assert len(server_records(srv.url, key, "backup", run.id)) == 501 < acked - 1
        log_and_wait(1500, 1600)
        run.finish(timeout=30)
        debug = open(os.path.join(run.storage_dir, "debug.log")).read()
        assert f"expects record {502 if backup_at == 'mid-run' else 1} " in debug
        assert_uploaded(srv.url, key, run.storage_dir)
    finally:
        srv.stop()
