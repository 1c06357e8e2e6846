"""`nbtracker.init()`: start (or resume) a run, and the process-wide notion of "the current run"."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import layout
from ..store.columns import repair_blocks
from ..store.index import RunIndex
from ..store.lock import RunInUse, RunLock
from ..store.recordlog import repair_tail
from ..store.store import Store, add_root, fold_edits, replay
from . import flusher, hooks, output, parts, trial
from .config import Config, as_mapping, clean
from .disabled import DisabledRun
from .names import new_run_id, new_run_name
from .run import Run
from .settings import (
    INIT_FIELDS,
    Settings,
    meaningful,
    normalise_mode,
    settings_items,
    truthy,
    write_setting,
)

_active: list = []
pending_config = Config()
_warned_kwargs: set[str] = set()
setup_settings: Any = None  # `nbtracker.setup(settings=...)`: under every init()'s settings

# Arguments wandb.init accepts that have no meaning here: accepted, reported once.
_IGNORED = ("entity", "anonymous", "force", "sync_tensorboard", "monitor_gym",
            "magic", "fork_from", "resume_from", "tensorboard")


def current():
    return _active[-1] if _active else None


def active_runs() -> list:
    return list(_active)


def _forget(run) -> None:
    if run in _active:
        _active.remove(run)
    flusher.unwatch(run)
    global pending_config
    if not _active:
        pending_config = Config()


in_notebook = output.in_notebook


def init(project: str | None = None, name: str | None = None, group: str | None = None,
         job_type: str | None = None, config: Any = None, tags: Sequence[str] | None = None,
         notes: str | None = None, dir: str | os.PathLike | None = None, id: str | None = None,
         resume: bool | str | None = None, reinit: bool | str | None = None,
         mode: str | None = None, config_exclude_keys: Sequence[str] | None = None,
         config_include_keys: Sequence[str] | None = None, allow_val_change: bool | None = None,
         save_code: bool | None = None, settings: Any = None, **kwargs: Any):
    """Start a run and return it. Every argument is optional.

    >>> run = nbtracker.init(project="mnist", config={"lr": 1e-3}, tags=["cnn"])

    `dir` puts the run in `<dir>/nbtracker/` (the run index still finds it); `id` + `resume`
    continue an earlier run; `reinit=True` finishes the current run first; `mode` is
    "online", "offline" or "disabled". `settings` (a dict, or an object with attributes) and
    `save_code` set what the run records besides what it logs (`sdk/settings.py`).

    In a sweep's trial (NBTRACKER_SWEEP_ID set by the agent, see `sdk/trial.py`) the run takes
    the trial's id and project, records the sweep (`run.sweep_id`), and its config holds the
    trial's parameters, which win over `config` for the same keys, as under a wandb agent.
    """
    for k, v in kwargs.items():
        if k in _warned_kwargs or (k in _IGNORED and v is None):
            continue
        _warned_kwargs.add(k)
        if k in _IGNORED:
            output.warn(f"init() accepts {k!r} for compatibility; it has no effect here")
        else:
            output.warn(f"init() ignores the unknown argument {k!r}")
    given = {**settings_items(setup_settings), **settings_items(settings)}
    # settings silent=True: silence while this run is active (its finish line included), not for
    # good: a later init() without it prints again
    quiet = any(truthy(given.get(k) or "") for k in ("silent", "quiet"))
    token = _hush() if quiet else None
    before = list(_active)
    try:
        run = _start(given, config, config_include_keys, config_exclude_keys, save_code,
                     mode=mode, project=project, name=name, id=id, group=group,
                     job_type=job_type, tags=tags, notes=notes, resume=resume, dir=dir,
                     reinit=reinit, allow_val_change=allow_val_change)
    except BaseException:
        if token is not None:
            _unhush(token)
        raise
    if token is not None:
        if isinstance(run, Run) and not run._done and run not in before:
            run._after_finish_line.append(lambda: _unhush(token))
        else:  # the run already active was returned, or a disabled one: nothing to keep silent
            _unhush(token)
    return run


_hushes: list[object] = []  # one token per silent run still active
_before_hush: list[bool | None] = []  # set_silent's state when the first of them began


def _hush() -> object:
    token = object()
    if not _hushes:
        _before_hush[:] = [output._forced_silent]
    _hushes.append(token)
    output.set_silent(True)
    return token


def _unhush(token: object) -> None:
    if token not in _hushes:
        return
    _hushes.remove(token)
    if not _hushes and output._forced_silent is True:  # unless set_silent() changed it since
        output.set_silent(_before_hush[0] if _before_hush else None)


def _start(given: dict, config: Any, config_include_keys: Any,
           config_exclude_keys: Any, save_code: bool | None, **args: Any):
    """`init()` once its settings are read (`given`): the run, new, resumed or already active."""
    for k in given:
        if not meaningful(k) and f"setting:{k}" not in _warned_kwargs:
            _warned_kwargs.add(f"setting:{k}")
            output.warn(f"init(): the setting {k!r} has no effect here")
    # wandb.Settings fields that are init() arguments: the arguments given win
    for field_name, arg in INIT_FIELDS.items():
        if args[arg] is None and given.get(field_name) is not None:
            v = given[field_name]
            args[arg] = [v] if arg == "tags" and isinstance(v, str) else v
    sweep = trial.from_env(output.warn)
    if sweep is not None:  # the agent's id and project win, as wandb's agent's do
        for arg, value in (("project", sweep.project), ("id", sweep.run_id)):
            if value is None:
                continue
            if args[arg] is not None and str(args[arg]) != value:
                output.warn(f"init(): {arg}={args[arg]!r} is ignored in a sweep's trial; the "
                            f"run takes the sweep's {arg} {value!r}")
            args[arg] = value
    mode, project, name, id, group, job_type, tags, notes, resume, dir, reinit, \
        allow_val_change = (args[k] for k in ("mode", "project", "name", "id", "group",
                                              "job_type", "tags", "notes", "resume", "dir",
                                              "reinit", "allow_val_change"))
    settings = Settings.resolve(project=project, mode=normalise_mode(mode), for_run=True,
                                name=name, group=group, job_type=job_type, tags=tags,
                                notes=notes, dir=dir, id=id, resume=resume)
    for problem in settings.apply_run_settings(given):
        output.warn(f"init(): {problem}; that setting is left as it was")
    if save_code is not None:
        settings.save_code = bool(save_code)
    name, group, job_type, tags, notes = (settings.name, settings.group, settings.job_type,
                                          settings.tags, settings.notes)
    dir, id, resume = settings.dir, settings.run_id, settings.resume

    _active[:] = [r for r in _active if not getattr(r, "_forked", False)]
    prev = current()
    if prev is not None:
        if reinit is None and sweep is not None and sweep.attach is not None:
            pass  # a function-mode sweep trial gets a run of its own; the one active stays
        # in a notebook the run active is finished, unless it is a sweep trial's (one trial,
        # one run: it is returned, as in a script)
        elif reinit in (True, "finish_previous") or (
                reinit is None and in_notebook() and getattr(prev, "_sweep_link", None) is None):
            prev.finish()
        elif reinit == "create_new":
            pass
        else:
            output.warn(f"a run is already active ({prev.name}); returning it. Pass reinit=True "
                        "to finish it and start a new one.")
            return prev

    cfg = dict(pending_config.as_dict())
    cfg.update(as_mapping(config))
    if config_include_keys:
        cfg = {k: v for k, v in cfg.items() if k in set(config_include_keys)}
    if config_exclude_keys:
        cfg = {k: v for k, v in cfg.items() if k not in set(config_exclude_keys)}
    if sweep is not None:  # the trial's parameters win over the program's config, silently
        cfg.update(sweep.params)
    cfg = {str(k): clean(v) for k, v in cfg.items()}
    tags_l = [str(t) for t in tags] if tags is not None else None

    if settings.mode == "disabled":
        run = DisabledRun(project=settings.project, name=name, config=cfg)
        if sweep is not None:
            run.sweep_id = sweep.sweep_id
        _active.append(run)
        if sweep is not None and sweep.attach is not None:
            sweep.attach(run)
        return run

    project_name = layout.check_project(settings.project)
    root = settings.root
    base = Path(dir).expanduser().resolve() / "nbtracker" if dir is not None else root
    index = RunIndex(base / "index.sqlite")

    resume_mode = {True: "allow", "auto": "allow", False: None}.get(resume, resume)
    if resume_mode not in (None, "allow", "must", "never"):
        raise UsageError(f"resume must be True, False, 'allow', 'must', 'never' or 'auto', "
                         f"not {resume!r}")
    resume_key = f"{os.getcwd()}|{project_name}"
    if resume_mode and id is None and resume in (True, "auto"):
        id = _resume_file(root).get(resume_key)
    if id is not None:
        layout.check_run_id(str(id))
        id = str(id)

    # Where the run would live: an existing run wherever it is, else a new folder. Whether it
    # exists is decided only once its lock is held, so two processes starting one id at the same
    # moment cannot both create it.
    path = None
    if id is not None:
        found = Store(base).find(project_name, id)
        if found is None and base != root:
            found = Store(root).find(project_name, id)
        if found is not None:
            path = found.path
    run_id = id or new_run_id()
    if path is None:
        path = layout.run_dir(base, project_name, run_id)
    lock, state = _open_locked(path, project_name, run_id, resume_mode)
    resumed = bool(state.id)
    now = time.time()
    if resumed:
        meta = {"name": name or state.name, "group": group if group is not None else state.group,
                "job_type": job_type if job_type is not None else state.job_type,
                "tags": tags_l if tags_l is not None else state.tags,
                "notes": notes if notes is not None else state.notes}
    else:
        if not name:
            try:
                name = new_run_name(index.count(project_name) + 1)
            except Exception:
                name = new_run_name(1)
        meta = {"name": name, "group": group, "job_type": job_type, "tags": tags_l or [],
                "notes": notes}
        state.apply_run({"id": run_id, "project": project_name, "ts": now})

    if base != root:
        try:
            add_root(root, base)
        except Exception:
            pass

    run = Run(path=path, state=state, index=index, lock=lock, mode=settings.mode,
              settings=settings, resumed=resumed, on_finish=_finished)
    with run._mutex:
        rec = {"t": "run", "id": state.id, "project": project_name, **meta,
               "host": _hostname(), "pid": os.getpid(), "cwd": os.getcwd(),
               "argv": list(sys.argv), "python": _python_version()}
        if sweep is not None:
            rec["sweep"] = sweep.sweep_id
        if resumed:
            rec["resumed"] = True
        else:
            rec["ts"] = now  # the run's creation time is its first record's time, as replay says
        run._append(rec)
        state.apply_run(rec)
    if cfg:
        run.config.update(cfg, allow_val_change=bool(allow_val_change))
    if sweep is not None:
        object.__setattr__(run.config, "_locked", frozenset(sweep.params))
    if allow_val_change:
        object.__setattr__(run.config, "_allow_changes", True)
    run._snapshot()

    _active.append(run)
    flusher.watch(run)
    if settings.mode == "online" and settings.base_url:
        from .upload import attach

        attach(run, settings)
    hooks.install(active_runs)
    parts.start(run)
    if given.get("code_dir") is not None and settings.save_code:  # wandb.Settings(code_dir=)
        run.log_code(given["code_dir"])
    try:
        files = _resume_file(root)
        files[resume_key] = run.id
        write_resume_file(root, files)
    except OSError:
        pass
    if sweep is not None and sweep.attach is not None:
        sweep.attach(run)
    where = "resumed" if resumed else "started"
    run._start_line = output.say_start(f"run {run.name} ({run.id}) {where} in project "
                                       f"{project_name} [{settings.mode}] — {path}",
                                       path / layout.DEBUG_NAME)
    return run


def _hostname() -> str:
    import socket  # here, not at `import nbtracker` (import cost)

    return socket.gethostname()


def _python_version() -> str:
    v = sys.version_info
    return f"{v.major}.{v.minor}.{v.micro}"


def _open_locked(path: Path, project: str, run_id: str, resume_mode: str | None):
    """Take the run's lock, then replay what is there: (lock, state), where `state.id` is empty
    for a run that does not exist yet. Raises UsageError when `resume_mode` forbids what it
    finds, or when another process holds the run."""
    path.mkdir(parents=True, exist_ok=True)
    lock = RunLock(path)
    try:
        lock.acquire()
    except RunInUse:
        raise UsageError(f"run {project}/{run_id} is still running in another process (finish it "
                         "there first, or choose another id)") from None
    try:
        repair_tail(path / layout.LOG_NAME)
        repair_blocks(path)
        state, _, report = replay(path)
        if state.id:
            fold_edits(path, state)  # edits made while it was away: the log alone is whole again
            if not report.clean:
                output.warn(f"run {run_id}: {report.describe()}", path / layout.DEBUG_NAME)
            if resume_mode is None:
                raise UsageError(f"run {project}/{run_id} already exists; pass resume='allow' "
                                 "to continue it, or choose another id")
            if resume_mode == "never":
                raise UsageError(f"run {project}/{run_id} already exists and resume='never'")
        elif resume_mode == "must":
            raise UsageError(f"resume='must' but there is no run {project}/{run_id} to resume")
    except BaseException:
        lock.release()
        raise
    return lock, state


def _finished(run) -> None:
    _forget(run)
    if run.state == "finished":
        root = run.settings.root
        try:
            files = _resume_file(root)
            key = next((k for k, v in files.items() if v == run.id), None)
            if key is not None:
                del files[key]
                write_resume_file(root, files)
        except OSError:
            pass


def _resume_file(root: Path) -> dict:
    try:
        with open(root / "resume.json", encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def write_resume_file(root: Path, d: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"resume.json.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(d), encoding="utf-8")
    os.replace(tmp, root / "resume.json")


def set_mode(mode: str, root: Path | None = None) -> Path:
    """Persist the default mode (`nbtracker offline` / `nbtracker online`)."""
    m = normalise_mode(mode)
    return write_setting(root or Settings.resolve().root, mode=m)
