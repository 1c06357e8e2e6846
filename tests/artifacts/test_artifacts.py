"""Artifacts through the public API: versions by content, dedupe, aliases, integrity, lineage,
bad names, and two processes logging one name at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbtracker
from nbtracker.artifacts import ArtifactCorrupt, ArtifactError, ArtifactNotFound

ROOT = Path(__file__).resolve().parents[2]


def objects(store: Path) -> dict[str, int]:
    """The stored objects: {digest: size on disk}."""
    base = store / "artifacts" / "objects"
    out = {}
    for head in base.iterdir() if base.exists() else ():
        if len(head.name) == 2:
            for f in head.iterdir():
                out[head.name + f.name] = f.stat().st_size
    return out


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    path.write_bytes(data)
    return path


def dataset(tmp_path: Path, n: int = 5, seed: int = 0, size: int = 2048) -> Path:
    d = tmp_path / f"data{seed}"
    for i in range(n):
        write(d / "shard" / f"{i}.bin", bytes([(i * 7 + seed + j) % 251 for j in range(size)]))
    return d


def test_versions_by_content_and_aliases_move(tmp_path, store):
    d = dataset(tmp_path)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("mnist", type="dataset", metadata={"rows": 5})
        a.add_dir(d, name="data")
        v0 = run.log_artifact(a, aliases=["best"])
        assert (v0.name, v0.version, v0.aliases) == ("mnist:v0", "v0", ["best", "latest"])
        # the same content again: the same version, `latest` and the new alias on it
        b = nbtracker.Artifact("mnist", type="dataset")
        b.add_dir(d, name="data")
        again = run.log_artifact(b, aliases=["prod"])
        assert again.version == "v0" and again.aliases == ["best", "latest", "prod"]
        assert again.metadata == {"rows": 5}  # the version as stored, not the second draft's
        # one byte changes: a new version, and `latest` follows it
        write(d / "shard" / "0.bin", b"changed")
        c = nbtracker.Artifact("mnist", type="dataset")
        c.add_dir(d, name="data")
        v1 = run.log_artifact(c, aliases=["best"])
    assert v1.version == "v1" and v1.aliases == ["best", "latest"]
    api = nbtracker.Api()
    assert api.artifact("p/mnist:latest").version == "v1"
    assert api.artifact("p/mnist:best").version == "v1"  # moved
    assert api.artifact("p/mnist:prod").version == "v0"
    assert api.artifact("p/mnist:v0").aliases == ["prod"]
    assert [x.version for x in api.artifacts("dataset", "p/mnist")] == ["v0", "v1"]
    assert api.artifacts("model", "p/mnist") == []
    with pytest.raises(ArtifactNotFound, match="has no version or alias 'v7'"):
        api.artifact("p/mnist:v7")


def test_dedupe_across_versions_and_artifacts_costs_no_space_twice(tmp_path, store):
    d = dataset(tmp_path, n=4, size=10_000)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("one", type="dataset")
        a.add_dir(d)
        run.log_artifact(a)
        first = objects(store)
        assert len(first) == 4 and sum(first.values()) == 40_000
        # another artifact holding the same files under other names, plus one new file
        b = nbtracker.Artifact("two", type="dataset")
        b.add_dir(d, name="copy")
        b.add_file(write(tmp_path / "extra.txt", "x" * 123))
        with b.new_file("same-as-shard0.bin", mode="wb") as f:
            f.write((d / "shard" / "0.bin").read_bytes())
        run.log_artifact(b)
        # a second version of the first: one file changed
        write(d / "shard" / "3.bin", b"y" * 10_000)
        c = nbtracker.Artifact("one", type="dataset")
        c.add_dir(d)
        run.log_artifact(c)
    after = objects(store)
    assert len(after) == 4 + 1 + 1  # the extra file and the changed shard only
    assert sum(after.values()) == 40_000 + 123 + 10_000
    v1 = nbtracker.Api().artifact("p/one:v1")
    assert v1.size == 40_000 and v1.file_count == 4
    assert v1.get_entry("shard/3.bin").digest != nbtracker.Api().artifact(
        "p/one:v0").get_entry("shard/3.bin").digest


def test_download_checks_every_file_and_reports_a_corrupt_one(tmp_path, store):
    d = dataset(tmp_path, n=3)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("data", type="dataset")
        a.add_dir(d)
        run.log_artifact(a)
    art = nbtracker.Api().artifact("p/data:v0")
    good = Path(art.download(root=tmp_path / "ok"))
    for p in (d / "shard").iterdir():
        assert (good / "shard" / p.name).read_bytes() == p.read_bytes()
    # a downloaded file changed since is put right by the next download
    write(good / "shard" / "0.bin", b"tampered")
    assert Path(art.download(root=good)) == good
    assert (good / "shard" / "0.bin").read_bytes() == (d / "shard" / "0.bin").read_bytes()
    # damage one stored object (same size, one byte flipped)
    victim = art.get_entry("shard/1.bin")
    obj = store / "artifacts" / "objects" / victim.digest[:2] / victim.digest[2:]
    os.chmod(obj, 0o644)
    data = bytearray(obj.read_bytes())
    data[100] ^= 1
    obj.write_bytes(bytes(data))
    dest = tmp_path / "bad"
    with pytest.raises(ArtifactCorrupt, match="shard/1.bin") as e:
        art.download(root=dest)
    assert e.value.paths == ["shard/1.bin"]
    assert not (dest / "shard" / "1.bin").exists()  # never left as if it were good
    assert (dest / "shard" / "0.bin").read_bytes() == (d / "shard" / "0.bin").read_bytes()
    assert not [p for p in dest.rglob("*") if p.name.endswith(".part")]


def test_an_edited_file_with_its_old_size_and_mtime_is_a_new_version(tmp_path, store):
    f = write(tmp_path / "w.bin", b"a" * 1000)
    old = time.time() - 100
    os.utime(f, (old, old))
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("w", type="model")
        a.add_file(f)
        run.log_artifact(a)
        st = f.stat()
        with open(f, "r+b") as fh:  # same size, and the mtime put back as it was
            fh.write(b"b")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        b = nbtracker.Artifact("w", type="model")
        b.add_file(f)
        v = run.log_artifact(b)
    assert v.version == "v1"
    out = Path(v.download(root=tmp_path / "out")) / "w.bin"
    assert out.read_bytes() == b"b" + b"a" * 999


def test_what_is_logged_is_the_file_as_it_was_added(tmp_path, store):
    f = write(tmp_path / "m.txt", "first")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("m", type="model")
        a.add_file(f)
        write(f, "second, longer")
        run.log_artifact(a)
    got = nbtracker.Api().artifact("p/m:v0").file(root=tmp_path / "o")
    assert Path(got).read_text() == "first"


@pytest.mark.parametrize("bad", ["../x", "..", "a/b", "/abs", "a\0b", "a\nb", "a:b", "a b", "",
                                 "x" * 129, "a..b"])
def test_bad_artifact_names_are_refused(bad):
    with pytest.raises(ArtifactError):
        nbtracker.Artifact(bad, type="dataset")


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../b", "/etc/passwd", "a\\b", "a\0b",
                                 "a\x01b", "C:/x", ".", "./"])
def test_bad_file_names_are_refused_everywhere(tmp_path, store, bad):
    f = write(tmp_path / "f.txt", "x")
    a = nbtracker.Artifact("ok", type="dataset")
    with pytest.raises(ArtifactError):
        a.add_file(f, name=bad)
    with pytest.raises(ArtifactError):
        with a.new_file(bad) as fh:
            fh.write("x")
    with pytest.raises(ArtifactError):
        a.add_dir(tmp_path, name=bad + "/sub" if bad not in (".", "./") else "../up")
    assert a.file_count == 0
    with pytest.raises(ArtifactError):
        a.add_reference(f.as_uri(), name=bad)
    assert a.file_count == 0


def test_bad_references_and_aliases_are_refused(tmp_path, store):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("ok", type="dataset")
        a.add_file(write(tmp_path / "f.txt", "x"))
        for alias in ["v3", "../x", "a/b", "a:b", ""]:
            with pytest.raises(ArtifactError):
                run.log_artifact(a, aliases=[alias])
        assert a.is_draft()
        run.log_artifact(a)
        for ref in ["../ok:v0", "a/b/c/ok:v0", "ok:", "ok:../x", "ok\0:v0"]:
            with pytest.raises(ArtifactError):
                run.use_artifact(ref)


def test_a_missing_file_is_a_clear_error_at_add_file(tmp_path, store):
    a = nbtracker.Artifact("d", type="dataset")
    with pytest.raises(ArtifactError, match="add_file: no such file: .*nope.csv"):
        a.add_file(tmp_path / "nope.csv")
    with pytest.raises(ArtifactError, match="is a folder; use add_dir"):
        a.add_file(tmp_path)
    with pytest.raises(ArtifactError, match="add_dir: no such folder"):
        a.add_dir(tmp_path / "nope")
    with pytest.raises(ArtifactError, match="no such file or folder"):
        a.add_reference((tmp_path / "nope").as_uri())
    assert a.file_count == 0


def test_a_file_name_taken_twice_needs_overwrite(tmp_path, store):
    a = nbtracker.Artifact("d", type="dataset")
    a.add_file(write(tmp_path / "x.txt", "1"))
    with pytest.raises(ArtifactError, match="already holds a file named 'x.txt'"):
        a.add_file(write(tmp_path / "other" / "x.txt", "2"))
    a.add_file(tmp_path / "other" / "x.txt", overwrite=True)
    assert a.get_entry("x.txt").size == 1 and a.file_count == 1


def test_a_name_keeps_its_type(tmp_path, store):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("thing", type="dataset")
        a.add_file(write(tmp_path / "x", "1"))
        run.log_artifact(a)
        b = nbtracker.Artifact("thing", type="model")
        b.add_file(write(tmp_path / "y", "2"))
        with pytest.raises(ArtifactError, match="is of type 'dataset', not 'model'"):
            run.log_artifact(b)


def test_delete_removes_the_manifest_and_objects_no_one_else_holds(tmp_path, store):
    shared = write(tmp_path / "shared.bin", b"s" * 500)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("d", type="dataset")
        a.add_file(shared)
        a.add_file(write(tmp_path / "only0.bin", b"0" * 300))
        run.log_artifact(a, aliases=["keep"])
        b = nbtracker.Artifact("d", type="dataset")
        b.add_file(shared)
        b.add_file(write(tmp_path / "only1.bin", b"1" * 200))
        run.log_artifact(b)
    api = nbtracker.Api()
    assert len(objects(store)) == 3
    v0 = api.artifact("p/d:v0")
    with pytest.raises(ArtifactError, match="has the aliases keep"):
        v0.delete()
    v1 = api.artifact("p/d:v1")
    v1.delete()  # its only alias is `latest`, which moves back to v0
    assert sorted(objects(store).values()) == [300, 500]
    assert api.artifact("p/d:latest").version == "v0"
    assert not (store / "artifacts" / "collections" / "p" / "d" / "v1.json").exists()
    with pytest.raises(ArtifactNotFound):
        api.artifact("p/d:v1")
    v0.delete(delete_aliases=True)
    assert objects(store) == {}
    assert api.artifacts("dataset", "p/d") == []
    # numbers are never given twice
    with nbtracker.init(project="p") as run:
        c = nbtracker.Artifact("d", type="dataset")
        c.add_file(shared)
        assert run.log_artifact(c).version == "v2"


def test_edits_to_a_logged_version_are_saved(tmp_path, store):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("d", type="dataset", description="first")
        a.add_file(write(tmp_path / "x", "1"))
        run.log_artifact(a)
        with pytest.raises(ArtifactError, match="cannot change"):
            a.add_file(tmp_path / "x", name="y")
    art = nbtracker.Api().artifact("p/d:v0")
    art.aliases.append("prod")
    art.metadata["acc"] = 0.9
    art.description = "checked"
    art.save()
    again = nbtracker.Api().artifact("p/d:prod")
    assert again.version == "v0" and again.metadata == {"acc": 0.9}
    assert again.description == "checked" and again.aliases == ["latest", "prod"]
    again.aliases.remove("prod")
    again.save()
    with pytest.raises(ArtifactNotFound):
        nbtracker.Api().artifact("p/d:prod")


def test_lineage_both_ways_survives_losing_the_index(tmp_path, store):
    with nbtracker.init(project="p", name="prep") as prep:
        a = nbtracker.Artifact("mnist", type="dataset")
        a.add_file(write(tmp_path / "train.csv", "a,b\n1,2\n"))
        prep.log_artifact(a)
    with nbtracker.init(project="p", name="train") as train:
        data = train.use_artifact("mnist:latest")
        assert Path(data.download()).joinpath("train.csv").read_text() == "a,b\n1,2\n"
        train.log_model(write(tmp_path / "model.pt", "weights"), name="cnn")
    with nbtracker.init(project="other", name="eval") as ev:
        ev.use_artifact("p/cnn:latest")
    (store / "index.sqlite").unlink()
    api = nbtracker.Api()
    ds = api.artifact("p/mnist:v0")
    assert ds.logged_by().id == prep.id
    assert [r.id for r in ds.used_by()] == [train.id]
    model = api.artifact("p/cnn:v0")
    assert model.logged_by().id == train.id and [r.id for r in model.used_by()] == [ev.id]
    r = api.run(f"p/{train.id}")
    assert [x.name for x in r.used_artifacts()] == ["mnist:v0"]
    assert [x.name for x in r.logged_artifacts()] == ["cnn:v0"]
    # the records are in the run's log, where a replay (sync, reindex) finds them
    recs = [json.loads(line) for line in (Path(train.dir).parent / "records.jsonl")
            .read_text().splitlines()]
    arts = [(x["io"], x["name"], x["version"]) for x in recs if x["t"] == "artifact"]
    assert arts == [("in", "mnist", 0), ("out", "cnn", 0)]


def test_file_references_are_checked_on_download(tmp_path, store):
    src = write(tmp_path / "big" / "part-0.csv", "1,2,3\n")
    write(tmp_path / "big" / "sub" / "part-1.csv", "4,5,6\n")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("refs", type="dataset")
        entries = a.add_reference((tmp_path / "big").as_uri(), name="big")
        assert sorted(e.path for e in entries) == ["big/part-0.csv", "big/sub/part-1.csv"]
        assert all(e.ref.startswith("file://") and len(e.digest) == 64 for e in entries)
        run.log_artifact(a)
    assert objects(store) == {}  # a reference stores no copy
    art = nbtracker.Api().artifact("p/refs:v0")
    out = Path(art.download(root=tmp_path / "o1"))
    assert (out / "big" / "sub" / "part-1.csv").read_text() == "4,5,6\n"
    write(src, "9,9,9\n")  # the referenced data changed since it was logged
    with pytest.raises(ArtifactCorrupt, match="big/part-0.csv"):
        art.download(root=tmp_path / "o2")
    src.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        art.download(root=tmp_path / "o3")
    art.download(root=tmp_path / "o4", allow_missing_references=True)
    assert (tmp_path / "o4" / "big" / "sub" / "part-1.csv").exists()


def test_remote_references_are_kept_not_fetched_until_download(tmp_path, store):
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    mem.pipe("/bucket/w.bin", b"remote bytes")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("r", type="model")
        (e,) = a.add_reference("memory://bucket/w.bin")
        (s3,) = a.add_reference("s3://no-such-bucket/key/model.ckpt", checksum=False)
        assert (e.path, e.digest, s3.path) == ("w.bin", None, "model.ckpt")
        assert e.size == 12 and s3.size is None  # what the remote said of it, nothing fetched
        run.log_artifact(a)
    art = nbtracker.Api().artifact("p/r:v0")
    out = Path(art.download(root=tmp_path / "o", path_prefix="w.bin"))
    assert (out / "w.bin").read_bytes() == b"remote bytes"
    cached = list((store / "cache" / "artifacts").rglob("*"))
    assert [p.read_bytes() for p in cached if p.is_file()] == [b"remote bytes"]


def test_log_model_at_each_epoch_of_a_training_loop(tmp_path, store):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 4), torch.randn(32, 2)
    with nbtracker.init(project="p", config={"epochs": 3}) as run:
        for epoch in range(3):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            nbtracker.log({"loss": loss.item(), "epoch": epoch})
            torch.save(model.state_dict(), "model.pt")
            nbtracker.log_model("model.pt", name="tiny", aliases=[f"epoch-{epoch}"])
        # the same weights again: no new version
        torch.save(model.state_dict(), "model.pt")
        same = nbtracker.log_model("model.pt", name="tiny", aliases=["final"])
        default = run.log_model("model.pt")
    assert same.version == "v2" and same.aliases == ["epoch-2", "final", "latest"]
    assert default.name == f"run-{run.id}-model.pt:v0" and default.type == "model"
    api = nbtracker.Api()
    versions = api.artifacts("model", "p/tiny")
    assert [v.version for v in versions] == ["v0", "v1", "v2"]
    assert [v.aliases for v in versions] == [["epoch-0"], ["epoch-1"], ["epoch-2", "final", "latest"]]
    with nbtracker.init(project="p") as run2:
        path = run2.use_model("tiny:epoch-2")
        weights = torch.load(path)
    for k, v in model.state_dict().items():
        assert torch.equal(weights[k], v)
    assert [a.name for a in api.run(f"p/{run.id}").logged_artifacts()] == [
        "tiny:v0", "tiny:v1", "tiny:v2", f"run-{run.id}-model.pt:v0"]


LOGGER = """
import sys, pathlib, time, nbtracker
who, n, go = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[3])
while not go.exists():
    time.sleep(0.001)
out = []
with nbtracker.init(project="race", name=who) as run:
    for i in range(n):
        a = nbtracker.Artifact("shared", type="dataset")
        with a.new_file("who.txt", mode="w") as f:
            f.write(f"{who}-{i}")
        out.append(run.log_artifact(a).version)
print(" ".join(out))
"""


@pytest.mark.slow
def test_two_processes_logging_one_name_at_once_get_distinct_versions(tmp_path, store):
    script = write(tmp_path / "logger.py", LOGGER)
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NBTRACKER_SILENT": "true"}
    procs = [subprocess.Popen([sys.executable, str(script), who, "15", str(go)],
                              stdout=subprocess.PIPE, text=True, env=env)
             for who in ("a", "b", "c")]
    time.sleep(0.5)
    go.touch()
    got = {}
    for who, p in zip("abc", procs):
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        got[who] = out.split()
    every = [v for vs in got.values() for v in vs]
    assert sorted(every, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(45)]
    api = nbtracker.Api()
    for who, versions in got.items():  # each version holds what its process wrote
        for i, v in enumerate(versions):
            art = api.artifact(f"race/shared:{v}")
            path = Path(art.download(root=tmp_path / "dl" / v)) / "who.txt"
            assert path.read_text() == f"{who}-{i}"
            assert art.logged_by().name == who


WALKTHROUGH = '''
import wandb

wandb.login()

# make the dataset the walkthrough logs
with open("dataset.h5", "wb") as f:
    f.write(bytes(range(256)) * 40)

with wandb.init(project="artifacts-example", job_type="upload-dataset") as run:
    artifact = wandb.Artifact(name="bicycle-dataset", type="dataset")
    artifact.add_file(local_path="dataset.h5")
    run.log_artifact(artifact)

with wandb.init(project="artifacts-example", job_type="training") as run:
    artifact = run.use_artifact("bicycle-dataset:latest")
    artifact_dir = artifact.download()
    print("downloaded", artifact_dir)

# a new version, with an alias, and the public API to update it
with open("dataset.h5", "ab") as f:
    f.write(b"more rows")
with wandb.init(project="artifacts-example", job_type="upload-dataset") as run:
    artifact = wandb.Artifact(name="bicycle-dataset", type="dataset")
    artifact.add_file(local_path="dataset.h5")
    run.log_artifact(artifact, aliases=["latest", "v2-data"])

api = wandb.Api()
artifact = api.artifact("artifacts-example/bicycle-dataset:v1")
artifact.description = "bicycles, with more rows"
artifact.metadata["rows"] = 2
artifact.aliases.append("production")
artifact.save()
entry = artifact.get_entry("dataset.h5")
print("entry", entry.path, entry.size)
print("versions", [a.version for a in api.artifacts(type_name="dataset",
                                                      name="artifacts-example/bicycle-dataset")])
'''


def test_wandbs_artifact_walkthrough_runs_with_only_its_import_changed(tmp_path, store):
    script = write(tmp_path / "walkthrough.py",
                   WALKTHROUGH.replace("import wandb\n", "import nbtracker as wandb\n", 1))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "downloaded artifacts/bicycle-dataset:v0" in lines
    assert "entry dataset.h5 10249" in lines and "versions ['v0', 'v1']" in lines
    assert (tmp_path / "artifacts" / "bicycle-dataset:v0" / "dataset.h5").read_bytes() == \
        bytes(range(256)) * 40
    v1 = nbtracker.Api().artifact("artifacts-example/bicycle-dataset:production")
    assert v1.version == "v1" and v1.metadata == {"rows": 2}
    assert v1.aliases == ["latest", "production", "v2-data"]
    assert v1.description == "bicycles, with more rows"
    (user,) = nbtracker.Api().artifact("artifacts-example/bicycle-dataset:v0").used_by()
    assert user.job_type == "training"


class _Files:
    """A loopback HTTP server of in-memory files, with or without an ETag."""

    def __init__(self, etag: bool):
        import http.server
        import threading

        self.files: dict[str, bytes] = {}
        self.gets = 0
        files, outer = self.files, self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _head(self) -> bytes | None:
                data = files.get(self.path)
                if data is None:
                    self.send_error(404)
                    return None
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                if etag:
                    import hashlib

                    self.send_header("ETag", '"' + hashlib.md5(data).hexdigest() + '"')
                self.end_headers()
                return data

            def do_HEAD(self):
                self._head()

            def do_GET(self):
                data = self._head()
                if data is not None:
                    outer.gets += 1
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("etag", [True, False])
def test_http_references_are_fetched_on_download_and_cached_only_when_validated(
        tmp_path, store, etag):
    pytest.importorskip("fsspec")
    pytest.importorskip("aiohttp")
    srv = _Files(etag)
    try:
        srv.files["/w.bin"] = b"A" * 100
        with nbtracker.init(project="p") as run:
            a = nbtracker.Artifact("web", type="model")
            a.add_reference(f"{srv.url}/w.bin")
            run.log_artifact(a)
        assert srv.gets == 0  # nothing is fetched when it is logged
        art = nbtracker.Api().artifact("p/web:v0")
        assert (Path(art.download(root=tmp_path / "1")) / "w.bin").read_bytes() == b"A" * 100
        assert srv.gets == 1
        art.download(root=tmp_path / "2")
        assert srv.gets == (1 if etag else 2)  # the cached copy, only when the server vouches
        srv.files["/w.bin"] = b"B" * 100  # same size, new content
        if etag:  # the server says it is not what was logged
            with pytest.raises(ArtifactCorrupt, match="changed since it was logged"):
                art.download(root=tmp_path / "3")
        else:  # the server says nothing: what it holds now
            assert (Path(art.download(root=tmp_path / "3")) / "w.bin").read_bytes() == b"B" * 100
        del srv.files["/w.bin"]
        with pytest.raises(ArtifactError, match="w.bin"):
            art.download(root=tmp_path / "4")
    finally:
        srv.close()


FULL_DISK = """
import os, resource, signal, nbtracker
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
with open("model.pt", "wb") as f:
    f.write(os.urandom(300_000))
with nbtracker.init(project="disk") as run:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, hard))  # no room for the model
    for epoch in range(3):
        nbtracker.log({"epoch": epoch})
        got = nbtracker.log_model("model.pt", name="m", aliases=[f"epoch-{epoch}"])
        print("logged", got)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space is back
    print("then", nbtracker.log_model("model.pt", name="m").version)
print("alive")
"""


def test_a_full_disk_while_logging_a_model_is_one_line_and_training_goes_on(tmp_path, store):
    script = write(tmp_path / "full.py", FULL_DISK)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["logged None"] * 3 + ["then v0", "alive"]
    assert p.stderr.count("could not store 'model.pt' as an artifact") == 3
    assert "Traceback" not in p.stderr
    assert not list((store / "artifacts" / "objects" / "tmp").iterdir())  # no half-written copy
    (r,) = nbtracker.Api().runs("disk")
    assert r.history()["epoch"].tolist() == [0, 1, 2]
    assert [a.name for a in r.logged_artifacts()] == ["m:v0"]
    out = Path(nbtracker.Api().artifact("disk/m:v0").file(root=tmp_path / "o"))
    assert out.read_bytes() == (tmp_path / "model.pt").read_bytes()


KILLED = """
import os, sys, nbtracker
with nbtracker.init(project="kill") as run:
    for i in range(10_000):
        a = nbtracker.Artifact("ckpt", type="model")
        with a.new_file("w.bin", mode="wb") as f:
            f.write(bytes([i % 256]) * 200_000 + str(i).encode())
        a.add_file(sys.argv[1])
        run.log_artifact(a)
"""


@pytest.mark.slow
def test_a_logger_killed_at_any_moment_leaves_every_version_whole(tmp_path, store):
    import signal

    script = write(tmp_path / "killed.py", KILLED)
    common = write(tmp_path / "common.bin", os.urandom(100_000))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NBTRACKER_SILENT": "true"}
    coll = store / "artifacts" / "collections" / "kill" / "ckpt" / "collection.json"
    for round_ in range(3):
        p = subprocess.Popen([sys.executable, str(script), str(common)], env=env, cwd=tmp_path)
        deadline = time.monotonic() + 60
        start = json.loads(coll.read_text())["next"] if coll.exists() else 0
        while time.monotonic() < deadline:
            try:
                if json.loads(coll.read_text())["next"] >= start + 3 + round_ * 2:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.005)
        p.send_signal(signal.SIGKILL)
        p.wait()
    api = nbtracker.Api()
    versions = api.artifacts("model", "kill/ckpt")
    assert len(versions) >= 9
    assert [v.version for v in versions] == [f"v{i}" for i in range(len(versions))]
    for v in versions:  # every version that is named is whole and downloads checked
        out = Path(v.download(root=tmp_path / "dl" / v.version))
        assert (out / "w.bin").stat().st_size > 200_000
        assert (out / "common.bin").read_bytes() == common.read_bytes()
    assert api.artifact("kill/ckpt:latest").version == versions[-1].version
    with nbtracker.init(project="kill") as run:  # numbering goes on after the kills
        a = nbtracker.Artifact("ckpt", type="model")
        a.add_file(common)
        assert run.log_artifact(a).version == f"v{len(versions)}"


def test_media_added_to_an_artifact_come_back_with_get(tmp_path, store):
    np = pytest.importorskip("numpy")
    img = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    table = nbtracker.Table(columns=["id", "pred", "image"])
    table.add_data(1, 0.25, nbtracker.Image(img))
    table.add_data(2, 0.75, nbtracker.Image(img[::-1]))
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("preds", type="predictions")
        a.add(table, "val/predictions")
        a["sample"] = nbtracker.Image(img, caption="first")
        with pytest.raises(ArtifactError, match="takes a media value"):
            a.add({"not": "media"}, "x")
        run.log_artifact(a)
    art = nbtracker.Api().artifact("p/preds:v0")
    names = sorted(e.path for e in art.files())
    assert "val/predictions.table.json" in names and "sample.image.json" in names
    got = art.get("val/predictions")
    assert got.columns == ["id", "pred", "image"]
    assert [row[:2] for row in got.data] == [[1, 0.25], [2, 0.75]]
    assert (got.data[1][2].load() == img[::-1]).all()
    sample = art["sample"]
    assert isinstance(sample, nbtracker.Image)
    with pytest.raises(KeyError):
        art.get("nothing")


def test_a_draft_that_is_used_is_stored_as_an_input_the_run_did_not_make(tmp_path, store):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("given", type="dataset")
        a.add_file(write(tmp_path / "x.csv", "1"))
        used = run.use_artifact(a)
        assert used.version == "v0"
    art = nbtracker.Api().artifact("p/given:v0")
    assert art.logged_by() is None and [r.id for r in art.used_by()] == [run.id]
    assert nbtracker.Api().run(f"p/{run.id}").logged_artifacts() == []


def _remote_version(n: int, size: int) -> nbtracker.Artifact:
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    for i in range(n):
        mem.pipe(f"/capped/f{i}.bin", bytes([i]) * size)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("capped", type="dataset")
        for i in range(n):
            a.add_reference(f"memory://capped/f{i}.bin")
        run.log_artifact(a)
    return nbtracker.Api().artifact("p/capped:v0")


def test_a_download_larger_than_the_cache_cap_gets_every_file(tmp_path, store, monkeypatch):
    monkeypatch.setenv("NBTRACKER_ARTIFACT_CACHE_MAX", "300KB")
    art = _remote_version(40, 100_000)
    for attempt in range(3):
        for allow in (False, True):
            out = Path(art.download(root=tmp_path / f"o{attempt}{allow}",
                                    allow_missing_references=allow))
            assert sorted(p.name for p in out.iterdir()) == sorted(f"f{i}.bin" for i in range(40))
            assert all((out / f"f{i}.bin").read_bytes() == bytes([i]) * 100_000
                       for i in range(40))
    cached = [p for p in (store / "cache" / "artifacts").rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in cached) <= 300_000  # the cap holds after the download


def test_the_cache_in_wandbs_cache_folder_leaves_wandbs_files_alone(tmp_path, store, monkeypatch):
    theirs = tmp_path / "wc" / "artifacts"
    write(theirs / "tmp" / "upload-1234", "staging")
    write(theirs / "obj" / "md5" / "ab" / "cdef", "object")
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wc"))
    monkeypatch.setenv("NBTRACKER_ARTIFACT_CACHE_MAX", "0")
    art = _remote_version(2, 10)
    art.download(root=tmp_path / "o")
    from helpers import run_cli

    p = run_cli("artifact", "cache", "size")
    assert p.stdout.split()[0] == "0", p.stdout  # nothing of ours is left, wandb's is not ours
    run_cli("artifact", "cache", "cleanup", "--max-size", "0")
    assert (theirs / "tmp" / "upload-1234").read_text() == "staging"
    assert (theirs / "obj" / "md5" / "ab" / "cdef").read_text() == "object"


def test_downloading_again_leaves_unchanged_files_in_place(tmp_path, store):
    write(tmp_path / "d" / "a.bin", os.urandom(5000))
    write(tmp_path / "d" / "b.bin", os.urandom(5000))
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("same", type="dataset")
        a.add_dir(tmp_path / "d")
        run.log_artifact(a)
    art = nbtracker.Api().artifact("p/same:v0")
    out = Path(art.download(root=tmp_path / "o"))
    inodes = {p.name: p.stat().st_ino for p in out.iterdir()}
    write(out / "b.bin", b"changed")
    art.download(root=out)
    assert (out / "a.bin").stat().st_ino == inodes["a.bin"]  # not written again
    assert (out / "b.bin").read_bytes() == (tmp_path / "d" / "b.bin").read_bytes()


def test_one_damaged_collection_hides_no_other_and_stops_a_delete_from_guessing(tmp_path, store):
    shared = write(tmp_path / "shared.bin", b"s" * 100)
    with nbtracker.init(project="p") as run:
        for name in ("a", "b"):
            art = nbtracker.Artifact(name, type="dataset")
            art.add_file(shared)
            run.log_artifact(art)
    (store / "artifacts" / "collections" / "p" / "a" / "collection.json").write_text('{"proj')
    api = nbtracker.Api()
    assert [c.name for c in api.artifact_collections("p")] == ["b"]
    with pytest.raises(ArtifactError, match="collection.json"):
        api.artifact("p/b:v0").delete()  # it cannot know whether "a" still holds the bytes
    assert len(objects(store)) == 1 and api.artifact("p/b:v0").version == "v0"


def test_a_reference_with_dots_says_so():
    with pytest.raises(ArtifactError, match=r"may not contain '\.\.'"):
        nbtracker.Api().artifact("../x:v0")


# -- found on review -------------------------------------------------------------------------
def _log(run, name: str, data: str, tmp_path: Path, **kw):
    a = nbtracker.Artifact(name, type=kw.pop("type", "model"), **{
        k: kw.pop(k) for k in ("metadata", "description") if k in kw})
    a.add_file(write(tmp_path / f"{name}-{data}.bin", data), name="w.bin")
    return run.log_artifact(a, **kw)


def test_save_applies_only_the_aliases_added_and_removed_on_that_handle(tmp_path, store):
    with nbtracker.init(project="p") as run:
        v0 = _log(run, "m", "0", tmp_path)
        _log(run, "m", "1", tmp_path, aliases=["best"])
        v0.aliases.append("first")  # a stale handle: it still believes it is `latest`
        v0.save()
    api = nbtracker.Api()
    assert api.artifact("p/m:latest").version == "v1"
    assert api.artifact("p/m:best").version == "v1"
    assert api.artifact("p/m:first").version == "v0"
    a, b = api.artifact("p/m:v1"), api.artifact("p/m:v1")
    a.aliases.append("reviewed")
    a.save()
    b.aliases.append("prod")
    b.save()
    v0 = api.artifact("p/m:v0")
    v0.description = "only the description"
    v0.save()  # moves no alias back
    assert api.artifact("p/m:v1").aliases == ["best", "latest", "prod", "reviewed"]
    assert api.artifact("p/m:v0").aliases == ["first"]
    v0.aliases.remove("first")
    v0.aliases.append("latest")  # `latest` is not moved by hand
    v0.save()
    assert api.artifact("p/m:latest").version == "v1" and api.artifact("p/m:v0").aliases == []


def test_logging_the_same_files_with_new_metadata_keeps_it(tmp_path, store):
    with nbtracker.init(project="p") as run:
        _log(run, "cnn", "w", tmp_path, metadata={"val_acc": 0.71}, description="first")
        a = nbtracker.Artifact("cnn", type="model", description="evaluated",
                               metadata={"test_acc": 0.69})
        a.add_file(tmp_path / "cnn-w.bin", name="w.bin")
        got = run.log_artifact(a, tags=["evaluated"])
    assert got.version == "v0"
    stored = nbtracker.Api().artifact("p/cnn:v0")
    assert stored.metadata == got.metadata == {"val_acc": 0.71, "test_acc": 0.69}
    assert stored.description == got.description == "evaluated"
    assert stored.tags == got.tags == ["evaluated"]


def test_bad_input_to_log_model_and_log_artifact_is_one_clear_error(tmp_path, store):
    write(tmp_path / "m.pt", "w")
    with nbtracker.init(project="p") as run:
        for bad in ("", None, 5):
            with pytest.raises(ArtifactError):
                run.log_model(bad)
        with pytest.raises(ArtifactError):
            run.log_model("m.pt", aliases=5)
        with pytest.raises(ArtifactError):
            run.log_model("m.pt", name="../up")
        art = run.log_artifact("m.pt", name="m", type="model", tags="abc")
    assert art.tags == ["abc"] and nbtracker.Api().artifact("p/m:v0").tags == ["abc"]
    assert not (store / "artifacts" / "collections" / "p" / "run-").exists()


def test_text_that_utf8_cannot_hold_in_metadata_is_a_clear_error(tmp_path, store):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("m", type="model", metadata={"file": "caf\udce9.csv"})
        a.add_file(write(tmp_path / "x", "1"))
        with pytest.raises(ArtifactError, match="metadata"):
            run.log_artifact(a)
        a.metadata = {"file": "café.csv"}
        v = run.log_artifact(a)
        v.description = "bad \udce9"
        with pytest.raises(ArtifactError, match="description"):
            v.save()
    assert nbtracker.Api().artifact("p/m:v0").metadata == {"file": "café.csv"}


def test_names_that_differ_only_in_case_or_are_long_live_apart(tmp_path, store):
    long_name = "д" * 120  # 120 letters, 720 bytes percent-encoded
    with nbtracker.init(project="P") as run:
        _log(run, "Model", "A", tmp_path)
        _log(run, "model", "b", tmp_path)
        _log(run, long_name, "c", tmp_path)
    with nbtracker.init(project="p") as run:
        _log(run, "model", "d", tmp_path)
    folders = [p for p in (store / "artifacts" / "collections").rglob("collection.json")]
    assert len({str(p.relative_to(store)).casefold() for p in folders}) == 4  # apart on any disk
    assert all(len(part.encode()) <= 255 for p in folders for part in p.parts)
    api = nbtracker.Api()
    for ref, data in (("P/Model:v0", "A"), ("P/model:v0", "b"), (f"P/{long_name}:v0", "c"),
                      ("p/model:v0", "d")):
        path = api.artifact(ref).file(root=tmp_path / "o" / str(abs(hash(ref))))
        assert Path(path).read_text() == data


def test_a_folder_that_holds_another_artifact_is_never_written_over(tmp_path, store):
    with nbtracker.init(project="p") as run:
        _log(run, "a", "1", tmp_path)
        coll = store / "artifacts" / "collections" / "p" / "a" / "collection.json"
        doc = json.loads(coll.read_text())
        doc["name"] = "other"  # as a disk that folds names would make it look
        coll.write_text(json.dumps(doc))
        with pytest.raises(ArtifactError, match="holds the artifact"):
            _log(run, "a", "2", tmp_path)
    assert json.loads(coll.read_text())["name"] == "other"


def test_a_draft_keeps_the_files_it_holds_while_their_version_is_deleted(tmp_path, store):
    src = write(tmp_path / "train.csv", "only here")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("ds", type="dataset")
        a.add_file(src)
        run.log_artifact(a, aliases=["keep"])
    src.unlink()  # the data now lives in the artifact only
    api = nbtracker.Api()
    draft = api.artifact("p/ds:v0").new_draft()
    added = nbtracker.Artifact("other", type="dataset")
    added.add_file(write(tmp_path / "x.csv", "only here"))  # the same bytes, added, not logged
    api.artifact("p/ds:v0").delete(delete_aliases=True)
    assert len(objects(store)) == 1  # held by the drafts
    draft.add_file(write(tmp_path / "extra.csv", "more"))
    with nbtracker.init(project="p") as run:
        v = run.log_artifact(draft)
    out = Path(v.download(root=tmp_path / "o"))
    assert (out / "train.csv").read_text() == "only here" and (out / "extra.csv").read_text() == "more"
    del draft, added  # once no draft holds them, the next delete frees what no version names
    import gc

    gc.collect()
    api.artifact("p/ds:v1").delete()
    assert objects(store) == {}


def test_deleting_many_versions_one_by_one_reads_each_manifest_once(tmp_path, store, monkeypatch):
    import nbtracker.artifacts.registry as registry

    with nbtracker.init(project="p") as run:
        for i in range(60):
            _log(run, "ckpt", str(i), tmp_path)
    reads = []
    real = registry.read_json
    monkeypatch.setattr(registry, "read_json",
                        lambda p: reads.append(p.name) or real(p))
    for a in nbtracker.Api().artifacts("model", "p/ckpt")[:-1]:
        a.delete()
    version_reads = [n for n in reads if n.startswith("v")]
    assert len(version_reads) <= 4 * 60, len(version_reads)  # not one pass over all per delete
    assert [a.version for a in nbtracker.Api().artifacts("model", "p/ckpt")] == ["v59"]
    assert len(objects(store)) == 1


def test_a_remote_reference_keeps_what_the_remote_says_of_it_and_a_change_is_caught(
        tmp_path, store):
    fsspec = pytest.importorskip("fsspec")
    mem = fsspec.filesystem("memory")
    mem.pipe("/prefix/data/a.csv", b"1,2")
    mem.pipe("/prefix/data/sub/b.csv", b"3,4")
    mem.pipe("/prefix/data/c.csv", b"5,6")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("lake", type="dataset")
        entries = a.add_reference("memory://prefix/data/", name="data", max_objects=2)
        assert sorted(e.path for e in entries) == ["data/a.csv", "data/c.csv"]  # each object
        v0 = run.log_artifact(a)
        b = nbtracker.Artifact("lake", type="dataset")
        b.add_reference("memory://prefix/data/", name="data", max_objects=2)
        assert run.log_artifact(b).version == "v0"  # nothing changed remotely
        mem.pipe("/prefix/data/a.csv", b"9,9,9")
        c = nbtracker.Artifact("lake", type="dataset")
        c.add_reference("memory://prefix/data/", name="data", max_objects=2)
        assert run.log_artifact(c).version == "v1"  # the remote changed: a new version
    assert (Path(v0.download(root=tmp_path / "new", path_prefix="data/c.csv")) / "data" /
            "c.csv").read_bytes() == b"5,6"
    with pytest.raises(ArtifactCorrupt, match="changed since it was logged"):
        v0.download(root=tmp_path / "old")  # v0 held "1,2": the new bytes are not it
    assert not (tmp_path / "old" / "data" / "a.csv").exists()
    with pytest.raises(ArtifactError, match="no such"):
        nbtracker.Artifact("x", type="dataset").add_reference("memory://prefix/nothing.csv")


def test_skip_cache_reads_a_file_changed_where_its_times_do_not_show_it(tmp_path, store):
    import mmap

    path = write(tmp_path / "data.bin", b"\0" * 65536)
    with open(path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        m[0:5] = b"AAAAA"  # a write through a memory map: times change at its first fault only
        time.sleep(0.3)
        with nbtracker.init(project="p") as run:
            a = nbtracker.Artifact("ds", type="dataset")
            a.add_file(path)
            run.log_artifact(a)
            m[0:5] = b"BBBBB"  # the same dirty page: often no new times at all
            b = nbtracker.Artifact("ds", type="dataset")
            b.add_file(path, skip_cache=True)
            v = run.log_artifact(b)
            c = nbtracker.Artifact("ds2", type="dataset")
            c.add_dir(tmp_path, skip_cache=True)
            v2 = run.log_artifact(c)
    assert v.version == "v1"
    assert Path(v.file(root=tmp_path / "o")).read_bytes()[:5] == b"BBBBB"
    assert (Path(v2.download(root=tmp_path / "o2")) / "data.bin").read_bytes()[:5] == b"BBBBB"


def test_adding_the_same_bytes_again_repairs_a_stored_copy_cut_short(tmp_path, store):
    src = write(tmp_path / "cnn.pt", os.urandom(50_000))
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("cnn", type="model")
        a.add_file(src)
        v0 = run.log_artifact(a)
    obj = store / "artifacts" / "objects" / v0.get_entry("cnn.pt").digest[:2] / \
        v0.get_entry("cnn.pt").digest[2:]
    os.chmod(obj, 0o644)
    obj.write_bytes(b"")  # as a power cut before the bytes reached the disk leaves it
    with pytest.raises(ArtifactCorrupt):
        v0.download(root=tmp_path / "bad")
    for skip in (False, True):  # remembered hash or not, the cut copy is not trusted
        with nbtracker.init(project="p") as run:
            b = nbtracker.Artifact(f"cnn-copy-{skip}", type="model")
            b.add_file(src, skip_cache=skip)
            v = run.log_artifact(b)
        assert Path(v.file(root=tmp_path / f"ok{skip}")).read_bytes() == src.read_bytes()
        assert Path(v0.file(root=tmp_path / f"v0-{skip}")).read_bytes() == src.read_bytes()
        os.chmod(obj, 0o644)
        obj.write_bytes(b"")


def test_wandbs_collection_api_for_cleaning_up_versions(tmp_path, store):
    with nbtracker.init(project="p") as run:
        for i in range(4):
            _log(run, "cnn", str(i), tmp_path, aliases=["best"] if i == 1 else None)
        _log(run, "data", "d", tmp_path, type="dataset")
    api = nbtracker.Api()
    (coll,) = api.artifact_collections("p", type_name="model")
    assert (coll.name, coll.type, coll.project, len(coll)) == ("cnn", "model", "p", 4)
    assert coll.aliases == ["best", "latest"]
    for v in api.artifact_collection("model", "p/cnn").versions():  # wandb's clean-up recipe
        if not ({"best", "latest"} & set(v.aliases)):
            v.delete()
    assert [v.version for v in api.artifact("p/cnn:best").collection.versions()] == ["v1", "v3"]
    assert [t.name for t in api.artifact_types("p")] == ["dataset", "model"]
    assert [c.name for c in api.artifact_type("dataset", "p").collections()] == ["data"]
    with pytest.raises(ArtifactNotFound):
        api.artifact_collection("dataset", "p/cnn")
    api.artifact_collection("model", "p/cnn").delete()
    assert not api.artifact_collection_exists("p/cnn") and api.artifact_collection_exists("p/data")


def test_checkout_removes_what_the_version_lacks_and_only_links_never_their_targets(
        tmp_path, store):
    with nbtracker.init(project="p") as run:
        v = _log(run, "c", "x", tmp_path)
    root = tmp_path / "co"
    write(root / "stale.txt", "old")
    outside = write(tmp_path / "outside" / "keep.txt", "mine")
    (root / "linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    (root / "empty-link").symlink_to(tmp_path / "nowhere")
    assert Path(v.checkout(root)) == root
    assert sorted(p.name for p in root.iterdir()) == ["w.bin"]
    assert outside.read_text() == "mine"


def test_add_dir_leaves_out_a_file_whose_name_is_not_utf8_with_one_line(tmp_path, store, capsys):
    data = tmp_path / "data"
    write(data / "ok.csv", "x\n")
    with open(os.path.join(os.fsencode(data), b"caf\xe9.csv"), "w") as f:
        f.write("y\n")
    with nbtracker.init(project="p") as run:
        m = run.log_model(data, name="m")
    assert [e.path for e in m.files()] == ["ok.csv"]
    err = capsys.readouterr().err
    assert err.count("left out") == 1 and "caf\\xe9.csv" in err


def test_add_file_from_a_path_that_is_not_utf8_under_a_name_that_is(tmp_path, store):
    src = os.path.join(os.fsencode(tmp_path), b"caf\xe9.bin")
    with open(src, "wb") as f:
        f.write(b"\x01" * 1000)
    with nbtracker.init(project="p") as run:
        for _ in range(2):  # the second time as the first: the hash is never remembered
            a = nbtracker.Artifact("m", type="model")
            a.add_file(os.fsdecode(src), name="model.bin")
            v = run.log_artifact(a)
    assert v.version == "v0"
    assert Path(v.download(tmp_path / "out"), "model.bin").read_bytes() == b"\x01" * 1000


def test_objects_are_stored_whole_without_sendfile(tmp_path, store, monkeypatch):
    """Where the kernel cannot copy file to file (not Linux, or a file system that refuses),
    files are read, hashed and written instead: the same objects, the same download."""
    from nbtracker.artifacts import objects as objmod

    d = dataset(tmp_path, n=3, size=(1 << 20) + 7)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("ds", type="dataset")
        a.add_dir(d)
        first = run.log_artifact(a)
    by_sendfile = objects(store)

    real, calls = objmod.os.sendfile, []

    def refuse(*args):  # every other call copies: some files are refused part way through
        calls.append(1)
        if len(calls) % 2:
            return real(*args)
        raise OSError(objmod.errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(objmod.os, "sendfile", refuse)
    for f in (store / "artifacts" / "objects").rglob("*"):
        if f.is_file() and len(f.parent.name) == 2:
            f.chmod(0o644)
            f.unlink()
    with nbtracker.init(project="p") as run:
        b = nbtracker.Artifact("ds", type="dataset")
        b.add_dir(d, skip_cache=True)
        second = run.log_artifact(b)
    assert second.version == first.version == "v0" and len(calls) >= 3
    assert objects(store) == by_sendfile and len(by_sendfile) == 3
    out = Path(second.download(tmp_path / "out"))
    for f in sorted(d.rglob("*.bin")):
        assert (out / f.relative_to(d)).read_bytes() == f.read_bytes()


def test_objects_are_on_disk_when_the_run_finishes(tmp_path, store, monkeypatch):
    """Each new object and the folder naming it are fsynced (in the background, while the run
    goes on) by the time finish() returns, as the run's records are."""
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    d = dataset(tmp_path, n=4)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("ds", type="dataset")
        a.add_dir(d)
        run.log_artifact(a)
        b = nbtracker.Artifact("ds2", type="dataset")
        b.add_dir(d)  # the same bytes: nothing new to write
        run.log_artifact(b)
    stored = [p for p in (store / "artifacts" / "objects").rglob("*")
              if p.is_file() and len(p.parent.name) == 2]
    assert len(stored) == 4
    for p in stored:
        assert str(p) in synced and str(p.parent) in synced
        assert synced.count(str(p)) == 1


def test_a_child_forked_while_objects_are_being_synced_logs_and_finishes(tmp_path, store):
    """fork() while the parent's objects are being synced: each child gets a sync lock and
    thread of its own (os.register_at_fork), logs an artifact and finishes."""
    d = dataset(tmp_path, n=40, size=64 * 1024)
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("big", type="dataset")
        a.add_dir(d)
        run.log_artifact(a)  # 40 objects to sync: the thread is busy for a while
        pids = []
        for i in range(8):
            pid = os.fork()
            if pid == 0:  # the child: log, finish, exit with what happened
                code = 1
                try:
                    with nbtracker.init(project="p", name=f"child-{i}") as child:
                        c = nbtracker.Artifact(f"c{i}", type="dataset")
                        c.add_file(str(write(tmp_path / f"c{i}.txt", f"child {i}")))
                        child.log_artifact(c)
                    code = 0
                finally:
                    os._exit(code)
            pids.append(pid)
        deadline = time.monotonic() + 60
        codes = {}
        while len(codes) < len(pids) and time.monotonic() < deadline:
            for pid in pids:
                if pid not in codes:
                    done, status = os.waitpid(pid, os.WNOHANG)
                    if done:
                        codes[pid] = os.waitstatus_to_exitcode(status)
            time.sleep(0.05)
        for pid in set(pids) - set(codes):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
    assert sorted(codes.values()) == [0] * 8, codes
    api = nbtracker.Api()
    for i in range(8):
        got = Path(api.artifact(f"p/c{i}:v0").download(tmp_path / f"out{i}"), f"c{i}.txt")
        assert got.read_text() == f"child {i}"


def test_add_dir_and_add_file_read_the_folder_a_link_and_dotdot_name(tmp_path, store, monkeypatch):
    """`link/..` is the parent of the link's target, as the kernel reads it (not the working
    folder, as text would make it)."""
    real = tmp_path / "runs" / "2024"
    write(real / "weights.bin", "in 2024")
    write(tmp_path / "runs" / "config.json", "the runs' config")
    write(tmp_path / "work" / "config.json", "the working folder's")
    write(tmp_path / "work" / "notes.txt", "not data")
    (tmp_path / "work" / "latest").symlink_to(real)
    monkeypatch.chdir(tmp_path / "work")
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("d", type="dataset")
        a.add_dir("latest/..")
        a.add_file("latest/../config.json", name="top.json")
        v = run.log_artifact(a)
    out = Path(v.download(tmp_path / "out"))
    assert sorted(e.path for e in v.files()) == ["2024/weights.bin", "config.json", "top.json"]
    assert (out / "top.json").read_text() == "the runs' config"
    assert (out / "2024" / "weights.bin").read_text() == "in 2024"


def test_finish_waits_for_its_own_objects_not_for_other_threads_still_logging(
        tmp_path, store, monkeypatch, capsys):
    """While another thread keeps storing new objects (a slow disk: the sync never catches
    up), finish() waits for the objects put in place before it, not for an empty queue."""
    import threading

    from nbtracker.artifacts import objects as objmod

    real = objmod._fsync_all
    stop = threading.Event()

    def slow(paths):  # 20 ms an object while the other thread logs
        for _ in paths:
            if stop.is_set():
                break
            time.sleep(0.02)
        real(paths)

    monkeypatch.setattr(objmod, "_fsync_all", slow)
    other = nbtracker.init(project="p", name="other", reinit="create_new")

    def keep_logging():
        i = 0
        deadline = time.monotonic() + 40
        while not stop.is_set() and time.monotonic() < deadline:
            a = nbtracker.Artifact(f"o{i}", type="dataset")
            with a.new_file("x.txt") as f:
                f.write(f"object {i}")
            other.log_artifact(a)
            i += 1
            time.sleep(0.01)  # an object each 10 ms or so: more than the sync can take

    writer = threading.Thread(target=keep_logging, daemon=True)
    run = nbtracker.init(project="p", name="mine", reinit="create_new")
    a = nbtracker.Artifact("mine", type="dataset")
    a.add_file(str(write(tmp_path / "m.txt", "mine")))
    run.log_artifact(a)
    writer.start()
    time.sleep(0.5)
    run.finish()
    still_logging = writer.is_alive()
    stop.set()
    writer.join()
    other.finish()
    assert still_logging  # finish() returned while the other thread went on
    assert "still being written" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["..", "a/..", "a/../b"])
def test_a_manifest_altered_to_hold_dotdot_is_refused_before_anything_is_written(
        tmp_path, store, bad):
    with nbtracker.init(project="p") as run:
        a = nbtracker.Artifact("m", type="dataset")
        a.add_file(str(write(tmp_path / "x.txt", "x")))
        run.log_artifact(a)
    (vfile,) = (store / "artifacts" / "collections").rglob("v0.json")
    doc = json.loads(vfile.read_text())
    key = "entries" if "entries" in doc else "manifest"
    doc[key] = {bad: next(iter(doc[key].values()))}
    vfile.chmod(0o644)
    vfile.write_text(json.dumps(doc))
    out = tmp_path / "out" / "inner"
    with pytest.raises(ArtifactError, match="outside"):
        nbtracker.Api().artifact("p/m:v0").download(out)
    assert list(out.iterdir()) == []
