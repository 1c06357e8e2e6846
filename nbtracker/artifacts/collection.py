"""An artifact's versions as one thing (wandb's `ArtifactCollection`) and the artifacts of a
type in a project (`ArtifactType`), as the Api gives them.

>>> for v in nbtracker.Api().artifact_collection("model", "mnist/cnn").versions():
...     if "best" not in v.aliases:
...         v.delete()
"""

from __future__ import annotations

from datetime import datetime, timezone

from .registry import Registry

ENTITY = "local"


class ArtifactCollection:
    """An artifact name in a project: `name`, `type`, `project`, `aliases` (every alias, on
    whichever version), `versions()`, `delete()`."""

    def __init__(self, registry: Registry, doc: dict):
        self._registry = registry
        self._doc = doc
        self.name: str = doc["name"]
        self.type: str = doc["type"]
        self.project: str = doc["project"]
        self.entity = ENTITY
        self.description: str | None = None

    @property
    def aliases(self) -> list[str]:
        return sorted(self._doc.get("aliases", {}))

    @property
    def created_at(self) -> str:
        ts = self._doc.get("created") or 0
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")

    def versions(self, per_page: int = 50) -> list:
        """Its versions, oldest first (each an `Artifact`)."""
        from .artifact import Artifact

        return [Artifact._from_doc(self._registry, d)
                for d in self._registry.versions(self.project, self.name)]

    artifacts = versions

    def is_sequence(self) -> bool:
        return True

    def delete(self) -> None:
        """Delete every version (and its aliases), then the files no other version holds."""
        for v in self.versions():
            v.delete(delete_aliases=True)
        self._registry.delete_collection(self.project, self.name)

    def __len__(self) -> int:
        return len(self._doc.get("digests", {}))

    def __repr__(self) -> str:
        return f"<ArtifactCollection {self.project}/{self.name} ({self.type}, {len(self)} versions)>"


class ArtifactType:
    """The artifacts of one type in a project: `name`, `collections()`, `collection(name)`."""

    def __init__(self, registry: Registry, project: str, name: str):
        self._registry = registry
        self.project = project
        self.name = name
        self.type = name

    def collections(self, per_page: int = 50) -> list[ArtifactCollection]:
        return [ArtifactCollection(self._registry, c)
                for c in self._registry.collections(self.project) if c["type"] == self.name]

    def collection(self, name: str) -> ArtifactCollection:
        from .errors import ArtifactNotFound

        for c in self.collections():
            if c.name == name:
                return c
        raise ArtifactNotFound(f"no {self.name} artifact {name!r} in project {self.project!r}")

    def __repr__(self) -> str:
        return f"<ArtifactType {self.project}/{self.name}>"
