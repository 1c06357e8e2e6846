"""Video and Audio.

References:
    {"_type": "video-file", "path", "sha256", "size", "format": "png" (an animated PNG made from
     an array) | "gif" | "mp4" | "webm" | "ogg", "fps", "frames"?, "width"?, "height"?, "caption"?}
    {"_type": "audio-file", "path", "sha256", "size", "format": "wav" | ..., "sample_rate"?,
     "duration"?, "channels"?, "caption"?}

Arrays become an animated PNG (stdlib zlib, no ffmpeg), or an animated GIF with `format="gif"`
(through Pillow when installed), and a WAV file (stdlib `wave`); files are kept byte for byte.
mp4/webm/ogg from an array would need ffmpeg, which is not used: those are stored as an animated
PNG with one warning.
"""

from __future__ import annotations

import io
import os
import wave
from pathlib import Path
from typing import Any

from .base import (
    Media,
    MediaError,
    apng_bytes,
    file_image_size,
    file_problem,
    is_numeric,
    store_bytes,
    store_file,
    suffix,
    to_numpy,
    to_uint8,
)

VIDEO_FORMATS = ("gif", "mp4", "webm", "ogg", "ogv", "mov", "png", "apng")


def video_frames(data: Any):
    """Frames (uint8, (T, H, W, C) with C 1, 3 or 4) of an array of shape (T, C, H, W) (wandb's
    order), (T, H, W, C), (T, H, W), or (B, T, C, H, W) (tiled side by side, as wandb does)."""
    import numpy as np

    try:
        a = to_numpy(data)
    except Exception as e:
        raise MediaError(f"a video needs an array or a file path; {type(data).__name__} could "
                         f"not be read as an array ({e})") from None
    if not is_numeric(a):
        raise MediaError(f"a video needs numbers, not an array of {a.dtype}")
    if a.ndim == 5:
        a = _tile(a)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4:
        raise MediaError(f"a video needs an array of shape (T, C, H, W) or (T, H, W, C), not "
                         f"{tuple(a.shape)}")
    if a.shape[1] in (1, 3, 4):  # wandb's order first, as wandb reads it
        a = np.transpose(a, (0, 2, 3, 1))
    elif a.shape[3] not in (1, 3, 4):
        raise MediaError(f"a video needs 1, 3 or 4 channels, in an array of shape (T, C, H, W) "
                         f"or (T, H, W, C), not {tuple(a.shape)}")
    if 0 in a.shape:
        raise MediaError(f"the video is empty (shape {tuple(a.shape)})")
    if a.shape[3] == 1:
        a = a[..., 0]
    return to_uint8(a)


def _tile(a):
    """(B, T, C, H, W) videos side by side in a grid of (T, C, H', W')."""
    import numpy as np

    b, t, c, h, w = a.shape
    cols = int(np.ceil(np.sqrt(b)))
    rows = -(-b // cols)
    pad = np.zeros((rows * cols - b, t, c, h, w), a.dtype)
    a = np.concatenate([a, pad]).reshape(rows, cols, t, c, h, w)
    return a.transpose(2, 3, 0, 4, 1, 5).reshape(t, c, rows * h, cols * w)


def gif_bytes(frames, fps: float) -> bytes:
    """Frames (uint8, shape (T, H, W) or (T, H, W, 3|4)) as an animated GIF that loops, encoded by
    Pillow (ImportError without it). Colours beyond 256 a frame are quantised, as in any GIF;
    GIF delays are in hundredths of a second, and browsers slow delays under 20 ms, so at most
    50 frames a second."""
    from PIL import Image as PILImage

    delay = max(20, min(65535, round(1000.0 / fps / 10) * 10)) if fps and fps > 0 else 250
    images = [PILImage.fromarray(f) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=delay,
                   loop=0, disposal=2 if frames.ndim == 4 and frames.shape[3] == 4 else 0)
    return buf.getvalue()


class Video(Media):
    """A video from an array — (T, C, H, W) as wandb takes it, or (T, H, W, C); uint8, or floats
    in 0..1 — stored as an animated PNG that browsers play (an animated GIF with `format="gif"`
    when Pillow is installed), or a video file kept as given.

    >>> nbtracker.log({"rollout": nbtracker.Video(frames, fps=8)})
    """

    def __init__(self, data_or_path: Any, caption: str | None = None, fps: float | None = None,
                 format: str | None = None, **kwargs: Any):
        self.caption = None if caption is None else str(caption)
        self.fps = 4.0 if fps is None else fps
        self.format = "png"
        self.frames = self.width = self.height = None
        self._bytes: bytes | None = None
        self._path: Path | None = None
        try:
            if not (isinstance(self.fps, (int, float)) and self.fps > 0):
                raise MediaError(f"fps must be a positive number, not {fps!r}")
            if isinstance(data_or_path, (str, os.PathLike)):
                problem = file_problem(data_or_path)
                if problem:
                    raise MediaError(problem)
                self._path = Path(data_or_path)
                self.format = suffix(data_or_path) or (format or "mp4")
                if self.format == "gif":
                    size = file_image_size(self._path)
                    if size:
                        self.width, self.height = size
            elif hasattr(data_or_path, "read"):  # an open file (BytesIO): format says which
                self._bytes = data_or_path.read()
                self.format = (format or "mp4").lower()
            else:
                frames = video_frames(data_or_path)
                self.frames, self.height, self.width = (int(x) for x in frames.shape[:3])
                self._bytes = self._encode(frames, format)
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"could not read {type(data_or_path).__name__} as a video: {e}")

    def _encode(self, frames, format: str | None) -> bytes:
        """Frames as an animated GIF (`format="gif"`, with Pillow) or an animated PNG; a format
        that cannot be made from an array here is a note (the video is kept as an APNG)."""
        want = str(format).lower().lstrip(".") if format else "png"
        if want == "gif":
            try:
                data = gif_bytes(frames, float(self.fps))
            except ImportError:
                self._note("format='gif' from an array needs Pillow (pip install pillow); "
                           "stored as an animated PNG instead")
            else:
                self.format = "gif"
                return data
        elif want not in ("png", "apng"):
            self._note(f"format={format!r} from an array needs an encoder such as ffmpeg, "
                       "which nbtracker does not use; stored as an animated PNG instead")
        return apng_bytes(frames, float(self.fps))

    def _bind(self, media_dir: Path) -> dict:
        if self._path is not None:
            stored = store_file(media_dir, "videos", self._path, self.format)
        else:
            stored = store_bytes(media_dir, "videos", self._bytes, self.format)
        ref: dict[str, Any] = {"_type": "video-file", **stored, "format": self.format,
                               "fps": self.fps}
        for k in ("frames", "width", "height", "caption"):
            if getattr(self, k) is not None:
                ref[k] = getattr(self, k)
        return ref


def wav_bytes(samples: Any, sample_rate: int) -> tuple[bytes, int, int]:
    """An array of samples — shape (n,) or (n, channels); floats in -1..1 (clipped), or int16,
    int32, uint8 PCM — as WAV bytes. Returns (bytes, frames, channels)."""
    import numpy as np

    a = to_numpy(samples)
    if not is_numeric(a):
        raise MediaError(f"audio needs numbers, not an array of {a.dtype}")
    if a.ndim == 2 and a.shape[0] <= 8 < a.shape[1]:  # (channels, n): channels first
        a = a.T
    if a.ndim not in (1, 2) or (a.ndim == 2 and not 1 <= a.shape[1] <= 64):
        raise MediaError(f"audio needs an array of shape (samples,) or (samples, channels), "
                         f"not {tuple(a.shape)}")
    if not a.shape[0]:
        raise MediaError("the audio is empty (no samples)")
    if a.dtype.kind == "f" or a.dtype == np.bool_:
        a = np.nan_to_num(a.astype(np.float64), nan=0.0)
        a = np.rint(np.clip(a, -1.0, 1.0) * 32767).astype("<i2")
    elif a.dtype not in (np.int16, np.int32, np.uint8):
        a = np.clip(a, -32768, 32767).astype("<i2")
    width = a.dtype.itemsize
    channels = 1 if a.ndim == 1 else a.shape[1]
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(int(sample_rate))
        w.writeframes(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes())
    return buf.getvalue(), int(a.shape[0]), channels


class Audio(Media):
    """Audio from an array of samples (shape (n,) or (n, channels); floats in -1..1 or int16)
    and its `sample_rate`, stored as a WAV file; or an audio file kept as given.

    >>> nbtracker.log({"speech": nbtracker.Audio(wave, sample_rate=16000, caption="epoch 3")})
    """

    def __init__(self, data_or_path: Any, sample_rate: int | None = None,
                 caption: str | None = None, **kwargs: Any):
        self.caption = None if caption is None else str(caption)
        self.sample_rate = sample_rate
        self.format = "wav"
        self.duration = self.channels = None
        self._bytes: bytes | None = None
        self._path: Path | None = None
        try:
            if isinstance(data_or_path, (str, os.PathLike)):
                problem = file_problem(data_or_path)
                if problem:
                    raise MediaError(problem)
                self._path = Path(data_or_path)
                self.format = suffix(data_or_path) or "wav"
                if self.format == "wav":
                    self._wav_info(self._path)
            else:
                if sample_rate is None:
                    raise MediaError("audio from an array needs sample_rate=")
                if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate < 2**31):
                    raise MediaError(f"sample_rate must be a positive number, not {sample_rate!r}")
                self.sample_rate = int(sample_rate)
                self._bytes, n, self.channels = wav_bytes(data_or_path, self.sample_rate)
                self.duration = n / self.sample_rate
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"could not read {type(data_or_path).__name__} as audio: {e}")

    def _wav_info(self, path: Path) -> None:
        try:
            with wave.open(str(path), "rb") as w:
                rate, n = w.getframerate(), w.getnframes()
                self.channels = w.getnchannels()
        except (wave.Error, EOFError, OSError):
            return  # not a PCM WAV we can read: kept all the same
        self.sample_rate = self.sample_rate or rate
        self.duration = n / rate if rate else None

    def _bind(self, media_dir: Path) -> dict:
        if self._path is not None:
            stored = store_file(media_dir, "audio", self._path, self.format)
        else:
            stored = store_bytes(media_dir, "audio", self._bytes, self.format)
        ref: dict[str, Any] = {"_type": "audio-file", **stored, "format": self.format}
        for k in ("sample_rate", "duration", "channels", "caption"):
            if getattr(self, k) is not None:
                ref[k] = getattr(self, k)
        return ref
