"""Artifacts: versioned datasets and models, stored once by content, with lineage.

See artifact.py (the `Artifact` users make and read), registry.py (versions and aliases on
disk), objects.py (files by SHA-256) and cache.py (referenced files fetched on download).
"""

from __future__ import annotations

from .artifact import Artifact, ArtifactManifestEntry, commit
from .errors import ArtifactCorrupt, ArtifactError, ArtifactNotFound
from .registry import Registry

__all__ = ["Artifact", "ArtifactCorrupt", "ArtifactError", "ArtifactManifestEntry",
           "ArtifactNotFound", "Registry", "commit"]
