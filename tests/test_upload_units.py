"""The uploader's parts that need no server: cursor, key file, backoff, batches, rewinding."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
from helpers import REPO, run_cli

import nbtracker
from nbtracker.store import layout
from nbtracker.sync import client as client_mod
from nbtracker.sync.credentials import lookup_key, mask, read_credentials, scrub, store_key
from nbtracker.sync.cursor import Cursor, find_offset, offset_ok
from nbtracker.sync.uploader import MAX_BYTES, MAX_RECORDS, backoff, read_batch

KEY = "nbt_" + "k" * 36 + "WXYZ"


def _log(tmp_path, lines: list[bytes]):
    p = tmp_path / layout.LOG_NAME
    p.write_bytes(b"".join(lines))
    return p


def _rec(seq: int, **extra) -> bytes:
    return json.dumps({"t": "history", "seq": seq, "ts": 1.0, "step": seq, "d": {"x": seq},
                       **extra}).encode() + b"\n"


# -- credentials ----------------------------------------------------------------------------

def test_key_file_is_0600_and_replaced_atomically(tmp_path):
    path = store_key(tmp_path, "http://127.0.0.1:9/", KEY)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials(tmp_path) == {"http://127.0.0.1:9": KEY}
    os.chmod(path, 0o644)  # loosened by hand: the next write tightens it again
    store_key(tmp_path, "http://other:1", "nbt_second")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_credentials(tmp_path) == {"http://127.0.0.1:9": KEY, "http://other:1": "nbt_second"}
    assert [p.name for p in tmp_path.iterdir()] == ["credentials.json"]  # no temporary file left


def test_key_lookup_order(tmp_path, monkeypatch):
    url = "http://127.0.0.1:9"
    assert lookup_key(url, tmp_path, {"api_key": "nbt_legacy"}) == "nbt_legacy"
    store_key(tmp_path, url, KEY)
    assert lookup_key(url, tmp_path, {"api_key": "nbt_legacy"}) == KEY
    assert lookup_key(url + "/", tmp_path) == KEY
    assert lookup_key("http://elsewhere:1", tmp_path) is None
    monkeypatch.setenv("WANDB_API_KEY", "nbt_wandb")
    assert lookup_key(url, tmp_path) == "nbt_wandb"
    monkeypatch.setenv("NBTRACKER_API_KEY", "nbt_env\n")  # as `$(cat keyfile)` leaves it
    assert lookup_key(url, tmp_path) == "nbt_env"


def test_settings_use_stored_key_and_never_show_it(store, monkeypatch):
    store_key(store, "http://127.0.0.1:9", KEY)
    monkeypatch.setenv("NBTRACKER_BASE_URL", "http://127.0.0.1:9/")
    from nbtracker.sdk.settings import Settings

    s = Settings.resolve()
    assert s.api_key == KEY and s.base_url == "http://127.0.0.1:9" and s.mode == "online"
    assert KEY not in repr(s)


def test_mask_and_scrub():
    assert mask(KEY) == "nbt_…WXYZ"
    assert KEY not in scrub(f"bad key {KEY} here") and "nbt_…WXYZ" in scrub(f"{KEY}")


def test_login_with_no_server_reachable_stores_nothing(store):
    with pytest.raises(nbtracker.UsageError) as e:
        nbtracker.login(key=KEY, host="http://127.0.0.1:9")
    assert KEY not in str(e.value)
    assert not (store / "credentials.json").exists()


# -- backoff ----------------------------------------------------------------------------------

def test_backoff_full_jitter_grows_to_the_cap_and_honours_retry_after():
    hi = lambda a, b: b  # noqa: E731 - the top of the jitter range
    lo = lambda a, b: a  # noqa: E731
    assert [backoff(n, rand=hi) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert backoff(50, rand=hi) == 30.0
    assert backoff(1, rand=lo) == 0.0
    assert backoff(1, retry_after=7, rand=hi) == 7.0  # never sooner than the server asks
    assert backoff(8, retry_after=1, rand=hi) == 30.0  # the backoff is longer: it wins
    assert backoff(1, retry_after=10**6, rand=lo) == 600.0  # an absurd Retry-After is bounded
    draws = {round(backoff(6), 6) for _ in range(200)}
    assert len(draws) > 150 and all(0 <= d <= 16 for d in draws)  # jitter: spread, bounded


def test_retry_after_header_forms():
    assert client_mod.parse_retry_after("3") == 3.0
    assert client_mod.parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert client_mod.parse_retry_after("soon") is None
    assert client_mod.parse_retry_after(None) is None


# -- batches ----------------------------------------------------------------------------------

def test_batch_limits_records_and_bytes(tmp_path):
    log = _log(tmp_path, [_rec(i) for i in range(1, 2501)])
    b = read_batch(log, 0, 1)
    assert len(b.lines) == MAX_RECORDS and (b.first_seq, b.last_seq) == (1, 1000)
    b2 = read_batch(log, b.end, 1001)
    assert (b2.first_seq, b2.last_seq) == (1001, 2000)
    big = "y" * 5000
    log = _log(tmp_path, [_rec(i, note=big) for i in range(1, 501)])
    b = read_batch(log, 0, 1)
    body = len(b'{"first_seq":1,"records":[' + b",".join(b.lines) + b"]}")
    assert body <= MAX_BYTES and len(b.lines) < 500
    assert b.end == sum(len(x) + 1 for x in b.lines)


def test_batch_takes_one_record_larger_than_a_batch(tmp_path):
    log = _log(tmp_path, [_rec(1, note="z" * (MAX_BYTES + 10)), _rec(2)])
    b = read_batch(log, 0, 1)
    assert (b.first_seq, b.last_seq, len(b.lines)) == (1, 1, 1)


def test_batch_skips_corrupt_acknowledged_and_unfinished_lines(tmp_path):
    lines = [_rec(1), _rec(2), b"{garbage\n", _rec(3), _rec(2), _rec(4), b'{"t":"history","se']
    log = _log(tmp_path, lines)
    b = read_batch(log, 0, 2)
    assert [json.loads(x)["seq"] for x in b.lines] == [2, 3, 4]
    assert b.end == sum(map(len, lines[:-1]))  # the unfinished line is not read


def test_batch_collects_files_and_media(tmp_path):
    file_rec = json.dumps({"t": "file", "seq": 1, "ts": 1, "path": "a/b.txt", "size": 1,
                           "sha256": "f" * 64}).encode() + b"\n"
    media = {"img": {"_type": "image-file", "path": "media/images/x.png", "sha256": "e" * 64},
             "tab": [{"_type": "table-file", "path": "media/t.json", "sha256": "d" * 64}]}
    hist = json.dumps({"t": "history", "seq": 2, "ts": 1, "step": 0, "d": media}).encode() + b"\n"
    b = read_batch(_log(tmp_path, [file_rec, hist]), 0, 1)
    assert b.blobs == [("f" * 64, "files/a/b.txt"), ("e" * 64, "media/images/x.png"),
                       ("d" * 64, "media/t.json")]


# -- cursor and rewinding ----------------------------------------------------------------------

def test_cursor_roundtrip_and_damage(tmp_path):
    assert Cursor.load(tmp_path) is None
    c = Cursor("http://h:1", "p", "r", next_seq=5, offset=40, eseq=2)
    c.save(tmp_path)
    assert Cursor.load(tmp_path) == c
    assert [p.name for p in tmp_path.iterdir()] == ["upload.json"]
    (tmp_path / "upload.json").write_text('{"base_url": "x", "project"')
    assert Cursor.load(tmp_path) is None
    (tmp_path / "upload.json").write_text('{"base_url": "x", "project": "p", "run_id": "r", '
                                          '"next_seq": -3}')
    assert Cursor.load(tmp_path) is None


def test_find_offset_rewinds_to_a_seq(tmp_path):
    lines = [_rec(1), b"not json\n", _rec(2), _rec(3), _rec(4), b'{"torn']
    log = _log(tmp_path, lines)
    ends = [sum(map(len, lines[:i])) for i in range(len(lines))]
    assert find_offset(log, 1) == 0
    assert find_offset(log, 2) == ends[2]  # past the corrupt line, at record 2
    assert find_offset(log, 4) == ends[4]
    assert find_offset(log, 9) == ends[5]  # beyond the log: its complete end
    assert offset_ok(log, ends[3]) and not offset_ok(log, ends[3] - 3)
    b = read_batch(log, find_offset(log, 3), 3)
    assert [json.loads(x)["seq"] for x in b.lines] == [3, 4]


def test_sync_without_server_or_runs_says_what_to_do(store):
    p = run_cli("sync", check=False)
    assert p.returncode == 2 and "--all" in p.stderr
    d = _offline_run()
    p = run_cli("sync", d, check=False)
    assert p.returncode == 1 and "nbtracker login" in p.stderr




def _offline_run() -> str:
    run = nbtracker.init(project="none", mode="offline")
    run.log({"x": 1})
    run.finish(quiet=True)
    return run.storage_dir


def test_sync_gives_up_on_an_unreachable_server_after_its_timeout(store):
    d = _offline_run()
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "nbtracker", "sync", d, "--host",
                        "http://127.0.0.1:9", "--timeout", "1"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(REPO), NBTRACKER_API_KEY=KEY),
                       timeout=60)
    assert p.returncode == 1 and "failed" in p.stdout and "cannot reach" in p.stdout, p.stdout
    assert time.monotonic() - t < 10
    assert KEY not in p.stdout + p.stderr
    p = run_cli("sync", d, "--host", "http://127.0.0.1:9", check=False)  # no key at all
    assert p.returncode == 1 and "nbtracker login --host http://127.0.0.1:9" in p.stderr
