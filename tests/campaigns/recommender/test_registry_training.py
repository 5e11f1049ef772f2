"""Training, the registry (sha256, roles, pins), feedback and drift, on the real database fixture."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns import blobstore
from campaigns.blobstore import BlobStore, DatabaseBlobStore, FilesystemBlobStore
from campaigns.errors import InputError, StateError
from campaigns.recommender import drift, feedback, registry, service, training
from campaigns.recommender.artifact import ArtifactError
from models import BlobChunk, Campaign, Event, Interaction, ModelVersion, Rollout, Template
from tests.campaigns.recommender.conftest import NOW, Shop


def test_a_version_records_its_lineage(session: Session, shop: Shop, blob_store: BlobStore) -> None:
    start = NOW - timedelta(days=400)
    version = training.train(
        session,
        blob_store,
        kind="item_knn",
        params={"n_neighbors": 5},
        trained_by="ana@example.com",
        start=start,
        end=NOW,
    )
    assert version.status == "ready"
    assert version.kind == "item_knn"
    assert version.params["n_neighbors"] == 5
    assert (version.train_start, version.train_end) == (start, NOW)
    assert version.n_rows == 14
    assert version.trained_by == "ana@example.com"
    assert version.artifact_path == f"models/model-{version.id}.pkl"  # in the store every host reads
    assert version.sha256 == hashlib.sha256(blobstore.read(blob_store, version.artifact_path)).hexdigest()
    assert "fit_seconds" in version.metrics
    assert version.metrics["evaluated"] is False  # nothing on both sides of the 60-day holdout
    assert version.drift["population"]["contacts"] == 7


def test_a_tampered_artifact_is_refused(session: Session, shop: Shop, blob_store: BlobStore) -> None:
    version = training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    registry.forget_cached()
    with session.begin_nested():
        session.execute(
            sa.update(BlobChunk).where(BlobChunk.key == version.artifact_path).values(data=b"tampered")
        )
    session.commit()
    with pytest.raises(ArtifactError, match="sha256"):
        registry.load_model(version)


def test_a_model_trained_on_one_host_loads_on_another(
    session: Session, shop: Shop, blob_store: BlobStore, tmp_path: Path
) -> None:
    """Another host has its own instance folder and process cache: it reads the shared store."""
    version = training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    registry.forget_cached()
    other_host = DatabaseBlobStore(blob_store.session_factory)  # type: ignore[attr-defined]
    assert registry.load_model(version, other_host).kind == "popularity"
    folder = FilesystemBlobStore(tmp_path / "shared")
    version2 = training.train(session, folder, kind="popularity", end=NOW, evaluate=False)
    registry.forget_cached()
    assert registry.load_model(version2, FilesystemBlobStore(tmp_path / "shared")).kind == "popularity"
    (tmp_path / "shared" / version2.artifact_path).write_bytes(b"not the model")
    registry.forget_cached()
    with pytest.raises(ArtifactError, match="sha256"):
        registry.load_model(version2, FilesystemBlobStore(tmp_path / "shared"))


def test_retraining_adds_a_challenger_and_never_moves_a_pinned_rollout(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    first = training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    rollout = Rollout(name="r", salt="s", model_version_id=first.id)
    session.add(rollout)
    session.commit()

    second = training.train(session, blob_store, kind="blend", end=NOW, evaluate=False)
    assert (first.role, second.role) == ("champion", "challenger")
    assert first.artifact_path != second.artifact_path

    registry.promote(session, second.id, "champion")
    session.commit()
    session.refresh(first)
    assert (first.role, second.role) == ("", "champion")
    assert registry.champion(session).id == second.id  # type: ignore[union-attr]
    assert session.get(Rollout, rollout.id).model_version_id == first.id  # type: ignore[union-attr]
    assert registry.pinned_by(session, first.id) == [rollout.id]
    assert registry.load_model(first).kind == "popularity"


def test_promotion_needs_a_ready_version_and_a_known_role(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    version = training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    with pytest.raises(InputError):
        registry.promote(session, version.id, "king")
    broken = ModelVersion(name="x", kind="blend", status="failed")
    session.add(broken)
    session.flush()
    with pytest.raises(StateError):
        registry.promote(session, broken.id, "champion")
    with pytest.raises(StateError):
        service.lookup(session, broken.id, [shop.contacts["uk1"].id])


def test_a_failed_training_is_recorded(session: Session, blob_store: BlobStore) -> None:
    with pytest.raises(InputError, match="no interactions"):
        training.train(session, blob_store, kind="blend", end=NOW)
    failed = session.scalar(sa.select(ModelVersion))
    assert failed is not None and failed.status == "failed" and "no interactions" in failed.error


def test_holdout_metrics_come_from_the_last_sixty_days(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    # uk1 buys C again and fr1 buys E again, inside the last 60 days before NOW
    for name, item in (("uk1", "C"), ("fr1", "E")):
        session.add(
            Interaction(
                contact_id=shop.contacts[name].id,
                item_id=shop.items[item].id,
                occurred_at=NOW - timedelta(days=70) + timedelta(days=30),
            )
        )
    # and older history for the split's training side
    for contact in shop.contacts.values():
        session.execute(
            sa.update(Interaction)
            .where(Interaction.contact_id == contact.id, Interaction.occurred_at == NOW - timedelta(days=10))
            .values(occurred_at=NOW - timedelta(days=100))
        )
    session.commit()
    version = training.train(session, blob_store, kind="repeat", end=NOW)
    metrics = version.metrics
    assert metrics["evaluated"] is True
    assert metrics["users"] == 2
    # both re-bought items are their owners' own past items: both hit in the top 10
    assert metrics["hit_rate_at_10"] == 1.0
    assert metrics["recall_at_10"] == 1.0


def test_campaign_clicks_and_conversions_become_interactions_once(session: Session, shop: Shop) -> None:
    template = Template(name="t")
    session.add(template)
    session.flush()
    campaign = Campaign(name="c", template_id=template.id, from_email="a@example.com")
    session.add(campaign)
    session.flush()
    uk1, item_e = shop.contacts["uk1"], shop.items["E"]
    common = {"campaign_id": campaign.id, "contact_id": uk1.id, "item_id": item_e.id, "send_id": None}
    session.add_all(
        [
            Event(dedupe_key="k1", kind="click", **common),
            Event(dedupe_key="k2", kind="conversion", value=12.5, **common),
            Event(dedupe_key="k3", kind="click", machine=True, **common),  # a bot: ignored
            Event(dedupe_key="k4", kind="open", **common),  # not feedback
        ]
    )
    session.commit()

    assert feedback.collect(session) == 2
    assert feedback.collect(session) == 0
    rows = session.execute(
        sa.select(Interaction.kind, Interaction.value, Interaction.source).where(
            Interaction.source.like("campaign:%")
        )
    ).all()
    assert sorted(rows) == [
        ("click", 0.0, f"campaign:{campaign.id}"),
        ("purchase", 12.5, f"campaign:{campaign.id}"),
    ]


def test_drift_compares_the_population_and_catalog_with_the_training_window(
    session: Session, shop: Shop, blob_store: BlobStore
) -> None:
    version = training.train(session, blob_store, kind="popularity", end=NOW, evaluate=False)
    # training window: 3 UK and 2 French buyers. Score only the French contacts, and add 4 new items.
    french = [shop.contacts[n].id for n in ("fr1", "fr2", "cold_fr")]
    from tests.campaigns.recommender.conftest import add_items

    add_items(session, ["N1", "N2", "N3", "N4"])
    report = drift.record(session, version, french, now=NOW)
    expected = drift.psi({"United Kingdom": 3, "France": 2}, {"France": 3})
    assert report["population"]["country_psi"] == pytest.approx(expected, abs=1e-4)
    assert report["population"]["unknown_contacts_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["catalog"]["unknown_items_share"] == pytest.approx(4 / 10)
    assert report["level"] == "drifted"
    assert version.drift == report


def test_psi_on_a_worked_example() -> None:
    # shares 0.5/0.5 -> 0.25/0.75: (0.25-0.5) ln(0.5) + (0.75-0.5) ln(1.5)
    expected = -0.25 * -0.6931471805599453 + 0.25 * 0.4054651081081644
    assert drift.psi({"a": 1, "b": 1}, {"a": 1, "b": 3}) == pytest.approx(expected)
    assert drift.psi({"a": 5}, {"a": 50}) == 0.0
    assert drift.level(0.05) == "stable" and drift.level(0.2) == "watch" and drift.level(0.3) == "drifted"
    assert drift.binned_psi([1, 2, 3, 4] * 10, [1, 2, 3, 4] * 3) == pytest.approx(0.0)
