"""Liveness of a run: its process holds an exclusive flock on `<run dir>/lock` while it lives.

The kernel drops the lock when the process dies, however it dies, so a reader that can take the
lock knows the run is no longer running: a run left `running` in its log is then `crashed`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path


class RunInUse(RuntimeError):
    pass


class RunLock:
    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir) / "lock"
        self.fd = -1

    def acquire(self, timeout: float = 2.0) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise RunInUse(
                        f"the run in {self.path.parent} is in use by another process"
                    ) from None
                time.sleep(0.02)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Let go by closing the descriptor. (LOCK_UN would also free a copy a forked child
        still holds; closing frees the lock only with the last descriptor of it.)"""
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)

    abandon = release  # in a forked child: the same close, which leaves the parent's lock held

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def is_live(run_dir: str | os.PathLike) -> bool:
    """True while some process holds the run's lock."""
    try:
        fd = os.open(Path(run_dir) / "lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def flocked(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive flock on the file `path` (made if missing, its folder too) for the
    block: one process at a time, and a killed holder leaves no stale lock."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
