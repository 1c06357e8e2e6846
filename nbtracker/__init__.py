"""nbtracker: a notebook-native experiment tracker with a wandb-compatible API.

>>> import nbtracker as wandb
>>> run = wandb.init(project="mnist", config={"lr": 1e-3})
>>> for step in range(100):
...     wandb.log({"loss": 1 / (step + 1)})
>>> wandb.finish()
>>> nbtracker.Api().runs("mnist").to_pandas()

Everything is stored locally first (see `nbtracker.store.layout`); nothing needs a server.
"""

from __future__ import annotations

import enum
import sys
import types
from typing import Any

from ._version import __version__
from .errors import Error, UsageError
from .sdk import init as _init
from .sdk.config import Config
from .sdk.init import init
from .sdk.output import set_silent
from .sdk.run import Run

__all__ = [
    "init", "log", "finish", "define_metric", "alert", "AlertLevel", "save", "watch", "login",
    "Image", "Histogram", "Html", "Table", "Video", "Audio", "Object3D", "Plotly",
    "Api", "Run", "Config", "Error", "UsageError",
    "run", "config", "summary", "set_silent", "compare", "compare_view", "runs_table", "diff",
    "load_ipython_extension", "__version__",
    "unwatch",
]


def _current(fn: str):
    run = _init.current()
    if run is None:
        raise UsageError(f"You must call nbtracker.init() before nbtracker.{fn}()")
    return run


def log(data: dict | None = None, step: int | None = None, commit: bool | None = None,
        sync: bool | None = None, **kwargs: Any) -> None:
    """Log a row of values to the current run. See `Run.log`."""
    run = _init._active[-1] if _init._active else _current("log")
    if kwargs:
        run.log(data, step, commit, sync, **kwargs)
    else:
        run.log(data, step, commit)


def finish(exit_code: int | None = None, quiet: bool | None = None,
           timeout: float | None = None, **kwargs: Any) -> None:
    """Finish the current run (no-op when there is none)."""
    run = _init.current()
    if run is not None:
        run.finish(exit_code=exit_code, quiet=quiet, timeout=timeout, **kwargs)


def define_metric(name: str, step_metric: str | None = None, step_sync: bool | None = None,
                  hidden: bool | None = None, summary: str | None = None,
                  goal: str | None = None, overwrite: bool | None = None, **kwargs: Any):
    """Define how a metric is summarised and plotted. See `Run.define_metric`."""
    return _current("define_metric").define_metric(
        name, step_metric=step_metric, step_sync=step_sync, hidden=hidden, summary=summary,
        goal=goal, overwrite=overwrite, **kwargs)


class AlertLevel(enum.Enum):
    """Alert levels, as wandb's: `nbtracker.alert(title, text, level=AlertLevel.WARN)`."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def alert(title: str, text: str = "", level: Any = None, wait_duration: Any = None,
          **kwargs: Any) -> None:
    """Record an alert in the current run. See `Run.alert`."""
    _current("alert").alert(title, text, level=level, wait_duration=wait_duration, **kwargs)


def save(glob_str: Any = None, base_path: str | None = None, policy: str = "live"):
    """Keep files with the current run. See `Run.save`."""
    return _current("save").save(glob_str, base_path=base_path, policy=policy)


def watch(models: Any = None, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
    """Log histograms of a PyTorch model's gradients and/or parameters in the current run. See
    `Run.watch`.

    >>> nbtracker.watch(model, log="all", log_freq=100)
    """
    _current("watch").watch(models, criterion, log=log, log_freq=log_freq, idx=idx,
                            log_graph=log_graph)


def unwatch(models: Any = None) -> None:
    """Remove the hooks `watch` put on `models` (on every model when None)."""
    run = _init.current()
    if run is not None:
        run.unwatch(models)


def login(key: str | None = None, host: str | None = None, relogin: bool | None = None,
          anonymous: str | None = None, **kwargs: Any) -> bool:
    """Check an API key against a team server (`nbtracker server`) and store it, so runs upload
    while they log. Returns True.

    Args:
        key: the API key (`nbtracker user create` prints it). Without it, a key already known
            for the server (NBTRACKER_API_KEY, or stored by an earlier login) is checked, and
            else it is asked for without echo.
        host: the server, e.g. "http://127.0.0.1:8080" (default: the configured server). With
            no server at all, nbtracker works offline and login() has nothing to do.

    Raises UsageError (one line, the key never in it) when the server refuses the key or cannot
    be reached; nothing is stored then.

    >>> nbtracker.login(host="http://127.0.0.1:8080", key=key)
    """
    from .sdk.settings import Settings

    settings = Settings.resolve()
    url = host or settings.base_url
    if url is None:
        return True
    if key is None:
        from .sdk.settings import read_file
        from .sync.credentials import lookup_key

        key = None if relogin else lookup_key(url, settings.root, read_file(settings.root))
        if key is None:
            import getpass

            key = getpass.getpass(f"API key for {url}: ")
    from .sync.client import UploadError
    from .sync.credentials import login as _login

    try:
        _login(url, key, settings.root)
    except (ValueError, UploadError) as e:
        raise UsageError(f"login to {url} failed: {e}; nothing was stored") from None
    return True


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext nbtracker`: the %tracker magics and offline charts."""
    from .notebook import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    from .notebook import unload_ipython_extension as unload

    unload(ip)


class _PreInit:
    """Stands in for `nbtracker.summary` before `init()`."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        raise UsageError(f"You must call nbtracker.init() before using nbtracker.{self._name}")

    def __getitem__(self, key: Any) -> Any:
        self.__getattr__("__getitem__")

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__getattr__("__setitem__")

    def __repr__(self) -> str:
        return f"<nbtracker.{self._name} before init()>"


_MEDIA = ("Image", "Histogram", "Html", "Table", "Video", "Audio", "Object3D", "Plotly")


def __getattr__(name: str) -> Any:
    if name == "run":
        return _init.current()
    if name == "config":
        run = _init.current()
        return run.config if run is not None else _init.pending_config
    if name == "summary":
        run = _init.current()
        return run.summary if run is not None else _PreInit("summary")
    if name == "Api":
        from .api import Api

        return Api
    if name in _MEDIA:  # the media classes load on first use (import cost)
        from .sdk import media

        return getattr(media, name)
    if name in ("compare", "compare_view", "runs_table", "diff"):
        from . import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'nbtracker' has no attribute {name!r}")


class _Module(types.ModuleType):
    # `nbtracker.config = {...}` (common in wandb code) updates the config instead of
    # replacing the object, before or after init().
    def __setattr__(self, name: str, value: Any) -> None:
        if name == "config":
            target = _init.current()
            cfg = target.config if target is not None else _init.pending_config
            if value is not cfg:
                cfg.update(value)
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Module
