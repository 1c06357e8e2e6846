"""What every media kind shares: the base class, content-addressed storage, array helpers and
the PNG/APNG encoder (stdlib zlib only).

A media object never raises on bad input: its constructor records the problem (`_problem`) and
`bind` raises `MediaError` with it, which `log()` turns into one warning naming the key while the
other keys of the call are logged. Problems that lose nothing important (a ragged table row,
non-finite values left out of a histogram) are `_notes`: the value is logged and `log()` warns.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

from ...store import layout


class MediaError(ValueError):
    """A media object that cannot be written (its message says why)."""


class Media:
    """Base of the values `log()` writes as files under the run's `media/` folder."""

    _nbtracker_media = True
    _problem: str | None = None
    _notes: list[str] | None = None

    def bind(self, media_dir: Path) -> dict:
        """Write the payload into `media_dir` and return the reference a history row holds."""
        if self._problem is not None:
            raise MediaError(self._problem)
        return self._bind(Path(media_dir))

    def _bind(self, media_dir: Path) -> dict:  # pragma: no cover - every subclass overrides
        raise MediaError(f"{type(self).__name__} cannot be logged")

    def _fail(self, problem: str) -> None:
        if self._problem is None:
            self._problem = problem

    def _note(self, note: str) -> None:
        if self._notes is None:
            self._notes = []
        if note not in self._notes:
            self._notes.append(note)

    def __repr__(self) -> str:
        state = f" (cannot be logged: {self._problem})" if self._problem else ""
        return f"<nbtracker.{type(self).__name__}{state}>"


def _name(digest: str, ext: str) -> str:
    return f"{digest[:20]}.{ext}"


def store_bytes(media_dir: Path, sub: str, data: bytes, ext: str) -> dict:
    """Write `data` as `media/<sub>/<first 20 hex of sha256>.<ext>` (once: the same bytes are one
    file) and return `{"path", "sha256", "size"}`."""
    return _place(media_dir, sub, hashlib.sha256(data).hexdigest(), ext, len(data),
                  lambda tmp: tmp.write_bytes(data))


def store_file(media_dir: Path, sub: str, src: Path, ext: str) -> dict:
    """`store_bytes` for a file given by path, streamed (videos may be large)."""
    return _place(media_dir, sub, layout.sha256_file(src), ext, os.path.getsize(src),
                  lambda tmp: shutil.copyfile(src, tmp))


def _place(media_dir: Path, sub: str, digest: str, ext: str, size: int, write) -> dict:
    """Put a file of hash `digest` in place once (`write(tmp)` makes it, then a rename)."""
    folder = media_dir / sub
    name = _name(digest, ext)
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.{os.getpid()}.tmp"
        write(tmp)
        os.replace(tmp, path)
    return {"path": f"media/{sub}/{name}", "sha256": digest, "size": size}


def file_problem(path: Any) -> str | None:
    """Why the file at `path` cannot be logged, or None."""
    p = Path(path)
    if not p.exists():
        return f"file {str(p)!r} does not exist"
    if not p.is_file():
        return f"{str(p)!r} is not a file"
    if not os.access(p, os.R_OK):
        return f"file {str(p)!r} cannot be read"
    return None


def suffix(path: Any) -> str:
    """The extension of `path` in lower case ("pts.json" for point clouds), "" when none."""
    name = Path(path).name.lower()
    if name.endswith(".pts.json"):
        return "pts.json"
    return Path(name).suffix.lstrip(".")


def to_numpy(data: Any):
    """A numpy array of numpy arrays, torch tensors (any device, bfloat16 too) and sequences."""
    import numpy as np

    if hasattr(data, "detach") and hasattr(data, "cpu"):  # torch
        t = data.detach().cpu()
        if str(getattr(t, "dtype", "")) in ("torch.bfloat16", "torch.float16"):
            t = t.float()
        data = t.numpy()
    return np.asarray(data)


def is_numeric(a) -> bool:
    return a.dtype.kind in "biuf"


def to_uint8(a):
    """Pixel values as uint8, as wandb does: negative data is scaled to 0..1 by its range, data
    in 0..1 is multiplied by 255, the rest clipped to 0..255."""
    import numpy as np

    if a.dtype == np.uint8:
        return a
    a = a.astype(np.float64)
    if a.size:
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
        lo, hi = float(a.min()), float(a.max())
        if lo < 0:
            a = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
            hi = 1.0
        if hi <= 1.0:
            a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# -- PNG -----------------------------------------------------------------------------------

_PNG_SIG = b"\x89PNG\r\n\x1a\n"


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))


def _png_layout(a) -> tuple[int, int, int]:
    """(height, width, PNG colour type) of a uint8 array of shape (H, W) or (H, W, 1|2|3|4)."""
    if a.ndim == 2:
        return a.shape[0], a.shape[1], 0
    color = {1: 0, 2: 4, 3: 2, 4: 6}.get(a.shape[2]) if a.ndim == 3 else None
    if color is None:
        raise MediaError(f"cannot make an image of an array of shape {tuple(a.shape)}")
    return a.shape[0], a.shape[1], color


def _idat(a) -> bytes:
    import numpy as np

    h = a.shape[0]
    rows = np.ascontiguousarray(a).reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0
    return zlib.compress(raw, 6)


def png_bytes(a) -> bytes:
    """A uint8 array of shape (H, W) or (H, W, 1|2|3|4) as PNG bytes."""
    h, w, color = _png_layout(a)
    return (_PNG_SIG + _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0))
            + _chunk(b"IDAT", _idat(a)) + _chunk(b"IEND", b""))


def apng_bytes(frames, fps: float) -> bytes:
    """Frames (uint8, shape (T, H, W, C)) as an animated PNG that loops, `fps` frames a second.
    Browsers play it in an <img>; viewers without APNG support show the first frame."""
    h, w, color = _png_layout(frames[0])
    delay = max(1, min(65535, round(1000.0 / fps))) if fps and fps > 0 else 250
    out = [_PNG_SIG, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color, 0, 0, 0)),
           _chunk(b"acTL", struct.pack(">II", len(frames), 0))]
    seq = 0
    for i, frame in enumerate(frames):
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, 0, 0, delay, 1000, 0, 0)))
        seq += 1
        data = _idat(frame)
        if i == 0:
            out.append(_chunk(b"IDAT", data))
        else:
            out.append(_chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def image_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of a PNG, GIF, JPEG, BMP or WebP file, or None."""
    if head.startswith(_PNG_SIG) and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return struct.unpack("<HH", head[6:10])
    if head.startswith(b"BM") and len(head) >= 26:
        w, h = struct.unpack("<ii", head[18:26])
        return w, abs(h)
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        kind = head[12:16]
        if kind == b"VP8 " and len(head) >= 30:
            w, h = struct.unpack("<HH", head[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if kind == b"VP8L" and len(head) >= 25:
            b = int.from_bytes(head[21:25], "little")
            return (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
        if kind == b"VP8X" and len(head) >= 30:
            return (int.from_bytes(head[24:27], "little") + 1,
                    int.from_bytes(head[27:30], "little") + 1)
        return None
    if head.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(head):
            if head[i] != 0xFF:
                i += 1
                continue
            marker = head[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
                i += 1 if marker == 0xFF else 2
                continue
            length = struct.unpack(">H", head[i + 2:i + 4])[0]
            if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD,
                          0xCE, 0xCF):
                h, w = struct.unpack(">HH", head[i + 5:i + 9])
                return w, h
            i += 2 + length
    return None


def file_image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image file: read by PIL when installed, else from its header."""
    try:
        from PIL import Image as PILImage
    except ImportError:
        PILImage = None
    if PILImage is not None:
        try:
            with PILImage.open(path) as im:
                return im.size
        except Exception:
            pass
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return None
    return image_size(head)


def plain(v: Any, depth: int = 0) -> Any:
    """`v` as JSON values (numpy/torch scalars and arrays to Python; other objects to str)."""
    if v is None or isinstance(v, (str, bool)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return float(v)
    if depth > 16:
        return str(v)
    if isinstance(v, dict):
        return {str(k): plain(x, depth + 1) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x, depth + 1) for x in v]
    if hasattr(v, "tolist") and (hasattr(v, "dtype") or hasattr(v, "detach")):
        if hasattr(v, "detach"):
            v = to_numpy(v)
        return plain(v.tolist(), depth + 1)
    if hasattr(v, "item"):
        try:
            return plain(v.item(), depth + 1)
        except (TypeError, ValueError):
            pass
    return str(v)
