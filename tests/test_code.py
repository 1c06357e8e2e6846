"""Code and environment capture: the env record (`Api().run(...).metadata`), git state and the
patch of uncommitted changes, the script's code, installed packages, and `nbtracker restore`.
(Notebook code capture runs with the notebook of test_console.py, which executes one kernel.)"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, run_cli, run_python

import nbtracker
from nbtracker.sdk.code import clean_url
from nbtracker.store.recordlog import encode, read_records

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

TOKEN = "ghp_s3cr3tT0ken"


@pytest.fixture(autouse=True)
def capture_on(monkeypatch):
    """conftest turns console and code capture off for tests of other things; on here, as a
    user has them."""
    monkeypatch.setenv("NBTRACKER_CONSOLE", "auto")
    monkeypatch.delenv("NBTRACKER_DISABLE_CODE", raising=False)


CAPTURE_ENV = {"NBTRACKER_CONSOLE": "auto", "NBTRACKER_DISABLE_CODE": "false"}

SCRIPT = """\
import nbtracker

run = nbtracker.init(project="code", name="dirty")
print("training in a dirty tree")
run.log({"loss": 0.5})
run.finish()
print(run.id)
"""


def git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def run_script(path: Path, cwd: Path, env: dict | None = None) -> str:
    """Run a script file as `python path` (so it is sys.argv[0]); returns the run id it prints."""
    full = dict(os.environ)
    full["PYTHONPATH"] = str(REPO) + os.pathsep + full.get("PYTHONPATH", "")
    full.update(CAPTURE_ENV)  # module fixtures run before the autouse ones
    full.update(env or {})
    p = subprocess.run([sys.executable, str(path)], cwd=cwd, env=full, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def dirty_repo(tmp_path_factory):
    """A repository on branch `main` with a remote that carries credentials, and a dirty tree:
    an unstaged change, a staged one, a change to an ignored file (*.env), an untracked file."""
    repo = tmp_path_factory.mktemp("repo")
    git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text(SCRIPT)
    (repo / "model.py").write_text("LAYERS = 2\n")
    (repo / "data.py").write_text("SIZE = 10\n")
    (repo / "local.env").write_text("PASSWORD=one\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "remote", "add", "origin", f"https://alice:{TOKEN}@git.example.com/team/repo.git")
    (repo / "model.py").write_text("LAYERS = 3\n")  # unstaged
    (repo / "data.py").write_text("SIZE = 20\n")
    git(repo, "add", "data.py")  # staged
    (repo / "local.env").write_text("PASSWORD=two\n")  # matches the ignored glob
    (repo / "notes.txt").write_text("untracked\n")
    return repo


@pytest.fixture(scope="module")
def dirty_run(dirty_repo, tmp_path_factory):
    """The script in the dirty repository run once, as a user would: `python train.py`."""
    store = tmp_path_factory.mktemp("store")
    run_id = run_script(dirty_repo / "train.py", dirty_repo,
                        {"NBTRACKER_DIR": str(store), "NBTRACKER_IGNORE_GLOBS": "*.env",
                         "NBTRACKER_SILENT": "true"})
    return store, run_id


@needs_git
def test_git_state_of_a_dirty_tree(dirty_repo, dirty_run, monkeypatch):
    store, run_id = dirty_run
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    r = nbtracker.Api().run(f"code/{run_id}")
    meta = r.metadata
    g = meta["git"]
    assert g["commit"] == git(dirty_repo, "rev-parse", "HEAD").strip()
    assert g["branch"] == "main" and g["dirty"] is True
    assert g["root"] == str(dirty_repo.resolve())
    assert g["remote"] == "https://git.example.com/team/repo.git" and g["remote_name"] == "origin"
    # the credentials are nowhere in the run
    log = Path(r.storage_dir, "records.jsonl").read_bytes()
    assert TOKEN.encode() not in log and b"alice" not in log
    for f in Path(r.storage_dir, "files").rglob("*"):
        assert not f.is_file() or TOKEN.encode() not in f.read_bytes()
    # where and how it ran, with wandb's names too
    assert meta["python"] == platform.python_version() == r.metadata["python"]
    assert meta["argv"] == [str(dirty_repo / "train.py")] and meta["args"] == []
    assert meta["program"] == str(dirty_repo / "train.py") and meta["codePath"] == "train.py"
    assert meta["cwd"] == str(dirty_repo) and meta["host"] and meta["executable"]
    assert meta["os"] == meta["platform"] and meta["startedAt"].endswith("Z")
    assert meta["cpu_count"] == os.cpu_count() and meta["memory"]["total"] > 0


@needs_git
def test_patch_is_git_diff_head_without_ignored_files(dirty_repo, dirty_run, monkeypatch, tmp_path):
    store, run_id = dirty_run
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    r = nbtracker.Api().run(f"code/{run_id}")
    patch = r.file("code/diff.patch").download(str(tmp_path)).read_text()
    assert patch == git(dirty_repo, "diff", "HEAD", "--", ".", ":(exclude)local.env")
    assert "+LAYERS = 3" in patch and "+SIZE = 20" in patch  # unstaged and staged
    assert "PASSWORD" not in patch and "untracked" not in patch
    # the script itself, and the packages it ran with
    assert r.file("code/train.py").download(str(tmp_path)).read_text() == SCRIPT
    reqs = r.file("requirements.txt").download(str(tmp_path)).read_text().splitlines()
    names = {line.split("==")[0].lower().replace("_", "-") for line in reqs}
    assert {"orjson", "pandas", "pytest"} <= names
    assert all("==" in line for line in reqs)
    assert reqs == sorted(reqs, key=lambda s: s.split("==")[0].lower().replace("_", "-"))


@needs_git
def test_restore_writes_code_and_patch_that_apply(dirty_repo, dirty_run, monkeypatch, tmp_path):
    store, run_id = dirty_run
    monkeypatch.setenv("NBTRACKER_DIR", str(store))
    out = tmp_path / "restored"
    p = run_cli("restore", f"code/{run_id}", "--to", str(out))
    assert sorted(f.name for f in out.iterdir()) == ["diff.patch", "requirements.txt", "train.py"]
    commit = git(dirty_repo, "rev-parse", "HEAD").strip()
    assert f"git checkout {commit} && git apply {out / 'diff.patch'}" in p.stdout
    # a clean clone at the commit plus the patch is the tree the run ran with
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(dirty_repo), str(clone))
    git(clone, "checkout", "-q", commit)
    git(clone, "apply", str(out / "diff.patch"))
    assert (clone / "model.py").read_text() == "LAYERS = 3\n"
    assert (clone / "data.py").read_text() == "SIZE = 20\n"
    assert (clone / "local.env").read_text() == "PASSWORD=one\n"  # ignored: not in the patch
    # the default folder is ./<run id>; existing files are not overwritten without --force
    monkeypatch.chdir(tmp_path)
    run_cli("restore", run_id)
    assert (tmp_path / run_id / "diff.patch").read_bytes() == (out / "diff.patch").read_bytes()
    again = run_cli("restore", run_id, check=False)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("restore", run_id, "--force").returncode == 0


def test_restore_refuses_names_that_leave_the_folder(tmp_path):
    run = nbtracker.init(project="code", name="hostile")
    run.finish()
    log = Path(run.storage_dir, "records.jsonl")
    last = list(read_records(log))[-1]
    (tmp_path / "outside.txt").write_text("mine")
    for i, name in enumerate(["code/../../outside.txt", "code/../outside.txt"]):
        rec = {"t": "file", "seq": last["seq"] + 1 + i, "ts": last["ts"], "path": name, "size": 4}
        with open(log, "ab") as f:
            f.write(encode(rec))
    dest = tmp_path / "dest"
    p = run_cli("restore", f"code/{run.id}", "--to", str(dest), check=False)
    assert p.returncode != 0 and "nbtracker:" in p.stderr
    assert (tmp_path / "outside.txt").read_text() == "mine"
    assert not dest.exists() or not any(dest.rglob("*"))


def test_restore_checks_every_file_before_writing_any(tmp_path):
    """A refused entry (a stored copy that is a symlink) leaves the folder empty: no partial
    restore."""
    run = nbtracker.init(project="code", name="partial")
    run.finish()
    log = Path(run.storage_dir, "records.jsonl")
    last = list(read_records(log))[-1]
    code = Path(run.storage_dir, "files", "code")
    code.mkdir(parents=True, exist_ok=True)
    (code / "a_ok.py").write_text("print(1)\n")
    (tmp_path / "secret.txt").write_text("secret")
    (code / "z_link.py").symlink_to(tmp_path / "secret.txt")
    for i, name in enumerate(["code/a_ok.py", "code/z_link.py"]):
        rec = {"t": "file", "seq": last["seq"] + 1 + i, "ts": last["ts"], "path": name, "size": 4}
        with open(log, "ab") as f:
            f.write(encode(rec))
    dest = tmp_path / "dest"
    p = run_cli("restore", f"code/{run.id}", "--to", str(dest), check=False)
    assert p.returncode != 0 and "symlink" in p.stderr
    assert not dest.exists() or not any(dest.rglob("*"))
    # the global --dir is the store root, not the restore target
    assert "--to DIR" in run_cli("restore", "--help").stdout


def test_a_slow_git_does_not_hold_up_finish(tmp_path):
    """git that never answers (a script that sleeps, first in PATH): finish() returns within a
    few seconds; a run that outlives the capture's deadline says its git state is incomplete;
    nothing is written to a run once it is finished."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text("#!/bin/sh\nsleep 60\n")
    (fake / "git").chmod(0o755)
    p = run_python(f"""
        import json, os, time
        os.chdir({str(tmp_path)!r})
        import nbtracker
        from nbtracker.sdk import code
        t = time.monotonic()
        quick = nbtracker.init(project="code", name="quick")
        quick.finish()
        took = time.monotonic() - t
        code.CAPTURE_TIMEOUT = 1.0
        slow = nbtracker.init(project="code", name="outlived", reinit="create_new")
        time.sleep(2.5)
        slow.finish()
        time.sleep(1)
        print(json.dumps([took, quick.storage_dir, slow.path]))
    """, env={**CAPTURE_ENV, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}",
              "NBTRACKER_SILENT": "true"})
    took, quick_dir, slow_path = json.loads(p.stdout.splitlines()[-1])
    assert took < 5
    quick_log = Path(quick_dir, "records.jsonl").read_bytes()
    assert quick_log.rstrip().splitlines()[-1].startswith(b'{"t":"exit"')  # nothing after
    assert nbtracker.Api().run(slow_path).metadata["git"]["incomplete"] is True


@needs_git
def test_a_huge_patch_is_cut_at_a_line_with_a_note(tmp_path):
    repo = tmp_path / "big"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "data.csv").write_text("".join(f"{i},{i * 3}\n" for i in range(5000)))
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "data")
    (repo / "data.csv").write_text("".join(f"{i},{i * 3 + 1}\n" for i in range(5000)))
    full = len(git(repo, "diff", "HEAD").encode())
    p = run_python(f"""
        import os
        os.chdir({str(repo)!r})
        import nbtracker
        from nbtracker.sdk import code
        code.MAX_PATCH = 20_000
        run = nbtracker.init(project="code", name="big")
        run.finish()
        print(run.path)
    """, env={**CAPTURE_ENV, "NBTRACKER_SILENT": "true"})
    r = nbtracker.Api().run(p.stdout.splitlines()[-1])
    assert "incomplete" not in r.metadata["git"]
    patch = Path(r.storage_dir, "files", "code", "diff.patch").read_bytes()
    assert full > 20_000 >= len(patch)
    body, note = patch.rstrip(b"\n").rsplit(b"\n", 1)
    assert note.startswith(b"# nbtracker: diff.patch cut") and str(full).encode() in note
    assert git(repo, "diff", "HEAD").encode().startswith(body + b"\n")


def test_outside_git_no_git_keys(tmp_path):
    run = nbtracker.init(project="code", name="nogit")
    run.finish()
    r = nbtracker.Api().run(run.path)
    meta = r.metadata
    assert "git" not in meta and meta["cwd"] == str(tmp_path)
    assert "code/diff.patch" not in {f.name for f in r.files()}
    assert "requirements.txt" in {f.name for f in r.files()}


@pytest.mark.parametrize("how", ["argument", "env", "wandb-env", "setting"])
def test_save_code_off_records_no_code_or_environment(how, monkeypatch):
    kwargs: dict = {}
    if how == "argument":
        kwargs["save_code"] = False
    elif how == "env":
        monkeypatch.setenv("NBTRACKER_DISABLE_CODE", "true")
    elif how == "wandb-env":
        monkeypatch.setenv("WANDB_DISABLE_CODE", "true")
    else:
        kwargs["settings"] = {"save_code": False}
    run = nbtracker.init(project="code", name=how, **kwargs)
    run.finish()
    r = nbtracker.Api().run(run.path)
    assert r.metadata is None
    assert not [f.name for f in r.files() if f.name.startswith("code/")
                or f.name == "requirements.txt"]
    p = run_cli("restore", run.path, check=False)
    assert p.returncode == 1 and "no saved code" in p.stderr


def test_env_record_reaches_event_listeners_and_precedes_finish():
    seen = []
    run = nbtracker.init(project="code", name="events")
    run.add_event_listener(lambda kind, payload: seen.append((kind, payload)))
    run.finish()
    kinds = [r["t"] for r in read_records(Path(run.storage_dir, "records.jsonl"))]
    assert kinds.count("env") == 1 and kinds.index("env") < kinds.index("exit")
    # the listener may have been added after the record was written; if it saw it, it is whole
    for kind, payload in seen:
        if kind == "info":
            assert payload["python"] == platform.python_version()


@pytest.mark.parametrize("url,clean", [
    (f"https://alice:{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
    (f"https://{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
    (f"https://gitlab.com/org/repo.git?private_token={TOKEN}", "https://gitlab.com/org/repo.git"),
    ("https://host:8443/x.git", "https://host:8443/x.git"),
    ("ssh://git@host:2222/org/repo.git", "ssh://git@host:2222/org/repo.git"),
    (f"ssh://git:{TOKEN}@host/org/repo.git", "ssh://git@host/org/repo.git"),
    ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
    (f"git:{TOKEN}@github.com:org/repo.git", "git@github.com:org/repo.git"),
    ("/srv/git/repo.git", "/srv/git/repo.git"),
])
def test_remote_urls_lose_their_credentials(url, clean):
    assert clean_url(url) == clean


def test_metadata_is_json():
    run = nbtracker.init(project="code", name="json")
    run.finish()
    json.dumps(nbtracker.Api().run(run.path).metadata)


@needs_git
@pytest.mark.slow
def test_from_a_team_server_after_sync(dirty_repo, dirty_run, monkeypatch, tmp_path):
    """Synced to a server, the run reads the same: metadata, output, output.log, and restore
    fetches the code from the server."""
    serverproc = pytest.importorskip("serverproc", reason="the server's test harness is not here")
    pytest.importorskip("fastapi")
    store, run_id = dirty_run
    srv = serverproc.ServerProcess(tmp_path / "server")
    try:
        key = srv.create_user("carol")
        monkeypatch.setenv("NBTRACKER_DIR", str(store))
        local = nbtracker.Api().run(f"code/{run_id}")
        monkeypatch.setenv("NBTRACKER_BASE_URL", srv.url)
        monkeypatch.setenv("NBTRACKER_API_KEY", key)
        run_cli("sync", f"code/{run_id}")
        cache = tmp_path / "cache"
        monkeypatch.setenv("NBTRACKER_DIR", str(cache))  # nothing local: all from the server
        remote = nbtracker.Api().run(f"code/{run_id}")
        assert remote._remote
        assert remote.metadata == local.metadata
        assert remote.output() == local.output() == "training in a dirty tree\n"
        f = remote.file("output.log")
        assert f.download(str(tmp_path / "logs")).read_text() == "training in a dirty tree\n"
        out = tmp_path / "restored"
        run_cli("restore", f"code/{run_id}", "--to", str(out))
        assert (out / "diff.patch").read_bytes() == Path(
            local.storage_dir, "files", "code", "diff.patch").read_bytes()
        assert (out / "train.py").read_text() == SCRIPT
    finally:
        srv.stop()


def test_ignore_globs_leave_out_saved_code_files_too():
    run = nbtracker.init(project="code", name="ignored",
                         settings={"ignore_globs": ["requirements.txt", "code/*"]})
    run.finish()
    r = nbtracker.Api().run(run.path)
    assert r.metadata["python"] and [f.name for f in r.files()] == []
