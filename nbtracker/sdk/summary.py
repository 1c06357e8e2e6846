"""Summary: one value per metric for run tables — the last logged value unless a rule or a value
set by hand says otherwise.

>>> run.summary["best_acc"] = 0.97        # set by hand: wins over logged values
>>> run.summary["loss"]                    # last logged loss, or min/max/... per define_metric
>>> run.summary["val"]                     # {"loss": ...} for metrics logged as val/loss
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


def nest(flat: dict) -> dict:
    """{"a/b": 1, "c": 2} -> {"a": {"b": 1}, "c": 2}."""
    out: dict = {}
    for k, v in flat.items():
        parts = k.split("/")
        d = out
        for p in parts[:-1]:
            nxt = d.get(p)
            if not isinstance(nxt, dict):
                nxt = d[p] = {}
            d = nxt
        if parts[-1] in d and isinstance(d[parts[-1]], dict) and not isinstance(v, dict):
            continue  # "a" and "a/b" both logged: keep the nested one
        d[parts[-1]] = v
    return out


class Summary:
    def __init__(self, get_all: Callable[[], dict],
                 set_values: Callable[[dict], None] | None,
                 delete: Callable[[list], None] | None):
        self._get_all = get_all
        self._set = set_values
        self._delete = delete

    def _all(self) -> dict:
        return self._get_all()

    def __getitem__(self, key: str) -> Any:
        d = self._all()
        if key in d:
            return d[key]
        prefix = key + "/"
        sub = {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}
        if sub:
            return nest(sub)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"summary has no key {key!r}") from None

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, d: dict | None = None, **kwargs: Any) -> None:
        values = dict(d or {})
        values.update(kwargs)
        if self._set is None:
            raise TypeError("this summary is read-only")
        if values:
            self._set(values)

    def __delitem__(self, key: str) -> None:
        if self._delete is None:
            raise TypeError("this summary is read-only")
        if key not in self._all():
            raise KeyError(key)
        self._delete([key])

    def __contains__(self, key: object) -> bool:
        try:
            self[key]  # type: ignore[index]
            return True
        except KeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def keys(self):
        return self._all().keys()

    def items(self):
        return self._all().items()

    def values(self):
        return self._all().values()

    def as_dict(self, nested: bool = False) -> dict:
        d = dict(self._all())
        return nest(d) if nested else d

    def __eq__(self, other: object) -> bool:
        return dict(self._all()) == (dict(other) if hasattr(other, "keys") else other)

    def __repr__(self) -> str:
        return f"Summary({self._all()!r})"
