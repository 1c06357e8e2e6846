"""Media values for `log()`: Image, Histogram, Html, Table, Video, Audio, Object3D, Plotly,
Classes, and matplotlib / plotly figures logged directly.

A media object is built anywhere (no run needed). When logged it writes its payload into the
run's `media/` folder under a content-addressed name — `media/<kind>/<first 20 hex of
sha256>.<ext>`, so the same bytes are one file however often they are logged — and the
history row holds a small reference with `_type`, `path`, `sha256` and `size`:

    {"_type": "image-file", "path": "media/images/3f2a….png", "sha256": …, "size": 231,
     "format": "png", "width": 28, "height": 28}

Histograms are small and stay inline: {"_type": "histogram", "bins": [...], "values": [...]}.
Several media under one key: {"_type": "media-list", "items": [ref, ...]}. Each kind's module
documents its reference; `nbtracker.store.media` reads them back.

Bad input never raises into the training loop: constructors record what is wrong and `log()`
reports it in one warning naming the key, logging the other keys.
"""

from __future__ import annotations

from typing import Any

from .base import Media, MediaError, png_bytes
from .image import Image, is_figure
from .scene import Object3D
from .simple import Classes, Histogram, Html, Plotly, is_plotly
from .table import Table
from .video import Audio, Video

__all__ = ["Media", "MediaError", "Image", "Histogram", "Html", "Table", "Video", "Audio",
           "Object3D", "Plotly", "Classes", "as_media", "is_media", "bind_list", "png_bytes"]


def as_media(v: Any) -> Media | None:
    """The media object `v` stands for — itself, a matplotlib figure (or `plt`) as an Image, a
    plotly figure as Plotly — or None. Imports nothing: figures are recognised by their type."""
    if getattr(v, "_nbtracker_media", False):
        return v
    if is_figure(v):
        return Image(v)
    if is_plotly(v):
        return Plotly(v)
    return None


def is_media(v: Any) -> bool:
    return getattr(v, "_nbtracker_media", False) or is_figure(v) or is_plotly(v)


def bind_list(items: list, bind) -> tuple[dict | None, list[str]]:
    """A media-list reference for `items` (each made a Media by `as_media`, written by
    `bind(media)`), and what went wrong with items left out. None when no item could be kept."""
    refs, notes = [], []
    for i, x in enumerate(items):
        m = as_media(x)
        if m is None:
            notes.append(f"item {i} is a {type(x).__name__}, not a media object; left out")
            continue
        try:
            refs.append(bind(m))
        except Exception as e:
            notes.append(f"item {i} ({type(m).__name__}) left out: {e}")
            continue
        notes.extend(f"item {i}: {n}" for n in m._notes or ())
    if not refs:
        return None, notes
    return {"_type": "media-list", "items": refs}, notes

