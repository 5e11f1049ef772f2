"""Templates in the UI: a syntax error names the part and line and keeps the text; the preview shows
control and AI side by side for a chosen contact; the catalog lists items."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.auth import create_user
from app.extensions import db
from models import Contact, Item, Role, Template

PASSWORD = "correct horse battery staple"
GOOD = {
    "name": "Weekly",
    "subject": "Hello {{ contact.first_name }}",
    "layout_html": "<html><body>{{ content }}</body></html>",
    "control_html": "<p>Best sellers</p>",
    "ai_html": "{% for item in recommendations %}<p>{{ item.name }}</p>{% endfor %}",
}


@pytest.fixture()
def marketer(app: Flask, client: FlaskClient) -> FlaskClient:
    with app.test_request_context():
        create_user("m@example.com", PASSWORD, Role.marketer)
        db().add(Contact(email="zoe@example.com", name="Zoe Quinn", country="France"))
        db().add(Item(sku="A1", name="Blue mug", category="Kitchen", price=4.5))
        db().commit()
    client.post("/login", data={"email": "m@example.com", "password": PASSWORD})
    return client


def test_syntax_error_names_the_line_and_keeps_the_text(app: Flask, marketer: FlaskClient) -> None:
    broken = {**GOOD, "ai_html": "<ul>\n{% for item in recommendations %}\n<li>{{ item.name }</li>\n"}
    page = marketer.post("/templates/new", data=broken)
    text = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "ai_html, line 3" in text
    assert 'id="f-ai_html-error"' in text and 'aria-invalid="true"' in text
    assert "{{ item.name }&lt;/li&gt;" in text  # what the marketer typed is still there
    with app.app_context():
        assert db().query(Template).count() == 0


def test_save_then_preview_side_by_side(app: Flask, marketer: FlaskClient) -> None:
    saved = marketer.post("/templates/new", data=GOOD)
    assert saved.status_code == 302
    preview_url = saved.headers["Location"]
    page = marketer.get(preview_url + "?contact=ZOE@example.com").get_data(as_text=True)
    assert "Showing zoe@example.com" in page
    assert page.count("<iframe") == 2
    assert "Hello Zoe" in page
    template_id = preview_url.rstrip("/").split("/")[-2]
    control = marketer.get(f"/templates/{template_id}/preview/control.html?contact=zoe@example.com")
    assert "<p>Best sellers</p>" in control.get_data(as_text=True)
    assert "sandbox" in control.headers["Content-Security-Policy"]
    sample = marketer.get(f"/templates/{template_id}/preview/ai.html").get_data(as_text=True)
    assert "Sample item 1" in sample


def test_catalog_lists_and_excludes_items(app: Flask, marketer: FlaskClient) -> None:
    page = marketer.get("/catalog?category=Kitchen").get_data(as_text=True)
    assert "Blue mug" in page
    with app.app_context():
        item_id = db().query(Item).one().id
    marketer.post(f"/catalog/{item_id}/enabled", data={"enabled": "0"})
    with app.app_context():
        assert db().get(Item, item_id).enabled is False  # type: ignore[union-attr]


def test_lists_show_the_subject_rendered_not_its_jinja(app: Flask, marketer: FlaskClient) -> None:
    from tests.factories import add_campaign

    assert marketer.post("/templates/new", data=GOOD).status_code == 302
    broken = {**GOOD, "name": "Odd", "subject": "{{ contact.first_name|upper }} {% if %}"}  # refused on save
    assert marketer.post("/templates/new", data=broken).status_code == 400
    listing = marketer.get("/templates").get_data(as_text=True)
    assert "<td>Hello Sample</td>" in listing and "{{ contact.first_name }}" not in listing
    with app.app_context():
        template = db().query(Template).one()
        campaign = add_campaign(db(), template.id)
    page = marketer.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Hello Sample" in page and "for a sample contact" in page
    from campaigns.content.templates import sample_subject

    with app.app_context():
        assert sample_subject("{% for i in range(10**9) %}x{% endfor %}").startswith(
            "{% for"
        )  # over the limit
        assert sample_subject("{{ broken") == "{{ broken"
        assert sample_subject("Plain") == "Plain"


def test_every_field_error_at_once(app: Flask, marketer: FlaskClient) -> None:
    broken = {**GOOD, "name": "", "subject": "Hi {{ contact.first_name", "layout_html": "<html></html>",
              "ai_html": "{% for item in recommendations %}"}  # fmt: skip
    page = marketer.post("/templates/new", data=broken)
    text = page.get_data(as_text=True)
    assert page.status_code == 400 and "4 problems to fix" in text
    for field in ("name", "subject", "layout_html", "ai_html"):
        assert f'id="f-{field}-error"' in text, field
    assert 'id="f-control_html-error"' not in text
    with app.app_context():
        assert db().query(Template).count() == 0
