"""Training a new model version from the interactions table, and the rq job that runs it.

Every run makes a new ModelVersion: status `training`, then `ready` with its artifact (sha256),
parameters, training window, row count and offline metrics, or `failed` with the error. The first
ready version becomes the champion, later ones challengers; nothing here touches a version that
exists already, so a running rollout stage keeps the model it pinned.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from campaigns import runtime
from campaigns.blobstore import BlobStore
from campaigns.errors import InputError
from campaigns.recommender import artifact, drift, feedback, history, registry
from campaigns.recommender.evaluation import holdout_metrics
from campaigns.recommender.kinds import make_estimator, takes_groups
from campaigns.recommender.matrix import DEFAULT_HALF_LIFE_DAYS, user_item_matrix
from models import ModelVersion, utcnow

log = logging.getLogger(__name__)
HOLDOUT_DAYS = 60  # offline metrics of a database-trained version: the last 60 days of its window


def train(
    session: Session,
    store: BlobStore,
    kind: str = "blend",
    params: dict[str, Any] | None = None,
    trained_by: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    name: str = "",
    evaluate: bool = True,
) -> ModelVersion:
    """Fit, evaluate, save and register one version. Commits (the row must survive a failure)."""
    params = dict(params or {})
    estimator = make_estimator(kind, params)  # raises InputError on an unknown kind or parameter
    end = end or utcnow()
    version = ModelVersion(
        name=name or f"{kind} {end:%Y-%m-%d %H:%M}",
        kind=kind,
        params=estimator.get_params(deep=False) | {"half_life_days": _half_life(params)},
        status="training",
        train_start=start,
        train_end=end,
        trained_by=trained_by,
    )
    version.params = _jsonable(version.params)
    session.add(version)
    session.commit()
    try:
        harvested = feedback.collect(session)
        started = time.perf_counter()
        interactions, country_of = history.training_log(session, start, end)
        if len(interactions) == 0:
            raise InputError("there are no interactions in the training window", where="window")
        half_life = _half_life(params)
        item_ids = np.unique(interactions.item_ids)
        matrix, users = user_item_matrix(interactions, item_ids, half_life_days=half_life)
        groups = np.array([country_of.get(int(u), "") for u in users], dtype=object)
        if takes_groups(estimator):
            estimator.fit(matrix, groups=groups)
        else:
            estimator.fit(matrix)
        fit_seconds = time.perf_counter() - started
        metrics: dict[str, Any] = {"fit_seconds": round(fit_seconds, 3), "feedback_rows_added": harvested}
        if evaluate:
            metrics.update(holdout_metrics(kind, params, interactions, country_of, HOLDOUT_DAYS))
        model = artifact.ModelArtifact(
            estimator=estimator,
            item_ids=item_ids,
            half_life_days=half_life,
            kind=kind,
            meta={"train_end": end.isoformat(), "n_users": int(matrix.shape[0])},
        )
        session.commit()  # the harvested feedback; the store writes on its own connection
        key = registry.artifact_key(version.id)
        version.sha256 = artifact.save(model, store, key)
        version.artifact_path = key
        registry.remember(version, model)
        version.n_rows = len(interactions)
        version.metrics = metrics
        version.status = "ready"
        version.drift = drift.measure(session, version, now=end)
        if registry.champion(session) is None:
            version.role = "champion"
        else:
            version.role = "challenger" if version.role == "" else version.role
            registry.promote(session, version.id, "challenger")
        session.commit()
    except Exception as exc:
        session.rollback()
        failed = session.get(ModelVersion, version.id)
        if failed is not None:
            failed.status = "failed"
            failed.error = str(exc)[:2000]
            session.commit()
        raise
    log.info("model version %s (%s) ready: %s", version.id, kind, version.metrics)
    return version


def train_job(
    kind: str = "blend",
    params: dict[str, Any] | None = None,
    trained_by: str = "scheduler",
    window_days: int | None = None,
) -> int:
    """rq job: train on the last `window_days` of interactions (all when None); returns the version id."""
    rt = runtime.current()
    end = utcnow()
    start = end - timedelta(days=window_days) if window_days else None
    with rt.session() as session:
        version = train(session, rt.blobs(), kind, params, trained_by, start, end)
        return version.id


def _half_life(params: dict[str, Any]) -> float | None:
    value = params.get("half_life_days", DEFAULT_HALF_LIFE_DAYS)
    return None if value in (None, 0) else float(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "get_params"):
        return {"estimator": type(value).__name__, **_jsonable(value.get_params(deep=False))}
    return value
