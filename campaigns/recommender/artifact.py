"""A trained model: the fitted estimator plus the item ids of its columns, checked by sha256.

The artifact is written once to the blob store every host reads (the database by default, see
`campaigns.blobstore`) and never modified; the registry keeps its sha256, and loading refuses bytes
whose digest differs, before unpickling anything. Versions trained before the store existed keep an
absolute file path, still loaded (and checked) from that file.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from campaigns import blobstore
from campaigns.blobstore import BlobError, BlobStore
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


def save(artifact: ModelArtifact, store: BlobStore, key: str) -> str:
    """Write the artifact to the shared store and return its sha256."""
    return blobstore.put_bytes(store, key, pickle.dumps(artifact, protocol=pickle.HIGHEST_PROTOCOL)).sha256


def load(store: BlobStore, key: str, sha256: str) -> ModelArtifact:
    """The artifact stored under `key` (or, for old versions, at an absolute path), digest checked."""
    if key.startswith("/"):
        path = Path(key)
        if not path.is_file():
            raise ArtifactError(f"model artifact {path} does not exist on this host")
        blob = path.read_bytes()
    else:
        try:
            blob = blobstore.read(store, key, sha256)
        except BlobError as exc:
            raise ArtifactError(f"model artifact {exc}") from exc
    actual = hashlib.sha256(blob).hexdigest()
    if actual != sha256:
        raise ArtifactError(f"model artifact {key} has sha256 {actual}, the registry expects {sha256}")
    artifact = pickle.loads(blob)  # only after the digest matched the registry's
    if not isinstance(artifact, ModelArtifact):
        raise ArtifactError(f"{key} does not hold a mailramp model artifact")
    return artifact
