"""Media through the public API: each kind logged, read back with `Api().run(...).media(key)`
(same pixels, bins, rows, samples, points, frames), stored once per content, figures and lists
of media, bad input as one warning with the rest of the row kept, and a round trip through a
team server (the uploader sends the files nested in references)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbtracker as wandb

RNG = np.random.default_rng(0)
IMG = RNG.integers(0, 256, size=(12, 10, 3), dtype=np.uint8)


def logged(values: dict, project: str = "media"):
    """Log `values` in one call of a fresh run; return the run as the Api reads it."""
    run = wandb.init(project=project, reinit=True)
    wandb.log(values)
    run.finish()
    return wandb.Api().run(run.path)


def warnings_about(err: str, key: str) -> list[str]:
    return [line for line in err.splitlines() if "warning" in line and repr(key) in line]


# -- images ------------------------------------------------------------------------------------

@pytest.mark.parametrize("data,expected", [
    (IMG, IMG),
    (IMG[:, :, 0], IMG[:, :, 0]),
    (np.transpose(IMG, (2, 0, 1)), IMG),  # CHW
    (IMG / 255.0, IMG),  # floats in 0..1
    (IMG.astype(np.int32), IMG),
    (np.dstack([IMG, np.full(IMG.shape[:2], 200, np.uint8)]), None),  # RGBA
    ([[0, 255], [255, 0]], np.array([[0, 255], [255, 0]], np.uint8)),
], ids=["hwc", "hw", "chw", "float", "int32", "rgba", "lists"])
def test_image_arrays_round_trip(data, expected):
    r = logged({"img": wandb.Image(data, caption="c")})
    [item] = r.media("img")
    expected = np.asarray(data) if expected is None else expected
    assert item.kind == "image" and item.step == 0 and item.caption == "c"
    assert (item.load() == expected).all() and item.load().shape == expected.shape
    assert (item.ref["width"], item.ref["height"]) == (expected.shape[1], expected.shape[0])
    assert item.ref["format"] == "png" and item.path.suffix == ".png"
    assert item.ref["path"].startswith("media/images/")
    assert item.ref["size"] == item.path.stat().st_size


def test_image_from_pil_torch_and_mode():
    PIL = pytest.importorskip("PIL.Image")
    r = logged({"pil": wandb.Image(PIL.fromarray(IMG)),
                "gray": wandb.Image(IMG, mode="L"),
                "again": wandb.Image(wandb.Image(IMG), caption="copy")})
    assert (r.media("pil")[0].load() == IMG).all()
    gray = r.media("gray")[0].load()
    assert gray.shape == IMG.shape[:2]
    assert (np.asarray(PIL.fromarray(IMG).convert("L")).astype(int) - gray).max() <= 1
    assert (r.media("again")[0].load() == IMG).all() and r.media("again")[0].caption == "copy"


@pytest.mark.slow  # importing torch takes seconds
def test_image_from_a_torch_tensor_is_chw():
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(np.transpose(IMG, (2, 0, 1)).copy()).float() / 255
    r = logged({"t": wandb.Image(t)})
    assert (r.media("t")[0].load() == IMG).all()


def test_image_files_keep_their_bytes_and_size(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    jpg = tmp_path / "photo.jpg"
    PIL.fromarray(IMG).save(jpg, quality=90)
    r = logged({"photo": wandb.Image(str(jpg), caption="cam")})
    [item] = r.media("photo")
    assert item.ref["format"] == "jpg" and item.path.suffix == ".jpg"
    assert item.path.read_bytes() == jpg.read_bytes()
    assert (item.ref["width"], item.ref["height"]) == (10, 12)
    assert item.load().shape == IMG.shape


def test_image_file_size_without_pil(tmp_path):
    from nbtracker.sdk.media.base import image_size, png_bytes

    PIL = pytest.importorskip("PIL.Image")
    for fmt in ("JPEG", "GIF", "PNG", "BMP", "WEBP"):
        buf = io.BytesIO()
        PIL.fromarray(IMG).save(buf, format=fmt)
        assert image_size(buf.getvalue()[:65536]) == (10, 12), fmt
    assert image_size(png_bytes(IMG)) == (10, 12)


def _png_with_every_filter(px: np.ndarray) -> bytes:
    """A PNG of RGB `px` whose row y is filtered with type y % 5 (None, Sub, Up, Average,
    Paeth), as libpng may write them."""
    import struct
    import zlib

    h, w, ch = px.shape
    rows = px.reshape(h, -1).astype(int)
    out = b""
    for y in range(h):
        f, cur = y % 5, rows[y]
        prev = rows[y - 1] if y else np.zeros_like(cur)
        enc = []
        for x in range(w * ch):
            a = cur[x - ch] if x >= ch else 0
            b, c = prev[x], (prev[x - ch] if x >= ch else 0)
            p = a + b - c
            paeth = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else (
                b if abs(p - b) <= abs(p - c) else c)
            pred = [0, a, b, (a + b) // 2, paeth][f]
            enc.append((cur[x] - pred) % 256)
        out += bytes([f] + enc)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(out)) + chunk(b"IEND", b""))


def test_pngs_with_every_row_filter_decode(tmp_path):
    """PNGs written by other tools (rows filtered Sub, Up, Average, Paeth) read back exactly,
    with Pillow or without it."""
    from nbtracker.store.media import decode_png

    path = tmp_path / "filtered.png"
    path.write_bytes(_png_with_every_filter(IMG))
    assert (decode_png(path.read_bytes()) == IMG).all()  # the standard library's way
    r = logged({"png": wandb.Image(str(path))})
    assert (r.media("png")[0].load() == IMG).all() and r.media("png")[0].ref["width"] == 10


def test_masks_and_boxes_are_stored():
    mask = (RNG.random((12, 10)) * 3).astype(int)
    boxes = [{"position": {"minX": 1, "maxX": 5, "minY": 2, "maxY": 8}, "class_id": 1,
              "box_caption": "cat", "scores": {"p": np.float32(0.5)}},
             {"position": {"middle": [4, 4], "width": 2, "height": 3}, "class_id": 2}]
    r = logged({"seg": wandb.Image(IMG, masks={"pred": {"mask_data": mask,
                                                        "class_labels": {0: "bg", 1: "cat"}}},
                                   boxes={"pred": {"box_data": boxes,
                                                   "class_labels": {1: "cat", 2: "dog"}}})})
    [item] = r.media("seg")
    m = item.masks["pred"]
    assert (m.load() == mask).all() and m.path.is_file()
    assert item.ref["masks"]["pred"]["class_labels"] == {"0": "bg", "1": "cat"}
    assert item.boxes["pred"]["box_data"][0]["scores"] == {"p": 0.5}
    assert item.boxes["pred"]["box_data"][1]["position"]["middle"] == [4, 4]
    assert item.boxes["pred"]["class_labels"] == {"1": "cat", "2": "dog"}


def test_the_same_image_logged_100_times_is_one_file():
    run = wandb.init(project="media")
    for _ in range(100):
        wandb.log({"img": wandb.Image(IMG), "copy": wandb.Image(IMG.copy())})
    run.finish()
    files = list((Path(run.storage_dir) / "media").rglob("*.png"))
    assert len(files) == 1
    items = wandb.Api().run(run.path).media("img")
    assert [i.step for i in items] == list(range(100))
    assert {i.path for i in items} == set(files)


# -- histograms, html, plotly ---------------------------------------------------------------

def test_histograms_round_trip():
    values = RNG.normal(size=1000)
    counts, edges = np.histogram(values, bins=10)
    r = logged({"h": wandb.Histogram(values), "np": wandb.Histogram(np_histogram=(counts, edges)),
                "many": wandb.Histogram(values, num_bins=10_000),
                "wide": wandb.Histogram(np_histogram=(np.ones(1000), np.arange(1001.0)))})
    v, b = r.media("h")[0].load()
    c64, e64 = np.histogram(values, bins=64)
    assert (v == c64).all() and np.allclose(b, e64) and r.media("h")[0].path is None
    v, b = r.media("np")[0].load()
    assert (v == counts).all() and np.allclose(b, edges)
    assert len(r.media("many")[0].load()[0]) == 512  # at most 512 bins, as wandb
    v, b = r.media("wide")[0].load()
    assert len(v) == 500 and v.sum() == 1000 and b[0] == 0 and b[-1] == 1000


def test_more_than_512_bins_is_one_warning_and_512_bins(capsys):
    values = RNG.normal(size=5000)
    run = wandb.init(project="media")
    for i in range(3):
        wandb.log({"h": wandb.Histogram(values, num_bins=1000), "fine": wandb.Histogram(
            values, num_bins=512), "loss": i})
    run.finish()
    err = capsys.readouterr().err
    [line] = warnings_about(err, "h")
    assert "num_bins=1000" in line and "512" in line
    assert not warnings_about(err, "fine")
    r = wandb.Api().run(run.path)
    v, b = r.media("h")[-1].load()
    c, e = np.histogram(values, bins=512)
    assert (v == c).all() and np.allclose(b, e) and r.history()["loss"].tolist() == [0, 1, 2]


def test_html_from_text_path_and_file(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<h1>from a file</h1>")
    r = logged({"s": wandb.Html("<p>hi</p>"), "p": wandb.Html(str(page)),
                "f": wandb.Html(io.StringIO("<i>stream</i>"))})
    assert r.media("s")[0].load() == "<p>hi</p>"
    assert r.media("p")[0].load() == "<h1>from a file</h1>"
    assert r.media("f")[0].load() == "<i>stream</i>"
    assert r.media("s")[0].ref["size"] == 9


@pytest.mark.slow  # importing pyplot takes seconds
def test_matplotlib_figures_log_as_images():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)
    ax.plot([0, 1, 2], [1, 0, 1])
    r = logged({"fig": fig, "wrapped": wandb.Image(fig), "plt": plt})
    for key in ("fig", "wrapped", "plt"):
        [item] = r.media(key)
        assert item.kind == "image" and item.ref["format"] == "png"
        px = item.load()
        assert px.ndim == 3 and px.shape[:2] == (item.ref["height"], item.ref["width"])
        assert 0 < px.shape[1] <= 110  # bbox tight: at most the figure's 100 px
    assert r.media("fig")[0].path == r.media("wrapped")[0].path  # the same drawing, one file
    plt.close(fig)


def test_plotly_figures_log_as_their_json():
    go = pytest.importorskip("plotly.graph_objects")
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2], name="s"))
    r = logged({"direct": fig, "wrapped": wandb.Plotly(fig)})
    for key in ("direct", "wrapped"):
        [item] = r.media(key)
        assert item.kind == "plotly" and item.ref["_type"] == "plotly-file"
        assert item.load() == json.loads(fig.to_json())
        assert item.load()["data"][0]["y"] == [3, 1, 2]


# -- tables ----------------------------------------------------------------------------------

def test_table_with_image_cells_round_trips():
    imgs = [RNG.integers(0, 256, size=(4, 4), dtype=np.uint8) for _ in range(3)]
    t = wandb.Table(columns=["id", "image", "pred", "meta"])
    for i, im in enumerate(imgs):
        t.add_data(i, wandb.Image(im), ["cat", "dog", "cow"][i], {"score": i / 2})
    t.add_data(3, wandb.Image(imgs[0]), "cat", None)  # the same image again: one file
    t.add_column("ok", [True, False, True, True])
    assert t.get_column("id") == [0, 1, 2, 3] and list(t.get_dataframe().columns)[-1] == "ok"
    r = logged({"preds": t})
    [item] = r.media("preds")
    assert item.ref["format"] == "json" and item.ref["nrows"] == 4 and item.ref["ncols"] == 5
    assert item.ref["columns"] == ["id", "image", "pred", "meta", "ok"]
    assert len(item.ref["refs"]) == 3
    df = item.load()
    assert df["id"].tolist() == [0, 1, 2, 3] and df["pred"].tolist() == ["cat", "dog", "cow", "cat"]
    assert df["meta"].tolist()[:3] == [{"score": 0.0}, {"score": 0.5}, {"score": 1.0}]
    assert df["ok"].tolist() == [True, False, True, True]
    cells = df["image"].tolist()
    for cell, im in zip(cells, imgs + imgs[:1]):
        assert cell.kind == "image" and (cell.load() == im).all()
    assert cells[0].path == cells[3].path


def test_table_from_a_dataframe():
    df = pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [0.5, np.nan]})
    r = logged({"t": wandb.Table(dataframe=df), "u": wandb.Table(data=df)})
    for key in ("t", "u"):
        out = r.media(key)[0].load()
        assert out["a"].tolist() == [1, 2] and out["b"][0] == "x" and pd.isna(out["b"][1])
        assert out["c"].tolist()[0] == 0.5 and out["c"].isna().tolist() == [False, True]


def test_a_large_table_is_parquet_and_round_trips():
    pytest.importorskip("pyarrow")
    n = 1500
    thumbs = [RNG.integers(0, 256, size=(3, 3, 3), dtype=np.uint8) for _ in range(2)]
    t = wandb.Table(columns=["i", "x", "name", "tags", "img", "mixed"])
    for i in range(n):
        t.add_data(i, i / 7, f"row {i}", [i, "t"], wandb.Image(thumbs[i % 2]) if i < 4 else None,
                   i if i % 2 else f"s{i}")
    r = logged({"big": t})
    [item] = r.media("big")
    assert item.ref["format"] == "parquet" and item.path.suffix == ".parquet"
    assert item.ref["nrows"] == n and len(item.ref["refs"]) == 2
    df = item.load()
    assert list(df.columns) == ["i", "x", "name", "tags", "img", "mixed"]
    assert df["i"].tolist() == list(range(n))
    assert df["x"].tolist() == [i / 7 for i in range(n)]
    assert df["name"].tolist() == [f"row {i}" for i in range(n)]
    assert df["tags"].tolist() == [[i, "t"] for i in range(n)]
    assert df["mixed"].tolist() == [i if i % 2 else f"s{i}" for i in range(n)]
    assert (df["img"][3].load() == thumbs[1]).all() and df["img"][4] is None


def test_ragged_table_rows_warn_once_and_lose_nothing(capsys):
    t = wandb.Table(columns=["a", "b", "c"], data=[[1, 2, 3], [4, 5]])
    t.add_data(6, 7, 8, 9)
    run = wandb.init(project="media")
    wandb.log({"t": t, "loss": 0.5})
    wandb.log({"t": t, "loss": 0.25})
    run.finish()
    err = capsys.readouterr().err
    assert len(warnings_about(err, "t")) == 1
    assert "padded with None" in err and "columns were added" in err
    r = wandb.Api().run(run.path)
    df = r.media("t")[0].load()
    assert list(df.columns) == ["a", "b", "c", "col3"]
    assert df.astype(object).where(df.notna(), None).values.tolist() == [
        [1, 2, 3, None], [4, 5, None, None], [6, 7, 8, 9]]
    assert r.history()["loss"].tolist() == [0.5, 0.25]


# -- video, audio, 3-d -------------------------------------------------------------------------

def test_video_arrays_become_animated_pngs():
    frames = RNG.integers(0, 256, size=(5, 8, 6, 3), dtype=np.uint8)  # T, H, W, C
    gray = RNG.integers(0, 256, size=(3, 1, 4, 4), dtype=np.uint8)  # T, C, H, W
    r = logged({"thwc": wandb.Video(frames, fps=10, caption="run"),
                "tchw": wandb.Video(np.transpose(frames, (0, 3, 1, 2)) / 255.0),
                "gray": wandb.Video(gray)})
    [v] = r.media("thwc")
    assert v.ref["format"] == "png" and v.ref["fps"] == 10 and v.ref["frames"] == 5
    assert (v.ref["width"], v.ref["height"]) == (6, 8) and v.caption == "run"
    assert (v.load() == frames).all()
    [w] = r.media("tchw")
    assert (w.load() == frames).all() and w.ref["fps"] == 4  # wandb's default
    assert (r.media("gray")[0].load() == np.transpose(gray, (0, 2, 3, 1))).all()
    data = v.path.read_bytes()  # an animated PNG that loops, 100 ms a frame
    assert b"acTL" in data and data.count(b"fcTL") == 5


def test_video_arrays_as_gif_when_asked(capsys):
    pytest.importorskip("PIL.Image")
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    frames = colours[RNG.integers(0, 4, size=(4, 8, 6))]  # T, H, W, C: four colours
    frames[np.arange(4), 0, 0] = colours[np.arange(4)]  # each frame unlike the one before
    r = logged({"anim": wandb.Video(np.transpose(frames, (0, 3, 1, 2)), fps=5, format="gif",
                                    caption="c")})
    assert not warnings_about(capsys.readouterr().err, "anim")
    [v] = r.media("anim")
    assert v.ref["format"] == "gif" and v.path.suffix == ".gif" and v.ref["frames"] == 4
    assert (v.ref["width"], v.ref["height"], v.ref["fps"]) == (6, 8, 5) and v.caption == "c"
    data = v.path.read_bytes()
    assert data[:6] == b"GIF89a" and b"NETSCAPE2.0" in data  # loops
    assert (v.load() == frames).all()


def test_video_array_formats_not_made_here_are_one_warning_and_an_animated_png(
        capsys, monkeypatch):
    frames = RNG.integers(0, 256, size=(3, 5, 6, 3), dtype=np.uint8)  # T, H, W, C
    run = wandb.init(project="media")
    for i in range(2):
        wandb.log({"mp4": wandb.Video(frames, format="mp4"), "loss": i})
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # Pillow not installed
    wandb.log({"gif": wandb.Video(frames, format="gif"), "loss": 2})
    run.finish()
    err = capsys.readouterr().err
    [mp4] = warnings_about(err, "mp4")
    assert "'mp4'" in mp4 and "ffmpeg" in mp4 and "animated PNG" in mp4
    [gif] = warnings_about(err, "gif")
    assert "Pillow" in gif and "animated PNG" in gif
    r = wandb.Api().run(run.path)
    assert r.history()["loss"].tolist() == [0, 1, 2]
    for key in ("mp4", "gif"):
        v = r.media(key)[-1]
        assert v.ref["format"] == "png" and v.path.suffix == ".png"
        assert (v.load() == frames).all()


def test_video_files_are_kept_as_given(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    mp4 = tmp_path / "clip.mp4"
    mp4.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(100))
    frames = [PIL.fromarray(np.full((6, 8, 3), 40 * i, np.uint8)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100)
    r = logged({"mp4": wandb.Video(str(mp4), fps=30), "gif": wandb.Video(str(gif))})
    [m] = r.media("mp4")
    assert m.ref["format"] == "mp4" and m.path.read_bytes() == mp4.read_bytes()
    [g] = r.media("gif")
    assert g.ref["format"] == "gif" and (g.ref["width"], g.ref["height"]) == (8, 6)
    out = g.load()
    assert out.shape == (3, 6, 8, 3) and abs(int(out[2, 0, 0, 0]) - 80) <= 2


def test_audio_round_trips(tmp_path):
    t = np.linspace(0, 1, 8000, endpoint=False)
    mono = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    stereo = (np.stack([mono, -mono], axis=1) * 32767).astype(np.int16)
    wav = tmp_path / "in.wav"
    import wave

    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((mono * 32767).astype("<i2").tobytes())
    r = logged({"mono": wandb.Audio(mono, sample_rate=8000, caption="A4"),
                "stereo": wandb.Audio(stereo, sample_rate=8000),
                "file": wandb.Audio(str(wav))})
    [a] = r.media("mono")
    samples, rate = a.load()
    assert rate == 8000 and samples.dtype == np.float32 and samples.shape == mono.shape
    assert np.abs(samples - mono).max() < 1 / 16000
    assert a.ref["duration"] == 1.0 and a.ref["channels"] == 1 and a.caption == "A4"
    samples, _ = r.media("stereo")[0].load()
    assert samples.shape == (8000, 2) and (np.rint(samples * 32768).astype(np.int16) == stereo).all()
    [f] = r.media("file")
    assert f.path.read_bytes() == wav.read_bytes() and f.ref["sample_rate"] == 16000
    assert f.ref["duration"] == 0.5


def test_object3d_point_clouds_scenes_and_files(tmp_path):
    xyz = RNG.normal(size=(50, 3))
    cat = np.hstack([xyz, RNG.integers(1, 4, size=(50, 1))])
    rgb = np.hstack([xyz, RNG.integers(0, 256, size=(50, 3))])
    boxes = [{"corners": [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 0, 1],
                          [0, 1, 1], [1, 1, 1]], "label": "car", "color": [255, 0, 0]}]
    obj = tmp_path / "cube.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    r = logged({"xyz": wandb.Object3D(xyz), "cat": wandb.Object3D(cat),
                "rgb": wandb.Object3D.from_numpy(rgb),
                "scene": wandb.Object3D({"type": "lidar/beta", "points": xyz, "boxes": boxes}),
                "obj": wandb.Object3D.from_file(str(obj))})
    for key, pts in (("xyz", xyz), ("cat", cat), ("rgb", rgb), ("scene", xyz)):
        [item] = r.media(key)
        assert item.kind == "object3d" and item.ref["format"] == "pts.json"
        assert item.ref["npoints"] == 50 and np.allclose(item.load(), pts)
    doc = json.loads(r.media("scene")[0].path.read_text())
    assert doc["type"] == "lidar/beta" and doc["boxes"] == boxes
    [o] = r.media("obj")
    assert o.ref["format"] == "obj" and o.load() == o.path and o.path.read_text() == obj.read_text()


# -- lists, history, bad input -----------------------------------------------------------------

def test_a_list_of_media_under_one_key():
    imgs = [RNG.integers(0, 256, size=(5, 5, 3), dtype=np.uint8) for _ in range(3)]
    run = wandb.init(project="media")
    wandb.log({"examples": [wandb.Image(im, caption=str(i)) for i, im in enumerate(imgs)]})
    wandb.log({"examples": (wandb.Image(imgs[2]), wandb.Histogram([1, 2, 3]))})
    run.finish()
    r = wandb.Api().run(run.path)
    refs = r.history()["examples"].tolist()
    assert refs[0]["_type"] == "media-list" and len(refs[0]["items"]) == 3
    items = r.media("examples")
    assert [(i.step, i.index, i.kind) for i in items] == [
        (0, 0, "image"), (0, 1, "image"), (0, 2, "image"), (1, 0, "image"), (1, 1, "histogram")]
    for item, im in zip(items, imgs + imgs[2:]):
        assert (item.load() == im).all()
    assert [i.caption for i in items[:3]] == ["0", "1", "2"]


def test_history_gives_the_references():
    r = logged({"img": wandb.Image(IMG), "v": wandb.Video(np.zeros((2, 3, 4, 4), np.uint8))})
    row = r.history().iloc[0]
    assert row["img"]["_type"] == "image-file" and row["img"]["sha256"]
    assert row["v"]["_type"] == "video-file" and row["v"]["path"].startswith("media/videos/")
    assert r.summary["img"]["sha256"] == row["img"]["sha256"]


BAD = {
    "image shape": (lambda tmp: wandb.Image(np.zeros((2, 3, 4, 5))), "shape"),
    "image dtype": (lambda tmp: wandb.Image(np.array([["a", "b"]])), "numbers"),
    "image path": (lambda tmp: wandb.Image(str(tmp / "missing.png")), "does not exist"),
    "histogram nan": (lambda tmp: wandb.Histogram([np.nan, np.nan]), "NaN"),
    "histogram empty": (lambda tmp: wandb.Histogram([]), "empty"),
    "array of nan": (lambda tmp: np.full(100, np.nan), "NaN"),
    "html path": (lambda tmp: wandb.Html(str(tmp / "gone.html")), "does not exist"),
    "video shape": (lambda tmp: wandb.Video(np.zeros((4, 4))), "shape"),
    "video path": (lambda tmp: wandb.Video(str(tmp / "gone.mp4")), "does not exist"),
    "audio rate": (lambda tmp: wandb.Audio(np.zeros(100)), "sample_rate"),
    "object3d shape": (lambda tmp: wandb.Object3D(np.zeros((5, 5))), "shape"),
    "object3d file": (lambda tmp: wandb.Object3D(str(tmp / "a.txt")), "does not exist"),
    "table ragged": (lambda tmp: wandb.Table(columns=["a", "b"], data=[[1]]), "padded"),
    "mask": (lambda tmp: wandb.Image(IMG, masks={"m": {"mask_data": np.zeros((2, 2, 2))}}),
             "mask_data"),
    "list item": (lambda tmp: [wandb.Image(IMG), wandb.Image(np.zeros((1, 2, 3, 4)))], "item 1"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_one_warning_and_the_rest_is_kept(name, capsys, tmp_path):
    make, needle = BAD[name]
    run = wandb.init(project="media")
    for i in range(3):
        wandb.log({"bad": make(tmp_path), "loss": i / 4, "img": wandb.Image(IMG)})
    run.finish()
    err = capsys.readouterr().err
    lines = warnings_about(err, "bad")
    assert len(lines) == 1 and needle in lines[0], err
    assert len(err.strip().splitlines()) == 3  # start line, the warning, finish line
    r = wandb.Api().run(run.path)
    assert r.history()["loss"].tolist() == [0, 0.25, 0.5]
    assert len(r.media("img")) == 3


def test_nothing_heavy_is_imported_by_media_classes():
    import subprocess
    import sys

    code = ("import sys, nbtracker; nbtracker.Image; nbtracker.Video; nbtracker.Object3D; "
            "nbtracker.Classes; nbtracker.data_types.ImageMask; nbtracker.data_types.Table; "
            "print(sorted(m for m in ('numpy', 'PIL', 'matplotlib', 'plotly', 'pyarrow', "
            "'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    assert out.stdout.strip() == "[]", out.stderr


# -- a team server ----------------------------------------------------------------------------

@pytest.mark.slow  # starts a server
def test_media_round_trip_through_a_team_server(monkeypatch, tmp_path):
    pytest.importorskip("fastapi")
    from serverproc import ServerProcess

    with ServerProcess(tmp_path / "server") as srv:
        key = srv.admin_key
        monkeypatch.setenv("NBTRACKER_BASE_URL", srv.url)
        monkeypatch.setenv("NBTRACKER_API_KEY", key)
        cells = [RNG.integers(0, 256, size=(4, 5, 3), dtype=np.uint8) for _ in range(2)]
        mask = np.eye(12, 10, dtype=np.uint8)
        t = wandb.Table(columns=["i", "img"], data=[[i, wandb.Image(c)] for i, c in enumerate(cells)])
        run = wandb.init(project="team")
        assert not run.offline
        wandb.log({"img": wandb.Image(IMG, masks={"m": {"mask_data": mask}}), "preds": t,
                   "list": [wandb.Image(cells[1]), wandb.Audio(np.zeros(10), sample_rate=10)]})
        run.finish(timeout=30)
        assert run.upload_status()["state"] == "synced"
        # another machine: an empty store, everything comes from the server
        monkeypatch.setenv("NBTRACKER_DIR", str(tmp_path / "elsewhere"))
        api = wandb.Api()
        assert api.remote
        r = api.run(f"team/{run.id}")
        [img] = r.media("img")
        assert not img.path.is_relative_to(run.storage_dir)
        assert (img.load() == IMG).all() and (img.masks["m"].load() == mask).all()
        df = r.media("preds")[0].load()
        for cell, c in zip(df["img"], cells):
            assert not cell.path.is_relative_to(run.storage_dir)
            assert (cell.load() == c).all()
        listed = r.media("list")
        assert (listed[0].load() == cells[1]).all() and listed[1].load()[1] == 10
