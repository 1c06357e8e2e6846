"""Image: arrays, tensors, PIL images, matplotlib figures and image files; masks and boxes.

Reference: {"_type": "image-file", "path", "sha256", "size", "format", "width", "height",
"caption"?, "masks"?: {name: {"path", "sha256", "size", "class_labels"?}},
"boxes"?: {name: {"box_data": [...], "class_labels"?}},
"classes"?: {"_type": "classes", "class_set": [{"id", "name"}, ...]}}
"""

from __future__ import annotations

import io
import os
import types
from pathlib import Path
from typing import Any

from .base import (
    Media,
    MediaError,
    file_image_size,
    file_problem,
    image_size,
    is_numeric,
    plain,
    png_bytes,
    store_bytes,
    store_file,
    suffix,
    to_numpy,
    to_uint8,
)

_FORMATS = {"jpeg": "jpg"}


def is_figure(v: Any) -> bool:
    """A matplotlib Figure, or the `matplotlib.pyplot` module (meaning its current figure)."""
    if isinstance(v, types.ModuleType):
        return v.__name__ == "matplotlib.pyplot"
    return type(v).__module__.startswith("matplotlib.") and hasattr(v, "savefig") \
        and hasattr(v, "canvas")


def figure_png(fig: Any) -> bytes:
    """A matplotlib figure (or `plt`: its current figure) drawn as PNG, trimmed to its content."""
    if isinstance(fig, types.ModuleType):
        fig = fig.gcf()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def _is_pil(v: Any) -> bool:
    return type(v).__module__.startswith("PIL.") and hasattr(v, "save") and hasattr(v, "mode")


def image_array(data: Any, what: str = "an image"):
    """`data` (array, tensor, nested lists) as a uint8 array of shape (H, W) or (H, W, C);
    raises MediaError saying what is wrong."""
    import numpy as np

    torch = hasattr(data, "detach")
    try:
        a = to_numpy(data)
    except Exception as e:
        raise MediaError(f"{what} needs an array, a PIL image or a file path; "
                         f"{type(data).__name__} could not be read as an array ({e})") from None
    if not is_numeric(a):
        raise MediaError(f"{what} needs numbers, not an array of {a.dtype}")
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and (torch or a.shape[2] not in (1, 2, 3, 4)):
        a = np.transpose(a, (1, 2, 0))  # CHW (torch's order) to HWC
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise MediaError(f"{what} needs an array of shape (H, W), (H, W, C) or (C, H, W) with "
                         f"C = 1, 3 or 4, not {tuple(a.shape)}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise MediaError(f"{what} is empty (shape {tuple(a.shape)})")
    return to_uint8(a)


def _convert_mode(a, mode: str):
    """Pixels `a` (uint8 HW or HWC) in PIL's `mode` L, LA, RGB or RGBA."""
    import numpy as np

    ch = 1 if a.ndim == 2 else a.shape[2]
    alpha = a[:, :, -1] if ch in (2, 4) else None
    if ch >= 3:
        gray = np.rint(a[:, :, :3] @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
        rgb = a[:, :, :3]
    else:
        gray = a if ch == 1 else a[:, :, 0]
        rgb = np.stack([gray] * 3, axis=-1)
    opaque = np.full(gray.shape, 255, np.uint8) if alpha is None else alpha
    if mode == "L":
        return gray
    if mode == "LA":
        return np.dstack([gray, opaque])
    if mode == "RGB":
        return rgb
    return np.dstack([rgb, opaque])


class Image(Media):
    """An image from a numpy array or torch tensor (HW, HWC or CHW; uint8, or floats in 0..1),
    a PIL image, a matplotlib figure or an image file (kept byte for byte: a JPEG stays a JPEG).

    Args:
        data_or_path: the pixels, a figure, or a path.
        mode: "L", "LA", "RGB" or "RGBA" to convert array pixels to.
        caption: a text shown with the image.
        masks: {"name": {"mask_data": 2-d int array, "class_labels": {0: "bg", 1: "cat"}}}
            (or {"path": "mask.png"}): segmentation masks, stored as PNG files.
        boxes: {"name": {"box_data": [{"position": {"minX", "maxX", "minY", "maxY"} or
            {"middle": [x, y], "width", "height"}, "class_id": 1, "box_caption": "cat",
            "scores": {"p": 0.9}, "domain"?: "pixel"}], "class_labels": {...}}}.
        classes: the class set of the masks and boxes: `nbtracker.Classes([{"id": 1, "name":
            "cat"}, ...])` or that list; stored with the image.

    >>> nbtracker.log({"samples": nbtracker.Image(batch[0], caption="epoch 3")})
    """

    def __init__(self, data_or_path: Any, mode: str | None = None, caption: str | None = None,
                 grouping: int | None = None, classes: Any = None, boxes: dict | None = None,
                 masks: dict | None = None, file_type: str | None = None,
                 normalize: bool = True, **kwargs: Any):
        self.caption = None if caption is None else str(caption)
        self.width: int | None = None
        self.height: int | None = None
        self.format = "png"
        self._bytes: bytes | None = None
        self._path: Path | None = None
        self._masks: dict[str, tuple[bytes | Path, dict | None]] = {}
        self._boxes: dict[str, dict] = {}
        self._classes: list[dict] | None = None
        try:
            self._read(data_or_path, mode, file_type)
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:  # anything a foreign object throws at us
            self._fail(f"could not read {type(data_or_path).__name__} as an image: {e}")
        if masks:
            self._read_masks(masks)
        if boxes:
            self._read_boxes(boxes)
        if classes is not None:
            self._read_classes(classes)

    def _read(self, data: Any, mode: str | None, file_type: str | None) -> None:
        if isinstance(data, Image):
            self.__dict__.update({k: v for k, v in data.__dict__.items() if k != "caption"})
            self.caption = self.caption if self.caption is not None else data.caption
            return
        if isinstance(data, (str, os.PathLike)):
            problem = file_problem(data)
            if problem:
                raise MediaError(problem)
            self._path = Path(data)
            self.format = _FORMATS.get(suffix(data), suffix(data)) or "bin"
            size = file_image_size(self._path)
            if size:
                self.width, self.height = int(size[0]), int(size[1])
            return
        if is_figure(data):
            self._set_png(figure_png(data))
            return
        if _is_pil(data):
            if mode and data.mode != mode:
                data = data.convert(mode)
            if data.mode not in ("L", "LA", "RGB", "RGBA"):  # palette, 16-bit, CMYK, float:
                # 8-bit grey or colour PNGs, which any reader (ours without Pillow too) decodes
                alpha = "A" in data.mode or "transparency" in data.info
                data = data.convert("RGBA" if alpha else "RGB")
            buf = io.BytesIO()
            data.save(buf, format="PNG")
            self._set_png(buf.getvalue())
            return
        a = image_array(data)
        if mode:
            if mode not in ("L", "LA", "RGB", "RGBA"):
                raise MediaError(f"mode must be L, LA, RGB or RGBA for array pixels, not {mode!r}")
            a = _convert_mode(a, mode)
        self.height, self.width = int(a.shape[0]), int(a.shape[1])
        fmt = (file_type or "png").lower().lstrip(".")
        if fmt in ("jpg", "jpeg") and a.ndim in (2, 3):
            try:
                from PIL import Image as PILImage

                buf = io.BytesIO()
                PILImage.fromarray(a[:, :, :3] if a.ndim == 3 else a).save(buf, format="JPEG")
                self._bytes, self.format = buf.getvalue(), "jpg"
                return
            except ImportError:
                pass
        self._bytes = png_bytes(a)

    def _set_png(self, data: bytes) -> None:
        self._bytes, self.format = data, "png"
        size = image_size(data[:64])
        if size:
            self.width, self.height = int(size[0]), int(size[1])

    def _read_masks(self, masks: Any) -> None:
        if not isinstance(masks, dict):
            self._note(f"masks must be a dict of name -> {{'mask_data': ..., 'class_labels': "
                       f"...}}, not {type(masks).__name__}; left out")
            return
        for name, m in masks.items():
            if hasattr(m, "_val"):  # wandb-style ImageMask objects keep their dict in _val
                m = m._val
            if not isinstance(m, dict):
                self._note(f"mask {name!r} must be a dict with 'mask_data' or 'path'; left out")
                continue
            labels = m.get("class_labels")
            labels = {str(plain(k)): str(v) for k, v in labels.items()} \
                if isinstance(labels, dict) else None
            try:
                if m.get("mask_data") is not None:
                    a = to_numpy(m["mask_data"])
                    if a.ndim != 2 or a.dtype.kind not in "biuf":
                        raise MediaError(f"mask_data must be a 2-d array of class ids, not "
                                         f"shape {tuple(a.shape)} of {a.dtype}")
                    if a.size and (a.min() < 0 or a.max() > 255):
                        raise MediaError("mask_data class ids must be in 0..255")
                    payload: bytes | Path = png_bytes(a.astype("uint8"))
                elif m.get("path") is not None:
                    problem = file_problem(m["path"])
                    if problem:
                        raise MediaError(problem)
                    payload = Path(m["path"])
                else:
                    raise MediaError("needs 'mask_data' (a 2-d array) or 'path'")
            except Exception as e:
                self._note(f"mask {name!r}: {e}; left out")
                continue
            self._masks[str(name)] = (payload, labels)

    def _read_boxes(self, boxes: Any) -> None:
        if not isinstance(boxes, dict):
            self._note(f"boxes must be a dict of name -> {{'box_data': [...]}}, not "
                       f"{type(boxes).__name__}; left out")
            return
        for name, b in boxes.items():
            if hasattr(b, "_val"):
                b = b._val
            data = b.get("box_data") if isinstance(b, dict) else None
            if not isinstance(data, (list, tuple)):
                self._note(f"boxes {name!r} need a 'box_data' list; left out")
                continue
            good = [plain(box) for box in data if _box_ok(box)]
            if len(good) < len(data):
                self._note(f"boxes {name!r}: {len(data) - len(good)} of {len(data)} boxes have no "
                           "valid 'position' ({minX, maxX, minY, maxY} or {middle, width, "
                           "height}); left out")
            entry: dict[str, Any] = {"box_data": good}
            labels = b.get("class_labels")
            if isinstance(labels, dict):
                entry["class_labels"] = {str(plain(k)): str(v) for k, v in labels.items()}
            self._boxes[str(name)] = entry

    def _read_classes(self, classes: Any) -> None:
        from .simple import Classes

        c = Classes(classes)
        if c._problem is not None:
            self._note(f"classes: {c._problem}; left out")
            return
        for n in c._notes or ():
            self._note(f"classes: {n}")
        self._classes = c.class_set

    def _bind(self, media_dir: Path) -> dict:
        if self._path is not None:
            stored = store_file(media_dir, "images", self._path, self.format)
        else:
            stored = store_bytes(media_dir, "images", self._bytes, self.format)
        ref: dict[str, Any] = {"_type": "image-file", **stored, "format": self.format}
        if self.width is not None:
            ref["width"], ref["height"] = self.width, self.height
        if self.caption is not None:
            ref["caption"] = self.caption
        if self._masks:
            ref["masks"] = {}
            for name, (payload, labels) in self._masks.items():
                if isinstance(payload, Path):
                    m = store_file(media_dir, "masks", payload, suffix(payload) or "png")
                else:
                    m = store_bytes(media_dir, "masks", payload, "png")
                if labels is not None:
                    m["class_labels"] = labels
                ref["masks"][name] = m
        if self._boxes:
            ref["boxes"] = self._boxes
        if self._classes is not None:
            ref["classes"] = {"_type": "classes", "class_set": self._classes}
        return ref


def _box_ok(box: Any) -> bool:
    if not isinstance(box, dict) or not isinstance(box.get("position"), dict):
        return False
    p = box["position"]
    return all(k in p for k in ("minX", "maxX", "minY", "maxY")) or \
        all(k in p for k in ("middle", "width", "height"))
