"""The contact import's two write paths (PostgreSQL's COPY and set-based SQL, everything else's
row-by-row ORM) end with the same contacts, errors, suppressions and consent history on a file with
every kind of bad row. On PostgreSQL the file is imported into a scratch SQLite database as well and
the two outcomes compared; on SQLite the outcome is checked on its own."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.contacts import import_copy as contact_copy
from campaigns.contacts.importer import ContactImporter
from campaigns.privacy.audit import Actor, acting
from campaigns.privacy.erasure import address_hash
from models import Base, ConsentRecord, Contact, ImportRun, Suppression, simulated_now, utcnow
from models.db import make_engine, make_session_factory
from tests.campaigns.data_fixtures import factory, run_csv

__all__ = ["factory"]

BEFORE = (
    "email,name,country,consent,status,customer_id,plan\n"
    "kept@example.com,Kept,GB,yes,,K1,gold\n"  # consent unchanged by the file
    "flips@example.com,Flips,FR,yes,,,silver\n"  # the file withdraws consent
    "gone@example.com,Gone,DE,no,unsubscribed,,\n"  # an import never makes it active again
    "owner@example.com,Owner,ES,,,X1,\n"  # owns external id X1
)

LONG = "x" * 301
FILE = (
    "Email,Name,First Name,Last Name,Country,TZ,Opt-in,Status,Customer ID,Plan,Age,Note,"
    "consent_at,consent_source,consent_ip,consent_wording,double_opt_in\n"
    # 2 good, new, every evidence column
    "Ann@Example.com,Ann,,,GB,Europe/London,yes,,A1,gold,34,,2024-01-02,shop checkout,203.0.113.9,"
    "Send me offers,yes\n"
    "not-an-email,Bob,,,,,,,,,,,,,,,\n"  # 3 bad email
    "ANN@example.com,Ann again,,,,,,,,,,,,,,,\n"  # 4 duplicate of row 2
    "cy@example.com,Cy,,,FR,Mars/Base,maybe,sleeping,,,,,,,,,\n"  # 5 timezone, consent, status
    f"long@example.com,{LONG},,,GB,,,,,,,,,,,,\n"  # 6 name too long
    "dup-ext@example.com,Dup,,,,,,,A1,,,,,,,,\n"  # 7 duplicate external id of row 2
    "taken@example.com,Taken,,,,,,,X1,,,,,,,,\n"  # 8 external id of another contact
    "conf@example.com,Conf,,,,,,,,,,,,,,,perhaps\n"  # 9 bad confirmed
    "short@example.com,Short\n"  # 10 missing columns
    "kept@example.com,,,,,,yes,active,,platinum,,,,,,,\n"  # 11 existing, consent unchanged
    "flips@example.com,Flipped,,,,,no,,,,,,,,,,\n"  # 12 existing, consent withdrawn
    "gone@example.com,,,,,,yes,active,,,,,,,,,\n"  # 13 existing unsubscribed: stays so
    "erased@example.com,Back,,,,,,,,,,,,,,,\n"  # 14 erased before: suppressed again
    ",,,,,,,,,,,,,,,,\n"  # 15 empty email
    '"quo@example.com","Quo\nTed",,,IE,,0,unsubscribed,17850.0,free,2.5,"tab\there",,,,,\n'  # 16-17
    "split@example.com,,Sam,Split,NL,America/New_York,1,,,,,back\\slash,,,,,no\n"  # 18 first + last
    "e\xe9@example.com,Enc,,,,,,,,,,,,,,,\n"  # 19 (made bad UTF-8 below)
    "nul@example.com,N\x00ul,,,,,,,,,,,,,,,\n"  # 20 NUL byte
    "extra@example.com,Extra,,,,,,,,,,,,,,,,,\n"  # 21 too many values
    "\n"  # 22 blank line
    "late@example.com,Late,,,,,,,,,,,,,,,\n"  # 23 good
    "ann@example.com,Ann third,,,,,,,,,,,,,,,\n"  # 24 duplicate of row 2 in a later chunk
)


def file_bytes() -> bytes:
    """FILE in UTF-8 but for row 19's address, whose é is a lone Latin-1 byte."""
    return FILE.encode().replace("e\xe9@".encode(), b"e\xe9@")


def outcome(factory: sessionmaker[Session]) -> dict[str, Any]:
    """Import BEFORE then FILE (small chunks, so duplicates cross chunks) and read back all they wrote."""
    with factory() as session:
        session.add(
            Suppression(email=address_hash("erased@example.com"), reason="erased", created_at=utcnow())
        )
        session.commit()
    first = run_csv(factory, "contacts", BEFORE)
    assert (first.status, first.rows_imported) == ("done", 4)
    with factory() as session:
        before = session.scalar(sa.select(sa.func.count()).select_from(ConsentRecord)) or 0
    run = run_csv(factory, "contacts", file_bytes(), chunk_rows=5)
    with factory() as session:
        contacts = {c.email: c for c in session.scalars(sa.select(Contact).order_by(Contact.id))}
        emails = {c.id: e for e, c in contacts.items()}
        history = [
            (
                emails[r.contact_id],
                r.state,
                r.method,
                r.source,
                r.ip,
                r.user_agent,
                r.wording,
                r.evidence,
                r.actor,
            )
            for r in session.scalars(sa.select(ConsentRecord).order_by(ConsentRecord.id))
        ]
        # FILE's records in file order: on PostgreSQL two chunks are written at once (committed in
        # file order), so a later chunk's records may take their ids first
        history[before:] = sorted(history[before:], key=lambda h: (int(h[3].rsplit(" ", 1)[1]), h[0]))
        suppressed = sorted(
            (s.email, s.reason) for s in session.scalars(sa.select(Suppression)) if "@" in s.email
        )
    return {
        "run": (run.status, run.rows_total, run.rows_imported, run.rows_failed, run.rows_skipped),
        "errors": run.errors,
        "contacts": [
            (
                email,
                c.name,
                c.country,
                c.timezone,
                c.consent,
                c.status,
                c.external_id,
                c.attributes,
                c.unsubscribed_at is not None,
            )
            for email, c in sorted(contacts.items())  # by email: the id order is the writers' (above)
        ],
        "history": history,
        "suppressed": suppressed,
    }


def check(found: dict[str, Any]) -> None:
    assert found["run"] == ("done", 21, 8, 13, 0)
    by_row: dict[int, list[str]] = {}
    for error in found["errors"]:
        by_row.setdefault(error["row"], []).append(error["field"])
    assert by_row == {
        3: ["email"],
        4: ["email"],
        5: ["timezone", "consent", "status"],
        6: ["name"],
        7: ["external_id"],
        8: ["external_id"],
        9: ["confirmed"],
        10: ["first_name"],
        15: ["email"],
        19: ["email"],
        20: ["name"],
        21: [""],
        24: ["email"],
    }
    messages = {(e["row"], e["field"]): e["error"] for e in found["errors"]}
    assert messages[4, "email"] == "duplicate of row 2: ann@example.com (row 2 was used)"
    assert messages[24, "email"] == "duplicate of row 2: ann@example.com (row 2 was used)"
    assert messages[7, "external_id"] == "duplicate of row 2: external_id 'A1'"
    assert messages[8, "external_id"].startswith("external_id 'X1' belongs to contact ")
    assert messages[9, "confirmed"] == "confirmed must be yes/no, true/false or 1/0, not 'perhaps'"
    assert messages[6, "name"] == "name is longer than 300 characters"
    rows = {c[0]: c for c in found["contacts"]}
    # the set, not the id order: on PostgreSQL two chunks are written at once (committed in file
    # order), so a later chunk's contacts may take their ids first
    assert sorted(rows) == sorted(
        [
            "kept@example.com",
            "flips@example.com",
            "gone@example.com",
            "owner@example.com",
            "ann@example.com",
            "erased@example.com",
            "quo@example.com",
            "split@example.com",
            "late@example.com",
        ]
    )
    assert rows["ann@example.com"][1:] == (
        "Ann", "GB", "Europe/London", True, "active", "A1", {"plan": "gold", "age": 34}, False
    )  # fmt: skip
    assert rows["kept@example.com"][1:] == (
        "Kept", "GB", "", True, "active", "K1", {"plan": "platinum"}, False
    )  # fmt: skip
    assert rows["flips@example.com"][4] is False and rows["flips@example.com"][1] == "Flipped"
    assert rows["gone@example.com"][5:6] == ("unsubscribed",) and rows["gone@example.com"][4] is True
    assert rows["quo@example.com"][1:] == (
        "Quo Ted", "IE", "", False, "unsubscribed", "17850", {"plan": "free", "age": 2.5, "note": "tab\there"},
        True,
    )  # fmt: skip
    assert rows["split@example.com"][1:8] == (
        "Sam Split", "NL", "America/New_York", True, "active", None, {"note": "back\\slash"}
    )  # fmt: skip
    assert found["suppressed"] == [("erased@example.com", "erased")]
    steps = {(h[0], h[3]): h for h in found["history"]}
    imported = [h for h in found["history"] if h[3].startswith("test-contacts.csv row ")]
    # BEFORE's four, then FILE's in file order: new contacts and those whose consent changed
    assert [(h[0], h[3].rsplit(" ", 1)[1]) for h in imported[4:]] == [
        ("ann@example.com", "2"),
        ("flips@example.com", "12"),
        ("gone@example.com", "13"),
        ("erased@example.com", "14"),
        ("quo@example.com", "16"),
        ("split@example.com", "18"),
        ("late@example.com", "23"),
    ]
    ann = steps["ann@example.com", "test-contacts.csv row 2"]
    assert ann[1:7] == ("granted", "import", "test-contacts.csv row 2", "203.0.113.9", "", "Send me offers")
    assert ann[7]["confirmed"] is True and ann[7]["consent_source"] == "shop checkout"
    assert (
        ann[7]["file"] == "test-contacts.csv" and ann[7]["row"] == 2 and ann[7]["consent_at"] == "2024-01-02"
    )
    assert steps["flips@example.com", "test-contacts.csv row 12"][1] == "withdrawn"
    assert steps["quo@example.com", "test-contacts.csv row 16"][1] == "withdrawn"
    assert steps["split@example.com", "test-contacts.csv row 18"][7]["confirmed"] is False


def test_every_kind_of_row_on_this_database(factory: sessionmaker[Session]) -> None:
    check(outcome(factory))


def test_postgresql_and_the_portable_path_agree(factory: sessionmaker[Session], tmp_path: Path) -> None:
    with factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("compares PostgreSQL's path with SQLite's: set TEST_DATABASE_URL")
    engine = make_engine(f"sqlite:///{tmp_path / 'portable.db'}")
    Base.metadata.create_all(engine)
    try:
        portable = outcome(make_session_factory(engine))
    finally:
        engine.dispose()
    found = outcome(factory)
    # the owner of X1 has an id of its own database in the message
    for result in (portable, found):
        for error in result["errors"]:
            if error["error"].startswith("external_id 'X1' belongs to contact "):
                error["error"] = "external_id 'X1' belongs to contact <owner>"
    assert found == portable


def test_the_writer_runs_in_the_callers_context(factory: sessionmaker[Session]) -> None:
    """On PostgreSQL chunks are written on a thread of their own: who imports and the (simulated)
    time still reach the rows it writes."""
    moment = datetime(2031, 5, 4, 12, 0, tzinfo=UTC)
    data = "email\n" + "".join(f"p{i}@example.com\n" for i in range(7))
    with acting(Actor("importer@example.com", "ui")), simulated_now(moment):
        run = run_csv(factory, "contacts", data, chunk_rows=2)
    assert (run.status, run.rows_imported) == ("done", 7)
    with factory() as session:
        steps = session.scalars(sa.select(ConsentRecord)).all()
        created = set(session.scalars(sa.select(Contact.created_at)))
    assert {(s.actor, s.at) for s in steps} == {("importer@example.com", moment)}
    assert created == {moment}


@pytest.mark.parametrize("where", ["write", "parse"])
def test_a_chunk_that_fails_fails_the_run_after_the_chunks_before(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The third chunk's write (on PostgreSQL, on a writer thread while the chunk after it may be
    written on another) or its parsing (while the chunks before are being written) raises: the two
    chunks before are committed, none after, the run ends failed with the reason, and the error
    reaches the caller (a job queue records it)."""
    calls = {"parse": 0}
    if where == "write":  # the third chunk (rows f4, f5) fails, whichever lane writes it first
        original_write = contact_copy.write_chunk
        original_portable = ContactImporter._record_consent

        def write_chunk(session: Session, data: str, *args: Any, **kwargs: Any) -> int:
            if "f4@example.com" in data:
                raise RuntimeError("disk full")
            return original_write(session, data, *args, **kwargs)

        def record_consent(self: ContactImporter, session: Session, parsed: Any, *args: Any) -> None:
            if "f4@example.com" in parsed:
                raise RuntimeError("disk full")
            original_portable(self, session, parsed, *args)

        monkeypatch.setattr(contact_copy, "write_chunk", write_chunk)
        monkeypatch.setattr(ContactImporter, "_record_consent", record_consent)
    else:
        original_parse = ContactImporter._parse_chunk

        def parse_chunk(self: ContactImporter, *args: Any) -> Any:
            calls["parse"] += 1
            if calls["parse"] == 3:
                raise RuntimeError("disk full")
            return original_parse(self, *args)

        monkeypatch.setattr(ContactImporter, "_parse_chunk", parse_chunk)
    data = "email\n" + "".join(f"f{i}@example.com\n" for i in range(10))
    with pytest.raises(RuntimeError, match="disk full"):
        run_csv(factory, "contacts", data, chunk_rows=2)
    with factory() as session:
        run = session.scalars(sa.select(ImportRun)).one()
        emails = set(session.scalars(sa.select(Contact.email)))
    assert (run.status, run.rows_imported) == ("failed", 4)
    assert emails == {f"f{i}@example.com" for i in range(4)}
    assert run.errors[-1] == {"row": 0, "field": "", "error": "the import stopped: RuntimeError: disk full"}


def test_a_chunk_written_ahead_is_not_committed_when_the_one_before_fails(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL two chunks are written at once, but they commit in the file's order: the second
    chunk's rows are written while the first is still at work, then the first fails; the second is
    rolled back, so what the run committed is still every chunk before the failure and nothing after."""
    with factory() as session:
        if session.get_bind().dialect.name != "postgresql":
            pytest.skip("chunks are written one at a time elsewhere")
    second_written = threading.Event()
    original_write = contact_copy.write_chunk

    def write_chunk(session: Session, data: str, *args: Any, **kwargs: Any) -> int:
        if "g0@example.com" in data:  # the first chunk waits for the second's rows, then fails
            assert second_written.wait(30), "the second chunk was not written alongside the first"
            raise RuntimeError("disk full")
        written = original_write(session, data, *args, **kwargs)
        if "g2@example.com" in data:
            second_written.set()
        return written

    monkeypatch.setattr(contact_copy, "write_chunk", write_chunk)
    data = "email\n" + "".join(f"g{i}@example.com\n" for i in range(6))
    with pytest.raises(RuntimeError, match="disk full"):
        run_csv(factory, "contacts", data, chunk_rows=2)
    with factory() as session:
        run = session.scalars(sa.select(ImportRun)).one()
        emails = set(session.scalars(sa.select(Contact.email)))
        steps = session.scalar(sa.select(sa.func.count()).select_from(ConsentRecord))
    assert (run.status, run.rows_imported, emails, steps) == ("failed", 0, set(), 0)
