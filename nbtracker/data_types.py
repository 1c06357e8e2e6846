"""`wandb.data_types` under `import nbtracker as wandb`: the media classes (`Image`, `Table`,
`Classes`, ...), and `ImageMask` and `BoundingBoxes2D`, which hold one mask or one set of boxes
in wandb's dict form for `Image(masks=..., boxes=...)`:

>>> wandb.Image(img, masks={"pred": wandb.data_types.ImageMask(
...     {"mask_data": m, "class_labels": {0: "bg", 1: "cat"}}, key="pred")})

Importing this module loads no media code: the media classes load on first use, as
`nbtracker.Image` does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ImageMask", "BoundingBoxes2D"]
# nbtracker's own names, given here as wandb.data_types gives them (loaded on first use)
_FROM_NBTRACKER = ("Image", "Histogram", "Html", "Table", "Video", "Audio", "Object3D", "Plotly",
                   "Classes", "Molecule", "Graph")


class ImageMask:
    """One segmentation mask for `Image(masks={name: ImageMask(...)})`: `val` is
    `{"mask_data": 2-d array of class ids, "class_labels": {id: name}}` or `{"path": file}`,
    as the plain dict `Image` also takes."""

    def __init__(self, val: dict, key: str = "", **kwargs: Any):
        self._val = val
        self._key = key

    def __repr__(self) -> str:
        return f"<nbtracker.data_types.ImageMask {self._key!r}>"


class BoundingBoxes2D:
    """One set of boxes for `Image(boxes={name: BoundingBoxes2D(...)})`: `val` is
    `{"box_data": [{"position": ..., "class_id": ..., ...}], "class_labels": {id: name}}`, as
    the plain dict `Image` also takes."""

    def __init__(self, val: dict, key: str = "", **kwargs: Any):
        self._val = val
        self._key = key

    def __repr__(self) -> str:
        return f"<nbtracker.data_types.BoundingBoxes2D {self._key!r}>"


def __getattr__(name: str) -> Any:
    if name in _FROM_NBTRACKER:
        import nbtracker

        return getattr(nbtracker, name)
    raise AttributeError(f"module 'nbtracker.data_types' has no attribute {name!r}")
