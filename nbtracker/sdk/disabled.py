"""The run `init(mode="disabled")` returns: every call is accepted and nothing is written, so
the same training code runs with tracking switched off."""

from __future__ import annotations

from typing import Any

from .config import Config
from .summary import Summary


class DisabledRun:
    disabled = True
    offline = True
    mode = "disabled"
    resumed = False
    pruned = False

    def __init__(self, project: str, name: str | None, config: dict):
        self.id = "disabled"
        self.project = project
        self.name = name or "disabled"
        self.group = self.job_type = self.notes = None
        self.tags: tuple = ()
        self.step = self.starting_step = 0
        self.steps = 0  # nothing is stored
        self.state = "running"
        self.dir = self.storage_dir = ""
        self.path = f"{project}/disabled"
        self.config = Config(config)
        self._summary: dict = {}
        self.summary = Summary(lambda: self._summary, self._summary.update,
                               lambda keys: [self._summary.pop(k, None) for k in keys])

    def log(self, data: Any = None, step: int | None = None, commit: bool | None = None,
            **kwargs: Any) -> None:
        if step is not None:
            self.step = step
        elif commit is not False:
            self.step += 1

    def define_metric(self, *args: Any, **kwargs: Any) -> None:
        return None

    # nothing is stored, so the run is nowhere: no URL (wandb's disabled run has none either)
    url = project_url = sweep_id = sweep_url = None

    def get_url(self) -> None:
        return None

    get_project_url = get_sweep_url = get_url

    def project_name(self) -> str:
        return self.project

    def log_code(self, *args: Any, **kwargs: Any) -> None:
        return None

    def mark_preempting(self) -> None:
        return None

    def display(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def alert(self, *args: Any, **kwargs: Any) -> None:
        return None

    def save(self, *args: Any, **kwargs: Any) -> list:
        return []

    def log_artifact(self, artifact_or_path: Any = None, *args: Any, **kwargs: Any) -> Any:
        return artifact_or_path  # nothing is stored

    log_model = log_artifact

    def use_artifact(self, artifact_or_name: Any, type: Any = None, *args: Any,
                     **kwargs: Any) -> Any:
        """A stored version can still be read (nothing records the use)."""
        from ..artifacts import Artifact

        if isinstance(artifact_or_name, Artifact):
            return artifact_or_name
        return Artifact._fetch(str(artifact_or_name), self.project, None, type)

    def use_model(self, name: str) -> str:
        art = self.use_artifact(name)
        root = art.download()
        return f"{root}/{next(iter(art._entries))}" if art.file_count == 1 else root

    def watch(self, *args: Any, **kwargs: Any) -> None:
        return None

    def unwatch(self, *args: Any, **kwargs: Any) -> None:
        return None

    def add_listener(self, fn: Any) -> None:
        return None

    def remove_listener(self, fn: Any) -> None:
        return None

    def finish(self, *args: Any, **kwargs: Any) -> None:
        if self.state == "running":
            self.state = "finished"
            from . import init

            init._forget(self)

    _finish = finish

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.finish()
        return False

    def __repr__(self) -> str:
        return f"<DisabledRun {self.project} name={self.name!r}>"
