"""`Artifact`: a versioned set of files (a dataset, a model), as wandb's.

>>> art = nbtracker.Artifact("mnist", type="dataset", metadata={"rows": 60000})
>>> art.add_file("train.csv"); art.add_dir("images/", name="images")
>>> run.log_artifact(art, aliases=["best"])          # mnist:v0, then v1, … when content changes
>>> a = run.use_artifact("mnist:latest"); path = a.download()

A draft (made with `Artifact(...)`) takes files: each is hashed and stored in the store's object
directory as it is added (see objects.py), so what is logged is what the file held then. Logging
commits the draft as a version (registry.py). A logged artifact's files cannot change; its
description, metadata, tags and aliases can (`save()`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from . import names
from .errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound
from .objects import _map, absolute, copy_checked
from .registry import Registry

ENTITY = "local"


def _registry_for(root: Any = None) -> Registry:
    if root is not None:
        return Registry(root)
    from ..sdk import init as _init

    run = _init.current()
    settings_root = getattr(getattr(run, "settings", None), "root", None)
    if settings_root is None:
        from ..sdk.settings import Settings

        settings_root = Settings.resolve().root
    return Registry(settings_root)


def _default_project() -> str:
    from ..sdk import init as _init

    run = _init.current()
    if run is not None and getattr(run, "project", None):
        return run.project
    from ..sdk.settings import Settings

    return Settings.resolve().project or "uncategorized"


def _plain(v: Any) -> Any:
    """Metadata as JSON holds it (numpy scalars and arrays as numbers and lists)."""
    from ..sdk.config import clean

    return clean(v)


class ArtifactManifestEntry:
    """One file of an artifact: `path` (its name in the artifact), `digest` (SHA-256 of its
    bytes; for a reference without a checksum, None), `size`, and `ref` for a reference."""

    def __init__(self, artifact: Artifact, path: str, entry: dict,
                 local_path: Path | None = None):
        self._artifact = artifact
        self.path = path
        self.digest: str | None = entry.get("digest")
        self.size: int | None = entry.get("size")
        self.ref: str | None = entry.get("ref")
        self.local_path = str(local_path) if local_path is not None else None

    @property
    def name(self) -> str:
        return self.path

    def ref_url(self) -> str | None:
        return self.ref

    def download(self, root: str | os.PathLike | None = None, skip_cache: bool | None = None
                 ) -> str:
        """Download this one file (checked against its hash); returns its path."""
        root = self._artifact._download_root(root)
        self._artifact._download_entries(root, [self.path], False, use_cache=not skip_cache)
        return str(Path(root) / self.path)

    def __repr__(self) -> str:
        what = self.ref or (self.digest or "")[:12]
        return f"<ArtifactManifestEntry {self.path} {what} {self.size} bytes>"


class ArtifactManifest:
    def __init__(self, artifact: Artifact):
        self._artifact = artifact

    @property
    def entries(self) -> dict[str, ArtifactManifestEntry]:
        a = self._artifact
        return {p: ArtifactManifestEntry(a, p, e, a._sources.get(p))
                for p, e in sorted(a._entries.items())}

    def to_manifest_json(self) -> dict:
        return {"version": 1, "contents": {p: dict(e) for p, e in self._artifact._entries.items()}}

    def __len__(self) -> int:
        return len(self._artifact._entries)


class Artifact:
    """A dataset, model or any set of files, versioned by content.

    Args:
        name: a label (letters, digits, '-', '_', '.'): "mnist", "resnet50".
        type: "dataset", "model", … (a name keeps one type).
        description, metadata: free text and a dict of JSON values, shown with the version.
    """

    def __init__(self, name: str, type: str, description: str | None = None,
                 metadata: dict | None = None, incremental: bool = False,
                 use_as: str | None = None, **kwargs: Any):
        self._name = names.check_name(name)
        self._type = names.check_type(type)
        if metadata is not None and not isinstance(metadata, dict):
            raise ArtifactError(f"metadata must be a dict, not {metadata.__class__.__name__}")
        self.description = description
        self.metadata = dict(_plain(metadata or {}))
        self.tags: list[str] = []
        self.ttl = None
        self.incremental = incremental
        self._entries: dict[str, dict] = {}
        self._sources: dict[str, str | Path] = {}
        self._registry: Registry | None = None
        self._doc: dict | None = None  # the version, once logged or fetched
        self._project: str | None = None
        self.aliases: list[str] = []
        self._saved_aliases: list[str] = []
        self._tmp: str | None = None
        self._lock = threading.RLock()
        self._deleted = False

    # -- made from a stored version ------------------------------------------------------
    @classmethod
    def _from_doc(cls, registry: Registry, doc: dict) -> Artifact:
        a = cls.__new__(cls)
        a._name = doc["name"]
        a._type = doc["type"]
        a.description = doc.get("description")
        a.metadata = dict(doc.get("metadata") or {})
        a.tags = list(doc.get("tags") or [])
        a.ttl = None
        a.incremental = False
        a._entries = dict(doc.get("entries") or {})
        a._sources = {}
        a._registry = registry
        a._doc = doc
        a._project = doc["project"]
        a.aliases = [x for x in doc.get("aliases", [])]
        a._saved_aliases = list(a.aliases)
        a._tmp = None
        a._lock = threading.RLock()
        a._deleted = False
        return a

    @classmethod
    def _fetch(cls, ref: str, project: str | None = None, root: Any = None,
               type: str | None = None) -> Artifact:
        r = names.parse_ref(ref, project)
        registry = _registry_for(root)
        doc = registry.resolve(r.project or _default_project(), r.name, r.selector)
        if type is not None and doc["type"] != type:
            raise ArtifactError(f"artifact {r.name!r} is of type {doc['type']!r}, not {type!r}")
        return cls._from_doc(registry, doc)

    # -- identity --------------------------------------------------------------------------
    @property
    def version(self) -> str | None:
        """"v3" once logged; None for a draft."""
        return f"v{self._doc['version']}" if self._doc else None

    @property
    def source_name(self) -> str:
        return f"{self._name}:{self.version}" if self._doc else self._name

    @property
    def name(self) -> str:
        """"mnist:v3" once logged (wandb's form), the bare name for a draft."""
        return self.source_name

    @property
    def collection_name(self) -> str:
        return self._name

    @property
    def collection(self):
        """Every version of this artifact's name (`ArtifactCollection`), once logged."""
        from .collection import ArtifactCollection

        registry = self._need_logged("collection")
        doc = registry.collection(self._project, self._name)
        if doc is None:
            raise ArtifactNotFound(f"{self.source_name} is not there (deleted?)")
        return ArtifactCollection(registry, doc)

    @property
    def source_version(self) -> str | None:
        return self.version

    history_step = None  # not logged at a step of the run's history

    @property
    def type(self) -> str:
        return self._type

    @property
    def project(self) -> str | None:
        return self._project

    source_project = project

    @property
    def entity(self) -> str:
        return ENTITY

    source_entity = entity

    @property
    def qualified_name(self) -> str:
        return f"{ENTITY}/{self._project}/{self.source_name}" if self._doc else self._name

    source_qualified_name = qualified_name

    @property
    def id(self) -> str | None:
        return self._doc["digest"][:32] if self._doc else None

    @property
    def digest(self) -> str:
        from .registry import manifest_digest

        return self._doc["digest"] if self._doc else manifest_digest(self._entries)

    commit_hash = property(lambda self: self.digest[:20])

    @property
    def state(self) -> str:
        if self._deleted:
            return "DELETED"
        return "COMMITTED" if self._doc else "PENDING"

    @property
    def size(self) -> int:
        return sum(int(e.get("size") or 0) for e in self._entries.values())

    @property
    def file_count(self) -> int:
        return len(self._entries)

    @property
    def created_at(self) -> str | None:
        return _iso(self._doc["created"]) if self._doc else None

    @property
    def updated_at(self) -> str | None:
        return _iso(self._doc.get("updated", self._doc["created"])) if self._doc else None

    @property
    def manifest(self) -> ArtifactManifest:
        return ArtifactManifest(self)

    def is_draft(self) -> bool:
        return self._doc is None

    def __repr__(self) -> str:
        where = f"{self._project}/" if self._project else ""
        return f"<Artifact {where}{self.source_name} type={self._type} files={len(self._entries)}>"

    # -- building a draft ------------------------------------------------------------------
    def _need_draft(self, what: str) -> None:
        if self._doc is not None:
            raise ArtifactError(f"{self.source_name} is logged and its files cannot change "
                                f"({what}); make a new version with new_draft()")
        if self._registry is None:
            self._registry = _registry_for()

    @property
    def _pin(self):
        """What this draft holds, kept from deletes until it is logged (objects.Pin)."""
        if self.__dict__.get("_pin_obj") is None:
            from .objects import Pin

            pin = Pin(self._registry.objects.pins)
            self.__dict__["_pin_obj"] = pin
            weakref.finalize(self, pin.release)
        return self.__dict__["_pin_obj"]

    def _put(self, name: str, entry: dict, source: str | Path | None, overwrite: bool) -> None:
        if name in self._entries and not overwrite and self._entries[name] != entry:
            raise ArtifactError(f"the artifact already holds a file named {name!r} "
                                f"(pass overwrite=True to replace it)")
        self._entries[name] = entry
        if source is not None:
            self._sources[name] = source
        else:
            self._sources.pop(name, None)

    def add_file(self, local_path: str | os.PathLike, name: str | None = None,
                 is_tmp: bool | None = False, skip_cache: bool | None = False,
                 policy: str | None = "mutable", overwrite: bool = False
                 ) -> ArtifactManifestEntry:
        """Add a file, stored as it is now, as `name` (default: its file name)."""
        with self._lock:
            self._need_draft("add_file")
            src = Path(os.fspath(local_path))
            try:
                st = src.stat()
            except FileNotFoundError:
                raise ArtifactError(f"add_file: no such file: {os.fspath(local_path)!r}") from None
            except OSError as e:
                raise ArtifactError(f"add_file: cannot read {os.fspath(local_path)!r}: {e}") \
                    from None
            if src.is_dir():
                raise ArtifactError(f"add_file: {os.fspath(local_path)!r} is a folder; use "
                                    f"add_dir() for folders")
            if not _is_regular(st):
                raise ArtifactError(f"add_file: {os.fspath(local_path)!r} is not a regular file")
            name = names.check_path(name if name is not None else src.name)
            (digest, size), = self._registry.objects.put_files(
                [(name, src)], self._pin, use_cache=not skip_cache).values()
            self._put(name, {"digest": digest, "size": size}, src.absolute(), overwrite)
            return ArtifactManifestEntry(self, name, self._entries[name], src)

    def add_dir(self, local_path: str | os.PathLike, name: str | None = None,
                skip_cache: bool | None = False, policy: str | None = "mutable",
                merge: bool = False) -> None:
        """Add every file under a folder, as `name/<relative path>` (default: at the top)."""
        with self._lock:
            self._need_draft("add_dir")
            base = Path(os.fspath(local_path))
            if not base.is_dir():
                what = "no such folder" if not base.exists() else "not a folder"
                raise ArtifactError(f"add_dir: {what}: {os.fspath(local_path)!r}")
            prefix = names.check_path(name) + "/" if name not in (None, "", ".", "/") else ""
            todo = []
            skipped: list[str] = []
            stats: dict[str, os.stat_result] = {}
            before = time.time()  # see Objects.put_files
            top = absolute(base)
            for folder, dirs, files in os.walk(top):
                dirs.sort()
                under = folder[len(top):].strip(os.sep).replace(os.sep, "/")  # os.walk: top + …
                under = under + "/" if under else ""
                for f in sorted(files):
                    p = os.path.join(folder, f)
                    try:
                        st = os.stat(p)
                    except OSError:
                        continue  # a dangling link
                    if not _is_regular(st):
                        continue
                    rel = under + f
                    try:
                        todo.append((names.check_path(prefix + rel), p))
                        stats[p] = st
                    except ArtifactError:
                        skipped.append(rel)
            if skipped:
                from ..sdk.output import warn

                warn(f"add_dir: {len(skipped)} file(s) under {os.fspath(local_path)!r} have "
                     f"names an artifact cannot hold (not UTF-8, or control characters) and "
                     f"were left out, e.g. {os.fsencode(skipped[0])!r}")
            stored = self._registry.objects.put_files(todo, self._pin, use_cache=not skip_cache,
                                                      stats=stats, before=before)
            for n, p in todo:  # p is absolute
                d, s = stored[n]
                self._put(n, {"digest": d, "size": s}, p, True)

    def add_reference(self, uri: str, name: str | None = None, checksum: bool = True,
                      max_objects: int | None = None) -> list[ArtifactManifestEntry]:
        """Keep a reference to data that stays where it is. A `file://` path (a file, or every
        file under a folder) is hashed now, with checksum=True, and checked when downloaded.
        Other URIs (http(s)://, s3://, gs://, …) are fetched (through fsspec) only when
        downloaded; with checksum=True the remote is asked now what it holds (size, ETag or the
        like; a prefix is listed object by object), and a download checks it is still that."""
        with self._lock:
            self._need_draft("add_reference")
            if not isinstance(uri, str) or "\0" in uri:
                raise ArtifactError(f"add_reference: not a URI: {uri!r}")
            parsed = urlparse(uri)
            if not parsed.scheme or len(parsed.scheme) == 1:
                raise ArtifactError(f"add_reference: {uri!r} has no scheme; use file:///path for "
                                    f"a local file, or http(s)://, s3://, gs://, …")
            out = []
            if parsed.scheme == "file":
                local = Path(unquote(parsed.path))
                if local.is_dir():
                    files = sorted(p for p in local.rglob("*") if p.is_file())
                    if max_objects is not None:
                        files = files[:max_objects]
                    base = names.check_path(name) + "/" if name else ""
                    pairs = [(names.check_path(base + p.relative_to(local).as_posix()), p)
                             for p in files]
                elif local.is_file():
                    pairs = [(names.check_path(name or local.name), local)]
                else:
                    raise ArtifactError(f"add_reference: no such file or folder: {local}")
                sums = self._registry.objects.hash_files([p for _, p in pairs]) if checksum \
                    else [(None, p.stat().st_size) for _, p in pairs]
                for (n, p), (d, size) in zip(pairs, sums):
                    self._put(n, {"ref": p.absolute().as_uri(), "digest": d, "size": size},
                              None, True)
                    out.append(ArtifactManifestEntry(self, n, self._entries[n]))
            else:
                tail = parsed.path.rstrip("/").rsplit("/", 1)[-1] or parsed.netloc or "ref"
                listed = _describe(uri, max_objects) if checksum else None
                if listed is None:
                    listed = [(uri, None, {})]
                base = names.check_path(name or unquote(tail))
                for sub, rel, info in listed:
                    n = names.check_path(f"{base}/{rel}" if rel else base)
                    entry = {"ref": sub, "digest": None, "size": info.get("size")}
                    if info:
                        from .cache import version_of

                        entry["etag"] = version_of(info)
                    self._put(n, entry, None, True)
                    out.append(ArtifactManifestEntry(self, n, self._entries[n]))
            return out

    def _scratch(self) -> Path:
        """A new empty folder that lives as long as the draft (for new_file and add)."""
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="nbtracker-artifact-")
            weakref.finalize(self, shutil.rmtree, self._tmp, True)
        path = Path(self._tmp) / f"{len(os.listdir(self._tmp))}"
        path.mkdir()
        return path

    def add(self, obj: Any, name: str, overwrite: bool = False) -> ArtifactManifestEntry:
        """Add a media value (`Table`, `Image`, `Histogram`, `Html`, …) as `name.<kind>.json`
        with the files it refers to; `get(name)` gives it back.

        >>> art.add(nbtracker.Table(columns=["x", "pred"], data=rows), "predictions")
        """
        from ..sdk.media.base import MediaError
        from ..store.media import KINDS

        self._need_draft("add")
        if not getattr(obj, "_nbtracker_media", False):
            raise ArtifactError(f"add() takes a media value (Table, Image, …), not "
                                f"{obj.__class__.__name__}; use add_file() for files")
        name = names.check_path(name)
        scratch = self._scratch()
        try:
            ref = obj.bind(scratch / "media")
        except MediaError as e:
            raise ArtifactError(f"add({name!r}): {e}") from None
        kind = KINDS.get(ref.get("_type"), "media")
        json_name = name if name.endswith(f".{kind}.json") else f"{name}.{kind}.json"
        if json_name in self._entries and not overwrite:
            raise ArtifactError(f"the artifact already holds {json_name!r} "
                                f"(pass overwrite=True to replace it)")
        if (scratch / "media").is_dir():  # the files the reference names, as media/<...>
            self.add_dir(scratch / "media", name="media")
        ref_file = scratch / "ref.json"
        ref_file.write_text(json.dumps(ref, allow_nan=True), encoding="utf-8")
        return self.add_file(ref_file, name=json_name, overwrite=True)

    def get(self, name: str) -> Any:
        """A media value added with `add(obj, name)`: a `Table` for a table, an `Image` for an
        image; other kinds as `nbtracker.Api` loads them (arrays, text, dicts)."""
        from ..store.media import MediaItem

        self._need_logged("get")
        name = names.check_path(name)
        hits = [p for p in self._entries if p == name or (
            p.startswith(name + ".") and p.endswith(".json") and p.count(".") >= 2)]
        if not hits:
            raise KeyError(f"{self.source_name} holds no media named {name!r}")
        root = self._download_root(None)
        self._download_entries(root, [hits[0]], False)
        ref = json.loads((root / hits[0]).read_text(encoding="utf-8"))

        def fetch(r: dict) -> Path:
            p = names.check_path(str(r["path"]))
            if p not in self._entries:
                raise KeyError(f"{self.source_name} lacks {p}, which {hits[0]} refers to")
            self._download_entries(root, [p], False)
            return root / p

        item = MediaItem(None, ref, fetch)
        data = item.load()
        if item.kind == "table":
            from ..sdk.media import Table

            return Table(dataframe=data)
        if item.kind == "image":
            from ..sdk.media import Image

            return Image(data, caption=item.caption)
        return data

    __getitem__ = get

    def __setitem__(self, name: str, obj: Any) -> None:
        self.add(obj, name)

    @contextlib.contextmanager
    def new_file(self, name: str, mode: str = "x", encoding: str | None = None
                 ) -> Iterator[Any]:
        """Write a new file straight into the artifact: `with art.new_file("x.json", "w") as f:`."""
        self._need_draft("new_file")
        name = names.check_path(name)
        if name in self._entries:
            raise ArtifactError(f"the artifact already holds a file named {name!r}")
        if "r" in mode and "+" not in mode:
            raise ArtifactError(f"new_file: mode {mode!r} does not write")
        path = self._scratch() / Path(name).name
        mode = mode.replace("x", "w")
        with open(path, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
        self.add_file(path, name=name)

    def remove(self, item: str | os.PathLike | ArtifactManifestEntry) -> None:
        """Take a file (or every file under a folder name) out of the draft."""
        self._need_draft("remove")
        key = item.path if isinstance(item, ArtifactManifestEntry) else os.fspath(item)
        key = names.check_path(key)
        hits = [p for p in self._entries if p == key or p.startswith(key + "/")]
        if not hits:
            raise ArtifactError(f"the artifact holds no file or folder named {key!r}")
        for p in hits:
            del self._entries[p]
            self._sources.pop(p, None)

    def new_draft(self) -> Artifact:
        """A draft holding this version's files, to log a new version from."""
        a = Artifact(self._name, self._type, self.description, dict(self.metadata))
        a._entries = {p: dict(e) for p, e in self._entries.items()}
        a._registry = self._registry
        a._project = self._project
        a._pin.add(e["digest"] for e in a._entries.values()
                   if not e.get("ref") and e.get("digest"))
        return a

    # -- reading ---------------------------------------------------------------------------
    def get_entry(self, name: str) -> ArtifactManifestEntry:
        name = names.check_path(name)
        if name not in self._entries:
            raise KeyError(f"{self.source_name} holds no file named {name!r}")
        return ArtifactManifestEntry(self, name, self._entries[name], self._sources.get(name))

    get_path = get_entry

    def files(self, names: list[str] | None = None, per_page: int = 50
              ) -> list[ArtifactManifestEntry]:
        entries = self.manifest.entries
        if names is not None:
            return [entries[n] for n in names if n in entries]
        return list(entries.values())

    def _need_logged(self, what: str) -> Registry:
        if self._doc is None:
            raise ArtifactError(f"{what}: the artifact {self._name!r} is a draft; log it first "
                                f"(run.log_artifact)")
        if self._deleted:
            raise ArtifactNotFound(f"{what}: {self.source_name} was deleted")
        assert self._registry is not None
        return self._registry

    def _download_root(self, root: str | os.PathLike | None) -> Path:
        self._need_logged("download")
        if root is None:
            base = os.environ.get("NBTRACKER_ARTIFACT_DIR") or os.environ.get(
                "WANDB_ARTIFACT_DIR") or "artifacts"
            return Path(base) / f"{self._name}:{self.version}"
        return Path(os.fspath(root))

    def download(self, root: str | os.PathLike | None = None,
                 allow_missing_references: bool = False, skip_cache: bool | None = None,
                 path_prefix: str | None = None, multipart: bool | None = None) -> str:
        """Copy the version's files under `root` (default `./artifacts/<name>:<version>`),
        each checked against its SHA-256; returns `root`. A file whose bytes do not match
        raises ArtifactCorrupt and is not left in `root`."""
        dest = self._download_root(root)
        paths = [p for p in sorted(self._entries)
                 if path_prefix is None or p.startswith(path_prefix)]
        self._download_entries(dest, paths, allow_missing_references, use_cache=not skip_cache)
        return str(dest)

    def _download_entries(self, root: Path, paths: list[str], allow_missing: bool,
                          use_cache: bool = True) -> None:
        registry = self._need_logged("download")
        root.mkdir(parents=True, exist_ok=True)
        base = root.resolve()
        jobs = []
        folders: dict[Path, Path] = {}  # each folder resolved once
        for p in paths:
            if ".." in p.split("/"):  # never in a name logged here: the manifest was altered
                raise ArtifactError(f"{p}: would be written outside {root}")
            dest = base / p
            real = folders.get(dest.parent)
            if real is None:
                real = folders[dest.parent] = dest.parent.resolve()
            if (real != base and base not in real.parents) or (
                    os.path.islink(dest) and base not in dest.resolve().parents):
                raise ArtifactError(f"{p}: would be written outside {root}")
            jobs.append((p, dest))
        have = registry.objects.hashes.get_many(
            [(str(d), st) for _, d in jobs if (st := _stat(d)) is not None]) if use_cache else {}

        fetched = []

        def one(job: tuple[str, Path]) -> tuple[str, str | None, BaseException | None]:
            p, dest = job
            e = self._entries[p]
            label = f"{self.source_name}/{p}"
            try:
                if _in_place(dest, e, have):
                    return p, str(dest), None  # already there, unchanged
                ref = e.get("ref")
                if not ref:
                    registry.objects.copy_out(e["digest"], dest, label)
                elif ref.startswith("file:"):
                    src = Path(unquote(urlparse(ref).path))
                    copy_checked(src, e.get("digest"), dest, label)
                else:
                    self._fetch_ref(registry, ref, e.get("digest"), dest, label, e.get("etag"))
                    fetched.append(p)
                return p, str(dest), None
            except BaseException as err:  # noqa: BLE001 - reported together below
                return p, None, err

        results = _map(one, jobs)
        if fetched:  # the cache's cap, once every file of the download is out of it
            from .cache import cache_max, cleanup

            cleanup(registry.store_root, cache_max())
        corrupt = [(p, err) for p, _, err in results if isinstance(err, ArtifactCorrupt)]
        if corrupt:
            more = [p for p, _ in corrupt[1:]]
            raise ArtifactCorrupt(
                str(corrupt[0][1]) + (f"; so do {len(more)} more, not downloaded either: "
                                      f"{', '.join(more[:5])}" + (" …" if len(more) > 5 else "")
                                      if more else ""),
                [p for p, _ in corrupt])
        for p, _, err in results:
            if err is None:
                continue
            if isinstance(err, FileNotFoundError) and self._entries[p].get("ref") \
                    and allow_missing:
                continue
            if isinstance(err, FileNotFoundError):
                what = self._entries[p].get("ref") or "its stored copy"
                raise ArtifactError(f"{self.source_name}/{p}: {what} is missing") from None
            raise err
        written = [(w, st, self._entries[p]["digest"]) for p, w, err in results
                   if w and err is None and self._entries[p].get("digest")
                   and (st := _stat(Path(w))) is not None]
        registry.objects.hashes.put_many(written)

    @staticmethod
    def _fetch_ref(registry: Registry, ref: str, digest: str | None, dest: Path,
                   label: str, expected: str | None = None) -> None:
        """A remote reference into `dest`, through the download cache. A cached copy removed
        by another process's cleanup between the fetch and the copy is fetched again."""
        from .cache import fetch

        for _ in range(3):
            cached = fetch(registry.store_root, ref, digest, label, expected)
            try:
                copy_checked(cached, digest, dest, label)
                return
            except FileNotFoundError:
                continue
        raise ArtifactError(f"{label}: the cached copy of {ref} kept being removed while it was "
                            f"copied (the cache's cap is too small for this download)")

    def file(self, root: str | os.PathLike | None = None) -> str:
        """The path of the one file of a one-file artifact, downloaded."""
        if len(self._entries) != 1:
            raise ArtifactError(f"file() is for an artifact of one file; {self.source_name} "
                                f"has {len(self._entries)} (use download())")
        (p,) = self._entries
        return str(Path(self.download(root)) / p)

    def checkout(self, root: str | os.PathLike | None = None) -> str:
        """download(), then remove from `root` every file the artifact does not hold."""
        dest = Path(self.download(root))
        keep = {(dest / p) for p in self._entries}
        for p in sorted(dest.rglob("*"), reverse=True):
            if p.is_symlink():
                if p not in keep:
                    p.unlink()  # the link, never what it points to
            elif p.is_file() and p not in keep:
                p.unlink()
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
        return str(dest)

    def verify(self, root: str | os.PathLike | None = None) -> None:
        """Check that `root` holds exactly this version's files; ValueError naming the first
        difference."""
        dest = self._download_root(root)
        from ..store.layout import sha256_file

        found = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
        extra = found - set(self._entries)
        if extra:
            raise ValueError(f"{dest} holds files the artifact does not: {sorted(extra)[:5]}")
        for p, e in sorted(self._entries.items()):
            if p not in found:
                raise ValueError(f"{dest} lacks {p}")
            if e.get("digest") and sha256_file(dest / p) != e["digest"]:
                raise ValueError(f"{dest / p} differs from the artifact's {p}")

    # -- lineage ---------------------------------------------------------------------------
    def logged_by(self):
        """The run that logged this version (an Api run), or None."""
        self._need_logged("logged_by")
        by = self._doc.get("created_by")
        if not by:
            return None
        from ..api import Api

        try:
            return Api(dir=str(self._registry.store_root)).run(f"{by['project']}/{by['id']}")
        except (ValueError, KeyError):
            return None

    def used_by(self) -> list:
        """The runs that used this version (`run.use_artifact`), oldest first."""
        self._need_logged("used_by")
        from ..api import Api

        api = Api(dir=str(self._registry.store_root))
        key = (self._project, self._name, self._doc["version"])
        return [r for r in api.runs(order="+created_at")
                if any(a.get("io") == "in" and (a["project"], a["name"], a["version"]) == key
                       for a in r._stored.state.artifacts)]

    def lineage(self):
        """A small graph of where this version came from and went: datasets → runs → models."""
        from .lineage import Lineage

        self._need_logged("lineage")
        return Lineage.of(self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self._doc is None:
            return None
        try:
            return self.lineage()._repr_mimebundle_(include, exclude)
        except Exception:  # a graph that cannot be drawn never hides the artifact
            return None

    # -- changing a logged version ---------------------------------------------------------
    def save(self, project: str | None = None, settings: Any = None) -> Artifact:
        """Log a draft (in the current run if there is one), or store the edited description,
        metadata, tags and aliases of a logged version."""
        if self._doc is None:
            from ..sdk import init as _init

            run = _init.current()
            if run is not None and not getattr(run, "disabled", False) and project is None:
                run.log_artifact(self)
            else:
                commit(self, project or self._project or _default_project(), [], None)
            return self
        registry = self._need_logged("save")
        aliases = names.check_aliases(self.aliases)
        metadata, description, tags = _checked_fields(self)
        self._doc = registry.update(
            self._project, self._name, self._doc["version"],
            add=[a for a in aliases if a not in self._saved_aliases],
            remove=[a for a in self._saved_aliases if a not in aliases],
            description=description, metadata=metadata, tags=tags)
        self.aliases = list(self._doc["aliases"])
        self._saved_aliases = list(self.aliases)
        return self

    def wait(self, timeout: int | None = None) -> Artifact:
        return self

    def delete(self, delete_aliases: bool = False) -> None:
        """Delete this version: its manifest and aliases, then the stored files no other
        version holds. With aliases other than `latest`, pass delete_aliases=True."""
        registry = self._need_logged("delete")
        registry.delete(self._project, self._name, self._doc["version"], delete_aliases)
        self._deleted = True

    def link(self, target_path: str, aliases: list[str] | None = None) -> None:
        from ..sdk.output import warn

        warn(f"Artifact.link({target_path!r}) has no effect here: there is no model registry; "
             f"aliases name the versions to use")


def commit(art: Artifact, project: str, aliases: list[str], created_by: dict | None
           ) -> tuple[Artifact, bool]:
    """Commit a draft as a version of `project` (registry.commit); the draft becomes it."""
    with art._lock:
        if art._registry is None:
            art._registry = _registry_for()
        aliases = names.check_aliases(aliases)
        metadata, description, tags = _checked_fields(art)
        doc, new = art._registry.commit(
            project=project, name=art._name, type=art._type, entries=art._entries,
            description=description, metadata=metadata, aliases=aliases,
            tags=tags, created_by=created_by, sources=art._sources)
        if art.__dict__.get("_pin_obj") is not None:  # the version holds them now
            art.__dict__["_pin_obj"].release()
        art._doc = doc
        art._project = project
        art.aliases = list(doc["aliases"])
        art._saved_aliases = list(art.aliases)
        # the version as stored (the same content logged before: that version, updated)
        art.description = doc.get("description")
        art.metadata = dict(doc.get("metadata") or {})
        art.tags = list(doc.get("tags") or [])
        art._entries = dict(doc["entries"])
        return art, new


def _checked_fields(art: Artifact) -> tuple[dict, str | None, list[str]]:
    """The metadata, description and tags to store, as JSON and UTF-8 can hold them, or
    ArtifactError naming the field."""
    if not isinstance(art.metadata, dict):
        raise ArtifactError(f"metadata must be a dict, not {art.metadata.__class__.__name__}")
    metadata = _plain(art.metadata)
    description = art.description
    if description is not None and not isinstance(description, str):
        raise ArtifactError(f"description must be text, not {description.__class__.__name__}")
    tags = names.check_tags(art.tags)
    for field, value in (("metadata", metadata), ("description", description), ("tags", tags)):
        try:
            json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8")
        except UnicodeEncodeError:
            raise ArtifactError(f"the artifact's {field} holds text that is not valid UTF-8 "
                                f"(a lone surrogate, as a file name read with the wrong "
                                f"encoding gives): {value!r:.200}") from None
        except (TypeError, ValueError) as e:
            raise ArtifactError(f"the artifact's {field} cannot be stored as JSON: {e}") \
                from None
    return metadata, description, tags


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_regular(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def _describe(uri: str, max_objects: int | None) -> list | None:
    """What the remote says of a reference (cache.describe), or None after one warning line
    when it cannot be asked: the reference is then kept as given, without a checksum."""
    from ..sdk.output import warn
    from .cache import describe

    try:
        return describe(uri, max_objects)
    except FileNotFoundError:
        raise ArtifactError(f"add_reference: no such remote file or folder: {uri}") from None
    except ArtifactError as e:
        warn(f"{e}; {uri} is kept without a checksum")
    except Exception as e:  # noqa: BLE001 - any backend's failure: the reference is still kept
        warn(f"could not ask {uri} for its checksum ({e.__class__.__name__}: {e}); it is kept "
             f"without one")
    return None


def _in_place(dest: Path, entry: dict, have: dict[str, str]) -> bool:
    """Whether `dest` already holds the entry's bytes: remembered so by the hash cache, or
    read and hashed now (reading costs less than writing it again)."""
    digest = entry.get("digest")
    if not digest:
        return False
    if have.get(str(dest)) == digest:
        return True
    st = _stat(dest)
    if st is None or st.st_size != entry.get("size"):
        return False
    from ..store.layout import sha256_file

    try:
        return sha256_file(dest) == digest
    except OSError:
        return False


def _stat(p: Path) -> os.stat_result | None:
    try:
        st = p.stat()
        return st if _is_regular(st) else None
    except OSError:
        return None

