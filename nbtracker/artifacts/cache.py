"""The download cache: files an artifact references elsewhere (http(s)://, s3://, gs://, …),
fetched through fsspec when a version is downloaded, kept for the next download, and held
under a size cap.

    <store root>/cache/artifacts/<2 hex>/<62 hex: sha256 of the URI and its version>

or `nbtracker-artifacts/` in the folder NBTRACKER_CACHE_DIR (or WANDB_CACHE_DIR) names; only
names of that shape are counted or removed. The cap is NBTRACKER_ARTIFACT_CACHE_MAX ("10GB",
"500MB", bytes; default 10GB): after a download that fetched something, the least recently
used files go until the cache fits (a cached copy another process removes meanwhile is fetched
again). `nbtracker artifact cache cleanup --max-size 1GB`
does the same by hand. A cached copy is used again only when the remote says it is the same
(its ETag, or version id, or size and modification time, as fsspec reports them) and, when the
manifest holds the file's SHA-256, when it has that hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from pathlib import Path

from .errors import ArtifactError

DEFAULT_MAX = 10 * 1000**3
_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
          "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}


def parse_size(text: str | int) -> int:
    """"10GB", "500MB", "1.5GiB", "12345" → bytes."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        raise ArtifactError(f"not a size: {text!r} (use bytes or a unit: 500MB, 10GB, 1GiB)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def cache_dir(store_root: Path) -> Path:
    """`<store root>/cache/artifacts`, or `nbtracker-artifacts` in the folder NBTRACKER_CACHE_DIR
    (or WANDB_CACHE_DIR) names: never a folder another program keeps its files in."""
    base = os.environ.get("NBTRACKER_CACHE_DIR") or os.environ.get("WANDB_CACHE_DIR")
    if base:
        return Path(base).expanduser() / "nbtracker-artifacts"
    return Path(store_root) / "cache" / "artifacts"


def cache_max() -> int:
    text = os.environ.get("NBTRACKER_ARTIFACT_CACHE_MAX")
    return parse_size(text) if text else DEFAULT_MAX


def _filesystem(uri: str):
    try:
        import fsspec
    except ImportError:
        raise ArtifactError(f"downloading {uri} needs fsspec (pip install fsspec, and the "
                            f"package for its scheme: aiohttp for http, s3fs for s3://, "
                            f"gcsfs for gs://)") from None
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except (ImportError, ValueError) as e:
        raise ArtifactError(f"cannot fetch {uri}: {e}") from None
    return fs, path


_VALIDATORS = ("ETag", "etag", "VersionId", "version_id", "generation", "md5Hash", "Content-MD5",
               "Digest", "Last-Modified", "LastModified", "mtime", "updated", "created")


def _version_of(info: dict) -> str | None:
    """What says which content a remote path holds now (with its size), or None when the
    remote says nothing of the kind: then a cached copy is never trusted."""
    found = [f"{k}={_plain(info[k])}" for k in _VALIDATORS if info.get(k)]
    return ";".join([f"size={info.get('size')}", *found]) if found else None


def _plain(v: object) -> str:
    """One spelling of a validator, whichever call of the backend gave it (a listing may give
    a time as a number where `info` gives a datetime)."""
    import datetime

    if isinstance(v, datetime.datetime):
        v = v.timestamp()
    if isinstance(v, float):
        return f"{v:.6f}"
    return str(v)


DESCRIBE_TIMEOUT = 30.0


def describe(uri: str, max_objects: int | None = None) -> list[tuple[str, str | None, dict]]:
    """What the remote says of `uri` (metadata only, no content): [(uri, relative path or None,
    info)] — one object, or each object under a prefix (sorted, at most `max_objects`). Raises
    FileNotFoundError when there is nothing there, ArtifactError when fsspec or the package for
    the scheme is missing, TimeoutError when the remote does not answer in time."""
    import concurrent.futures

    fs, path = _filesystem(uri)

    def ask() -> list[tuple[str, str | None, dict]]:
        info = fs.info(path)
        if info.get("type") != "directory":
            return [(uri, None, info)]
        base = path.rstrip("/")
        found = fs.find(base, detail=True)
        out = []
        for name in sorted(found):
            rel = name[len(base):].lstrip("/") if name.startswith(base) else None
            if not rel or found[name].get("type") == "directory":
                continue
            out.append((uri.rstrip("/") + "/" + rel, rel, found[name]))
            if max_objects is not None and len(out) >= max_objects:
                break
        return out

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(ask).result(timeout=DESCRIBE_TIMEOUT)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"{uri} did not answer in {DESCRIBE_TIMEOUT:.0f} s") from None
    finally:
        pool.shutdown(wait=False)


def version_of(info: dict) -> str | None:
    """The validator a reference records: see `_version_of`."""
    return _version_of(info)


def fetch(store_root: Path, uri: str, digest: str | None, label: str,
          expected: str | None = None) -> Path:
    """A local copy of what `uri` holds now: the cached one when still current, else fetched
    into the cache. `expected` is what the remote said of it when it was logged (its ETag or
    the like, `version_of`): a remote that says otherwise now holds other bytes, and raises
    ArtifactCorrupt before anything is fetched."""
    from .errors import ArtifactCorrupt
    from .objects import copy_checked

    fs, path = _filesystem(uri)
    try:
        info = fs.info(path)
    except FileNotFoundError:
        raise
    except Exception as e:  # noqa: BLE001 - any backend's failure: one clear line
        raise ArtifactError(f"{label}: cannot reach {uri}: {e}") from None
    if info.get("type") == "directory":
        raise ArtifactError(f"{label}: {uri} is a folder, not a file")
    version = _version_of(info)
    if expected is not None and version != expected:
        raise ArtifactCorrupt(f"{label}: {uri} changed since it was logged (it was {expected}, "
                              f"it is {version}); it was not downloaded", [label])
    key = hashlib.sha256(f"{uri}\0{version}".encode()).hexdigest()
    root = cache_dir(store_root)
    target = root / key[:2] / key[2:]
    if version is not None and target.exists():
        os.utime(target)
        return target
    try:
        copy_checked(None, digest, target, label, opener=lambda: fs.open(path, "rb"))
    except FileNotFoundError:
        raise
    except (OSError, ArtifactError):
        raise
    except Exception as e:  # noqa: BLE001
        raise ArtifactError(f"{label}: fetching {uri} failed: {e}") from None
    return target


def usage(store_root: Path) -> tuple[int, int]:
    """(files, bytes) in the cache."""
    files = [p for p in _entries(cache_dir(store_root))]
    return len(files), sum(st.st_size for _, st in files)


def _entries(root: Path) -> list[tuple[Path, os.stat_result]]:
    """The cached files (and stale partial ones): only names this cache gives, so nothing
    else that may sit in the folder is counted or removed."""
    out = []
    try:
        heads = list(os.scandir(root))
    except FileNotFoundError:
        return out
    for h in heads:
        if not (_HEX.fullmatch(h.name) and len(h.name) == 2 and h.is_dir(follow_symlinks=False)):
            continue
        for e in os.scandir(h.path):
            m = _CACHED.fullmatch(e.name)
            if not m or not e.is_file(follow_symlinks=False):
                continue
            try:
                st = e.stat()
            except OSError:
                continue
            if m.group(1) and st.st_mtime > time.time() - 3600:
                continue  # being written
            out.append((Path(e.path), st))
    return out


_HEX = re.compile(r"[0-9a-f]+")
_CACHED = re.compile(r"(\.)?[0-9a-f]{62}(?:\.[0-9a-f]{8}\.part)?")


def cleanup(store_root: Path, max_size: int, keep: set[Path] = frozenset()) -> tuple[int, int]:
    """Remove the least recently used cached files until the cache holds at most `max_size`
    bytes. Returns (files removed, bytes freed)."""
    files = sorted(_entries(cache_dir(store_root)), key=lambda x: x[1].st_mtime)
    total = sum(st.st_size for _, st in files)
    removed = freed = 0
    for p, st in files:
        if total <= max_size:
            break
        if p in keep:
            continue
        try:
            p.unlink()
        except OSError:
            continue
        total -= st.st_size
        freed += st.st_size
        removed += 1
    return removed, freed
