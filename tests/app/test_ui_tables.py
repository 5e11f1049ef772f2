"""List tables: sortable columns (both ways, ties by id), numbered pages, prices in the currency."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import Contact, Item, Role

PASSWORD = "correct horse battery staple"


def viewer(app: Flask) -> FlaskClient:
    with app.test_request_context():
        create_user("v@example.com", PASSWORD, Role.viewer)
        db().commit()
    client = app.test_client()
    client.post("/login", data={"email": "v@example.com", "password": PASSWORD})
    return client


def test_items_sort_by_price_both_ways_and_show_the_currency(app: Flask) -> None:
    with app.app_context():
        db().execute(sa.insert(Item), [{"sku": f"S{i}", "name": f"Item {i:03d}", "price": float((i * 37) % 101)}
                                       for i in range(120)])  # fmt: skip
        db().commit()
    client = viewer(app)
    cheap = client.get("/catalog?sort=price&dir=asc").get_data(as_text=True)
    prices = [float(p.replace(",", "")) for p in re.findall(r'<td class="num">£([\d,.]+)</td>', cheap)]
    assert len(prices) == 50 and prices == sorted(prices) and prices[0] == 0.0
    assert (
        'aria-sort="ascending"' in cheap and "/catalog?sort=price&amp;dir=desc" in cheap
    )  # click again: down
    dear = client.get("/catalog?sort=price&dir=desc").get_data(as_text=True)
    top = [float(p) for p in re.findall(r'<td class="num">£([\d,.]+)</td>', dear)]
    assert top == sorted(top, reverse=True) and top[0] == 100.0
    # pages 1 2 3, the current one marked; a page past the end shows the last one
    assert 'aria-current="page">1<' in cheap and 'aria-label="Page 3"' in cheap
    last = client.get("/catalog?sort=price&dir=asc&page=9").get_data(as_text=True)
    assert 'aria-current="page">3<' in last and len(re.findall(r'<td class="num">£', last)) == 20
    assert client.get("/catalog?sort=nonsense&page=x").status_code == 200  # bad arguments: defaults


def test_contacts_sort_by_email_and_keep_the_filters_across_pages(app: Flask) -> None:
    with app.app_context():
        db().add_all([Contact(email=f"{name}{i}@example.com", country="France" if i % 2 else "Spain")
                      for i, name in enumerate(["zoe", "adam", "mia", "bob"] * 30)])  # fmt: skip
        db().commit()
    client = viewer(app)
    page = client.get("/contacts?sort=email&dir=asc&q=example").get_data(as_text=True)
    emails = re.findall(r">([a-z]+\d+@example\.com)</a>", page)
    assert emails == sorted(emails) and emails[0].startswith("adam")
    assert "page=2" in page and "q=example" in page.split('aria-label="Page 2"')[0].rsplit("href=", 1)[1]
    second = client.get("/contacts?sort=email&dir=asc&q=example&page=3").get_data(as_text=True)
    assert re.findall(r">([a-z]+\d+@example\.com)</a>", second)[-1].startswith("zoe")
