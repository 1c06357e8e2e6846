"""`save(glob, base_path, policy)`: each policy, live copies while the run is alive, globs that
reach outside base_path refused, and files read back and downloaded — locally and from a team
server the run uploaded to."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

import nbtracker
from nbtracker.sdk import flusher, saving
from nbtracker.store import layout
from nbtracker.store.recordlog import read_records


@pytest.fixture(autouse=True)
def quick_polls(monkeypatch):
    """The flusher ticks and live files are polled every 0.1 s instead of every few seconds."""
    monkeypatch.setattr(flusher, "SYNC_EVERY", 0.1)
    monkeypatch.setattr(saving, "POLL_SECONDS", 0.1)
    flusher._wake.set()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_records(run) -> list[tuple[str, str]]:
    return [(r["path"], r["sha256"]) for r in read_records(Path(run.storage_dir) / layout.LOG_NAME)
            if r["t"] == "file"]


def wait_for(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def stored_bytes(run, name: str) -> bytes:
    files = {f.name: f for f in nbtracker.Api().run(run.path).files()}
    return files[name].path.read_bytes()


def test_live_file_copied_again_when_it_changes(tmp_path):
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"epoch 1")
    run = nbtracker.init(project="save")
    assert run.save("model.pt") == ["model.pt"]
    assert file_records(run) == [("model.pt", sha(b"epoch 1"))]
    ckpt.write_bytes(b"epoch 2, longer")
    # copied while the run is alive, not only at finish
    assert wait_for(lambda: ("model.pt", sha(b"epoch 2, longer")) in file_records(run))
    assert (Path(run.dir) / "model.pt").read_bytes() == b"epoch 2, longer"
    ckpt.write_bytes(b"epoch 3")
    run.log({"loss": 0.1})
    run.finish()
    assert stored_bytes(run, "model.pt") == b"epoch 3"
    assert [s for _, s in file_records(run)] == [sha(b"epoch 1"), sha(b"epoch 2, longer"),
                                                 sha(b"epoch 3")]


def test_live_glob_picks_up_new_files(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "e1.pt").write_bytes(b"one")
    run = nbtracker.init(project="save")
    assert run.save("ckpt/*.pt") == ["ckpt/e1.pt"]
    (tmp_path / "ckpt" / "e2.pt").write_bytes(b"two")
    assert wait_for(lambda: "ckpt/e2.pt" in dict(file_records(run)))
    run.finish()
    assert stored_bytes(run, "ckpt/e2.pt") == b"two"


def test_file_written_in_run_dir_and_saved_live():
    run = nbtracker.init(project="save")
    model = Path(run.dir) / "model.h5"
    model.write_bytes(b"v1")
    assert nbtracker.save(str(model)) == ["model.h5"]  # wandb's way: base_path is run.dir
    model.write_bytes(b"v2!")
    assert wait_for(lambda: ("model.h5", sha(b"v2!")) in file_records(run))
    run.finish()
    assert stored_bytes(run, "model.h5") == b"v2!"


def test_now_copies_once(tmp_path):
    (tmp_path / "config.yaml").write_bytes(b"lr: 1")
    run = nbtracker.init(project="save")
    assert run.save("config.yaml", policy="now") == ["config.yaml"]
    (tmp_path / "config.yaml").write_bytes(b"lr: 2, edited later")
    time.sleep(0.3)  # polls come and go: a "now" file is not watched
    run.finish()
    assert stored_bytes(run, "config.yaml") == b"lr: 1"
    assert file_records(run) == [("config.yaml", sha(b"lr: 1"))]


def test_end_copies_only_at_finish(tmp_path):
    (tmp_path / "final.pt").write_bytes(b"not yet")
    run = nbtracker.init(project="save")
    assert run.save("final.pt", policy="end") == ["final.pt"]
    time.sleep(0.3)
    assert file_records(run) == [] and not (Path(run.dir) / "final.pt").exists()
    (tmp_path / "final.pt").write_bytes(b"the final weights")
    (tmp_path / "late.pt").write_bytes(b"matched at the end")
    run.save("late*.pt", policy="end")
    run.finish()
    assert stored_bytes(run, "final.pt") == b"the final weights"
    assert stored_bytes(run, "late.pt") == b"matched at the end"
    assert file_records(run) == [("final.pt", sha(b"the final weights")),
                                 ("late.pt", sha(b"matched at the end"))]


@pytest.mark.parametrize("glob,base", [("../outside/*.pt", "."), ("ckpt/../../outside/*.pt", None),
                                       ("{abs}/outside/*.pt", "{abs}/work")])
def test_glob_outside_base_path_refused(tmp_path, monkeypatch, capsys, glob, base):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "w.pt").write_bytes(b"not mine")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    run = nbtracker.init(project="save")
    glob = glob.format(abs=tmp_path)
    base = base.format(abs=tmp_path) if base else base
    assert run.save(glob, base_path=base) == []
    assert run.save(glob, base_path=base) == []
    err = capsys.readouterr().err
    assert err.count("reaches outside its base_path") == 1, err
    run.log({"loss": 1.0})  # the run goes on
    run.finish()
    r = nbtracker.Api().run(run.path)
    assert r.files() == [] and r.state == "finished" and r.steps == 1


def test_links_to_folders_outside_and_link_loops(tmp_path, monkeypatch, capsys):
    """A folder link out of base_path is refused like `..` (one warning); a link loop saves each
    file once per name asked, not once per turn of the loop; bytes globs work as in wandb."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.pt").write_bytes(b"not mine")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "sub" / "out").symlink_to(tmp_path / "outside")
    (work / "sub" / "loop").symlink_to(work)
    (work / "w.pt").write_bytes(b"mine")
    monkeypatch.chdir(work)
    run = nbtracker.init(project="save")
    assert sorted(run.save("**/*.pt", base_path=".")) == ["w.pt"]
    assert run.save(b"*.pt") == ["w.pt"]
    run.finish()
    err = capsys.readouterr().err
    assert err.count("outside base_path") == 1, err
    names = [f.name for f in nbtracker.Api().run(run.path).files()]
    assert names == ["w.pt"], names


def test_absolute_glob_named_from_where_it_starts(tmp_path):
    for d in ("a", "b"):
        (tmp_path / "runs" / d).mkdir(parents=True)
        (tmp_path / "runs" / d / "model.pt").write_bytes(d.encode())
    run = nbtracker.init(project="save")
    assert run.save(str(tmp_path / "runs" / "*" / "model.pt"), policy="now") == [
        "a/model.pt", "b/model.pt"]
    run.finish()
    assert stored_bytes(run, "b/model.pt") == b"b"


def test_download(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "weights.bin").write_bytes(os.urandom(5000))
    run = nbtracker.init(project="save")
    run.save("sub/*.bin", policy="now")
    run.finish()
    [f] = nbtracker.Api().run(run.path).files()
    assert f.name == "sub/weights.bin" and f.size == 5000
    out = f.download(root=str(tmp_path / "restore"))
    assert out == tmp_path / "restore" / "sub" / "weights.bin"
    assert out.read_bytes() == (tmp_path / "sub" / "weights.bin").read_bytes()


def test_bad_policy_is_one_warning(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("x")
    run = nbtracker.init(project="save")
    assert run.save("x.txt", policy="sometimes") == ["x.txt"]
    run.finish()
    assert capsys.readouterr().err.count("policy must be live, now or end") == 1


@pytest.mark.skipif(os.name == "nt", reason="file names are bytes on POSIX only")
def test_a_name_that_is_not_utf8_is_left_out_with_one_warning(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "good.txt").write_bytes(b"good")
    open(os.path.join(os.fsencode(tmp_path), b"d", b"bad\xff.txt"), "wb").write(b"bad")
    os.mkdir(os.path.join(os.fsencode(tmp_path), b"d", b"sub\xfe"))
    open(os.path.join(os.fsencode(tmp_path), b"d", b"sub\xfe", b"x.txt"), "wb").write(b"x")
    run = nbtracker.init(project="save")
    for policy in ("now", "live", "end"):
        assert run.save("d/**", policy=policy) == ["d/good.txt"]
    assert run.save(b"d/bad\xff.txt") == []
    time.sleep(0.3)  # the live polls pass it by too
    run.finish()
    assert run.state == "finished"
    # nothing of it in the run's files/ folder, listed or not
    assert sorted(p.relative_to(run.dir).as_posix() for p in Path(run.dir).rglob("d/*")) == [
        "d/good.txt"]
    assert [f.name for f in nbtracker.Api().run(run.path).files() if f.name.startswith("d/")] == [
        "d/good.txt"]
    assert stored_bytes(run, "d/good.txt") == b"good"
    assert capsys.readouterr().err.count("not valid UTF-8 is left out") == 1


# -- a run uploaded to a team server while it logs --------------------------------------------------
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    serverproc = pytest.importorskip("serverproc")
    pytest.importorskip("fastapi")
    srv = serverproc.ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


@pytest.mark.slow  # starts a server (several seconds)
def test_live_file_from_the_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_BASE_URL", server.url)
    monkeypatch.setenv("NBTRACKER_API_KEY", server.admin_key)
    monkeypatch.setenv("NBTRACKER_SILENT", "true")
    ckpt = tmp_path / "model.pt"
    ckpt.write_bytes(b"first weights")
    run = nbtracker.init(project="save-remote", mode="online")
    run.save("model.pt")
    (tmp_path / "notes.txt").write_text("kept once")
    run.save("notes.txt", policy="now")
    remote = nbtracker.Api(overrides={"base_url": server.url}, api_key=server.admin_key)
    assert remote.remote
    # read from the server while the run is alive: the first version (now in the cache)
    assert wait_for(lambda: run.upload_status()["state"] == "synced")
    [early] = [f for f in remote.run(f"save-remote/{run.id}").files() if f.name == "model.pt"]
    assert early.download(root=str(tmp_path / "early")).read_bytes() == b"first weights"
    ckpt.write_bytes(b"second weights, final")
    assert wait_for(lambda: len(file_records(run)) == 3)
    run.finish(timeout=30)
    assert run.upload_status()["state"] == "synced"

    # the cached first version is not taken for the second
    files = {f.name: f for f in remote.run(f"save-remote/{run.id}").files()}
    assert set(files) == {"model.pt", "notes.txt"}
    assert files["model.pt"].sha256 == sha(b"second weights, final")
    out = tmp_path / "from-server"
    assert files["model.pt"].download(root=str(out)).read_bytes() == b"second weights, final"
    assert files["notes.txt"].download(root=str(out)).read_text() == "kept once"
