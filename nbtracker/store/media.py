"""Reading logged media back: the references in history rows (written by `sdk.media`, formats
in its module docstrings) as `MediaItem`s whose `load()` gives the data.

    >>> items = nbtracker.Api().run("mnist/abc123").media("samples")
    >>> items[-1].step, items[-1].path, items[-1].load().shape
    (99, PosixPath('.../media/images/3f2a….png'), (28, 28, 3))

What `load()` gives, by `kind`: image → uint8 array (H, W) or (H, W, C); histogram →
(values, bins) arrays; table → pandas DataFrame (media cells as MediaItems); chart (a table
logged by `nbtracker.plot`, its reference holding the chart's spec under "chart") → the table's
DataFrame, the spec being `.spec`; audio → (float32
samples in -1..1, shape (n,) or (n, channels), sample_rate); video → uint8 frames (T, H, W, C);
object3d → float array of points (pts.json) or the file's path (obj/gltf/glb); html → str;
plotly → dict; classes → the class set, a list of {"id", "name"} dicts.

Files are found through a `fetch(ref) -> Path` hook (the Api's: a local run's file, or a team
server's blob fetched into the cache), so this module reads only what it is given. PNG (and the
animated PNGs of videos) and WAV are decoded with the standard library and numpy; PIL, when
installed, reads other image formats and GIF videos.
"""

from __future__ import annotations

import json
import struct
import wave
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

KINDS = {"image-file": "image", "histogram": "histogram", "html-file": "html",
         "table-file": "table", "video-file": "video", "audio-file": "audio",
         "object3D-file": "object3d", "plotly-file": "plotly", "classes": "classes"}
ENCODING_KEY = b"nbtracker.encoding"  # Parquet field metadata of JSON-encoded columns

Fetch = Callable[[dict], Path]


def is_ref(v: Any) -> bool:
    """Whether `v` is a media reference a history row holds (a media list included)."""
    return isinstance(v, dict) and (v.get("_type") in KINDS or v.get("_type") == "media-list")


class MediaItem:
    """One logged media value: `.step`, `.ref` (the reference dict), `.kind` ("image", "table",
    "chart", ...), `.index` (its place in a list of media logged under one key, else None),
    `.path` (the file, fetched for a run on a team server; None for inline histograms) and
    `.load()`; a chart's `.spec` and `.table`."""

    def __init__(self, step: int | None, ref: dict, fetch: Fetch, index: int | None = None):
        self.step = step
        self.ref = ref
        self.kind = KINDS.get(ref.get("_type"), str(ref.get("_type")))
        if self.kind == "table" and isinstance(ref.get("chart"), dict):
            self.kind = "chart"
        self.index = index
        self._fetch = fetch
        self._path: Path | None = None

    @property
    def path(self) -> Path | None:
        if self._path is None and "path" in self.ref and "sha256" in self.ref:
            self._path = Path(self._fetch(self.ref))
        return self._path

    @property
    def caption(self) -> str | None:
        return self.ref.get("caption")

    @property
    def format(self) -> str | None:
        return self.ref.get("format")

    @property
    def spec(self) -> dict | None:
        """A chart's spec (`nbtracker.plot`): {"preset", "kind", "fields", "string_fields",
        "split_table"}; None for other media."""
        chart = self.ref.get("chart")
        return chart if isinstance(chart, dict) else None

    @property
    def table(self):
        """A table's or a chart's data as a pandas DataFrame (`load()`)."""
        if self.kind not in ("table", "chart"):
            raise ValueError(f"a {self.kind} has no table")
        return self.load()

    @property
    def masks(self) -> dict[str, MediaItem]:
        """An image's segmentation masks: name -> MediaItem whose load() is the 2-d class-id
        array (class labels in `.ref["class_labels"]`)."""
        return {name: MediaItem(self.step, {"_type": "image-file", "format": "png", **m},
                                self._fetch)
                for name, m in (self.ref.get("masks") or {}).items()}

    @property
    def boxes(self) -> dict:
        return self.ref.get("boxes") or {}

    def load(self) -> Any:
        """The data (see the module docstring for what each kind gives)."""
        loader = _LOADERS.get(self.kind)
        if loader is None:
            raise ValueError(f"cannot load media of type {self.ref.get('_type')!r}")
        return loader(self)

    def __repr__(self) -> str:
        where = f" [{self.index}]" if self.index is not None else ""
        return f"<MediaItem {self.kind} step={self.step}{where} {self.ref.get('path', '')}>"


def media_items(rows: Iterable[tuple[int, Any]], fetch: Fetch) -> list[MediaItem]:
    """MediaItems of (step, value) pairs in step order; a media list gives one per item."""
    out = []
    for step, v in sorted(rows, key=lambda sv: sv[0]):
        if not is_ref(v):
            continue
        if v["_type"] == "media-list":
            out.extend(MediaItem(step, r, fetch, i) for i, r in enumerate(v.get("items") or [])
                       if is_ref(r))
        else:
            out.append(MediaItem(step, v, fetch))
    return out


# -- loaders -----------------------------------------------------------------------------------

def _load_image(item: MediaItem):
    data = item.path.read_bytes()
    if data.startswith(_PNG_SIG):
        try:  # byte by byte filters (libpng's, matplotlib's): Pillow is faster when installed
            return decode_png(data, slow=not _has_pil())
        except ValueError:
            pass
    return _pil_pixels(item.path)


def _load_histogram(item: MediaItem):
    import numpy as np

    return np.asarray(item.ref["values"]), np.asarray(item.ref["bins"], dtype=np.float64)


def _load_classes(item: MediaItem) -> list:
    return list(item.ref.get("class_set") or [])


def _load_html(item: MediaItem) -> str:
    return item.path.read_text(encoding="utf-8")


def _load_plotly(item: MediaItem) -> dict:
    return json.loads(item.path.read_text(encoding="utf-8"))


def _load_object3d(item: MediaItem):
    import numpy as np

    if item.ref.get("format") != "pts.json":
        return item.path
    doc = json.loads(item.path.read_text(encoding="utf-8"))
    return np.asarray(doc.get("points", []), dtype=np.float64)


def _load_audio(item: MediaItem):
    import numpy as np

    try:
        w = wave.open(str(item.path), "rb")
    except (wave.Error, EOFError) as e:
        raise ValueError(f"{item.path.name} is not a PCM WAV file ({e}); read it from .path") from None
    with w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width == 1:
        a = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
    elif width in (2, 4):
        dt = np.dtype("<i2" if width == 2 else "<i4")
        a = np.frombuffer(raw, dt).astype(np.float32) / float(2 ** (8 * width - 1))
    else:
        raise ValueError(f"{width * 8}-bit WAV samples are not read here; read it from .path")
    return (a.reshape(-1, channels) if channels > 1 else a), rate


def _load_video(item: MediaItem):
    import numpy as np

    data = item.path.read_bytes()
    if data.startswith(_PNG_SIG):
        frames = decode_apng(data)
    else:
        frames = _pil_frames(item.path)
    a = np.stack(frames)
    return a[..., None] if a.ndim == 3 else a


def read_table_file(src: Path | bytes, parquet: bool, first: int | None = None,
                    spread: int | None = None) -> tuple[list[str], list[list], int]:
    """A stored table file as (columns, rows, nrows): the cells as logged, media cells as their
    reference dicts, NaN and ±inf as floats, columns by place (names may repeat). The format is
    `sdk.media.table`'s: JSON whose NaN and ±inf are null in "data" and named in "nf", or
    Parquet whose JSON-text columns say so in their field metadata (`ENCODING_KEY`). `first`
    keeps the first rows, `spread` that many rows evenly spread (the first and the last among
    them); `nrows` counts them all. The one reader of table files: `Api` (`load()`), the live
    panel and the static form."""
    from .history import spread as spread_rows

    if parquet:
        import io

        import pyarrow.parquet as pq

        f = pq.ParquetFile(io.BytesIO(src) if isinstance(src, bytes) else src)
        nrows = f.metadata.num_rows
        schema = f.schema_arrow
        if spread is not None and nrows > spread:
            t: Any = f.read().take(spread_rows(nrows, spread))
        elif first is not None:  # only the first batch is read
            t = next(f.iter_batches(batch_size=max(first, 1)), None)
            t = t.slice(0, first) if t is not None else schema.empty_table()
        else:
            t = f.read()
        cols = []
        for i in range(len(schema.names)):
            values = t.column(i).to_pylist()
            if (schema.field(i).metadata or {}).get(ENCODING_KEY) is not None:
                values = [None if v is None else json.loads(v) for v in values]
            cols.append(values)
        return list(schema.names), [list(r) for r in zip(*cols)], nrows
    doc = json.loads(src if isinstance(src, bytes) else Path(src).read_bytes())
    rows = doc.get("data") or []
    if doc.get("nf"):  # NaN and ±inf, null in JSON, named at their place
        from .recordlog import unpack

        rows = unpack(rows, doc["nf"])
    nrows = len(rows)
    if spread is not None and nrows > spread:
        rows = [rows[i] for i in spread_rows(nrows, spread)]
    elif first is not None:
        rows = rows[:first]
    return ([str(c) for c in doc.get("columns") or []],
            [list(r) if isinstance(r, list) else [r] for r in rows], nrows)


def _load_table(item: MediaItem):
    import pandas as pd

    fetch, step = item._fetch, item.step

    def cell(v: Any) -> Any:
        return MediaItem(step, v, fetch) if is_ref(v) and v["_type"] != "media-list" else v

    columns, rows, _ = read_table_file(item.path, item.ref.get("format") == "parquet")
    return pd.DataFrame([[cell(v) for v in r] for r in rows], columns=columns)


_LOADERS = {"image": _load_image, "histogram": _load_histogram, "html": _load_html,
            "plotly": _load_plotly, "object3d": _load_object3d, "audio": _load_audio,
            "video": _load_video, "table": _load_table, "chart": _load_table,
            "classes": _load_classes}


# -- PNG and APNG ------------------------------------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def _chunks(data: bytes):
    pos = 8
    while pos + 8 <= len(data):
        n, tag = struct.unpack(">I4s", data[pos:pos + 8])
        yield tag, data[pos + 8:pos + 8 + n]
        pos += 12 + n


def _unfilter(raw: bytes, h: int, w: int, ch: int, slow: bool = True):
    """PNG scanlines (8-bit samples, `ch` per pixel) back to a uint8 array (H, W, ch). The
    Average and Paeth filters go byte by byte: ValueError for them unless `slow`."""
    import numpy as np

    stride = w * ch
    rows = np.frombuffer(raw, np.uint8)[:h * (stride + 1)].reshape(h, stride + 1)
    filters, px = rows[:, 0], rows[:, 1:]
    if not filters.any():
        return px.reshape(h, w, ch).copy()
    if not slow and (filters > 2).any():
        raise ValueError("Average or Paeth filtered rows")
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(h):
        f, cur = filters[y], px[y]
        if f == 0:
            row = cur.copy()
        elif f == 1:  # Sub: running sum per channel, mod 256
            row = np.cumsum(cur.reshape(w, ch), axis=0, dtype=np.uint8).reshape(-1)
        elif f == 2:  # Up
            row = cur + prev
        else:  # Average, Paeth: each byte needs the one just decoded
            row = cur.astype(np.int32)
            p = prev.astype(np.int32)
            for x in range(stride):
                a = row[x - ch] if x >= ch else 0
                b = p[x]
                if f == 3:
                    row[x] = (row[x] + (a + b) // 2) & 0xFF
                else:
                    c = p[x - ch] if x >= ch else 0
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    row[x] = (row[x] + pred) & 0xFF
            row = row.astype(np.uint8)
        out[y] = prev = row
    return out.reshape(h, w, ch)


def _header(data: bytes) -> tuple[int, int, int]:
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if depth != 8 or color not in _CHANNELS or interlace:
        raise ValueError("only 8-bit, non-interlaced grey/RGB/RGBA PNGs are decoded here")
    return w, h, _CHANNELS[color]


def _squeeze(a):
    return a[:, :, 0] if a.shape[2] == 1 else a


def decode_png(data: bytes, slow: bool = True):
    """The pixels of a PNG (8-bit grey, grey+alpha, RGB or RGBA, not interlaced) as a uint8
    array (H, W) or (H, W, C). Raises ValueError for other PNGs (then PIL reads them), and
    for rows that must be decoded byte by byte unless `slow`."""
    if not data.startswith(_PNG_SIG):
        raise ValueError("not a PNG file")
    w, h, ch = _header(data)
    idat = b"".join(body for tag, body in _chunks(data) if tag == b"IDAT")
    return _squeeze(_unfilter(zlib.decompress(idat), h, w, ch, slow))


def decode_apng(data: bytes) -> list:
    """The frames of an animated PNG (a plain PNG is one frame), each (H, W) or (H, W, C)."""
    import numpy as np

    w, h, ch = _header(data)
    canvas = np.zeros((h, w, ch), np.uint8)
    frames, parts, ctl = [], [], None
    has_actl = False

    def flush() -> None:
        if ctl is None or not parts:
            return
        fw, fh, x, y = ctl
        canvas[y:y + fh, x:x + fw] = _unfilter(zlib.decompress(b"".join(parts)), fh, fw, ch)
        frames.append(_squeeze(canvas.copy()))

    for tag, body in _chunks(data):
        if tag == b"acTL":
            has_actl = True
        elif tag == b"fcTL":
            flush()
            parts = []
            fw, fh, x, y = struct.unpack(">IIII", body[4:20])
            ctl = (fw, fh, x, y)
        elif tag == b"IDAT":
            if ctl is None:  # a default image that is not a frame, or a plain PNG
                if not has_actl:
                    ctl = (w, h, 0, 0)
                else:
                    continue
            parts.append(body)
        elif tag == b"fdAT":
            parts.append(body[4:])
    flush()
    return frames


def _has_pil() -> bool:
    import importlib.util

    return importlib.util.find_spec("PIL") is not None


def _pil():
    try:
        from PIL import Image
    except ImportError:
        raise ValueError("reading this image format needs Pillow (pip install pillow); the file "
                         "is at .path") from None
    return Image


def _pil_array(im):
    import numpy as np

    if im.mode not in ("L", "LA", "RGB", "RGBA"):
        im = im.convert("RGBA" if "A" in im.mode or "transparency" in im.info else "RGB")
    return np.asarray(im).copy()


def _pil_pixels(path: Path):
    with _pil().open(path) as im:
        return _pil_array(im)


def _pil_frames(path: Path) -> list:
    Image = _pil()
    from PIL import ImageSequence

    try:
        with Image.open(path) as im:
            return [_pil_array(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
    except Exception as e:
        raise ValueError(f"cannot decode the frames of {path.name} here ({e}); the file is "
                         "at .path") from None
