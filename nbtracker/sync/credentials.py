"""API keys for team servers: where they are looked up, how they are kept, how they are shown.

Lookup for a server `base_url`, first found wins:

    1. NBTRACKER_API_KEY, else WANDB_API_KEY (the environment)
    2. `<store root>/credentials.json`: `{"<base_url>": "<key>", ...}`, written by `nbtracker login`
    3. a legacy `api_key` in `<store root>/settings.json`

`credentials.json` is written atomically (a temporary file created with mode 0600, then renamed)
and kept at mode 0600, so a key is never readable by other users even for a moment.

A key is never printed, logged or written into a run: where one has to be named, `mask` shows
its prefix and last four characters (`nbt_…abcd`).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

CREDENTIALS_NAME = "credentials.json"

_KEY_RE = re.compile(r"nbt_[A-Za-z0-9_-]{8,}")


def normalise_url(url: str) -> str:
    """A server address as keys are filed under: scheme and host, no trailing slash."""
    url = str(url).strip().rstrip("/")
    if "://" not in url:
        raise ValueError(f"server address {url!r} needs its scheme, e.g. http://127.0.0.1:8080")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"server address {url!r}: use http:// or https://")
    return url


def mask(key: str | None) -> str:
    """A key as it may be shown: `nbt_…abcd`."""
    if not key:
        return "(none)"
    prefix = "nbt_" if key.startswith("nbt_") else ""
    return f"{prefix}…{key[-4:]}" if len(key) > 8 else "…"


def scrub(text: str) -> str:
    """`text` with anything that looks like an nbtracker key masked (server messages, errors)."""
    return _KEY_RE.sub(lambda m: mask(m.group()), str(text))


def credentials_path(root: Path) -> Path:
    return Path(root) / CREDENTIALS_NAME


def read_credentials(root: Path) -> dict[str, str]:
    try:
        with open(credentials_path(root), encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return {}
    if not isinstance(d, dict):
        return {}
    return {str(k): v for k, v in d.items() if isinstance(v, str)}


def store_key(root: Path, base_url: str, key: str) -> Path:
    """Keep `key` for `base_url` in `credentials.json` (mode 0600, replaced atomically)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    creds = read_credentials(root)
    creds[normalise_url(base_url)] = key
    path = credentials_path(root)
    tmp = path.with_name(f".{CREDENTIALS_NAME}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode does not apply to a file left by a crash
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(creds, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    os.replace(tmp, path)
    return path


def lookup_key(base_url: str | None, root: Path, settings_file: dict | None = None) -> str | None:
    """The API key for `base_url`, in the order of the module docstring."""
    for var in ("NBTRACKER_API_KEY", "WANDB_API_KEY"):
        v = (os.environ.get(var) or "").strip()  # `export KEY=$(cat file)` keeps a newline
        if v:
            return v
    if base_url:
        try:
            url = normalise_url(base_url)
        except ValueError:
            url = base_url
        key = read_credentials(root).get(url)
        if key:
            return key
    legacy = (settings_file or {}).get("api_key")
    return legacy if isinstance(legacy, str) and legacy else None


def login(base_url: str, key: str, root: Path) -> dict:
    """Check `key` against the server (`GET /whoami`) and, if it is taken, keep it for
    `base_url` and make `base_url` the default server. Returns whoami's answer; raises
    ValueError (bad address), UploadError (refused, unreachable) and stores nothing then."""
    from ..sdk.settings import write_setting
    from .client import Client

    url = normalise_url(base_url)
    key = key.strip()
    if not key:
        raise ValueError("the API key is empty")
    client = Client(url, key, timeout=(5.0, 15.0))
    try:
        who = client.whoami()
    finally:
        client.close()
    store_key(root, url, key)
    write_setting(Path(root), base_url=url, api_key=None)  # a legacy key must not outrank it
    return who
