"""Histogram (inline, no file), Html and Plotly (one file each).

References:
    {"_type": "histogram", "bins": [edges...], "values": [counts...]}   (at most 512 bins)
    {"_type": "html-file", "path", "sha256", "size"}
    {"_type": "plotly-file", "path", "sha256", "size"}                 (the figure's JSON)
    {"_type": "classes", "class_set": [{"id": 1, "name": "cat"}, ...]}  (inline, as wandb's)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .base import Media, MediaError, file_problem, plain, store_bytes, to_numpy

MAX_BINS = 512


class Histogram(Media):
    """A histogram of values (`num_bins` equal bins over their range, at most 512), or one
    computed elsewhere: `np_histogram=(counts, edges)`. NaN and ±inf are left out (with a
    warning when logged).

    >>> nbtracker.log({"weights": nbtracker.Histogram(layer.weight.detach())})
    """

    def __init__(self, sequence: Any = None, np_histogram: tuple | None = None,
                 num_bins: int = 64):
        self.bins: list[float] = []
        self.values: list[int | float] = []
        try:
            if np_histogram is not None:
                self._from_counts(np_histogram)
            else:
                self._from_values(sequence, num_bins)
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"could not make a histogram of {type(sequence).__name__}: {e}")

    def _from_values(self, sequence: Any, num_bins: Any) -> None:
        import numpy as np

        if sequence is None:
            raise MediaError("a histogram needs values (or np_histogram=(counts, edges))")
        a = to_numpy(sequence)
        if a.dtype.kind not in "biuf":
            raise MediaError(f"a histogram needs numbers, not {a.dtype}")
        a = a.astype(np.float64, copy=False).ravel()
        finite = np.isfinite(a)
        n_bad = int(a.size - finite.sum())
        if n_bad:
            a = a[finite]
            if not a.size:
                raise MediaError(f"all {n_bad} values are NaN or infinite")
            self._note(f"{n_bad} NaN or infinite value(s) of {n_bad + a.size} left out of the "
                       "histogram")
        if not a.size:
            raise MediaError("no values to make a histogram of (empty)")
        try:
            bins = int(num_bins)
        except (TypeError, ValueError):
            raise MediaError(f"num_bins must be an integer, not {num_bins!r}") from None
        if bins < 1:
            raise MediaError(f"num_bins must be at least 1, not {bins}")
        if bins > MAX_BINS:
            self._note(f"num_bins={bins} is more than {MAX_BINS}; {MAX_BINS} bins were used")
            bins = MAX_BINS
        with np.errstate(all="ignore"):  # a range past float64's (±1e308): one warning at log()
            try:
                counts, edges = np.histogram(a, bins=bins)
            except ValueError as e:
                raise MediaError(f"cannot bin these values: {e}") from None
        self._set(counts, edges)

    def _from_counts(self, hist: Any) -> None:
        import numpy as np

        try:
            counts, edges = hist
        except (TypeError, ValueError):
            raise MediaError("np_histogram must be a pair (counts, edges)") from None
        counts = to_numpy(counts).astype(np.float64).ravel()
        edges = to_numpy(edges).astype(np.float64).ravel()
        if len(edges) != len(counts) + 1:
            raise MediaError(f"np_histogram needs one more edge than counts, not {len(counts)} "
                             f"counts and {len(edges)} edges")
        if not len(counts):
            raise MediaError("np_histogram has no bins (empty)")
        if not (np.isfinite(counts).all() and np.isfinite(edges).all()):
            raise MediaError("np_histogram holds NaN or infinite counts or edges")
        if len(counts) > MAX_BINS:  # merge neighbours: the counts are kept, the detail is not
            k = -(-len(counts) // MAX_BINS)
            pad = (-len(counts)) % k
            counts = np.concatenate([counts, np.zeros(pad)]).reshape(-1, k).sum(axis=1)
            edges = np.append(edges[:-1:k], edges[-1])
            self._note(f"np_histogram has more than {MAX_BINS} bins; neighbouring bins were "
                       f"merged {k} by {k}")
        self._set(counts, edges)

    @property
    def histogram(self) -> list:
        """The counts (wandb's name for them)."""
        return self.values

    def _set(self, counts, edges) -> None:
        self.values = [int(c) if float(c).is_integer() else float(c) for c in counts.tolist()]
        self.bins = [float(e) for e in edges.tolist()]

    def _bind(self, media_dir: Path) -> dict:
        return {"_type": "histogram", "bins": self.bins, "values": self.values}


class Html(Media):
    """An HTML document: a string, a path to a .html file, or an open file. It is stored as
    given; viewers show it in a sandboxed frame."""

    def __init__(self, data: Any, inject: bool = True, data_is_not_path: bool = False,
                 **kwargs: Any):
        self.html = ""
        try:
            if hasattr(data, "read"):
                data = data.read()
                if isinstance(data, bytes):
                    data = data.decode("utf-8", errors="replace")
            elif isinstance(data, os.PathLike) or (
                    isinstance(data, str) and not data_is_not_path
                    and data.lower().endswith((".html", ".htm")) and "<" not in data):
                problem = file_problem(data)
                if problem:
                    raise MediaError(problem)
                data = Path(data).read_text(encoding="utf-8", errors="replace")
            if not isinstance(data, str):
                raise MediaError(f"Html needs a string, a path or a file, not "
                                 f"{type(data).__name__}")
            self.html = data
        except MediaError as e:
            self._fail(str(e))
        except OSError as e:
            self._fail(f"could not read the HTML: {e}")

    def _bind(self, media_dir: Path) -> dict:
        return {"_type": "html-file", **store_bytes(media_dir, "html", self.html.encode("utf-8"),
                                                    "html")}


def is_plotly(v: Any) -> bool:
    """A plotly figure (or anything plotly-like that has `to_plotly_json`)."""
    return hasattr(v, "to_plotly_json") and not isinstance(v, type)


def _plotly_json(fig: Any) -> str:
    if hasattr(fig, "to_json"):
        return fig.to_json()
    try:
        import plotly.io

        return plotly.io.to_json(fig, validate=False)
    except ImportError:
        return json.dumps(plain(fig.to_plotly_json()))


class Plotly(Media):
    """A plotly figure, stored as its JSON (`fig.to_json()`) and drawn by plotly.js in viewers.
    A matplotlib figure given here is stored as an image."""

    def __init__(self, val: Any):
        self._json: str | None = None
        self._image: Media | None = None
        from .image import Image, is_figure

        try:
            if is_figure(val):
                self._image = Image(val)
            elif is_plotly(val):
                self._json = _plotly_json(val)
            elif isinstance(val, dict) and "data" in val:
                self._json = json.dumps(plain(val))
            else:
                raise MediaError(f"Plotly needs a plotly figure, not {type(val).__name__}")
        except MediaError as e:
            self._fail(str(e))
        except Exception as e:
            self._fail(f"could not read the figure as JSON: {e}")

    def _bind(self, media_dir: Path) -> dict:
        if self._image is not None:
            return self._image.bind(media_dir)
        return {"_type": "plotly-file",
                **store_bytes(media_dir, "plotly", self._json.encode("utf-8"), "plotly.json")}


class Classes(Media):
    """A set of classes, as wandb's: `[{"id": 1, "name": "cat"}, ...]`, given to
    `Image(classes=...)` for its masks and boxes, put in a Table cell or logged as is; stored
    inline as `{"_type": "classes", "class_set": [...]}`. Entries without an integer `id` and a
    `name` are left out (one warning when logged).

    >>> nbtracker.Image(img, masks={"pred": {"mask_data": m}}, classes=nbtracker.Classes(
    ...     [{"id": 0, "name": "bg"}, {"id": 1, "name": "cat"}]))
    """

    def __init__(self, class_set: Any):
        self._class_set: list[dict] = []
        if isinstance(class_set, Classes):
            self.__dict__.update(class_set.__dict__)
            return
        if isinstance(class_set, dict) and class_set.get("_type") == "classes":
            class_set = class_set.get("class_set")
        if isinstance(class_set, (str, bytes)) or not hasattr(class_set, "__iter__"):
            self._fail(f"Classes needs a list of {{'id': ..., 'name': ...}} dicts, not "
                       f"{type(class_set).__name__}")
            return
        bad = 0
        for c in class_set:
            c = plain(c) if isinstance(c, dict) else None
            cid = c.get("id") if c is not None else None
            if not (isinstance(cid, int) and not isinstance(cid, bool) and "name" in c):
                bad += 1
                continue
            self._class_set.append({**c, "name": str(c["name"])})
        if bad:
            self._note(f"{bad} class(es) without an integer 'id' and a 'name' left out")

    @property
    def class_set(self) -> list[dict]:
        return self._class_set

    def to_json(self, run_or_artifact: Any = None) -> dict:
        """The stored form, as wandb's `Classes.to_json`."""
        return {"_type": "classes", "class_set": [dict(c) for c in self._class_set]}

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Classes) and self._class_set == other._class_set

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value, as wandb's

    def __repr__(self) -> str:
        return f"<nbtracker.Classes {len(self._class_set)} classes>"

    def _bind(self, media_dir: Path) -> dict:
        return self.to_json()
