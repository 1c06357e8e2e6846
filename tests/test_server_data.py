"""What the server holds equals what the local reader makes of the same records: run state,
summary and config (edits included), filters and ordering, files, and downsampled histories."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import orjson
import pytest

import nbtracker
from nbtracker.store import layout
from nbtracker.store.recordlog import make_record
from nbtracker.store.state import RunState
from nbtracker.store.store import replay

pytest.importorskip("fastapi", reason="the server extra is not installed")

from fastapi.testclient import TestClient  # noqa: E402
from serverproc import make_app  # noqa: E402


@pytest.fixture
def client(tmp_path):
    app, key = make_app(tmp_path / "srv")
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        yield c


def upload_run(c, run_dir: Path, project: str, run_id: str, batch: int = 7) -> None:
    """Upload a local run as the client does: blobs of its files, then its log lines as sent."""
    lines = (run_dir / layout.LOG_NAME).read_bytes().splitlines()
    for line in lines:
        rec = orjson.loads(line)
        if rec["t"] == "file":
            data = (run_dir / layout.FILES_DIR / rec["path"]).read_bytes()
            r = c.put(f"/api/v1/projects/{project}/runs/{run_id}/blobs/{rec['sha256']}", content=data)
            assert r.status_code == 200, r.text
    for i in range(0, len(lines), batch):
        part = lines[i:i + batch]
        first = orjson.loads(part[0])["seq"]
        body = b'{"first_seq":%d,"records":[' % first + b",".join(part) + b"]}"
        r = c.post(f"/api/v1/projects/{project}/runs/{run_id}/records", content=body)
        assert r.status_code == 200, r.text


def server_state(c, project, run_id) -> tuple[dict, RunState]:
    item = json.loads(c.get(f"/api/v1/projects/{project}/runs/{run_id}").text)
    return item, RunState.load(json.dumps(item["state"]))


SWEEP = [("a", 0.01, ["cnn"], "g1", [0.9, 0.5, 0.2], 0), ("b", 0.1, ["cnn", "big"], "g1", [0.8, 0.6, 0.4], 0),
         ("c", 0.3, ["mlp"], "g2", [0.7, 0.3, math.nan], 1), ("d", 0.3, [], None, [0.5], 0)]


@pytest.fixture
def sweep(client, tmp_path):
    runs = {}
    for name, lr, tags, group, losses, code in SWEEP:
        run = nbtracker.init(project="sweep", name=name, tags=tags, group=group,
                             config={"lr": lr, "arch": {"depth": 3, "big": 2**70}}, reinit=True)
        run.define_metric("loss", summary="min")
        for loss in losses:
            run.log({"loss": loss, "acc": 1 - loss, "nested": {"x": 2**66}})
        if name == "a":
            run.summary["best"] = math.inf
            run.alert("low loss", "below 0.3")
            (Path(run.dir) / "notes.txt").write_text("hello from a")
            run.save(str(Path(run.dir) / "notes.txt"), base_path=run.dir)
        run.finish(exit_code=code)
        runs[name] = run
        upload_run(client, Path(run.dir).parent if Path(run.dir).name == "files" else Path(run.dir),
                   "sweep", run.id)
    return runs


def local_dir(run) -> Path:
    d = Path(run.dir)
    return d.parent if d.name == layout.FILES_DIR else d


def test_state_summary_and_config_equal_the_local_replay(client, sweep):
    for name, run in sweep.items():
        local, _, report = replay(local_dir(run))
        assert report.clean
        item, remote = server_state(client, "sweep", run.id)
        assert remote.dump() == local.dump(), name
        assert item["status"] == local.state == ("failed" if name == "c" else "finished")
        assert item["next_seq"] == local.last_seq + 1
    _, a = server_state(client, "sweep", sweep["a"].id)
    assert a.summary.to_dict()["loss"] == 0.2 and a.summary.to_dict()["best"] == math.inf
    assert a.config["arch"]["big"] == 2**70 and a.alerts[0]["title"] == "low loss"


def test_edits_overlay_as_the_local_reader_does(client, sweep):
    run = sweep["b"]
    local, _, _ = replay(local_dir(run))
    edits = [{"t": "meta", "seq": 1, "ts": 9e9, "src": "api", "name": "renamed", "tags": ["x"]},
             make_record("config", {"lr": math.nan, "new": 2**65}, seq=2, ts=9e9, src="api"),
             {**make_record("summary", {"acc": 2.0}), "seq": 3, "ts": 9e9}]
    url = f"/api/v1/projects/sweep/runs/{run.id}/edits"
    assert client.post(url, json={"edits": edits[:2]}).json() == {"eseq": 2}
    assert client.post(url, json={"edits": edits}).json() == {"eseq": 3}  # idempotent by seq
    item, remote = server_state(client, "sweep", run.id)
    assert item["eseq"] == 3
    assert remote.dump() == local.with_edits(edits).dump()
    assert remote.name == "renamed" and remote.config["new"] == 2**65 and math.isnan(remote.config["lr"])
    assert client.put(f"/api/v1/projects/sweep/runs/{run.id}").json()["eseq"] == 3


FILTERS = [None, {"config.lr": 0.3}, {"config.lr": {"$gt": 0.05}}, {"tags": "cnn"},
           {"tags": {"$in": ["mlp", "big"]}}, {"state": "failed"}, {"summary.loss": {"$lt": 0.5}},
           {"$or": [{"group": "g2"}, {"config.lr": 0.01}]}, {"config.arch.depth": 3},
           {"display_name": {"$regex": "^[ab]$"}}, {"summary.best": {"$exists": True}},
           {"group": None}, {"$nor": [{"tags": "cnn"}]}, {"config.lr": {"$nin": [0.1, 0.3]}}]
ORDERS = ["-created_at", "created_at", "+summary.loss", "-summary.loss", "config.lr", "-config.lr",
          "summary.acc", "name"]


def test_filters_and_order_match_the_local_api(client, sweep):
    api = nbtracker.Api()
    for flt in FILTERS:
        for order in ORDERS:
            local = [r.id for r in api.runs("sweep", filters=flt, order=order)]
            params = {"order": order} | ({"filters": json.dumps(flt)} if flt else {})
            got = client.get("/api/v1/projects/sweep/runs", params=params).json()
            assert [r["id"] for r in got["runs"]] == local, (flt, order)
            assert got["total"] == len(local)
    page = client.get("/api/v1/projects/sweep/runs", params={"limit": 2, "offset": 1}).json()
    assert [r["id"] for r in page["runs"]] == [r.id for r in api.runs("sweep")][1:3]
    assert page["total"] == 4
    r = client.get("/api/v1/projects/sweep/runs", params={"filters": '{"lr": {"$bogus": 1}}'})
    assert r.status_code == 422 and "$bogus" in r.json()["detail"]


def test_files_list_and_download(client, sweep):
    run = sweep["a"]
    files = client.get(f"/api/v1/projects/sweep/runs/{run.id}/files").json()["files"]
    data = b"hello from a"
    assert files == [{"path": "notes.txt", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]
    r = client.get(f"/api/v1/projects/sweep/runs/{run.id}/files/notes.txt")
    assert r.status_code == 200 and r.content == data
    assert client.get(f"/api/v1/projects/sweep/runs/{run.id}/files/other.txt").status_code == 404
    blobs = client.put(f"/api/v1/projects/sweep/runs/{run.id}").json()["blobs"]
    assert blobs == [files[0]["sha256"]]


# -- histories ---------------------------------------------------------------------------------

def post_history(c, project, run_id, steps, values, key="m", start_seq=1, batch=1000):
    recs = []
    for i, (s, v) in enumerate(zip(steps, values)):
        recs.append(make_record("history", {key: v}, step=int(s), seq=start_seq + i, ts=1.0))
    for i in range(0, len(recs), batch):
        part = recs[i:i + batch]
        body = (b'{"first_seq":%d,"records":[' % part[0]["seq"]
                + b",".join(orjson.dumps(r) for r in part) + b"]}")
        assert c.post(f"/api/v1/projects/{project}/runs/{run_id}/records", content=body).status_code == 200
    return start_seq + len(recs)


def decoded(series: dict, name: str) -> np.ndarray:
    arr = np.array([math.nan if v is None else v for v in series[name]], np.float64)
    for i, n in series.get("nf", {}).get(name, {}).items():
        arr[int(i)] = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[n]
    return arr


def check_buckets(series: dict, steps: np.ndarray, values: np.ndarray, samples: int) -> None:
    """Buckets cover the points in order: each gives its last point and the exact min and max
    of the points since the previous bucket; the first and the last point are kept."""
    bs, bv, bmin, bmax = (np.array(series["step"]), decoded(series, "value"),
                          decoded(series, "min"), decoded(series, "max"))
    assert 0 < len(bs) <= samples
    assert np.all(np.diff(bs) > 0)
    assert bs[0] == steps[0] and bs[-1] == steps[-1]
    np.testing.assert_array_equal(bv[[0, -1]], values[[0, -1]])
    idx = np.searchsorted(steps, bs)
    assert np.all(steps[idx] == bs)
    np.testing.assert_array_equal(bv, values[idx])
    lo = np.append(-1, idx[:-1]) + 1
    for i in range(len(bs)):
        chunk = values[lo[i]:idx[i] + 1]
        want_min = np.nan if np.all(np.isnan(chunk)) else np.nanmin(chunk)
        want_max = np.nan if np.all(np.isnan(chunk)) else np.nanmax(chunk)
        np.testing.assert_array_equal([bmin[i], bmax[i]], [want_min, want_max])


def histories(c, runs, keys, **kw):
    r = c.post("/api/v1/histories", json={"runs": runs, "keys": keys, **kw})
    assert r.status_code == 200, r.text
    return r.json()["series"]


@pytest.mark.parametrize("n, samples", [(10, 1000), (3000, 1000), (20_000, 7), (50_000, 300)])
def test_histories_keep_extremes_first_and_last(client, n, samples):
    rng = np.random.default_rng(n)
    steps = np.arange(n) * 3 + 5
    values = rng.normal(size=n)
    values[rng.integers(0, n, 5)] = np.nan
    values[n // 2] = 1e6  # a spike the chart must show
    values[n // 3] = -math.inf
    post_history(c=client, project="h", run_id=f"r{n}", steps=steps, values=values.tolist(), batch=777)
    (s,) = histories(client, [{"project": "h", "id": f"r{n}"}], ["m"], samples=samples)
    check_buckets(s, steps, values, samples)
    assert np.nanmax(decoded(s, "max")) == 1e6 and np.nanmin(decoded(s, "min")) == -math.inf
    if n <= samples:
        assert s["step"] == steps.tolist()


def test_histories_with_steps_that_go_back_or_repeat(client):
    # steps 0..1999, then 500..999 again with new values, then a repeat of the last step
    steps = list(range(2000)) + list(range(500, 1000)) + [1999]
    values = [float(s) for s in range(2000)] + [-float(s) for s in range(500, 1000)] + [7.0]
    post_history(client, "h", "back", steps, values, batch=300)
    want = {s: v for s, v in zip(steps, values)}  # the later value wins
    ws = np.array(sorted(want))
    wv = np.array([want[s] for s in ws])
    for samples in (5000, 50):
        (s,) = histories(client, [{"project": "h", "id": "back"}], ["m"], samples=samples)
        check_buckets(s, ws, wv, samples)
    # a repeat of the last step only (the fast path) replaces the point
    post_history(client, "h", "rep", [0, 1, 2, 2, 3, 3], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    (s,) = histories(client, [{"project": "h", "id": "rep"}], ["m"])
    assert s["step"] == [0, 1, 2, 3] and s["value"] == [1.0, 2.0, 4.0, 6.0]


def test_histories_step_range_and_missing_keys(client):
    steps = np.arange(30_000)
    values = np.sin(steps / 100.0)
    post_history(client, "h", "range", steps, values.tolist())
    series = histories(client, [{"project": "h", "id": "range"}], ["m", "absent"],
                       samples=100, min_step=1234, max_step=25_000)
    ok = (steps >= 1234) & (steps < 25_000)
    check_buckets(series[0], steps[ok], values[ok], 100)
    assert series[1]["key"] == "absent" and series[1]["step"] == []
    r = client.post("/api/v1/histories", json={"runs": [{"project": "h", "id": "nope"}], "keys": ["m"]})
    assert r.status_code == 404


def test_histories_of_mixed_values(client):
    recs = [make_record("history", {"m": v}, step=i, seq=i + 1, ts=1.0)
            for i, v in enumerate([1, True, None, "text", {"_type": "image", "path": "x"}, 2**70, 2.5])]
    body = b'{"first_seq":1,"records":[' + b",".join(orjson.dumps(r) for r in recs) + b"]}"
    assert client.post("/api/v1/projects/h/runs/mixed/records", content=body).status_code == 200
    (s,) = histories(client, [{"project": "h", "id": "mixed"}], ["m"])
    assert s["step"] == [0, 1, 5, 6] and s["value"] == [1.0, 1.0, float(2**70), 2.5]
