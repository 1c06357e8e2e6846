"""Run: one experiment being recorded.

The Run is about the run — steps, values, summary rules, identity and state. Bytes go through the
store's RecordWriter (one `os.write` per call), replay state is the store's RunState, and the
background work (fsync, index snapshots) lives in `flusher`.
"""

from __future__ import annotations

import operator
import os
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..store import layout
from ..store.columns import COLS_NAME, BlockWriter
from ..store.index import RunIndex
from ..store.lock import RunLock
from ..store.recordlog import ClosedError, RecordWriter, make_record
from ..store.state import STATES, RunState, merge_config
from ..store.summary import parse_rules
from . import output
from .config import Config, clean
from .saving import POLICIES, SavedFiles
from .summary import Summary
from .values import Normaliser

_STEP_MAX = 2**64 - 1  # steps are written as JSON integers, which hold up to this
SUMMARY_MIN_ROWS = 4096  # store.summaries: BASE * MIN_BUCKETS; shorter runs need none


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
        self._uploader = None  # online mode: set by init (sdk/upload.py)
        self._warned: set[str] = set()
        self._good_keys: set[str] = set()
        self._listeners: list[Callable[[tuple, tuple], None]] = []
        self._finish_hooks: list[Callable[[Run], None]] = []
        self._after_finish_line: list[Callable[[], None]] = []  # e.g. init's silence ending
        self._events: list[Callable[[str, dict], None]] = []
        self._parts: list = []  # sdk/parts.py: system metrics, console, code, alert delivery
        self._alerts: Any = None  # sdk/alerts.py: rate limits and delivery
        self._panel_shown = False  # a notebook panel shows this run: no finish line
        self._start_line: Any = None  # the start line's notebook output, until a panel replaces it
        self._queues: list = []
        self._done = False  # finished, or the parent's run seen from a forked child
        self._forked = False
        self._sync_metrics = False
        self._has_rules = bool(state.summary.defs)
        self._debug_path = path / layout.DEBUG_NAME
        self._started = time.time()
        self._step = state.step
        self.starting_step = state.step  # wandb's name: where a resumed run went on from
        self._rows = state.rows
        self._steps_add = state.steps.add  # distinct steps with a row, for the index
        self._row_step: int | None = None
        self._summary_state = state.summary
        self._summary_update = state.summary.update
        blocks = BlockWriter(path / COLS_NAME)
        blocks.sink = self._absorb_last
        self._absorb = blocks.absorb
        self._pending_flat: dict | None = None  # a row being written through the general path
        self._writer = RecordWriter(path / layout.LOG_NAME, state.last_seq + 1,
                                    on_error=self._write_error, blocks=blocks)
        # one lock orders sequence numbers, bytes, steps and summaries (the fsync thread too)
        self._mutex = self._writer.lock
        self._normaliser = Normaliser(self._warn_key, self._bind_media)
        self.config = Config(state.config, on_change=self._config_changed, warn=self._warn_key)
        self.summary = Summary(self._summary_dict, self._set_summary, self._delete_summary)
        for d in state.metrics:
            if d.get("step_metric"):
                self._sync_metrics = True
        (path / layout.FILES_DIR).mkdir(exist_ok=True)
        self._saving = SavedFiles(self)
        _runs.add(self)

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

    # -- where the run is seen (wandb's url, get_url, project_url...) ----------------------
    def _server(self) -> str | None:
        """The team server the run uploads to, if it does."""
        base = getattr(self.settings, "base_url", None)
        return base if self._mode == "online" and base else None

    @property
    def url(self) -> str:
        """Where the run is. Uploading to a team server: the server's address of the run
        (`<server>/api/v1/projects/<project>/runs/<id>`, its HTTP API: the server has no web
        page); otherwise a file URL of the run's folder (`file:///.../runs/<project>/<id>`)."""
        base = self._server()
        return server_url(base, self.project, self.id) if base else file_url(self._path)

    @property
    def project_url(self) -> str:
        """Where the project's runs are: the server's list of them, or the project's folder."""
        base = self._server()
        return server_url(base, self.project) if base else file_url(self._path.parent)

    def get_url(self) -> str:
        """`run.url` (wandb's older name)."""
        return self.url

    def get_project_url(self) -> str:
        """`run.project_url` (wandb's older name)."""
        return self.project_url

    def project_name(self) -> str:
        """The project's name (wandb's older name of `run.project`)."""
        return self.project

    @property
    def sweep_id(self) -> str | None:
        """The id of the sweep the run is a trial of; None outside a sweep."""
        return self._state.sweep

    sweep_url = None  # a sweep has no page of its own here
    _sweep_link = None  # in a function-mode sweep trial: the agent's link (sweeps/agent.py)

    @property
    def pruned(self) -> bool:
        """True once the sweep this run is a trial of stopped it early (hyperband): the
        trial's function may return; the agent ends the run `pruned`. Always False outside a
        sweep's function-mode trial."""
        link = self._sweep_link
        return bool(link is not None and link.pruned)

    def get_sweep_url(self) -> None:
        """None: a sweep has no page of its own here."""
        return None

    @property
    def step(self) -> int:
        """The step the next `log()` without `step=` goes to."""
        return self._step

    @property
    def steps(self) -> int:
        """How many distinct steps hold a history row (as `Api().run(...).steps` says)."""
        return self._state.steps.count

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

    def upload_status(self) -> dict:
        """Where uploading to the team server stands:
        `{"state": "synced"|"behind"|"offline"|"error", "behind": n, "reason": str|None}`,
        `behind` counting records the server does not have yet. An offline run is "offline"
        with every record behind (`nbtracker sync` uploads it)."""
        up = self._uploader
        if up is not None:
            return up.status()
        return {"state": "offline", "behind": self._writer.next_seq - 1,
                "reason": "offline mode" if self._mode != "online" else "not uploading"}

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
    def log(self, data: dict | None = None, step: int | None = None,
            commit: bool | None = None, sync: bool | None = None, **kwargs: Any) -> None:
        """Record a row of values.

        Args:
            data: metric name -> value (numbers, strings, None, NaN/inf, nested dicts, arrays,
                media). Bad values are reported once per key and skipped, never raised.
                Without data (`log()`, `log({})`), the row accumulated at the current step
                (with `commit=False`) is committed: the step advances if it holds a row.
            step: the step the values belong to. Without it the row goes to the current step,
                which then advances. A step above the current one moves there; a step below it
                is kept too and joins that step's row (wandb drops such values).
            commit: False accumulates into the current step without advancing.

        >>> run.log({"loss": 0.25, "acc": 0.9})
        >>> run.log({"val/loss": 0.3}, step=run.step - 1)
        """
        if kwargs:
            self._unknown_kwargs("log", kwargs)
        if self._done:
            self._closed_call("log")
            return
        if not data and step is None and (data is None or type(data) is dict):
            self._commit_row(commit)
            return
        if type(data) is not dict:
            if not isinstance(data, Mapping):
                self._warn_once("log-type", f"log() takes a dict, not {type(data).__name__}; "
                                "nothing was logged")
                return
            data = dict(data)
        with self._mutex:
            cur = self._step
            if step is None:
                s = cur
            else:
                s = step if type(step) is int and 0 <= step <= _STEP_MAX else self._coerce_step(step)
                if s is None:
                    s = cur
                elif s < cur:
                    self._warn_once("step-order", f"log() step {s} is lower than the current "
                                    f"step {cur}; the values are kept at step {s}")
                    last = self._state.steps.last
                    if last is not None and s < last:
                        self._state.late_steps = True  # as replay says (RunState.apply_history)
                else:
                    self._step = cur = s
            advance = s >= cur and (commit is True or (step is None and commit is not False))
            new_step = s + 1 if advance else cur
            rows = self._rows + 1
            w = self._writer
            seq = w.next_seq
            try:
                row = w.append_row(s, data, self._good_keys)
                if row is not None:
                    keys = None
                    # a row kept in a column block reaches the summary's last values when the
                    # summary is next read (`_absorb`): one dict update saved per call
                    if self._has_rules:
                        self._summary_update(data)
                    elif not w.in_block:
                        self._absorb()
                        self._summary_update(data)
                else:
                    keys, row = self._log_general(s, data)
                    if row is None:
                        return
                self._rows = rows
                self._step = new_step
                if s != self._row_step:
                    self._row_step = s
                    self._steps_add(s)
            except ClosedError:  # finish() from another thread won the race
                self._closed_call("log")
                return
            except BaseException:
                # Ctrl-C mid-call: the writer has settled whether the record is in; if it is,
                # so is its row (or the next row would merge into it) and its summary
                if w.next_seq > seq:
                    self._rows = rows
                    self._step = new_step
                    self._steps_add(s)
                    self._absorb()
                    self._summary_update(self._pending_flat or data)
                self._pending_flat = None
                raise
            if self._queues or self._listeners:
                self._publish(keys or tuple(data), row)
                link = self._sweep_link
                if link is not None and link.pruned and link.raise_pruned:
                    link.raise_pruned = False  # once
                    from ..errors import TrialPruned

                    raise TrialPruned(f"the sweep stopped this trial early ({link.reason})")

    def _commit_row(self, commit: bool | None) -> None:
        """`log()` with nothing to log: the current step's row, if there is one, is complete."""
        if commit is False:
            return
        with self._mutex:
            if self._state.steps.last == self._step and self._step < _STEP_MAX:
                self._step += 1

    def _log_general(self, s: int, data: dict) -> tuple[tuple, tuple | None]:
        """Everything `append_row` does not take: normalise, name what JSON cannot hold, write.
        Returns (keys, row) as listeners see them; row is None when nothing was logged."""
        self._absorb()  # rows kept in blocks are older than this one
        flat = self._normaliser.flatten(data)
        if self._sync_metrics:
            self._add_step_metrics(flat)
        if not flat:
            return (), None
        for k, v in flat.items():
            if k not in self._good_keys and type(v) in (int, float) and not self._needs_sync(k):
                self._good_keys.add(k)
        rec = make_record("history", flat, step=s)
        self._pending_flat = flat
        try:
            self._writer.append(rec)
        except TypeError as e:
            self._pending_flat = None
            self._warn_once("encode", f"log() dropped a row it could not encode: {e}")
            return (), None
        self._summary_update(flat)
        self._pending_flat = None
        return tuple(flat), (s, rec["ts"], *flat.values())

    def _publish(self, keys: tuple, row: tuple) -> None:
        for q in self._queues:
            q.append((keys, row))
        if self._listeners:
            self._notify(keys, row)

    def _coerce_step(self, step: Any) -> int | None:
        try:
            if isinstance(step, bool):
                raise TypeError
            try:
                s = operator.index(step)  # numpy and torch integers, exactly
            except TypeError:
                f = float(step)
                if not f.is_integer():
                    raise ValueError from None
                s = int(f)
            if not 0 <= s <= _STEP_MAX:
                raise ValueError
            return s
        except (TypeError, ValueError, OverflowError):
            self._warn_once("step-type", f"log() step must be an integer from 0 to 2**64 - 1, "
                            f"not {step!r}; the current step is used instead")
            return None

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

    def add_event_listener(self, fn: Callable[[str, dict], None]) -> None:
        """Call `fn(kind, payload)` for what the run records besides history rows: `system`
        (a sample: {"ts", "d": {key: value}}), `alert` (the alert record), `output` (console
        text), `info` (code and environment). Called from the recording thread; keep it cheap."""
        self._events.append(fn)

    def remove_event_listener(self, fn: Callable[[str, dict], None]) -> None:
        if fn in self._events:
            self._events.remove(fn)

    def _emit(self, kind: str, payload: dict) -> None:
        for fn in list(self._events):
            try:
                fn(kind, payload)
            except Exception as e:  # a broken display must not stop training
                self._warn_once(f"event:{id(fn)}", f"a live view failed and was detached: {e}")
                self.remove_event_listener(fn)

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
            self._absorb()  # from now on every row goes through the summary as it is logged
            self._summary_state.define(d)
            self._has_rules = True
            if step_metric:
                self._sync_metrics = True
                self._good_keys.clear()  # keys it governs now take the step-sync path
                self._writer.forget_row_keys()
        return d

    def _absorb_last(self, keys: tuple, row: tuple) -> None:
        """The newest row of a column block, given to the summary's last values in log order
        (with summary rules on, every row already went through the summary)."""
        if not self._has_rules:
            self._summary_state.last.update(zip(keys, row[2:]))

    def _summary_dict(self) -> dict:
        with self._mutex:
            self._absorb()
            return self._summary_state.to_dict()

    def _set_summary(self, values: dict) -> None:
        with self._mutex:
            if self._done:
                self._closed_call("summary update")
                return
            self._absorb()
            flat = {str(k): clean(v) for k, v in values.items()}
            self._append(make_record("summary", flat))
            self._summary_state.set_manual(flat)

    def _delete_summary(self, keys: list) -> None:
        with self._mutex:
            if self._done:
                self._closed_call("summary delete")
                return
            self._absorb()  # else an older row given later would bring a deleted key back
            self._append({"t": "summary", "del": list(keys)})
            self._summary_state.delete(keys)

    def _config_changed(self, changed: dict) -> None:
        with self._mutex:
            if self._done:
                self._closed_call("config update")
                return
            self._append(make_record("config", changed))
            merge_config(self._state.config, changed)

    # -- alerts and files --------------------------------------------------------------
    def alert(self, title: str, text: str = "", level: Any = None,
              wait_duration: Any = None, **kwargs: Any) -> None:
        """Record an alert in the run (the live panel shows it) and send it to the webhooks
        configured in the settings (`alert_webhooks`, `alert_slack_webhooks`; see sdk/alerts.py).

        Args:
            title: what it is about; alerts are rate-limited per title.
            text: the message.
            level: "INFO" (default), "WARN" or "ERROR", or `nbtracker.AlertLevel.WARN`...
            wait_duration: seconds (or a `timedelta`) during which another alert with this title
                is recorded as suppressed and not sent (default 60 s, as wandb).

        >>> run.alert("Low accuracy", f"accuracy {acc:.2f} < 0.3", level=AlertLevel.WARN)
        """
        if kwargs:
            self._unknown_kwargs("alert", kwargs)
        if self._done:
            self._closed_call("alert")
            return
        if self._alerts is None:  # no alerts part (no channels started): record and rate-limit
            from .alerts import Alerts

            self._alerts = Alerts(self, [])
        self._alerts.alert(title, text, level, wait_duration)

    def save(self, glob_str: str | os.PathLike | None = None,
             base_path: str | os.PathLike | None = None, policy: str = "live") -> list[str] | bool:
        """Keep files with the run, in its `files/` folder: `run.save("model.h5")`,
        `run.save("ckpt/*.pt", policy="end")`. Without arguments, makes sure everything
        recorded so far is on disk.

        Args:
            glob_str: a file or a glob (`**` included), relative to the current directory.
            base_path: the folder the saved names are relative to (default: the current
                directory; for an absolute glob, the folder it starts in). A glob reaching
                outside it is refused with a warning.
            policy: "live" (default) copies now and again whenever a file changes while the
                run is alive, and at finish; "now" copies once, now; "end" at finish only.

        Returns the names (relative to `base_path`) that match now.
        """
        if glob_str is None:
            self._writer.sync()
            return True
        if policy not in POLICIES:
            self._warn_once("save-policy", f"save() policy must be live, now or end, not "
                            f"{policy!r}; using live")
            policy = "live"
        saved = self._saving.save(glob_str, base_path, policy)
        if not saved:
            output.debug(f"save({glob_str!r}) matched no files yet", self._debug_path)
        return saved

    # -- artifacts (nbtracker/artifacts) -------------------------------------------------
    def log_artifact(self, artifact_or_path: Any, name: str | None = None,
                     type: str | None = None, aliases: list[str] | None = None,
                     tags: list[str] | None = None):
        """Log an artifact (or a file, folder or URI as one) as the run's output: a new
        version when its content is new, else the version that holds it; `latest` and
        `aliases` move to it. Returns the logged `Artifact` ("mnist:v3").

        >>> art = nbtracker.Artifact("mnist", type="dataset"); art.add_dir("data/")
        >>> run.log_artifact(art, aliases=["best"])
        """
        from ..artifacts.runs import log_artifact

        return log_artifact(self, artifact_or_path, name, type, aliases, tags)

    def use_artifact(self, artifact_or_name: Any, type: str | None = None,
                     aliases: list[str] | None = None, use_as: str | None = None):
        """An artifact version as the run's input ("mnist:latest", "mnist:v3",
        "project/mnist:best"); the run is recorded as using it.

        >>> path = run.use_artifact("mnist:latest").download()
        """
        from ..artifacts.runs import use_artifact

        return use_artifact(self, artifact_or_name, type, aliases, use_as)

    def log_model(self, path: Any, name: str | None = None, aliases: list[str] | None = None):
        """Log a model file or folder as a "model" artifact (default name
        `run-<run id>-<file name>`), as wandb's `log_model`."""
        from ..artifacts.runs import log_model

        return log_model(self, path, name, aliases)

    def use_model(self, name: str) -> str:
        """Download a logged model ("mnist-cnn:latest") and return the path of its file."""
        from ..artifacts.runs import use_model

        return use_model(self, name)

    def link_model(self, path: Any, registered_model_name: str, name: str | None = None,
                   aliases: list[str] | None = None):
        """Log the model; there is no model registry here, so the link is its aliases."""
        self._warn_once("link_model", "link_model(): there is no model registry here; the "
                        "model is logged, and its aliases name it")
        return self.log_model(path, name, aliases)

    def link_artifact(self, artifact: Any, target_path: str, aliases: list[str] | None = None):
        self._warn_once("link_artifact", "link_artifact() has no effect here: there is no "
                        "model registry; aliases name the versions to use")

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

    def _record_file(self, rel: str, dst: Path, digest: str | None = None) -> None:
        """A `file` record for `files/<rel>` unless the last one names the same bytes (caller
        holds the mutex; `digest` when the caller hashed the bytes as it copied them)."""
        if self._bad_name(rel, str(dst)):
            return
        if digest is None:
            digest = layout.sha256_file(dst)
        known = self._state.files.get(rel)
        if known and known.get("sha256") == digest:
            return
        rec = {"t": "file", "path": rel, "size": dst.stat().st_size, "sha256": digest}
        self._append(rec)
        self._state.files[rel] = rec

    def _bad_name(self, rel: str, path: str) -> bool:
        """Whether `rel` cannot be a file's name in the run (not valid UTF-8, as a file name
        of bytes can be): then one warning in the run, naming the first such file."""
        try:
            rel.encode("utf-8")
            return False
        except UnicodeEncodeError:
            self._warn_once("files:utf8", f"a file whose name is not valid UTF-8 is left out of "
                            f"the run's files: {os.fsencode(path)!r} (and any others)")
            return True

    def _final_files(self) -> None:
        try:
            self._saving.final()
        except Exception as e:  # one file that cannot be copied never stops finish()
            self._warn_once("files", f"could not record the run's files: {e}")
        files = self._path / layout.FILES_DIR
        for p in sorted(files.rglob("*")):
            if p.is_file() and not p.name.startswith("."):
                rel = p.relative_to(files).as_posix()
                try:
                    self._record_file(rel, p)
                except (OSError, ValueError, TypeError) as e:
                    self._warn_once(f"files:{rel!a}", f"could not record the file {rel!a}: {e}")

    # -- finishing ---------------------------------------------------------------------
    def finish(self, exit_code: int | None = None, quiet: bool | None = None,
               timeout: float | None = None, **kwargs: Any) -> None:
        """Mark the run finished (or failed, with a non-zero `exit_code`) and close its log.

        Args:
            exit_code: non-zero marks the run failed.
            quiet: print nothing.
            timeout: in online mode, seconds to wait at most for the upload to complete
                (default: NBTRACKER_FINISH_TIMEOUT, else 30). What is left is named in the finish
                line and uploaded by `nbtracker sync` or the next run in this store.
        """
        if kwargs:
            self._unknown_kwargs("finish", kwargs)
        state = "finished" if not exit_code else "failed"
        self._finish(state, exit_code, quiet=bool(quiet), timeout=timeout)

    def _finish(self, state: str, exit_code: int | None = None, quiet: bool = False,
                timeout: float | None = None) -> None:
        assert state in STATES
        if self._done:
            return
        if self._parts:
            from . import parts

            parts.close(self, state)
        with self._mutex:
            if self._done:
                return
            try:
                self._final_files()
            except Exception as e:  # the run still finishes
                self._warn_once("files", f"could not record the run's files: {e}")
            rec: dict[str, Any] = {"t": "exit", "state": state}
            if exit_code is not None:
                rec["exit_code"] = int(exit_code)
            self._append(rec)
            self._state.apply({"t": "exit", "ts": rec["ts"], "seq": rec["seq"], "state": state,
                               "exit_code": rec.get("exit_code")})
            self._writer.close()
            self._done = True
            self._snapshot()
            self._lock.release()
        uploaded = ""
        if self._uploader is not None:
            from .upload import finish_upload

            uploaded = "; " + finish_upload(self._uploader, timeout, self._path)
        if self._rows >= SUMMARY_MIN_ROWS:  # a long run's series summaries, for charts
            try:
                from ..store.summaries import build

                build(self._path)
            except Exception as e:  # only a read accelerator: the log has it all
                output.debug(f"series summaries not built: {e}", self._debug_path)
        if self._on_finish is not None:
            self._on_finish(self)
        for fn in self._finish_hooks:
            try:
                fn(self)
            except Exception as e:  # a display hook must not break finish()
                output.debug(f"finish hook failed: {e}", self._debug_path)
        if not quiet:
            lost = self._writer.dropped + self._writer.pending_records
            if lost:
                output.warn(f"{lost} record(s) could not be written (disk full?)",
                            self._debug_path)
            line = (f"run {self.name} ({self.id}) {state}: {self._rows} rows, "
                    f"{self._state.runtime:.1f}s — {self._path}{uploaded}")
            if self._panel_shown:  # the panel says it, in place
                output.debug(line, self._debug_path)
            else:
                output.say(line, self._debug_path)
        elif uploaded:
            output.debug(uploaded[2:], self._debug_path)
        for fn in self._after_finish_line:
            fn()

    def log_code(self, root: str | os.PathLike | None = ".", name: str | None = None,
                 include_fn: Callable[..., bool] | None = None,
                 exclude_fn: Callable[..., bool] | None = None) -> list[str] | None:
        """Keep the source files under `root` with the run, as wandb's `log_code`: in its
        files as `code/<path relative to root>` (`code/<name>/...` with `name`), uploaded and
        read back like any saved file (`Api().run(path).files()`, `nbtracker restore`).

        Args:
            root: the folder walked (default: the current directory).
            name: a folder under `code/` for these files.
            include_fn: `f(path)` or `f(path, root)`, True for a file to keep (default: `.py`
                files, `requirements.txt` and `Dockerfile*`, as wandb).
            exclude_fn: `f(path)` or `f(path, root)`, True for a file to leave out (default:
                files under `wandb/` and `.wandb/`, as wandb). Whatever it says, the walk never
                enters the run store, `.git`, `__pycache__`, `node_modules` or a virtualenv.

        Returns the names saved, or None (with a warning) when no file matched.

        >>> run.log_code(".", include_fn=lambda p: p.endswith((".py", ".yaml")))
        """
        if self._done:
            self._closed_call("log_code")
            return None
        from .code import log_code

        return log_code(self, root, name, include_fn, exclude_fn)

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
        self._writer.append(rec)

    def _snapshot(self) -> None:
        """Save the replay state in the run index, so readers need not replay the log."""
        with self._mutex:
            w = self._writer
            if w.pending:
                return
            self._absorb()
            st = self._state
            st.step, st.rows, st.last_seq = self._step, self._rows, w.next_seq - 1
            st.updated = w.last_ts or st.updated  # as a replay of the log would say
            info, blob, end = st.info(), st.dump(), w.offset
        try:
            self._index.put(self._path, info, end, blob)
        except Exception as e:
            output.debug(f"index update failed: {e}", self._debug_path)

    def _tick(self, snapshot: bool = True) -> None:
        """Periodic work from the flusher thread: fsync (writing any backlog first), and now and
        then a fresh index snapshot."""
        if self._done:
            return
        self._writer.sync()
        if snapshot:
            self._snapshot()
        if self._saving.live:
            self._saving.poll()  # files saved with policy "live" that changed

    def _write_error(self, err: Exception) -> None:
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

    def _leave_after_fork(self) -> None:
        """In a child made by fork() (DataLoader workers, multiprocessing pools): the run is the
        parent's. Write nothing to it, finish nothing, unlock nothing; only close the child's
        copies of its descriptors (closing never releases the parent's flock, LOCK_UN would)."""
        self._forked = True
        self._done = True
        self._uploader = None  # the parent's thread: not in this process
        # a thread of the parent may have held the lock at the fork: it would never be freed
        self._writer.lock = self._mutex = threading.RLock()
        self._writer.abandon()
        self._lock.abandon()
        self._listeners.clear()
        self._queues.clear()
        self._finish_hooks.clear()
        self._events.clear()
        self._parts = []  # threads of the parent: not in this process
        self._on_finish = None

    def _closed_call(self, what: str) -> None:
        if self._forked:
            self._warn_once(f"forked:{what}", f"run {self.name} ({self.id}) belongs to the process "
                            f"that forked this one; {what} is ignored here (call nbtracker.init() "
                            "in this process for a run of its own)")
            return
        self._warn_once(f"closed:{what}", f"run {self.name} ({self.id}) is finished; "
                        f"{what} is ignored (start a new run with nbtracker.init())")

    def display(self, height: int = 420, hidden: bool = False) -> bool:
        """Show the run's live panel in a notebook, as wandb's `run.display()` shows its page
        (`height` is accepted; the panel sizes itself). False, showing nothing, outside a
        notebook or with `hidden`."""
        if hidden or not output.in_notebook():
            return False
        self._ipython_display_()
        return True

    def _ipython_display_(self) -> None:
        """In a notebook, a run shows its live panel (its static form once finished)."""
        from ..notebook.live import show

        show(self)

    def _repr_pretty_(self, p, cycle) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} name={self.name!r} state={self.state}>"

    # -- gradients and parameters (sdk/watch.py) -------------------------------------------
    def watch(self, models: Any, criterion: Any = None, log: str | None = "gradients",
              log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
        """Log histograms of a PyTorch model's gradients and/or parameters every `log_freq`
        backward / forward passes, as wandb's `watch` (keys `gradients/<name>`,
        `parameters/<name>`); `unwatch()` or `finish()` removes the hooks.

        Args:
            models: a torch.nn.Module, or a list of them.
            criterion: accepted for wandb's signature; not used.
            log: "gradients" (default), "parameters", "all" or None.
            log_freq: passes between two histograms of a tensor (default 1000).
            idx: index of the first model in the key prefixes (`graph_<idx>`); default: the
                number of models this run watched before.
            log_graph: accepted; the model graph is not recorded.

        >>> run.watch(model, log="all", log_freq=100)
        """
        from . import watch as _watch

        _watch.watch(self, models, criterion, log, log_freq, idx, log_graph)

    def unwatch(self, models: Any = None) -> None:
        """Remove the hooks `watch` put on `models` (on every model when None)."""
        from . import watch as _watch

        _watch.unwatch(self, models)


def server_url(base_url: str, project: str, run_id: str | None = None) -> str:
    """The server's address of a project's runs, or of one run (its HTTP API)."""
    from urllib.parse import quote

    from ..sync.client import API

    url = f"{base_url.rstrip('/')}{API}/projects/{quote(project, safe='')}/runs"
    return url if run_id is None else f"{url}/{quote(run_id, safe='')}"


def file_url(path: Path) -> str:
    """A file URL of a path in the store (`run.url` of a local run, `ApiFile.url`)."""
    return Path(os.path.abspath(path)).as_uri()


_runs: weakref.WeakSet[Run] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for run in list(_runs):
        run._leave_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
