"""A trained model on disk: the fitted estimator plus the item ids of its columns, checked by sha256.

The file is written once (to a temporary name, then renamed) and never modified; the registry keeps
its sha256, and loading refuses a file whose digest differs, before unpickling anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from campaigns.recommender.base import RecommenderBase


class ArtifactError(RuntimeError):
    """The artifact is missing or is not the file the registry recorded."""


@dataclass
class ModelArtifact:
    estimator: RecommenderBase
    item_ids: np.ndarray  # sorted int64 item ids, one per column
    half_life_days: float | None
    kind: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save(artifact: ModelArtifact, path: Path) -> str:
    """Write the artifact and return its sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("wb") as fh:
        pickle.dump(artifact, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return sha256_of(path)


def load(path: Path, sha256: str) -> ModelArtifact:
    if not path.is_file():
        raise ArtifactError(f"model artifact {path} does not exist")
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha256:
        raise ArtifactError(f"model artifact {path} has sha256 {actual}, the registry expects {sha256}")
    artifact = pickle.loads(blob)  # only after the digest matched the registry's
    if not isinstance(artifact, ModelArtifact):
        raise ArtifactError(f"{path} does not hold a mailramp model artifact")
    return artifact
