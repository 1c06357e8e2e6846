"""The query API: runs, filters, ordering, histories, files, media, alerts and edits."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import run_python

import nbtracker


@pytest.fixture
def sweep():
    runs = []
    for name, lr, tags, group in [("a", 0.01, ["cnn"], "g1"), ("b", 0.1, ["cnn", "big"], "g1"),
                                  ("c", 0.3, ["mlp"], "g2")]:
        with nbtracker.init(project="api", name=name, config={"lr": lr}, tags=tags,
                            group=group) as r:
            for i in range(10):
                r.log({"loss": lr * (10 - i), "acc": i * lr})
        runs.append(r)
    return runs


def names(runs):
    return [r.name for r in runs]


def test_runs_order_and_filters(sweep):
    api = nbtracker.Api()
    assert names(api.runs("api")) == ["c", "b", "a"]  # newest first
    assert names(api.runs("api", order="+created_at")) == ["a", "b", "c"]
    assert names(api.runs("api", order="+summary.loss")) == ["a", "b", "c"]
    assert names(api.runs("api", order="-config.lr")) == ["c", "b", "a"]
    assert names(api.runs("api", filters={"config.lr": 0.1})) == ["b"]
    assert names(api.runs("api", filters={"summary.acc": {"$gt": 1.0}})) == ["c"]
    assert names(api.runs("api", filters={"tags": {"$in": ["big", "mlp"]}})) == ["c", "b"]
    assert names(api.runs("api", filters={"$or": [{"name": "a"}, {"group": "g2"}]})) == ["c", "a"]
    assert names(api.runs("api", filters={"state": "finished", "tags": "cnn"})) == ["b", "a"]
    assert names(api.runs("api", filters={"display_name": {"$regex": "^[ab]$"}})) == ["b", "a"]
    assert names(api.runs("other-project")) == []
    with pytest.raises(nbtracker.UsageError):
        api.runs("api", filters={"lr": {"$almost": 1}})


def test_to_pandas(sweep):
    df = nbtracker.Api().runs("api").to_pandas()
    assert len(df) == 3 and set(df["state"]) == {"finished"}
    row = df[df["name"] == "b"].iloc[0]
    assert row["config.lr"] == 0.1 and row["summary.loss"] == pytest.approx(0.1)
    assert row["tags"] == "cnn, big" and row["group"] == "g1"


def test_history_rows_keys_samples_scan():
    run = nbtracker.init(project="h")
    nbtracker.log({"a": 1}, commit=False)
    nbtracker.log({"b": 2})
    for i in range(1, 50):
        nbtracker.log({"a": i, "b": i * 2})
    nbtracker.log({"c": 5}, step=60)
    run.finish()
    r = nbtracker.Api().run(f"h/{run.id}")
    df = r.history()
    assert list(df.columns) == ["_step", "a", "b", "c", "_runtime", "_timestamp"]
    assert len(df) == 51 and df.iloc[0][["a", "b"]].tolist() == [1, 2]
    assert (df["_runtime"] >= 0).all()
    assert r.history(keys=["c"])["_step"].tolist() == [60]
    sampled = r.history(samples=10)
    assert len(sampled) == 10 and sampled["_step"].iloc[0] == 0 and sampled["_step"].iloc[-1] == 60
    rows = list(r.scan_history())
    assert len(rows) == 51 and rows[0]["a"] == 1 and rows[0]["b"] == 2 and rows[-1]["c"] == 5
    assert [x["_step"] for x in r.scan_history(min_step=10, max_step=13)] == [10, 11, 12]
    for form in (f"local/h/{run.id}", f"local/h/runs/{run.id}", run.id):
        assert nbtracker.Api().run(form).id == run.id


def test_edits_after_the_fact(sweep, capsys):
    api = nbtracker.Api()
    r = api.run(f"api/{sweep[0].id}")
    r.config["note"] = "x"
    r.summary["best"] = 1
    r.name = "renamed"
    r.tags = ["edited"]
    r.update()
    again = nbtracker.Api().run(f"api/{sweep[0].id}")
    assert again.config == {"lr": 0.01, "note": "x"} and again.summary["best"] == 1
    assert again.name == "renamed" and again.tags == ["edited"]
    assert again.history()["loss"].tolist() == [0.01 * (10 - i) for i in range(10)]
    live = nbtracker.init(project="api", name="live")
    with pytest.raises(nbtracker.UsageError, match="still running"):
        lr = nbtracker.Api().run(f"api/{live.id}")
        lr.config["x"] = 1
        lr.update()
    live.finish()


def test_files_alerts_and_media(tmp_path):
    (tmp_path / "mymodel.h5").write_bytes(b"weights")
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "e1.pt").write_bytes(b"one")
    run = nbtracker.init(project="files")
    nbtracker.save("mymodel.h5")
    nbtracker.save("ckpt/*.pt")
    with open(os.path.join(run.dir, "notes.txt"), "w") as f:
        f.write("written into run.dir")
    (tmp_path / "mymodel.h5").write_bytes(b"weights, epoch 2")  # changed before finish
    nbtracker.alert(title="done", text="accuracy 0.9", level="WARN")
    img = np.zeros((8, 6, 3), dtype=np.uint8)
    img[..., 0] = 255
    table = nbtracker.Table(columns=["id", "pred"], data=[[1, "cat"]])
    table.add_data(2, "dog")
    nbtracker.log({"inputs": nbtracker.Image(img, caption="red"),
                   "logits": nbtracker.Histogram(np.arange(100)),
                   "captions": nbtracker.Html("<p>hello</p>"), "preds": table})
    run.finish()
    r = nbtracker.Api().run(run.path)
    files = {f.name: f for f in r.files()}
    assert set(files) == {"mymodel.h5", "ckpt/e1.pt", "notes.txt"}
    assert files["mymodel.h5"].path.read_bytes() == b"weights, epoch 2"
    assert files["notes.txt"].download(str(tmp_path / "dl")).read_text() == "written into run.dir"
    assert r.alerts[0]["title"] == "done" and r.alerts[0]["level"] == "WARN"
    row = r.history().iloc[0]
    image = row["inputs"]
    assert image["_type"] == "image-file" and (image["width"], image["height"]) == (6, 8)
    assert r.media_path(image).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert sum(row["logits"]["values"]) == 100
    assert r.media_path(row["captions"]).read_text() == "<p>hello</p>"
    tbl = json.loads(r.media_path(row["preds"]).read_text())
    assert tbl == {"columns": ["id", "pred"], "data": [[1, "cat"], [2, "dog"]]}
    with pytest.raises(ValueError):
        r.media_path({"path": "../../etc/passwd"})


def test_crashed_state_and_dir_runs(tmp_path):
    p = run_python("""
        import os, nbtracker
        run = nbtracker.init(project="crash", dir="elsewhere")
        nbtracker.log({"a": 1})
        print(run.path, run.storage_dir, flush=True)
        os.kill(os.getpid(), 9)
    """, check=False)
    path, storage = p.stdout.split()
    assert storage.startswith(str(tmp_path / "elsewhere" / "nbtracker"))
    assert nbtracker.Api().run(path).state == "crashed"  # found through the default index
    assert nbtracker.Api(dir=str(tmp_path / "elsewhere")).run(path).state == "crashed"
