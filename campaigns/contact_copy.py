"""The PostgreSQL write path of a contact import: COPY the chunk's parsed rows into a staging table,
then set-based statements do what the portable path does row by row.

Per chunk: rows whose external_id belongs to a contact with another email are reported and dropped
(one join), existing contacts are updated from the staging rows (one UPDATE ... FROM, with the same
rules as `contact_import._changes`: empty cells keep the old value, attributes merge, an import never
moves a contact back to `active`), and the rest are inserted (one INSERT ... SELECT). Nothing is
sent per row but the COPY data itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.csv_import import ImportReport

STAGING = "mailramp_contact_staging"
COLUMNS = ("line", "email", "name", "country", "timezone", "consent", "status", "external_id", "attributes")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class CopiedChunk:
    imported: int  # rows written (the others are reported)
    existing: dict[str, bool]  # email -> consent before the chunk, for contacts that were there
    new: list[str]  # emails of the contacts the chunk created


def write_chunk(
    session: Session, parsed: dict[str, tuple[int, dict[str, Any]]], report: ImportReport, now: datetime
) -> CopiedChunk:
    """Upsert the chunk's parsed rows."""
    connection = session.connection()
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (line bigint, email text, name text, country text, "
        "timezone text, consent boolean, status text, external_id text, attributes jsonb, contact_id bigint) "
        "ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql(f"TRUNCATE {STAGING}")
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {STAGING} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        copy.write("".join(_line(number, fields) for number, fields in parsed.values()))
    # Every lookup into contacts goes through its unique indexes with the chunk's keys as an array
    # (= ANY(ARRAY(...))): a join would let the planner scan the whole, growing table once per chunk.
    taken = connection.exec_driver_sql(
        f"SELECT s.line, s.external_id, c.id FROM {STAGING} s JOIN contacts c ON c.external_id = s.external_id "
        f"WHERE c.external_id = ANY(ARRAY(SELECT external_id FROM {STAGING} WHERE external_id IS NOT NULL)) "
        "AND c.email <> s.email"
    ).all()
    for line, external, owner_id in taken:
        report.error(int(line), "external_id", f"external_id {external!r} belongs to contact {owner_id}")
    if taken:
        connection.exec_driver_sql(
            f"DELETE FROM {STAGING} WHERE line = ANY(%(lines)s)",
            {"lines": [int(line) for line, _, _ in taken]},
        )
    connection.exec_driver_sql(
        f"UPDATE {STAGING} s SET contact_id = c.id FROM contacts c "
        f"WHERE c.email = ANY(ARRAY(SELECT email FROM {STAGING})) AND c.email = s.email"
    )
    # what the consent history needs: the consent of contacts already there, and which are new
    existing: dict[str, bool] = {
        str(email): bool(consent)
        for email, consent in connection.exec_driver_sql(
            f"SELECT s.email, c.consent FROM {STAGING} s JOIN contacts c ON c.id = s.contact_id "
            f"WHERE c.id = ANY(ARRAY(SELECT contact_id FROM {STAGING} WHERE contact_id IS NOT NULL))"
        ).all()
    }
    new = [
        str(e) for (e,) in connection.exec_driver_sql(f"SELECT email FROM {STAGING} WHERE contact_id IS NULL")
    ]
    params = {"now": now}
    connection.execute(
        sa.text(
            f"""
            UPDATE contacts c SET
                name = CASE WHEN s.name <> '' THEN s.name ELSE c.name END,
                country = CASE WHEN s.country <> '' THEN s.country ELSE c.country END,
                timezone = COALESCE(s.timezone, c.timezone),
                consent = COALESCE(s.consent, c.consent),
                external_id = COALESCE(s.external_id, c.external_id),
                status = CASE WHEN s.status IS NOT NULL AND s.status <> 'active' AND c.status = 'active'
                              THEN s.status ELSE c.status END,
                unsubscribed_at = CASE WHEN s.status = 'unsubscribed' AND c.status = 'active'
                                       THEN :now ELSE c.unsubscribed_at END,
                attributes = CASE WHEN s.attributes = '{{}}'::jsonb THEN c.attributes
                                  ELSE COALESCE(c.attributes, '{{}}'::jsonb) || s.attributes END,
                updated_at = :now
            FROM {STAGING} s
            WHERE c.id = ANY(ARRAY(SELECT contact_id FROM {STAGING} WHERE contact_id IS NOT NULL))
              AND c.id = s.contact_id
            """
        ),
        params,
    )
    connection.execute(
        sa.text(
            f"""
            INSERT INTO contacts (email, name, country, timezone, consent, status, external_id, attributes,
                                  created_at, updated_at, unsubscribed_at)
            SELECT s.email, s.name, s.country, COALESCE(s.timezone, 'UTC'), COALESCE(s.consent, true),
                   COALESCE(s.status, 'active'), s.external_id, s.attributes, :now, :now,
                   CASE WHEN s.status = 'unsubscribed' THEN :now END
            FROM {STAGING} s
            WHERE s.contact_id IS NULL
            ORDER BY s.line
            """
        ),
        params,
    )
    return CopiedChunk(len(parsed) - len(taken), existing, new)


def _line(number: int, fields: dict[str, Any]) -> str:
    consent = fields.get("consent")
    values = (
        str(number),
        _text(fields["email"]),
        _text(fields["name"]),
        _text(fields["country"]),
        _optional(fields.get("timezone")),
        "\\N" if consent is None else ("t" if consent else "f"),
        _optional(fields.get("status")),
        _optional(fields.get("external_id")),
        _text(json.dumps(fields["attributes"], separators=(",", ":"))) if fields["attributes"] else "{}",
    )
    return "\t".join(values) + "\n"


def _text(value: str) -> str:
    return (
        value.translate(_ESCAPES)
        if ("\\" in value or "\t" in value or "\n" in value or "\r" in value)
        else value
    )


def _optional(value: str | None) -> str:
    return "\\N" if value is None else _text(value)
