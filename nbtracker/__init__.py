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
from .sdk.output import set_silent, termerror, termlog, termwarn
from .sdk.run import Run
from .sdk.settings import InitSettings as Settings

__all__ = [
    "init", "log", "finish", "define_metric", "alert", "AlertLevel", "save", "watch", "login",
    "Image", "Histogram", "Html", "Table", "Video", "Audio", "Object3D", "Plotly", "Classes",
    "Api", "Run", "Config", "Error", "UsageError",
    "run", "config", "summary", "set_silent", "compare", "compare_view", "runs_table", "diff",
    "load_ipython_extension", "__version__",
    "unwatch", "plot", "Settings", "setup", "teardown", "require", "termlog", "termwarn",
    "termerror", "join", "restore", "mark_preempting", "util", "errors", "plot_table",
    "sweep", "agent", "TrialPruned",
    "Artifact", "log_artifact", "use_artifact", "log_model", "use_model", "link_model",
    "visualize",
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


def log_artifact(artifact_or_path: Any, name: str | None = None, type: str | None = None,
                 aliases: list[str] | None = None, tags: list[str] | None = None):
    """Log an artifact as the current run's output. See `Run.log_artifact`."""
    return _current("log_artifact").log_artifact(artifact_or_path, name, type, aliases, tags)


def use_artifact(artifact_or_name: Any, type: str | None = None,
                 aliases: list[str] | None = None, use_as: str | None = None):
    """An artifact version as the current run's input. See `Run.use_artifact`."""
    return _current("use_artifact").use_artifact(artifact_or_name, type, aliases, use_as)


def log_model(path: Any, name: str | None = None, aliases: list[str] | None = None):
    """Log a model file or folder in the current run. See `Run.log_model`.

    >>> nbtracker.log_model("model.pt", name="mnist-cnn", aliases=[f"epoch-{epoch}"])
    """
    return _current("log_model").log_model(path, name, aliases)


def use_model(name: str) -> str:
    """Download a logged model and return its path. See `Run.use_model`."""
    return _current("use_model").use_model(name)


def link_model(path: Any, registered_model_name: str, name: str | None = None,
               aliases: list[str] | None = None):
    """Log the model in the current run (there is no model registry). See `Run.link_model`."""
    return _current("link_model").link_model(path, registered_model_name, name, aliases)


join = finish  # wandb's older name


def mark_preempting() -> None:
    """Accepted for compatibility (see `Run.mark_preempting`)."""
    run = _init.current()
    if run is not None:
        run.mark_preempting()


def setup(settings: Any = None) -> None:
    """Settings for every later `init()` in this process (`nbtracker.Settings(...)` or a dict),
    under the settings init() itself is given, as wandb's `setup`.

    >>> nbtracker.setup(nbtracker.Settings(console="off"))
    """
    _init.setup_settings = settings


def teardown(exit_code: int | None = None) -> None:
    """Finish every run still active (failed with a non-zero `exit_code`) and forget what
    `setup()` set, as wandb's `teardown`."""
    for run in reversed(_init.active_runs()):
        run.finish(exit_code=exit_code)
    _init.setup_settings = None


def require(requirement: Any = None, **kwargs: Any) -> None:
    """Accepted for compatibility: wandb's `require("core")`, `require("service")` pick parts of
    wandb; nbtracker has one of each."""


def restore(name: str, run_path: str | None = None, replace: bool = False,
            root: str | None = None):
    """A file kept with a run, downloaded and opened for reading, as wandb's `restore`.

    Args:
        name: the file's name in the run (`save("model.h5")` kept it as "model.h5").
        run_path: "project/run_id" (default: the current run).
        replace: download it even if `root/name` exists (else that file is opened).
        root: where it goes (default: the current run's `dir`, else the current directory).

    Returns the open file, or None when the run has no file of that name.

    >>> weights = nbtracker.restore("model.h5", run_path="mnist/1a2b3c4d")
    """
    import os

    run = _init.current()
    if run is not None and getattr(run, "disabled", False):
        run = None
    if run_path is None:
        if run is None:
            raise UsageError("restore() needs run_path ('project/run_id') before init()")
        run_path = run.path
    if root is None:
        root = run.dir if run is not None else os.getcwd()
    path = os.path.join(root, name)
    if os.path.exists(path) and not replace:
        return open(path)
    from .api import Api

    files = Api().run(run_path).files(names=[name])
    if not files:
        return None
    return open(files[0].download(root=root, replace=True))


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


_MEDIA = ("Image", "Histogram", "Html", "Table", "Video", "Audio", "Object3D", "Plotly",
          "Classes")

# wandb names that mean nothing here: each is accepted and says so once (a name not listed,
# a misspelt one included, stays an AttributeError)
_NO_EFFECT = {
    "pin_config_keys": "which config keys wandb's web page shows first",
    "sagemaker_auth": "it writes wandb's API key for SageMaker jobs",
    "sklearn": {f"plot_{n}": "a wandb web chart of scikit-learn results; log nbtracker.plot "
                "charts or the numbers instead" for n in (
                    "classifier", "regressor", "clusterer", "summary_metrics",
                    "learning_curve", "roc", "precision_recall", "feature_importances",
                    "elbow_curve", "silhouette", "class_proportions", "calibration_curve",
                    "outlier_candidates", "residuals", "confusion_matrix")},
    "tensorboard": {n: "TensorBoard's event files are not read into nbtracker; log the values "
                    "with nbtracker.log" for n in ("patch", "unpatch")},
}
# wandb media kinds nbtracker does not store: making one says so once, and log() leaves it out
# (its constructors, such as Molecule.from_smiles, too)
_NOT_STORED = {
    "Molecule": ("a molecule drawn by wandb's web page; keep the file with nbtracker.save()",
                 ("from_rdkit", "from_smiles")),
    "Graph": ("a model graph drawn by wandb's web page", ("from_keras",)),
}
_not_stored_types: dict[str, type] = {}
# wandb features that would change what a script does, missing here: a clear error
_MISSING = {"controller": "sweeps need no controller here: nbtracker.agent(sweep_id) takes "
                          "its trials from the sweep's Optuna study"}
_warned: set[str] = set()


def _no_effect(name: str, why: str):
    def accept(*args: Any, **kwargs: Any) -> None:
        if name not in _warned:
            _warned.add(name)
            from .sdk.output import warn

            warn(f"wandb.{name}() has no effect here ({why})")

    accept.__name__ = name.rsplit(".", 1)[-1]
    accept.__doc__ = f"Accepted for compatibility: {why}. Does nothing."
    return accept


def _not_stored(name: str) -> type:
    """A stand-in class for wandb's media kind `name`: instances warn once when made and are
    left out by log() (`_nbtracker_unstored`)."""
    if name in _not_stored_types:
        return _not_stored_types[name]
    why, constructors = _NOT_STORED[name]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _no_effect(name, f"{why}; it is not logged")()

    def make(cls, *args: Any, **kwargs: Any):
        return cls()

    ns: dict[str, Any] = {
        "__init__": __init__, "_nbtracker_unstored": True, "__module__": __name__,
        "__doc__": f"Accepted for compatibility: {why}. Not logged.",
        "__repr__": lambda self: f"<wandb.{name}: not stored by nbtracker>"}
    ns.update({c: classmethod(make) for c in constructors})
    cls = _not_stored_types[name] = type(name, (), ns)
    return cls


def _missing(name: str, why: str):
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise UsageError(f"wandb.{name}(): {why}")

    refuse.__name__ = name
    return refuse


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
    if name == "Artifact":  # wandb.Artifact
        from .artifacts import Artifact

        return Artifact
    if name in ("sweep", "agent", "TrialPruned"):  # optuna loads only when a sweep is used
        from . import sweeps

        return getattr(sweeps, name)
    if name in ("plot", "util"):  # wandb.plot.*, wandb.util (`from . import plot` would come back here)
        import importlib

        return importlib.import_module(f".{name}", __name__)
    if name in ("plot_table", "visualize"):  # wandb.plot_table, wandb.visualize: nbtracker.plot's
        import importlib

        return getattr(importlib.import_module(".plot", __name__), name)
    if name in ("compare", "compare_view", "runs_table", "diff"):
        from . import notebook

        return getattr(notebook, name)
    if name == "apis":  # wandb.apis.public.Api and friends
        from . import api
        from .artifacts import Artifact

        public = types.SimpleNamespace(Api=api.Api, Run=api.ApiRun, Runs=api.Runs,
                                       File=api.ApiFile, Project=api.Project, Artifact=Artifact)
        return types.SimpleNamespace(public=public, PublicApi=api.Api)
    if name in _NO_EFFECT:
        why = _NO_EFFECT[name]
        if isinstance(why, dict):
            return types.SimpleNamespace(**{n: _no_effect(f"{name}.{n}", w)
                                            for n, w in why.items()})
        return _no_effect(name, why)
    if name in _NOT_STORED:
        return _not_stored(name)
    if name == "data_types":  # wandb.data_types.ImageMask, BoundingBoxes2D, the media classes
        import importlib

        return importlib.import_module(".data_types", __name__)
    if name in _MISSING:
        return _missing(name, _MISSING[name])
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
