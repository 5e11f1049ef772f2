"""The PostgreSQL write path of a contact import: COPY the chunk's parsed rows into a staging table,
then set-based statements do what the portable path does row by row.

Per chunk, in two statements after the COPY: rows whose external id belongs to a contact with another
email are reported and dropped and the others find their contact by email; then one statement updates the existing contacts (the rules of
`contact_import._changes`: empty cells keep the old value, attributes merge, an import never moves a
contact back to `active`), puts erased addresses that come back on the suppression list (each
row's erased form, `erasure.address_hash`, comes with the COPY data), inserts the new contacts and writes the
consent history's steps (new contacts, and existing ones whose consent the file changes, citing
the file and row) in the order the portable path writes them. Nothing is sent per row but the COPY
data itself, which `copy_text` makes while the previous chunk is written (see `run_import`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.contacts.import_rows import ContactRow, JsonAttributes
from campaigns.imports.stream import ImportReport
from campaigns.privacy.erasure import address_hash
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
    "erased",
)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


@dataclass(frozen=True)
class Citation:
    """What each consent step of an import names: the file, the run, and who imported it."""

    filename: str
    run_id: int | None
    actor: str


def write_chunk(
    session: Session, data: str, rows: int, report: ImportReport, now: datetime, cite: Citation
) -> int:
    """Upsert the chunk's `rows` parsed rows (`data`: their `copy_text`) with their consent history;
    returns the rows written."""
    connection = session.connection()
    raw = connection.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor:
        # one round trip: the chunk's sorts stay in memory; the staging table is empty at each start
        cursor.execute(
            "SET LOCAL work_mem = '64MB'; "
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} (line bigint, email text, name text, country text, "
            "timezone text, consent boolean, status text, external_id text, attributes jsonb, evidence jsonb, "
            "erased text, contact_id bigint, old_consent boolean) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY {STAGING} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            copy.write(data)
    # Rows whose external id belongs to a contact with another email are reported and dropped; the
    # others find their contact by email, with its consent before the import (the history compares
    # with it). Lookups into contacts go through its unique indexes with the chunk's keys as an array
    # (= ANY(ARRAY(...))): a join would let the planner scan the whole, growing table once per chunk.
    taken = connection.exec_driver_sql(
        f"""
        WITH taken AS (
            SELECT s.line, s.external_id, c.id FROM {STAGING} s JOIN contacts c ON c.external_id = s.external_id
            WHERE c.external_id = ANY(ARRAY(SELECT external_id FROM {STAGING} WHERE external_id IS NOT NULL))
              AND c.email <> s.email
        ),
        dropped AS (DELETE FROM {STAGING} WHERE line IN (SELECT line FROM taken)),
        found AS (
            UPDATE {STAGING} s SET contact_id = c.id, old_consent = c.consent FROM contacts c
            WHERE c.email = ANY(ARRAY(SELECT email FROM {STAGING})) AND c.email = s.email
              AND s.line NOT IN (SELECT line FROM taken)
        )
        SELECT line, external_id, id FROM taken ORDER BY line
        """
    ).all()
    for line, external, owner_id in taken:
        report.error(int(line), "external_id", f"external_id {external!r} belongs to contact {owner_id}")
    connection.execute(
        _UPSERT,
        {
            "now": now,
            "at": utcnow(),
            "source": f"{cite.filename or 'import'} row ",
            "file": cite.filename,
            "run": cite.run_id,
            "actor": cite.actor[:400],
        },
    )
    _enter_flows(session, now)
    return rows - len(taken)


def _enter_flows(session: Session, now: datetime) -> None:
    """The chunk's new contacts enter the `contact_created` flows: one query for their ids and one
    set-based entry (campaigns.flows.entering), only when such a flow is active."""
    from campaigns.flows.entering import any_listening, enter_created
    from campaigns.flows.triggers import CONTACT_CREATED

    if not any_listening(session, CONTACT_CREATED):
        return
    created = session.connection().exec_driver_sql(
        f"SELECT c.id FROM contacts c WHERE c.email = ANY(ARRAY(SELECT email FROM {STAGING} "
        "WHERE contact_id IS NULL)) ORDER BY c.id"
    )
    enter_created(session, [int(row[0]) for row in created], now)


# The rest of the chunk in one statement (each data-modifying WITH runs once; they touch different rows):
# existing contacts updated with `contact_import._changes`' rules, new contacts whose address was
# erased before put back on the suppression list (`erasure.suppress_again`), the new
# contacts inserted in the file's order, and the consent steps (`consent.record_many`: new contacts,
# and existing ones whose consent the file changes) with the ids the insert returns.
_CHANGED = "(s.contact_id IS NULL OR (s.consent IS NOT NULL AND s.consent <> s.old_consent))"
_UPSERT = sa.text(
    f"""
    WITH updated AS (
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
    ),
    hashed AS (SELECT email, erased FROM {STAGING} WHERE contact_id IS NULL),
    suppressed AS (
        INSERT INTO suppressions (email, reason, detail, created_at)
        SELECT h.email, 'erased', '', :now FROM hashed h
        WHERE h.erased = ANY(ARRAY(
            SELECT email FROM suppressions WHERE email = ANY(ARRAY(SELECT erased FROM hashed))
        ))
        ORDER BY h.email COLLATE "C"
        ON CONFLICT (email) DO NOTHING
    ),
    inserted AS (
        INSERT INTO contacts (email, name, country, timezone, consent, status, external_id,
                              attributes, created_at, updated_at, unsubscribed_at)
        SELECT s.email, s.name, s.country, COALESCE(s.timezone, ''), COALESCE(s.consent, true),
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
    WHERE {_CHANGED}
    ORDER BY s.email COLLATE "C"
    """
)


def copy_text(rows: list[ContactRow], attributes: JsonAttributes) -> str:
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
                    address_hash(row.email),
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
