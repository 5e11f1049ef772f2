"""A seeded stand-in for the Online Retail data when the real file is not there: same shape
(customers with countries, items with categories and prices, invoices of several lines,
a few cancellations), with structure a recommender can learn (each customer favours one or two
categories; item popularity is long-tailed), dated over the year before `now`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from campaigns.catalog import CATEGORY_KEYWORDS
from campaigns.demo import DemoData

COUNTRIES = (
    ("United Kingdom", 0.85), ("Germany", 0.03), ("France", 0.03), ("EIRE", 0.02), ("Spain", 0.015),
    ("Netherlands", 0.015), ("Belgium", 0.01), ("Switzerland", 0.01), ("Australia", 0.01), ("Norway", 0.01),
)  # fmt: skip
ADJECTIVES = (
    "Vintage", "Pink", "Blue", "Retro", "Red Spotty", "White", "Woodland", "Paisley", "Regency",
    "Enamel", "Glass", "Jumbo", "Mini", "Scandinavian", "Polkadot", "Rose", "Ivory", "Green",
)  # fmt: skip


def generate(
    *,
    seed: int,
    now: datetime,
    n_contacts: int = 3000,
    n_items: int = 800,
    orders_per_contact: float = 4.0,
) -> DemoData:
    rng = np.random.default_rng(seed)
    categories = [name for name, _ in CATEGORY_KEYWORDS]
    nouns = {name: [k.title() for k in keywords if " " not in k][:6] for name, keywords in CATEGORY_KEYWORDS}
    start = now - timedelta(days=365)

    item_category = rng.integers(0, len(categories), n_items)
    items: dict[str, dict[str, Any]] = {}
    skus: list[str] = []
    for i in range(n_items):
        category = categories[int(item_category[i])]
        noun = nouns[category][int(rng.integers(0, len(nouns[category])))]
        adjective = ADJECTIVES[int(rng.integers(0, len(ADJECTIVES)))]
        sku = f"{20000 + i * 7}{'AB'[i % 2] if i % 3 == 0 else ''}"
        price = float(np.round(rng.lognormal(1.0, 0.7), 2)) + 0.25
        items[sku] = {
            "name": f"{adjective} {noun} {category.split()[0].title()}",
            "price": price,
            "first_seen": start,
        }
        skus.append(sku)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity = popularity[rng.permutation(n_items)]
    by_category = [np.flatnonzero(item_category == c) for c in range(len(categories))]

    names, weights = zip(*COUNTRIES, strict=True)
    p_country = np.array(weights) / sum(weights)
    customers: dict[str, dict[str, Any]] = {}
    lines: list[tuple[str, str, str, float, float, datetime, str]] = []
    invoice = 600000
    for c in range(n_contacts):
        key = str(20000 + c)
        country = names[int(rng.choice(len(names), p=p_country))]
        favourites = rng.choice(len(categories), size=2, replace=False)
        n_orders = int(rng.poisson(orders_per_contact)) + 1
        times = sorted(start + timedelta(seconds=float(s)) for s in rng.uniform(0, 365 * 86400, n_orders))
        times = [t.replace(second=0, microsecond=0) for t in times]
        customers[key] = {"country": country, "first_seen": times[0], "spend": 0.0}
        for at in times:
            invoice += 1
            n_lines = int(rng.integers(1, 9))
            for _ in range(n_lines):
                if rng.random() < 0.7:
                    pool = by_category[int(favourites[int(rng.integers(0, 2))])]
                    if pool.size == 0:
                        pool = np.arange(n_items)
                else:
                    pool = np.arange(n_items)
                weights_pool = popularity[pool] / popularity[pool].sum()
                item = int(pool[int(rng.choice(pool.size, p=weights_pool))])
                sku = skus[item]
                quantity = float(rng.choice([1, 2, 3, 4, 6, 12], p=[0.35, 0.2, 0.1, 0.1, 0.15, 0.1]))
                value = round(quantity * items[sku]["price"], 2)
                lines.append((key, sku, "purchase", quantity, value, at, str(invoice)))
                customers[key]["spend"] += value
                if rng.random() < 0.02:
                    later = at + timedelta(days=int(rng.integers(1, 20)))
                    if later < now:
                        lines.append((key, sku, "return", quantity, value, later, f"C{invoice}"))
                        customers[key]["spend"] -= value
    return DemoData(customers, items, lines)
