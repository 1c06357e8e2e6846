"""The background thread that makes logged records durable on disk (fsync every couple of
seconds) and keeps the run index fresh, so `log()` itself only does one `os.write`."""

from __future__ import annotations

import os
import threading
import weakref

SYNC_EVERY = 2.0
SNAPSHOT_EVERY = 5  # in SYNC_EVERY ticks

_runs: weakref.WeakSet = weakref.WeakSet()
_thread: threading.Thread | None = None
_wake = threading.Event()
_guard = threading.Lock()


def watch(run) -> None:
    global _thread
    with _guard:
        _runs.add(run)
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="nbtracker-flusher", daemon=True)
            _thread.start()


def _loop() -> None:
    tick = 0
    while True:
        _wake.wait(SYNC_EVERY)
        _wake.clear()
        tick += 1
        for run in list(_runs):
            try:
                run._tick(snapshot=tick % SNAPSHOT_EVERY == 0)
            except Exception:
                pass


def unwatch(run) -> None:
    with _guard:
        _runs.discard(run)


def _after_fork_in_child() -> None:
    # the parent's thread does not exist here and its runs are not this process's to sync
    global _runs, _thread, _wake, _guard
    _runs = weakref.WeakSet()
    _thread = None
    _wake = threading.Event()
    _guard = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
