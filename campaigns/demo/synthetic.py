"""A seeded stand-in for the Online Retail data when the real file is not there: same shape
(customers with countries, items with categories and prices, invoices of several lines,
a few cancellations), with structure a recommender can learn (each customer favours one or two
categories; item popularity is long-tailed), dated over the year before `now`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from campaigns.catalog.items import CATEGORY_KEYWORDS
from campaigns.demo.retail import DemoData

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
    everything = np.arange(n_items)
    pools = [np.flatnonzero(item_category == c) for c in range(len(categories))]
    pools = [pool if pool.size else everything for pool in pools] + [everything]
    cdfs = [np.cumsum(popularity[pool]) / popularity[pool].sum() for pool in pools]
    quantities = np.array([1.0, 2.0, 3.0, 4.0, 6.0, 12.0])
    p_quantity = np.array([0.35, 0.2, 0.1, 0.1, 0.15, 0.1])

    names, weights = zip(*COUNTRIES, strict=True)
    p_country = np.array(weights) / sum(weights)
    customers: dict[str, dict[str, Any]] = {}
    lines: list[tuple[str, str, str, float, float, datetime, str]] = []
    invoice = 600000
    countries = rng.choice(len(names), size=n_contacts, p=p_country)
    for c in range(n_contacts):
        key = str(20000 + c)
        favourites = rng.choice(len(categories), size=2, replace=False)
        n_orders = int(rng.poisson(orders_per_contact)) + 1
        offsets = np.sort(rng.uniform(0, 365 * 86400, n_orders))
        times = [(start + timedelta(seconds=float(s))).replace(second=0, microsecond=0) for s in offsets]
        customers[key] = {"country": names[int(countries[c])], "first_seen": times[0], "spend": 0.0}
        sizes = rng.integers(1, 9, n_orders)
        n_lines = int(sizes.sum())
        # 70% of lines from one of the two favourite categories, the rest from the whole catalog
        pool_of_line = np.where(
            rng.random(n_lines) < 0.7, favourites[rng.integers(0, 2, n_lines)], len(categories)
        )
        draws = rng.random(n_lines)
        line_quantities = rng.choice(quantities, size=n_lines, p=p_quantity)
        returned = rng.random(n_lines) < 0.02
        return_days = rng.integers(1, 20, n_lines)
        line = 0
        for at, size in zip(times, sizes, strict=True):
            invoice += 1
            for _ in range(int(size)):
                pool = int(pool_of_line[line])
                item = int(
                    pools[pool][min(int(np.searchsorted(cdfs[pool], draws[line])), pools[pool].size - 1)]
                )
                sku = skus[item]
                quantity = float(line_quantities[line])
                value = round(quantity * items[sku]["price"], 2)
                lines.append((key, sku, "purchase", quantity, value, at, str(invoice)))
                customers[key]["spend"] += value
                later = at + timedelta(days=int(return_days[line]))
                if returned[line] and later < now:
                    lines.append((key, sku, "return", quantity, value, later, f"C{invoice}"))
                    customers[key]["spend"] -= value
                line += 1
    return DemoData(customers, items, lines)
