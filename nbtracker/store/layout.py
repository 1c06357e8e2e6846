"""Where things live on disk: the store root, run directories and their files.

    <root>/settings.json                persisted settings (`nbtracker offline`, `login`)
    <root>/credentials.json             API keys per team server, mode 0600 (`sync/credentials.py`)
    <root>/index.sqlite                 run index, derived from the record logs
    <root>/runs/<project>/<run_id>/     one directory per run
        records.jsonl                   the record log (source of truth)
        edits.jsonl                     Api edits, folded into the log when it is next opened (store.py)
        lock                            held (flock) while the run's process is alive
        debug.log                       details that are not printed
        files/                          files saved with `save()`; `run.dir`
        media/                          images, html and tables logged with `log()`
        upload.json                     upload cursor for a team server (`sync/cursor.py`)

A run started with `init(dir=D)` lives in `D/nbtracker/runs/<project>/<run_id>/`; the `roots`
file at the store root remembers where (see store.py), so `Api()` finds it.

`<project>` is the project name percent-encoded as UTF-8 (`mnist`, `%E4%B8%AD%E6%96%87`). File
systems limit a name to 255 bytes and the encoding takes up to 9 bytes per character, so an
encoded name longer than FOLDER_MAX bytes is cut (at a character) and given a hash of the whole
name: `<encoded prefix>~<16 hex digits of sha256(name)>`. The real name is in the record log;
the folder only has to be found again from it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

LOG_NAME = "records.jsonl"
LOCK_NAME = "lock"
DEBUG_NAME = "debug.log"
FILES_DIR = "files"
MEDIA_DIR = "media"

FOLDER_MAX = 255  # NAME_MAX: names that fit keep the plain encoding they always had
_HASH_LEN = 16

_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def default_root() -> Path:
    return Path(os.path.expanduser("~")) / ".nbtracker"


def check_project(project: str) -> str:
    """Validate a project name; return it. Names may hold any printable text except '/'."""
    if not isinstance(project, str) or not project.strip():
        raise ValueError("project name must be a non-empty string")
    if len(project) > 128:
        raise ValueError(f"project name is {len(project)} characters long; the limit is 128")
    if _CONTROL_RE.search(project) or "/" in project or "\\" in project or project.strip(".") == "":
        raise ValueError(f"project name {project!r} may not contain '/', '\\' or control characters")
    return project


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _ID_RE.match(run_id):
        raise ValueError(
            f"run id {run_id!r} is not valid: use 1-64 letters, digits, '-' or '_'"
        )
    return run_id


def project_folder(project: str) -> str:
    """The folder name of a project under `runs/` (see the module docstring)."""
    # quote() never emits '/', and check_project() rules out '.' and '..': the result is one
    # path component whatever the project name holds.
    folder = _quote(check_project(project))
    if len(folder) <= FOLDER_MAX:  # quote() output is ASCII: characters are bytes
        return folder
    digest = hashlib.sha256(project.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LEN]
    keep = FOLDER_MAX - _HASH_LEN - 1
    prefix = ""
    for ch in project:
        q = _quote(ch)
        if len(prefix) + len(q) > keep:
            break
        prefix += q
    return f"{prefix}~{digest}"


def _quote(text: str) -> str:
    return quote(text, safe="-_.~ ", errors="surrogatepass")


def run_dir(base: Path, project: str, run_id: str) -> Path:
    """Directory of a run under a store root or under the `nbtracker/` folder of `init(dir=)`."""
    return Path(base) / "runs" / project_folder(project) / check_run_id(run_id)


def run_file(run_dir: Path, path: Any, folders: tuple[str, ...] = (MEDIA_DIR,)) -> Path:
    """The regular file a record's `path` label names inside one of a run's `folders`, or
    ValueError. The label must be relative, with no `..`, backslash, NUL or drive, start with
    one of `folders`, and resolve (links followed) inside that folder of `run_dir`; what it
    resolves to must be a regular file (not a pipe, device or folder), so reading it neither
    blocks nor leaves the run."""
    if not isinstance(path, str) or not path or "\0" in path or "\\" in path:
        raise ValueError(f"bad file path {path!r}")
    p = PurePosixPath(path)
    if p.is_absolute() or ".." in p.parts or len(p.parts) < 2 or p.parts[0] not in folders \
            or ":" in p.parts[0]:
        raise ValueError(f"bad file path {path!r}: not a file under {' or '.join(folders)}/")
    root = (Path(run_dir) / p.parts[0]).resolve()
    full = (Path(run_dir) / p).resolve()
    if root not in full.parents:
        raise ValueError(f"bad file path {path!r}: outside the run's {p.parts[0]}/ folder")
    try:
        mode = full.stat().st_mode
    except OSError:
        raise ValueError(f"no such file: {path}") from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file")
    return full


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB chunks (saved files, media, blobs)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
