"""The background thread that makes logged records durable on disk (fsync every couple of
seconds) and keeps the run index fresh, so `log()` itself only does one `os.write`."""

from __future__ import annotations

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
                if tick % SNAPSHOT_EVERY == 0:
                    run._tick()
                else:
                    run._writer.sync()
            except Exception:
                pass


def unwatch(run) -> None:
    with _guard:
        _runs.discard(run)
