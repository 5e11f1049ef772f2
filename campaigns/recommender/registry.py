"""The model registry: versions, their roles (champion, challenger) and their verified artifacts.

A version is immutable once `ready`: its artifact file is never rewritten and a retrain always makes
a new version, so a rollout stage that pinned a version keeps exactly that model. Only `promote`
changes which version is the champion (what `model_version_id=None` means on the send path).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns import runtime
from campaigns.blobstore import BlobStore
from campaigns.errors import InputError, NotFound, StateError
from campaigns.recommender import artifact as artifacts
from campaigns.recommender.artifact import ModelArtifact
from models import ModelVersion, Rollout

ROLES = ("champion", "challenger", "")
_CACHE_SIZE = 3
_cache: OrderedDict[tuple[int, str], ModelArtifact] = OrderedDict()
_cache_lock = threading.Lock()


def get(session: Session, version_id: int) -> ModelVersion:
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"model version {version_id} does not exist")
    return version


def champion(session: Session) -> ModelVersion | None:
    return session.scalar(
        sa.select(ModelVersion)
        .where(ModelVersion.role == "champion", ModelVersion.status == "ready")
        .order_by(ModelVersion.id.desc())
        .limit(1)
    )


def resolve(session: Session, version_id: int | None) -> ModelVersion | None:
    """The version to use: the given one (which must be ready), or the champion (None if none)."""
    if version_id is None:
        return champion(session)
    version = get(session, version_id)
    if version.status != "ready":
        raise StateError(f"model version {version_id} is {version.status}, not ready")
    return version


def versions(session: Session, limit: int = 100) -> list[ModelVersion]:
    return list(session.scalars(sa.select(ModelVersion).order_by(ModelVersion.id.desc()).limit(limit)))


def pinned_by(session: Session, version_id: int) -> list[int]:
    """Ids of the rollouts that pinned this version."""
    return list(session.scalars(sa.select(Rollout.id).where(Rollout.model_version_id == version_id)))


def promote(session: Session, version_id: int, role: str = "champion") -> ModelVersion:
    """Give a ready version a role; the version that held it before loses it. Does not commit.

    Rollouts that pinned a version keep it: this only changes what "the champion" means.
    """
    if role not in ROLES:
        raise InputError(f"role must be one of champion, challenger or empty, not {role!r}", where="role")
    version = get(session, version_id)
    if role and version.status != "ready":
        raise StateError(f"model version {version_id} is {version.status}; only a ready version gets a role")
    if role:
        session.execute(
            sa.update(ModelVersion)
            .where(ModelVersion.role == role, ModelVersion.id != version_id)
            .values(role="")
        )
    version.role = role
    session.flush()
    return version


def artifact_key(version_id: int) -> str:
    """Where a version's artifact is kept in the blob store."""
    return f"models/model-{version_id}.pkl"


def load_model(version: ModelVersion, store: BlobStore | None = None) -> ModelArtifact:
    """The version's artifact from the shared store, verified against its sha256 on every load;
    a few are kept in memory per process (keyed by version and digest)."""
    if version.status != "ready" or not version.artifact_path:
        raise StateError(f"model version {version.id} has no ready artifact")
    key = (version.id, version.sha256)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    loaded = artifacts.load(store or runtime.current().blobs(), version.artifact_path, version.sha256)
    with _cache_lock:
        _cache[key] = loaded
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return loaded


def remember(version: ModelVersion, model: ModelArtifact) -> None:
    """Keep a model this process has just trained and stored, under its version and digest."""
    with _cache_lock:
        _cache[(version.id, version.sha256)] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)


def forget_cached() -> None:
    with _cache_lock:
        _cache.clear()
