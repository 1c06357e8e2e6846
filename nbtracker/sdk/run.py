"""Run: one experiment being recorded.

The Run is about the run — steps, values, summary rules, identity and state. Bytes go through the
store's RecordWriter (one `os.write` per call), replay state is the store's RunState, and the
background work (fsync, index snapshots) lives in `flusher`.
"""

from __future__ import annotations

import glob as _glob
import hashlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from ..store import layout
from ..store.columns import COLS_NAME, EXACT, BlockWriter
from ..store.index import RunIndex
from ..store.lock import RunLock
from ..store.recordlog import NONFINITE, RecordWriter, nonfinite_name, pack
from ..store.state import STATES, RunState, deep_update
from ..store.summary import parse_rules
from . import output
from .config import Config, clean
from .summary import Summary
from .values import Normaliser

_dumps = orjson.dumps
_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
_time = time.time


class Run:
    """A run. Create it with `nbtracker.init()`; use it as a context manager to finish it.

    >>> with nbtracker.init(project="mnist", config={"lr": 1e-3}) as run:
    ...     for step in range(100):
    ...         run.log({"loss": 1 / (step + 1)})
    """

    def __init__(self, *, path: Path, state: RunState, index: RunIndex, lock: RunLock,
                 mode: str, settings: Any, resumed: bool,
                 on_finish: Callable[[Run], None] | None = None):
        self._path = path
        self._state = state
        self._index = index
        self._lock = lock
        self._mode = mode
        self.settings = settings
        self.resumed = resumed
        self._on_finish = on_finish
        self._mutex = threading.RLock()
        self._warned: set[str] = set()
        self._good_keys: set[str] = set()
        self._listeners: list[Callable[[tuple, tuple], None]] = []
        self._finish_hooks: list[Callable[[Run], None]] = []
        self._queues: list = []
        self._saved: dict[str, tuple[Path, str]] = {}
        self._save_globs: list[tuple[str, str, str]] = []
        self._done = False
        self._sync_metrics = False
        self._has_rules = bool(state.summary.defs)
        self._debug_path = path / layout.DEBUG_NAME
        self._started = time.time()
        self._step = state.step
        self._rows = state.rows
        self._summary_state = state.summary
        self._summary_update = state.summary.update
        self._writer = RecordWriter(path / layout.LOG_NAME, state.last_seq + 1,
                                    on_error=self._write_error)
        self._blocks = BlockWriter(path / COLS_NAME)
        self._blocks.sink = self._absorb_last
        self._normaliser = Normaliser(self._warn_key, self._bind_media)
        self.config = Config(state.config, on_change=self._config_changed, warn=self._warn_key)
        self.summary = Summary(self._summary_dict, self._set_summary, self._delete_summary)
        for d in state.metrics:
            if d.get("step_metric"):
                self._sync_metrics = True
        (path / layout.FILES_DIR).mkdir(exist_ok=True)

    # -- identity ----------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self._state.id

    @property
    def project(self) -> str:
        return self._state.project

    @property
    def entity(self) -> str:
        return "local"

    @property
    def path(self) -> str:
        """`project/id`: what `Api().run()` takes."""
        return f"{self.project}/{self.id}"

    @property
    def dir(self) -> str:
        """Folder for files that belong to the run; they are recorded at `finish()`."""
        return str(self._path / layout.FILES_DIR)

    @property
    def storage_dir(self) -> str:
        """The run's directory in the store (record log, media, files)."""
        return str(self._path)

    @property
    def step(self) -> int:
        return self._step

    @property
    def state(self) -> str:
        return self._state.state

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def offline(self) -> bool:
        return self._mode != "online"

    @property
    def disabled(self) -> bool:
        return False

    @property
    def start_time(self) -> float:
        return self._state.created

    def _meta(self, field: str, value: Any) -> None:
        with self._mutex:
            if self._done:
                self._closed_call(f"setting {field}")
                return
            if getattr(self._state, field) == value:
                return
            setattr(self._state, field, value)
            self._append({"t": "meta", field: value})

    name = property(lambda self: self._state.name,
                    lambda self, v: self._meta("name", str(v)), doc="Display name.")
    group = property(lambda self: self._state.group,
                     lambda self, v: self._meta("group", None if v is None else str(v)))
    job_type = property(lambda self: self._state.job_type,
                        lambda self, v: self._meta("job_type", None if v is None else str(v)))
    notes = property(lambda self: self._state.notes,
                     lambda self, v: self._meta("notes", None if v is None else str(v)))

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self._state.tags)

    @tags.setter
    def tags(self, tags) -> None:
        self._meta("tags", [str(t) for t in tags])

    # -- logging -----------------------------------------------------------------------
    def log(self, data: dict, step: int | None = None, commit: bool | None = None,
            sync: bool | None = None, **kwargs: Any) -> None:
        """Record a row of values. Without `step`, the row is committed and the step advances;
        with `step=s` (s >= the current step) values accumulate into step s; `commit=False`
        accumulates without advancing. Bad values are reported once and skipped, never raised.
        """
        if kwargs:
            self._unknown_kwargs("log", kwargs)
        if self._done:
            self._closed_call("log")
            return
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                self._warn_once("log-type", f"log() takes a dict, not {type(data).__name__}; "
                                "nothing was logged")
                return
            data = dict(data)
        with self._mutex:
            if step is None:
                s = self._step
            else:
                s = step if type(step) is int else self._coerce_step(step)
                if s is None:
                    s = self._step
                elif s < self._step:
                    self._warn_once("step-order", f"log() step {s} is lower than the current "
                                    f"step {self._step}; such calls are dropped (steps only go "
                                    "forward)")
                    return
                else:
                    self._step = s
            ks = tuple(data)
            blk = self._blocks
            fast = s <= EXACT and (ks == blk.keys or data.keys() <= self._good_keys)
            if fast:
                for v in data.values():
                    t = type(v)
                    if t is not float and (t is not int or not -EXACT <= v <= EXACT):
                        fast = False
                        break
            w = self._writer
            seq = w.next_seq
            if fast:
                ts = _time()
                try:
                    buf = _dumps({"t": "history", "seq": seq, "ts": ts, "step": s, "d": data},
                                 option=_OPT)
                except TypeError:  # an int beyond 64 bits
                    fast = False
                else:
                    if b":null" in buf:  # NaN or infinity: name them in "nf"
                        fast = False
            if fast:
                keys = ks
                off = w.offset
                w.next_seq = seq + 1
                if w._pending:
                    w.write_encoded(buf)
                else:
                    try:
                        n = os.write(w.fd, buf)
                    except OSError as e:
                        w._keep(buf, e)
                    else:
                        w.offset += n
                        w.dirty = True
                        if n != len(buf):
                            w._keep(buf[n:], OSError("short write"))
                row = (s, ts, *data.values())
                blk.add(ks, row, seq, off, w.offset)
                self._rows += 1
                if self._has_rules:
                    # rules such as min/max need every value; the plain "last" rule is
                    # brought up to date from the block's last row when it is read
                    self._summary_update(data)
                if commit is True or (step is None and commit is not False):
                    self._step = s + 1
                if self._queues:
                    for q in self._queues:
                        q.append((keys, row))
                if self._listeners:
                    self._notify(keys, row)
                return
            blk.absorb()  # the summary's last values, before this record's land on top
            flat, nf = self._normalise(data, s)
            if not flat:
                return
            ts = _time()
            rec = {"t": "history", "seq": seq, "ts": ts, "step": s, "d": flat}
            if nf:
                rec["nf"] = nf
            try:
                buf = _dumps(rec, option=_OPT)
            except TypeError as e:
                self._warn_once("encode", f"log() dropped a row it could not encode: {e}")
                return
            values = flat
            if nf:
                values = dict(flat)
                for k, name in nf.items():
                    values[k] = NONFINITE[name]
            w.next_seq = seq + 1
            w.write_encoded(buf)
            self._rows += 1
            self._summary_update(values)
            if commit is True or (step is None and commit is not False):
                self._step = s + 1
            if self._queues or self._listeners:
                keys, row = tuple(values), (s, ts, *values.values())
                for q in self._queues:
                    q.append((keys, row))
                if self._listeners:
                    self._notify(keys, row)

    def _coerce_step(self, step: Any) -> int | None:
        try:
            if isinstance(step, bool):
                raise TypeError
            f = float(step)
            if not f.is_integer() or f < 0:
                raise ValueError
            return int(f)
        except (TypeError, ValueError):
            self._warn_once("step-type", f"log() step must be a non-negative integer, not "
                            f"{step!r}; the current step is used instead")
            return None

    def _normalise(self, data: dict, step: int) -> tuple[dict, dict | None]:
        flat, nf = self._normaliser.flatten(data)
        if nf is None:
            # values that arrived as numpy/torch floats are plain floats by now
            for k, v in flat.items():
                if type(v) is float and not math.isfinite(v):
                    nf = nf or {}
                    nf[k] = nonfinite_name(v)
                    flat[k] = None
        if self._sync_metrics:
            self._add_step_metrics(flat)
        for k, v in flat.items():
            if k not in self._good_keys and type(v) in (int, float) and not self._needs_sync(k):
                self._good_keys.add(k)
        return flat, nf

    def _needs_sync(self, key: str) -> bool:
        if not self._sync_metrics:
            return False
        d = self._summary_state.definition(key)
        return bool(d and d.get("step_metric") and d.get("step_sync", True) is not False)

    def _add_step_metrics(self, flat: dict) -> None:
        """wandb's step_sync: a row holding `val/loss` also holds the latest `epoch` when
        `define_metric("val/*", step_metric="epoch")` says so."""
        last = self._summary_state.last
        for k in list(flat):
            d = self._summary_state.definition(k)
            sm = d.get("step_metric") if d else None
            if sm and sm not in flat and sm in last and d.get("step_sync", True) is not False:
                flat[sm] = last[sm]

    def _bind_media(self, key: str, media: Any) -> dict:
        return media.bind(self._path / layout.MEDIA_DIR)

    def _notify(self, keys: tuple, row: tuple) -> None:
        try:
            for fn in self._listeners:
                fn(keys, row)
        except Exception as e:  # a broken display must not stop training
            self._warn_once(f"listener:{id(fn)}", f"a live view failed and was detached: {e}")
            self.remove_listener(fn)

    def add_listener(self, fn: Callable[[tuple, tuple], None]) -> None:
        """Call `fn(keys, row)` after every logged record, from the logging thread, where
        `row` is `(step, timestamp, *values)` in the order of `keys`. Both are immutable
        snapshots; keep the call cheap (append and return) — it runs inside `log()`."""
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[tuple, tuple], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def add_queue(self, q) -> None:
        """Append `(keys, row)` (as for listeners) to the deque `q` after every logged record:
        the cheapest way to watch a run from another thread, which pops from `q`."""
        self._queues.append(q)

    def remove_queue(self, q) -> None:
        if q in self._queues:
            self._queues.remove(q)

    def add_finish_hook(self, fn: Callable[[Run], None]) -> None:
        """Call `fn(run)` once the run has finished (its log closed), in the finishing thread."""
        self._finish_hooks.append(fn)

    # -- metrics, summary, config --------------------------------------------------------
    def define_metric(self, name: str, step_metric: str | None = None,
                      step_sync: bool | None = None, hidden: bool | None = None,
                      summary: str | None = None, goal: str | None = None,
                      overwrite: bool | None = None, **kwargs: Any) -> dict | None:
        """Say how a metric (or a glob like "val/*") is summarised and plotted.

        >>> run.define_metric("val/loss", summary="min")
        >>> run.define_metric("val/*", step_metric="epoch")
        """
        if kwargs:
            self._unknown_kwargs("define_metric", kwargs)
        if not isinstance(name, str) or not name:
            self._warn_once("define_metric", "define_metric() needs a metric name")
            return None
        try:
            rules = parse_rules(summary, goal)
        except ValueError as e:
            self._warn_once(f"define_metric:{name}", f"define_metric({name!r}): {e}")
            return None
        d: dict[str, Any] = {"name": name}
        if step_metric:
            d["step_metric"] = str(step_metric)
        if step_sync is not None:
            d["step_sync"] = bool(step_sync)
        if hidden:
            d["hidden"] = True
        if rules:
            d["summary"] = list(rules)
        if goal:
            d["goal"] = goal
        with self._mutex:
            if self._done:
                self._closed_call("define_metric")
                return None
            self._append({"t": "metric", **d})
            self._state.metrics.append(d)
            self._summary_state.define(d)
            self._has_rules = True
            if step_metric:
                self._sync_metrics = True
                self._good_keys.clear()  # keys it governs now take the step-sync path
                self._blocks.keys = None
        return d

    def _absorb_last(self, keys: tuple, row: tuple) -> None:
        """Fold the newest row of the open column block into the summary's last values."""
        if not self._has_rules:  # with rules, every row already went through the summary
            self._summary_state.last.update(zip(keys, row[2:]))

    def _summary_dict(self) -> dict:
        with self._mutex:
            self._blocks.absorb()
            return self._summary_state.to_dict()

    def _set_summary(self, values: dict) -> None:
        with self._mutex:
            if self._done:
                self._closed_call("summary update")
                return
            flat = {str(k): clean(v) for k, v in values.items()}
            d, nf = pack(flat)
            rec: dict[str, Any] = {"t": "summary", "d": d}
            if nf:
                rec["nf"] = nf
            self._append(rec)
            self._summary_state.set_manual(flat)

    def _delete_summary(self, keys: list) -> None:
        with self._mutex:
            self._append({"t": "summary", "del": list(keys)})
            self._summary_state.delete_manual(keys)
            for k in keys:
                self._summary_state.last.pop(k, None)

    def _config_changed(self, changed: dict) -> None:
        with self._mutex:
            if self._done:
                self._closed_call("config update")
                return
            d, nf = pack(changed)
            rec: dict[str, Any] = {"t": "config", "d": d}
            if nf:
                rec["nf"] = nf
            self._append(rec)
            deep_update(self._state.config, changed)

    # -- alerts and files --------------------------------------------------------------
    def alert(self, title: str, text: str = "", level: Any = "INFO",
              wait_duration: Any = None, **kwargs: Any) -> None:
        """Record an alert (title, text, level INFO|WARN|ERROR) in the run."""
        if kwargs:
            self._unknown_kwargs("alert", kwargs)
        level = str(getattr(level, "value", level)).upper()
        if level not in ("INFO", "WARN", "ERROR"):
            level = "INFO"
        rec = {"t": "alert", "title": str(title), "text": str(text), "level": level}
        if wait_duration is not None:
            secs = getattr(wait_duration, "total_seconds", None)
            rec["wait_duration"] = secs() if secs else float(wait_duration)
        with self._mutex:
            if self._done:
                self._closed_call("alert")
                return
            self._append(rec)
            self._state.alerts.append(rec)
        output.debug(f"alert [{level}] {title}: {text}", self._debug_path)

    def save(self, glob_str: str | os.PathLike | None = None, base_path: str | None = None,
             policy: str = "live") -> list[str] | bool:
        """Keep files with the run: `run.save("model.h5")`, `run.save("ckpt/*.pt")`.

        Files are copied into the run's `files/` folder now and again at `finish()` if they
        changed (policy "live" or "end"; "now" copies once). Without arguments, makes sure
        everything recorded so far is on disk.
        """
        if glob_str is None:
            self._writer.sync()
            return True
        if policy not in ("live", "now", "end"):
            self._warn_once("save-policy", f"save() policy must be live, now or end, not "
                            f"{policy!r}; using live")
            policy = "live"
        pattern = os.fspath(glob_str)
        if base_path is None:
            base_path = os.path.dirname(pattern) if os.path.isabs(pattern) else "."
        # relative to where save() was called, also when matched again at finish()
        pattern, base_path = os.path.abspath(pattern), os.path.abspath(base_path)
        with self._mutex:
            if self._done:
                self._closed_call("save")
                return []
            if policy != "now":  # files that match later are kept at finish()
                self._save_globs.append((pattern, base_path, policy))
            saved = self._save_matches(pattern, base_path, policy)
        if not saved:
            output.debug(f"save({glob_str!r}) matched no files yet", self._debug_path)
        return saved

    def _save_matches(self, pattern: str, base_path: str, policy: str) -> list[str]:
        saved = []
        for m in sorted(p for p in _glob.glob(pattern, recursive=True) if os.path.isfile(p)):
            rel = os.path.relpath(os.path.abspath(m), base_path)
            if rel.startswith("..") or os.path.isabs(rel):
                rel = os.path.basename(m)
            rel = rel.replace(os.sep, "/")
            self._saved[rel] = (Path(m).resolve(), policy)
            self._copy_file(rel, Path(m))
            saved.append(rel)
        return saved

    def _copy_file(self, rel: str, src: Path) -> None:
        dst = self._path / layout.FILES_DIR / rel
        try:
            if src.resolve() != dst.resolve():
                dst.parent.mkdir(parents=True, exist_ok=True)
                tmp = dst.with_name(f".{dst.name}.tmp")
                with open(src, "rb") as fi, open(tmp, "wb") as fo:
                    while chunk := fi.read(1 << 20):
                        fo.write(chunk)
                os.replace(tmp, dst)
            self._record_file(rel, dst)
        except OSError as e:
            self._warn_once(f"save:{rel}", f"could not save {src}: {e}")

    def _record_file(self, rel: str, dst: Path) -> None:
        h = hashlib.sha256()
        with open(dst, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        digest = h.hexdigest()
        known = self._state.files.get(rel)
        if known and known.get("sha256") == digest:
            return
        rec = {"t": "file", "path": rel, "size": dst.stat().st_size, "sha256": digest}
        self._append(rec)
        self._state.files[rel] = rec

    def _final_files(self) -> None:
        for pattern, base_path, policy in self._save_globs:
            self._save_matches(pattern, base_path, policy)
        for rel, (src, policy) in list(self._saved.items()):
            if policy != "now" and src.is_file():
                self._copy_file(rel, src)
        files = self._path / layout.FILES_DIR
        for p in sorted(files.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(files).as_posix()
                try:
                    self._record_file(rel, p)
                except OSError:
                    pass

    # -- finishing ---------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None,
               timeout: float | None = None, **kwargs: Any) -> None:
        """Mark the run finished (or failed, with a non-zero `exit_code`) and close its log."""
        if kwargs:
            self._unknown_kwargs("finish", kwargs)
        state = "finished" if not exit_code else "failed"
        self._finish(state, exit_code, quiet=bool(quiet))

    def _finish(self, state: str, exit_code: int | None = None, quiet: bool = False) -> None:
        assert state in STATES
        with self._mutex:
            if self._done:
                return
            try:
                self._final_files()
            except OSError as e:
                self._warn_once("files", f"could not record the run's files: {e}")
            rec: dict[str, Any] = {"t": "exit", "state": state}
            if exit_code is not None:
                rec["exit_code"] = int(exit_code)
            self._append(rec)
            self._state.apply({"t": "exit", "ts": rec["ts"], "seq": rec["seq"], "state": state,
                               "exit_code": rec.get("exit_code")})
            self._blocks.close()
            self._writer.close()
            self._done = True
            self._snapshot()
            self._lock.release()
        if self._on_finish is not None:
            self._on_finish(self)
        for fn in self._finish_hooks:
            try:
                fn(self)
            except Exception as e:  # a display hook must not break finish()
                output.debug(f"finish hook failed: {e}", self._debug_path)
        if not quiet:
            if self._writer.dropped or self._writer.pending:
                output.warn(f"{self._writer.dropped + self._writer.pending} record(s) could not "
                            "be written (disk full?)", self._debug_path)
            output.say(f"run {self.name} ({self.id}) {state}: {self._rows} rows, "
                       f"{self._state.runtime:.1f}s — {self._path}", self._debug_path)

    def mark_preempting(self) -> None:
        """Accepted for compatibility; a preempted run is resumed with `init(id=..., resume=True)`."""

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._finish("finished")
        elif issubclass(exc_type, KeyboardInterrupt):
            self._finish("interrupted", 255)
        else:
            self._finish("failed", 1)
        return False

    # -- plumbing ----------------------------------------------------------------------
    def _append(self, rec: dict) -> None:
        """Append a non-history record (caller holds the mutex)."""
        rec["ts"] = _time()
        self._blocks.absorb()
        self._writer.append(rec)

    def _snapshot(self) -> None:
        """Save the replay state in the run index, so readers need not replay the log."""
        with self._mutex:
            w = self._writer
            if w.pending:
                return
            st = self._state
            self._blocks.absorb()
            st.step, st.rows, st.last_seq = self._step, self._rows, w.next_seq - 1
            st.updated = _time()
            info, blob, end = st.info(), st.dump(), w.offset
        try:
            self._index.put(self._path, info, end, blob)
        except Exception as e:
            output.debug(f"index update failed: {e}", self._debug_path)

    def _tick(self) -> None:
        """Periodic work from the flusher thread: fsync, then refresh the index snapshot."""
        if self._done:
            return
        self._writer.sync()
        self._snapshot()

    def _write_error(self, err: Exception) -> None:
        self._blocks.broken = True  # byte offsets are no longer known: the log alone serves
        output.warn(f"cannot write to {self._writer.path} ({err}); records are kept in memory "
                    "and written when space is available", self._debug_path)

    def _warn_once(self, key: str, msg: str) -> None:
        if key in self._warned:
            return
        self._warned.add(key)
        output.warn(msg, self._debug_path)

    def _warn_key(self, key: str, msg: str) -> None:
        self._warn_once(f"key:{key}", msg)

    def _unknown_kwargs(self, fn: str, kwargs: dict) -> None:
        for k in kwargs:
            self._warn_once(f"kw:{fn}:{k}", f"{fn}() ignores the argument {k!r}")

    def _closed_call(self, what: str) -> None:
        self._warn_once(f"closed:{what}", f"run {self.name} ({self.id}) is finished; "
                        f"{what} is ignored (start a new run with nbtracker.init())")

    def _repr_mimebundle_(self, include=None, exclude=None):
        """In a notebook, a run shows its live panel."""
        if "ipykernel" not in sys.modules:
            return None
        from ..notebook.live import panel_for

        return panel_for(self)._repr_mimebundle_()

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} name={self.name!r} state={self.state}>"
