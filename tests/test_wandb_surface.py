"""The rest of the wandb surface that real notebooks and scripts use, under
`import nbtracker as wandb`: run URLs and names, `log_code`, module helpers (`termlog`,
`Settings`, `setup`, `util`...), and the query API's wandb forms (`url`, `files()`, summary
updates, `history(pandas=False)`, `runs()` slicing). Each through the public API, with real runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

import nbtracker as wandb


def _rows(run) -> list[dict]:
    return wandb.Api().run(run.path).history(pandas=False)


# -- log() -------------------------------------------------------------------------------------

def test_log_without_data_commits_the_row_accumulated_with_commit_false():
    # wandb's own example (api-examples/metrics-at-different-steps): log(..., commit=False)
    # twice, then wandb.log() to commit the step
    run = wandb.init(project="surface")
    for i in range(3):
        wandb.log({"loss": 1.0 / (i + 1)}, commit=False)
        if i % 2 == 0:
            wandb.log({"val": i}, commit=False)
        wandb.log()
    assert run.step == 3
    wandb.log({"after": 1})
    wandb.log({}, commit=True)  # nothing pending at step 4: the step stays
    run.log({})
    assert run.step == 4
    run.finish()
    assert _rows(run) == [
        {"_step": 0, "loss": 1.0, "val": 0, **_times(run, 0)},
        {"_step": 1, "loss": 0.5, **_times(run, 1)},
        {"_step": 2, "loss": 1 / 3, "val": 2, **_times(run, 2)},
        {"_step": 3, "after": 1, **_times(run, 3)},
    ]


def _times(run, step: int) -> dict:
    row = next(r for r in wandb.Api().run(run.path).scan_history() if r["_step"] == step)
    return {"_runtime": row["_runtime"], "_timestamp": row["_timestamp"]}


# -- Api: history(pandas=False) ----------------------------------------------------------------

def test_history_as_dicts_keeps_values_as_logged_and_leaves_missing_keys_out():
    run = wandb.init(project="surface")
    wandb.log({"i": 0, "x": 0.5})
    wandb.log({"i": 1})  # no x in this row
    wandb.log({"i": 2, "x": float("nan"), "s": "text"})
    run.finish()
    rows = wandb.Api().run(run.path).history(pandas=False)
    assert [r["_step"] for r in rows] == [0, 1, 2]
    assert [type(r["i"]) for r in rows] == [int, int, int]  # ints stay ints
    assert "x" not in rows[1] and "s" not in rows[0]  # missing is missing, not NaN
    assert rows[0]["x"] == 0.5 and math.isnan(rows[2]["x"]) and rows[2]["s"] == "text"
    assert all({"_runtime", "_timestamp"} <= r.keys() for r in rows)


def test_history_as_dicts_samples_keys_and_x_axis_as_the_frame_does():
    run = wandb.init(project="surface")
    for i in range(40):
        row = {"loss": 40 - i, "epoch": (39 - i) // 10}
        if i % 4 == 0:
            row["val"] = i
        wandb.log(row)
    run.finish()
    r = wandb.Api().run(run.path)
    for kw in ({"samples": 7}, {"samples": 5, "keys": ["val"]}, {"keys": ["loss", "val"]},
               {"x_axis": "epoch"}, {}):
        df = r.history(**kw)
        rows = r.history(pandas=False, **kw)
        assert [row["_step"] for row in rows] == df["_step"].tolist(), kw
        for key in ("loss", "val"):
            if key in df.columns:
                assert [row.get(key) for row in rows] == [
                    None if isinstance(v, float) and math.isnan(v) else v for v in df[key]], kw
    assert r.history(samples=500, keys=["val"], pandas=False)[1] == {
        "_step": 4, "val": 4, **_times(run, 4)}


# -- Api: runs() ------------------------------------------------------------------------------

def test_runs_support_len_index_slicing_and_per_page():
    made = []
    for i in range(5):
        with wandb.init(project="listing", name=f"r{i}", config={"i": i}, reinit=True) as run:
            run.log({"acc": i / 10})
        made.append(run.id)
    runs = wandb.Api().runs("listing", per_page=2, order="+config.i")
    assert len(runs) == 5
    assert runs[1].id == made[1] and runs[-1].id == made[4]
    first = runs[:3]
    assert [r.id for r in first] == made[:3]
    assert list(first.to_pandas()["config.i"]) == [0, 1, 2]  # a slice is still a Runs
    assert [r.name for r in runs] == [f"r{i}" for i in range(5)]
    assert [r.id for r in wandb.Api().runs("listing", filters={"config.i": {"$gte": 3}},
                                          order="-config.i")] == [made[4], made[3]]


# -- Api: summary updates ----------------------------------------------------------------------

def test_api_summary_update_with_values_is_saved_at_once_as_wandb_does():
    with wandb.init(project="surface") as run:
        run.log({"acc": 0.5})
    r = wandb.Api().run(run.path)
    r.summary.update({"best": 0.9, "note": "kept"})  # wandb writes this at once
    again = wandb.Api().run(run.path)
    assert again.summary["best"] == 0.9 and again.summary["note"] == "kept"
    assert again.summary["acc"] == 0.5

    r = wandb.Api().run(run.path)
    r.summary["best"] = 0.95
    r.summary.update()  # without values: writes what was set
    assert wandb.Api().run(run.path).summary["best"] == 0.95

    r = wandb.Api().run(run.path)
    r.summary["worst"] = 0.1
    r.update()  # run.update() writes the summary too
    assert wandb.Api().run(run.path).summary["worst"] == 0.1


# -- the run's URL and names -------------------------------------------------------------------

def test_run_url_is_a_file_url_of_the_run_folder_and_the_api_says_the_same(store):
    run = wandb.init(project="surface", name="first")
    folder = Path(run.storage_dir)
    assert folder.is_relative_to(store)
    assert run.url == folder.as_uri() == run.get_url() and run.url.startswith("file:///")
    assert Path(url2pathname(urlsplit(run.url).path)) == folder  # the URL leads to the folder
    assert run.project_url == run.get_project_url() == folder.parent.as_uri()
    assert run.project_name() == "surface"
    assert run.get_sweep_url() is None and run.sweep_id is None and run.sweep_url is None
    run.name, run.notes, run.group, run.tags = "renamed", "a note", "g", ("t1",)
    assert wandb.run is run and wandb.run.url == run.url
    run.finish()
    r = wandb.Api().run(run.path)
    assert r.url == run.url
    assert (r.name, r.notes, r.group, r.tags) == ("renamed", "a note", "g", ["t1"])


def test_a_disabled_run_has_no_url():
    run = wandb.init(mode="disabled")
    assert run.url is None and run.get_url() is None and run.project_name() == "uncategorized"
    assert run.log_code() is None
    run.mark_preempting()


# -- log_code ----------------------------------------------------------------------------------

def _tree(base: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


def test_log_code_keeps_the_source_files_as_wandb_picks_them(tmp_path):
    src = tmp_path / "proj"
    _tree(src, {"train.py": "print('train')\n", "pkg/model.py": "W = 1\n",
                "requirements.txt": "numpy\n", "Dockerfile": "FROM python\n",
                "notes.md": "not code\n", "data.csv": "1,2\n",
                "wandb/run-1/files/x.py": "wandb's own folder\n",
                ".git/hooks/pre-commit.py": "a repository's insides\n",
                "pkg/__pycache__/model.cpython-311.py": "compiled\n",
                ".venv/lib/site.py": "a virtualenv\n", ".venv/pyvenv.cfg": "home = /usr\n"})
    run = wandb.init(project="surface", dir=src)  # the run store is under src/ too
    saved = run.log_code(str(src))
    assert sorted(saved) == ["code/Dockerfile", "code/pkg/model.py", "code/requirements.txt",
                             "code/train.py"]
    assert run.log_code(src, name="again", include_fn=lambda p: p.endswith(".md")) == [
        "code/again/notes.md"]
    # include_fn and exclude_fn take (path) or (path, root), as wandb calls them; an
    # exclude_fn given replaces wandb's default (wandb/ is then walked, as in wandb)
    assert run.log_code(src, name="two", include_fn=lambda p, root: p.endswith((".py", ".csv")),
                        exclude_fn=lambda p, root: os.path.relpath(p, root).startswith("pkg")) \
        == ["code/two/data.csv", "code/two/train.py", "code/two/wandb/run-1/files/x.py"]
    run.finish()

    r = wandb.Api(dir=src).run(run.path)
    files = {f.name: f for f in r.files()}
    assert {"code/train.py", "code/pkg/model.py", "code/again/notes.md", "code/two/data.csv"} \
        <= set(files)
    assert files["code/pkg/model.py"].path.read_text(encoding="utf-8") == "W = 1\n"
    assert not any(".git" in n or "site.py" in n or "cpython" in n for n in files)
    assert [n for n in files if "wandb/" in n] == ["code/two/wandb/run-1/files/x.py"]


def test_log_code_with_nothing_to_keep_warns_once_and_returns_none(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    run = wandb.init(project="surface")
    assert run.log_code(tmp_path / "empty") is None
    assert run.log_code(tmp_path / "empty") is None
    assert run.log_code(tmp_path / "missing") is None
    err = capsys.readouterr().err
    assert err.count("no file under") == 1 and "is not a folder" in err
    run.finish()
    assert run.log_code(tmp_path) is None  # a finished run: one line, nothing kept


# -- Api: files() ------------------------------------------------------------------------------

def test_api_files_have_name_size_url_and_download(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"weights")
    (tmp_path / "cfg.yaml").write_text("lr: 1\n")
    run = wandb.init(project="surface")
    wandb.save("model.pt")
    wandb.save("cfg.yaml")
    run.finish()
    r = wandb.Api().run(run.path)
    files = {f.name: f for f in r.files()}
    assert set(files) == {"model.pt", "cfg.yaml"}
    f = files["model.pt"]
    assert f.size == 7 and f.url == Path(run.storage_dir, "files", "model.pt").as_uri()
    out = tmp_path / "out"
    assert f.download(root=str(out)).read_bytes() == b"weights"
    with pytest.raises(FileExistsError):
        f.download(root=str(out))
    (out / "model.pt").write_bytes(b"changed")
    assert f.download(root=str(out), exist_ok=True).read_bytes() == b"changed"
    assert f.download(root=str(out), replace=True).read_bytes() == b"weights"
    assert [x.name for x in r.files(names=["cfg.yaml"])] == ["cfg.yaml"]
    assert [x.name for x in r.files(pattern="%.y_ml")] == ["cfg.yaml"]
    assert [x.name for x in r.files(pattern="model%", per_page=10)] == ["model.pt"]
    assert r.files(pattern="%.txt") == []


# -- URLs of a run on a team server ------------------------------------------------------------

@pytest.mark.slow
def test_a_run_uploading_to_a_server_has_the_servers_url(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    requests = pytest.importorskip("requests")
    from serverproc import ServerProcess

    srv = ServerProcess(tmp_path / "srv")
    try:
        monkeypatch.setenv("NBTRACKER_BASE_URL", srv.url)
        monkeypatch.setenv("NBTRACKER_API_KEY", srv.admin_key)
        (tmp_path / "model.pt").write_bytes(b"weights")
        run = wandb.init(project="team space")  # a name to be quoted in a URL
        assert run.mode == "online"
        base = f"{srv.url}/api/v1/projects/team%20space/runs"
        assert run.url == run.get_url() == f"{base}/{run.id}"
        assert run.project_url == run.get_project_url() == base
        wandb.log({"acc": 0.5})
        wandb.save("model.pt")
        run.finish(timeout=20)
        auth = {"Authorization": f"Bearer {srv.admin_key}"}
        got = requests.get(run.url, headers=auth, timeout=10)  # the URL answers for the run
        assert got.status_code == 200 and got.json()["id"] == run.id
        listed = requests.get(run.project_url, headers=auth, timeout=10).json()
        assert [x["id"] for x in listed["runs"]] == [run.id]

        r = wandb.Api().run(run.path)
        assert r._remote and r.url == run.url
        (f,) = r.files()
        assert f.url == f"{run.url}/files/model.pt"
        assert requests.get(f.url, headers=auth, timeout=10).content == b"weights"
    finally:
        srv.stop()
