"""Header injection: every header built from data passes campaigns.sending.headers, refused at the
door (400 naming the field) and neutralised in the builder whatever reached the database."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.events.tokens import TokenSigner
from campaigns.sending import headers
from campaigns.sending.message import MessageBuilder
from tests.factories import add_template

BREAKERS = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029", "\t", "\x7f"]
INJECTIONS = [f"Shop{b}Bcc: someone@elsewhere.example" for b in BREAKERS] + ["Shop\nX-Injected: 1"]
CAMPAIGN_HEADERS = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "x-mailramp-campaign",
    "x-mailramp-test",
    "mime-version",
    "content-type",
}


def builder(from_name: str = "The Shop") -> MessageBuilder:
    return MessageBuilder(
        signer=TokenSigner("k"),
        base_url="https://mail.example.com",
        campaign_id=7,
        from_email="shop@example.com",
        from_name=from_name,
        link_ids={},
        message_id_key="k",
        unsubscribe_mailto=lambda send_id: f"unsubscribe+{send_id}.0123456789abcdef@example.com",
    )


def parse(data: bytes) -> EmailMessage:
    msg = message_from_bytes(data, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def header_names(data: bytes) -> set[str]:
    return {k.lower() for k in parse(data)}


def assert_crlf_only(data: bytes) -> None:
    assert re.search(rb"(?<!\r)\n", data) is None, "a bare LF"
    assert re.search(rb"\r(?!\n)", data) is None, "a bare CR"


@pytest.mark.parametrize("value", INJECTIONS)
def test_the_door_refuses_line_breaks_and_control_characters(value: str) -> None:
    with pytest.raises(Exception) as caught:
        headers.check_text(value, "from_name")
    assert getattr(caught.value, "where", "") == "from_name"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    from_name=st.text(max_size=120),
    subject=st.text(max_size=300),
    name=st.text(max_size=120),
    test_arm=st.text(max_size=60),
)
def test_fuzzed_header_fields_never_add_a_header(
    from_name: str, subject: str, name: str, test_arm: str
) -> None:
    """Whatever reached the database (the door bypassed), the builder's output has exactly the
    campaign's headers, each value free of line breaks, with CRLF line ends only."""
    b = builder(from_name + "\r\nBcc: a@evil.example")
    message = b.build(
        send_id=1,
        contact_id=2,
        email="person@example.com",
        name=name + "\nX-Injected: 1",
        subject=subject + "\r\nX-Injected: 1",
        html="<html><body><p>Hi</p></body></html>",
        item_by_url={},
        extra_headers=(("X-Mailramp-Test", test_arm + "\nX-Injected: 1"),),
    )
    assert header_names(message.data) == CAMPAIGN_HEADERS
    assert_crlf_only(message.data)
    parsed = parse(message.data)
    assert not parsed.defects and "\n" not in str(parsed["Subject"]) and "\r" not in str(parsed["From"])
    assert parsed["To"].addresses[0].addr_spec == "person@example.com"
    assert parsed["From"].addresses[0].addr_spec == "shop@example.com"


@pytest.mark.parametrize("value", INJECTIONS)
def test_each_known_injection_is_neutralised_in_the_builder(value: str) -> None:
    message = builder(value).build(
        send_id=1,
        contact_id=2,
        email="p@example.com",
        name=value,
        subject=value,
        html="<p>x</p>",
        item_by_url={},
    )
    assert header_names(message.data) == CAMPAIGN_HEADERS - {"x-mailramp-test"}
    assert b"\r\nBcc:" not in message.data and b"\r\nX-Injected" not in message.data


def test_an_address_or_header_name_that_could_break_out_is_refused() -> None:
    with pytest.raises(headers.HeaderError):
        headers.address("x", "a@example.com\r\nBcc: b@example.com")
    with pytest.raises(headers.HeaderError):
        headers.line("X-Bad\r\nBcc", "1")
    with pytest.raises(headers.HeaderError):
        headers.line("X-Bad: 1", "1")


def test_long_non_ascii_subjects_fold_with_crlf() -> None:
    subject = "Les meilleures idées de la semaine pour vous, chère Zoë — 🌿 " * 4
    message = builder("Boutique Éloïse").build(
        send_id=1,
        contact_id=2,
        email="p@example.com",
        name="Zoë",
        subject=subject,
        html="<p>x</p>",
        item_by_url={},
    )
    assert_crlf_only(message.data)
    head = message.data.split(b"\r\n\r\n", 1)[0]
    assert b"\r\n " in head  # folded
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert str(parse(message.data)["Subject"]) == subject.strip()


@pytest.mark.parametrize(
    "html",
    [
        "<html><body><p>Hi</p></body></html>",
        "<html><p>Hi</p></html>",
        "<p>Hi</p>",
        "<HTML><BODY class='x'><p>Hi</p></BODY></HTML>\n",
    ],
)
def test_the_unsubscribe_footer_lands_inside_the_html_body(html: str) -> None:
    message = builder().build(
        send_id=1, contact_id=2, email="p@example.com", name="", subject="s", html=html, item_by_url={}
    )
    body = parse(message.data).get_body(("html",)).get_content()  # type: ignore[union-attr]
    footer = body.index(">Unsubscribe</a>")
    end = body.lower().rfind("</body>")
    end = end if end >= 0 else body.lower().rfind("</html>")
    assert end < 0 or footer < end


def test_list_unsubscribe_has_the_one_click_url_and_a_mailto() -> None:
    message = builder().build(
        send_id=5, contact_id=2, email="p@example.com", name="", subject="s", html="<p>x</p>", item_by_url={}
    )
    value = str(parse(message.data)["List-Unsubscribe"])
    urls = re.findall(r"<([^>]+)>", value)
    assert urls[0].startswith("https://mail.example.com/t/u/")
    assert urls[1].startswith("mailto:unsubscribe+5.") and "@example.com" in urls[1]


BAD = "Shop\r\nBcc: someone@elsewhere.example"


def test_campaigns_with_a_header_breaking_from_name_or_subject_get_a_400_naming_the_field(
    app: Any, session: Any, api: Any
) -> None:
    template = add_template(session)
    base = {"name": "c", "template_id": template.id, "from_email": "shop@example.com"}
    for field, value in (("from_name", BAD), ("from_name", "Shop\nX-Injected: 1"), ("subject", BAD)):
        answer = api.post("/api/v1/campaigns", json={**base, field: value})
        assert answer.status_code == 400 and answer.json["where"] == field, answer.json
    assert api.post("/api/v1/campaigns", json={**base, "from_name": "Shop — Éloïse"}).status_code == 201


def test_templates_contacts_and_signup_forms_refuse_header_breaking_values(
    app: Any, session: Any, api: Any
) -> None:
    template = {
        "name": "t",
        "subject": "Hi\r\nBcc: a@evil.example",
        "layout_html": "{{ content }}",
        "control_html": "<p>x</p>",
        "ai_html": "<p>y</p>",
    }
    answer = api.post("/api/v1/templates", json=template)
    assert answer.status_code == 400 and answer.json["where"] == "subject", answer.json
    answer = api.post("/api/v1/contacts", json={"email": "a@example.com", "name": "A\x00Bcc: b@evil.example"})
    assert answer.status_code == 400 and answer.json["where"] == "name", answer.json
    answer = api.post(
        "/api/v1/signup-forms",
        json={
            "slug": "news",
            "name": "News",
            "wording": "Yes",
            "confirm_subject": "Confirm\nBcc: x@evil.example",
        },
    )
    assert answer.status_code == 400 and answer.json["where"] == "confirm_subject", answer.json
