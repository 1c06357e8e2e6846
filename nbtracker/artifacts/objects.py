"""The store-wide object directory: every file of every artifact version, once, by SHA-256.

    <root>/artifacts/objects/<first 2 hex>/<other 62 hex>     read-only, never changed in place
    <root>/artifacts/objects/tmp/                               files being written

A file is copied to a temporary file by the kernel (sendfile on Linux), the copy is hashed
while it is still in the page cache (so the object's name is the hash of the bytes it holds,
whatever the source does meanwhile) and renamed into place; content already stored is not
written again. Copies out are hashed the same way and compared with the name before they are
renamed into place: a damaged object is reported, never returned as good.

`HashCache` remembers the SHA-256 of a source file by its (device, inode, size, mtime, ctime), so
logging the same unchanged files again reads none of them. A hash taken less than a timestamp
tick after the file's last change is not remembered (a file changed again within the same tick
would look unchanged; git calls this racy-clean).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import sqlite3
import stat
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..store import layout
from .errors import ArtifactCorrupt

CHUNK = 1 << 20
WORKERS = max(2, min(8, (os.cpu_count() or 2) * 2))


_HEX64 = re.compile(r"[0-9a-f]{64}")


def _digest_ok(digest: object) -> bool:
    return isinstance(digest, str) and _HEX64.fullmatch(digest) is not None


def copy_hashing(src: str | os.PathLike, dst_fd: int) -> tuple[str, int]:
    """Copy `src` into the open file `dst_fd` (opened for reading too) and hash the copy;
    (sha256, size). The hash is of the bytes the copy holds, whatever `src` did meanwhile."""
    with open(src, "rb", buffering=0) as f:
        if _SENDFILE:
            try:
                return _send_hashing(f.fileno(), dst_fd)
            except OSError as e:
                if e.errno not in _NO_SENDFILE:
                    raise
                os.lseek(dst_fd, 0, os.SEEK_SET)  # start again by read and write
                os.ftruncate(dst_fd, 0)
        return _write_hashing(f, dst_fd)


_SENDFILE = sys.platform.startswith("linux") and hasattr(os, "sendfile")
_NO_SENDFILE = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV, errno.EBADF}
SEND_STEP = 8 << 20
HASH_CHUNK = 256 << 10


def _send_hashing(src_fd: int, dst_fd: int) -> tuple[str, int]:
    """The kernel copies (sendfile, no pass through Python's buffers); the copy is then read
    back while it is still in the page cache and hashed. Faster than reading, hashing and
    writing each chunk (one copy to user space instead of two), and the name is the copy's."""
    size = 0
    while n := os.sendfile(dst_fd, src_fd, size, SEND_STEP):
        size += n
    h = hashlib.sha256()
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    done = 0
    while done < size:
        n = os.preadv(dst_fd, [buf], done)
        if n == 0:
            raise OSError(errno.EIO, "the copy came out shorter than it was written")
        h.update(view[:n])
        done += n
    return h.hexdigest(), size


def _write_hashing(f, dst_fd: int) -> tuple[str, int]:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while n := f.readinto(buf):
        chunk = view[:n]
        h.update(chunk)
        while chunk:
            w = os.write(dst_fd, chunk)
            chunk = chunk[w:]
        size += n
    return h.hexdigest(), size


def absolute(path: str | os.PathLike) -> str:
    """`path` from the root, as the kernel reads it: joined to the working folder, never
    normalised as text (`link/..` is the link's target's parent, not the working folder)."""
    p = os.fspath(path)
    return p if os.path.isabs(p) else os.path.join(os.getcwd(), p)


def stat_key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _settled(st: os.stat_result, now: float) -> bool:
    """Whether a hash taken at `now` may be remembered: the file's last change is more than a
    timestamp tick before (2 s on file systems with whole-second times, else 0.1 s)."""
    whole_seconds = st.st_mtime_ns % 1_000_000_000 == 0 and st.st_ctime_ns % 1_000_000_000 == 0
    tick = 2.0 if whole_seconds else 0.1
    return now - max(st.st_mtime_ns, st.st_ctime_ns) / 1e9 > tick


def _storable(path: str) -> bool:
    """Whether SQLite can hold the path as text (not so a non-UTF-8 name: never remembered)."""
    try:
        path.encode()
        return True
    except UnicodeEncodeError:
        return False


class HashCache:
    """SQLite table path → (stat key, sha256). A cache: losing it costs one read of each file."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection | None:
        con = getattr(self._local, "con", None)
        if con is None or getattr(self._local, "pid", None) != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=NORMAL")
                con.execute("CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, "
                            "key TEXT NOT NULL, sha256 TEXT NOT NULL)")
            except sqlite3.Error:
                self._remove()
                return None
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(f"{self.path}{suffix}")
            except OSError:
                pass

    def get_many(self, items: Iterable[tuple[str, os.stat_result]]) -> dict[str, str]:
        items = [(p, st) for p, st in items if _storable(p)]
        con = self._db()
        if con is None or not items:
            return {}
        out = {}
        try:
            keys = {p: repr(stat_key(st)) for p, st in items}
            paths = list(keys)
            for i in range(0, len(paths), 500):
                part = paths[i:i + 500]
                q = f"SELECT path, key, sha256 FROM hashes WHERE path IN ({','.join('?' * len(part))})"
                for p, k, d in con.execute(q, part):
                    if keys.get(p) == k and _digest_ok(d):
                        out[p] = d
        except sqlite3.Error:
            return {}
        return out

    def put_many(self, items: Iterable[tuple[str, os.stat_result, str]],
                 now: float | None = None) -> None:
        """Remember hashes; `now` is when the files were stat-ed, before they were read."""
        now = time.time() if now is None else now
        rows = [(p, repr(stat_key(st)), d) for p, st, d in items
                if _settled(st, now) and _storable(p)]
        con = self._db()
        if con is None or not rows:
            return
        try:
            con.execute("BEGIN")
            con.executemany("INSERT OR REPLACE INTO hashes VALUES (?,?,?)", rows)
            con.execute("COMMIT")
        except sqlite3.Error:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:
                pass


class Pin:
    """The objects a draft holds, written to `<root>/artifacts/pins/<pid>-<random>` (one digest
    a line, appended) so that a delete running meanwhile keeps them. The file goes when the
    draft is logged or dropped; one left by a process that died is ignored and removed."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / f"{os.getpid()}-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._held: set[str] = set()

    def add(self, digests: Iterable[str]) -> None:
        with self._lock:
            new = [d for d in digests if d not in self._held]
            if not new:
                return
            if self._fd is None:
                self.folder.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, "".join(d + "\n" for d in new).encode())
            self._held.update(new)

    def release(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            self._held.clear()


def pinned(folder: Path) -> set[str]:
    """The digests drafts of live processes hold (pins of dead ones are removed)."""
    out: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return out
    for e in entries:
        pid = e.name.split("-", 1)[0]
        if not pid.isdigit():
            continue
        if not _pid_alive(int(pid)):
            try:
                os.unlink(e.path)
            except OSError:
                pass
            continue
        try:
            with open(e.path, encoding="ascii", errors="replace") as f:
                out.update(line.strip() for line in f if _digest_ok(line.strip()))
        except OSError:
            pass
    return out


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


class Objects:
    """The object directory of a store (`<root>/artifacts/objects`)."""

    def __init__(self, root: Path):
        self.dir = Path(root) / "objects"
        self._dir = os.fspath(self.dir)
        self.tmp = self.dir / "tmp"
        self.pins = Path(root) / "pins"
        self.hashes = HashCache(Path(root) / "hashes.sqlite")

    def path(self, digest: str) -> Path:
        return Path(self._path(digest))

    def _path(self, digest: str) -> str:
        if not _digest_ok(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return f"{self._dir}/{digest[:2]}/{digest[2:]}"

    def has(self, digest: str, size: int | None = None) -> bool:
        """Whether the object is stored (and of `size` bytes, when given)."""
        try:
            st = os.stat(self._path(digest))
        except (OSError, ValueError):
            return False
        return stat.S_ISREG(st.st_mode) and (size is None or st.st_size == size)

    def _touch(self, digest: str, size: int | None = None) -> bool:
        """Mark a stored object as wanted now (see `collect`); False when it is not there, or
        not of `size` bytes (cut short: then it is stored again)."""
        if size is not None and not self.has(digest, size):
            return False
        try:
            os.utime(self._path(digest))
            return True
        except (OSError, ValueError):
            return False

    def _tmp_file(self) -> tuple[int, Path]:
        self.tmp.mkdir(parents=True, exist_ok=True)
        p = self.tmp / f"{os.getpid()}-{uuid.uuid4().hex}"
        return os.open(p, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), p

    def _install(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        if self._touch(digest, os.stat(tmp).st_size):  # stored already, whole
            os.unlink(tmp)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        DURABLE.add(os.fspath(final))

    def put_file(self, src: str | os.PathLike, known: tuple[str, int] | None = None,
                 pin: Pin | None = None) -> tuple[str, int]:
        """Store the bytes of `src`; (sha256, size). `known` is the (hash, size) the cache
        remembers for the file as it stood: when that object is stored, nothing is read. The
        digest is added to `pin` before the object is looked up or put in place."""
        if known is not None:
            if pin is not None:
                pin.add([known[0]])
            if self._touch(known[0], known[1]):
                return known
        fd, tmp = self._tmp_file()
        try:
            try:
                digest, size = copy_hashing(src, fd)
            finally:
                os.close(fd)
            if pin is not None:
                pin.add([digest])
            self._install(tmp, digest)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return digest, size

    def put_files(self, sources: list[tuple[str, Path]], pin: Pin | None = None,
                  use_cache: bool = True, stats: dict[str, os.stat_result] | None = None,
                  before: float | None = None) -> dict[str, tuple[str, int]]:
        """Store many files at once (threads; hashing releases the GIL): {name: (sha256, size)}.
        Each source is stat-ed first; unchanged files whose object is stored are not read
        (unless `use_cache` is False: then every file is read). A caller that stat-ed the
        sources already passes `stats` (by absolute path) and `before`, the time taken before
        those stats."""
        sources = [(name, absolute(src)) for name, src in sources]
        if stats is None or before is None:
            stats, before = {}, time.time()  # a change after `before` may not show in stats
        for _, src in sources:
            if src not in stats:
                stats[src] = os.stat(src)
        known = self.hashes.get_many(stats.items()) if use_cache else {}

        # unchanged files whose object is stored: pinned at once, then touched, none read
        if pin is not None and known:
            pin.add(known.values())
        out: dict[str, tuple[str, int]] = {}
        todo = []
        for name, src in sources:
            size = stats[src].st_size
            if src in known and self._touch(known[src], size):
                out[name] = (known[src], size)
            else:
                todo.append((name, src))
        results = _map(lambda src: self.put_file(src, None, pin), [s for _, s in todo])
        learnt = []
        for (name, src), res in zip(todo, results):
            out[name] = res
            st = stats[src]
            if known.get(src) != res[0] and st.st_size == res[1]:
                try:  # remembered only if the file did not change while it was read
                    if stat_key(os.stat(src)) == stat_key(st):
                        learnt.append((src, st, res[0]))
                except OSError:
                    pass
        self.hashes.put_many(learnt, before)
        return out

    def hash_files(self, paths: list[Path]) -> list[tuple[str, int]]:
        """The (sha256, size) of files left where they are (file:// references)."""
        paths = [Path(absolute(p)) for p in paths]
        before = time.time()
        stats = {os.fspath(p): os.stat(p) for p in paths}
        known = self.hashes.get_many(stats.items())

        def one(p: Path) -> tuple[str, int]:
            key = os.fspath(p)
            return known.get(key) or layout.sha256_file(p), stats[key].st_size

        results = _map(one, paths)
        learnt = []
        for p, (d, _) in zip(paths, results):  # remembered only if unchanged while it was read
            key = os.fspath(p)
            if key not in known and stat_key(os.stat(p)) == stat_key(stats[key]):
                learnt.append((key, stats[key], d))
        self.hashes.put_many(learnt, before)
        return results

    def copy_out(self, digest: str, dest: Path, label: str) -> None:
        """Write the object to `dest` (replacing it), checked against its name on the way."""
        copy_checked(self.path(digest), digest, dest, label)

    def collect(self, candidates: Iterable[str], referenced: set[str]) -> tuple[int, int]:
        """Remove the objects of `candidates` no version references (caller holds the store's
        artifact lock). An object is first renamed aside; one touched after that (a draft
        artifact adding the same bytes at that moment) is put back. Returns (objects removed,
        bytes freed)."""
        freed = removed = 0
        started = time.time()
        for digest in set(candidates) - referenced:
            if not _digest_ok(digest):
                continue
            p = self.path(digest)
            aside = p.with_name(p.name + ".deleting")
            try:
                os.replace(p, aside)
            except OSError:
                continue
            try:
                st = os.stat(aside)
                if st.st_mtime >= started:
                    os.replace(aside, p)
                    continue
                os.unlink(aside)
                freed += st.st_size
                removed += 1
            except OSError:
                pass
        return removed, freed

    def all_digests(self) -> Iterable[tuple[str, os.stat_result]]:
        try:
            heads = list(os.scandir(self.dir))
        except FileNotFoundError:
            return
        for head in heads:
            if len(head.name) != 2 or not head.is_dir():
                continue
            for e in os.scandir(head.path):
                d = head.name + e.name
                if _digest_ok(d):
                    try:
                        yield d, e.stat()
                    except OSError:
                        pass


class Durable:
    """Makes new objects durable (fsync of each, then of their folders) from a background
    thread, soon after they are put in place, as the record log's flusher does for records:
    logging an artifact costs the copy, not the wait for the disk. A run's `finish()` and the
    interpreter's exit wait for what was put in place before them (`wait`; objects added
    meanwhile by other threads do not hold them up). Until then a crash of the machine (not of
    the process) can leave an object short; a download reports it, and logging the same bytes
    again stores it again."""

    def __init__(self) -> None:
        self._reset()
        if hasattr(os, "register_at_fork"):  # a child gets its own lock (the parent's thread
            os.register_at_fork(after_in_child=self._reset)  # may hold this one) and no thread

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[str] = []
        self._added = 0  # objects handed over so far
        self._synced = 0  # of which the first `_synced` are on disk (or gone)
        self._thread: threading.Thread | None = None

    def add(self, path: str) -> None:
        with self._cond:
            if self._start():
                self._queue.append(path)
                self._added += 1
                self._cond.notify_all()
                return
        _fsync_all([path])  # no thread (the interpreter is shutting down): now, in this one

    def _start(self) -> bool:
        """The thread is running, started now if need be (caller holds the lock)."""
        if self._thread is not None and self._thread.is_alive():
            return True
        try:
            self._thread = threading.Thread(target=self._run, name="nbtracker-objects-sync",
                                            daemon=True)
            self._thread.start()
        except RuntimeError:  # "can't create new thread at interpreter shutdown"
            self._thread = None
            return False
        if not _atexit_registered:
            _register_atexit(self)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._queue))
                batch, self._queue = self._queue, []
            try:
                _fsync_all(batch)
            except Exception:  # noqa: BLE001 - whatever went wrong, the waiters are told
                pass
            finally:
                with self._cond:
                    self._synced += len(batch)
                    self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every object put in place before this call is on disk; False on
        timeout."""
        with self._cond:
            target = self._added
            return self._cond.wait_for(lambda: self._synced >= target, timeout)


def _fsync_all(paths: list[str]) -> None:
    folders = {os.path.dirname(p) for p in paths if _fsync(p)}  # gone meanwhile: no matter
    for d in sorted(folders | {os.path.dirname(f) for f in folders}):  # new names, new folders
        _fsync(d)


def _fsync(path: str) -> bool:
    """fsync a file or folder by its path; False when it cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
    return True


_atexit_registered = False


def _register_atexit(durable: Durable) -> None:
    global _atexit_registered
    import atexit

    _atexit_registered = True
    atexit.register(durable.wait, 120)


DURABLE = Durable()


def copy_checked(src: Path | None, digest: str | None, dest: Path, label: str,
                 opener: Callable | None = None) -> tuple[str, int]:
    """Copy `src` to `dest` through a temporary file beside it, hashing; if `digest` is given
    and the bytes differ, the copy is removed and ArtifactCorrupt raised naming `label`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            got, size = copy_hashing(src, fd) if opener is None else _copy_from(opener, fd)
        finally:
            os.close(fd)
        if digest is not None and got != digest:
            raise ArtifactCorrupt(
                f"{label}: the stored bytes do not match the artifact's manifest (sha256 "
                f"{got[:12]}… instead of {digest[:12]}…); it was not downloaded", [label])
        os.replace(tmp, dest)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return got, size


def _copy_from(opener: Callable, fd: int) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with opener() as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view):]
            size += len(chunk)
    return h.hexdigest(), size


def _map(fn: Callable, items: list) -> list:
    if len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(items))) as pool:
        return list(pool.map(fn, items))
