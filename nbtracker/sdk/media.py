"""Media values for `log()`: Image, Histogram, Html, Table.

A media object is built anywhere (no run needed); when logged, it writes its payload into the
run's `media/` folder (content-addressed names) and the history row holds a small reference:

    {"_type": "image-file", "path": "media/images/<sha256>.png", "sha256": ..., "width": 28, ...}

Histograms are small and stay inline: {"_type": "histogram", "bins": [...], "values": [...]}.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class Media:
    _nbtracker_media = True

    def bind(self, media_dir: Path) -> dict:  # pragma: no cover - every subclass overrides
        raise TypeError(f"{type(self).__name__} cannot be logged")


def _store(media_dir: Path, sub: str, data: bytes, ext: str) -> tuple[str, str]:
    digest = hashlib.sha256(data).hexdigest()
    folder = media_dir / sub
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{digest[:20]}.{ext}"
    path = folder / name
    if not path.exists():
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return f"media/{sub}/{name}", digest


def png_bytes(arr) -> bytes:
    """Encode a uint8 array of shape (H, W), (H, W, 1|3|4) as PNG (stdlib zlib only)."""
    import numpy as np

    a = np.ascontiguousarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    h, w = a.shape[:2]
    color = {2: 0, 3: {3: 2, 4: 6}.get(a.shape[2] if a.ndim == 3 else 0)}.get(a.ndim)
    if color is None:
        raise ValueError(f"cannot make an image of an array of shape {arr.shape}")
    raw = np.concatenate([np.zeros((h, 1), np.uint8), a.reshape(h, -1)], axis=1).tobytes()

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(
            ">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _image_array(data: Any):
    import numpy as np

    if hasattr(data, "detach"):  # torch tensor, CHW
        data = data.detach().cpu().numpy()
    a = np.asarray(data)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))
    if a.ndim not in (2, 3):
        raise ValueError(f"an image needs a 2-d or 3-d array, not shape {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        if a.size and np.nanmax(a) <= 1.0 and np.nanmin(a) >= 0.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    return a


class Image(Media):
    """An image from a numpy array / torch tensor (HW, HWC or CHW), a PIL image or a file path.

    >>> nbtracker.log({"samples": nbtracker.Image(batch[0], caption="epoch 3")})
    """

    def __init__(self, data_or_path: Any, mode: str | None = None, caption: str | None = None,
                 **kwargs: Any):
        self.caption = caption
        self._path: Path | None = None
        self._bytes: bytes | None = None
        self._ext = "png"
        self.width = self.height = None
        if isinstance(data_or_path, (str, os.PathLike)):
            self._path = Path(data_or_path)
            if not self._path.is_file():
                raise FileNotFoundError(f"image file {self._path} does not exist")
            self._ext = self._path.suffix.lstrip(".").lower() or "bin"
        elif hasattr(data_or_path, "save") and hasattr(data_or_path, "size") and not hasattr(
                data_or_path, "ndim"):  # PIL image
            import io

            buf = io.BytesIO()
            data_or_path.save(buf, format="PNG")
            self._bytes = buf.getvalue()
            self.width, self.height = data_or_path.size
        else:
            a = _image_array(data_or_path)
            self.height, self.width = int(a.shape[0]), int(a.shape[1])
            self._bytes = png_bytes(a)

    def bind(self, media_dir: Path) -> dict:
        data = self._bytes if self._bytes is not None else self._path.read_bytes()
        rel, digest = _store(media_dir, "images", data, self._ext)
        ref = {"_type": "image-file", "path": rel, "sha256": digest, "format": self._ext,
               "size": len(data)}
        if self.width is not None:
            ref["width"], ref["height"] = self.width, self.height
        if self.caption is not None:
            ref["caption"] = str(self.caption)
        return ref


class Histogram(Media):
    """A histogram of values, or one computed elsewhere (`np_histogram=(counts, edges)`).

    >>> nbtracker.log({"weights": nbtracker.Histogram(layer.weight.detach())})
    """

    def __init__(self, sequence: Any = None, np_histogram: tuple | None = None,
                 num_bins: int = 64):
        import numpy as np

        if np_histogram is not None:
            counts, edges = np_histogram
        else:
            if hasattr(sequence, "detach"):
                sequence = sequence.detach().cpu().numpy()
            a = np.asarray(sequence, dtype=np.float64).ravel()
            a = a[np.isfinite(a)]
            counts, edges = np.histogram(a, bins=min(int(num_bins), 512))
        self.values = [int(c) if float(c).is_integer() else float(c) for c in np.asarray(counts)]
        self.bins = [float(e) for e in np.asarray(edges)]
        if len(self.bins) != len(self.values) + 1:
            raise ValueError("a histogram needs one more bin edge than counts")

    def bind(self, media_dir: Path) -> dict:
        return {"_type": "histogram", "bins": self.bins, "values": self.values}


class Html(Media):
    """An HTML document (a string or an open file). It is stored as given; viewers show it in a
    sandboxed frame."""

    def __init__(self, data: Any, inject: bool = True):
        if hasattr(data, "read"):
            data = data.read()
        if not isinstance(data, str):
            raise TypeError(f"Html needs a string or a file, not {type(data).__name__}")
        self.html = data

    def bind(self, media_dir: Path) -> dict:
        rel, digest = _store(media_dir, "html", self.html.encode("utf-8"), "html")
        return {"_type": "html-file", "path": rel, "sha256": digest}


class Table(Media):
    """A table of rows: `Table(columns=[...], data=[[...], ...])` or `Table(dataframe=df)`.

    >>> t = nbtracker.Table(columns=["id", "pred"]); t.add_data(1, "cat"); nbtracker.log({"p": t})
    """

    def __init__(self, columns: Sequence[str] | None = None, data: Sequence | None = None,
                 dataframe: Any = None, **kwargs: Any):
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.astype(object).where(dataframe.notna(), None).values.tolist()
        self.columns = list(columns) if columns is not None else (
            [f"col{i}" for i in range(len(data[0]))] if data else [])
        self.data = [list(r) for r in (data or [])]
        for r in self.data:
            self._check(r)

    def _check(self, row: list) -> None:
        if len(row) != len(self.columns):
            raise ValueError(f"row has {len(row)} values but the table has "
                             f"{len(self.columns)} columns")

    def add_data(self, *values: Any) -> None:
        row = list(values)
        self._check(row)
        self.data.append(row)

    def bind(self, media_dir: Path) -> dict:
        body = json.dumps({"columns": self.columns, "data": self.data}, default=_jsonable).encode("utf-8")
        rel, digest = _store(media_dir, "tables", body, "table.json")
        return {"_type": "table-file", "path": rel, "sha256": digest,
                "ncols": len(self.columns), "nrows": len(self.data)}


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return v.item()
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, Media):
        return {"_type": type(v).__name__.lower()}
    return str(v)
