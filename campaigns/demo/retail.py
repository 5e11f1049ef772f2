"""The demo's source data: customers, items and invoice lines, read from the UCI Online Retail file
(`read_online_retail`) or made by the seeded generator (`campaigns.demo.synthetic`)."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from campaigns.catalog.interactions import NON_PRODUCT_CODES
from campaigns.catalog.items import display_name
from campaigns.imports.stream import open_binary


@dataclass
class DemoData:
    """What `_write` stores: customers by key, items by sku, interactions as tuples."""

    customers: dict[str, dict[str, Any]]  # key -> country, first_seen, spend
    items: dict[str, dict[str, Any]]  # sku -> name, price, first_seen
    # (customer key, sku, kind, quantity, value, occurred_at, reference)
    lines: list[tuple[str, str, str, float, float, datetime, str]]


def read_online_retail(path: Path, max_rows: int | None = None) -> DemoData:
    customers: dict[str, dict[str, Any]] = {}
    descriptions: dict[str, Counter[str]] = defaultdict(Counter)
    prices: dict[str, Counter[float]] = defaultdict(Counter)
    first_seen: dict[str, datetime] = {}
    lines: list[tuple[str, str, str, float, float, datetime, str]] = []
    times: dict[str, datetime] = {}
    with open_binary(path) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        next(reader)
        for n, row in enumerate(reader):
            if max_rows is not None and n >= max_rows:
                break
            if len(row) != 8:
                continue
            invoice, sku, description, quantity_text, when, price_text, customer, country = row
            if not customer or sku in NON_PRODUCT_CODES:
                continue
            try:
                quantity = float(quantity_text)
                price = float(price_text)
            except ValueError:
                continue
            if quantity == 0 or price <= 0:
                continue
            at = times.get(when)
            if at is None:
                at = times[when] = datetime.fromisoformat(when).replace(tzinfo=UTC)
            customer = customer[:-2] if customer.endswith(".0") else customer
            returned = invoice.startswith("C") or quantity < 0
            quantity = abs(quantity)
            value = round(quantity * price, 2)
            info = customers.get(customer)
            if info is None:
                info = customers[customer] = {"country": country, "first_seen": at, "spend": 0.0}
            info["first_seen"] = min(info["first_seen"], at)
            info["spend"] += -value if returned else value
            if not returned:
                descriptions[sku][description] += 1
                prices[sku][price] += 1
            first_seen[sku] = min(first_seen.get(sku, at), at)
            lines.append((customer, sku, "return" if returned else "purchase", quantity, value, at, invoice))
    items = {}
    for sku, seen in first_seen.items():
        description = descriptions[sku].most_common(1)[0][0] if descriptions[sku] else sku
        price = prices[sku].most_common(1)[0][0] if prices[sku] else 0.0
        items[sku] = {"name": display_name(description)[:500], "price": price, "first_seen": seen}
    return DemoData(customers, items, lines)
