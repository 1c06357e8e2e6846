"""Object3D: point clouds (stored as pts.json) and 3-D model files (.obj, .gltf, .glb, ...).

Reference: {"_type": "object3D-file", "path", "sha256", "size",
"format": "pts.json" | "obj" | "gltf" | "glb" | ..., "npoints"?}

pts.json is {"points": [[x, y, z], ...]} — rows of 4 values carry a category, rows of 6 an RGB
colour — plus, for a scene given as wandb's {"type": "lidar/beta", ...}, its "type", "boxes"
and "vectors" as given.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import (
    Media,
    MediaError,
    file_problem,
    is_numeric,
    plain,
    store_bytes,
    store_file,
    suffix,
    to_numpy,
)

MODEL_FORMATS = ("obj", "gltf", "glb", "babylon", "stl", "pts.json")


def _points(data: Any) -> list:
    import numpy as np

    a = to_numpy(data)
    if not is_numeric(a):
        raise MediaError(f"a point cloud needs numbers, not an array of {a.dtype}")
    if a.ndim != 2 or a.shape[1] not in (3, 4, 6):
        raise MediaError(f"a point cloud needs an array of shape (N, 3), (N, 4) with a category "
                         f"or (N, 6) with RGB, not {tuple(a.shape)}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise MediaError("the point cloud holds NaN or infinite coordinates")
    return [[int(v) if v.is_integer() else v for v in row] for row in a.tolist()]


class Object3D(Media):
    """A 3-D point cloud — a numpy array (N, 3), (N, 4) with a category per point, (N, 6) with
    RGB — or a scene `{"type": "lidar/beta", "points": ..., "boxes": [...]}`, or a 3-D model
    file (.obj, .gltf, .glb) kept as given.

    >>> nbtracker.log({"cloud": nbtracker.Object3D(points)})
    """

    def __init__(self, data_or_path: Any, caption: str | None = None,
                 file_type: str | None = None, **kwargs: Any):
        self.caption = None if caption is None else str(caption)
        self.format = "pts.json"
        self.npoints: int | None = None
        self._bytes: bytes | None = None
        self._path: Path | None = None
        try:
            if isinstance(data_or_path, (str, os.PathLike)):
                problem = file_problem(data_or_path)
                if problem:
                    raise MediaError(problem)
                fmt = suffix(data_or_path)
                if fmt not in MODEL_FORMATS:
                    raise MediaError(f"3-D files must be one of {', '.join(MODEL_FORMATS)}, not "
                                     f"{Path(data_or_path).name!r}")
                self._path, self.format = Path(data_or_path), fmt
            elif hasattr(data_or_path, "read"):  # an open file: its name or file_type says which
                file_type = file_type or suffix(getattr(data_or_path, "name", "") or "x")
                if file_type not in MODEL_FORMATS:
                    raise MediaError(f"a 3-D file object needs file_type= one of "
                                     f"{', '.join(MODEL_FORMATS)}")
                body = data_or_path.read()
                self._bytes = body.encode("utf-8") if isinstance(body, str) else body
                self.format = file_type
            elif isinstance(data_or_path, dict):
                self._scene(data_or_path)
            else:
                pts = _points(data_or_path)
                self._set_points({"points": pts})
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"could not read {type(data_or_path).__name__} as a 3-D object: {e}")

    def _scene(self, scene: dict) -> None:
        if "points" not in scene:
            raise MediaError("a 3-D scene dict needs 'points' (and may have 'boxes', 'vectors')")
        doc: dict[str, Any] = {"points": _points(scene["points"])}
        if scene.get("type") is not None:
            doc["type"] = str(scene["type"])
        for k in ("boxes", "vectors"):
            if scene.get(k) is not None:
                doc[k] = plain(scene[k])
        self._set_points(doc)

    def _set_points(self, doc: dict) -> None:
        import orjson

        self.npoints = len(doc["points"])
        self._bytes = orjson.dumps(doc)

    @classmethod
    def from_file(cls, data_or_path: Any, file_type: str | None = None) -> Object3D:
        """A model file (.obj, .gltf, .glb, ...) or an open one with its `file_type`."""
        return cls(data_or_path, file_type=file_type)

    @classmethod
    def from_numpy(cls, data: Any) -> Object3D:
        """A point cloud: (N, 3), (N, 4) with a category, (N, 6) with RGB."""
        return cls(data)

    @classmethod
    def from_point_cloud(cls, points: Any, boxes: Any = None, vectors: Any = None,
                         point_cloud_type: str = "lidar/beta") -> Object3D:
        """A scene of points with boxes and vectors, as wandb's."""
        return cls({"type": point_cloud_type, "points": points, "boxes": boxes,
                    "vectors": vectors})

    def _bind(self, media_dir: Path) -> dict:
        if self._path is not None:
            stored = store_file(media_dir, "object3d", self._path, self.format)
        else:
            stored = store_bytes(media_dir, "object3d", self._bytes, self.format)
        ref: dict[str, Any] = {"_type": "object3D-file", **stored, "format": self.format}
        if self.npoints is not None:
            ref["npoints"] = self.npoints
        if self.caption is not None:
            ref["caption"] = self.caption
        return ref
