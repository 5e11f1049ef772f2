"""The PostgreSQL write path of a contact import: COPY the chunk's parsed rows into a staging table,
then set-based statements do what the portable path does row by row.

Per chunk: rows whose external_id belongs to a contact with another email are reported and dropped
(one join), existing contacts are updated from the staging rows (one UPDATE ... FROM, with the same
rules as `contact_import._changes`: empty cells keep the old value, attributes merge, an import never
moves a contact back to `active`), and the rest are inserted (one INSERT ... SELECT). New contacts
whose address was erased before go back on the suppression list (the erased form is sha256 in SQL,
as `erasure.address_hash`), and the consent history gets its steps (new contacts, and existing ones
whose consent the file changes, citing the file and row) in one INSERT ... SELECT, in the order the
portable path writes them. Nothing is sent per row but the COPY data itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contact_rows import ContactRow, JsonAttributes
from campaigns.csv_import import ImportReport
from campaigns.privacy.erasure import ERASED_PREFIX
from models import utcnow

STAGING = "mailramp_contact_staging"
COLUMNS = (
    "line",
    "email",
    "name",
    "country",
    "timezone",
    "consent",
    "status",
    "external_id",
    "attributes",
    "evidence",
)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Citation:
    """What each consent step of an import names: the file, the run, and who imported it."""

    filename: str
    run_id: int | None
    actor: str


def write_chunk(
    session: Session,
    rows: list[ContactRow],
    attributes: JsonAttributes,
    report: ImportReport,
    now: datetime,
    cite: Citation,
) -> int:
    """Upsert the chunk's parsed rows with their consent history; returns the rows written."""
    connection = session.connection()
    connection.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (line bigint, email text, name text, country text, "
        "timezone text, consent boolean, status text, external_id text, attributes jsonb, evidence jsonb, "
        "contact_id bigint, old_consent boolean) ON COMMIT DELETE ROWS"
    )
    connection.exec_driver_sql(f"TRUNCATE {STAGING}")
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {STAGING} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        copy.write(_copy_text(rows, attributes))
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
    # contacts already there, with their consent before the import (the history compares with it)
    connection.exec_driver_sql(
        f"UPDATE {STAGING} s SET contact_id = c.id, old_consent = c.consent FROM contacts c "
        f"WHERE c.email = ANY(ARRAY(SELECT email FROM {STAGING})) AND c.email = s.email"
    )
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
    _suppress_erased(connection, now)
    # The new contacts and the chunk's consent steps in one statement: the steps take the ids the
    # insert returns (new contacts) or the staging row's (contacts already there).
    changed = "(s.contact_id IS NULL OR (s.consent IS NOT NULL AND s.consent <> s.old_consent))"
    connection.execute(
        sa.text(
            f"""
            WITH inserted AS (
                INSERT INTO contacts (email, name, country, timezone, consent, status, external_id,
                                      attributes, created_at, updated_at, unsubscribed_at)
                SELECT s.email, s.name, s.country, COALESCE(s.timezone, 'UTC'), COALESCE(s.consent, true),
                       COALESCE(s.status, 'active'), s.external_id, s.attributes, :now, :now,
                       CASE WHEN s.status = 'unsubscribed' THEN :now END
                FROM {STAGING} s
                WHERE s.contact_id IS NULL
                ORDER BY s.line
                RETURNING id, email
            )
            INSERT INTO consent_records (contact_id, at, state, method, source, ip, user_agent, wording,
                                         evidence, actor)
            SELECT COALESCE(s.contact_id, i.id), :at,
                   CASE WHEN s.consent IS FALSE THEN 'withdrawn' ELSE 'granted' END, 'import',
                   left(:source || s.line, 500), left(COALESCE(s.evidence ->> 'consent_ip', ''), 64), '',
                   COALESCE(s.evidence ->> 'consent_wording', ''),
                   jsonb_build_object('file', CAST(:file AS text), 'row', s.line,
                                      'import_run', CAST(:run AS bigint)) || s.evidence,
                   :actor
            FROM {STAGING} s LEFT JOIN inserted i ON i.email = s.email
            WHERE {changed}
            ORDER BY s.email COLLATE "C"
            """
        ),
        {
            "now": now,
            "at": utcnow(),
            "source": f"{cite.filename or 'import'} row ",
            "file": cite.filename,
            "run": cite.run_id,
            "actor": cite.actor[:400],
        },
    )
    return len(rows) - len(taken)


def _suppress_erased(connection: sa.Connection, now: datetime) -> None:
    """`erasure.suppress_again` for the chunk's new contacts."""
    connection.execute(
        sa.text(
            f"""
            WITH hashed AS (
                SELECT email, :prefix || encode(sha256(convert_to(email, 'UTF8')), 'hex') AS erased
                FROM {STAGING} WHERE contact_id IS NULL
            )
            INSERT INTO suppressions (email, reason, detail, created_at)
            SELECT h.email, 'erased', '', :now FROM hashed h
            WHERE h.erased = ANY(ARRAY(
                SELECT email FROM suppressions WHERE email = ANY(ARRAY(SELECT erased FROM hashed))
            ))
            ORDER BY h.email COLLATE "C"
            ON CONFLICT (email) DO NOTHING
            """
        ),
        {"prefix": ERASED_PREFIX, "now": now},
    )


def _copy_text(rows: list[ContactRow], attributes: JsonAttributes) -> str:
    """The rows in COPY's text format, in the order of `COLUMNS`."""
    lines = []
    for row in rows:
        text = f"{row.email}\t{row.name}\t{row.country}"
        if "\\" in text or "\n" in text or "\r" in text or text.count("\t") != 2:
            text = "\t".join((_text(row.email), _text(row.name), _text(row.country)))
        consent = row.consent
        evidence = row.evidence
        lines.append(
            "\t".join(
                (
                    str(row.number),
                    text,
                    _optional(row.timezone),
                    "\\N" if consent is None else ("t" if consent else "f"),
                    _optional(row.status),
                    _optional(row.external_id),
                    attributes.copy_text(row),
                    _text(json.dumps(evidence, separators=(",", ":"))) if evidence else "{}",
                )
            )
        )
    return "\n".join(lines) + "\n"


def _text(value: str) -> str:
    return (
        value.translate(_ESCAPES)
        if ("\\" in value or "\t" in value or "\n" in value or "\r" in value)
        else value
    )


def _optional(value: str | None) -> str:
    return "\\N" if value is None else _text(value)
