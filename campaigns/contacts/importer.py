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

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts import import_copy as contact_copy
from campaigns.contacts.import_rows import ContactRow, JsonAttributes, Problem, RowParser
from campaigns.errors import InputError
from campaigns.imports.stream import ImportReport, Row, SeenKeys, bulk_insert
from campaigns.privacy import consent
from campaigns.privacy.audit import current_actor
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
        self._parser: RowParser | None = None
        self._json: JsonAttributes | None = None

    def bind_run(self, run: ImportRun) -> None:
        """The run whose file and rows the consent history names."""
        self.run_id, self.filename = run.id, run.filename

    def check_header(self, columns: Sequence[str]) -> None:
        if "email" not in columns:
            raise InputError(
                f"missing required column email (the header has: {', '.join(columns)})", where="email"
            )
        self._parser = RowParser(columns)
        self._json = JsonAttributes(self._parser)

    def prepare_chunk(self, rows: list[Row]) -> Callable[[Session, ImportReport], None]:
        """PostgreSQL's path: the chunk parsed and its COPY data made, touching neither the database
        nor the report (`run_import` prepares the next chunk while this one is written), then the step
        that reports the chunk's problems and writes it."""
        parser, attributes = self._layout(rows)
        good, problems = self._parse_chunk(parser, rows)
        data, count = contact_copy.copy_text(good, attributes), len(good)  # the rows themselves can go
        cite = contact_copy.Citation(self.filename, self.run_id, current_actor().name)

        def write(session: Session, report: ImportReport) -> None:
            for number, field, message in problems:
                report.error(number, field, message)
            if count:
                copied = contact_copy.write_chunk(session, data, count, report, utcnow(), cite)
                report.rows_imported += copied

        return write

    def import_chunk(self, session: Session, rows: list[Row], report: ImportReport) -> None:
        if session.get_bind().dialect.name == "postgresql":
            self.prepare_chunk(rows)(session, report)
            return
        parser, _attributes = self._layout(rows)
        good, problems = self._parse_chunk(parser, rows)
        for number, field, message in problems:
            report.error(number, field, message)
        if not good:
            return
        parsed = {row.email: (row.number, _fields(row, parser)) for row in good}
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
            _enter_flows(session, [row["email"] for row in inserts], now)
        for keys in {tuple(sorted(u)) for u in updates}:
            batch = [u for u in updates if tuple(sorted(u)) == keys]
            session.execute(sa.update(Contact), batch)
        self._record_consent(session, parsed, {e: bool(c.consent) for e, c in existing.items()})
        report.rows_imported += len(parsed)

    def _layout(self, rows: list[Row]) -> tuple[RowParser, JsonAttributes]:
        if self._parser is None or self._json is None:  # check_header was not called
            self.check_header(rows[0].columns if rows else ["email"])
        assert self._parser is not None and self._json is not None
        return self._parser, self._json

    def _parse_chunk(self, parser: RowParser, rows: list[Row]) -> tuple[list[ContactRow], list[Problem]]:
        """The chunk's good rows, and each bad field of the others in the order of the rows (a row's
        own problems, or whether its email or external id repeats an earlier row's)."""
        problems: list[Problem] = []
        parse = parser.parse
        valid = [c for c in (parse(row.number, row.cells, problems) for row in rows) if c is not None]
        good: list[ContactRow] = []
        firsts = self.seen_emails.first_rows([c.email for c in valid], [c.number for c in valid])
        for row, first in zip(valid, firsts, strict=True):
            if first is None:
                good.append(row)
            else:
                message = f"duplicate of row {first}: {row.email} (row {first} was used)"
                problems.append((row.number, "email", message))
        external = [c for c in good if c.external_id is not None]
        if external:
            firsts = self.seen_external.first_rows(
                [c.external_id or "" for c in external], [c.number for c in external]
            )
            repeated = set()
            for row, first in zip(external, firsts, strict=True):
                if first is not None:
                    message = f"duplicate of row {first}: external_id {row.external_id!r}"
                    problems.append((row.number, "external_id", message))
                    repeated.add(row.number)
            good = [c for c in good if c.number not in repeated]
        problems.sort(key=lambda p: p[0])  # stable: a row's fields keep their order
        return good, problems

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


def _fields(row: ContactRow, parser: RowParser) -> dict[str, Any]:
    """The portable path's form of a row: the keys the file gives, the attributes typed."""
    fields: dict[str, Any] = {"email": row.email, "name": row.name, "country": row.country}
    for key in ("timezone", "consent", "status", "external_id"):
        value = getattr(row, key)
        if value is not None:
            fields[key] = value
    fields["evidence"] = row.evidence
    fields["attributes"] = parser.attributes(row)
    return fields


def _new_contact(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    status = fields.get("status", "active")
    return {
        "email": fields["email"],
        "name": fields["name"],
        "country": fields["country"],
        "timezone": fields.get("timezone", ""),  # unset: the workspace's default_timezone
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


def _enter_flows(session: Session, emails: list[str], now: Any) -> None:
    """New contacts enter the `contact_created` flows, set-based per chunk (campaigns.flows.entering)."""
    from campaigns.flows.entering import any_listening, enter_created
    from campaigns.flows.triggers import CONTACT_CREATED

    if any_listening(session, CONTACT_CREATED):
        ids = session.scalars(sa.select(Contact.id).where(Contact.email.in_(emails)).order_by(Contact.id))
        enter_created(session, list(ids), now)
