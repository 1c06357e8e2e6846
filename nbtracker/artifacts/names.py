"""Artifact names, aliases and entry paths: labels checked once, never used as file system paths.

An artifact name (`mnist`, `mnist-cnn.v2`, `run-1a2b3c-model.pt`) and a type (`dataset`, `model`)
are labels: letters, digits, `-`, `_` and `.`, up to 128 characters, not `.` or `..`. On disk a
collection lives in a folder named from the label (registry.label_folder: percent-encoded, with a
hash for capitals and long names), so a label never reaches the file system as written. An alias is
a label too, and may not look like a version (`v3`). A path inside an artifact (`images/cat.png`)
is relative, POSIX, with no `..`, empty or `.` part, no backslash, and no NUL or control
characters.

References to a version: `name`, `name:alias`, `name:v3`, `project/name:alias` or
`entity/project/name:alias`; without `:…` the version is `latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ArtifactError

_LABEL = re.compile(r"^[\w.\-]{1,128}$")  # \w: letters and digits of any script, and _
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
VERSION_RE = re.compile(r"^v(\d{1,18})$")
LATEST = "latest"


def _label(kind: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ArtifactError(f"an artifact {kind} must be a non-empty string, not {value!r}")
    if _CONTROL.search(value):
        raise ArtifactError(f"artifact {kind} {value!r} holds a control character")
    if value in (".", "..") or ".." in value:
        raise ArtifactError(f"artifact {kind} {value!r} may not contain '..'")
    if not _LABEL.match(value):
        raise ArtifactError(
            f"artifact {kind} {value!r} is not valid: use up to 128 letters, digits, '-', '_' "
            f"or '.' (no '/', ':' or spaces)")
    return value


def check_name(name: object) -> str:
    """An artifact (collection) name, or ArtifactError saying what is wrong."""
    return _label("name", name)


def check_type(type_: object) -> str:
    return _label("type", type_)


def check_alias(alias: object) -> str:
    alias = _label("alias", alias)
    if VERSION_RE.match(alias):
        raise ArtifactError(f"{alias!r} names a version and cannot be an alias")
    return alias


def check_aliases(aliases: object) -> list[str]:
    if aliases is None:
        return []
    if isinstance(aliases, str):
        aliases = [aliases]
    if not isinstance(aliases, (list, tuple, set)):
        raise ArtifactError(f"aliases must be a list of strings, not {type(aliases).__name__}")
    return list(dict.fromkeys(check_alias(a) for a in aliases))


def check_tags(tags: object) -> list[str]:
    """Tags: a label or a list of labels (a string is one tag, not its letters)."""
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    if not isinstance(tags, (list, tuple, set)):
        raise ArtifactError(f"tags must be a list of strings, not {type(tags).__name__}")
    return list(dict.fromkeys(_label("tag", t) for t in tags))


def check_path(path: object) -> str:
    """A path inside an artifact, normalised (`a//b`, `./a` → `a/b`, `a`); ArtifactError for an
    absolute path, `..`, a backslash, NUL or control characters."""
    if not isinstance(path, str) or not path:
        raise ArtifactError(f"a file name in an artifact must be a non-empty string, not {path!r}")
    if _CONTROL.search(path):
        raise ArtifactError(f"file name {path!r} holds a control character (NUL included)")
    if "\\" in path:
        raise ArtifactError(f"file name {path!r} holds a backslash: use '/' between folders")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise ArtifactError(f"file name {path!r} is absolute: names in an artifact are relative")
    parts = [x for x in path.split("/") if x not in ("", ".")]
    if ".." in parts:
        raise ArtifactError(f"file name {path!r} may not contain '..'")
    if not parts:
        raise ArtifactError(f"file name {path!r} names no file")
    if len(path.encode("utf-8", "surrogatepass")) > 4096:
        raise ArtifactError(f"file name {path[:40]!r}… is longer than 4096 bytes")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ArtifactError(f"file name {path!r} is not valid UTF-8") from None
    return "/".join(parts)


@dataclass(frozen=True)
class Ref:
    """A parsed reference to an artifact version."""

    project: str | None
    name: str
    selector: str  # "latest", an alias, or "v3"

    @property
    def version(self) -> int | None:
        m = VERSION_RE.match(self.selector)
        return int(m.group(1)) if m else None


def parse_ref(text: object, project: str | None = None) -> Ref:
    """`[[entity/]project/]name[:alias|:vN]`; `project` when the text names none."""
    if not isinstance(text, str) or not text:
        raise ArtifactError(f"an artifact reference must be a string like 'mnist:v1', not {text!r}")
    if _CONTROL.search(text):
        raise ArtifactError(f"artifact reference {text!r} holds a control character")
    head, sep, selector = text.rpartition(":")
    if not sep:
        head, selector = text, LATEST
    parts = head.split("/")
    if any(p in (".", "..") for p in parts):
        raise ArtifactError(f"artifact reference {text!r} may not contain '..' or '.' as a part")
    if len(parts) > 3 or any(not p for p in parts):
        raise ArtifactError(f"artifact reference {text!r} is not '[project/]name[:alias]'")
    name = check_name(parts[-1])
    if len(parts) >= 2:
        from ..store.layout import check_project

        try:
            project = check_project(parts[-2])
        except ValueError as e:
            raise ArtifactError(str(e)) from None
    if not selector:
        raise ArtifactError(f"artifact reference {text!r} ends in ':' with no version or alias")
    if not VERSION_RE.match(selector):
        _label("alias", selector)
    return Ref(project, name, selector)
