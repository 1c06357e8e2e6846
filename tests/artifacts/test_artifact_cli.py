"""`nbtracker artifact …` as a user runs it, in a separate process, on artifacts made through the
Python API: ls, show, get (a corrupted object included), rm, alias, the download cache and gc,
and bad references."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from helpers import run_cli

import nbtracker


def nbt(*args: str):
    """`nbtracker ARGS` in a fresh process (the test's store, its folder as the current one)."""
    return run_cli(*args, check=False)


def ok(*args: str) -> str:
    p = nbt(*args)
    assert p.returncode == 0, f"nbtracker {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.stdout


def one_line_error(p, code: int = 1) -> str:
    """The error of a failed command: exit `code`, one line on stderr, no traceback."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nbtracker: "), p.stderr
    return lines[0]


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def objects(store: Path) -> dict[str, bytes]:
    """The stored objects: {digest: bytes}."""
    base = store / "artifacts" / "objects"
    return {h.name + f.name: f.read_bytes() for h in base.iterdir() if len(h.name) == 2
            for f in h.iterdir()} if base.exists() else {}


def object_path(store: Path, digest: str) -> Path:
    return store / "artifacts" / "objects" / digest[:2] / digest[2:]


def row_of(out: str, name: str) -> str:
    rows = [ln for ln in out.splitlines() if f"  {name}  " in ln]
    assert len(rows) == 1, out
    return rows[0]


SHARED = bytes(range(256)) * 4                     # 1024 bytes in both versions of "mnist"
ONLY_V0 = b"v0 only " * 100                        # 800 bytes
ONLY_V1 = b"the second version " * 78 + b"xx"      # 1484 bytes: v1 holds 2508


@pytest.fixture
def logged(tmp_path):
    """mnist (dataset, project p): v0 {train.bin, extra.bin} "best", v1 {train.bin, new.bin}
    "latest"; used by a second run; model "cnn" in project q. Returns ids and digests."""
    src = tmp_path / "src"
    with nbtracker.init(project="p", name="maker") as run:
        a = nbtracker.Artifact("mnist", type="dataset", description="digits",
                               metadata={"rows": 60000, "split": {"train": 0.9}})
        a.add_file(write(src / "train.bin", SHARED))
        a.add_file(write(src / "extra.bin", ONLY_V0))
        v0 = run.log_artifact(a, aliases=["best"])
        b = nbtracker.Artifact("mnist", type="dataset")
        b.add_file(src / "train.bin")
        b.add_file(write(src / "new.bin", ONLY_V1))
        v1 = run.log_artifact(b)
    with nbtracker.init(project="p", name="trainer") as user:
        user.use_artifact("mnist:v0")
    with nbtracker.init(project="q", name="other") as other:
        m = nbtracker.Artifact("cnn", type="model")
        m.add_file(write(src / "model.pt", b"weights"))
        other.log_artifact(m, aliases=["prod"])
    return {"maker": run.id, "user": user.id, "v0": v0, "v1": v1}


# -- ls --------------------------------------------------------------------------------------
def test_ls_lists_every_artifact_with_its_versions_aliases_and_size(logged):
    out = ok("artifact", "ls")
    mnist = row_of(out, "mnist")
    assert mnist.split()[:4] == ["p", "mnist", "dataset", "2"]
    assert "latest→v1" in mnist and "best→v0" in mnist
    assert mnist.rstrip().endswith("2.51 KB")           # v1: 1024 + 1484 bytes
    cnn = row_of(out, "cnn")
    assert cnn.split()[:4] == ["q", "cnn", "model", "1"] and "prod→v0" in cnn
    assert "cnn" not in ok("artifact", "ls", "p")

    rows = [json.loads(ln) for ln in ok("artifact", "ls", "--json").splitlines()]
    assert [(r["project"], r["name"]) for r in rows] == [("p", "mnist"), ("q", "cnn")]
    assert rows[0]["versions"] == 2 and rows[0]["latest"] == "v1"
    assert rows[0]["aliases"] == {"latest": "v1", "best": "v0"}
    assert rows[0]["size"] == len(SHARED) + len(ONLY_V1)
    assert rows[1]["aliases"] == {"latest": "v0", "prod": "v0"}

    nbtracker.Api().artifact("p/mnist:v1").delete()   # latest moves back to v0
    (row,) = [json.loads(ln) for ln in ok("artifact", "ls", "p", "--json").splitlines()]
    assert (row["versions"], row["aliases"]) == (1, {"latest": "v0", "best": "v0"})
    assert row["size"] == len(SHARED) + len(ONLY_V0)


def test_ls_of_an_empty_store_or_project_says_so():
    assert "no artifacts" in ok("artifact", "ls")
    assert ok("artifact", "ls", "--json") == ""


# -- show ------------------------------------------------------------------------------------
def test_show_gives_the_version_its_lineage_metadata_and_files(logged, monkeypatch):
    v0 = logged["v0"]
    doc = json.loads(ok("artifact", "show", "p/mnist:best", "--json"))
    assert (doc["project"], doc["name"], doc["version"], doc["type"]) == \
        ("p", "mnist", "v0", "dataset")
    assert doc["digest"] == v0.digest and doc["aliases"] == ["best"]
    assert doc["logged_by"] == {"project": "p", "id": logged["maker"], "name": "maker"}
    assert doc["used_by"] == [{"project": "p", "id": logged["user"], "name": "trainer"}]
    assert doc["metadata"] == {"rows": 60000, "split": {"train": 0.9}}
    assert doc["description"] == "digits"
    files = {f["path"]: f for f in doc["files"]}
    assert set(files) == {"train.bin", "extra.bin"}
    assert files["extra.bin"]["size"] == len(ONLY_V0)
    assert files["extra.bin"]["digest"] == v0.get_entry("extra.bin").digest

    text = ok("artifact", "show", "p/mnist:best")
    assert "artifact   p/mnist:v0" in text and v0.digest in text
    assert f"logged by  p/{logged['maker']} (maker)" in text
    assert f"p/{logged['user']} (trainer)" in text
    assert "rows = 60000" in text and 'split = {"train": 0.9}' in text
    extra = [ln for ln in text.splitlines() if "extra.bin" in ln]
    assert extra and v0.get_entry("extra.bin").digest[:12] in extra[0] and "800 B" in extra[0]

    # without a project the default one (NBTRACKER_PROJECT); without ":…" the latest
    monkeypatch.setenv("NBTRACKER_PROJECT", "p")
    assert json.loads(ok("artifact", "show", "mnist", "--json"))["version"] == "v1"
    assert json.loads(ok("artifact", "show", "mnist:best", "--json"))["version"] == "v0"
    monkeypatch.delenv("NBTRACKER_PROJECT")
    one_line_error(nbt("artifact", "show", "mnist"))    # not in the default project
    assert json.loads(ok("artifact", "show", "q/cnn", "--json"))["used_by"] == []


def test_show_names_a_reference_by_its_uri(tmp_path):
    data = write(tmp_path / "far" / "big.csv", b"a,b\n1,2\n")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("refs", type="dataset")
        a.add_reference(data.as_uri())
        run.log_artifact(a)
    (f,) = json.loads(ok("artifact", "show", "p/refs", "--json"))["files"]
    assert f["ref"] == data.as_uri() and f["size"] == 8
    assert data.as_uri() in ok("artifact", "show", "p/refs")


# -- get -------------------------------------------------------------------------------------
def test_get_writes_the_versions_files_where_asked(logged, tmp_path):
    out = Path(ok("artifact", "get", "p/mnist:v0").strip())
    assert out == tmp_path / "artifacts" / "mnist:v0"     # the default: ./artifacts/NAME:vN
    assert {p.name: p.read_bytes() for p in out.iterdir()} == \
        {"train.bin": SHARED, "extra.bin": ONLY_V0}
    there = tmp_path / "elsewhere" / "d"
    assert Path(ok("artifact", "get", "p/mnist", "-o", str(there)).strip()) == there
    assert {p.name: p.read_bytes() for p in there.iterdir()} == \
        {"train.bin": SHARED, "new.bin": ONLY_V1}


def test_get_of_a_corrupted_object_fails_and_leaves_no_bad_bytes(logged, store, tmp_path):
    entry = logged["v0"].get_entry("extra.bin")
    obj = object_path(store, entry.digest)
    os.chmod(obj, 0o644)
    bad = b"X" + ONLY_V0[1:]                         # same size, one byte changed
    obj.write_bytes(bad)
    dest = tmp_path / "got"
    err = one_line_error(nbt("artifact", "get", "p/mnist:v0", "-o", str(dest)))
    assert "extra.bin" in err and "not" in err
    written = [p for p in dest.rglob("*") if p.is_file()] if dest.exists() else []
    assert all(p.read_bytes() != bad for p in written)
    assert not (dest / "extra.bin").exists()
    # a good file of the same version is not the one reported
    assert "train.bin" not in err


# -- rm --------------------------------------------------------------------------------------
def test_rm_frees_the_objects_no_other_version_holds(logged, store):
    v0, v1 = logged["v0"], logged["v1"]
    shared = v0.get_entry("train.bin").digest
    only0 = v0.get_entry("extra.bin").digest
    only1 = v1.get_entry("new.bin").digest
    assert shared == v1.get_entry("train.bin").digest
    assert {shared, only0, only1} <= set(objects(store))

    # v0 holds "best": not deleted without --delete-aliases, and nothing is removed
    err = one_line_error(nbt("artifact", "rm", "p/mnist:v0"))
    assert "best" in err and "--delete-aliases" in err
    assert {shared, only0, only1} <= set(objects(store))

    out = ok("artifact", "rm", "p/mnist:v0", "--delete-aliases")
    assert f"freed {len(ONLY_V0)} bytes" in out
    left = objects(store)
    assert only0 not in left
    assert left[shared] == SHARED and left[only1] == ONLY_V1
    one_line_error(nbt("artifact", "show", "p/mnist:v0"))
    one_line_error(nbt("artifact", "show", "p/mnist:best"))
    assert json.loads(ok("artifact", "show", "p/mnist", "--json"))["version"] == "v1"

    out = ok("artifact", "rm", "p/mnist:latest")          # the last one: all of it goes
    assert f"freed {len(SHARED) + len(ONLY_V1)} bytes" in out
    assert not {shared, only1} & set(objects(store))


# -- alias -----------------------------------------------------------------------------------
def aliases_of(ref: str) -> list[str]:
    return json.loads(ok("artifact", "show", ref, "--json"))["aliases"]


def test_alias_moves_an_alias_from_one_version_to_another(logged):
    out = ok("artifact", "alias", "p/mnist:v1", "best", "candidate")
    assert "moved best from v0" in out
    assert aliases_of("p/mnist:v1") == ["best", "candidate", "latest"]
    assert aliases_of("p/mnist:v0") == []
    api = nbtracker.Api()
    assert api.artifact("p/mnist:best").version == "v1"       # the Python side agrees

    ok("artifact", "alias", "p/mnist:v0", "best")              # and back
    assert aliases_of("p/mnist:v0") == ["best"]
    assert aliases_of("p/mnist:v1") == ["candidate", "latest"]

    ok("artifact", "alias", "p/mnist:v1", "--remove", "candidate")
    assert aliases_of("p/mnist:v1") == ["latest"]
    one_line_error(nbt("artifact", "show", "p/mnist:candidate"))

    err = one_line_error(nbt("artifact", "alias", "p/mnist:v1", "--remove", "latest"))
    assert "latest" in err
    err = one_line_error(nbt("artifact", "alias", "p/mnist:v1", "--remove", "best"))
    assert "no alias best" in err
    err = one_line_error(nbt("artifact", "alias", "p/mnist:v0", "v7"))
    assert "v7" in err
    one_line_error(nbt("artifact", "alias", "p/mnist:v0"), code=2)
    assert aliases_of("p/mnist:v0") == ["best"] and aliases_of("p/mnist:v1") == ["latest"]


# -- the download cache ----------------------------------------------------------------------
def test_cache_cleanup_keeps_at_most_the_cap_removing_the_least_recently_used(
        tmp_path, monkeypatch):
    fsspec = pytest.importorskip("fsspec")
    cache = tmp_path / "dlcache"
    monkeypatch.setenv("NBTRACKER_CACHE_DIR", str(cache))
    mem = fsspec.filesystem("memory")
    blobs = {n: bytes([i]) * 1000 for i, n in enumerate("abc", start=1)}
    for n, data in blobs.items():
        mem.pipe(f"/cli-cache-test/{n}.bin", data)
    try:
        with nbtracker.init(project="p") as run:
            art = nbtracker.Artifact("remote", type="dataset")
            for n in blobs:
                art.add_reference(f"memory://cli-cache-test/{n}.bin")
            run.log_artifact(art)
        art = nbtracker.Api().artifact("p/remote:v0")
        art.download(root=tmp_path / "first")                # fetched: a, b, c land in the cache

        def cached() -> dict[bytes, Path]:
            return {p.read_bytes(): p for p in (cache / "nbtracker-artifacts").rglob("*") if p.is_file()}

        assert set(cached()) == set(blobs.values())
        # used long ago, in the order a, b, c; then a is used again now (a cache hit)
        for i, n in enumerate("abc"):
            t = 1_000_000 + i * 1000
            os.utime(cached()[blobs[n]], (t, t))
        art.download(root=tmp_path / "again", path_prefix="a.bin")
        assert (tmp_path / "again" / "a.bin").read_bytes() == blobs["a"]
        assert set(cached()) == set(blobs.values())         # a hit: nothing fetched anew
    finally:
        mem.rm("/cli-cache-test", recursive=True)

    assert ok("artifact", "cache", "size").startswith("3 file(s), 3000 bytes")
    out = ok("artifact", "cache", "cleanup", "--max-size", "2.5KB")
    assert "removed 1 file(s), freed 1000 bytes" in out
    assert set(cached()) == {blobs["a"], blobs["c"]}      # b was the least recently used
    out = ok("artifact", "cache", "cleanup", "--max-size", "2000")
    assert "removed 0 file(s)" in out and len(cached()) == 2
    monkeypatch.setenv("NBTRACKER_ARTIFACT_CACHE_MAX", "1500")  # the cap when none is given
    ok("artifact", "cache", "cleanup")
    assert set(cached()) == {blobs["a"]}
    ok("artifact", "cache", "cleanup", "--max-size", "0")
    assert cached() == {}
    assert ok("artifact", "cache", "size").startswith("0 file(s), 0 bytes")


def test_cache_cleanup_refuses_a_size_that_is_not_one():
    for bad in ("10XB", "-5", "lots", ""):
        err = one_line_error(nbt("artifact", "cache", "cleanup", "--max-size", bad), code=2)
        assert "--max-size" in err or "size" in err


# -- gc --------------------------------------------------------------------------------------
def test_gc_removes_only_orphans_older_than_the_grace(logged, store, tmp_path):
    kept = logged["v0"].get_entry("extra.bin").digest
    orphans = {}
    for n in ("old", "young"):
        draft = nbtracker.Artifact("never-logged", type="dataset")   # stored, never logged
        data = (n.encode() * 150)[:150]
        orphans[n] = draft.add_file(write(tmp_path / f"{n}.bin", data)).digest
    del draft  # a draft alive in a process holds its files; dropped, they are orphans
    long_ago = time.time() - 7200
    for d in (orphans["old"], kept):
        os.utime(object_path(store, d), (long_ago, long_ago))
    assert {kept, *orphans.values()} <= set(objects(store))

    out = ok("artifact", "gc")                          # grace: an hour
    assert "removed 1 stored file(s)" in out and "freed 150 bytes" in out
    left = set(objects(store))
    assert orphans["old"] not in left
    assert orphans["young"] in left and kept in left

    ok("artifact", "gc", "--older-than", "0")
    left = set(objects(store))
    assert orphans["young"] not in left and kept in left
    # every version still downloads whole
    assert Path(ok("artifact", "get", "p/mnist:v0").strip()).joinpath("extra.bin").read_bytes() \
        == ONLY_V0
    one_line_error(nbt("artifact", "gc", "--older-than", "-1"), code=2)


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize("ref", ["../x", "a/b/c/d:v1", "x:", "x:../y", "p/x:a b", "/x", "x\x1b:v1"])
@pytest.mark.parametrize("action", ["show", "get", "rm"])
def test_bad_references_are_one_line_errors(ref, action, tmp_path):
    err = one_line_error(nbt("artifact", action, ref))
    assert "\x1b" not in err                            # shown escaped, not sent to the terminal
    assert not (tmp_path / "artifacts").exists()


def test_an_unknown_version_is_one_line_naming_what_there_is(logged):
    err = one_line_error(nbt("artifact", "get", "p/mnist:v9"))
    assert "v9" in err and "v0" in err and "best" in err
    err = one_line_error(nbt("artifact", "show", "p/nothing"))
    assert "nothing" in err


def test_help_lists_the_artifact_actions():
    out = ok("artifact", "--help")
    assert out.startswith("usage: nbtracker artifact")
    for action in ("ls", "show", "get", "rm", "alias", "cache", "gc"):
        assert f"    {action} " in out or f"    {action}\n" in out
    assert "artifact" in ok("--help")
    assert nbt("artifact").returncode == 2              # an action is needed
    assert nbt("artifact", "cache").returncode == 2
