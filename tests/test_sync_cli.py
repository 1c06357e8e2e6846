"""`nbtracker login` and `nbtracker sync` against a real server on loopback: offline runs
uploaded later, twice without duplicates, a client killed mid-upload finished by sync, live
runs skipped, the key file 0600 and the key never printed."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
from faultproxy import FaultProxy
from helpers import REPO
from uploadcheck import assert_uploaded, local_records, server_records

import nbtracker
from nbtracker.sync.cursor import Cursor

serverproc = pytest.importorskip("serverproc", reason="the server's test harness is not here yet")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = serverproc.ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def key(server):
    return server.create_user("bob")


def cli(*args, input=None, env=None, timeout=120):
    e = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "nbtracker", *args], capture_output=True,
                          text=True, input=input, env=e, timeout=timeout)


def offline_run(project: str, steps: int, **kw) -> str:
    run = nbtracker.init(project=project, mode="dryrun", config={"a": 1}, **kw)
    for i in range(steps):
        run.log({"x": i, "y": i * 0.5})
    run.summary["final"] = "done"
    run.finish(quiet=True)
    return run.storage_dir


def test_login_stores_a_checked_key_0600_and_never_prints_it(server, key, store):
    p = cli("login", "--host", server.url + "/", input=key + "\n")
    assert p.returncode == 0, p.stderr
    assert key not in p.stdout + p.stderr and "nbt_…" + key[-4:] in p.stdout
    creds = store / "credentials.json"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert json.loads(creds.read_text()) == {server.url: key}
    settings = json.loads((store / "settings.json").read_text())
    assert settings["base_url"] == server.url and "api_key" not in settings
    assert stat.S_IMODE((store / "settings.json").stat().st_mode) == 0o600
    # the stored key is what runs use: a run uploads with no key in the environment
    run = nbtracker.init(project="after-login")
    run.log({"x": 1})
    run.finish(timeout=30, quiet=True)
    assert run.upload_status()["state"] == "synced"
    assert_uploaded(server.url, key, run.storage_dir)


def test_login_with_a_wrong_key_says_so_and_stores_nothing(server, store):
    bad = "nbt_" + "w" * 40
    p = cli("login", "--host", server.url, "--key", bad)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "login failed" in lines[0] and "401" in lines[0], p.stderr
    assert bad not in p.stdout + p.stderr
    assert not (store / "credentials.json").exists() and not (store / "settings.json").exists()
    with pytest.raises(nbtracker.UsageError):
        nbtracker.login(key=bad, host=server.url)
    assert not (store / "credentials.json").exists()


def test_offline_run_synced_then_synced_again_uploads_nothing(server, key, store):
    d = offline_run("dry", 2500, tags=["x"])
    env = {"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key}
    p = cli("sync", d, env=env)
    assert p.returncode == 0, p.stderr
    n = len(local_records(d))
    assert p.stdout.strip().endswith("synced") and f"{n} record(s)" in p.stdout, p.stdout
    assert key not in p.stdout + p.stderr
    assert_uploaded(server.url, key, d)
    p = cli("sync", d, env=env)
    assert p.returncode == 0 and p.stdout.strip().endswith("already synced"), p.stdout
    p = cli("sync", "--all", env=env)
    assert p.returncode == 0 and "already synced" in p.stdout and "record(s)" not in p.stdout
    assert_uploaded(server.url, key, d)


def test_sync_uploads_edits_made_after_the_run(server, key, store):
    d = offline_run("edits", 50)
    rid = os.path.basename(d)
    r = nbtracker.Api().run(f"edits/{rid}")
    r.config["lr"] = 0.5
    r.tags = ["edited"]
    r.update()
    env = {"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key}
    assert cli("sync", d, env=env).returncode == 0
    assert_uploaded(server.url, key, d)
    assert Cursor.load(d).eseq >= 1


def test_sync_skips_a_live_run_and_fails_on_a_refused_key(server, key, store):
    child = subprocess.Popen(
        [sys.executable, "-c", "import nbtracker, sys, time; r = nbtracker.init(project='live', "
         "mode='offline'); r.log({'x': 1}); print(r.storage_dir, flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        d = child.stdout.readline().strip()
        env = {"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key}
        p = cli("sync", d, env=env)
        assert p.returncode == 0 and "skipped" in p.stdout and "live process" in p.stdout
    finally:
        child.kill()
        child.wait()
    d2 = offline_run("refused", 10)
    bad = "nbt_" + "r" * 40
    p = cli("sync", d, d2, env={"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": bad})
    assert p.returncode == 1 and "failed" in p.stdout and "401" in p.stdout
    assert "1 more run(s) not attempted" in p.stdout  # the key is refused for every run alike
    assert bad not in p.stdout + p.stderr


def test_client_killed_mid_upload_then_finished_by_sync(server, key, store, tmp_path):
    # uploads crawl through a proxy that holds every record batch 0.3 s
    proxy = FaultProxy(server.url, lambda m, p, n: ("delay", 0.3) if "/records" in p else "pass")
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", "import nbtracker, time\n"
             "r = nbtracker.init(project='killed')\n"
             "print(r.storage_dir, flush=True)\n"
             "for i in range(20000):\n"
             "    r.log({'x': i, 'y': -i})\n"
             "time.sleep(60)\n"],
            stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_BASE_URL=proxy.url,
                     NBTRACKER_API_KEY=key, NBTRACKER_SILENT="true"))
        d = child.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            c = Cursor.load(d)
            if c is not None and c.next_seq > 2000:
                break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    finally:
        proxy.stop()
    c = Cursor.load(d)
    assert 2000 < c.next_seq < 20000  # killed in the middle of uploading
    before = server_records(server.url, key, "killed", os.path.basename(d))
    assert len(before) >= c.next_seq - 1
    p = cli("sync", d, env={"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key})
    assert p.returncode == 0, p.stdout + p.stderr
    recs = assert_uploaded(server.url, key, d)
    assert len(recs) == 20001 and recs[-1]["d"] == {"x": 19999, "y": -19999}
    item = nbtracker.Api().run(f"killed/{os.path.basename(d)}")
    assert item.state == "crashed"  # locally: its process died; the server keeps "running"


@pytest.mark.slow
def test_100k_steps_logged_offline_then_synced(server, key, store):
    t = time.monotonic()
    d = offline_run("big", 100_000)
    logged = time.monotonic() - t
    t = time.monotonic()
    p = cli("sync", d, env={"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key},
            timeout=600)
    synced = time.monotonic() - t
    assert p.returncode == 0, p.stdout + p.stderr
    recs = assert_uploaded(server.url, key, d)
    # run, config, 100,000 rows, summary, exit; and a system sample every 2 s of logging
    assert sum(r["t"] != "system" for r in recs) == 100_004
    assert f"{len(recs)} record(s)" in p.stdout
    print(f"100k steps: logged in {logged:.1f}s, synced in {synced:.1f}s")
    p = cli("sync", d, env={"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key})
    assert p.stdout.strip().endswith("already synced")


def test_the_same_run_id_from_two_machines_is_refused_not_merged(server, key, store, tmp_path,
                                                                monkeypatch):
    env = {"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key}
    dirs = []
    for machine, steps in (("m1", 100), ("m2", 150)):
        monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / machine))
        dirs.append(offline_run("twins", steps, id="exp1", name=machine))
    first = cli("sync", dirs[0], env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    second = cli("sync", dirs[1], env=env)
    assert second.returncode == 1 and "another run" in second.stdout, second.stdout
    assert server_records(server.url, key, "twins", "exp1") == local_records(dirs[0])


def test_a_file_or_record_too_large_for_the_server_stays_local_and_the_rest_goes_up(
        tmp_path, store):
    srv = serverproc.ServerProcess(tmp_path / "small", extra_args=("--max-blob-bytes", "100000"))
    try:
        key = srv.create_user("carol")
        run = nbtracker.init(project="big", mode="dryrun")
        (tmp_path / "model.bin").write_bytes(os.urandom(200_000))
        run.save(str(tmp_path / "model.bin"), base_path=str(tmp_path), policy="now")
        for i in range(20):
            run.log({"x": i})
        run.config["blob"] = "z" * 9_000_000  # one record larger than a request may be
        run.log({"x": 20})
        run.finish(quiet=True)
        p = cli("sync", run.storage_dir,
                env={"NBTRACKER_BASE_URL": srv.url, "NBTRACKER_API_KEY": key})
        assert p.returncode == 0, p.stdout + p.stderr
        out = p.stdout + p.stderr
        assert "model.bin" in out and "kept locally only" in out
        assert "kept in the local log only" in out
        sent = server_records(srv.url, key, "big", run.id)
        local = local_records(run.storage_dir)
        big = [r["seq"] for r in local if r["t"] == "config" and "blob" in r["d"]]
        assert [r["seq"] for r in sent] == [r["seq"] for r in local if r["seq"] not in big]
        assert sum(1 for r in sent if r["t"] == "history") == 21
        assert cli("sync", run.storage_dir, env={"NBTRACKER_BASE_URL": srv.url,
                                                 "NBTRACKER_API_KEY": key}).returncode == 0
    finally:
        srv.stop()


def test_a_record_the_server_refuses_stays_local_and_the_records_around_it_go_up(
        server, key, store):
    d = offline_run("refusedrec", 50)
    log = os.path.join(d, "records.jsonl")
    lines = open(log, "rb").read().splitlines(keepends=True)
    bad = next(i for i, line in enumerate(lines) if b'"step":20,' in line)
    lines[bad] = lines[bad].replace(b'"ts":', b'"ts":"yesterday","was":', 1)
    with open(log, "wb") as f:
        f.writelines(lines)
    p = cli("sync", d, env={"NBTRACKER_BASE_URL": server.url, "NBTRACKER_API_KEY": key})
    assert p.returncode == 0 and "kept in the local log only" in p.stdout, p.stdout + p.stderr
    sent = [r["seq"] for r in server_records(server.url, key, "refusedrec", os.path.basename(d))]
    local = [r["seq"] for r in local_records(d)]
    assert sent == local[:bad] + local[bad + 1:]
