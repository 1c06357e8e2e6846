"""Turning what users pass to `log()` into values a record can hold.

Kept as they are: int, float, bool, str, None, lists of those. NaN, ±inf and ints of any size are
kept (the record log names them in its `nf` map, see `store.recordlog.pack`). Nested dicts are
flattened to "a/b" keys. numpy/torch scalars and 0-d arrays become Python numbers via `.item()`;
larger arrays become a histogram (or a list when small).
Media objects write their file and leave a reference; so do matplotlib and plotly figures
(detected by type, without importing either) and lists of media (a "media-list" reference, see
`sdk.media`); a chart (`nbtracker.plot`) may also log its table under a second key. Stand-ins
for wandb media kinds not stored here (`wandb.Molecule`, `wandb.Graph`) say so once when made and
are left out. Anything else is reported once per key and skipped: the training loop goes on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

MAX_KEY_LEN = 256
RESERVED = frozenset({"_step", "_timestamp", "_runtime"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def key_problem(key: Any) -> str | None:
    """Why `key` cannot be a metric name, or None when it can."""
    if not isinstance(key, str):
        return f"keys must be strings, not {type(key).__name__}"
    if not key:
        return "keys must not be empty"
    if len(key) > MAX_KEY_LEN:
        return f"keys must be at most {MAX_KEY_LEN} characters (this one has {len(key)})"
    if _CONTROL.search(key):
        return "keys must not contain control characters"
    if key in RESERVED:
        return f"{key!r} is reserved for nbtracker's own columns"
    return None


class Normaliser:
    """Normalises one log() payload. `warn(key, message)` is called once per problem key."""

    def __init__(self, warn: Callable[[str, str], None], bind_media: Callable[[str, Any], Any]):
        self.warn = warn
        self.bind_media = bind_media

    def flatten(self, data: dict) -> dict:
        """`data` with nested dicts flattened to "a/b" keys and every value made loggable."""
        flat: dict[str, Any] = {}
        self._walk("", data, flat)
        return flat

    def _walk(self, prefix: str, data: dict, flat: dict) -> None:
        for k, v in data.items():
            if type(k) is not str and isinstance(k, (int, float)) and not isinstance(k, bool):
                k = str(k)
            problem = key_problem(k)
            name = f"{prefix}{k}" if isinstance(k, str) else f"{prefix}{k!r}"
            if problem is None and prefix and len(name) > MAX_KEY_LEN:
                problem = f"keys must be at most {MAX_KEY_LEN} characters"
            if problem is not None:
                self.warn(name, f"log() skipped key {name!r}: {problem}")
                continue
            if isinstance(v, dict):
                if v:
                    self._walk(name + "/", v, flat)
                continue
            try:
                self.value(name, v, flat)
            except Exception as e:  # a value whose own methods fail (.item(), __array__, ...)
                flat.pop(name, None)
                self.warn(name, f"log() skipped key {name!r}: could not read its "
                                f"{type(v).__name__} value: {type(e).__name__}: {e}")

    def value(self, key: str, v: Any, flat: dict) -> None:
        t = type(v)
        if t is float or t is int:
            flat[key] = v
            return
        if t is str or t is bool or v is None:
            flat[key] = v
            return
        if getattr(v, "_nbtracker_media", False):
            self._media(key, v, flat)
            return
        if isinstance(v, bool):
            flat[key] = bool(v)
            return
        if isinstance(v, (int, float)):  # int/float subclasses, numpy float64
            self.value(key, float(v) if isinstance(v, float) else int(v), flat)
            return
        if isinstance(v, (list, tuple)):
            items = []
            for x in v:
                if isinstance(x, (str, bool)) or x is None:
                    items.append(x)
                elif isinstance(x, (int, float)):
                    items.append(float(x) if isinstance(x, float) else int(x))
                elif hasattr(x, "item") and getattr(x, "ndim", 0) == 0 and isinstance(
                        item := x.item(), (str, bool, int, float)):
                    items.append(item)
                elif _media().is_media(x):
                    self._media_list(key, v, flat)
                    return
                elif all(getattr(y, "_nbtracker_unstored", False) for y in v):
                    return  # wandb.Molecule, Graph stand-ins: said when made
                else:
                    self.warn(key, f"log() skipped key {key!r}: lists may hold numbers and "
                                   f"strings, not {type(x).__name__}")
                    return
            flat[key] = items
            return
        ndim = getattr(v, "ndim", None)
        if ndim is not None and hasattr(v, "item"):
            try:
                if ndim == 0 or _numel(v) == 1:
                    self.value(key, v.item(), flat)
                    return
                arr = _to_numpy(v)
            except Exception as e:
                self.warn(key, f"log() skipped key {key!r}: could not read {type(v).__name__}: {e}")
                return
            if arr.size <= 32 and arr.ndim == 1:
                self.value(key, arr.tolist(), flat)
                return
            from .media import Histogram

            hist = Histogram(arr)
            if hist._problem is not None:  # text, objects, only NaN
                self.warn(key, f"log() skipped key {key!r}: an array of {arr.dtype} with "
                               f"{arr.size} values cannot be a histogram: {hist._problem}")
                return
            self.value(key, hist, flat)
            return
        m = _media().as_media(v)  # a matplotlib or plotly figure
        if m is not None:
            self._media(key, m, flat)
            return
        if getattr(v, "_nbtracker_unstored", False):  # wandb.Molecule, Graph: said when made
            return
        self.warn(key, f"log() skipped key {key!r}: values of type {type(v).__module__}."
                       f"{type(v).__qualname__} cannot be logged (use a number, string, dict, "
                       "list, or nbtracker.Image / Histogram / Html / Table / Video / Audio / "
                       "Object3D)")

    def _media(self, key: str, m: Any, flat: dict) -> None:
        """Write a media object; what is wrong with it is one warning naming the key."""
        try:
            flat[key] = self.bind_media(key, m)
        except Exception as e:  # a media object that cannot be written must not stop training
            self.warn(key, f"log() skipped {type(m).__name__} at key {key!r}: {e}")
            return
        if m._notes:
            self.warn(key, f"log() key {key!r} ({type(m).__name__}): " + "; ".join(m._notes))
        companions = getattr(m, "_companions", None)  # a chart's table logged on its own too
        if companions is not None:
            for k, v in companions(key, flat[key]).items():
                flat.setdefault(k, v)

    def _media_list(self, key: str, items: Any, flat: dict) -> None:
        """Several media under one key: a media-list reference; items that cannot be written
        are left out with one warning."""
        ref, notes = _media().bind_list(list(items), lambda m: self.bind_media(key, m))
        if ref is not None:
            flat[key] = ref
        if notes:
            what = "log() skipped" if ref is None else "log() key"
            self.warn(key, f"{what} {key!r} (a list of media): " + "; ".join(notes))


def _media():
    from . import media

    return media


def _numel(v: Any) -> int:
    n = getattr(v, "size", None)
    if callable(n):  # torch: size() is a method; numel() the count
        return v.numel()
    return int(n) if n is not None else v.numel()


def _to_numpy(v: Any):
    import numpy as np

    if hasattr(v, "detach"):  # torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v)
