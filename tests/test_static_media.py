"""A finished run's static form holds what it logged besides numbers — media, system metrics,
alerts, run info — as HTML every viewer draws without a kernel: data: URLs only, user text
escaped, within a size budget."""

from __future__ import annotations

import base64
import os
import re
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from helpers import GIF, write_records

import nbtracker
from nbtracker.notebook import live, static_media
from nbtracker.sdk.media import png_bytes

SRC = re.compile(r'\bsrc="([^"]*)"')


def bundle_of(run) -> dict:
    """What a notebook shows for the finished run (its panel's final static form)."""
    return live.LiveFeed(run, live.StaticSink()).static_bundle()


def data_urls(html: str, mime: str) -> list[bytes]:
    return [base64.b64decode(u.split(",", 1)[1]) for u in SRC.findall(html)
            if u.startswith(f"data:{mime};base64,")]


def media_block(html: str, key: str) -> str:
    m = re.search(rf'<div class="nbt-media[^"]*" data-key="{re.escape(key)}".*?(?=<div class="nbt-media|'
                  r'<div class="nbt-system"|<details|<div class="nbt-budget"|$)', html, flags=re.S)
    assert m, key
    return m.group(0)


def media_file(run, key: str, index: int = -1) -> bytes:
    """The bytes of the last file logged under `key`, read back through the Api."""
    return nbtracker.Api().run(run.path).media(key)[index].path.read_bytes()


def noise_png(tmp_path: Path, name: str, side: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    p = tmp_path / name
    p.write_bytes(png_bytes((rng.random((side, side, 3)) * 255).astype(np.uint8)))
    return p


def test_images_last_step_embedded_with_earlier_steps(tmp_path):
    run = nbtracker.init(project="media", name="imgs")
    files = [noise_png(tmp_path, f"s{i}.png", 12, seed=i) for i in range(5)]
    for i, f in enumerate(files):
        run.log({"loss": 1 / (i + 1), "samples": nbtracker.Image(str(f), caption=f"<i>step {i}</i>")})
    run.finish()
    b = bundle_of(run)
    html = b["text/html"]
    block = media_block(html, "samples")
    pngs = data_urls(block, "image/png")
    assert pngs[0] == files[-1].read_bytes()  # the last step's image, byte for byte
    assert pngs[1:] == [f.read_bytes() for f in files[:-1]]  # earlier steps as thumbnails
    assert "&lt;i&gt;step 4&lt;/i&gt;" in block and "<i>step 4</i>" not in html
    assert "samples: 5 images" in b["text/plain"]
    # the charts stay the first image (what the live panel tests look for)
    assert SRC.findall(html)[0].startswith("data:image/svg+xml;base64,")
    assert all(u.startswith("data:") for u in SRC.findall(html))  # a viewer fetches nothing


def test_table_cells_escaped_and_image_cells_as_thumbnails(tmp_path):
    run = nbtracker.init(project="media", name="table")
    img = np.full((8, 8, 3), 200, np.uint8)
    rows = [[0, "<script>alert(1)</script>", nbtracker.Image(img)],
            [1, 'a "quoted" & <b>bold</b>', nbtracker.Image(img[:4])]]
    run.log({"preds": nbtracker.Table(columns=["id", "<th>", "image"], data=rows)})
    run.log({"plain": nbtracker.Table(columns=["x"], data=[[i] for i in range(80)])})
    run.finish()
    html = bundle_of(run)["text/html"]
    block = media_block(html, "preds")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in block
    assert "&lt;b&gt;bold&lt;/b&gt;" in block and "&lt;th&gt;" in block
    thumbs = data_urls(block, "image/png")
    assert thumbs == [png_bytes(img), png_bytes(img[:4])]
    plain = media_block(html, "plain")
    assert plain.count("<tr") == static_media.TABLE_ROWS + 1  # header + first 50 rows
    assert "first 50 of 80 rows" in plain


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_table_cells_nan_and_infinities_shown_as_text(fmt, monkeypatch):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr("nbtracker.sdk.media.table.JSON_MAX_ROWS", 1)
    run = nbtracker.init(project="media", name="nonfinite")
    rows = [["a", float("nan"), [1.0, float("inf")]], ["b", float("inf"), None],
            ["c", -float("inf"), [2.0]], ["d", 0.5, [3.0]]]
    run.log({"t": nbtracker.Table(columns=["name", "x", "list"], data=rows)})
    run.finish()
    assert nbtracker.Api().run(run.path).media("t")[0].ref["format"] == fmt
    block = media_block(bundle_of(run)["text/html"], "t")
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", block)]
    assert cells == ["a", "NaN", "[1.0, &quot;inf&quot;]", "b", "inf", "", "c", "-inf", "[2.0]",
                     "d", "0.5", "[3.0]"]


def test_budget_bounds_the_output_and_says_what_was_left_out(tmp_path):
    run = nbtracker.init(project="media", name="big")
    big = [noise_png(tmp_path, f"b{i}.png", 300, seed=i) for i in range(12)]  # ~270 KB each
    for _ in range(2):  # twice: the same files, no more to embed
        run.log({f"img{i}": nbtracker.Image(str(f)) for i, f in enumerate(big)})
    run.finish()
    html = bundle_of(run)["text/html"]
    embedded = sum(len(u) for u in SRC.findall(html) if u.startswith("data:image/png"))
    assert embedded <= static_media.MEDIA_BUDGET
    shown = len(data_urls(html, "image/png"))
    assert 3 <= shown < 12
    assert f"{12 - shown} more images not embedded" in html
    assert len(html) < static_media.MEDIA_BUDGET + 100_000


def test_a_large_image_is_named_not_embedded(tmp_path, monkeypatch):
    monkeypatch.setattr(static_media, "ITEM_CAP", 10_000)
    run = nbtracker.init(project="media", name="large")
    run.log({"photo": nbtracker.Image(str(noise_png(tmp_path, "p.png", 100)))})
    run.finish()
    block = media_block(bundle_of(run)["text/html"], "photo")
    assert "<img" not in block and "not embedded" in block and "media/images/" in block


def test_histograms_over_steps_as_a_heat_map():
    run = nbtracker.init(project="media", name="hist")
    rng = np.random.default_rng(1)
    for s in range(40):
        run.log({"weights": nbtracker.Histogram(rng.normal(s / 10, 1, 500)),
                 "once": nbtracker.Histogram(rng.normal(0, 1, 50)) if s == 0 else None})
    run.finish()
    b = bundle_of(run)
    block = media_block(b["text/html"], "weights")
    (svg,) = data_urls(block, "image/svg+xml")
    root = ET.fromstring(svg)
    fills = {p.get("fill") for p in root.iter("{http://www.w3.org/2000/svg}path")}
    assert len(fills & set(static_media_heat())) >= 4  # several shades: counts over steps
    assert 'class="nbt-hist"' in block
    (bars,) = data_urls(media_block(b["text/html"], "once"), "image/svg+xml")
    ET.fromstring(bars)  # one step: bars
    assert b["image/svg+xml"].count("<svg") >= 3  # charts + the two histograms, one image
    ET.fromstring(b["image/svg+xml"])


def static_media_heat() -> list[str]:
    from nbtracker.charts.svg import _HEAT

    return _HEAT


def test_audio_video_html_points_plotly(tmp_path):
    run = nbtracker.init(project="media", name="kinds")
    t = np.arange(2000) / 8000
    run.log({"clip": nbtracker.Audio(np.sin(2 * np.pi * 440 * t), sample_rate=8000, caption="<tone>")})
    (tmp_path / "anim.gif").write_bytes(GIF)
    run.log({"anim": nbtracker.Video(str(tmp_path / "anim.gif"))})
    run.log({"frames": nbtracker.Video(np.zeros((3, 3, 8, 8), np.uint8), fps=2)})  # T, C, H, W
    (tmp_path / "movie.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    run.log({"movie": nbtracker.Video(str(tmp_path / "movie.mp4"))})
    run.log({"page": nbtracker.Html('<p onclick="x()">hi</p><script>alert(1)</script>')})
    pts = np.random.default_rng(2).normal(size=(300, 3))
    run.log({"cloud": nbtracker.Object3D(pts)})
    fig = {"data": [{"type": "scatter", "x": [1, 2, 3], "y": [3, 1, 2], "name": "<a>"},
                    {"type": "heatmap", "z": [[1, 2]]}], "layout": {"title": "fig"}}
    run.log({"fig": nbtracker.Plotly(fig)})
    pie = {"data": [{"type": "pie", "values": [1, 2]}], "layout": {}}
    run.log({"pie": nbtracker.Plotly(pie)})
    run.finish()
    b = bundle_of(run)
    html = b["text/html"]
    clip = media_block(html, "clip")
    assert '<audio class="nbt-audio" controls' in clip
    assert data_urls(clip, "audio/wav") == [media_file(run, "clip")]
    assert "&lt;tone&gt;" in clip
    assert data_urls(media_block(html, "anim"), "image/gif") == [GIF]
    assert data_urls(media_block(html, "frames"), "image/png") == [media_file(run, "frames")]  # APNG
    assert "<video" in media_block(html, "movie") and data_urls(html, "video/mp4")
    page = media_block(html, "page")
    assert 'sandbox=""' in page and "srcdoc=" in page
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "HTML document" in page  # the text left where a sanitiser removes the frame
    (cloud,) = data_urls(media_block(html, "cloud"), "image/svg+xml")
    assert ET.fromstring(cloud) is not None and cloud.count(b"h0") >= 300
    (plot,) = data_urls(media_block(html, "fig"), "image/svg+xml")
    assert "&lt;a&gt;" in plot.decode() and "1 trace of other types not drawn" in media_block(html, "fig")
    assert "not drawn here" in media_block(html, "pie") and "pie" in media_block(html, "pie")
    bar = {"data": [{"type": "bar", "x": ["<cat>", "b"], "y": [1, 2]}]}
    svg, _ = static_media.plotly_svg("bars", bar)
    assert "&lt;cat&gt;" in svg and ET.fromstring(svg) is not None
    text = b["text/plain"]
    for line in ("clip: 1 audio clip", "anim: 1 video", "frames: 1 video", "page: 1 HTML document",
                 "cloud: 1 3-D object", "fig: 1 plotly figure"):
        assert line in text, text


def test_a_gif_video_from_an_array_is_an_animated_image():
    pytest.importorskip("PIL.Image")
    run = nbtracker.init(project="media", name="gif")
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    frames[1, :4] = 255
    frames[2, 4:] = 255
    run.log({"anim": nbtracker.Video(frames, fps=2, format="gif", caption="<roll>")})
    run.finish()
    block = media_block(bundle_of(run)["text/html"], "anim")
    assert '<img class="nbt-img"' in block and "<video" not in block and "&lt;roll&gt;" in block
    assert data_urls(block, "image/gif") == [media_file(run, "anim")]
    assert media_file(run, "anim")[:6] == b"GIF89a"


def test_a_class_set_is_a_line_of_text():
    run = nbtracker.init(project="media", name="classes")
    run.log({"classes": nbtracker.Classes([{"id": 0, "name": "bg"}, {"id": 1, "name": "<cat>"}])})
    run.finish()
    b = bundle_of(run)
    assert "2 classes: 0: bg, 1: &lt;cat&gt;" in media_block(b["text/html"], "classes")
    assert "classes: 1 class set" in b["text/plain"]


def test_system_alerts_and_info(tmp_path):
    run = nbtracker.init(project="media", name="sys")
    run.log({"loss": 1.0})
    t0 = run.start_time
    write_records(run, [{"t": "system", "ts": t0 + 2 * i,
                         "d": {"cpu": 10.0 + i, "proc.cpu": 90.0, "memory": 40.0,
                               "proc.memory.rssMB": 200.0 + i, "network.sent": 1e6 * i,
                               "gpu.0.gpu": 80.0, "gpu.0.temp": 60.0, "gpu.1.powerWatts": 100.0}}
                        for i in range(10)])
    write_records(run, [{"t": "env", "d": {
        "python": "3.11.7", "platform": "Linux-6", "host": "<host>",
        "git": {"commit": "0123456789abcdef", "branch": "main", "dirty": True,
                "remote": "https://user:secret@example.com/r.git"},
        "notebook": {"path": "train.ipynb"}}}])
    run.alert("loss <exploded>", "at step 3 & more", level="ERROR")
    run.alert("slow", "")
    run.finish()
    b = bundle_of(run)
    html = b["text/html"]
    # alerts first, escaped
    assert html.index('class="nbt-alerts"') < html.index("<img")
    assert "loss &lt;exploded&gt;" in html and "at step 3 &amp; more" in html
    assert html.count('class="nbt-alert"') == 2
    system = html[html.index('<div class="nbt-system">'):html.index("<details")]
    svgs = data_urls(system, "image/svg+xml")
    titles = [t.text for svg in svgs for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    for title in ("cpu %", "memory %", "memory MB", "network MB", "gpu.0 %", "gpu.0 °C", "gpu.1 W"):
        assert title in titles, titles
    assert len(svgs) == 7 and "proc.cpu" in titles  # one image per group, its keys in its legend
    info = re.search(r"<details class=\"nbt-info\".*?</details>", html, flags=re.S).group(0)
    assert "git 01234567 (main) dirty" in info and "train.ipynb" in info and "&lt;host&gt;" in info
    assert "secret" not in html and "example.com/r.git" in info
    text = b["text/plain"]
    assert "alerts: 2" in text and "system: 10 samples" in text and "python 3.11.7" in text


def test_info_without_an_env_record_reads_the_run_record():
    run = nbtracker.init(project="media", name="plain")
    run.log({"x": 1})
    run.finish()
    html = bundle_of(run)["text/html"]
    assert '<details class="nbt-info"' in html and "python" in html
    assert "nbt-media" not in html and "nbt-system" not in html and "nbt-alerts" not in html


def test_a_missing_file_is_a_note_and_the_rest_draws(tmp_path):
    run = nbtracker.init(project="media", name="gone")
    run.log({"a": nbtracker.Image(np.zeros((4, 4), np.uint8)),
             "b": nbtracker.Image(np.ones((4, 4), np.uint8))})
    run.finish()
    for p in (Path(run.storage_dir) / "media" / "images").iterdir():
        if p.read_bytes() == png_bytes(np.zeros((4, 4), np.uint8)):
            p.unlink()
    html = bundle_of(run)["text/html"]
    assert "file missing" in media_block(html, "a")
    assert data_urls(media_block(html, "b"), "image/png") == [png_bytes(np.ones((4, 4), np.uint8))]


def test_a_running_run_shows_no_media_yet():
    """The static mode redraws a running run's form every second: it stays the charts only."""
    run = nbtracker.init(project="media", name="live")
    run.log({"a": nbtracker.Image(np.zeros((4, 4), np.uint8)), "loss": 1.0})
    b = live.LiveFeed(run, live.StaticSink()).static_bundle()
    assert "nbt-media" not in b["text/html"]
    run.finish()


@pytest.mark.parametrize("bad", [{"_type": "image-file", "path": "../../etc/passwd", "sha256": "x"},
                                 {"_type": "image-file", "path": "/etc/passwd", "sha256": "x"}])
def test_paths_outside_the_run_are_not_read(bad):
    run = nbtracker.init(project="media", name="bad")
    write_records(run, [{"t": "history", "step": 0, "d": {"img": bad}}])
    run.finish()
    html = bundle_of(run)["text/html"]
    assert "a bad path" in media_block(html, "img") and "data:image" not in media_block(html, "img")


def test_a_list_of_media_as_a_grid():
    run = nbtracker.init(project="media", name="list")
    imgs = [np.full((6, 6), 40 * i, np.uint8) for i in range(5)]
    run.log({"examples": [nbtracker.Image(a, caption=f"<{i}>") for i, a in enumerate(imgs)]})
    run.finish()
    block = media_block(bundle_of(run)["text/html"], "examples")
    assert 'class="nbt-grid"' in block
    assert data_urls(block, "image/png") == [png_bytes(a) for a in imgs]
    assert "&lt;4&gt;" in block


def test_a_parquet_table_reads_its_media_column():
    pytest.importorskip("pyarrow")
    run = nbtracker.init(project="media", name="parquet")
    img = np.full((5, 5, 3), 90, np.uint8)
    rows = [[i, '{"_type": "text"}', nbtracker.Image(img) if i < 3 else None] for i in range(1200)]
    run.log({"big": nbtracker.Table(columns=["id", "note", "image"], data=rows)})
    run.finish()
    assert nbtracker.Api().run(run.path).media("big")[0].ref["format"] == "parquet"
    block = media_block(bundle_of(run)["text/html"], "big")
    assert block.count("<tr") == 51 and "first 50 of 1200 rows" in block
    assert "{&quot;_type&quot;: &quot;text&quot;}" in block  # a string column stays text
    assert data_urls(block, "image/png") == [png_bytes(img)] * 3


def test_boxes_drawn_over_the_image():
    run = nbtracker.init(project="media", name="boxes")
    img = np.zeros((20, 30, 3), np.uint8)
    boxes = {"<pred>": {"box_data": [
        {"position": {"minX": 0.1, "maxX": 0.5, "minY": 0.2, "maxY": 0.6}, "class_id": 1},
        {"position": {"middle": [20, 10], "width": 6, "height": 4}, "domain": "pixel",
         "class_id": 2, "box_caption": "<dog>"}],
        "class_labels": {1: "cat", 2: "dog"}}}
    run.log({"det": nbtracker.Image(img, boxes=boxes)})
    run.finish()
    block = media_block(bundle_of(run)["text/html"], "det")
    (svg,) = data_urls(block, "image/svg+xml")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    (picture,) = root.iter(f"{ns}image")
    assert base64.b64decode(picture.get("href").split(",")[1]) == png_bytes(img)
    rects = [(float(r.get("x")), float(r.get("y")), float(r.get("width")), float(r.get("height")))
             for r in root.iter(f"{ns}rect")]
    assert rects == [(3.0, 4.0, 12.0, 8.0), (17.0, 8.0, 6.0, 4.0)]
    assert [t.text for t in root.iter(f"{ns}text")] == ["cat", "<dog>"]
    assert "boxes: &lt;pred&gt; (2 boxes)" in block


def test_system_section_from_the_sampler():
    """The system metrics the run's own sampler records draw as the static form's charts."""
    run = nbtracker.init(project="media", name="sampled", settings={"system_interval": 0.2})
    for i in range(8):
        run.log({"loss": 1 / (i + 1)})
        time.sleep(0.1)
    run.finish()
    html = bundle_of(run)["text/html"]
    system = html[html.index('<div class="nbt-system">'):html.index("<details")]
    titles = [t.text for svg in data_urls(system, "image/svg+xml")
              for t in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")]
    assert "cpu %" in titles and "memory %" in titles, titles


@pytest.mark.parametrize("swap", ["link-out", "fifo", "link-dev-zero"])
def test_a_media_file_swapped_for_a_link_or_pipe_is_never_read(tmp_path, swap):
    """A run folder can come from someone else: a media file that is a link out of the run (to a
    secret, to /dev/zero) or a pipe is refused by the Api, the static form and the panel — never
    read, never blocking."""
    secret = tmp_path / "id_rsa"
    secret.write_bytes(b"-----BEGIN SECRET-----")
    run = nbtracker.init(project="media", name="swapped")
    run.log({"img": nbtracker.Image(np.full((4, 4), 7, np.uint8)), "x": 1})
    run.finish()
    item = nbtracker.Api().run(run.path).media("img")[0]
    target = Path(run.storage_dir) / item.ref["path"]
    target.unlink()
    if swap == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to(secret if swap == "link-out" else Path("/dev/zero"))
    t0 = time.monotonic()
    with pytest.raises(ValueError):
        nbtracker.Api().run(run.path).media("img")[0].load()
    html = bundle_of(run)["text/html"]
    assert time.monotonic() - t0 < 10
    assert base64.b64encode(secret.read_bytes())[:16].decode() not in html
    assert "SECRET" not in html and 'class="nbt-media' in html  # the rest of the form is drawn
    from nbtracker.notebook import extras

    with pytest.raises(ValueError):
        extras.media_file(Path(run.storage_dir), item.ref["path"])


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_dataframes_nan_is_a_number_and_its_missing_values_are_empty(fmt, monkeypatch):
    # as Table(data=...): NaN in a column of floats is NaN; None, pd.NA, a missing string: empty
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr("nbtracker.sdk.media.table.JSON_MAX_ROWS", 1)
    import pandas as pd

    df = pd.DataFrame({"name": ["a", None, "c"], "x": [np.nan, np.inf, 0.5],
                       "o": pd.Series([pd.NA, "y", None], dtype=object)})
    run = nbtracker.init(project="media", name="frame")
    run.log({"t": nbtracker.Table(dataframe=df)})
    run.finish()
    [item] = nbtracker.Api().run(run.path).media("t")
    assert item.ref["format"] == fmt
    out = item.load()
    assert out["x"].isna().tolist() == [True, False, False] and out["x"][1:].tolist() == [np.inf, 0.5]
    assert out["name"].isna().tolist() == [False, True, False] and out["o"][1] == "y"
    block = media_block(bundle_of(run)["text/html"], "t")
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", block)]
    assert cells == ["a", "NaN", "", "", "inf", "y", "c", "0.5", ""]


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_table_with_a_repeated_column_name_keeps_every_column_in_place(fmt, monkeypatch):
    # wandb.Table(columns=["a", "a", "b"]) is allowed: columns are read by place, not by name
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
        monkeypatch.setattr("nbtracker.sdk.media.table.JSON_MAX_ROWS", 1)
    run = nbtracker.init(project="media", name="repeated")
    run.log({"t": nbtracker.Table(columns=["a", "a", "b"], data=[[1, -1, "x"], [2, -2, "y"]])})
    run.finish()
    [item] = nbtracker.Api().run(run.path).media("t")
    assert item.ref["format"] == fmt
    out = item.load()
    assert list(out.columns) == ["a", "a", "b"]
    assert out.values.tolist() == [[1, -1, "x"], [2, -2, "y"]]
    block = media_block(bundle_of(run)["text/html"], "t")
    heads = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<th[^>]*>(.*?)</th>", block)]
    cells = [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", block)]
    assert heads == ["a", "a", "b"] and cells == ["1", "-1", "x", "2", "-2", "y"]


def test_earlier_steps_are_radio_labels_that_show_their_image_in_place(tmp_path):
    """The static form's step slider: a form of its own, a radio inside each step's label (the
    last checked), the style sheet scoped by a class that is the same when drawn again; each
    image embedded once."""
    run = nbtracker.init(project="media", name="stepper")
    imgs = [np.full((8, 8), 20 * s, np.uint8) for s in range(5)]
    for s, img in enumerate(imgs):
        run.log({"samples": nbtracker.Image(img)}, step=s)
    run.finish()
    block = media_block(bundle_of(run)["text/html"], "samples")
    (tok,) = re.findall(r'<form class="nbt-stepper (nbt-st-[0-9a-f]+)"', block)
    labels = re.findall(r'<label class="nbt-step[^"]*"[^>]*><input type="radio" name="([^"]+)"'
                        r'[^>]*?( checked)?>', block)
    assert [n for n, _ in labels] == [tok] * 5
    assert [bool(c) for _, c in labels] == [True, False, False, False, False]  # the last step
    assert data_urls(block, "image/png") == [png_bytes(i) for i in [imgs[4], *imgs[:4]]]
    (css,) = re.findall(r"<style>(.*?)</style>", block)
    assert all(rule.startswith(f".{tok}") for rule in css.split("}") if rule)
    again = media_block(live._feed(run).static_bundle()["text/html"], "samples")
    assert again == block  # drawn again: the same HTML


def test_a_static_table_ranks_each_sortable_column(tmp_path):
    """Each row carries its place in every sortable column, up and down (numbers, then text,
    numbers within text as numbers; empty cells last both ways); media and list columns are
    not sortable; a row longer or shorter than the columns is cut or padded."""
    run = nbtracker.init(project="media", name="sortable")
    img = np.zeros((4, 4), np.uint8)
    rows = [[3, "b10", None, nbtracker.Image(img), [1]], [1, "C", 2.5, nbtracker.Image(img), [2]],
            [2, "b9", -1.0, nbtracker.Image(img), [3]], [0, None, float("nan"), nbtracker.Image(img), [4]]]
    run.log({"t": nbtracker.Table(columns=["id", "name", "x", "img", "l"], data=rows)})
    ragged = nbtracker.Table(columns=["a", "b"], data=[[1, 2], [3, 4]])
    ragged.data += [[5, 6, "extra"], [7]]  # the list is public, as wandb's
    run.log({"ragged": ragged})
    run.finish()
    html = bundle_of(run)["text/html"]
    cut = media_block(html, "ragged")
    assert "nbt-media-table" in cut and "extra" not in cut and cut.count("<td") == 8
    block = media_block(html, "t")
    (tok,) = re.findall(r'<form class="nbt-table-sort (nbt-tb-[0-9a-f]+)"', block)
    ranks = [dict(((d, int(c)), int(v)) for d, c, v in re.findall(r"--([ad])(\d+):(\d+)", tr))
             for tr in re.findall(r"<tr style=\"([^\"]*)\">", block)]
    assert len(ranks) == 4 and all(set(r) == {(d, c) for d in "ad" for c in range(3)} for r in ranks)

    def ids(d, c):
        return [row[0] for _, row in sorted(zip([r[d, c] for r in ranks], rows))]

    assert [ids("a", c) for c in range(3)] == [[0, 1, 2, 3], [2, 3, 1, 0], [2, 1, 3, 0]]
    assert [ids("d", c) for c in range(3)] == [[3, 2, 1, 0], [1, 3, 2, 0], [1, 2, 3, 0]]
    sorts = re.findall(r'<label class="nbt-sort nbt-sort-[ad] nbt-sort-(\d[ad])"', block)
    assert sorts == [f"{c}{d}" for c in range(3) for d in "ad"]
    assert f".{tok}:has(.nbt-sort-0d>input:checked) td{{order:var(--d0)}}" in block
