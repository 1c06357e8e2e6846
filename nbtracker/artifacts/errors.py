"""What artifacts raise: bad names and input (ArtifactError, a ValueError as in wandb), a
version that is not there (ArtifactNotFound) and stored bytes that are not what the manifest
says (ArtifactCorrupt)."""

from __future__ import annotations

from ..errors import Error


class ArtifactError(Error, ValueError):
    """An artifact was given a name, file or value it cannot take; the message says which."""


class ArtifactNotFound(ArtifactError, LookupError):
    """No artifact version by that name, version or alias."""


class ArtifactCorrupt(Error, OSError):
    """A stored or referenced file's bytes do not have the hash its manifest records."""

    def __init__(self, message: str, paths: list[str] | None = None):
        super().__init__(message)
        self.paths = list(paths or [])
