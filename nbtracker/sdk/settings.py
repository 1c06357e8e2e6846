"""Settings: keyword arguments > environment > settings file > defaults.

Environment variables are read as NBTRACKER_<NAME>, falling back to WANDB_<NAME> for drop-in use:

    PROJECT, MODE, BASE_URL, API_KEY, STRICT, SILENT     process-wide settings
    RUN_ID, RESUME, NAME, NOTES, TAGS, RUN_GROUP, JOB_TYPE  defaults of the same `init()` arguments
                                                        (TAGS comma-separated; RESUME one of
                                                        allow, must, never, auto, true, false)

What a run records besides what it logs (each also a key of `init(settings={...})` and of
`settings.json`; the environment wins over the file, `init(settings=...)` over both):

    SYSTEM_INTERVAL      seconds between system metrics samples (default 2; 0 or off: none)
    DISABLE_STATS        true: no system metrics (wandb's name)
    CONSOLE              auto (default) records stdout/stderr as the run's output log; off: not
    DISABLE_CODE         true: no git state, patch, notebook code or environment at init
    SAVE_CODE            false: the same (`init(save_code=False)`)
    IGNORE_GLOBS         comma-separated globs of files left out of the saved patch
    ALERT_WEBHOOKS       comma-separated URLs that get each alert as a JSON POST
    ALERT_SLACK_WEBHOOKS comma-separated Slack-compatible incoming-webhook URLs
    ALERT_ALLOW_PRIVATE  true: webhooks may reach private, loopback and link-local addresses
                         (cloud metadata addresses stay refused)
    ALERT_ON_FINISH      true: an alert when the run finishes
    ALERT_ON_FAILURE     true: an alert when the run fails or crashes

Two are not pairs, because they mean different things: NBTRACKER_DIR is the store root
(default `~/.nbtracker`), while wandb's WANDB_DIR is where a run's files go, so it is the
default of `init(dir=...)`: the run lives in `$WANDB_DIR/nbtracker/` and the store root's
`roots` file remembers it.

The settings file is `<store root>/settings.json`, written by `nbtracker offline|online` and `login`.
API keys are looked up as `sync.credentials` says (environment, then `credentials.json`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..store import layout
from ..sync.credentials import lookup_key

MODES = ("online", "offline", "disabled")
_TRUE = {"1", "true", "yes", "on", "y", "t"}


def env(name: str) -> str | None:
    v = os.environ.get("NBTRACKER_" + name)
    if v is None or v == "":
        v = os.environ.get("WANDB_" + name)
    return v if v not in (None, "") else None


def truthy(v) -> bool:
    return str(v).strip().lower() in _TRUE


def root_from_env() -> Path:
    d = os.environ.get("NBTRACKER_DIR")  # not WANDB_DIR: see the module docstring
    return Path(d).expanduser().resolve() if d else layout.default_root()


_RESUME = ("allow", "must", "never", "auto")


def resume_from_env() -> bool | str | None:
    v = env("RESUME")
    if v is None:
        return None
    low = v.strip().lower()
    if low in _RESUME:
        return low
    if low in _TRUE:
        return True
    if low in ("0", "false", "no", "off", "n", "f"):
        return None
    name = "NBTRACKER_RESUME" if os.environ.get("NBTRACKER_RESUME") else "WANDB_RESUME"
    raise UsageError(f"{name}={v!r}: use allow, must, never or auto")


def tags_from_env() -> list[str] | None:
    v = env("TAGS")
    return None if v is None else [t.strip() for t in v.split(",") if t.strip()]


def resolve_root(path: str | os.PathLike) -> Path:
    """A store root from a user-given folder: the folder itself, or its `nbtracker/` store."""
    p = Path(path).expanduser()
    inner = p / "nbtracker"
    if not (p / "runs").is_dir() and not (p / "index.sqlite").exists() and inner.is_dir():
        return inner
    return p


def read_file(root: Path) -> dict:
    try:
        with open(root / "settings.json", encoding="utf-8") as f:
            d = json.load(f)
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def write_setting(root: Path, **values) -> Path:
    """Persist settings in `<root>/settings.json` (None removes a key)."""
    root.mkdir(parents=True, exist_ok=True)
    d = read_file(root)
    for k, v in values.items():
        if v is None:
            d.pop(k, None)
        else:
            d[k] = v
    path = root / "settings.json"
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(d, f, indent=2)
    os.replace(tmp, path)
    return path


def normalise_mode(mode: str | None) -> str | None:
    if mode is None:
        return None
    m = str(mode).strip().lower()
    m = {"dryrun": "offline", "run": "online", "shared": "online"}.get(m, m)
    if m not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)} (or 'dryrun'), not {mode!r}")
    return m


@dataclass
class Settings:
    root: Path
    project: str
    mode: str
    base_url: str | None
    api_key: str | None = field(repr=False)  # never shown (see sync.credentials)
    strict: bool
    # init() arguments, each the keyword given or else its environment default
    name: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: Sequence[str] | None = None
    notes: str | None = None
    dir: str | os.PathLike | None = None
    run_id: str | None = None
    resume: bool | str | None = None
    # what a run records besides what it logs (see the module docstring)
    system_interval: float = 2.0
    console: str = "auto"
    save_code: bool = True
    ignore_globs: list[str] = field(default_factory=list)
    alert_webhooks: list[str] = field(default_factory=list)
    alert_slack_webhooks: list[str] = field(default_factory=list)
    alert_allow_private: bool = False
    alert_on_finish: bool = False
    alert_on_failure: bool = False

    @classmethod
    def resolve(cls, project: str | None = None, mode: str | None = None,
                root: str | os.PathLike | None = None, *, for_run: bool = False,
                name: str | None = None, group: str | None = None, job_type: str | None = None,
                tags: Sequence[str] | None = None, notes: str | None = None,
                dir: str | os.PathLike | None = None, id: Any = None,
                resume: bool | str | None = None) -> Settings:
        """Settings: keyword arguments, else the environment, else `settings.json`, else
        defaults. `for_run=True` (init) also fills the run's arguments from the environment;
        `Api()` and the CLI leave them, so a bad NBTRACKER_RESUME cannot stop a query."""
        root_p = Path(root).expanduser().resolve() if root is not None else root_from_env()
        f = read_file(root_p)
        base_url = env("BASE_URL") or f.get("base_url")
        base_url = str(base_url).strip().rstrip("/") or None if base_url else None
        m = normalise_mode(mode) or normalise_mode(env("MODE")) or normalise_mode(f.get("mode"))
        if m is None:
            m = "online" if base_url else "offline"
        s = cls(
            root=root_p,
            project=project or env("PROJECT") or f.get("project") or "uncategorized",
            mode=m,
            base_url=base_url,
            api_key=lookup_key(base_url, root_p, f),
            strict=truthy(env("STRICT") or f.get("strict") or ""),
            name=name, group=group, job_type=job_type, tags=tags, notes=notes, dir=dir,
            run_id=id, resume=resume,
        )
        if for_run:
            s.fill_run_from_env()
            s.apply_run_settings(f, env_first=True)
        return s

    def apply_run_settings(self, given: Any = None, env_first: bool = False) -> list[str]:
        """What a run records besides what it logs, from `given` (`init(settings=...)` or the
        settings file) and, with `env_first`, the environment over it. Returns one message per
        setting that was not understood (the others are applied)."""
        return _apply_run_settings(self, given, env_first)

    def fill_run_from_env(self) -> None:
        """Give each run argument that is None its environment default."""
        if self.name is None:
            self.name = env("NAME")
        if self.group is None:
            self.group = env("RUN_GROUP")
        if self.job_type is None:
            self.job_type = env("JOB_TYPE")
        if self.tags is None:
            self.tags = tags_from_env()
        if self.notes is None:
            self.notes = env("NOTES")
        if self.dir is None:
            self.dir = os.environ.get("WANDB_DIR") or None
        if self.run_id is None:
            self.run_id = env("RUN_ID")
        if self.resume is None:
            self.resume = resume_from_env()


_RUN_KEYS = {  # setting name -> (environment name, kind)
    "system_interval": ("SYSTEM_INTERVAL", "seconds"),
    "console": ("CONSOLE", "console"),
    "save_code": ("SAVE_CODE", "bool"),
    "ignore_globs": ("IGNORE_GLOBS", "list"),
    "alert_webhooks": ("ALERT_WEBHOOKS", "list"),
    "alert_slack_webhooks": ("ALERT_SLACK_WEBHOOKS", "list"),
    "alert_allow_private": ("ALERT_ALLOW_PRIVATE", "bool"),
    "alert_on_finish": ("ALERT_ON_FINISH", "bool"),
    "alert_on_failure": ("ALERT_ON_FAILURE", "bool"),
}
_ALIASES = {  # wandb's names for the same settings
    "x_stats_sampling_interval": "system_interval", "_stats_sample_rate_seconds": "system_interval",
    "stats_sampling_interval": "system_interval",
}
_NEGATED = {"disable_stats": "system_interval", "x_disable_stats": "system_interval",
            "_disable_stats": "system_interval", "disable_code": "save_code",
            "disable_git": None, "_disable_meta": None, "x_disable_meta": None}


def _run_value(kind: str, v: Any) -> Any:
    if kind == "bool":
        return v if isinstance(v, bool) else truthy(v)
    if kind == "list":
        if isinstance(v, str):
            return [x.strip() for x in v.split(",") if x.strip()]
        return [str(x) for x in v]
    if kind == "seconds":
        if isinstance(v, str) and v.strip().lower() in ("off", "false", "no", "none", ""):
            return 0.0
        x = float(v)
        if not x >= 0 or x == float("inf"):
            raise ValueError("must be a number of seconds, 0 or more")
        return x
    if kind == "console":
        c = str(v).strip().lower()
        c = {"wrap": "auto", "redirect": "auto", "wrap_raw": "auto", "wrap_emu": "auto",
             "true": "auto", "on": "auto", "false": "off", "none": "off"}.get(c, c)
        if c not in ("auto", "off"):
            raise ValueError("must be auto or off")
        return c
    raise AssertionError(kind)


def settings_items(given: Any) -> dict:
    """`init(settings=...)`: a dict, or an object with attributes (a `Settings`-like object)."""
    if given is None:
        return {}
    if isinstance(given, dict):
        return dict(given)
    if hasattr(given, "to_dict"):
        return dict(given.to_dict())
    if hasattr(given, "model_dump"):  # a pydantic model: wandb's own Settings, whose
        # validators set fields themselves: what differs from a fresh instance was given
        values = given.model_dump(exclude_unset=True)
        try:
            fresh = type(given)().model_dump()
        except Exception:
            return values
        return {k: v for k, v in values.items() if k not in fresh or fresh[k] != v}
    return {k: v for k, v in vars(given).items() if not k.startswith("__")}


# -- wandb.Settings ----------------------------------------------------------------------------
# wandb.Settings fields that are init() arguments here (used when init() is not given them)
INIT_FIELDS = {"mode": "mode", "project": "project", "run_name": "name", "run_id": "id",
               "run_group": "group", "run_job_type": "job_type", "run_tags": "tags",
               "run_notes": "notes", "resume": "resume", "root_dir": "dir", "reinit": "reinit",
               "allow_val_change": "allow_val_change"}
# fields that mean something besides the run settings and init() arguments
EFFECT_FIELDS = ("silent", "quiet", "code_dir")
_DEFAULTS = {"console": "auto", "silent": False, "quiet": False, "save_code": True,
             "disable_code": False, "x_disable_stats": False, "x_stats_sampling_interval": 2.0}


def meaningful(name: str) -> bool:
    """Whether `init(settings={name: ...})` changes anything here."""
    return (name in _RUN_KEYS or name in _ALIASES or _NEGATED.get(name) is not None
            or name in INIT_FIELDS or name in EFFECT_FIELDS)


class InitSettings:
    """`nbtracker.Settings(...)`, wandb's `wandb.Settings`: settings for `init(settings=...)`
    and `setup(settings=...)`, read as attributes (`s.console`) and set the same way.

    Honoured here: `mode`, `project`, `run_name`, `run_id`, `run_group`, `run_job_type`,
    `run_tags`, `run_notes`, `resume`, `root_dir` (= `init(dir=)`), `reinit`,
    `allow_val_change` (each used when init() is not given it), `silent` / `quiet` (no text),
    `console` (`off` keeps no console output), `save_code` / `disable_code`, `code_dir`
    (`run.log_code(code_dir)` at init), `x_disable_stats` / `_disable_stats`,
    `x_stats_sampling_interval` (seconds between system samples), `ignore_globs`, and
    nbtracker's own run settings (`system_interval`, `alert_webhooks`, ...). Any other name
    (`start_method`, `init_timeout`, `base_url`, ...) is accepted: init() says once per name
    that it has no effect here.

    >>> run = nbtracker.init(settings=nbtracker.Settings(console="off", x_disable_stats=True))
    """

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_given", {})
        self.update(**kwargs)

    def update(self, settings: Any = None, **kwargs: Any) -> None:
        """Set fields from another Settings (or dict) and keyword arguments."""
        self._given.update(settings_items(settings))
        self._given.update(kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        self._given[name] = value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        given = object.__getattribute__(self, "_given")
        if name in given:
            return given[name]
        if name in _DEFAULTS:
            return _DEFAULTS[name]
        if meaningful(name):
            return None
        raise AttributeError(f"Settings has no field {name!r} set")

    def to_dict(self) -> dict:
        """The fields set, as init() reads them."""
        return dict(self._given)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InitSettings) and other._given == self._given

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in self._given.items())})"


def _apply_run_settings(self: Settings, given: Any = None, env_first: bool = False) -> list[str]:
    """Set the run settings from `given` (a settings file's dict, or `init(settings=...)`), and
    with `env_first` from the environment, which then wins over `given`. Returns one message per
    setting that was not understood; the others are still applied."""
    problems: list[str] = []
    values = settings_items(given)
    for k, v in values.items():
        if v is None:
            continue
        if k in _NEGATED:
            target = _NEGATED[k]
            if target == "system_interval" and truthy(v):
                self.system_interval = 0.0
            elif target == "save_code" and truthy(v):
                self.save_code = False
            continue
        name = _ALIASES.get(k, k)
        if name not in _RUN_KEYS:
            continue  # the file and wandb's Settings hold much else; not ours to judge
        try:
            setattr(self, name, _run_value(_RUN_KEYS[name][1], v))
        except (TypeError, ValueError) as e:
            problems.append(f"setting {k}={v!r}: {e}")
    if env_first:
        for name, (var, kind) in _RUN_KEYS.items():
            v = env(var)
            if v is None:
                continue
            try:
                setattr(self, name, _run_value(kind, v))
            except (TypeError, ValueError) as e:
                problems.append(f"NBTRACKER_{var}={v!r}: {e}")
        if truthy(env("DISABLE_STATS") or ""):
            self.system_interval = 0.0
        if truthy(env("DISABLE_CODE") or ""):
            self.save_code = False
        if (env("CONSOLE") or "").strip().lower() == "off":
            self.console = "off"
    return problems

