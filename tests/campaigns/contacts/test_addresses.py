"""The address door (campaigns.contacts.addresses): one check with email-validator, and one
normal form (NFKC, invisible characters removed, lower case, IDNA domains) before uniqueness, in
the import, the API and every other way in."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from campaigns.contacts.addresses import normalize_email
from campaigns.errors import InputError
from models import Contact
from tests.campaigns.data_fixtures import factory, run_csv

__all__ = ["factory"]

FULL_WIDTH = "ａ＠ｅｘａｍｐｌｅ．ｃｏｍ"  # noqa: RUF001 - the point of the test


# spellings of a@example.com
SPELLINGS = ["a\u200b@example.com", "\ufeffa@example.com", "a@exam\u00adple.com", "a\u2060@example.com", FULL_WIDTH,
             "A@EXAMPLE.COM", "a@example.com\u200d"]  # fmt: skip
REFUSED = [
    ("ünï@example.com", "internationalized addresses (non-ASCII before the @) are not accepted"),
    ("a@foo.local", "special-use or reserved name"),
    ("a@localhost", "It should have a period"),
    ('"quoted"@example.com', "Quoting the part before the @-sign is not allowed"),
    ("a@[192.0.2.1]", "not an email address"),
    ("a..b@example.com", "two periods in a row"),
]


@pytest.mark.parametrize("raw", SPELLINGS)
def test_spellings_of_one_address_are_one_address(raw: str) -> None:
    assert normalize_email(raw) == "a@example.com"


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_addresses_refused_at_the_door_say_why(raw: str, why: str) -> None:
    with pytest.raises(InputError) as info:
        normalize_email(raw)
    assert info.value.where == "email"
    assert why in info.value.message


def test_the_import_refuses_internationalized_addresses_by_line_and_merges_spellings(
    factory: sessionmaker[Session],
) -> None:
    csv = f"email,name\na@example.com,A\nünï@example.com,U\na\u200b@example.com,A2\n{FULL_WIDTH},A3\n"
    run = run_csv(factory, "contacts", csv)
    errors = [(e["row"], e["field"], e["error"]) for e in run.errors]
    assert [row_field for *row_field, _ in errors] == [[3, "email"], [4, "email"], [5, "email"]]
    assert "non-ASCII before the @" in errors[0][2]
    assert errors[1][2] == errors[2][2] == "duplicate of row 2: a@example.com (row 2 was used)"
    with factory() as session:
        assert session.scalars(sa.select(Contact.email)).all() == ["a@example.com"]


def test_the_api_treats_invisible_and_full_width_spellings_as_the_same_contact(api: Any) -> None:
    assert api.post("/api/v1/contacts", json={"email": "a@example.com"}).status_code == 201
    for spelling in ("a\u200b@example.com", FULL_WIDTH):
        assert api.post("/api/v1/contacts", json={"email": spelling}).status_code == 409
    bad = api.post("/api/v1/contacts", json={"email": "ünï@example.com"})
    assert (bad.status_code, bad.json["where"]) == (400, "email")
    assert "non-ASCII" in bad.json["error"]
