"""Config: a run's hyperparameters, used as a dict or with attributes.

>>> run.config.update({"batch_size": 64}); run.config.dropout = 0.2; run.config["lr"]
>>> run.config.update(argparse_args)        # an argparse Namespace (or any object with __dict__)

A value once set keeps its value: changing it needs `update(..., allow_val_change=True)`;
otherwise the change is reported and the recorded value stays, so the config always says what
the run was started with.

An update replaces each top-level key it names as a whole (`update({"opt": {"lr": 1}})` leaves
no other key under "opt"), the rule the record log replays (`store.state.merge_config`). What
`on_change` receives is a copy: changing a nested value in place (`config["opt"]["lr"] = 5`)
records nothing, and reaches nothing else either.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any


def as_mapping(obj: Any) -> dict:
    """A dict from a dict, Config, argparse Namespace, or any object with attributes."""
    if obj is None:
        return {}
    if isinstance(obj, Config):
        return obj.as_dict()
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict") and callable(obj.to_dict):  # omegaconf-like, pydantic v1
        return dict(obj.to_dict())
    if hasattr(obj, "model_dump"):  # pydantic v2
        return dict(obj.model_dump())
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise TypeError(f"config must be a dict or an object with attributes, not {type(obj).__name__}")


def clean(v: Any) -> Any:
    """A JSON-friendly copy of a config value (numpy scalars to numbers, paths to text)."""
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return float(v)
    if isinstance(v, Mapping):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, set, frozenset)):
        return [clean(x) for x in v]
    if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
        return clean(v.item())
    if hasattr(v, "tolist"):
        return clean(v.tolist())
    return str(v)


def same_value(a: Any, b: Any) -> bool:
    """Whether `b` would read back as `a`: equal values of the same types all the way down
    (0, 0.0 and False are three values; NaN is the same as NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(same_value, a, b))
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


class Config:
    def __init__(self, items: dict | None = None,
                 on_change: Callable[[dict], None] | None = None,
                 warn: Callable[[str, str], None] | None = None):
        object.__setattr__(self, "_items", copy.deepcopy(dict(items or {})))
        object.__setattr__(self, "_on_change", on_change)
        object.__setattr__(self, "_warn", warn)
        object.__setattr__(self, "_allow_changes", False)
        object.__setattr__(self, "_locked", frozenset())  # a sweep's parameters (init())

    # -- writing -----------------------------------------------------------------------
    def update(self, d: Any = None, allow_val_change: bool = False, **kwargs: Any) -> None:
        new = as_mapping(d)
        new.update(kwargs)
        # every value cleaned before any is set: a value that cannot be cleaned changes nothing
        new = {str(k): clean(v) for k, v in new.items()}
        changed = {}
        for k, v in new.items():
            if k in self._items and not same_value(self._items[k], v):
                if k in self._locked:  # as wandb: the sweep's value stays, whatever is asked
                    msg = (f"config[{k!r}] is the sweep's value {self._items[k]!r}; the update "
                           f"to {v!r} is ignored")
                    if self._warn is not None:
                        self._warn(f"config-locked:{k}", msg)
                    continue
                if not (allow_val_change or self._allow_changes):
                    msg = (f"config[{k!r}] is {self._items[k]!r}; not changed to {v!r}. "
                           "Use config.update({...}, allow_val_change=True) to change it.")
                    if self._warn is not None:
                        self._warn(f"config:{k}", msg)
                        continue
                    raise ValueError(msg)
            elif k in self._items:
                continue
            self._items[k] = v
            changed[k] = v
        if changed and self._on_change is not None:
            self._on_change(copy.deepcopy(changed))

    def setdefaults(self, d: Any) -> None:
        self.update({k: v for k, v in as_mapping(d).items() if k not in self._items})

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise TypeError("config keys cannot be removed from a run; set a new value instead")

    # -- reading -----------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self):
        return self._items.keys()

    def items(self):
        return self._items.items()

    def values(self):
        return self._items.values()

    def as_dict(self) -> dict:
        return dict(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Config):
            return self._items == other._items
        return isinstance(other, Mapping) and self._items == dict(other)

    def __repr__(self) -> str:
        return f"Config({self._items!r})"
