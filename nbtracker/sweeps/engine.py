"""A sweep: its id, its Optuna study, its state, and the bookkeeping of its trials.

Where a sweep lives
-------------------
A local sweep lives in the store, `<store root>/sweeps/<id>/`: `sweep.json` (the id, project,
storage and when it was made) and `journal.log`, the Optuna study in Optuna's journal file
(multi-process safe on one machine: agents in several processes share it). With `storage=` (or
NBTRACKER_SWEEP_STORAGE) a PostgreSQL URL, the study is an Optuna RDB study in that database (in
its schema `nbtracker_sweeps`, made if missing, so Optuna's tables meet no other's), named by the
sweep id, and agents on other machines reach it with the id and the same URL; `sweep.json` is
still written locally so that this machine finds it by id alone.

Everything agents need is in the study itself: its user attributes hold the sweep's config, project,
seed and state (`running`, `paused`, `stopped`, `cancelled`, `finished`), so a sweep is the same
sweep from every machine.

Trials
------
Each trial is one Optuna trial and one nbtracker run. The agent records, in the trial's user
attributes, the run id (`nbt_run`), the agent (`nbt_agent`: host, pid, process start time), the
trial process (`nbt_proc`), a heartbeat (`nbt_beat`), the nested parameters (`nbt_params`), and at
the end the outcome (`nbt_state`: finished, failed, crashed, interrupted, pruned, or skipped; its
`nbt_exit` description; `nbt_value`, the metric's summary value). Optuna's own state follows:
COMPLETE with the metric's value (what the samplers learn from), PRUNED for a trial hyperband
stopped, FAIL for everything else.

- grid: every point is enqueued when the sweep is made; a trial takes one (Optuna pops a waiting
  trial atomically, in the journal and in PostgreSQL alike), so concurrent agents never repeat one.
- A point whose trial did not run to an end through no fault of its own (the agent was
  interrupted or died, the trial went over `run_cap`) is enqueued again, marked `nbt_retry_of`;
  so are failed and crashed trials on `requeue_failed()`.
- `run_cap` counts trials that ran (running, finished, failed, pruned) and were not retried.
- A trial left running by an agent that died (same host: its process is gone; another host: no
  heartbeat for `STALE_SECONDS`) is ended `crashed` by the next agent that looks, its process
  group and every process started with the trial's environment (if any is left on this host)
  ended, and its point enqueued again. So is a trial of this very process that no agent of it
  runs any more (`claim`): a notebook kernel outlives its agents.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store.lock import flocked
from .config import SweepConfig, SweepConfigError, parse_sweep

STATES = ("running", "paused", "stopped", "cancelled", "finished")
TRIAL_OUTCOMES = ("finished", "failed", "crashed", "interrupted", "pruned", "skipped")
STALE_SECONDS = float(os.environ.get("NBTRACKER_SWEEP_STALE", "600"))
BEAT_SECONDS = 30.0
UNSTAMPED_SECONDS = 60.0  # a trial asked for and never stamped by its agent
SWEEPS_DIR = "sweeps"
# distributions whose values spread evenly on a log scale (the panel draws them on log axes)
LOG_DISTRIBUTIONS = frozenset({"log_uniform", "log_uniform_values", "q_log_uniform",
                               "q_log_uniform_values", "inv_log_uniform", "inv_log_uniform_values",
                               "log_normal", "q_log_normal"})
_ID_RE = re.compile(r"^[a-z0-9]{1,32}$")


def check_sweep_id(sweep_id: Any) -> str:
    """The sweep id in `sweep_id` ("ID", "project/ID" or "entity/project/ID"); an id is the
    folder name of a local sweep, so anything but [a-z0-9] is refused."""
    if not isinstance(sweep_id, str) or not sweep_id.strip():
        raise UsageError(f"a sweep id is a string such as 'k3x9q2ab', not {sweep_id!r}")
    parts = sweep_id.strip().rstrip("/").split("/")
    sid = parts[-1]
    # "../x" is no "project/ID": what comes before the id are names, not a path
    if not _ID_RE.match(sid) or len(parts) > 3 or any(
            p.strip() in ("", ".", "..") for p in parts[:-1]):
        raise UsageError(f"{sweep_id!r} is not a sweep id (1-32 lowercase letters and digits, "
                         "or entity/project/ID)")
    return sid


def _root(root: str | os.PathLike | None) -> Path:
    if root is not None:
        return Path(root).expanduser()
    from ..sdk.settings import root_from_env

    return root_from_env()


def storage_url(url: str | None) -> str | None:
    """The SQLAlchemy URL for `url`: `postgresql://` takes the psycopg (3) driver when psycopg2
    is not installed. None (no URL, and NBTRACKER_SWEEP_STORAGE unset) means the local store."""
    url = url or os.environ.get("NBTRACKER_SWEEP_STORAGE") or None
    if url is None:
        return None
    if not re.match(r"^postgres(ql)?(\+\w+)?://", url):
        raise UsageError(f"--storage takes a PostgreSQL URL (postgresql://user@host/db), not {url!r}")
    url = re.sub(r"^postgres://", "postgresql://", url)
    if url.startswith("postgresql://"):
        import importlib.util

        if importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def _quiet_optuna() -> None:
    import optuna

    if optuna.logging.get_verbosity() <= logging.INFO:
        optuna.logging.set_verbosity(logging.WARNING)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise UsageError("sweeps run on Optuna: pip install 'nbtracker[sweeps]'") from None
    _quiet_optuna()
    return optuna


def _local_storage(folder: Path):
    optuna = _optuna()
    from optuna.storages.journal import JournalFileBackend

    path = folder / "journal.log"
    lock = _FlockLock(folder / "journal.lock")
    if lock.acquire():
        try:  # a record torn by a crash would glue onto the next one: cut it first
            _cut_torn_tail(path)
        finally:
            lock.release()
    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=lock))


def _cut_torn_tail(path: Path) -> None:
    try:
        with open(path, "rb+") as f:
            size = f.seek(0, os.SEEK_END)
            if size == 0:
                return
            f.seek(max(0, size - 1))
            if f.read(1) == b"\n":
                return
            pos = size
            while pos > 0:
                start = max(0, pos - 65536)
                f.seek(start)
                i = f.read(pos - start).rfind(b"\n")
                if i != -1:
                    f.truncate(start + i + 1)
                    return
                pos = start
            f.truncate(0)
    except FileNotFoundError:
        return


class _FlockLock:
    """The journal's lock (what Optuna's JournalFileBackend calls `acquire`/`release` on) as an
    flock on a file of its own: the kernel lets go of it when its holder dies, however it dies,
    so an agent killed while writing never leaves a lock behind for the others to wait out
    (Optuna's own file locks are files that stay, waited on for 30 s)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self._local = threading.local()

    def acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._local.fd = fd
        return True

    def release(self) -> None:
        fd = getattr(self._local, "fd", None)
        if fd is not None:
            self._local.fd = None
            os.close(fd)


_rdb_cache: dict[str, Any] = {}


PG_SCHEMA = "nbtracker_sweeps"


def _rdb_storage(url: str):
    """Optuna's RDB storage in the schema `nbtracker_sweeps` of the database: its tables
    (`studies`, `trials`, its own `alembic_version`, ...) never meet those of another application
    in the same database, such as the nbtracker server's."""
    optuna = _optuna()
    if url not in _rdb_cache:
        try:
            import sqlalchemy

            engine = sqlalchemy.create_engine(url)
            try:
                with engine.begin() as con:
                    con.execute(sqlalchemy.text(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}"))
            finally:
                engine.dispose()
            _rdb_cache[url] = optuna.storages.RDBStorage(url, engine_kwargs={
                "pool_pre_ping": True,
                "connect_args": {"options": f"-csearch_path={PG_SCHEMA}"}})
        except Exception as e:
            # the driver's own words, without SQLAlchemy's wrapping and further lines
            why = str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__]
            raise UsageError(f"cannot open the sweep storage {_safe_url(url)}: "
                             f"{_hide(why[0], url)}") from None
    return _rdb_cache[url]


_AUTH = re.compile(r"://([^/?#]*)@")  # greedy: up to the last @ of the authority
_QUERY_PW = re.compile(r"([?&](?:password|pass)=)([^&#]*)", re.I)


def _secrets(url: str) -> list[str]:
    """The password(s) a storage URL carries (in the user info, or as a query parameter)."""
    out = []
    m = _AUTH.search(url)
    if m and ":" in m.group(1):
        out.append(m.group(1).split(":", 1)[1])
    out += [q.group(2) for q in _QUERY_PW.finditer(url)]
    return [x for x in out if x]


def _safe_url(url: str) -> str:
    """`url` to show: its password (user info or `?password=`) as ***."""
    def auth(m: re.Match) -> str:
        user, colon, _ = m.group(1).partition(":")
        return f"://{user}:***@" if colon else m.group(0)

    return _QUERY_PW.sub(r"\1***", _AUTH.sub(auth, url, count=1))


def _hide(text: str, url: str) -> str:
    """`text` (a driver's message, say) with the URL's password written as ***."""
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _own() -> dict:
    import psutil

    p = psutil.Process()
    return {"host": socket.gethostname(), "pid": p.pid, "ctime": round(p.create_time(), 2)}


_claimed: set[tuple[str, int]] = set()  # (sweep id, trial number) an agent of this process runs


def claim(sweep_id: str, number: int, mine: bool = True) -> None:
    """Mark a trial as run by an agent of this process (`mine=False`: no longer). A trial
    stamped with this process's id but not claimed was let go of (an error escaped its agent):
    `recover()` ends it as it ends a dead agent's."""
    if mine:
        _claimed.add((sweep_id, number))
    else:
        _claimed.discard((sweep_id, number))


def _alive(who: Any) -> bool:
    """Whether the process `who` ({"pid", "ctime"}) on this host is still that process."""
    import psutil

    try:
        p = psutil.Process(int(who["pid"]))
        return abs(p.create_time() - float(who["ctime"])) < 1.0 and p.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


@dataclass
class TrialView:
    """One trial as the sweep's table shows it."""

    number: int
    state: str  # queued, running, or one of TRIAL_OUTCOMES
    run_id: str | None
    params: dict  # {dotted name: value}
    value: float | None
    started: float | None
    ended: float | None
    exit: str | None
    retry_of: int | None

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


class Sweep:
    """A sweep opened from its storage (`create_sweep`, `open_sweep`)."""

    def __init__(self, sweep_id: str, storage, *, root: Path, url: str | None):
        self.id = sweep_id
        self.root = root
        self.url = url
        self.folder = root / SWEEPS_DIR / sweep_id
        self._storage = storage
        optuna = _optuna()
        try:
            self.study = optuna.load_study(study_name=sweep_id, storage=storage)
        except KeyError:
            raise UsageError(f"no sweep {sweep_id!r} in {self.where}") from None
        attrs = self.study.user_attrs
        meta = attrs.get("nbt")
        if not isinstance(meta, dict) or "config" not in meta:
            raise UsageError(f"{sweep_id!r} in {self.where} is an Optuna study, not an nbtracker sweep")
        self.meta = meta
        self.raw = meta["config"]
        try:
            self.config: SweepConfig = parse_sweep(self.raw)
        except SweepConfigError as e:  # made by a release that took it, or edited since
            raise UsageError(f"sweep {sweep_id}: its config, stored in {self.where}, is not valid: "
                             + "; ".join(e.problems)) from None
        self.project: str = meta["project"]
        self.seed: int | None = meta.get("seed")
        self.created: float = meta.get("created", 0.0)
        self.name: str = self.config.name or sweep_id

    @property
    def where(self) -> str:
        return _safe_url(self.url) if self.url else f"the local store {self.root}"

    def __repr__(self) -> str:
        return f"<Sweep {self.id} {self.project} {self.config.method} {self.state}>"

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._attr("nbt_state", "running")

    def _attr(self, key: str, default: Any = None) -> Any:
        return self._storage.get_study_user_attrs(self.study._study_id).get(key, default)

    def set_state(self, state: str) -> None:
        if state not in STATES:
            raise UsageError(f"a sweep's state is one of {', '.join(STATES)}, not {state!r}")
        self.study.set_user_attr("nbt_state", state)

    # -- trials --------------------------------------------------------------------------
    def trials(self) -> list:
        """Optuna's frozen trials, in number order.

        Raises:
            UsageError: naming the sweep, when its stored trials cannot be read (a damaged row).
        """
        try:
            return self.study.get_trials(deepcopy=False)
        except _UNREADABLE as e:
            raise self._unreadable(e) from None

    def _unreadable(self, e: Exception) -> UsageError:
        where = _safe_url(self.url) if self.url else self.folder / "journal.log"
        why = _first_line(f"{type(e).__name__}: {e}")
        return UsageError(f"sweep {self.id}: its trials in {where} cannot be read "
                          f"({_hide(why, self.url) if self.url else why})")

    def views(self) -> list[TrialView]:
        """Every trial that is or was meant to run (skipped ones left out), in number order.

        Raises:
            UsageError: naming the sweep, when its stored trials cannot be read.
        """
        try:
            return self._views()
        except _UNREADABLE as e:
            raise self._unreadable(e) from None

    def _views(self) -> list[TrialView]:
        from optuna.trial import TrialState

        out = []
        for t in self.trials():
            a = t.user_attrs
            if a.get("nbt_state") == "skipped":
                continue
            if t.state == TrialState.WAITING:
                state = "queued"
            elif t.state == TrialState.RUNNING:
                state = "running"
            else:
                state = a.get("nbt_state") or {TrialState.COMPLETE: "finished",
                                                TrialState.PRUNED: "pruned"}.get(t.state, "failed")
            params = a.get("nbt_params")
            flat = params if isinstance(params, dict) else _fixed_view(t, self.config)
            value = a.get("nbt_value")
            if value is None and t.state == TrialState.COMPLETE:
                value = t.value
            out.append(TrialView(
                number=t.number, state=state, run_id=a.get("nbt_run"), params=flat,
                value=value if _finite(value) else None,
                started=a.get("nbt_started"), ended=a.get("nbt_ended"),
                exit=a.get("nbt_exit"), retry_of=a.get("nbt_retry_of")))
        return out

    def retried(self, trials: list | None = None) -> set[int]:
        """Numbers of the trials that have a retry enqueued."""
        trials = self.trials() if trials is None else trials
        return {t.user_attrs["nbt_retry_of"] for t in trials
                if isinstance(t.user_attrs.get("nbt_retry_of"), int)}

    def counted(self, trials: list | None = None, below: int | None = None) -> int:
        """Trials that count against `run_cap` (with number < `below`, if given)."""
        from optuna.trial import TrialState

        trials = self.trials() if trials is None else trials
        retried = self.retried(trials)
        n = 0
        for t in trials:
            if below is not None and t.number >= below:
                continue
            if t.state == TrialState.WAITING or t.number in retried:
                continue
            outcome = t.user_attrs.get("nbt_state")
            if t.state == TrialState.RUNNING or outcome in ("finished", "failed", "pruned"):
                n += 1
        return n

    def remaining(self) -> int | None:
        """Trials left to run: grid points not done (within `run_cap`), `run_cap` minus what
        counts against it, or None (no end) for random/bayes without `run_cap`."""
        from optuna.trial import TrialState

        trials = self.trials()
        left = None
        if self.config.run_cap is not None:
            left = max(0, self.config.run_cap - self.counted(trials))
        if self.config.method == "grid":
            waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
            left = waiting if left is None else min(left, waiting)
        return left

    def is_done(self) -> bool:
        left = self.remaining()
        return left == 0

    def best(self) -> TrialView | None:
        m = self.config.metric
        if m is None:
            return None
        done = [v for v in self.views() if v.value is not None and v.state == "finished"]
        if not done:
            return None
        sign = -1.0 if m.goal == "maximize" else 1.0
        return min(done, key=lambda v: (sign * v.value, v.number))

    def enqueue_again(self, trial, reason: str) -> bool:
        """Enqueue `trial`'s point again when it was an enqueued one (a grid point or a retry);
        a sampled trial is not repeated (the sampler proposes another). Returns whether it was."""
        if "fixed_params" not in trial.system_attrs:
            return False
        self.study.enqueue_trial(_point(trial), user_attrs={"nbt_retry_of": trial.number,
                                                                 "nbt_retry_reason": reason},
                                 skip_if_exists=False)
        return True

    def requeue_failed(self) -> list[int]:
        """Enqueue the points of failed and crashed trials again (once each); returns their
        numbers. Works for every method: the retry runs exactly the failed trial's values."""
        from optuna.trial import TrialState

        out = []
        with self.lock():
            trials = self.trials()
            retried = self.retried(trials)
            for t in trials:
                if t.number in retried or not t.state.is_finished():
                    continue
                if t.state == TrialState.FAIL and t.user_attrs.get("nbt_state") in ("failed", "crashed"):
                    self.study.enqueue_trial(_point(t), user_attrs={
                        "nbt_retry_of": t.number, "nbt_retry_reason": "requeued"},
                        skip_if_exists=False)
                    out.append(t.number)
        if out and self.state == "finished":
            self.set_state("running")
        return out

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """One process at a time in this sweep's bookkeeping on this machine (for PostgreSQL
        sweeps, PostgreSQL's row locks settle races between machines: a finished trial cannot be
        ended twice)."""
        with flocked(self.folder / "lock"):
            yield

    def recover(self, *, now: float | None = None) -> list[int]:
        """End as `crashed` the trials whose agent is gone (see the module doc); returns their
        numbers."""
        from optuna.trial import TrialState

        now = time.time() if now is None else now
        host = socket.gethostname()
        out = []
        with self.lock():
            for t in self.trials():
                if t.state != TrialState.RUNNING:
                    continue
                a = t.user_attrs
                agent = a.get("nbt_agent")
                if not isinstance(agent, dict):
                    # asked but not stamped: an agent stamps its trial at once, so one left
                    # unstamped for a minute lost its agent in between (or is another tool's)
                    started = t.datetime_start.timestamp() if t.datetime_start else now
                    if now - started < UNSTAMPED_SECONDS:
                        continue
                elif agent.get("host") == host:
                    if _alive(agent) and not (int(agent.get("pid", -1)) == os.getpid()
                                              and (self.id, t.number) not in _claimed):
                        continue  # its agent runs (a trial of this process: while claimed)
                else:
                    beat = a.get("nbt_beat") or a.get("nbt_started") or 0
                    if now - float(beat) < STALE_SECONDS:
                        continue
                if agent is not None and agent.get("host") == host:
                    _end_group(a.get("nbt_proc"), self.id, a.get("nbt_run"))
                if self.end_trial(t, "crashed", exit="the agent running it ended"):
                    self.enqueue_again(t, "crashed")
                    out.append(t.number)
        return out

    def end_trial(self, trial, outcome: str, *, value: float | None = None,
                  exit: str | None = None) -> bool:
        """Record the trial's outcome and tell Optuna. False when it was already ended
        (another agent recovered it meanwhile)."""
        from optuna.trial import TrialState

        optuna = _optuna()
        tid = trial._trial_id
        attrs = {"nbt_state": outcome, "nbt_ended": time.time()}
        if exit:
            attrs["nbt_exit"] = exit
        if _finite(value):
            attrs["nbt_value"] = value if isinstance(value, int) else float(value)  # ints exact
        try:
            for k, v in attrs.items():
                self._storage.set_trial_user_attr(tid, k, v)
            if outcome == "finished" and _finite(value) and self.config.metric is not None:
                state, values = TrialState.COMPLETE, [float(value)]
            elif outcome == "pruned":
                state, values = TrialState.PRUNED, None
            else:
                state, values = TrialState.FAIL, None
            ended = bool(self._storage.set_trial_state_values(tid, state=state, values=values))
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            return False
        if ended and state == TrialState.COMPLETE and self._reaches_target(value):
            # wandb's rule: a run that reaches metric.target finishes the sweep (running trials
            # end as they would; no new one starts)
            if self.state == "running":
                self.set_state("finished")
        return ended

    def _reaches_target(self, value: float) -> bool:
        m = self.config.metric
        if m is None or m.target is None:
            return False
        return value >= m.target if m.goal == "maximize" else value <= m.target

    def direction(self) -> str:
        m = self.config.metric
        return "maximize" if m is not None and m.goal == "maximize" else "minimize"

    # -- what the panel shows ----------------------------------------------------------------
    def importance(self) -> dict[str, float] | None:
        """Optuna's parameter importance (`optuna.importance.get_param_importances` with its
        default evaluator: PED-ANOVA in Optuna 5, fANOVA before) on the finished trials, by
        dotted parameter name; None with fewer than 2 finished trials or without a metric."""
        from optuna.trial import TrialState

        if self.config.metric is None:
            return None
        done = [t for t in self.trials() if t.state == TrialState.COMPLETE]
        if len(done) < 2:
            return None
        optuna = _optuna()
        try:
            with warnings.catch_warnings():  # Optuna's notes on degenerate data are not the user's
                warnings.simplefilter("ignore")
                raw = optuna.importance.get_param_importances(self.study)
        except Exception:
            return None
        out: dict[str, float] = {}
        for k, v in raw.items():
            name = k.rsplit("/", 1)[0] if k.endswith(("/u", "/index")) else k
            out[name] = out.get(name, 0.0) + float(v)
        return out

    def view(self, importance: bool = True) -> dict:
        """The sweep as the notebook panel shows it (JSON-able; see notebook/sweep.py).

        Besides the trials: `space`, per parameter its distribution, whether its values are
        spread on a log scale (`log`) and, for a categorical one, its values in the config's
        order (the panel's axes follow them); `now`, this machine's clock when the view was
        made (a running trial's duration grows from it)."""
        views = self.views()
        best = self.best()
        m = self.config.metric
        params = [p.name for p in self.config.parameters if p.distribution != "constant"]
        counts: dict[str, int] = {}
        for v in views:
            counts[v.state] = counts.get(v.state, 0) + 1
        return {
            "id": self.id, "name": self.name, "project": self.project,
            "method": self.config.method, "state": self.state,
            "metric": None if m is None else {"name": m.name, "goal": m.goal},
            "parameters": params, "created": self.created, "now": time.time(),
            "space": {p.name: {"distribution": p.distribution,
                               "log": p.distribution in LOG_DISTRIBUTIONS,
                               "values": None if p.values is None else list(p.values)}
                      for p in self.config.parameters if p.distribution != "constant"},
            "run_cap": self.config.run_cap,
            "grid_size": self.config.grid_size() if self.config.method == "grid" else None,
            "remaining": self.remaining(), "counts": counts,
            "best": None if best is None else best.number,
            "importance": self.importance() if importance else None,
            "trials": [{
                "number": v.number, "state": v.state, "run_id": v.run_id,
                "params": {k: v.params.get(k) for k in params if k in v.params},
                "value": v.value, "started": v.started, "ended": v.ended,
                "duration": v.duration, "exit": v.exit,
            } for v in views],
        }


def _point(trial) -> dict:
    """The Optuna parameters that run `trial`'s point again: the values it was enqueued with
    (a trial that ended before sampling has no others) and those it sampled."""
    return {**(trial.system_attrs.get("fixed_params") or {}), **trial.params}


def _end_group(proc: Any, sweep_id: str, run_id: Any) -> None:
    """End what is left on this host of a dead agent's trial: its process group (while its
    leader lives), and every process whose environment names the trial (NBTRACKER_SWEEP_ID and
    NBTRACKER_RUN_ID, which its processes inherit): those that left the group with setsid()
    or outlived its leader, which only the dead agent knew of."""
    import signal


    if isinstance(proc, dict) and _alive(proc):
        try:
            os.killpg(int(proc["pid"]), signal.SIGKILL)
        except (OSError, ValueError, KeyError):
            pass
    end_strays(sweep_id, run_id, grace=0.0)


def end_strays(sweep_id: str, run_id: Any, grace: float = 2.0) -> int:
    """End every process on this host whose environment names the trial (NBTRACKER_SWEEP_ID and
    NBTRACKER_RUN_ID, which its processes inherit): SIGTERM, up to `grace` seconds, SIGKILL.
    That reaches what left the trial's process group (setsid, a double-forked daemon) and so
    outlived it. Returns how many were found."""
    import signal

    import psutil

    if not isinstance(run_id, str) or not run_id:
        return 0
    me = os.getpid()
    found = []
    for p in psutil.process_iter():
        try:
            if p.pid == me:
                continue
            env = p.environ()
            if env.get("NBTRACKER_RUN_ID") == run_id and env.get("NBTRACKER_SWEEP_ID") == sweep_id:
                found.append(p)
        except (psutil.Error, OSError):
            pass
    for sig in ((signal.SIGTERM, signal.SIGKILL) if grace > 0 else (signal.SIGKILL,)):
        for p in found:
            try:
                p.send_signal(sig)
            except (psutil.Error, OSError):
                pass
        _, found = psutil.wait_procs(found, timeout=grace if sig == signal.SIGTERM else 5.0)
        if not found:
            break
    return len(found)


# what reading a damaged trial raises (a row that is not JSON, a value of another type, a
# point whose value overflows): each ends as one line naming the sweep
_UNREADABLE = (ValueError, LookupError, TypeError, ArithmeticError)


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else ""


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fixed_view(trial, config: SweepConfig) -> dict:
    """A waiting trial's values, from the point enqueued (grid or retry)."""
    import optuna

    from .space import _suggest

    fixed = optuna.trial.FixedTrial(dict(trial.system_attrs.get("fixed_params") or trial.params))
    out = {}
    with warnings.catch_warnings():  # Optuna's warning about a value out of range: left out
        warnings.simplefilter("ignore")
        for p in config.parameters:
            try:
                out[p.name] = _suggest(fixed, p)
            except _UNREADABLE:  # not enqueued with a value for it, or one it cannot map back
                continue
    return out


# -- making and finding sweeps ------------------------------------------------------------
def _new_id(root: Path) -> str:
    from ..util import generate_id

    while True:
        sid = generate_id(8)
        if not (root / SWEEPS_DIR / sid).exists():
            return sid


def create_sweep(config: Any, *, project: str | None = None, entity: str | None = None,
                 storage: str | None = None, seed: int | None = None,
                 root: str | os.PathLike | None = None, prior_runs: Any = None) -> Sweep:
    """Make a sweep from a config (dict, YAML text or path); validated before anything is made.

    Args:
        project: the project of its runs (else the config's `project`, else the default project).
        storage: a PostgreSQL URL agents on several machines share (else NBTRACKER_SWEEP_STORAGE,
            else the local store).
        seed: seeds the sampler (random and bayes), so a sweep run by one agent repeats exactly.
    """
    cfg = parse_sweep(config)
    optuna = _optuna()
    from ..sdk.settings import Settings
    from ..store import layout

    root_p = _root(root)
    project = project or cfg.project or Settings.resolve(root=root_p).project
    try:
        layout.check_project(project)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise UsageError(f"seed is an int, not {seed!r}")
    url = storage_url(storage)
    rdb = _rdb_storage(url) if url else None  # one that cannot be opened makes nothing
    sid = _new_id(root_p)
    folder = root_p / SWEEPS_DIR / sid
    folder.mkdir(parents=True, exist_ok=False)
    store = rdb if rdb is not None else _local_storage(folder)
    study = optuna.create_study(study_name=sid, storage=store, direction=(
        "maximize" if cfg.metric is not None and cfg.metric.goal == "maximize" else "minimize"))
    raw = json.loads(json.dumps(cfg.raw, default=str))
    study.set_user_attr("nbt", {"config": raw, "project": project, "seed": seed,
                                "created": time.time(), "entity": entity})
    study.set_user_attr("nbt_state", "running")
    if cfg.method == "grid":
        from .space import grid_trials

        for params in grid_trials(cfg):
            study.enqueue_trial(params, skip_if_exists=False)
    meta = {"id": sid, "project": project, "storage": url, "created": time.time(),
            "method": cfg.method, "name": cfg.name}
    tmp = folder / "sweep.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the URL may hold a password
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(meta))
    os.replace(tmp, folder / "sweep.json")
    return Sweep(sid, store, root=root_p, url=url)


def open_sweep(sweep_id: str, *, storage: str | None = None,
               root: str | os.PathLike | None = None) -> Sweep:
    """The sweep `sweep_id`: a local one, or one in `storage` (a PostgreSQL URL; also found
    without it when this machine made it)."""
    sid = check_sweep_id(sweep_id)
    root_p = _root(root)
    folder = root_p / SWEEPS_DIR / sid
    url = storage_url(storage)
    if url is None:
        path = folder / "sweep.json"
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(
                f"no sweep {sid!r} in the local store {root_p}; a sweep made elsewhere needs "
                "its storage: --storage postgresql://... (or NBTRACKER_SWEEP_STORAGE)") from None
        except (OSError, ValueError) as e:
            raise UsageError(f"sweep {sid}: {path} cannot be read ({e})") from None
        if not isinstance(meta, dict) or not isinstance(meta.get("storage"), (str, type(None))):
            raise UsageError(f"sweep {sid}: {path} is not a sweep's file (a JSON object with "
                             "its storage)")
        url = storage_url(meta.get("storage")) if meta.get("storage") else None
    try:
        store = _rdb_storage(url) if url else _local_storage(folder)
        return Sweep(sid, store, root=root_p, url=url)
    except UsageError:
        raise
    except (ValueError, KeyError, TypeError) as e:  # a damaged journal or study
        where = _safe_url(url) if url else folder / "journal.log"
        raise UsageError(f"sweep {sid}: its study in {where} cannot be read ({e})") from None


def list_sweeps(project: str | None = None, *, storage: str | None = None,
                root: str | os.PathLike | None = None,
                problems: list | None = None) -> list[Sweep]:
    """The sweeps of the local store (and of `storage`, when given), newest first. A sweep that
    cannot be read is left out, its id and why appended to `problems` when given."""
    root_p = _root(root)
    out: dict[str, Sweep] = {}
    base = root_p / SWEEPS_DIR
    if base.is_dir():
        for d in base.iterdir():
            if not (d / "sweep.json").exists():
                continue
            try:
                s = open_sweep(d.name, root=root_p)
            except (UsageError, ValueError) as e:
                if problems is not None:
                    problems.append((d.name, str(e)))
                continue
            out[s.id] = s
    url = storage_url(storage) if storage else None
    if url:
        store = _rdb_storage(url)
        # the studies alone: their summaries would read every trial of every study, and one
        # damaged trial would fail the whole listing
        for study in store.get_all_studies():
            if study.study_name in out or "nbt" not in study.user_attrs:
                continue
            try:
                out[study.study_name] = Sweep(study.study_name, store, root=root_p, url=url)
            except (UsageError, ValueError) as e:
                if problems is not None:
                    problems.append((study.study_name, str(e)))
                continue
    sweeps = [s for s in out.values() if project is None or s.project == project]
    sweeps.sort(key=lambda s: s.created, reverse=True)
    return sweeps
