"""The artifact registry of a store: collections, their versions and aliases, on disk.

    <root>/artifacts/lock                                    flock: numbering, aliases, deletes
    <root>/artifacts/collections/<project>/<name>/
        collection.json    {"project", "name", "type", "next", "digests": {digest: N},
                            "aliases": {alias: N}, "created"}
        v<N>.json          one version: its manifest ("entries": {path: {"digest", "size"[,
                           "ref"]}}), "digest" (of the manifest), "description", "metadata",
                           "tags", "created", "updated", "created_by" ({"project", "id"} of the
                           run that logged it, or null), "size", "file_count"

`<project>` and `<name>` are the labels percent-encoded, with a hash for names holding capitals or
too long for a folder (`label_folder`), never the text as given. Every change happens under the
lock and ends with one atomic rename of `collection.json`, so a version number is given once even
to two processes logging the same name at the same moment, and aliases move together (`latest` to
the version logged last). A version is written (and synced) before the collection names it; a crash
in between leaves a file a later version number overwrites. The version's digest is the hash of its
manifest: logging the same content again returns the version that holds it.

Which runs logged and used each version is in the runs' record logs (`artifact` records, see
store/state.py); `created_by` is a copy kept for speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..store.lock import flocked
from .errors import ArtifactError, ArtifactNotFound
from .names import LATEST, VERSION_RE
from .objects import Objects, pinned

COLLECTION = "collection.json"
_VERSION_FILE = re.compile(r"^v(\d+)\.json$")


def manifest_digest(entries: dict[str, dict]) -> str:
    """The digest of a manifest: what its files are, not how they were added."""
    rows = [[p, e.get("ref"), e.get("digest"), e.get("size"), *([e["etag"]] if e.get("etag") else [])]
            for p, e in sorted(entries.items())]
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


FOLDER_MAX = 200


def label_folder(label: str) -> str:
    """The folder of a project or artifact name: the name percent-encoded, or, for a name with
    capitals or too long for a folder, a prefix of that and `~` and 16 hex digits of its hash —
    so two names never share a folder, also on a disk that folds case or caps name length."""
    q = quote(label, safe="-_.").replace("~", "%7E")
    if label == label.lower() and len(q) <= FOLDER_MAX:
        return q
    digest = hashlib.sha256(label.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    prefix = ""
    for ch in label.lower():
        part = quote(ch, safe="-_.").replace("~", "%7E")
        if len(prefix) + len(part) > FOLDER_MAX - 17:
            break
        prefix += part
    return f"{prefix}~{digest}"


def write_json(path: Path, doc: Any) -> None:
    """Write `doc` to `path` atomically and durably (temporary file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = json.dumps(doc, ensure_ascii=False, allow_nan=True).encode("utf-8")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)  # a full disk leaves no half-written file behind
        except OSError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise ArtifactError(f"cannot read {path}: {e}") from None


class Registry:
    def __init__(self, store_root: str | os.PathLike):
        self.store_root = Path(store_root).expanduser().resolve()
        self.root = self.store_root / "artifacts"
        self.objects = Objects(self.root)

    # -- places ----------------------------------------------------------------------------
    def collection_dir(self, project: str, name: str) -> Path:
        return self.root / "collections" / label_folder(project) / label_folder(name)

    def lock(self):
        return flocked(self.root / "lock")

    # -- reading ---------------------------------------------------------------------------
    def collection(self, project: str, name: str) -> dict | None:
        doc = read_json(self.collection_dir(project, name) / COLLECTION)
        if not isinstance(doc, dict) or doc.get("name") != name or doc.get("project") != project:
            return None
        return doc

    def _version_doc(self, coll: dict, n: int) -> dict | None:
        folder = self.collection_dir(coll["project"], coll["name"])
        doc = read_json(folder / f"v{n}.json")
        if not isinstance(doc, dict) or doc.get("version") != n or n >= coll["next"] \
                or coll["digests"].get(doc.get("digest")) != n:
            return None
        doc["aliases"] = sorted(a for a, v in coll["aliases"].items() if v == n)
        return doc

    def resolve(self, project: str, name: str, selector: str = LATEST) -> dict:
        """The version `selector` ("latest", an alias or "v3") names, or ArtifactNotFound."""
        coll = self.collection(project, name)
        if coll is None:
            raise ArtifactNotFound(f"no artifact {name!r} in project {project!r}")
        m = VERSION_RE.match(selector)
        n = int(m.group(1)) if m else coll["aliases"].get(selector)
        doc = self._version_doc(coll, n) if isinstance(n, int) else None
        if doc is None:
            have = ", ".join([f"v{v}" for v in sorted(set(coll["digests"].values()))]
                             + sorted(coll["aliases"])) or "none"
            raise ArtifactNotFound(f"artifact {name!r} in project {project!r} has no version "
                                   f"or alias {selector!r} (it has: {have})")
        return doc

    def versions(self, project: str, name: str) -> list[dict]:
        coll = self.collection(project, name)
        if coll is None:
            return []
        docs = [self._version_doc(coll, n) for n in sorted(set(coll["digests"].values()))]
        return [d for d in docs if d is not None]

    def collections(self, project: str | None = None, strict: bool = False) -> list[dict]:
        """The collections of a project (all when None). One that cannot be read is left out
        with a warning, or raises ArtifactError when `strict` (deleting must not guess)."""
        base = self.root / "collections"
        folders = [base / label_folder(project)] if project else _subdirs(base)
        out = []
        for folder in folders:
            for d in _subdirs(folder):
                try:
                    doc = read_json(d / COLLECTION)
                except ArtifactError as e:
                    if strict:
                        raise
                    from ..sdk.output import warn

                    warn(f"{e}; that artifact is left out")
                    continue
                if isinstance(doc, dict) and (project is None or doc.get("project") == project):
                    out.append(doc)
        out.sort(key=lambda c: (c.get("project", ""), c.get("name", "")))
        return out

    def referenced(self, skip: tuple | None = None) -> set[str]:
        """Every object digest some version's manifest names (but the version `skip`, a
        (project, name, version)), or a draft of a live process holds. ArtifactError when a
        collection or version cannot be read: a delete must not guess. A version's files never
        change, so what a manifest names is read once per process (by its digest)."""
        used = pinned(self.objects.pins)
        for coll in self.collections(strict=True):
            folder = self.collection_dir(coll["project"], coll["name"])
            for digest, n in coll["digests"].items():
                if skip == (coll["project"], coll["name"], n):
                    continue
                held = _MANIFESTS.get(digest)
                if held is None:
                    doc = read_json(folder / f"v{n}.json")
                    if not isinstance(doc, dict) or doc.get("digest") != digest:
                        raise ArtifactError(f"{folder / f'v{n}.json'} is missing or damaged; "
                                            f"nothing was deleted")
                    held = frozenset(e["digest"] for e in doc.get("entries", {}).values()
                                     if not e.get("ref") and e.get("digest"))
                    if len(_MANIFESTS) >= _MANIFESTS_MAX:
                        _MANIFESTS.pop(next(iter(_MANIFESTS)))
                    _MANIFESTS[digest] = held
                used |= held
        return used

    # -- writing ---------------------------------------------------------------------------
    def commit(self, *, project: str, name: str, type: str, entries: dict[str, dict],
               description: str | None, metadata: dict, aliases: list[str], tags: list[str],
               created_by: dict | None, sources: dict[str, Path]) -> tuple[dict, bool]:
        """Log a version: the existing one when its manifest is the same, else the next
        number. `aliases` (and `latest`) move to it. `sources` are the files the entries were
        stored from, to store again an object removed since (a delete at the same moment).
        Returns (the version, whether it is new)."""
        digest = manifest_digest(entries)
        with self.lock():
            folder = self.collection_dir(project, name)
            coll = self.collection(project, name)
            if coll is None and (folder / COLLECTION).exists():
                other = read_json(folder / COLLECTION)
                raise ArtifactError(
                    f"{folder} holds the artifact {other.get('project')}/{other.get('name')}, "
                    f"not {project}/{name}; nothing was written over it")
            if coll is None:
                coll = {"project": project, "name": name, "type": type, "next": 0,
                        "digests": {}, "aliases": {}, "created": time.time()}
            elif coll["type"] != type:
                raise ArtifactError(f"artifact {name!r} in project {project!r} is of type "
                                    f"{coll['type']!r}, not {type!r}")
            n = coll["digests"].get(digest)
            doc = self._version_doc(coll, n) if n is not None else None
            new = doc is None
            if not new:  # the same files again: what this log adds is kept with the version
                merged = {**(doc.get("metadata") or {}), **metadata}
                fields = {"metadata": merged,
                          "tags": list(dict.fromkeys([*(doc.get("tags") or []), *tags]))}
                if description is not None:
                    fields["description"] = description
                if any(doc.get(k) != v for k, v in fields.items()):
                    doc.update(fields, updated=time.time())
                    write_json(folder / f"v{n}.json",
                               {k: v for k, v in doc.items() if k != "aliases"})
            if new:
                self._restore_missing(entries, sources)
                n = coll["next"]
                now = time.time()
                doc = {"project": project, "name": name, "type": type, "version": n,
                       "digest": digest, "description": description, "metadata": metadata,
                       "tags": tags, "created": now, "updated": now, "created_by": created_by,
                       "size": sum(int(e.get("size") or 0) for e in entries.values()),
                       "file_count": len(entries), "entries": entries}
                write_json(folder / f"v{n}.json", doc)
                coll["next"] = n + 1
                coll["digests"][digest] = n
            for a in [LATEST, *aliases]:
                coll["aliases"][a] = n
            write_json(folder / COLLECTION, coll)
            doc["aliases"] = sorted(a for a, v in coll["aliases"].items() if v == n)
            return doc, new

    def _restore_missing(self, entries: dict[str, dict], sources: dict[str, Path]) -> None:
        for path, e in entries.items():
            d = e.get("digest")
            if e.get("ref") or not d or self.objects.has(d, e.get("size")):
                continue
            src = sources.get(path)
            got = None
            if src is not None:
                try:
                    got, _ = self.objects.put_file(src)
                except OSError:
                    pass
            if got != d:
                raise ArtifactError(f"{path}: its stored copy was removed (a version holding "
                                    f"the same bytes was deleted meanwhile) and the file it "
                                    f"came from is gone or changed; add it again")

    def update(self, project: str, name: str, version: int, *, add: list[str] = (),
               remove: list[str] = (), description: Any = ..., metadata: Any = ...,
               tags: Any = ...) -> dict:
        """Change what may change in a version: aliases to `add` (moved here from wherever
        they were) and to `remove` (if still here); `latest` is never moved by hand. Also its
        description, metadata and tags."""
        with self.lock():
            coll = self.collection(project, name)
            doc = self._version_doc(coll, version) if coll else None
            if doc is None:
                raise ArtifactNotFound(f"artifact {name}:v{version} in project {project!r} "
                                       f"is not there (deleted?)")
            folder = self.collection_dir(project, name)
            fields = {"description": description, "metadata": metadata, "tags": tags}
            if any(v is not ... for v in fields.values()):
                for k, v in fields.items():
                    if v is not ...:
                        doc[k] = v
                doc["updated"] = time.time()
                write_json(folder / f"v{version}.json",
                           {k: v for k, v in doc.items() if k != "aliases"})
            add = [a for a in add if a != LATEST]
            remove = [a for a in remove if a != LATEST and coll["aliases"].get(a) == version]
            if add or remove:
                for a in remove:
                    del coll["aliases"][a]
                for a in add:
                    coll["aliases"][a] = version
                write_json(folder / COLLECTION, coll)
            doc["aliases"] = sorted(a for a, v in coll["aliases"].items() if v == version)
            return doc

    def delete(self, project: str, name: str, version: int, delete_aliases: bool = False) -> int:
        """Remove a version: its manifest, its aliases (`latest` moves to the newest version
        left) and then the objects no other version names. Returns the bytes freed."""
        with self.lock():
            coll = self.collection(project, name)
            doc = self._version_doc(coll, version) if coll else None
            if doc is None:
                raise ArtifactNotFound(f"artifact {name}:v{version} in project {project!r} "
                                       f"is not there (deleted already?)")
            held = [a for a, v in coll["aliases"].items() if v == version and a != LATEST]
            if held and not delete_aliases:
                raise ArtifactError(f"{name}:v{version} has the aliases {', '.join(held)}; "
                                    f"pass delete_aliases=True to delete it with them")
            mine = {e["digest"] for e in doc["entries"].values()
                    if not e.get("ref") and e.get("digest")}
            # what else holds the bytes, read before anything changes
            used = self.referenced(skip=(project, name, version)) if mine else set()
            coll["digests"] = {d: v for d, v in coll["digests"].items() if v != version}
            coll["aliases"] = {a: v for a, v in coll["aliases"].items() if v != version}
            if LATEST not in coll["aliases"] and coll["digests"]:
                coll["aliases"][LATEST] = max(coll["digests"].values())
            folder = self.collection_dir(project, name)
            write_json(folder / COLLECTION, coll)
            try:
                os.unlink(folder / f"v{version}.json")
            except FileNotFoundError:
                pass
            return self.objects.collect(mine, used)[1] if mine else 0

    def delete_collection(self, project: str, name: str) -> None:
        """Remove a name whose versions are all deleted (its numbering starts again)."""
        import shutil

        with self.lock():
            coll = self.collection(project, name)
            if coll is None:
                return
            if coll["digests"]:
                raise ArtifactError(f"artifact {name!r} in project {project!r} still has "
                                    f"{len(coll['digests'])} version(s)")
            shutil.rmtree(self.collection_dir(project, name), ignore_errors=True)

    def collect_garbage(self, older_than: float = 3600.0) -> tuple[int, int]:
        """Remove stored objects no version names that were not touched for `older_than`
        seconds (left by artifacts that were built and never logged, or by a crash), and
        half-written files. Returns (objects removed, bytes freed)."""
        with self.lock():
            used = self.referenced()
            cutoff = time.time() - older_than
            old = [d for d, st in self.objects.all_digests()
                   if d not in used and st.st_mtime < cutoff]
            removed, freed = self.objects.collect(old, used)
            for p in _files(self.objects.tmp):
                try:
                    if p.stat().st_mtime < cutoff:
                        p.unlink()
                except OSError:
                    pass
            return removed, freed


_MANIFESTS: dict[str, frozenset] = {}  # manifest digest -> the object digests it names
_MANIFESTS_MAX = 4096


def _subdirs(p: Path) -> list[Path]:
    try:
        return sorted(Path(e.path) for e in os.scandir(p) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _files(p: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(p) if e.is_file()]
    except (FileNotFoundError, NotADirectoryError):
        return []
