"""Reading the UCI Online Retail transactions (../shared/data/online_retail.csv.gz) into arrays.

Kept: rows with a CustomerID, a positive quantity and price, not a cancellation (invoice `C...`),
and a merchandise stock code (postage, fees, manual adjustments and discounts are not items an
email would recommend). Stdlib csv only: about 2 s for the 541,909 rows.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from campaigns.recommender.matrix import InteractionLog

DEFAULT_PATH = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "online_retail.csv.gz"
NOT_MERCHANDISE = frozenset(
    {"POST", "DOT", "M", "m", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS"}
)
SPLIT = datetime(2011, 9, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RetailLog:
    customers: np.ndarray  # int64 CustomerID per purchase line
    items: np.ndarray  # int64 item index per line (into `skus`)
    days: np.ndarray  # float64 days since 1970-01-01 (UTC) per line
    skus: list[str]  # StockCode of each item index
    names: list[str]  # first description seen per item
    prices: np.ndarray  # float64 median unit price per item
    country_of: dict[int, str]  # CustomerID -> country

    def __len__(self) -> int:
        return len(self.customers)


def data_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """--data, else $MAILRAMP_DEMO_DATA, else ../shared/data/online_retail.csv.gz next to the repo."""
    chosen = explicit or os.environ.get("MAILRAMP_DEMO_DATA") or DEFAULT_PATH
    return Path(chosen)


def day_number(moment: datetime) -> float:
    return (moment - _EPOCH).total_seconds() / 86400.0


def load(path: str | os.PathLike[str] | None = None) -> RetailLog:
    source = data_path(path)
    if not source.is_file():
        raise FileNotFoundError(
            f"Online Retail data not found at {source}; pass --data or set MAILRAMP_DEMO_DATA"
        )
    customers: list[int] = []
    items: list[int] = []
    days: list[float] = []
    item_of: dict[str, int] = {}
    names: list[str] = []
    prices: list[list[float]] = []
    country_of: dict[int, str] = {}
    day_cache: dict[str, float] = {}
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline=""))
        header = next(reader)
        col = {name: i for i, name in enumerate(header)}
        for row in reader:
            customer, code = row[col["CustomerID"]], row[col["StockCode"]]
            if not customer or code in NOT_MERCHANDISE or row[col["InvoiceNo"]].startswith("C"):
                continue
            quantity, price = float(row[col["Quantity"]]), float(row[col["UnitPrice"]])
            if quantity <= 0 or price <= 0:
                continue
            stamp = row[col["InvoiceDate"]]
            day = day_cache.get(stamp)
            if day is None:
                day = day_number(datetime.strptime(stamp, "%Y-%m-%d %H:%M").replace(tzinfo=UTC))
                day_cache[stamp] = day
            index = item_of.get(code)
            if index is None:
                index = item_of[code] = len(names)
                names.append(row[col["Description"]].strip())
                prices.append([])
            cid = int(float(customer))
            customers.append(cid)
            items.append(index)
            days.append(day)
            prices[index].append(price)
            country_of.setdefault(cid, row[col["Country"]])
    return RetailLog(
        customers=np.asarray(customers, dtype=np.int64),
        items=np.asarray(items, dtype=np.int64),
        days=np.asarray(days, dtype=np.float64),
        skus=list(item_of),
        names=names,
        prices=np.array([float(np.median(p)) for p in prices]),
        country_of=country_of,
    )


def as_log(data: RetailLog, reference: datetime) -> InteractionLog:
    """Every purchase line as an interaction (item ids = item indexes), ages measured from `reference`."""
    return InteractionLog(
        user_ids=data.customers,
        item_ids=data.items,
        weights=np.ones(len(data)),
        age_days=day_number(reference) - data.days,
    )
