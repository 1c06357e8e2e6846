"""The query API (`nbtracker.Api`): runs, filters, ordering, histories, files, media, alerts,
edits after the fact, and runs stored outside the default store."""

from __future__ import annotations

import json
import os
import struct
import time
import zlib

import numpy as np
import pytest
from helpers import run_cli, run_python

import nbtracker

# name, lr, tags, group, losses logged
SWEEP = [
    ("a", 0.01, ["cnn"], "g1", [0.9, 0.5, 0.2]),
    ("b", 0.1, ["cnn", "big"], "g1", [0.8, 0.6, 0.4]),
    ("c", 0.3, ["mlp"], "g2", [0.7, 0.3, 0.1]),
]


@pytest.fixture
def sweep():
    runs = {}
    for name, lr, tags, group, losses in SWEEP:
        with nbtracker.init(project="api", name=name, config={"lr": lr, "arch": {"depth": 3}},
                            tags=tags, group=group, reinit=True) as run:
            for loss in losses:
                run.log({"loss": loss, "acc": 1 - loss})
        runs[name] = run
    return runs


def names(runs) -> list[str]:
    return [r.name for r in runs]


def by_creation(*wanted: str, newest_first: bool = True) -> list[str]:
    order = [s[0] for s in SWEEP if s[0] in wanted]
    return order[::-1] if newest_first else order


# -- listing, filtering, ordering -------------------------------------------------------------

def test_api_reads_the_default_store(sweep, store):
    api = nbtracker.Api()
    assert api.root == store
    assert {r.id for r in api.runs("api")} == {r.id for r in sweep.values()}
    assert names(api.runs("local/api")) == names(api.runs("api"))
    assert api.runs("another-project") == []


def test_runs_are_newest_first_by_default(sweep):
    runs = nbtracker.Api().runs("api")
    assert names(runs) == by_creation("a", "b", "c")
    created = [r.created for r in runs]
    assert created == sorted(created, reverse=True)
    assert names(nbtracker.Api().runs("api", order="+created_at")) == by_creation(
        "a", "b", "c", newest_first=False)


def test_filters(sweep):
    api = nbtracker.Api()

    def pick(filters):
        return sorted(names(api.runs("api", filters=filters)))

    lrs = {s[0]: s[1] for s in SWEEP}
    last_loss = {s[0]: s[4][-1] for s in SWEEP}
    tags = {s[0]: s[2] for s in SWEEP}
    assert pick({"config.lr": 0.1}) == [n for n in lrs if lrs[n] == 0.1]
    assert pick({"config.arch.depth": 3}) == ["a", "b", "c"]
    assert pick({"summary.loss": {"$lt": 0.3}}) == sorted(n for n in last_loss if last_loss[n] < 0.3)
    assert pick({"summary.loss": {"$gt": 0.15, "$lt": 0.35}}) == sorted(
        n for n in last_loss if 0.15 < last_loss[n] < 0.35)
    assert pick({"tags": {"$in": ["big", "mlp"]}}) == sorted(
        n for n in tags if {"big", "mlp"} & set(tags[n]))
    assert pick({"$or": [{"config.lr": 0.01}, {"group": "g2"}]}) == ["a", "c"]
    assert pick({"state": "finished"}) == ["a", "b", "c"]
    assert pick({"state": "running"}) == []
    assert pick({"config.lr": 0.5}) == []


def test_state_filter_sees_running_runs(sweep):
    live = nbtracker.init(project="api", name="live")
    live.log({"loss": 1.0})
    assert names(nbtracker.Api().runs("api", filters={"state": "running"})) == ["live"]
    live.finish()
    assert nbtracker.Api().runs("api", filters={"state": "running"}) == []


def test_order_by_summary(sweep):
    api = nbtracker.Api()
    last_loss = {s[0]: s[4][-1] for s in SWEEP}
    assert names(api.runs("api", order="+summary.loss")) == sorted(last_loss, key=last_loss.get)
    assert names(api.runs("api", order="-summary.loss")) == sorted(
        last_loss, key=last_loss.get, reverse=True)
    assert names(api.runs("api", order="-config.lr")) == ["c", "b", "a"]


def test_runs_to_pandas(sweep):
    df = nbtracker.Api().runs("api").to_pandas()
    assert len(df) == len(SWEEP)
    assert {"name", "state", "config.lr", "config.arch.depth", "summary.loss",
            "summary.acc"} <= set(df.columns)
    for name, lr, tags, group, losses in SWEEP:
        row = df[df["name"] == name]
        assert len(row) == 1
        row = row.iloc[0]
        assert row["id"] == sweep[name].id and row["state"] == "finished"
        assert row["config.lr"] == lr and row["group"] == group
        assert row["tags"] == ", ".join(tags)
        assert row["summary.loss"] == losses[-1]
        assert row["summary.acc"] == pytest.approx(1 - losses[-1])


# -- history ---------------------------------------------------------------------------------

def test_history_one_row_per_step():
    before = time.time()
    run = nbtracker.init(project="hist")
    nbtracker.log({"a": 1}, commit=False)  # parts of step 0
    nbtracker.log({"b": 2}, commit=False)
    nbtracker.log({"c": 3})
    for s in range(1, 30):
        nbtracker.log({"a": s, "b": 2 * s})
    nbtracker.log({"a": 100}, step=40)  # step= accumulates until a later step commits it
    nbtracker.log({"b": 200}, step=40)
    nbtracker.log({"c": 300}, step=40)
    nbtracker.log({"c": 99}, step=45)
    run.finish()
    after = time.time()

    r = nbtracker.Api().run(f"hist/{run.id}")
    df = r.history()
    assert list(df.columns) == ["_step", "a", "b", "c", "_runtime", "_timestamp"]
    assert df["_step"].tolist() == [0, *range(1, 30), 40, 45]
    assert df.iloc[0][["a", "b", "c"]].tolist() == [1, 2, 3]
    assert df["a"].tolist()[1:30] == list(range(1, 30))
    assert df[df["_step"] == 40][["a", "b", "c"]].values.tolist() == [[100, 200, 300]]
    assert df[df["_step"] == 45]["c"].tolist() == [99]
    assert ((df["_timestamp"] >= before) & (df["_timestamp"] <= after)).all()
    assert df["_timestamp"].is_monotonic_increasing
    assert df["_runtime"].to_numpy() == pytest.approx(
        (df["_timestamp"] - run.start_time).to_numpy(), abs=1e-3)
    assert (df["_runtime"] >= 0).all()


def test_history_keys_and_samples():
    run = nbtracker.init(project="hist")
    for s in range(100):
        row = {"loss": 1 / (s + 1)}
        if s % 10 == 0:
            row["val"] = s / 10
        nbtracker.log(row)
    run.finish()
    r = nbtracker.Api().run(run.path)

    only_val = r.history(keys=["val"])
    assert only_val["_step"].tolist() == list(range(0, 100, 10))
    assert only_val["val"].tolist() == [s / 10 for s in range(0, 100, 10)]
    assert "loss" not in only_val.columns

    full = r.history()
    sampled = r.history(samples=10)
    assert len(sampled) == 10
    assert sampled["_step"].iloc[0] == 0 and sampled["_step"].iloc[-1] == 99
    assert sampled["_step"].is_monotonic_increasing
    for _, row in sampled.iterrows():  # sampled rows are logged rows, unchanged
        assert row["loss"] == full.loc[full["_step"] == row["_step"], "loss"].item()
    assert len(r.history(samples=1000)) == 100


def test_scan_history_yields_the_rows_of_history():
    run = nbtracker.init(project="hist")
    nbtracker.log({"a": 1}, commit=False)
    nbtracker.log({"b": 2})
    for s in range(1, 25):
        nbtracker.log({"a": s, "b": s / 2})
    nbtracker.log({"img": nbtracker.Html("<b>x</b>")}, step=30)
    run.finish()
    r = nbtracker.Api().run(run.path)
    hist = r.history(pandas=False)
    rows = list(r.scan_history())
    assert len(rows) == len(hist) == 26
    for scanned, h in zip(rows, hist):
        for k, v in scanned.items():
            if k != "_runtime":
                assert h[k] == v, (k, scanned, h)
        present = {k for k, v in h.items() if not (v is None or (isinstance(v, float) and np.isnan(v)))}
        assert present - {"_runtime"} == set(scanned) - {"_runtime"}
    assert [x["_step"] for x in r.scan_history(min_step=10, max_step=13)] == [10, 11, 12]
    assert [x["_step"] for x in r.scan_history(keys=["img"])] == [30]


def test_scan_history_rows_have_runtime():
    run = nbtracker.init(project="hist")
    for s in range(3):
        nbtracker.log({"a": s})
    run.finish()
    r = nbtracker.Api().run(run.path)
    rows = list(r.scan_history())
    assert [row["_runtime"] for row in rows] == pytest.approx(r.history()["_runtime"].tolist())


def test_run_paths():
    run = nbtracker.init(project="paths")
    nbtracker.log({"x": 1})
    run.finish()
    api = nbtracker.Api()
    for form in (f"paths/{run.id}", f"local/paths/{run.id}", f"someone/paths/{run.id}",
                 f"local/paths/runs/{run.id}", run.path):
        got = api.run(form)
        assert (got.id, got.project, got.state) == (run.id, "paths", "finished")
    assert api.run(run.path).path == ["local", "paths", run.id]
    with pytest.raises(ValueError):
        api.run(f"other-project/{run.id}")
    with pytest.raises(ValueError):
        api.run("paths/doesnotexist")


# -- edits after the fact --------------------------------------------------------------------

def test_edits_persist(sweep):
    target = sweep["a"]
    r = nbtracker.Api().run(f"api/{target.id}")
    r.config["note"] = "x"
    r.summary["best"] = 1
    r.name = "renamed"
    r.tags = ["edited", "twice"]
    r.update()

    again = nbtracker.Api().run(f"api/{target.id}")
    assert again.config == {"lr": 0.01, "arch": {"depth": 3}, "note": "x"}
    assert again.summary["best"] == 1 and again.summary["loss"] == SWEEP[0][4][-1]
    assert again.name == "renamed" and again.tags == ["edited", "twice"]
    assert again.history()["loss"].tolist() == SWEEP[0][4]  # the history is untouched
    assert names(nbtracker.Api().runs("api", filters={"config.note": "x"})) == ["renamed"]
    # the other runs are untouched
    assert nbtracker.Api().run(f"api/{sweep['b'].id}").config == {"lr": 0.1, "arch": {"depth": 3}}

    out = run_cli("show", f"api/{target.id}").stdout
    assert "renamed" in out and "note = x" in out and "best = 1" in out
    assert "edited, twice" in out
    assert target.id in run_cli("show", "renamed").stdout


def test_update_of_a_run_still_running_here_is_kept_beside_its_log():
    live = nbtracker.init(project="api", name="live", config={"lr": 1})
    nbtracker.log({"loss": 1.0})
    r = nbtracker.Api().run(live.path)
    r.config["lr"] = 2
    r.update()  # edits of a live run go to edits.jsonl (tests/test_edits_replay.py)
    assert nbtracker.Api().run(live.path).config == {"lr": 2}
    live.finish()
    assert nbtracker.Api().run(live.path).config == {"lr": 2}


# -- files, alerts, media --------------------------------------------------------------------

def test_files_saved_and_written_into_run_dir(tmp_path):
    (tmp_path / "mymodel.h5").write_bytes(b"weights v1")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "e1.pt").write_bytes(b"epoch one")
    run = nbtracker.init(project="files")
    assert nbtracker.save("mymodel.h5") == ["mymodel.h5"]
    nbtracker.save("ckpt/*.pt")
    with open(os.path.join(run.dir, "notes.txt"), "w", encoding="utf-8") as f:
        f.write("written into run.dir")
    (tmp_path / "mymodel.h5").write_bytes(b"weights v2")  # changed before finish
    run.finish()

    r = nbtracker.Api().run(run.path)
    files = {f.name: f for f in r.files()}
    assert set(files) == {"mymodel.h5", "ckpt/e1.pt", "notes.txt"}
    assert files["mymodel.h5"].path.read_bytes() == b"weights v2"
    assert files["ckpt/e1.pt"].path.read_bytes() == b"epoch one"
    assert files["notes.txt"].path.read_text(encoding="utf-8") == "written into run.dir"
    assert files["notes.txt"].size == len("written into run.dir")
    dst = files["mymodel.h5"].download(str(tmp_path / "restore"))
    assert dst.read_bytes() == b"weights v2"


@pytest.mark.parametrize("policy", ["live", "end"])
def test_save_before_the_file_exists(tmp_path, policy):
    run = nbtracker.init(project="files")
    nbtracker.save("final.h5", policy=policy)
    (tmp_path / "final.h5").write_bytes(b"written after save()")
    run.finish()
    files = {f.name: f for f in nbtracker.Api().run(run.path).files()}
    assert files["final.h5"].path.read_bytes() == b"written after save()"


def test_alerts():
    run = nbtracker.init(project="alerts")
    nbtracker.alert(title="Low Accuracy", text="accuracy 0.2 is below 0.3")
    nbtracker.alert(title="done", text="finished training", level="WARN")
    run.finish()
    alerts = nbtracker.Api().run(run.path).alerts
    assert [(a["title"], a["text"], a["level"]) for a in alerts] == [
        ("Low Accuracy", "accuracy 0.2 is below 0.3", "INFO"),
        ("done", "finished training", "WARN")]


def png_pixels(data: bytes) -> np.ndarray:
    """Decode an 8-bit grey, RGB or RGBA PNG (any filter) into an array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, color, _, _, interlace = header
    assert depth == 8 and interlace == 0
    ch = {0: 1, 2: 3, 6: 4}[color]
    raw = zlib.decompress(idat)
    stride = w * ch
    out = np.zeros((h, stride), dtype=np.int64)
    prev = np.zeros(stride, dtype=np.int64)
    for y in range(h):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        ftype, cur = line[0], np.frombuffer(line[1:], dtype=np.uint8).astype(np.int64)
        rec = np.zeros(stride, dtype=np.int64)
        for x in range(stride):
            a = rec[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if ftype == 0:
                pred = 0
            elif ftype == 1:
                pred = a
            elif ftype == 2:
                pred = b
            elif ftype == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            rec[x] = (cur[x] + pred) & 0xFF
        out[y], prev = rec, rec
    return out.reshape(h, w, ch) if ch > 1 else out.reshape(h, w)


def test_media_in_history():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    values = rng.normal(size=500)
    html = "<p>caption <b>one</b></p>"
    table = nbtracker.Table(columns=["id", "pred"], data=[[1, "cat"]])
    table.add_data(2, "dog")
    run = nbtracker.init(project="media")
    nbtracker.log({"loss": 0.5})
    nbtracker.log({"inputs": nbtracker.Image(img, caption="sample"),
                   "logits": nbtracker.Histogram(values, num_bins=20),
                   "captions": nbtracker.Html(html), "preds": table})
    run.finish()

    r = nbtracker.Api().run(run.path)
    df = r.history()
    assert len(df) == 2
    row = df[df["_step"] == 1].iloc[0]

    image = row["inputs"]
    assert image["_type"] == "image-file" and (image["width"], image["height"]) == (5, 6)
    assert image["caption"] == "sample"
    path = r.media_path(image)
    assert path.is_file() and path.is_relative_to(r.storage_dir)
    assert (png_pixels(path.read_bytes()) == img).all()

    hist = row["logits"]
    counts, edges = np.histogram(values, bins=20)
    assert hist["_type"] == "histogram"
    assert hist["values"] == counts.tolist() and hist["bins"] == pytest.approx(edges.tolist())

    assert r.media_path(row["captions"]).read_text(encoding="utf-8") == html
    tbl = json.loads(r.media_path(row["preds"]).read_text(encoding="utf-8"))
    assert tbl == {"columns": ["id", "pred"], "data": [[1, "cat"], [2, "dog"]]}

    with pytest.raises(ValueError):
        r.media_path({"path": "../../../etc/passwd"})


# -- crashed runs, runs stored elsewhere ------------------------------------------------------

def test_killed_process_leaves_a_crashed_run():
    p = run_python("""
        import os, nbtracker
        run = nbtracker.init(project="crash", config={"lr": 0.1})
        for i in range(3):
            nbtracker.log({"loss": 1 / (i + 1)})
        nbtracker.save()  # make sure the rows are on disk
        print(run.path, flush=True)
        os.kill(os.getpid(), 9)
    """, env={"NBTRACKER_SILENT": "1"}, check=False)
    assert p.returncode == -9
    r = nbtracker.Api().run(p.stdout.strip())
    assert r.state == "crashed"
    assert r.config == {"lr": 0.1} and r.history()["loss"].tolist() == [1, 1 / 2, 1 / 3]
    assert names(nbtracker.Api().runs("crash", filters={"state": "crashed"})) == [r.name]


def test_init_dir_stores_the_run_under_dir_and_both_apis_find_it(tmp_path, store):
    where = tmp_path / "experiments"
    run = nbtracker.init(project="far", dir=str(where), config={"k": 1})
    nbtracker.log({"loss": 0.25})
    run.finish()
    assert os.path.realpath(run.storage_dir).startswith(os.path.realpath(where / "nbtracker"))
    assert not (store / "runs" / "far").exists()
    for api in (nbtracker.Api(), nbtracker.Api(dir=str(where))):
        runs = api.runs("far")
        assert [r.id for r in runs] == [run.id]
        got = api.run(f"far/{run.id}")
        assert got.config == {"k": 1} and got.history()["loss"].tolist() == [0.25]


def test_api_with_a_relative_dir_lists_each_run_once():
    run = nbtracker.init(project="far", dir="experiments")
    nbtracker.log({"loss": 0.25})
    run.finish()
    assert [r.id for r in nbtracker.Api(dir="experiments").runs()] == [run.id]
    assert [r.id for r in nbtracker.Api(dir="experiments").runs("far")] == [run.id]
