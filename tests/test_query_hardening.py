"""The query API, names and settings under bad or unusual input: filters that cannot be matched,
NaN and infinity in config, long non-ASCII project names, file records that point outside the
run, wandb's environment variables, and AlertLevel."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
from helpers import run_cli

import nbtracker
from nbtracker.store.recordlog import encode, read_records

# -- filters -----------------------------------------------------------------------------


@pytest.fixture
def named():
    runs = {}
    for name, cfg in (("Baseline-1", {"x": math.nan, "y": math.inf, "z": -math.inf}),
                      ("baseline-2", {"x": 0.5, "y": 10.0, "z": 1.0}),
                      ("tuned", {"x": 1.0, "y": -math.inf, "z": 2.0})):
        run = nbtracker.init(project="q", name=name, config=cfg, tags=["cnn", name.lower()])
        nbtracker.log({"acc": cfg["x"]})
        run.finish()
        runs[name] = run.id
    return runs


def names(runs) -> list[str]:
    return sorted(r.name for r in runs)


@pytest.mark.parametrize("filters", [
    {"name": {"$regex": "("}},
    {"name": {"$regex": "[a-"}},
    {"name": {"$regex": 5}},
    {"name": {"$in": "Baseline-1"}},
    {"name": {"$nin": "tuned"}},
    {"name": {"$in": None}},
    {"name": {"$like": "base%"}},
    {"$where": "this.name"},
    {"name": {"$options": "i"}},
    {"name": {"$regex": "^b", "$options": "iq"}},
    {"$and": {"name": "tuned"}},
    {"$or": []},
    {"$or": ["tuned"]},
    {"name": {"$not": {"$regex": ")"}}},
])
def test_bad_filters_raise_usage_error(named, filters):
    with pytest.raises(nbtracker.UsageError) as e:
        nbtracker.Api().runs("q", filters=filters)
    assert "\n" not in str(e.value)


def test_bad_filter_is_reported_even_without_runs():
    with pytest.raises(nbtracker.UsageError, match="regex"):
        nbtracker.Api().runs("nothing-here", filters={"name": {"$regex": "("}})


def test_regex_options_as_mongodb(named):
    api = nbtracker.Api()
    assert names(api.runs("q", filters={"name": {"$regex": "^base"}})) == ["baseline-2"]
    assert names(api.runs("q", filters={"name": {"$regex": "^base", "$options": "i"}})) == [
        "Baseline-1", "baseline-2"]
    assert names(api.runs("q", filters={"name": {"$not": {"$regex": "^BASE", "$options": "i"}}})) \
        == ["tuned"]
    # tags are a list: the regex matches when one tag does
    assert names(api.runs("q", filters={"tags": {"$regex": "^TUN", "$options": "i"}})) == ["tuned"]


def nonfinite_checks(api) -> None:
    def pick(f):
        return names(api.runs("q", filters=f))

    assert pick({"config.x": math.nan}) == ["Baseline-1"]
    assert pick({"config.x": {"$eq": math.nan}}) == ["Baseline-1"]
    assert pick({"config.x": {"$ne": math.nan}}) == ["baseline-2", "tuned"]
    assert pick({"config.x": {"$in": [math.nan, 1.0]}}) == ["Baseline-1", "tuned"]
    assert pick({"config.x": {"$nin": [math.nan]}}) == ["baseline-2", "tuned"]
    assert pick({"config.y": math.inf}) == ["Baseline-1"]
    assert pick({"config.y": {"$gt": 1e308}}) == ["Baseline-1"]
    assert pick({"config.y": {"$lt": math.inf}}) == ["baseline-2", "tuned"]
    assert pick({"config.y": {"$gte": -math.inf}}) == ["Baseline-1", "baseline-2", "tuned"]
    assert pick({"config.y": {"$lte": -1e308}}) == ["tuned"]
    assert pick({"config.z": {"$lt": 0}}) == ["Baseline-1"]
    # the values themselves read back as written
    cfg = {r.name: r.config for r in api.runs("q")}
    assert math.isnan(cfg["Baseline-1"]["x"]) and cfg["Baseline-1"]["y"] == math.inf
    assert cfg["Baseline-1"]["z"] == -math.inf and cfg["tuned"]["y"] == -math.inf


def test_nonfinite_config_filters(named, store):
    nonfinite_checks(nbtracker.Api())
    run_cli("reindex")
    nonfinite_checks(nbtracker.Api())
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store / 'index.sqlite'}{suffix}").unlink(missing_ok=True)
    nonfinite_checks(nbtracker.Api())


@pytest.fixture
def shell():
    from IPython.testing.globalipapp import get_ipython

    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    return ip


def test_magic_runs_bad_filter_is_one_line(named, shell, capsys):
    for line in ("runs q --filter 'name =~ ('", """runs q --filter '{"name": {"$in": "x"}}'""",
                 """runs q --filter '{"name": {"$regex": "a", "$options": 7}}'"""):
        shell.run_line_magic("tracker", line)
        err = capsys.readouterr().err.strip()
        assert err.startswith("nbtracker:") and "Traceback" not in err, line
        assert len(err.splitlines()) == 1, err


# -- long project names ------------------------------------------------------------------

LONG_NAMES = ["实验" * 64, "한국어프로젝트" * 18 + "끝끝", "é" * 128, "x" * 120 + "中文" * 4]


@pytest.mark.parametrize("project", LONG_NAMES)
def test_long_non_ascii_project_names(project, store):
    assert len(project) == 128 or len(project.encode()) > 255
    run = nbtracker.init(project=project, name="long", config={"lr": 0.1})
    nbtracker.log({"loss": 0.5})
    run.finish()
    runs = nbtracker.Api().runs(project)
    assert [(r.project, r.name, r.id) for r in runs] == [(project, "long", run.id)]
    assert runs[0].history()["loss"].tolist() == [0.5]
    assert nbtracker.Api().run(f"{project}/{run.id}").config == {"lr": 0.1}
    for part in Path(runs[0].storage_dir).relative_to(store).parts:
        assert len(os.fsencode(part)) <= 255
    # the real name is in the record log, and survives a rebuilt index
    first = next(read_records(Path(runs[0].storage_dir) / "records.jsonl"))
    assert first["project"] == project
    run_cli("reindex")
    assert [r.id for r in nbtracker.Api().runs(project)] == [run.id]
    # a name that shares the long prefix is a different project
    other = project[:-1] + ("z" if project[-1] != "z" else "y")
    assert nbtracker.Api().runs(other) == []


def test_long_project_name_resumes(store):
    project = "모델" * 64
    run = nbtracker.init(project=project, id="long-1")
    nbtracker.log({"a": 1})
    run.finish()
    again = nbtracker.init(project=project, id="long-1", resume="must")
    nbtracker.log({"a": 2})
    again.finish()
    assert nbtracker.Api().run(f"{project}/long-1").history()["a"].tolist() == [1, 2]


def test_magic_init_with_long_project_name(shell, capsys):
    project = "中文项目" * 32
    shell.run_line_magic("tracker", f"init --project {project} --name m --no-panel")
    shell.run_line_magic("tracker", "finish")
    err = capsys.readouterr().err
    assert "Traceback" not in err and "File name too long" not in err
    assert [r.name for r in nbtracker.Api().runs(project)] == ["m"]


# -- files from elsewhere ----------------------------------------------------------------

def add_file_record(run_dir: Path, path: str, size: int = 4) -> None:
    log = run_dir / "records.jsonl"
    last = list(read_records(log))[-1]
    rec = {"t": "file", "seq": last["seq"] + 1, "ts": last["ts"], "path": path, "size": size}
    with open(log, "ab") as f:
        f.write(encode(rec))


def test_file_download_stays_inside_root(tmp_path):
    run = nbtracker.init(project="files", name="f")
    Path(run.dir, "ok.txt").write_text("fine")
    Path(run.dir, "sub").mkdir()
    Path(run.dir, "sub", "deep.txt").write_text("deep")
    run.finish()
    run_dir = Path(run.dir).parent
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (run_dir / "files" / "link.txt").symlink_to(secret)
    (run_dir / "files" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    escapes = ["../../../../evil.txt", "../records.jsonl", str(tmp_path / "abs.txt"),
               "link.txt", "linkdir/secret.txt", "sub/../../records.jsonl", "", "."]
    for p in escapes:
        add_file_record(run_dir, p)

    r = nbtracker.Api().run(f"files/{run.id}")
    files = {f.name: f for f in r.files()}  # listing never fails
    assert {"ok.txt", "sub/deep.txt", *escapes} <= set(files)
    dest = tmp_path / "dest" / "inner"
    dest.mkdir(parents=True)
    before = sorted(p for p in tmp_path.rglob("*"))
    for p in escapes:
        with pytest.raises((nbtracker.UsageError, ValueError)):
            files[p].download(str(dest))
    assert sorted(p for p in tmp_path.rglob("*")) == before
    assert not (tmp_path / "abs.txt").exists() and not Path("/evil.txt").exists()
    assert secret.read_text() == "secret"

    assert files["ok.txt"].download(str(dest)).read_text() == "fine"
    assert files["sub/deep.txt"].download(str(dest)).read_text() == "deep"
    assert (dest / "sub" / "deep.txt").read_text() == "deep"


def test_file_download_does_not_follow_a_symlink_in_root(tmp_path):
    run = nbtracker.init(project="files", name="g")
    Path(run.dir, "sub").mkdir()
    Path(run.dir, "sub", "a.txt").write_text("A")
    run.finish()
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub").symlink_to(outside, target_is_directory=True)
    f = nbtracker.Api().run(f"files/{run.id}").file("sub/a.txt")
    with pytest.raises(nbtracker.UsageError):
        f.download(str(dest))
    assert list(outside.iterdir()) == []


# -- environment variables ---------------------------------------------------------------

def test_wandb_environment_variables(monkeypatch):
    monkeypatch.setenv("WANDB_RUN_ID", "envrun1")
    monkeypatch.setenv("WANDB_NAME", "from-env")
    monkeypatch.setenv("WANDB_NOTES", "env notes")
    monkeypatch.setenv("WANDB_TAGS", "a, b,,c")
    monkeypatch.setenv("WANDB_RUN_GROUP", "grp")
    monkeypatch.setenv("WANDB_JOB_TYPE", "train")
    run = nbtracker.init(project="env")
    nbtracker.log({"x": 1})
    run.finish()
    r = nbtracker.Api().run("env/envrun1")
    assert (r.id, r.name, r.notes, r.tags, r.group, r.job_type) == (
        "envrun1", "from-env", "env notes", ["a", "b", "c"], "grp", "train")

    monkeypatch.setenv("WANDB_RESUME", "must")
    again = nbtracker.init(project="env")
    assert again.id == "envrun1"
    nbtracker.log({"x": 2})
    again.finish()
    assert nbtracker.Api().run("env/envrun1").history()["x"].tolist() == [1, 2]

    monkeypatch.setenv("WANDB_RESUME", "never")
    with pytest.raises(nbtracker.UsageError, match="never"):
        nbtracker.init(project="env")
    monkeypatch.setenv("WANDB_RESUME", "sometimes")
    with pytest.raises(nbtracker.UsageError, match="WANDB_RESUME"):
        nbtracker.init(project="env")
    # queries do not start runs: a bad resume setting does not stop them
    assert [r.id for r in nbtracker.Api().runs("env")] == ["envrun1"]
    assert "envrun1" in run_cli("runs", "env").stdout


def test_nbtracker_names_win_over_wandb_and_keywords_win_over_both(monkeypatch):
    for var, w, n in (("RUN_ID", "wid", "nid"), ("NAME", "wname", "nname"),
                      ("NOTES", "wnotes", "nnotes"), ("TAGS", "w1,w2", "n1,n2"),
                      ("RUN_GROUP", "wgroup", "ngroup"), ("JOB_TYPE", "wjob", "njob")):
        monkeypatch.setenv(f"WANDB_{var}", w)
        monkeypatch.setenv(f"NBTRACKER_{var}", n)
    monkeypatch.setenv("WANDB_RESUME", "never")
    monkeypatch.setenv("NBTRACKER_RESUME", "allow")
    run = nbtracker.init(project="env")
    run.finish()
    r = nbtracker.Api().run("env/nid")
    assert (r.name, r.notes, r.tags, r.group, r.job_type) == (
        "nname", "nnotes", ["n1", "n2"], "ngroup", "njob")
    again = nbtracker.init(project="env")  # NBTRACKER_RESUME=allow wins over never
    assert again.id == "nid"
    again.finish()

    kw = nbtracker.init(project="env", id="kwid", name="kname", notes="knotes", tags=["k"],
                        group="kgroup", job_type="kjob", resume=False)
    kw.finish()
    r = nbtracker.Api().run("env/kwid")
    assert (r.name, r.notes, r.tags, r.group, r.job_type) == (
        "kname", "knotes", ["k"], "kgroup", "kjob")


def test_wandb_dir_is_where_runs_go_not_the_store_root(monkeypatch, tmp_path, store):
    work = tmp_path / "wandb-dir"
    monkeypatch.setenv("WANDB_DIR", str(work))
    run = nbtracker.init(project="wd", name="there")
    nbtracker.log({"x": 1})
    run.finish()
    assert Path(run.dir).resolve().is_relative_to((work / "nbtracker").resolve())
    assert [r.name for r in nbtracker.Api().runs("wd")] == ["there"]
    assert (store / "index.sqlite").exists()  # the store root stays NBTRACKER_DIR
    assert json.loads(run_cli("runs", "wd", "--format", "json").stdout)["name"] == "there"

    # without NBTRACKER_DIR the store root is the default, not WANDB_DIR
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NBTRACKER_DIR")
    run = nbtracker.init(project="wd", name="home")
    run.finish()
    assert Path(run.dir).resolve().is_relative_to(work.resolve())
    assert nbtracker.Api().root == (home / ".nbtracker").resolve()
    # this root now knows $WANDB_DIR/nbtracker too, and finds both runs there
    assert sorted(r.name for r in nbtracker.Api().runs("wd")) == ["home", "there"]
    assert not (work / "index.sqlite").exists() and not (work / "runs").exists()


# -- alerts ------------------------------------------------------------------------------

def test_alert_level_enum():
    from nbtracker import AlertLevel

    assert [lv.value for lv in AlertLevel] == ["INFO", "WARN", "ERROR"]
    run = nbtracker.init(project="al")
    nbtracker.alert("t1", "x", level=AlertLevel.WARN)
    nbtracker.alert("t2", "y", level=AlertLevel.ERROR)
    run.alert("t3", "z")
    run.finish()
    alerts = nbtracker.Api().run(f"al/{run.id}").alerts
    assert [(a["title"], a["level"]) for a in alerts] == [("t1", "WARN"), ("t2", "ERROR"),
                                                          ("t3", "INFO")]


def test_magic_init_into_an_unwritable_place_is_one_line(shell, capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    shell.run_line_magic("tracker", f"init --project p --dir {blocker / 'sub'} --no-panel")
    err = capsys.readouterr().err.strip()
    assert err.startswith("nbtracker:") and "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert nbtracker.run is None


def test_file_path_never_points_outside_the_run(tmp_path):
    run = nbtracker.init(project="files", name="h")
    run.finish()
    run_dir = Path(run.dir).parent
    add_file_record(run_dir, "/etc/passwd")
    add_file_record(run_dir, "../records.jsonl")
    files = {f.name: f for f in nbtracker.Api().run(f"files/{run.id}").files()}
    for name in ("/etc/passwd", "../records.jsonl"):
        with pytest.raises(nbtracker.UsageError):
            files[name].path.read_bytes()
    assert "/etc/passwd" in run_cli("show", run.id).stdout  # listed, never opened
