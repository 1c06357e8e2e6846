"""`Api()` against a team server reads what the local store reads: the same runs for the same
filters and order, the same history value for value, the same files and media; edits made
through it show on the server; `compare` takes the server's downsampled series."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

import nbtracker
from nbtracker.store import layout
from nbtracker.store.recordlog import loads

pytest.importorskip("fastapi")
from serverproc import ServerProcess  # noqa: E402

PROJECT = "remote"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("server"))
    yield srv
    srv.stop()


def _upload(run_dir, url: str, key: str, project: str, run_id: str) -> None:
    """Send a run's log and its saved files the way the uploader does, without it."""
    h = {"Authorization": f"Bearer {key}"}
    base = f"{url}/api/v1/projects/{project}/runs/{run_id}"
    assert requests.put(base, json={}, headers=h, timeout=10).status_code == 200
    for f in (run_dir / layout.FILES_DIR).rglob("*"), (run_dir / layout.MEDIA_DIR).rglob("*"):
        for p in f:
            if p.is_file():
                data = p.read_bytes()
                r = requests.put(f"{base}/blobs/{hashlib.sha256(data).hexdigest()}", data=data,
                                 headers={**h, "Content-Type": "application/octet-stream"},
                                 timeout=10)
                assert r.status_code == 200, r.text
    lines = (run_dir / layout.LOG_NAME).read_bytes().splitlines()
    for i in range(0, len(lines), 500):
        part = lines[i:i + 500]
        first = int(loads(part[0])["seq"])
        body = b'{"first_seq":%d,"records":[' % first + b",".join(part) + b"]}"
        r = requests.post(f"{base}/records", data=body,
                          headers={**h, "Content-Type": "application/json"}, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def uploaded(server, tmp_path_factory):
    """Three finished runs logged offline in their own store, then uploaded as they are."""
    root = tmp_path_factory.mktemp("local")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NBTRACKER_DIR", str(root))
        ids = []
        for name, lr, tags, losses in [("a", 0.01, ["cnn"], [0.9, 0.5, 0.2]),
                                       ("b", 0.1, ["cnn", "big"], [0.8, math.nan, 0.4]),
                                       ("c", 0.3, ["mlp"], [0.7, 0.3, math.inf])]:
            with nbtracker.init(project=PROJECT, name=name, config={"lr": lr, "deep": {"n": 3}},
                                tags=tags, mode="offline", reinit=True) as run:
                for i, loss in enumerate(losses):
                    run.log({"loss": loss, "big": 2**70 + i, "text": f"step {i}", "none": None})
                run.log({"loss": 0.05}, step=1)  # a lower step joins its row
                run.summary["best"] = 0.1
                (Path(run.dir) / "model.txt").write_text(f"weights of {name}")
                run.save("model.txt")
                run.log({"img": nbtracker.Image(np.full((4, 4), 7 * len(name), np.uint8))})
            ids.append(run.id)
            _upload(layout.run_dir(root, PROJECT, run.id), server.url, server.admin_key,
                    PROJECT, run.id)
    return root, ids


def _remote(server, key=None) -> nbtracker.Api:
    return nbtracker.Api(overrides={"base_url": server.url}, api_key=key or server.admin_key)


@pytest.mark.parametrize("filters,order", [
    (None, "-created_at"),
    ({"config.lr": {"$gte": 0.1}}, "+config.lr"),
    ({"tags": "cnn"}, "-summary.best"),
    ({"$or": [{"config.deep.n": 3}, {"name": "zzz"}]}, "+name"),
    ({"summary.loss": {"$gt": 1}}, None),
])
def test_same_runs_for_the_same_filters_and_order(server, uploaded, filters, order):
    root, _ = uploaded
    local = nbtracker.Api(dir=str(root)).runs(PROJECT, filters=filters, order=order)
    remote = _remote(server).runs(PROJECT, filters=filters, order=order)
    assert _remote(server).remote
    assert [r.id for r in remote] == [r.id for r in local]
    for lr, rr in zip(local, remote):
        assert (rr.name, rr.state, rr.tags, rr.config) == (lr.name, lr.state, lr.tags, lr.config)
        assert rr.summary_metrics.keys() == lr.summary_metrics.keys()
        assert rr.steps == lr.steps and rr.last_step == lr.last_step


def test_history_value_for_value(server, uploaded):
    root, ids = uploaded
    for run_id in ids:
        lr = nbtracker.Api(dir=str(root)).run(f"{PROJECT}/{run_id}")
        rr = _remote(server).run(f"{PROJECT}/{run_id}")
        pd.testing.assert_frame_equal(rr.history(), lr.history())
        assert list(rr.scan_history()) == list(lr.scan_history())
        assert rr.history()["big"].tolist()[0] == 2**70  # exact beyond 64 bits


def test_files_and_media_come_from_the_server(server, uploaded, tmp_path):
    root, ids = uploaded
    rr = _remote(server).run(f"{PROJECT}/{ids[0]}")
    [f] = rr.files()
    assert f.name == "model.txt"
    assert f.download(str(tmp_path)).read_text() == "weights of a"
    ref = rr.history()["img"].dropna().iloc[0]
    data = rr.media_path(ref).read_bytes()
    assert hashlib.sha256(data).hexdigest() == ref["sha256"]


def test_compare_uses_the_servers_series(server, uploaded):
    _, ids = uploaded
    api = _remote(server)
    runs = [api.run(f"{PROJECT}/{i}") for i in ids]
    from nbtracker.charts.builders import long_history

    df = long_history(runs, metrics=["loss"])
    got = df[df.run_id == ids[0]].sort_values("x")["value"].tolist()
    assert sorted(set(got)) == sorted({0.9, 0.05, 0.2})  # step 1 became 0.05; NaN/inf dropped


def test_edits_through_the_remote_api(server, uploaded):
    _, ids = uploaded
    rr = _remote(server).run(f"{PROJECT}/{ids[1]}")
    rr.summary["verdict"] = "good"
    rr.config["lr"] = 0.2
    rr.tags.append("reviewed")
    rr.update()
    again = _remote(server).run(f"{PROJECT}/{ids[1]}")
    assert again.summary["verdict"] == "good"
    assert again.config["lr"] == 0.2 and "reviewed" in again.tags


def test_another_users_key_sees_no_runs(server, uploaded):
    key = server.create_user("mallory")
    api = _remote(server, key)
    assert api.runs(PROJECT) == []
    with pytest.raises(ValueError):
        api.run(f"{PROJECT}/{uploaded[1][0]}")


def test_magics_show_the_teams_runs(server, uploaded, monkeypatch):
    """With a server configured, `%tracker runs`, `compare` and `diff` show its runs (the
    local store of this test holds none)."""
    from IPython.testing.globalipapp import get_ipython

    from nbtracker.notebook import magics

    _, ids = uploaded
    monkeypatch.setenv("NBTRACKER_BASE_URL", server.url)
    monkeypatch.setenv("NBTRACKER_API_KEY", server.admin_key)
    shown = []
    monkeypatch.setattr(magics, "display", shown.append)
    ip = get_ipython()
    ip.run_line_magic("load_ext", "nbtracker")
    ip.run_line_magic("tracker", f"runs {PROJECT} --filter 'config.lr >= 0.1' --sort +config.lr")
    [table] = shown
    from nbtracker.notebook.table import decode_column

    col = {c["key"]: decode_column(enc, table.count) for c, enc in zip(table.columns, table.data)}
    assert col["id"] == ids[1:]
    lrs = col["config.lr"]  # b's lr is 0.1, or 0.2 after the edits test
    assert lrs == sorted(lrs) and lrs[0] in (0.1, 0.2) and lrs[1] == 0.3
    shown.clear()
    ip.run_line_magic("tracker", f"compare {PROJECT}/{ids[0]} {PROJECT}/{ids[2]} --metrics loss")
    chart, diff = shown
    values = [row for ds in chart.spec["datasets"].values() for row in ds]
    assert {row["run"] for row in values if "run" in row} == {"a", "c"}, values[:3]
    assert [r["key"] for r in diff.rows if r["differs"]] == ["lr"]
    shown.clear()
    ip.run_line_magic("tracker", f"diff {ids[0]} {ids[1]}")  # ids alone, found on the server
    [diff] = shown
    assert diff.runs == ["a", "b"]


def test_runs_of_every_project_are_ordered_as_one_list(server, uploaded):
    api = _remote(server)
    key = server.admin_key
    h = {"Authorization": f"Bearer {key}"}
    base = f"{server.url}/api/v1/projects/other/runs/o1"
    requests.put(base, json={}, headers=h, timeout=10)
    rec = {"t": "run", "id": "o1", "project": "other", "name": "o", "seq": 1, "ts": 1.5}
    assert requests.post(f"{base}/records", json={"first_seq": 1, "records": [rec]}, headers=h,
                         timeout=10).status_code == 200
    every = api.runs(order="-created_at")
    created = [r.created for r in every]
    assert created == sorted(created, reverse=True) and every[-1].id == "o1"  # made long ago
    assert {r.id for r in every} >= set(uploaded[1]) | {"o1"}


def test_a_long_run_is_read_whole_page_by_page(server, tmp_path, monkeypatch):
    from nbtracker.sync import remote

    monkeypatch.setattr(remote, "PAGE", 100)  # records a page: the run takes several
    root = tmp_path / "long"
    monkeypatch.setenv("NBTRACKER_DIR", str(root))
    with nbtracker.init(project="long", mode="offline") as run:
        for i in range(350):
            run.log({"i": i})
    _upload(layout.run_dir(root, "long", run.id), server.url, server.admin_key, "long", run.id)
    rr = _remote(server).run(f"long/{run.id}")
    assert rr.history()["i"].tolist() == list(range(350))
    local = nbtracker.Api(dir=str(root)).run(f"long/{run.id}")
    pd.testing.assert_frame_equal(rr.history(), local.history())


def test_artifact_lineage_reaches_the_server_with_the_runs_records(server, tmp_path, monkeypatch):
    monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "lineage"))
    (tmp_path / "data.csv").write_text("x\n1\n")
    with nbtracker.init(project="lineage", mode="offline") as prep:
        art = nbtracker.Artifact("table", type="dataset")
        art.add_file(tmp_path / "data.csv")
        prep.log_artifact(art)
    with nbtracker.init(project="lineage", mode="offline") as train:
        train.use_artifact("table:latest")
    for run in (prep, train):
        _upload(layout.run_dir(tmp_path / "lineage", "lineage", run.id), server.url,
                server.admin_key, "lineage", run.id)
    remote = _remote(server)
    assert [a.name for a in remote.run(f"lineage/{prep.id}").logged_artifacts()] == ["table:v0"]
    assert [a.name for a in remote.run(f"lineage/{train.id}").used_artifacts()] == ["table:v0"]
    assert remote.run(f"lineage/{train.id}").logged_artifacts() == []
