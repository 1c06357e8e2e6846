"""Online mode: a run uploads while it logs, from a background thread (`sync.uploader`).

`attach` is all `init()` does about it: make the run's Uploader (no network call, no
`requests` import on this thread) and start its thread, plus one thread that uploads what
earlier runs of the store left behind. `finish()` then gives the uploader a bounded time
(`finish(timeout=...)`, default NBTRACKER_FINISH_TIMEOUT or 30 s) to reach the end of the log.
"""

from __future__ import annotations

import threading
from typing import Any

from ..store import layout
from . import output
from .settings import env

FINISH_TIMEOUT = 30.0


def attach(run: Any, settings: Any) -> None:
    """Start uploading `run` to `settings.base_url`."""
    from ..sync.sync import upload_leftovers
    from ..sync.uploader import Uploader

    debug_path = run._path / layout.DEBUG_NAME
    writer = run._writer
    try:
        up = Uploader(run._path, run.project, run.id, base_url=settings.base_url,
                      api_key=settings.api_key, last_seq=lambda: writer.next_seq - 1,
                      say=lambda msg: output.say(msg, debug_path),
                      debug=lambda msg: output.debug(msg, debug_path), live=True)
    except (ValueError, OSError) as e:
        output.warn(f"cannot upload to {settings.base_url}: {e}; the run is kept locally",
                    debug_path)
        return
    run._uploader = up
    up.start()
    threading.Thread(target=upload_leftovers, name="nbtracker-upload-earlier", daemon=True,
                     args=(settings.root, up.base_url, settings.api_key, run._path),
                     kwargs={"debug": lambda msg: output.debug(msg, debug_path)}).start()


def finish_timeout(timeout: float | None) -> float:
    if timeout is not None:
        return max(0.0, float(timeout))
    v = env("FINISH_TIMEOUT")
    try:
        return max(0.0, float(v)) if v is not None else FINISH_TIMEOUT
    except ValueError:
        return FINISH_TIMEOUT


def finish_upload(up: Any, timeout: float | None, run_dir: Any) -> str:
    """Wait (bounded) for the uploader to reach the end of the closed log; the words for the
    finish line about it."""
    if up.close(finish_timeout(timeout)):
        return f"uploaded to {up.base_url}"
    st = up.status()
    why = st["reason"] or "out of time"
    return (f"{st['behind']} record(s) not uploaded yet ({why}); "
            f"`nbtracker sync {run_dir}` uploads them")


def status_text(st: dict) -> str:
    """An upload status as the live panel shows it."""
    state, behind, reason = st["state"], st["behind"], st.get("reason")
    n = f"{behind} record{'' if behind == 1 else 's'} behind"
    if state == "synced":
        return "synced"
    if state == "behind":
        return n
    if state == "offline":
        return f"offline, {n}" + (f" ({reason})" if reason else "")
    return "upload error" + (f": {reason}" if reason else "")
