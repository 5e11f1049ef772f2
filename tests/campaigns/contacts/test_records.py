"""Contacts: address normalization, the CSV import (every kind of bad row, upserts, chunks, jobs),
the suppression list."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from redis import Redis
from rq import SimpleWorker
from sqlalchemy.orm import Session, sessionmaker

from campaigns.contacts import addresses, suppression
from campaigns.contacts import records as contacts
from campaigns.errors import InputError, NotFound, StateError
from campaigns.imports import runs as imports
from campaigns.imports.stream import SeenKeys, count_lines, start_run
from campaigns.ops.queues import all_queues
from models import Contact, ImportRun, Suppression
from tests.campaigns.data_fixtures import errors_by_row, factory, run_csv

__all__ = ["factory"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Foo.Bar@Example.COM ", "foo.bar@example.com"),
        ("mailto:Q@X.io", "q@x.io"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("user@münchen.de", "user@xn--mnchen-3ya.de"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("customer-12345@demo.mailramp.test", "customer-12345@demo.mailramp.test"),
        ("x@example.com.", "x@example.com"),
    ],
)
def test_normalize_email(raw: str, expected: str) -> None:
    assert contacts.normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "plain", "@example.com", "a@", "a@b", "a b@example.com", "a..b@example.com", ".a@example.com",
     "a@-example.com", "a@example..com", "a@exa_mple.com", "a@example.c", "a@@example.com", "x" * 65 + "@e.com",
     "a@" + "b" * 250 + ".com"],
)  # fmt: skip
def test_normalize_email_rejects(raw: str) -> None:
    with pytest.raises(InputError) as info:
        contacts.normalize_email(raw)
    assert info.value.where == "email"


GOOD_AND_BAD = (
    b"Email,Name,Country,Timezone,Consent,Plan,Age,Zip\n"
    b"ann@example.com,Ann,GB,Europe/London,yes,gold,34,01234\n"  # 2 good
    b"not-an-email,Bob,,,,,,\n"  # 3 invalid email
    b"ANN@example.com,Ann again,,,,,,\n"  # 4 duplicate of row 2
    b"cy@example.com,Cy,FR,Mars/Base,maybe,,,\n"  # 5 bad timezone and bad consent
) + (
    b"dee@example.com,D\xe9,FR,,,,,\n"  # 6 bad encoding in name
    b"eve@example.com,Eve\n"  # 7 missing columns
    b'"fay@example.com","Fay\nSmith",DE,,no,silver,2.5,\n'  # 8-9 quoted newline: good
    b"gus@example.com,Gus,US,America/New_York,1,,,\n"  # 10 good
)


def test_import_reports_every_bad_row_and_imports_the_good(factory: sessionmaker[Session]) -> None:
    run = run_csv(factory, "contacts", GOOD_AND_BAD, chunk_rows=3)
    assert (run.status, run.rows_total, run.rows_imported, run.rows_failed) == ("done", 8, 3, 5)
    found = errors_by_row(run)
    assert found == {3: ["email"], 4: ["email"], 5: ["timezone", "consent"], 6: ["name"], 7: ["country"]}
    messages = {(e["row"], e["field"]): e["error"] for e in run.errors}
    assert "not an email address" in messages[3, "email"]
    assert "duplicate of row 2" in messages[4, "email"]
    assert "Mars/Base" in messages[5, "timezone"]
    assert "not valid UTF-8 (byte 0xe9" in messages[6, "name"]
    assert "missing: country" in messages[7, "country"]
    with factory() as session:
        rows = {c.email: c for c in session.scalars(sa.select(Contact))}
    assert set(rows) == {"ann@example.com", "fay@example.com", "gus@example.com"}
    ann, fay, gus = rows["ann@example.com"], rows["fay@example.com"], rows["gus@example.com"]
    assert (ann.name, ann.country, ann.timezone, ann.consent) == ("Ann", "GB", "Europe/London", True)
    assert ann.attributes == {"plan": "gold", "age": 34, "zip": "01234"}
    assert (fay.name, fay.consent, fay.attributes) == ("Fay Smith", False, {"plan": "silver", "age": 2.5})
    assert (gus.timezone, gus.attributes) == ("America/New_York", {})


def test_the_wrong_number_of_values_is_reported(factory: sessionmaker[Session]) -> None:
    run = run_csv(factory, "contacts", "email,name\na@example.com,A,extra\nb@example.com,B\n")
    assert (run.rows_imported, run.rows_failed) == (1, 1)
    assert "3 values, the header has 2" in run.errors[0]["error"]


def test_missing_required_column_fails_the_run(factory: sessionmaker[Session]) -> None:
    run = run_csv(factory, "contacts", "name,country\nAnn,GB\n")
    assert (run.status, run.rows_imported) == ("failed", 0)
    assert run.errors == [
        {"row": 1, "field": "email", "error": "missing required column email (the header has: name, country)"}
    ]


def test_empty_file_and_duplicate_header(factory: sessionmaker[Session]) -> None:
    assert run_csv(factory, "contacts", "").errors[0]["field"] == "header"
    run = run_csv(factory, "contacts", "email,Name,NAME\na@example.com,x,y\n")
    assert run.status == "failed"
    assert "appears twice" in run.errors[0]["error"]


def test_upsert_merges_and_unsubscribes_stick(factory: sessionmaker[Session]) -> None:
    run_csv(factory, "contacts", "email,name,country,plan,status\na@example.com,Ann,GB,gold,unsubscribed\n")
    run_csv(factory, "contacts", "email,name,country,plan,status\nb@example.com,Bob,FR,,active\n")
    second = run_csv(
        factory,
        "contacts",
        "E-mail Address;First Name;Last Name;tier;Status\n"
        " A@Example.com ;Anna;Smith;1;active\n"
        "b@example.com;;;2;bounced\n",
    )
    assert (second.rows_imported, second.rows_failed) == (2, 0)
    with factory() as session:
        rows = {c.email: c for c in session.scalars(sa.select(Contact))}
    a, b = rows["a@example.com"], rows["b@example.com"]
    assert (a.name, a.country, a.status) == ("Anna Smith", "GB", "unsubscribed")  # no resubscribe by import
    assert a.attributes == {"plan": "gold", "tier": 1}
    assert a.unsubscribed_at is not None
    assert (b.name, b.status, b.attributes) == ("Bob", "bounced", {"tier": 2})
    assert len(rows) == 2


def test_external_ids_are_unique_per_contact(factory: sessionmaker[Session]) -> None:
    run_csv(factory, "contacts", "email,customer_id\na@example.com,17850\n")
    run = run_csv(
        factory, "contacts", "email,CustomerID\nb@example.com,17850.0\nc@example.com,99\nd@example.com,99\n"
    )
    assert errors_by_row(run) == {2: ["external_id"], 4: ["external_id"]}
    assert "belongs to contact" in run.errors[0]["error"]
    assert "duplicate of row 3" in run.errors[1]["error"]
    assert run.rows_imported == 1


def test_progress_is_committed_chunk_by_chunk(factory: sessionmaker[Session]) -> None:
    lines = ["email,name"] + [f"user{i}@example.com,User {i}" for i in range(25)] + ["bad,x"] * 3
    run = run_csv(factory, "contacts", "\n".join(lines) + "\n", chunk_rows=10)
    assert (run.rows_total, run.rows_imported, run.rows_failed, run.status) == (28, 25, 3, "done")
    assert [e["row"] for e in run.errors] == [27, 28, 29]
    with factory() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 25


def test_error_list_is_capped_but_counted(factory: sessionmaker[Session]) -> None:
    run = run_csv(factory, "contacts", "email\n" + "bad\n" * 12 + "ok@example.com\n", max_errors=5)
    assert (run.rows_failed, len(run.errors), run.rows_imported) == (12, 5, 1)
    assert [e["row"] for e in run.errors] == [2, 3, 4, 5, 6]


def test_other_encodings_and_gzip(factory: sessionmaker[Session], tmp_path: Path) -> None:
    latin = "email,name\nzoe@example.com,Zoé\n".encode("latin-1")
    assert run_csv(factory, "contacts", latin).rows_failed == 1
    assert run_csv(factory, "contacts", latin, encoding="latin-1").rows_imported == 1
    path = tmp_path / "contacts.csv.gz"
    path.write_bytes(gzip.compress(b"\xef\xbb\xbfemail,name\nyan@example.com,Yan\n"))  # BOM too
    assert count_lines(path) == 2
    with factory() as session:
        run_id = start_run(session, "contacts", path.name, "t").id
        session.commit()
    run = imports.import_file(factory, run_id, path, "contacts")
    assert (run.rows_imported, run.rows_failed) == (1, 0)
    with factory() as session:
        assert session.scalar(sa.select(Contact.name).where(Contact.email == "zoe@example.com")) == "Zoé"


def test_seen_keys_across_merges() -> None:
    seen = SeenKeys(merge_every=3)
    assert [seen.first_row(f"k{i}", i) for i in range(10)] == [None] * 10
    assert [seen.first_row(f"k{i}", 100 + i) for i in range(10)] == list(range(10))
    batch = SeenKeys(merge_every=3)  # the batch form: older keys, recent keys and repeats in the batch
    assert batch.first_rows([f"k{i}" for i in range(5)], list(range(5))) == [None] * 5
    assert batch.first_rows(["k0", "k4", "k9", "k9", "k5"], [10, 11, 12, 13, 14]) == [0, 4, None, 12, None]
    assert batch.first_rows(["k9", "k5", "k1"], [20, 21, 22]) == [12, 14, 1]


def test_big_import_runs_as_an_rq_job(app: Flask, redis: Redis, tmp_path: Path) -> None:
    rt = app.extensions["mailramp"]
    data = "email,name\n" + "".join(f"job{i}@example.com,Job {i}\n" for i in range(50)) + "nope,x\n"
    with rt.session() as session:
        source = tmp_path / "upload.csv"
        source.write_text(data)
        with open(source, "rb") as stream:
            run, path, size = imports.save_upload(
                session, rt.settings.instance_path, "contacts", "u.csv", stream, "t"
            )
        run_id = run.id
    assert size == len(data) and path.exists()
    job_id = imports.enqueue_import(rt, run_id, path, "contacts")
    assert job_id == f"import-{run_id}"
    # the upload left this host: the job reads it from the store every host shares
    assert not path.exists()
    stored = rt.blobs().stat(imports.upload_key(run_id))
    assert stored is not None and stored.size == len(data)
    with rt.session() as session:
        assert session.get(ImportRun, run_id).status == "queued"
    SimpleWorker(all_queues(rt), connection=redis).work(burst=True)
    with rt.session() as session:
        run = session.get(ImportRun, run_id)
        assert (run.status, run.rows_imported, run.rows_failed, run.rows_total) == ("done", 50, 1, 51)
    assert rt.blobs().stat(imports.upload_key(run_id)) is None


def test_contact_crud(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        c = contacts.create_contact(
            session, {"email": "New@Example.com", "name": " New  Person ", "attributes": {"a": 1}}
        )
        assert (c.email, c.name, c.timezone, c.status) == ("new@example.com", "New Person", "UTC", "active")
        with pytest.raises(StateError):
            contacts.create_contact(session, {"email": "new@example.com"})
        with pytest.raises(InputError) as info:
            contacts.create_contact(session, {"email": "x@example.com", "timezone": "Nowhere/Place"})
        assert info.value.where == "timezone"
        with pytest.raises(InputError) as info:
            contacts.create_contact(session, {"email": "x@example.com", "shoe": 42})
        assert info.value.where == "shoe"
        updated = contacts.update_contact(
            session, c.id, {"attributes": {"a": None, "b": "x"}, "status": "unsubscribed"}
        )
        assert updated.attributes == {"b": "x"} and updated.unsubscribed_at is not None
        contacts.delete_contact(session, c.id, suppress=True)
        assert suppression.is_suppressed(session, "NEW@example.com")
        with pytest.raises(NotFound):
            contacts.get_contact(session, c.id)


def test_search_pages_by_keyset(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        for i in range(7):
            contacts.create_contact(
                session, {"email": f"p{i}@example.com", "name": "Pat 100%" if i == 3 else f"P {i}"}
            )
        session.commit()
        first = contacts.search_contacts(session, limit=3)
        assert first.total == 7 and len(first.contacts) == 3 and first.next_after == first.contacts[-1].id
        last = contacts.search_contacts(session, limit=3, after=first.contacts[-1].id + 3)
        assert len(last.contacts) == 1 and last.next_after is None
        assert [c.email for c in contacts.search_contacts(session, query="100%").contacts] == [
            "p3@example.com"
        ]
        assert contacts.search_contacts(session, query="P5@").total == 1


def test_suppression_list_and_import(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        row, created = suppression.add_suppression(session, " Spam@Example.com ", "complaint")
        assert (row.email, created) == ("spam@example.com", True)
        assert suppression.add_suppression(session, "spam@example.com")[1] is False
        session.commit()
    run = run_csv(
        factory,
        "suppressions",
        "email,reason\nspam@example.com,\nnew@example.com,bounce\nbad,\nnew@example.com,\nx@example.com,why\n",
    )
    assert (run.rows_imported, run.rows_skipped, run.rows_failed) == (1, 2, 2)
    assert errors_by_row(run) == {4: ["email"], 6: ["reason"]}
    with factory() as session:
        page = suppression.list_suppressions(session, query="example")
        assert [r.email for r in page.rows] == ["spam@example.com", "new@example.com"]
        suppression.remove_suppression(session, "SPAM@example.com")
        with pytest.raises(NotFound):
            suppression.remove_suppression(session, "spam@example.com")
        session.commit()
        assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 1


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="aZ09.-_+@'!xn-é", min_size=1, max_size=40).map(lambda s: s + ".com"))
def test_the_email_fast_path_agrees_with_the_full_check(raw: str) -> None:
    """The fast path for plain addresses returns what the full check returns, and refuses nothing."""
    try:
        expected: str | None = addresses.normalize_email_fully(raw)
    except InputError:
        expected = None
    try:
        got: str | None = contacts.normalize_email(raw)
    except InputError:
        got = None
    assert got == expected


def test_a_blank_time_zone_is_stored_unset_so_the_workspace_default_applies(
    factory: sessionmaker[Session],
) -> None:
    from zoneinfo import ZoneInfo

    from campaigns.sending.local_time import zone

    run = run_csv(factory, "contacts", "email,name,timezone\na@example.com,A,\nb@example.com,B,Asia/Tokyo\n")
    assert (run.rows_imported, run.rows_failed) == (2, 0)
    with factory() as session:
        zones = dict(session.execute(sa.select(Contact.email, Contact.timezone)).all())
    assert zones == {"a@example.com": "", "b@example.com": "Asia/Tokyo"}
    paris = ZoneInfo("Europe/Paris")
    assert (
        zone(zones["a@example.com"], paris) is paris
        and zone(zones["b@example.com"], paris).key == "Asia/Tokyo"
    )
