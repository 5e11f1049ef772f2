"""CSV import of interactions (purchase history), in the Online Retail shape or a plain one.

Online Retail: `InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country`.
Plain: `email` or `customer_id`, `sku`, `occurred_at`, and optionally `quantity`, `unit_price` or
`value`, `kind` (purchase, return, click, view), `reference`.

- The contact is found by `customer_id` (the contact's external_id) or by email; rows with neither
  are skipped (the Online Retail file has 135,080 such lines), an unknown one is an error.
- An unknown SKU creates the item from the row's description and unit price (the Online Retail
  file is its own catalog); postage, fees and manual adjustments (POST, M, BANK CHARGES...) are
  skipped, not imported.
- A cancellation (an invoice starting with "C", or a negative quantity) becomes kind "return" with
  a positive quantity and value; segments count spend as purchases minus returns.
- Re-importing a file does not double it: a row whose (contact, item, reference, time, kind) was
  already stored before this run is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.catalog.items import categorize, display_name, parse_price
from campaigns.contacts.records import normalize_email
from campaigns.errors import InputError
from campaigns.imports.stream import ImportReport, Row, bulk_insert
from models import Contact, Interaction, Item, utcnow

NON_PRODUCT_CODES = frozenset(
    {"POST", "DOT", "M", "C2", "D", "S", "B", "BANK CHARGES", "AMAZONFEE", "CRUK", "PADS", "ADJUST"}
)
KINDS = ("purchase", "return", "click", "view")
ALIASES = {
    "invoiceno": "reference",
    "invoice_no": "reference",
    "invoice": "reference",
    "order_id": "reference",
    "stockcode": "sku",
    "stock_code": "sku",
    "item_id": "sku",
    "product_id": "sku",
    "invoicedate": "occurred_at",
    "invoice_date": "occurred_at",
    "date": "occurred_at",
    "timestamp": "occurred_at",
    "unitprice": "unit_price",
    "price": "unit_price",
    "customerid": "customer_id",
    "external_id": "customer_id",
    "e_mail": "email",
    "email_address": "email",
    "qty": "quantity",
    "type": "kind",
}
_DATE_FORMATS = ("%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
CACHE_LIMIT = 200_000


def parse_time(raw: str, where: str = "occurred_at") -> datetime:
    """ISO 8601 ("2010-12-01 08:26") or the UCI sheet's "12/1/2010 8:26"; naive times are UTC."""
    text = raw.strip()
    moment: datetime | None = None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        for fmt in _DATE_FORMATS:
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if moment is None:
        raise InputError(f"not a date and time: {raw!r} (use 2011-12-09 12:50)", where=where)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def customer_key(raw: str) -> str:
    """ "17850.0" (a spreadsheet's idea of 17850) -> "17850"."""
    key = raw.strip()
    return key[:-2] if key.endswith(".0") and key[:-2].isdigit() else key


def parse_quantity(raw: str) -> float:
    text = raw.strip()
    if not text:
        return 1.0
    try:
        quantity = float(text)
    except ValueError:
        raise InputError(f"quantity must be a number, not {raw!r}", where="quantity") from None
    if quantity != quantity or abs(quantity) == float("inf"):
        raise InputError(f"quantity must be a finite number, not {raw!r}", where="quantity")
    return quantity


class InteractionImporter:
    kind = "interactions"
    tables = ("interactions", "items")
    aliases = ALIASES

    def __init__(self) -> None:
        self.contacts_by_key: dict[str, int] = {}
        self.contacts_by_email: dict[str, int] = {}
        self.items: dict[str, int] = {}
        self.stored_before: int | None = None  # max interaction id when the run started

    def check_header(self, columns: Sequence[str]) -> None:
        missing = [c for c in ("sku", "occurred_at") if c not in columns]
        if "customer_id" not in columns and "email" not in columns:
            missing.append("customer_id or email")
        if missing:
            raise InputError(
                f"missing required column {', '.join(missing)} (the header has: {', '.join(columns)})",
                where=missing[0],
            )

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        if self.stored_before is None:
            self.stored_before = int(session.scalar(sa.select(sa.func.max(Interaction.id))) or 0)
        parsed = [p for p in (self._parse(row, report) for row in rows) if p is not None]
        if not parsed:
            return
        self._resolve_contacts(session, parsed, report)
        parsed = [p for p in parsed if p["contact_id"] is not None]
        self._resolve_items(session, parsed, report)
        parsed = [p for p in parsed if p["item_id"] is not None]
        if self.stored_before:
            parsed = self._drop_stored(session, parsed, report)
        fields = ("contact_id", "item_id", "kind", "quantity", "value", "occurred_at", "reference")
        records = [{**{f: p[f] for f in fields}, "source": "import"} for p in parsed]
        if records:
            bulk_insert(session, Interaction, records)
            _recent_purchases_to_flows(session, records)
        report.rows_imported += len(records)

    def _parse(self, row: Row, report: ImportReport) -> dict[str, Any] | None:
        values = row.values
        customer = customer_key(values.get("customer_id", ""))
        email_raw = values.get("email", "").strip()
        sku = " ".join(values.get("sku", "").split())
        if not customer and not email_raw:
            report.rows_skipped += 1  # no customer: nothing to learn from for one contact
            return None
        if sku.upper() in NON_PRODUCT_CODES:
            report.rows_skipped += 1
            return None
        ok = True
        record: dict[str, Any] = {"row": row.number, "customer": customer, "sku": sku}

        def fail(field: str, message: str) -> None:
            nonlocal ok
            ok = False
            report.error(row.number, field, message)

        if not sku:
            fail("sku", "sku is empty")
        elif len(sku) > 100:
            fail("sku", "sku is longer than 100 characters")
        if email_raw and not customer:
            try:
                record["email"] = normalize_email(email_raw)
            except InputError as exc:
                fail("email", exc.message)
        try:
            record["occurred_at"] = parse_time(values["occurred_at"])
        except InputError as exc:
            fail("occurred_at", exc.message)
        try:
            quantity = parse_quantity(values.get("quantity", ""))
        except InputError as exc:
            fail("quantity", exc.message)
            quantity = 1.0
        unit_price = 0.0
        if values.get("unit_price", "").strip():
            try:
                unit_price = parse_price(values["unit_price"], "unit_price")
            except InputError as exc:
                fail("unit_price", exc.message)
        reference = values.get("reference", "").strip()[:100] or None
        kind = values.get("kind", "").strip().lower() or "purchase"
        if kind not in KINDS:
            fail("kind", f"kind must be one of {', '.join(KINDS)}, not {values['kind']!r}")
        if not ok:
            return None
        if quantity == 0:
            report.rows_skipped += 1
            return None
        cancelled = bool(reference and reference.upper().startswith("C")) or quantity < 0
        if cancelled and kind == "purchase":
            kind = "return"
        quantity = abs(quantity)
        value = quantity * unit_price
        if values.get("value", "").strip():
            try:
                value = abs(parse_price(values["value"].lstrip("-"), "value"))
            except InputError as exc:
                report.error(row.number, "value", exc.message)
                return None
        record.update(
            kind=kind,
            quantity=quantity,
            value=round(value, 4),
            reference=reference,
            unit_price=unit_price,
            description=values.get("description", ""),
        )
        return record

    def _resolve_contacts(self, session: Session, parsed: list[dict[str, Any]], report: ImportReport) -> None:
        for cache, column, key in (
            (self.contacts_by_key, Contact.external_id, "customer"),
            (self.contacts_by_email, Contact.email, "email"),
        ):
            wanted = {p[key] for p in parsed if p.get(key) and p[key] not in cache}
            if wanted:
                if len(cache) > CACHE_LIMIT:
                    cache.clear()
                found = session.execute(sa.select(column, Contact.id).where(column.in_(list(wanted)))).all()
                cache.update((k, i) for k, i in found if k is not None)
        for p in parsed:
            if p["customer"]:
                p["contact_id"] = self.contacts_by_key.get(p["customer"])
                if p["contact_id"] is None:
                    report.error(p["row"], "customer_id", f"no contact has customer id {p['customer']!r}")
            else:
                p["contact_id"] = self.contacts_by_email.get(p["email"])
                if p["contact_id"] is None:
                    report.error(p["row"], "email", f"no contact has email {p['email']}")

    def _resolve_items(self, session: Session, parsed: list[dict[str, Any]], report: ImportReport) -> None:
        wanted = {p["sku"] for p in parsed if p["sku"] not in self.items}
        if wanted:
            if len(self.items) > CACHE_LIMIT:
                self.items.clear()
            self.items.update(
                session.execute(sa.select(Item.sku, Item.id).where(Item.sku.in_(list(wanted)))).all()
            )
        new: dict[str, dict[str, Any]] = {}
        for p in parsed:
            if p["sku"] in self.items or p["sku"] in new:
                continue
            if not p["description"].strip():
                continue
            name = display_name(p["description"])[:500]
            new[p["sku"]] = {
                "sku": p["sku"],
                "name": name,
                "price": p["unit_price"],
                "category": categorize(name),
                "url": "",
                "image_url": "",
                "enabled": True,
                "created_at": utcnow(),
            }
        if new:
            bulk_insert(session, Item, list(new.values()))
            self.items.update(
                session.execute(sa.select(Item.sku, Item.id).where(Item.sku.in_(list(new)))).all()
            )
        for p in parsed:
            p["item_id"] = self.items.get(p["sku"])
            if p["item_id"] is None:
                report.error(
                    p["row"], "sku", f"unknown sku {p['sku']!r} and no description to create the item from"
                )

    def _drop_stored(
        self, session: Session, parsed: list[dict[str, Any]], report: ImportReport
    ) -> list[dict[str, Any]]:
        """Skip rows an earlier import already stored (same contact, item, reference, time, kind)."""
        with_ref = [p for p in parsed if p["reference"]]
        if not with_ref:
            return parsed
        stored = {
            (c, i, r, _utc(t), k)
            for c, i, r, t, k in session.execute(
                sa.select(
                    Interaction.contact_id,
                    Interaction.item_id,
                    Interaction.reference,
                    Interaction.occurred_at,
                    Interaction.kind,
                ).where(
                    Interaction.contact_id.in_({p["contact_id"] for p in with_ref}),
                    Interaction.reference.in_({p["reference"] for p in with_ref}),
                    Interaction.id <= self.stored_before,
                )
            )
        }
        kept = []
        for p in parsed:
            key = (p["contact_id"], p["item_id"], p["reference"], p["occurred_at"], p["kind"])
            if p["reference"] and key in stored:
                report.rows_skipped += 1
            else:
                kept.append(p)
        return kept


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


RECENT = timedelta(hours=48)  # purchases older than this are history: they start no flow


def _recent_purchases_to_flows(session: Session, records: list[dict[str, Any]]) -> None:
    """Purchases of the last 48 hours (a feed of today's orders, not a history file) are purchases to
    the flows (campaigns.flows.entering.record_purchases): keyed by contact, item, reference and
    time, so importing the same order again acts once."""
    now = utcnow()
    recent = [
        (
            r["contact_id"],
            f"interaction:{r['contact_id']}:{r['item_id']}:{r['reference'] or ''}:{r['occurred_at'].isoformat()}",
            {"item_id": r["item_id"], "value": r["value"], "reference": r["reference"]},
            r["occurred_at"],
        )
        for r in records
        if r["kind"] == "purchase" and _utc(r["occurred_at"]) >= now - RECENT
    ]
    if recent:
        from campaigns.flows.entering import record_purchases

        record_purchases(session, recent, now)
