"""The live panel's media, system, alert and environment feed (notebook/extras.py), checked
against the widget contract. What the browser makes of it: tests/browser/test_live_media.py."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest

import nbtracker
from nbtracker.notebook import contract, extras, live


def recording(panel) -> list:
    sent: list = []
    panel.send = lambda content, buffers=None: sent.append((content, buffers))
    return sent


def fits(panel, sent) -> None:
    for msg, _ in sent:
        assert contract.check_message(msg, "frontend") == [], msg
    for name in ("media", "extras", "info", "snapshot"):
        assert contract.check_trait("live", name, getattr(panel, name)) == [], name


def of_type(sent, kind) -> list:
    return [(m, b) for m, b in sent if m["type"] == kind]


def fetch(panel, path) -> None:
    panel._handle_custom_msg({"type": "fetch", "path": path}, [])


def image(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)


@pytest.fixture
def fed():
    run = nbtracker.init(project="panel-media")
    panel = live.LivePanel()
    sent = recording(panel)
    feed = live.LiveFeed(run, panel)
    yield run, panel, sent, feed
    if not run._done:
        run.finish()


def test_media_entries_events_and_the_latest_files_reach_the_panel(fed):
    run, panel, sent, feed = fed
    for step in range(3):
        run.log({"loss": 1.0 / (step + 1), "sample": nbtracker.Image(image(step), caption=f"s{step}"),
                 "weights": nbtracker.Histogram(np.arange(10 * (step + 1)))})
    table = nbtracker.Table(columns=["id", "img"], data=[[1, nbtracker.Image(image(7))]])
    run.log({"preds": table, "page": nbtracker.Html("<b>hi</b>")})
    run._emit("system", {"ts": time.time(), "d": {"cpu": 12.5, "memory": 40.0, "bad": float("nan")}})
    run._emit("alert", {"title": "<b>loss</b>", "text": "too high", "level": "WARN"})
    run._emit("info", {"python": "3.11", "git": {"commit": "abc", "dirty": True}})
    run._emit("output", {"stream": "stdout", "text": "epoch 1\nprogress 10%\rprogress 90%"})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    media = {}
    for m, _ in of_type(sent, "media"):
        for k, d in m["keys"].items():
            media[k] = d["entries"] if d["reset"] else media.get(k, []) + d["entries"]
    assert [e["step"] for e in media["sample"]] == [0, 1, 2]
    assert media["sample"][2]["ref"]["caption"] == "s2"
    assert media["weights"][1]["ref"]["_type"] == "histogram"
    assert set(media) == {"sample", "weights", "preds", "page"}
    ev = of_type(sent, "events")
    assert [s["d"] for m, _ in ev for s in m["system"]] == [{"cpu": 12.5, "memory": 40.0}]
    assert [a["title"] for m, _ in ev for a in m["alerts"]] == ["<b>loss</b>"]
    assert [m["info"] for m, _ in ev if m["info"]] == [
        {"python": "3.11", "git": {"commit": "abc", "dirty": True}}]
    assert [c["text"] for c in ev[-1][0]["output"]] == ["epoch 1", "progress 90%"]
    # the latest image was pushed (not the earlier ones), and the table with its image cells
    files = {m["path"]: b for m, b in of_type(sent, "file")}
    latest = media["sample"][2]["ref"]["path"]
    assert latest in files and media["sample"][0]["ref"]["path"] not in files
    assert files[latest][0] == (run._path / latest).read_bytes()
    body = json.loads(files[media["preds"][0]["ref"]["path"]][0])
    assert body["columns"] == ["id", "img"] and body["nrows"] == 1
    assert body["data"][0][1]["path"] in files
    assert files[media["page"][0]["ref"]["path"]][0] == b"<b>hi</b>"
    # an older step, asked for: its bytes
    fetch(panel, media["sample"][0]["ref"]["path"])
    m, b = sent[-1]
    assert m["type"] == "file" and "error" not in m and b[0][:4] == b"\x89PNG"
    # checkpoints copy all of it into the traits (a reloaded page)
    feed.extras.checkpoint(force=True)
    fits(panel, sent)
    assert [e["step"] for e in panel.media["sample"]] == [0, 1, 2]
    assert panel.extras["alerts"][0]["level"] == "WARN" and panel.extras["info"]["python"] == "3.11"


@pytest.mark.parametrize("path", [
    "../secret.txt", "media/../../secret.txt", "media/images/../../../secret.txt", "/etc/passwd",
    "files/x.png", "media", "", "media\\..\\x", "C:/x", 3, None,
])
def test_a_path_outside_the_media_folder_is_refused(fed, path):
    run, panel, sent, feed = fed
    (run._path / "secret.txt").write_text("no")
    fetch(panel, path)
    (m, b), = sent
    assert m["type"] == "file" and m.get("error") and not b
    assert contract.check_message(m, "frontend") == []


def test_a_symlink_out_of_the_media_folder_is_refused(fed, tmp_path):
    run, panel, sent, feed = fed
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"\x89PNG secret")
    (run._path / "media").mkdir(exist_ok=True)
    os.symlink(outside, run._path / "media" / "link.png")
    fetch(panel, "media/link.png")
    (m, b), = sent
    assert "outside" in m["error"] and not b


def test_file_messages_are_bounded(fed, monkeypatch):
    run, panel, sent, feed = fed
    monkeypatch.setattr(extras, "MAX_FILE_BYTES", 1000)
    run.log({"big": nbtracker.Image(image(1, size=64)), "small": nbtracker.Image(image(2, size=4))})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    files = of_type(sent, "file")
    assert all(len(b[0]) <= 1000 for m, b in files if b)
    big = [m for m, b in files if m.get("error")]
    assert big and "more than the panel takes" in big[0]["error"]
    assert [m for m, b in files if b and not m.get("error")]  # the small one went through


def test_a_panel_shown_later_starts_from_the_log(monkeypatch):
    run = nbtracker.init(project="panel-late")
    for step in range(5):
        run.log({"img": nbtracker.Image(image(step)), "h": nbtracker.Histogram([step, 1, 2])})
    run.alert("diverged", "loss is NaN", level="ERROR")
    panel = live.LivePanel()
    sent = recording(panel)
    live.LiveFeed(run, panel)
    fits(panel, sent)
    assert [e["step"] for e in panel.media["img"]] == [0, 1, 2, 3, 4]
    assert len(panel.media["h"]) == 5
    assert panel.extras["alerts"] == [{"title": "diverged", "text": "loss is NaN", "level": "ERROR",
                                       "ts": panel.extras["alerts"][0]["ts"]}]
    run.finish()


def test_logging_images_does_not_wait_for_the_panel(fed):
    """The listener only appends; file reads and sends happen in the feed thread."""
    run, panel, sent, feed = fed
    imgs = [nbtracker.Image(image(i, size=32)) for i in range(200)]
    slow = []
    panel.send = lambda content, buffers=None: (time.sleep(0.05), slow.append(content))
    t0 = time.perf_counter()
    for im in imgs:
        run.log({"x": im})
    logged = time.perf_counter() - t0
    assert logged < 2.0, logged  # 200 sends at 50 ms each would take 10 s
    time.sleep(2 * extras.PUSH_INTERVAL + 2 * live.INTERVAL)
    pushed = [m for m in slow if m["type"] == "file"]
    # the latest step's file was pushed; not one per logged image (the latest wins)
    assert pushed and len(pushed) < 20


def test_histograms_are_bounded_and_a_finished_panel_still_serves_files(fed):
    run, panel, sent, feed = fed
    for step in range(400):
        run.log({"h": nbtracker.Histogram(np.random.default_rng(step).normal(size=2000), num_bins=512),
                 "img": nbtracker.Image(image(step % 5))})
    run.finish()
    fits(panel, sent)
    entries = []
    for m, _ in of_type(sent, "media"):
        d = m["keys"].get("h")
        if d:
            entries = d["entries"] if d["reset"] else entries + d["entries"]
    assert len(entries) <= extras.MAX_HIST_ENTRIES and entries[-1]["step"] == 399
    assert all(len(e["ref"]["values"]) <= extras.HIST_BINS for e in entries)
    assert all(sum(e["ref"]["values"]) == 2000 for e in entries)  # merged, not dropped
    # the finished panel's state is short; its files are still there for the asking
    assert len(panel.media["h"]) <= extras.FINAL_ENTRIES + 1 and panel.media["h"][-1]["step"] == 399
    fetch(panel, panel.media["img"][0]["ref"]["path"])
    m, b = sent[-1]
    assert m["type"] == "file" and "error" not in m and b[0][:4] == b"\x89PNG"


def test_a_parquet_table_reaches_the_panel_as_json_rows(fed, monkeypatch):
    pytest.importorskip("pyarrow")
    run, panel, sent, feed = fed
    monkeypatch.setattr(extras, "TABLE_ROWS", 300)
    rows = [[i, f"<b>{i}</b>", nbtracker.Image(image(i % 4)) if i < 3 else None] for i in range(1500)]
    run.log({"big": nbtracker.Table(columns=["id", "name", "img"], data=rows)})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    (ref,) = [e["ref"] for m, _ in of_type(sent, "media") for e in m["keys"]["big"]["entries"]]
    assert ref["format"] == "parquet"
    files = {m["path"]: b for m, b in of_type(sent, "file")}
    body = json.loads(files[ref["path"]][0])
    assert body["nrows"] == 1500 and len(body["data"]) == 300 and body["columns"] == ["id", "name", "img"]
    assert body["data"][2][:2] == [2, "<b>2</b>"] and body["data"][5][2] is None
    assert body["data"][1][2]["_type"] == "image-file" and body["data"][1][2]["path"] in files


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_table_nan_and_infinities_reach_the_panel_named_in_nf(fed, monkeypatch, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr("nbtracker.sdk.media.table.JSON_MAX_ROWS", 1)
    run, panel, sent, feed = fed
    rows = [[0, float("nan"), [float("-inf")]], [1, float("inf"), [1.5]], [2, -float("inf"), [2.5]],
            [3, 0.25, [3.5]]]
    run.log({"t": nbtracker.Table(columns=["id", "x", "list"], data=rows)})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    (ref,) = [e["ref"] for m, _ in of_type(sent, "media") for e in m["keys"]["t"]["entries"]]
    assert ref["format"] == fmt
    files = {m["path"]: b for m, b in of_type(sent, "file")}
    body = json.loads(files[ref["path"]][0])  # JSON: null at their place, named in "nf"
    assert body["data"] == [[0, None, [None]], [1, None, [1.5]], [2, None, [2.5]], [3, 0.25, [3.5]]]
    assert body["nf"] == {"0": {"1": "nan", "2": {"0": "-inf"}}, "1": {"1": "inf"},
                          "2": {"1": "-inf"}}


def test_alerts_reach_the_panel_once_per_wait_duration(fed):
    run, panel, sent, feed = fed
    for _ in range(3):
        run.alert("<b>slow</b>", "step time doubled", level="ERROR")  # repeats are suppressed
    time.sleep(3 * live.INTERVAL)
    fits(panel, sent)
    shown = [a for m, _ in of_type(sent, "events") for a in m["alerts"]]
    assert [(a["title"], a["level"]) for a in shown] == [("<b>slow</b>", "ERROR")]


def test_a_disabled_runs_panel_serves_no_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "x.png").write_bytes(b"\x89PNG not the run's")
    run = nbtracker.init(mode="disabled")
    panel = live.panel_for(run)
    sent = recording(panel)
    fetch(panel, "media/x.png")
    (m, b), = sent
    assert m["error"] and not b


def test_the_same_image_is_pushed_once(fed):
    run, panel, sent, feed = fed
    for _ in range(3):
        run.log({"same": nbtracker.Image(image(1))})
        time.sleep(extras.PUSH_INTERVAL + 2 * live.INTERVAL)
    fits(panel, sent)
    assert len(of_type(sent, "file")) == 1


def test_a_dataframes_nan_reaches_the_panel_as_nan_and_a_missing_string_as_null(fed):
    import pandas as pd

    run, panel, sent, feed = fed
    df = pd.DataFrame({"name": ["a", None], "x": [np.nan, 0.5]})
    run.log({"t": nbtracker.Table(dataframe=df)})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    (ref,) = [e["ref"] for m, _ in of_type(sent, "media") for e in m["keys"]["t"]["entries"]]
    files = {m["path"]: b for m, b in of_type(sent, "file")}
    body = json.loads(files[ref["path"]][0])
    assert body["data"] == [["a", None], [None, 0.5]] and body["nf"] == {"0": {"1": "nan"}}


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_table_with_a_repeated_column_name_reaches_the_panel_column_by_column(fed, monkeypatch,
                                                                                 fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr("nbtracker.sdk.media.table.JSON_MAX_ROWS", 1)
    run, panel, sent, feed = fed
    run.log({"t": nbtracker.Table(columns=["a", "a", "b"], data=[[1, -1, "x"], [2, -2, "y"]])})
    time.sleep(4 * live.INTERVAL + extras.PUSH_INTERVAL)
    fits(panel, sent)
    (ref,) = [e["ref"] for m, _ in of_type(sent, "media") for e in m["keys"]["t"]["entries"]]
    assert ref["format"] == fmt
    files = {m["path"]: b for m, b in of_type(sent, "file")}
    body = json.loads(files[ref["path"]][0])
    assert body["columns"] == ["a", "a", "b"] and body["data"] == [[1, -1, "x"], [2, -2, "y"]]
