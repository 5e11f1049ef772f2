"""CSV import of contacts: upsert on the normalized email, every good row imported, every bad row
reported with its line and field.

Columns (header names are matched case- and punctuation-insensitively): `email` (required),
`name` (or `first_name` + `last_name`), `country`, `timezone`, `consent`, `status`, `external_id`
(or `customer_id`); every other column becomes an attribute, typed (true/false, numbers, text).

Consent evidence columns, stored in each contact's consent history with the file name and row:
`consent_at` (when consent was given), `consent_source` (where: a form, a shop's checkout...),
`consent_ip`, `consent_wording` (the text shown) and `confirmed` (yes: already double opted in).
An address erased before is put back on the suppression list, never mailed.

An existing contact keeps what the file leaves empty, gets the file's attributes merged over its
own, and is never moved back to `active` by an import: an unsubscribe sticks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns import contact_copy
from campaigns.contacts import (
    TEXT_LIMITS,
    clean_text,
    normalize_email,
    parse_consent,
    parse_status,
    parse_timezone,
    typed_value,
)
from campaigns.csv_import import ImportReport, Row, SeenKeys, bulk_insert
from campaigns.errors import InputError
from campaigns.privacy import consent
from campaigns.privacy.erasure import suppress_again
from models import Contact, ImportRun, utcnow

ALIASES = {
    "e_mail": "email",
    "email_address": "email",
    "e_mail_address": "email",
    "mail": "email",
    "full_name": "name",
    "firstname": "first_name",
    "given_name": "first_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family_name": "last_name",
    "tz": "timezone",
    "time_zone": "timezone",
    "opt_in": "consent",
    "optin": "consent",
    "subscribed": "consent",
    "marketing_consent": "consent",
    "customer_id": "external_id",
    "customerid": "external_id",
    "opt_in_date": "consent_at",
    "consent_date": "consent_at",
    "double_opt_in": "confirmed",
}
EVIDENCE = ("consent_at", "consent_source", "consent_ip", "consent_wording", "confirmed")
_MISSING = object()
KNOWN = (
    "email",
    "name",
    "first_name",
    "last_name",
    "country",
    "timezone",
    "consent",
    "status",
    "external_id",
    *EVIDENCE,
)


class ContactImporter:
    kind = "contacts"
    tables = ("contacts",)
    aliases = ALIASES
    postgresql_chunk_rows = 20_000  # COPY into staging: fewer, larger chunks (see contact_copy)

    def __init__(self) -> None:
        self.seen_emails = SeenKeys()
        self.seen_external = SeenKeys()
        self.run_id: int | None = None
        self.filename = ""
        # Columns repeat few distinct values (time zones, consent, plan names): each is parsed once.
        self._parsed: dict[tuple[str, str], tuple[Any, str | None]] = {}
        self._typed: dict[str, Any] = {}

    def bind_run(self, run: ImportRun) -> None:
        """The run whose file and rows the consent history names."""
        self.run_id, self.filename = run.id, run.filename

    def check_header(self, columns: Sequence[str]) -> None:
        if "email" not in columns:
            raise InputError(
                f"missing required column email (the header has: {', '.join(columns)})", where="email"
            )

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        parsed: dict[str, tuple[int, dict[str, Any]]] = {}
        for row in rows:
            fields = self._parse(row, report)
            if fields is not None:
                parsed[fields["email"]] = (row.number, fields)
        if not parsed:
            return
        if session.get_bind().dialect.name == "postgresql":
            copied = contact_copy.write_chunk(session, parsed, report, utcnow())
            report.rows_imported += copied.imported
            if copied.new:
                suppress_again(session, copied.new)
            written = set(copied.existing) | set(copied.new)
            self._record_consent(session, {e: v for e, v in parsed.items() if e in written}, copied.existing)
            return
        taken = self._external_ids_taken(session, parsed, report)
        if taken:
            parsed = {e: v for e, v in parsed.items() if v[0] not in taken}
        existing = {
            c.email: c
            for c in session.execute(
                sa.select(
                    Contact.id, Contact.email, Contact.attributes, Contact.status, Contact.consent
                ).where(Contact.email.in_(list(parsed)))
            )
        }
        now = utcnow()
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for email, (_number, fields) in parsed.items():
            old = existing.get(email)
            if old is None:
                inserts.append(_new_contact(fields, now))
            else:
                updates.append(_changes(old, fields, now))
        if inserts:
            bulk_insert(session, Contact, inserts)
            suppress_again(session, [row["email"] for row in inserts])
        for keys in {tuple(sorted(u)) for u in updates}:
            batch = [u for u in updates if tuple(sorted(u)) == keys]
            session.execute(sa.update(Contact), batch)
        self._record_consent(session, parsed, {e: bool(c.consent) for e, c in existing.items()})
        report.rows_imported += len(parsed)

    def _record_consent(
        self, session: Session, parsed: dict[str, tuple[int, dict[str, Any]]], existing: dict[str, bool]
    ) -> None:
        """A consent step for each new contact, and for each existing one whose consent the file changes
        (`existing`: email -> consent before the import, for contacts that were there)."""
        changed = {
            email
            for email, (_n, fields) in parsed.items()
            if email not in existing or ("consent" in fields and fields["consent"] != existing[email])
        }
        if not changed:
            return
        ids = dict(
            session.execute(sa.select(Contact.email, Contact.id).where(Contact.email.in_(changed))).all()
        )
        rows = []
        for email in sorted(changed):
            number, fields = parsed[email]
            evidence = {"file": self.filename, "row": number, "import_run": self.run_id, **fields["evidence"]}
            rows.append(
                {
                    "contact_id": ids[email],
                    "state": "granted" if fields.get("consent", True) else "withdrawn",
                    "method": "import",
                    "source": f"{self.filename or 'import'} row {number}",
                    "ip": fields["evidence"].get("consent_ip", ""),
                    "wording": fields["evidence"].get("consent_wording", ""),
                    "evidence": evidence,
                }
            )
        consent.record_many(session, rows)

    def _parse(self, row: Row, report: ImportReport) -> dict[str, Any] | None:
        values = row.values
        fields: dict[str, Any] = {}
        ok = True

        def fail(field: str, message: str) -> None:
            nonlocal ok
            ok = False
            report.error(row.number, field, message)

        try:
            fields["email"] = normalize_email(values["email"])
        except InputError as exc:
            fail("email", exc.message)
        name = values.get("name", "").strip()
        if not name and ("first_name" in values or "last_name" in values):
            name = f"{values.get('first_name', '').strip()} {values.get('last_name', '').strip()}".strip()
        for field, raw in (("name", name), ("country", values.get("country", ""))):
            try:
                fields[field] = clean_text(field, raw)
            except InputError as exc:
                fail(field, exc.message)
        for field, parse in (
            ("timezone", parse_timezone),
            ("consent", parse_consent),
            ("status", parse_status),
        ):
            raw = values.get(field, "").strip()
            if raw:
                value, problem = self._parse_cached(field, raw, parse)
                if problem is None:
                    fields[field] = value
                else:
                    fail(field, problem)
        external = values.get("external_id", "").strip()
        if external:
            if external.endswith(".0") and external[:-2].isdigit():
                external = external[:-2]  # spreadsheets turn 17850 into 17850.0
            if len(external) > TEXT_LIMITS["external_id"]:
                fail("external_id", f"external_id is longer than {TEXT_LIMITS['external_id']} characters")
            fields["external_id"] = external
        fields["evidence"] = {key: values[key].strip() for key in EVIDENCE if values.get(key, "").strip()}
        if "confirmed" in fields["evidence"]:
            try:
                fields["evidence"]["confirmed"] = parse_consent(fields["evidence"]["confirmed"])
            except InputError:
                fail("confirmed", f"confirmed must be yes/no, true/false or 1/0, not {values['confirmed']!r}")
        typed = self._typed
        if len(typed) > 100_000:
            typed.clear()
        attributes = {}
        for key, raw in values.items():
            if key in KNOWN or not raw.strip():
                continue
            value = typed.get(raw, _MISSING)
            if value is _MISSING:
                value = typed[raw] = typed_value(raw)
            attributes[key] = value
        fields["attributes"] = attributes
        if not ok:
            return None
        first = self.seen_emails.first_row(fields["email"], row.number)
        if first is not None:
            report.error(
                row.number, "email", f"duplicate of row {first}: {fields['email']} (row {first} was used)"
            )
            return None
        if external:
            first = self.seen_external.first_row(external, row.number)
            if first is not None:
                report.error(row.number, "external_id", f"duplicate of row {first}: external_id {external!r}")
                return None
        return fields

    def _parse_cached(self, field: str, raw: str, parse: Any) -> tuple[Any, str | None]:
        key = (field, raw)
        found = self._parsed.get(key)
        if found is None:
            try:
                found = (parse(raw), None)
            except InputError as exc:
                found = (None, exc.message)
            if len(self._parsed) < 10_000:
                self._parsed[key] = found
        return found

    def _external_ids_taken(
        self, session: Session, parsed: dict[str, tuple[int, dict[str, Any]]], report: ImportReport
    ) -> set[int]:
        """Rows whose external id belongs to a contact with another email (reported, not imported)."""
        wanted = {f["external_id"]: (email, n) for email, (n, f) in parsed.items() if f.get("external_id")}
        if not wanted:
            return set()
        owners = session.execute(
            sa.select(Contact.external_id, Contact.email, Contact.id).where(
                Contact.external_id.in_(list(wanted))
            )
        ).all()
        taken: set[int] = set()
        for external, owner_email, owner_id in owners:
            email, number = wanted[external]
            if owner_email != email:
                report.error(number, "external_id", f"external_id {external!r} belongs to contact {owner_id}")
                taken.add(number)
        return taken


def _new_contact(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    status = fields.get("status", "active")
    return {
        "email": fields["email"],
        "name": fields["name"],
        "country": fields["country"],
        "timezone": fields.get("timezone", "UTC"),
        "consent": fields.get("consent", True),
        "status": status,
        "external_id": fields.get("external_id"),
        "attributes": fields["attributes"],
        "created_at": now,
        "updated_at": now,
        "unsubscribed_at": now if status == "unsubscribed" else None,
    }


def _changes(old: Any, fields: dict[str, Any], now: Any) -> dict[str, Any]:
    change: dict[str, Any] = {"id": old.id, "updated_at": now}
    for field in ("name", "country"):
        if fields[field]:
            change[field] = fields[field]
    for field in ("timezone", "consent", "external_id"):
        if field in fields:
            change[field] = fields[field]
    status = fields.get("status")
    if status is not None and status != old.status and status != "active" and old.status == "active":
        change["status"] = status
        if status == "unsubscribed":
            change["unsubscribed_at"] = now
    if fields["attributes"]:
        change["attributes"] = {**(old.attributes or {}), **fields["attributes"]}
    return change
