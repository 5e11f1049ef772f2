"""Drift: how far the contacts being scored and the catalog have moved from a version's training window.

Three comparisons, each a number a marketer can read on the model's page:
- population: the country mix of the scoring population against that of the training window's
  contacts (population stability index, PSI), and the share of contacts the model has no history for;
- catalog: the share of enabled items the model cannot rank (new since training), and the PSI of
  the price distribution of enabled items against that of the items bought in the training window;
- behaviour: the share of interactions since training that are on items unknown to the model.

PSI below 0.1 reads as stable, 0.1 to 0.25 as worth watching, above 0.25 as drifted (the usual
credit-scoring thresholds). The pure functions are at the top; `measure` reads the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.recommender import history, registry
from models import Contact, Interaction, Item, ModelVersion, utcnow

WATCH, DRIFTED = 0.1, 0.25
PRICE_BINS = 10


def psi(expected: Mapping[str, float], actual: Mapping[str, float], floor: float = 1e-4) -> float:
    """Population stability index of two categorical distributions (counts or shares)."""
    keys = sorted(set(expected) | set(actual))
    e = np.array([max(float(expected.get(k, 0.0)), 0.0) for k in keys])
    a = np.array([max(float(actual.get(k, 0.0)), 0.0) for k in keys])
    if e.sum() <= 0 or a.sum() <= 0:
        return 0.0
    e = np.maximum(e / e.sum(), floor)
    a = np.maximum(a / a.sum(), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def binned_psi(expected: Sequence[float], actual: Sequence[float], bins: int = PRICE_BINS) -> float:
    """PSI of a numeric distribution, on quantile bins of the expected values."""
    exp = np.asarray(expected, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if len(exp) == 0 or len(act) == 0:
        return 0.0
    edges = np.unique(np.quantile(exp, np.linspace(0, 1, bins + 1))[1:-1])
    e = np.bincount(np.searchsorted(edges, exp, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, act, side="right"), minlength=len(edges) + 1)
    return psi({str(i): v for i, v in enumerate(e)}, {str(i): v for i, v in enumerate(a)})


def level(value: float) -> str:
    return "drifted" if value > DRIFTED else "watch" if value > WATCH else "stable"


def top_shifts(
    expected: Mapping[str, float], actual: Mapping[str, float], n: int = 5
) -> list[dict[str, Any]]:
    """The categories whose share moved most, in percentage points."""
    e_total = sum(expected.values()) or 1.0
    a_total = sum(actual.values()) or 1.0
    moves: list[dict[str, Any]] = [
        {
            "name": key or "(unknown)",
            "training_share": round(expected.get(key, 0.0) / e_total, 4),
            "current_share": round(actual.get(key, 0.0) / a_total, 4),
        }
        for key in set(expected) | set(actual)
    ]
    moves.sort(key=lambda m: -abs(float(m["current_share"]) - float(m["training_share"])))
    return moves[:n]


def measure(
    session: Session,
    version: ModelVersion,
    contact_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Drift of the version against its training window. The scoring population is `contact_ids`
    (e.g. a wave's audience) or, by default, every active contact."""
    now = now or utcnow()
    model = registry.load_model(version)
    known_items = {int(i) for i in model.item_ids}
    window = _window(version)

    trained_countries: dict[str, float] = {
        country: float(count)
        for country, count in session.execute(
            sa.select(Contact.country, sa.func.count(sa.distinct(Interaction.contact_id)))
            .join(Contact, Contact.id == Interaction.contact_id)
            .where(*window)
            .group_by(Contact.country)
        )
    }
    if contact_ids is None:
        current_countries: dict[str, float] = {
            country: float(count)
            for country, count in session.execute(
                sa.select(Contact.country, sa.func.count(Contact.id))
                .where(Contact.status == "active")
                .group_by(Contact.country)
            )
        }
        population = sum(current_countries.values())
        with_history = session.scalar(
            sa.select(sa.func.count(sa.distinct(Interaction.contact_id)))
            .join(Contact, Contact.id == Interaction.contact_id)
            .where(Contact.status == "active", *window)
        )
    else:
        ids = list(dict.fromkeys(int(c) for c in contact_ids))
        country_of = history.countries(session, ids)
        current_countries = {}
        for country in country_of.values():
            current_countries[country] = current_countries.get(country, 0) + 1
        population = len(ids)
        with_history = 0
        for chunk in history.chunks(ids):
            with_history += (
                session.scalar(
                    sa.select(sa.func.count(sa.distinct(Interaction.contact_id))).where(
                        Interaction.contact_id.in_(chunk), *window
                    )
                )
                or 0
            )

    trained_prices = [
        float(p)
        for p in session.scalars(
            sa.select(Item.price).join(Interaction, Interaction.item_id == Item.id).where(*window)
        )
    ]
    catalog = session.execute(sa.select(Item.id, Item.price).where(Item.enabled.is_(True))).all()
    catalog_prices = [float(p) for _, p in catalog]
    unknown_catalog = sum(1 for item_id, _ in catalog if int(item_id) not in known_items)

    since = version.train_end or version.created_at
    recent_items = list(
        session.scalars(sa.select(Interaction.item_id).where(Interaction.occurred_at >= since))
    )
    unknown_recent = sum(1 for i in recent_items if int(i) not in known_items)

    country_psi = psi(trained_countries, current_countries)
    price_psi = binned_psi(trained_prices, catalog_prices)
    unknown_contacts = 1.0 - (with_history or 0) / population if population else 0.0
    report = {
        "measured_at": now.isoformat(),
        "population": {
            "contacts": population,
            "country_psi": round(country_psi, 4),
            "country_level": level(country_psi),
            "unknown_contacts_share": round(unknown_contacts, 4),
            "top_country_shifts": top_shifts(trained_countries, current_countries),
        },
        "catalog": {
            "enabled_items": len(catalog),
            "model_items": len(known_items),
            "unknown_items_share": round(unknown_catalog / len(catalog), 4) if catalog else 0.0,
            "price_psi": round(price_psi, 4),
            "price_level": level(price_psi),
            "median_price_training": round(float(np.median(trained_prices)), 2) if trained_prices else None,
            "median_price_catalog": round(float(np.median(catalog_prices)), 2) if catalog_prices else None,
        },
        "behaviour": {
            "interactions_since_training": len(recent_items),
            "unknown_items_share": round(unknown_recent / len(recent_items), 4) if recent_items else 0.0,
        },
    }
    worst = max(country_psi, price_psi)
    report["level"] = level(worst)
    return report


def record(
    session: Session,
    version: ModelVersion,
    contact_ids: Sequence[int] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Measure and store on the version (`ModelVersion.drift`). Flushes."""
    version.drift = measure(session, version, contact_ids, now)
    session.flush()
    return version.drift


def _window(version: ModelVersion) -> list[Any]:
    clauses: list[Any] = []
    if version.train_start is not None:
        clauses.append(Interaction.occurred_at >= version.train_start)
    if version.train_end is not None:
        clauses.append(Interaction.occurred_at < version.train_end)
    return clauses
