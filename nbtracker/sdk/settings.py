"""Settings: keyword arguments > environment > settings file > defaults.

Environment variables are read as NBTRACKER_<NAME>, falling back to WANDB_<NAME> for drop-in use.
The settings file is `<store root>/settings.json`, written by `nbtracker offline|online` and `login`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..store import layout

MODES = ("online", "offline", "disabled")
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def env(name: str) -> str | None:
    v = os.environ.get("NBTRACKER_" + name)
    if v is None or v == "":
        v = os.environ.get("WANDB_" + name)
    return v if v not in (None, "") else None


def truthy(v) -> bool:
    return str(v).strip().lower() in _TRUE


def root_from_env() -> Path:
    d = env("DIR")
    return Path(d).expanduser().resolve() if d else layout.default_root()


def resolve_root(path: str | os.PathLike) -> Path:
    """A store root from a user-given folder: the folder itself, or its `nbtracker/` store."""
    p = Path(path).expanduser()
    inner = p / "nbtracker"
    if not (p / "runs").is_dir() and not (p / "index.sqlite").exists() and inner.is_dir():
        return inner
    return p


def read_file(root: Path) -> dict:
    try:
        with open(root / "settings.json", encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def write_setting(root: Path, **values) -> Path:
    """Persist settings in `<root>/settings.json` (None removes a key)."""
    root.mkdir(parents=True, exist_ok=True)
    d = read_file(root)
    for k, v in values.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    path = root / "settings.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(d, f, indent=2)
    os.replace(tmp, path)
    return path


def normalise_mode(mode: str | None) -> str | None:
    if mode is None:
        return None
    m = str(mode).strip().lower()
    m = {"dryrun": "offline", "run": "online", "shared": "online"}.get(m, m)
    if m not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (or 'dryrun'), not {mode!r}")
    return m


@dataclass
class Settings:
    root: Path
    project: str
    mode: str
    base_url: str | None
    api_key: str | None
    strict: bool

    @classmethod
    def resolve(cls, project: str | None = None, mode: str | None = None,
                root: str | os.PathLike | None = None) -> Settings:
        root_p = Path(root).expanduser().resolve() if root is not None else root_from_env()
        f = read_file(root_p)
        base_url = env("BASE_URL") or f.get("base_url")
        m = normalise_mode(mode) or normalise_mode(env("MODE")) or normalise_mode(f.get("mode"))
        if m is None:
            m = "online" if base_url else "offline"
        return cls(
            root=root_p,
            project=project or env("PROJECT") or f.get("project") or "uncategorized",
            mode=m,
            base_url=base_url,
            api_key=env("API_KEY") or f.get("api_key"),
            strict=truthy(env("STRICT") or f.get("strict") or ""),
        )
