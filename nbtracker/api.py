"""Query runs after the fact, as wandb's `Api` does, from the local store.

>>> api = nbtracker.Api()
>>> runs = api.runs("mnist", filters={"config.lr": 1e-3, "state": "finished"})
>>> runs.to_pandas()                          # one row per run: name, state, config.*, summary.*
>>> df = runs[0].history()                     # one row per step, with a _step column
>>> r = api.run("mnist/<run_id>"); r.config["note"] = "x"; r.update()
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import UsageError
from .sdk.config import clean, same_value
from .sdk.output import warn
from .sdk.run import file_url, server_url
from .sdk.settings import Settings, resolve_root
from .sdk.summary import Summary
from .store import layout
from .store.console import has_output, read_env, read_output, with_wandb_names
from .store.history import read_history, scan_history, spread
from .store.query import (  # noqa: F401
    check_filters,
    created_at_text,
    flatten,
    lookup,
    match,
    run_doc,
    sort_runs,
)
from .store.recordlog import ReadReport, make_record
from .store.store import Store, StoredRun, append_edits

ENTITY = "local"


class Api:
    """Read runs from the team server when one is configured (`nbtracker login`, or
    NBTRACKER_BASE_URL with NBTRACKER_API_KEY, and the mode is not offline), else from the local
    store (`dir=` or NBTRACKER_DIR; default `~/.nbtracker`). `dir=` always means the local store."""

    def __init__(self, overrides: dict | None = None, timeout: float | None = None,
                 api_key: str | None = None, dir: str | None = None, **kwargs: Any):
        overrides = overrides or {}
        d = dir or overrides.get("dir")
        settings = Settings.resolve()
        root = resolve_root(d) if d else settings.root
        self.default_project = overrides.get("project") or settings.project
        base_url = overrides.get("base_url") or (settings.base_url
                                                  if settings.mode == "online" else None)
        self.store: Any = Store(root)
        if base_url and not d:
            key = api_key or _api_key(settings, base_url)
            if not key:
                raise UsageError(f"no API key for {base_url}: run `nbtracker login --host "
                                 f"{base_url}` or set NBTRACKER_API_KEY")
            from .sync.remote import RemoteStore

            self.store = RemoteStore(base_url, key, root, timeout=timeout or 30.0)

    @property
    def remote(self) -> bool:
        """Whether this Api reads from a team server."""
        return not isinstance(self.store, Store)

    @property
    def root(self) -> Path:
        return self.store.root

    def _project(self, path: str | None) -> str | None:
        if not path:
            return None
        parts = [p for p in str(path).split("/") if p]
        return parts[-1] if parts else None

    def projects(self, entity: str | None = None) -> list[Project]:
        return [Project(p) for p in self.store.projects()]

    def runs(self, path: str | None = None, filters: dict | None = None,
             order: str = "-created_at", per_page: int | None = None,
             **kwargs: Any) -> Runs:
        """Runs of a project ("mnist" or "entity/mnist"; all projects when None), filtered with
        MongoDB-style `filters` ({"config.lr": 1e-3}, {"summary.acc": {"$gt": 0.9}},
        {"$or": [...]}, {"tags": {"$in": ["cnn"]}}, {"state": "finished"}) and sorted by
        `order` ("-created_at", "+summary.loss", "config.lr")."""
        if filters is not None and not isinstance(filters, dict):
            raise UsageError(f"filters must be a dict (a JSON object), not {type(filters).__name__}")
        if filters:
            check_filters(filters)
        project = self._project(path)
        if self.remote:  # the server matches and orders with the same rules, per project
            runs = [ApiRun(s, self.store) for s in self.store.runs(project, filters, order)]
            return Runs(runs if project else sort_runs(runs, order))
        runs = [ApiRun(s, self.store) for s in self.store.runs(project)]
        if filters:
            runs = [r for r in runs if match(r._doc(), filters)]
        runs = sort_runs(runs, order)
        return Runs(runs)

    def run(self, path: str) -> ApiRun:
        """One run: "project/run_id", "entity/project/run_id" or "entity/project/runs/run_id"."""
        parts = [p for p in str(path).split("/") if p]
        if len(parts) >= 2 and parts[-2] == "runs":
            parts = parts[:-2] + parts[-1:]
        if not parts:
            raise UsageError("Api.run() needs a path like 'project/run_id'")
        run_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else None
        found = self.store.find(project, run_id)
        if found is None:
            where = f"project {project!r}" if project else "any project"
            place = self.store.base_url if self.remote else self.store.root
            raise ValueError(f"no run {run_id!r} in {where} on {place}")
        return ApiRun(found, self.store)

    def find(self, ref: Any) -> ApiRun:
        """A run from a run object, "project/id", an id, or a unique run name."""
        if isinstance(ref, ApiRun):
            return ref
        if hasattr(ref, "project") and hasattr(ref, "id"):  # a Run from init()
            return self.run(f"{ref.project}/{ref.id}")
        ref = str(ref)
        if "/" in ref:
            return self.run(ref)
        try:
            layout.check_run_id(ref)
            return self.run(ref)
        except ValueError:
            pass
        named = [r for r in self.runs() if r.name == ref]
        if len(named) == 1:
            return named[0]
        if named:
            raise ValueError(f"{len(named)} runs are named {ref!r}; use project/id: "
                             + ", ".join(f"{r.project}/{r.id}" for r in named))
        raise ValueError(f"no run {ref!r} (use project/id, an id or a run name)")

    def sweep(self, path: str, storage: str | None = None) -> ApiSweep:
        """A sweep (wandb's `api.sweep`): "ID", "project/ID" or "entity/project/ID"; one made on
        another machine needs its PostgreSQL `storage` URL (or NBTRACKER_SWEEP_STORAGE)."""
        from .sweeps.engine import open_sweep

        return ApiSweep(open_sweep(path, storage=storage, root=self._sweeps_root()), self)

    def sweeps(self, path: str | None = None, storage: str | None = None) -> list[ApiSweep]:
        """The sweeps of a project (all projects when None), newest first."""
        from .sweeps.engine import list_sweeps

        return [ApiSweep(s, self) for s in list_sweeps(self._project(path), storage=storage,
                                                       root=self._sweeps_root())]

    def _sweeps_root(self) -> Path:
        """Sweeps live in the local store (a team server holds their runs, not the sweeps)."""
        return self.root if not self.remote else Settings.resolve().root

    # -- artifacts (nbtracker/artifacts) ---------------------------------------------------
    def _registry(self):
        from .artifacts import Registry

        if self.remote:  # artifacts live in the local store; the team server does not hold them
            return Registry(Settings.resolve().root)
        return Registry(self.root)

    def artifact(self, name: str, type: str | None = None):
        """An artifact version: "project/mnist:v1", "entity/project/mnist:best", or
        "mnist:latest" in the default project."""
        from .artifacts import Artifact

        r = self._registry()
        return Artifact._fetch(name, self.default_project, r.store_root, type)

    def artifact_exists(self, name: str, type: str | None = None) -> bool:
        from .artifacts import ArtifactNotFound

        try:
            self.artifact(name, type)
            return True
        except ArtifactNotFound:
            return False

    def artifacts(self, type_name: str | None = None, name: str = "", per_page: int = 50,
                  tags: Any = None) -> list:
        """The versions of one artifact ("mnist" or "project/mnist"), oldest first, of
        `type_name` when given."""
        from .artifacts import Artifact
        from .artifacts.names import parse_ref

        ref = parse_ref(name.split(":", 1)[0], self.default_project or "uncategorized")
        r = self._registry()
        out = [Artifact._from_doc(r, d) for d in r.versions(ref.project, ref.name)
               if type_name is None or d["type"] == type_name]
        if tags:
            want = {tags} if isinstance(tags, str) else set(tags)
            out = [a for a in out if want & set(a.tags)]
        return out

    artifact_versions = artifacts

    def artifact_collections(self, project_name: str | None = None,
                             type_name: str | None = None) -> list:
        """The artifacts of a project (all projects when None), as `ArtifactCollection`s
        (`name`, `type`, `aliases`, `versions()`, `delete()`), of `type_name` when given."""
        from .artifacts.collection import ArtifactCollection

        r = self._registry()
        project = self._project(project_name)
        return [ArtifactCollection(r, c) for c in r.collections(project)
                if type_name is None or c["type"] == type_name]

    def artifact_collection(self, type_name: str, name: str):
        """One artifact's versions as a whole: "project/cnn" (or "cnn" in the default
        project)."""
        from .artifacts import ArtifactNotFound
        from .artifacts.collection import ArtifactCollection
        from .artifacts.names import parse_ref

        ref = parse_ref(name.split(":", 1)[0], self.default_project or "uncategorized")
        r = self._registry()
        doc = r.collection(ref.project, ref.name)
        if doc is None or (type_name is not None and doc["type"] != type_name):
            what = f"{type_name} artifact" if type_name else "artifact"
            raise ArtifactNotFound(f"no {what} {ref.name!r} in project {ref.project!r}")
        return ArtifactCollection(r, doc)

    def artifact_collection_exists(self, name: str, type: str | None = None) -> bool:
        from .artifacts import ArtifactNotFound

        try:
            self.artifact_collection(type, name)
            return True
        except ArtifactNotFound:
            return False

    def artifact_types(self, project: str | None = None) -> list:
        """The artifact types of a project, as `ArtifactType`s (`name`, `collections()`)."""
        from .artifacts.collection import ArtifactType

        r = self._registry()
        p = self._project(project) or self.default_project or "uncategorized"
        return [ArtifactType(r, p, t) for t in sorted({c["type"] for c in r.collections(p)})]

    def artifact_type(self, type_name: str, project: str | None = None):
        from .artifacts.collection import ArtifactType

        p = self._project(project) or self.default_project or "uncategorized"
        return ArtifactType(self._registry(), p, type_name)

    def reindex(self) -> int:
        if self.remote:
            raise UsageError("reindex rebuilds the local run index; use Api(dir=...) for it")
        return len(self.store.reindex())


class ApiSweep:
    """A sweep as wandb's public API shows it: `id`, `name`, `project`, `config`, `state`,
    `runs`, `best_run()`, `expected_run_count`; plus `trials` (every trial: state, values,
    metric, run id) and `study` (the Optuna study, to analyse with Optuna's own tools)."""

    def __init__(self, sweep: Any, api: Api):
        self._sweep = sweep
        self._api = api
        self.id = sweep.id
        self.name = sweep.name
        self.project = sweep.project
        self.entity = sweep.meta.get("entity")
        self.config = copy.deepcopy(sweep.raw)
        self.url = None  # a sweep has no page of its own here

    def __repr__(self) -> str:
        return f"<Sweep {self.project}/{self.id} ({self.state})>"

    @property
    def state(self) -> str:
        """running, paused, stopped, cancelled or finished."""
        return self._sweep.state

    @property
    def study(self) -> Any:
        return self._sweep.study

    @property
    def trials(self) -> list:
        return self._sweep.views()

    @property
    def runs(self) -> Runs:
        return self._api.runs(self.project, filters={"sweep": self.id})

    @property
    def expected_run_count(self) -> int | None:
        cfg = self._sweep.config
        n = cfg.grid_size() if cfg.method == "grid" else None
        if cfg.run_cap is not None:
            n = cfg.run_cap if n is None else min(n, cfg.run_cap)
        return n

    def best_run(self, order: str | None = None) -> ApiRun | None:
        """The run with the best value of the sweep's metric (or of `order`, e.g. "-summary.acc"
        for the highest acc, "summary.loss" for the lowest), among runs that have it."""
        if order is None:  # the sweep's own best trial, as the panel and `sweep show` name it
            best = self._sweep.best()
            return None if best is None else self._api.run(f"{self.project}/{best.run_id}")
        key = order.lstrip("+-")
        runs = [r for r in self._api.runs(self.project, filters={"sweep": self.id}, order=order)
                if _finite_number(r._summary_flat().get(key.removeprefix("summary.")))]
        return runs[0] if runs else None


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _api_key(settings: Settings, base_url: str) -> str | None:
    """The key for `base_url`: the environment's, else the one `login` stored for that host."""
    from .sdk.settings import read_file
    from .sync.credentials import lookup_key

    return lookup_key(base_url, settings.root, read_file(settings.root))


class Project:
    def __init__(self, name: str):
        self.name = name
        self.entity = ENTITY

    def __repr__(self) -> str:
        return f"<Project {self.name}>"


class Runs(list):
    """A list of runs that also turns into a DataFrame; a slice (`runs[:3]`) is a Runs too."""

    def __getitem__(self, i):
        got = super().__getitem__(i)
        return Runs(got) if isinstance(i, slice) else got

    def records(self, config: bool = True, summary: bool = True) -> list[dict]:
        """One dict per run: id, name, project, state, group, job_type, tags, notes, created
        (Unix time), runtime, steps, `config.<key>` (nested keys joined with '.') and
        `summary.<key>`, values as stored."""
        rows = []
        for r in self:
            row = {"id": r.id, "name": r.name, "project": r.project, "state": r.state,
                   "group": r.group, "job_type": r.job_type, "tags": ", ".join(r.tags),
                   "notes": r.notes, "created": r.created, "runtime": r.runtime,
                   "steps": r.steps}
            if config:
                row.update({f"config.{k}": v for k, v in flatten(r.config, ".").items()})
            if summary:
                row.update({f"summary.{k}": v for k, v in r._summary_flat().items()
                            if not isinstance(v, dict) or v.get("_type") is None})
            rows.append(row)
        return rows

    def to_pandas(self, config: bool = True, summary: bool = True):
        """`records()` as a DataFrame, `created` turned into a `created_at` timestamp."""
        import pandas as pd

        rows = [{(k if k != "created" else "created_at"):
                 (v if k != "created" else pd.Timestamp(v, unit="s")) for k, v in row.items()}
                for row in self.records(config, summary)]
        return pd.DataFrame(rows)

    to_df = to_pandas

    def histories(self, samples: int | None = None, keys: Iterable[str] | None = None,
                  x_axis: str = "_step", format: str = "default", stream: str = "default"):
        """All runs' histories, as wandb's `Runs.histories`: with `format="default"` a list of
        row dicts (`history(pandas=False)`'s) each with the run's `run_id`; with
        `format="pandas"` one DataFrame with `run_id` and `name` columns first. `samples`,
        `keys`, `x_axis` and `stream` are `history()`'s, per run."""
        if format not in ("default", "pandas"):
            raise ValueError(f"histories(format={format!r}): use 'default' or 'pandas'")
        if format == "default":
            rows: list[dict] = []
            for r in self:
                for row in r.history(samples=samples, keys=keys, x_axis=x_axis, pandas=False,
                                     stream=stream):
                    row["run_id"] = r.id
                    rows.append(row)
            return rows
        import pandas as pd

        frames = []
        for r in self:
            df = r.history(samples=samples, keys=keys, x_axis=x_axis, stream=stream)
            df.insert(0, "run_id", r.id)
            df.insert(1, "name", r.name)
            frames.append(df)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class ApiFile:
    """A file kept with a run (a `file` record in its log; the copy is in the run's `files/`).

    The record log may come from elsewhere, so its `path` is not trusted: `download` refuses a
    name that is absolute or climbs out with `..`, and a stored copy that is a symlink or lies
    outside `files/`; it never writes outside `root`."""

    def __init__(self, run_dir: Path, rec: dict):
        self.name = str(rec.get("path", ""))
        self.size = rec.get("size")
        self.sha256 = rec.get("sha256")
        self._files = run_dir / layout.FILES_DIR

    @property
    def url(self) -> str | None:
        """A file URL of the stored copy (None for a name that is not a path inside the run)."""
        try:
            return file_url(self.path)
        except UsageError:
            return None

    @property
    def path(self) -> Path:
        """Where the stored copy is: inside the run's `files/` (UsageError for a name that
        would lead elsewhere)."""
        return self._files / self._relative()

    def _relative(self) -> Path:
        rel = Path(self.name)
        if not self.name or "\0" in self.name or rel.is_absolute() or ".." in rel.parts \
                or rel == Path("."):
            raise UsageError(f"file {self.name!r} of this run has a name that is not a path "
                             "inside the run; not using it")
        return rel

    def _source(self, rel: Path) -> Path:
        src = self._files / rel
        cur = self._files
        for part in rel.parts:  # no symlink anywhere between files/ and the copy
            cur = cur / part
            if cur.is_symlink():
                raise UsageError(f"file {self.name!r}: the stored copy {cur} is a symlink; "
                                 "not following it")
        if not src.is_file():
            raise FileNotFoundError(f"file {self.name!r}: no stored copy at {src}")
        return src

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False,
                 **kwargs: Any) -> Path:
        """Copy the stored file to `root/<name>`. A file already there is an error unless
        `replace` (overwrite it) or `exist_ok` (keep it and return its path), as wandb."""
        import shutil

        rel = self._relative()
        base = Path(root).resolve()
        dst = base / rel
        # a symlink already in root (root/sub -> elsewhere) must not carry the copy outside
        if not dst.parent.resolve().is_relative_to(base) or dst.is_symlink():
            raise UsageError(f"file {self.name!r}: {dst} leads outside {base}; not writing it")
        if dst.exists() and not replace:
            if exist_ok:
                return dst
            raise FileExistsError(f"{dst} exists; pass replace=True to overwrite it")
        src = self._source(rel)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not dst.parent.resolve().is_relative_to(base):
            raise UsageError(f"file {self.name!r}: {dst} leads outside {base}; not writing it")
        shutil.copyfile(src, dst)
        shutil.copystat(src, dst)
        return dst

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.size} bytes)>"


class RemoteFile(ApiFile):
    """A file of a run on a team server: fetched by its hash into the cache when first read."""

    def __init__(self, run_dir: Path, rec: dict, store: Any, stored: StoredRun):
        super().__init__(run_dir, rec)
        self._remote = (store, stored)

    def _source(self, rel: Path) -> Path:
        if not self.sha256:
            raise FileNotFoundError(f"file {self.name!r} has no content hash; cannot fetch it")
        store, stored = self._remote
        return store.blob(stored, str(self.sha256), self._files / rel)

    @property
    def url(self) -> str:
        """The server's address of the file's bytes (its HTTP API; needs the API key)."""
        store, stored = self._remote
        return (server_url(store.base_url, stored.state.project, stored.state.id)
                + "/files/" + quote(self.name, safe="/"))


class OutputLog(ApiFile):
    """The run's console output as the file wandb keeps it in, `output.log`: written out from
    the run's output records when it is downloaded."""

    NAME = "output.log"

    def __init__(self, run: ApiRun):
        super().__init__(run._stored.path, {"path": self.NAME})
        self._run = run
        self._text: str | None = None
        self._copy: Path | None = None

    def read(self) -> str:
        if self._text is None:
            self._text = self._run.output()
        return self._text

    @property
    def path(self) -> Path:
        """A copy in a temporary folder of its own (made when first asked for)."""
        if self._copy is None:
            import tempfile

            self._copy = Path(tempfile.mkdtemp(prefix="nbtracker-output-")) / self.NAME
            self._copy.write_text(self.read(), encoding="utf-8")
        return self._copy

    def _source(self, rel: Path) -> Path:
        return self.path

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False) -> Path:
        """Write the output to `root/output.log`."""
        base = Path(root).resolve()
        dst = base / self.NAME
        if dst.is_symlink():
            raise UsageError(f"{dst} is a symlink; not writing through it")
        if dst.exists() and not replace:
            if exist_ok:
                return dst
            raise FileExistsError(f"{dst} exists; pass replace=True to overwrite it")
        base.mkdir(parents=True, exist_ok=True)
        dst.write_text(self.read(), encoding="utf-8")
        return dst

    def __repr__(self) -> str:
        return f"<File {self.NAME} (console output)>"


class ApiRun:
    """A stored run. Edit `config`, `summary`, `name`, `tags`, `notes`, `group`, `job_type`,
    then `update()` to record the edits in the run's log."""

    def __init__(self, stored: StoredRun, store: Store):
        self._store = store
        self._load(stored)

    def _load(self, stored: StoredRun) -> None:
        s = stored.state
        self._stored = stored
        self.id = s.id
        self.project = s.project
        self.entity = ENTITY
        self.name = s.name
        self.group = s.group
        self.job_type = s.job_type
        self.tags = list(s.tags)
        self.notes = s.notes
        self.sweep_id = s.sweep  # the sweep the run is a trial of, or None
        self.state = stored.status
        self.config = _copy_tree(s.config)
        self._summary_edits: dict = {}
        self._summary_dels: list = []
        self._orig = {"name": s.name, "group": s.group, "job_type": s.job_type,
                      "tags": list(s.tags), "notes": s.notes, "config": _copy_tree(s.config)}
        self.summary = _RunSummary(self)

    # -- identity ----------------------------------------------------------------------
    @property
    def display_name(self) -> str:
        return self.name

    @property
    def sweep_name(self) -> str | None:
        """The id of the sweep the run is a trial of (wandb's name), as `sweep_id`."""
        return self.sweep_id

    @property
    def path(self) -> list[str]:
        return [self.entity, self.project, self.id]

    @property
    def storage_dir(self) -> str:
        return str(self._stored.path)

    @property
    def url(self) -> str:
        """Where the run is: on a team server, the server's address of the run (its HTTP API:
        the server has no web page); in the local store, a file URL of the run's folder."""
        if self._remote:
            return server_url(self._store.base_url, self.project, self.id)
        return file_url(self._stored.path)

    @property
    def created(self) -> float:
        return self._stored.state.created

    @property
    def created_at(self) -> str:
        return created_at_text(self.created)

    @property
    def updated(self) -> float:
        return self._stored.state.updated

    @property
    def runtime(self) -> float:
        return self._stored.state.runtime_at(self._stored.state.updated)

    @property
    def last_step(self) -> int:
        """The largest step that holds a history row (0 before the first row)."""
        last = self._stored.state.steps.last
        return 0 if last is None else last

    lastHistoryStep = last_step

    @property
    def steps(self) -> int:
        """How many distinct steps hold a history row (gaps in the steps are not counted)."""
        return self._stored.state.steps.count

    @property
    def metrics(self) -> list[dict]:
        return list(self._stored.state.metrics)

    @property
    def alerts(self) -> list[dict]:
        return list(self._stored.state.alerts)

    @property
    def exit_code(self) -> int | None:
        return self._stored.state.exit_code

    def _summary_set(self, values: dict) -> None:
        self._summary_edits.update(values)
        self._summary_dels[:] = [k for k in self._summary_dels if k not in values]

    def _summary_delete(self, keys: list) -> None:
        for k in keys:
            self._summary_edits.pop(k, None)
        self._summary_dels.extend(k for k in keys if k not in self._summary_dels)

    def _summary_flat(self) -> dict:
        d = self._stored.state.summary.to_dict()
        for k in self._summary_dels:
            d.pop(k, None)
        d.update(self._summary_edits)
        return d

    @property
    def last_values(self) -> dict:
        """The last logged value of every key (the summary before rules and hand-set values)."""
        return dict(self._stored.state.summary.last)

    @property
    def summary_metrics(self) -> dict:
        return self._summary_flat()

    def _doc(self) -> dict:
        return run_doc(id=self.id, name=self.name, state=self.state, group=self.group,
                       job_type=self.job_type, tags=self.tags, notes=self.notes,
                       created=self.created, project=self.project, config=self.config,
                       summary=self._summary_flat(), runtime=self.runtime,
                       sweep=self.sweep_id)

    # -- data --------------------------------------------------------------------------
    def history(self, samples: int | None = None, keys: Iterable[str] | None = None,
                x_axis: str = "_step", pandas: bool = True, stream: str = "default",
                **kwargs: Any):
        """Every logged row (all of them unless `samples` asks for fewer) as a DataFrame with
        `_step`, the metrics, `_runtime` and `_timestamp`.

        `stream="system"` gives the system metrics instead (`store.system`): one row per
        sample, `system.<key>` columns (`system.cpu`, `system.proc.memory.rssMB`, ...),
        `_runtime` and `_timestamp`."""
        if stream != "default":
            return self._system_history(stream, samples, keys, pandas)
        if not pandas:
            return self._history_rows(samples, keys, x_axis)
        report = ReadReport()
        df = read_history(self._log_dir(), self.created, keys=keys, samples=samples,
                          report=report)
        if report.corrupt or report.gaps:
            warn(f"run {self.project}/{self.id}: {report.describe()}",
                 self._stored.path / layout.DEBUG_NAME)
        if x_axis != "_step" and x_axis in df.columns:
            df = df.sort_values(x_axis, kind="stable").reset_index(drop=True)
        return df

    def _history_rows(self, samples: int | None, keys: Iterable[str] | None,
                      x_axis: str) -> list[dict]:
        """`history(pandas=False)`: the rows of `scan_history` (values as logged, a key a row
        lacks left out), sampled and ordered as the DataFrame is."""
        rows = list(self.scan_history(keys=keys))
        if samples is not None and len(rows) > samples > 0:
            rows = [rows[i] for i in spread(len(rows), samples)]
        if x_axis != "_step" and any(x_axis in r for r in rows):
            def order(r: dict) -> tuple:  # as DataFrame.sort_values: missing and NaN last
                v = r.get(x_axis)
                missing = v is None or (isinstance(v, float) and math.isnan(v))
                return (1, 0) if missing else (0, v)

            rows.sort(key=order)
        return rows

    def _system_history(self, stream: str, samples: int | None, keys: Iterable[str] | None,
                        pandas: bool):
        if stream not in ("system", "events"):  # "events": wandb's older name for it
            raise UsageError(f"history(stream={stream!r}): use 'default' or 'system'")
        from .store.system import read_system

        return read_system(self._log_dir(), self.created, keys=keys, samples=samples,
                           pandas=pandas)

    def series_summaries(self, rebuild: bool = False):
        """The run's series summaries (`store.summaries`: per key, min/max/first/last/count/sum
        of buckets of 64, 256, … points) for charts of long runs; built from the log when missing
        or stale, or when `rebuild` (a level was found damaged). None for a run on a team
        server, or when the log cannot be read."""
        if self._remote:
            return None
        from .store import summaries

        d = Path(self.storage_dir)
        return summaries.build(d) if rebuild else summaries.ensure(d)

    def series(self) -> dict:
        """{key: (steps, values)}: every numeric history key as float arrays, finite points only,
        steps ascending as logged (for charts)."""
        from .store import summaries

        return summaries.series_of(self._log_dir())

    def scan_history(self, keys: Iterable[str] | None = None, page_size: int | None = None,
                     min_step: int | None = None, max_step: int | None = None):
        """Iterate rows as dicts, step by step, reading the log as it goes."""
        created = self.created
        now = self._reloaded() or self._stored  # the log as it is now
        path = self._store.materialize(now) if self._remote else now.path
        for row in scan_history(path, keys, in_order=not now.state.late_steps):
            s = row["_step"]
            if (min_step is None or s >= min_step) and (max_step is None or s < max_step):
                row["_runtime"] = row["_timestamp"] - created
                yield row

    def files(self, names: Iterable[str] | None = None, pattern: str | None = None,
              per_page: int = 50) -> list[ApiFile]:
        """The files kept with the run (`save()`, `run.dir`, `log_code()`, code capture), each
        with `name`, `size`, `url` and `download(root, replace)`.

        Args:
            names: only these names.
            pattern: only names matching it, in SQL's LIKE syntax as wandb takes it (`%` any
                text, `_` one character): `"%.py"`.
            per_page: accepted for wandb's signature (all files come at once).
        """
        if names and pattern is not None:
            raise ValueError("files() takes names or pattern, not both")
        recs = list(self._stored.state.files.values())
        if names:
            wanted = set(names)
            recs = [r for r in recs if r.get("path") in wanted]
        elif pattern is not None:
            like = _like(pattern)
            recs = [r for r in recs if like.fullmatch(str(r.get("path", "")))]
        return [self._file(rec) for rec in recs]

    def file(self, name: str) -> ApiFile:
        """A file kept with the run, by name. "output.log" is the console output (`output()`)
        when the run has no saved file of that name."""
        rec = self._stored.state.files.get(name)
        if rec is None:
            if name == OutputLog.NAME and has_output(self._log_dir() / layout.LOG_NAME):
                return OutputLog(self)
            raise KeyError(f"run {self.id} has no file {name!r}")
        return self._file(rec)

    def output(self) -> str:
        """What the run's process printed (stdout and stderr, in the order written) while the
        run was active, as a terminal shows it: progress lines in their last state."""
        return read_output(self._log_dir() / layout.LOG_NAME)

    @property
    def metadata(self) -> dict | None:
        """Where the run ran (its env record: python, platform, host, argv, cwd, git {commit,
        branch, remote, dirty}, notebook {path}, ...), with wandb's names for the same things
        (os, args, program, startedAt, root); None when it was not recorded."""
        env = read_env(self._log_dir() / layout.LOG_NAME)
        return None if env is None else with_wandb_names(env)

    def logged_artifacts(self, per_page: int = 100) -> list:
        """The artifact versions this run logged (still stored), in the order logged."""
        return self._artifacts("out")

    def used_artifacts(self, per_page: int = 100) -> list:
        """The artifact versions this run used (still stored), in the order used."""
        return self._artifacts("in")

    def _artifacts(self, io: str) -> list:
        from .artifacts import Artifact, ArtifactNotFound, Registry

        root = self._store.root if not self._remote else Settings.resolve().root
        r = Registry(root)
        out = []
        for a in self._stored.state.artifacts:
            if a.get("io") != io:
                continue
            try:
                out.append(Artifact._from_doc(
                    r, r.resolve(a["project"], a["name"], f"v{a['version']}")))
            except ArtifactNotFound:
                continue  # deleted since
        return out

    def _file(self, rec: dict) -> ApiFile:
        if self._remote:
            return RemoteFile(self._stored.path, rec, self._store, self._stored)
        return ApiFile(self._stored.path, rec)

    def media_path(self, ref: dict) -> Path:
        """The file a media reference in the history points to (e.g. an image); for a run on a
        server, fetched into the cache first. Only a regular file inside the run's media/ or
        files/ folder is given (`store.layout.run_file`); anything else is ValueError."""
        rel = Path(str(ref["path"]))
        if rel.is_absolute() or ".." in rel.parts or "\0" in str(ref["path"]):
            raise ValueError(f"bad media path {ref['path']!r}")
        if self._remote:
            return self._store.blob(self._stored, str(ref["sha256"]), self._stored.path / rel)
        return layout.run_file(self._stored.path, str(ref["path"]), (layout.MEDIA_DIR, layout.FILES_DIR))

    def media(self, key: str) -> list:
        """The media logged under `key`, in step order, as `MediaItem`s (`.step`, `.ref`,
        `.kind`, `.path`, `.load()`; a list of media logged at one step gives one item each,
        with `.index`). See `nbtracker.store.media`.

        >>> [item.load().shape for item in api.run("mnist/abc123").media("samples")]
        """
        from .store.media import media_items

        rows = ((row["_step"], row.get(key)) for row in self.scan_history(keys=[key]))
        return media_items(rows, self.media_path)

    @staticmethod
    def chart_histories(runs: list, metrics: list[str] | None, x: str = "_step",
                        samples: int = 1000) -> list | None:
        """Histories for a chart of `runs` already downsampled by the server (min, max and last
        value per bucket, the ends kept) in one request, as one DataFrame per run; None when
        the runs are local or `x` is not the step (then each run's own history serves)."""
        if x != "_step" or not runs or not all(isinstance(r, ApiRun) and r._remote for r in runs):
            return None
        import pandas as pd

        store = runs[0]._store
        if any(r._store is not store for r in runs):
            return None
        keys = metrics if metrics is not None else sorted(
            {k for r in runs for k, v in r.last_values.items() if _is_number(v)})
        out = {(r.project, r.id): [] for r in runs}
        for ser in store.histories([r._stored for r in runs], keys, samples):
            steps = ser["step"] * 3
            vals = ser["min"] + ser["max"] + ser["value"]
            out[(ser["project"], ser["id"])].append(pd.DataFrame(
                {"_step": steps, ser["key"]: pd.to_numeric(pd.Series(vals, dtype=object))}))
        frames = []
        for r in runs:
            parts = out[(r.project, r.id)]
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["_step"])
            frames.append(df.sort_values("_step", kind="stable").reset_index(drop=True))
        return frames

    # -- where the data is -----------------------------------------------------------------
    @property
    def _remote(self) -> bool:
        return not isinstance(self._store, Store)

    def _log_dir(self) -> Path:
        """The folder whose records.jsonl holds this run's log (pulled from the server first)."""
        return self._store.materialize(self._stored) if self._remote else self._stored.path

    def _reloaded(self) -> StoredRun | None:
        return self._store.reload(self._stored if self._remote else self._stored.path)

    # -- editing -----------------------------------------------------------------------
    def update(self) -> None:
        """Record edits to config, summary, name, tags, notes, group and job_type."""
        recs = self._meta_edits() + self._summary_records()
        if recs:
            self._write_edits(recs)
            self.load()

    def _save_summary(self) -> None:
        """Record the summary's edits alone (`summary.update()`); other edits stay pending."""
        recs = self._summary_records()
        if not recs:
            return
        self._write_edits(recs)
        self._summary_edits, self._summary_dels = {}, []
        found = self._reloaded()
        if found is not None:
            self._stored = found

    def _summary_records(self) -> list[dict]:
        recs: list[dict] = []
        if self._summary_edits:
            recs.append(make_record("summary", {str(k): clean(v)
                                                for k, v in self._summary_edits.items()}))
        if self._summary_dels:
            recs.append({"t": "summary", "del": list(self._summary_dels)})
        return recs

    def _meta_edits(self) -> list[dict]:
        recs: list[dict] = []
        meta = {}
        for f in ("name", "group", "job_type", "notes"):
            if getattr(self, f) != self._orig[f]:
                meta[f] = getattr(self, f)
        if list(self.tags) != self._orig["tags"]:
            meta["tags"] = [str(t) for t in self.tags]
        if meta:
            recs.append({"t": "meta", **meta})
        if not same_value(self.config, self._orig["config"]):
            new = {str(k): clean(v) for k, v in self.config.items()}
            if set(self._orig["config"]) - set(new):
                recs.append(make_record("config", new, replace=True))
            else:
                old = self._orig["config"]
                recs.append(make_record("config", {k: v for k, v in new.items()
                                                   if k not in old or not same_value(old[k], v)}))
        return recs

    def _write_edits(self, recs: list[dict]) -> None:
        if self._remote:  # the server keeps them beside the run's log, readers overlay them
            self._store.append_edits(self._stored, recs)
            return
        # Never a second writer on the log: the edits go to edits.jsonl, and into the log now
        # only if the run is not live (else its writer folds them in when it is next opened).
        path = self._stored.path
        append_edits(path, recs, after=self._stored.base.eseq)
        self._store.fold_pending_edits(path)

    def load(self, force: bool = True) -> ApiRun:
        """Re-read the run from the store."""
        found = self._reloaded()
        if found is not None:
            self._load(found)
        return self

    def __repr__(self) -> str:
        return f"<Run {self.project}/{self.id} ({self.state})>"


class _RunSummary(Summary):
    """A stored run's summary, as wandb's: `summary["k"] = v` (and `del`) wait for
    `summary.update()` or `run.update()`; `summary.update({...})` saves at once."""

    def __init__(self, run: ApiRun):
        super().__init__(run._summary_flat, run._summary_set, run._summary_delete)
        self._run = run

    def update(self, d: dict | None = None, **kwargs: Any) -> None:
        super().update(d, **kwargs)
        self._run._save_summary()

    def __setitem__(self, key: str, value: Any) -> None:
        self._run._summary_set({key: value})


def _like(pattern: str):
    """A regex for SQL's LIKE pattern: `%` any text, `_` one character, `\\` escapes."""
    import re

    out, chars = [], iter(pattern)
    for c in chars:
        if c == "\\":
            out.append(re.escape(next(chars, "\\")))
        else:
            out.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
    return re.compile("".join(out), re.DOTALL)


_SCALARS = frozenset({type(None), str, int, float, bool})


def _copy_tree(v: Any) -> Any:
    """copy.deepcopy for the JSON trees a config holds, several times faster (listing 10,000
    runs copies every config twice)."""
    cls = v.__class__
    if cls is dict:
        out = dict(v)
        for k, x in out.items():
            if x.__class__ not in _SCALARS:
                out[k] = _copy_tree(x)
        return out
    if cls is list:
        return [x if x.__class__ in _SCALARS else _copy_tree(x) for x in v]
    return v if cls in _SCALARS else copy.deepcopy(v)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
