"""`run.save(glob, base_path, policy)`: files kept with a run, in its `files/` folder.

Each file is named by its path relative to `base_path` (default: the current directory, or for
an absolute glob the folder it starts in); a glob that reaches outside `base_path` is refused.
Policies:

    live  copied now, again whenever it changes while the run is alive (the flusher thread
          polls size and mtime every POLL_SECONDS; files that start to match later are picked
          up too), and a last time at finish()
    now   copied once, now
    end   copied at finish() only (files that match then)

Every copy that changes the bytes is a `file` record {"path", "size", "sha256"}; the uploader
sends the blob each record names, so a changed live file goes up again. A copy is made to a
temporary name and renamed in place while the run's mutex is held, with its record, so the
copy in `files/` is always the one the last record names; the flusher thread copies outside
the mutex, so `log()` never waits on a large file.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import os
import time
from pathlib import Path
from typing import Any

from ..store import layout

POLICIES = ("live", "now", "end")
POLL_SECONDS = 4.0
_MAGIC = frozenset("*?[")


def static_prefix(pattern: str) -> str:
    """The leading folders of `pattern` that hold no glob characters."""
    parts = Path(pattern).parts
    keep = []
    for p in parts[:-1]:
        if _MAGIC & set(p):
            break
        keep.append(p)
    return str(Path(*keep)) if keep else os.curdir


def inside(path: str, base: str) -> bool:
    try:
        return os.path.commonpath([path, base]) == base
    except ValueError:  # different drives
        return False


class SavedFiles:
    """What `save()` was asked to keep for one run, and its live copies."""

    def __init__(self, run: Any):
        self._run = run
        self._globs: list[tuple[str, str, str]] = []  # (pattern, base_path, policy), absolute
        self._saved: dict[str, tuple[Path, str]] = {}  # name -> (source, policy)
        self._seen: dict[str, tuple[int, int]] = {}  # name -> (mtime_ns, size) when copied
        self._next_poll = 0.0
        self._live = False
        self._run_dir = str(Path(run._path).resolve())

    @property
    def live(self) -> bool:
        """Whether anything is saved with policy "live" (read by the flusher thread)."""
        return self._live

    # -- save() ---------------------------------------------------------------------------------
    def save(self, glob_str: str | os.PathLike, base_path: str | os.PathLike | None,
             policy: str) -> list[str]:
        """Names matched now (copied now unless policy is "end"). The caller holds no lock."""
        run = self._run
        try:  # str, bytes (as wandb takes them) or a path
            pattern = os.fsdecode(glob_str)
            base_path = None if base_path is None else os.fsdecode(base_path)
        except (TypeError, UnicodeDecodeError):
            run._warn_once(f"save-type:{type(glob_str).__name__}", f"save() takes a file name or "
                           f"glob, not {type(glob_str).__name__}; nothing is saved")
            return []
        if base_path is None:
            base_path = static_prefix(pattern) if os.path.isabs(pattern) else os.curdir
        # relative to where save() was called, also when matched again later
        pattern_abs, base_abs = os.path.abspath(pattern), os.path.abspath(base_path)
        if not inside(pattern_abs, base_abs):
            run._warn_once(f"save-outside:{pattern}:{base_abs}",
                           f"save({pattern!r}) reaches outside its base_path {base_abs}; nothing "
                           "is saved (pass a base_path that holds the files, e.g. "
                           f"save({pattern!r}, base_path={static_prefix(pattern_abs)!r}))")
            return []
        with run._mutex:
            if run._done:
                run._closed_call("save")
                return []
            g = (pattern_abs, base_abs, policy)
            self._live = self._live or policy == "live"
            if policy != "now" and g not in self._globs:  # files that match later count too
                self._globs.append(g)
            names = []
            for rel, src in self._matches(pattern_abs, base_abs):
                self._saved[rel] = (src, policy)
                if policy != "end":
                    self._copy(rel, src)
                names.append(rel)
        return names

    def _matches(self, pattern: str, base: str) -> list[tuple[str, Path]]:
        """What `pattern` names under `base`: files, each once. A file that is a link is saved
        with what it shows (as `cp` copies it); a folder that is a link is followed only while it
        stays inside `base` (a link to elsewhere is refused like `..`), and a file reached by
        several paths (a link loop) is saved once, under its shortest name."""
        out = []
        refused: list[str] = []
        seen: set[str] = set()
        real_base = os.path.realpath(base)
        found = _glob.glob(pattern, recursive=True)
        for m in sorted(found, key=lambda p: (p.count(os.sep), p)):
            m = os.path.abspath(m)
            if not os.path.isfile(m):
                continue
            rel = os.path.relpath(m, base)
            if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
                self._run._warn_once(f"save-outside:{m}", f"save(): {m} is outside its "
                                     f"base_path {base}; not saved")
                continue
            real_dir = os.path.realpath(os.path.dirname(m))
            if not inside(real_dir, real_base):
                refused.append(m)
                continue
            real = os.path.realpath(m)
            through_link = real_dir != os.path.normpath(os.path.join(real_base, os.path.dirname(rel)))
            if through_link and real in seen:  # the same file again, down a link loop
                continue
            seen.add(real)
            rel = rel.replace(os.sep, "/")
            if self._run._bad_name(rel, m):  # not valid UTF-8: left out, one warning
                continue
            # the run's own files are not saved into themselves (`save("**")` next to the
            # store), except a file in run.dir saved under its own name there
            if inside(real, self._run_dir) and real != os.path.realpath(self._dst(rel)):
                continue
            out.append((rel, Path(m)))
        if refused:
            self._run._warn_once(f"save-link-out:{pattern}", f"save({pattern!r}): {len(refused)} "
                                 f"file(s) reached through a link to a folder outside base_path "
                                 f"{base} (e.g. {refused[0]}); not saved")
        return out

    def _copy(self, rel: str, src: Path) -> None:
        """Copy now, in the caller's thread (the caller holds the run's mutex)."""
        try:
            st = os.stat(src)
        except OSError:
            return
        self._seen[rel] = (st.st_mtime_ns, st.st_size)
        self._run._copy_file(rel, src)

    # -- while the run is alive (the flusher thread) --------------------------------------------
    def poll(self) -> None:
        """Copy live files that changed since their last copy, and live globs' new matches."""
        now = time.monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_SECONDS
        run = self._run
        with run._mutex:
            if run._done:
                return
            globs = [g for g in self._globs if g[2] == "live"]
            known = dict(self._saved)
        for pattern, base, _ in globs:
            for rel, src in self._matches(pattern, base):
                if rel not in known:
                    known[rel] = (src, "live")
                    with run._mutex:
                        self._saved.setdefault(rel, (src, "live"))
        for rel, (src, policy) in known.items():
            if policy != "live":
                continue
            try:
                st = os.stat(src)
            except OSError:
                continue
            key = (st.st_mtime_ns, st.st_size)
            if self._seen.get(rel) != key:
                self._copy_live(rel, src, key)

    def _dst(self, rel: str) -> Path:
        return Path(self._run._path) / layout.FILES_DIR / rel

    def _copy_live(self, rel: str, src: Path, key: tuple[int, int]) -> None:
        run = self._run
        dst = self._dst(rel)
        in_place = os.path.realpath(src) == os.path.realpath(dst)  # a file written in run.dir
        tmp = dst.with_name(f".{dst.name}.live.tmp")
        h = hashlib.sha256()
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            with open(src, "rb") as fi, open(os.devnull if in_place else tmp, "wb") as fo:
                while chunk := fi.read(1 << 20):
                    h.update(chunk)
                    fo.write(chunk)
            st = os.stat(src)
            if (st.st_mtime_ns, st.st_size) != key:
                return  # still being written: the next poll copies it
            with run._mutex:
                if run._done or self._seen.get(rel) == key:
                    return
                if not in_place:
                    os.replace(tmp, dst)
                self._seen[rel] = key
                run._record_file(rel, dst, h.hexdigest())
        except OSError as e:
            run._warn_once(f"save:{rel}", f"could not save {src}: {e}")
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    # -- finish() -------------------------------------------------------------------------------
    def final(self) -> None:
        """At finish (the caller holds the run's mutex): what the globs match now, and the
        live and end files as they are now."""
        for pattern, base, policy in self._globs:
            for rel, src in self._matches(pattern, base):
                if rel not in self._saved or self._saved[rel][1] == "now":
                    self._saved[rel] = (src, policy)
        for rel, (src, policy) in list(self._saved.items()):
            if policy == "now":
                continue
            try:
                st = os.stat(src)
            except OSError:
                continue
            dst = self._dst(rel)
            if self._seen.get(rel) == (st.st_mtime_ns, st.st_size) and dst.is_file():
                continue  # copied as it is now
            self._copy(rel, src)
