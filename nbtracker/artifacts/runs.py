"""What a run does with artifacts: `log_artifact`, `use_artifact`, `log_model`, `use_model`.

Each version a run logs or uses is an `artifact` record in its log (see store/state.py), so the
lineage replays, uploads and reindexes like the rest of the run. Bad input (a missing file, a
bad name) raises ArtifactError at once; a disk that fails while a version is being stored is
one warning line, and training goes on.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..sdk import output
from . import names
from .artifact import Artifact, commit
from .errors import ArtifactError


def _record(run: Any, io: str, art: Artifact) -> None:
    doc = art._doc
    rec = {"t": "artifact", "io": io, "project": doc["project"], "name": doc["name"],
           "version": doc["version"], "type": doc["type"], "digest": doc["digest"]}
    with run._mutex:
        if run._done:
            return
        run._append(rec)
        try:
            run._state.apply_artifact(rec)
        except ValueError:
            pass


def _from_path(run: Any, path: Any, name: str | None, type: str | None, default_type: str
               ) -> Artifact:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        what = "an empty path" if isinstance(path, (str, os.PathLike)) else \
            path.__class__.__name__
        raise ArtifactError(f"log_artifact and log_model take an Artifact or the path of a file "
                            f"or folder, not {what}")
    p = Path(os.fspath(path))
    art = Artifact(name or f"run-{run.id}-{p.name}", type or default_type)
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        art.add_reference(path)
    elif isinstance(path, str) and path.startswith("file://"):
        art.add_reference(path)
    elif p.is_dir():
        art.add_dir(p)
    else:
        art.add_file(p)
    return art


def log_artifact(run: Any, artifact_or_path: Any, name: str | None = None,
                 type: str | None = None, aliases: list[str] | None = None,
                 tags: list[str] | None = None, default_type: str = "unspecified"
                 ) -> Artifact | None:
    """Returns the logged artifact; None (after one warning line) when a file or folder given
    by path could not be stored, and the draft, still a draft, when the version could not be
    written."""
    if run._done:
        run._closed_call("log_artifact")
        return artifact_or_path if isinstance(artifact_or_path, Artifact) else None
    if isinstance(artifact_or_path, Artifact):
        art = artifact_or_path
        if not art.is_draft():
            raise ArtifactError(f"{art.source_name} is logged already; log a new version with "
                                f"new_draft()")
    else:
        try:
            art = _from_path(run, artifact_or_path, name, type, default_type)
        except ArtifactError:
            raise
        except OSError as e:
            output.warn(f"could not store {os.fspath(artifact_or_path)!r} as an artifact: {e}; "
                        f"it was not logged")
            return None
    aliases = names.check_aliases(aliases)
    if tags:
        art.tags = list(dict.fromkeys([*names.check_tags(art.tags), *names.check_tags(tags)]))
    if art._registry is None or art._registry.store_root != Path(run.settings.root).resolve():
        from .registry import Registry

        art._registry = Registry(run.settings.root)
    try:
        commit(art, run.project, aliases, {"project": run.project, "id": run.id})
    except ArtifactError:
        raise
    except OSError as e:
        output.warn(f"could not store artifact {art.collection_name!r}: {e}; it was not logged")
        return art
    _record(run, "out", art)
    _wait_at_finish(run)
    return art


class _ObjectsOnDisk:
    """A part of a run that logged artifacts (see sdk/parts.py): its `finish()` waits until the
    files stored before it are on disk (objects.Durable), as its records are."""

    def __init__(self, run: Any):
        self.run = run

    def close(self, state: str) -> None:
        from .objects import DURABLE

        if not DURABLE.wait(120):
            self.run._warn_once("objects", "artifact files are still being written to disk")


def _wait_at_finish(run: Any) -> None:
    if not any(isinstance(p, _ObjectsOnDisk) for p in run._parts):
        run._parts.append(_ObjectsOnDisk(run))


def use_artifact(run: Any, artifact_or_name: Any, type: str | None = None,
                 aliases: list[str] | None = None, use_as: str | None = None) -> Artifact:
    if isinstance(artifact_or_name, Artifact):
        art = artifact_or_name
        if art.is_draft():  # stored first, as an input this run did not make
            if art._registry is None or \
                    art._registry.store_root != Path(run.settings.root).resolve():
                from .registry import Registry

                art._registry = Registry(run.settings.root)
            try:
                commit(art, run.project, names.check_aliases(aliases), None)
            except ArtifactError:
                raise
            except OSError as e:
                output.warn(f"could not store artifact {art.collection_name!r}: {e}; it was "
                            f"not used")
                return art
    else:
        art = Artifact._fetch(str(artifact_or_name), run.project, run.settings.root, type)
    if not getattr(run, "_done", True):
        _record(run, "in", art)
    elif not getattr(run, "disabled", False):
        run._closed_call("use_artifact")
    return art


def log_model(run: Any, path: Any, name: str | None = None,
              aliases: list[str] | None = None) -> Artifact | None:
    return log_artifact(run, path, name=name, type="model", aliases=aliases,
                        default_type="model")


def use_model(run: Any, name: str) -> str:
    """Download a model artifact and return the path of its file (or of its folder when it
    holds several)."""
    art = use_artifact(run, name)
    if art.type != "model":
        output.warn(f"use_model({name!r}): {art.source_name} is of type {art.type!r}")
    root = art.download()
    if art.file_count == 1:
        (p,) = art._entries
        return str(Path(root) / p)
    return root
