"""The bad-input corpus through the running platform: web (gunicorn), worker pool, scheduler and the
inbound bounce server as `mailramp run` starts them, over HTTP and SMTP. Every input gets a clear 4xx
naming what and where, or is neutralised; no 5xx; nothing is accepted that should not be; then a
small wave still completes (each valid contact sent once, the contact whose attribute is a format
bomb failed alone with its reason, no job failed or left running); and no process's peak memory
(its own VmHWM, children included) reaches 600 MB.

The corpora are the unit tests' own (header breakers, addresses, template bombs, loose numbers,
redirect bypasses, webhook targets); this test sends them through the real processes."""

from __future__ import annotations

import json
import re
import smtplib
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from flask import Flask, url_for
from rq.registry import FailedJobRegistry
from sqlalchemy.orm import Session

from app.auth import create_user, issue_token
from app.extensions import db
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.ops import queues
from models import Campaign, Contact, Role, Send, Suppression, Template, Webhook
from tests.app.running_app import RunningApp, running_app
from tests.app.test_hostile_web import LOOSE_NUMBERS, int_routes
from tests.app.test_safe_redirect import BYPASSES
from tests.campaigns.contacts.test_addresses import REFUSED as REFUSED_ADDRESSES
from tests.campaigns.contacts.test_addresses import SPELLINGS
from tests.campaigns.content.test_render_bombs import BOMBS
from tests.campaigns.ops.test_webhook_targets import REFUSED as REFUSED_TARGETS
from tests.campaigns.ops.test_webhook_targets import SPELLED
from tests.campaigns.sending.reports import dsn
from tests.campaigns.sending.test_esp_webhooks import sendgrid_headers, sendgrid_signer
from tests.campaigns.sending.test_headers import INJECTIONS
from tests.conftest import SmtpSink
from tests.faults.services import wait_while_progressing

PASSWORD = "correct horse battery staple"
MEMORY_LIMIT_MB = 600
VALID = 12  # plain contacts in the wave, beside a@example.com (entered in every odd spelling)
OVERLONG = ["a" * 65 + "@example.com", "b@" + "x" * 250 + ".example.com", "c" * 400 + "@example.com"]
HUGE_NUMBERS = ["9" * 400, "1e999", "-1e999", "Infinity", "-NaN"]
CONTROL = "<p>Hi {{ contact.name }} {{ ('%0' ~ contact.attributes.get('w', 1) ~ 'd')|format(7) }}</p>"


class Corpus:
    """Sends each input and keeps what came back, so one assertion can list every 5xx."""

    def __init__(self, running: RunningApp, token: str) -> None:
        self.base = running.base_url
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {token}"
        self.answers: list[tuple[str, int]] = []

    def keep(self, what: str, response: requests.Response) -> requests.Response:
        self.answers.append((what, response.status_code))
        return response

    def post(self, path: str, body: Any) -> requests.Response:
        return self.keep(f"POST {path} {body!r:.80}", self.api.post(self.base + path, json=body, timeout=60))

    def get(self, session: requests.Session, path: str, **kw: Any) -> requests.Response:
        return self.keep(f"GET {path}", session.get(self.base + path, timeout=60, **kw))

    def refused(self, path: str, body: Any, where: str) -> None:
        """A 400 that names the field, for this input."""
        answer = self.post(path, body)
        assert answer.status_code == 400, (path, body, answer.status_code, answer.text[:300])
        assert answer.json()["where"] == where and answer.json()["error"], (body, answer.json())

    def login(self, email: str, next_path: str | None = None) -> requests.Response:
        browser = requests.Session()
        page = self.get(browser, "/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf, page[:300]
        query = "" if next_path is None else "?" + urllib.parse.urlencode({"next": next_path})
        answer = browser.post(
            self.base + "/login" + query,
            data={"email": email, "password": PASSWORD, "csrf_token": csrf.group(1)},
            allow_redirects=False,
            timeout=60,
        )
        answer.browser = browser  # type: ignore[attr-defined]
        return self.keep(f"POST /login?next={next_path!r}", answer)


def _headers_and_addresses(corpus: Corpus, template_id: int) -> set[str]:
    """Returns the contacts whose header-breaking name was neutralised (stored with spaces): the
    wave sends to them, and their messages must carry no extra header."""
    named = set()
    campaign = {"name": "c", "template_id": template_id, "from_email": "shop@example.com"}
    template = {"name": "t", "subject": "Hi", "layout_html": "{{ content }}", "control_html": "<p>x</p>"}
    for value in INJECTIONS:
        corpus.refused("/api/v1/campaigns", {**campaign, "from_name": value}, "from_name")
        corpus.refused("/api/v1/campaigns", {**campaign, "subject": value}, "subject")
        corpus.refused("/api/v1/templates", {**template, "subject": value}, "subject")
        email = f"named{len(named)}@example.com"
        answer = corpus.post("/api/v1/contacts", {"email": email, "name": value})
        if answer.status_code == 201:  # line breaks and tabs become spaces; nothing else gets in
            assert answer.json()["name"] == " ".join(value.split()) and answer.json()["name"].isprintable()
            named.add(email)
        else:
            assert (answer.status_code, answer.json()["where"]) == (400, "name"), answer.text[:300]
        corpus.refused("/api/v1/signup-forms", {"slug": "s", "name": "S", "wording": "Yes", "confirm_subject": value},
                       "confirm_subject")  # fmt: skip
        corpus.refused(
            "/api/v1/campaigns", {**campaign, "from_email": f"shop@example.com{value[4:]}"}, "from_email"
        )
    for raw, _why in REFUSED_ADDRESSES:
        corpus.refused("/api/v1/contacts", {"email": raw}, "email")
    for raw in OVERLONG:
        corpus.refused("/api/v1/contacts", {"email": raw}, "email")
    assert corpus.post("/api/v1/contacts", {"email": "a@example.com", "name": "A"}).status_code == 201
    for spelling in SPELLINGS:  # one contact whatever the spelling
        assert corpus.post("/api/v1/contacts", {"email": spelling}).status_code == 409, spelling
    return named


def _templates_numbers_and_ids(corpus: Corpus, app: Flask, admin: requests.Session) -> None:
    template = {"name": "t", "subject": "Hi", "layout_html": "{{ content }}"}
    for bomb in BOMBS:
        corpus.refused("/api/v1/templates", {**template, "control_html": bomb}, "control_html")
    value_token = TokenSigner(str(app.config["SECRET_KEY"])).sign(TrackingRef("conversion", 1))
    for value in [*LOOSE_NUMBERS, *HUGE_NUMBERS]:
        answer = corpus.keep(f"/t/v {value!r}", requests.post(f"{corpus.base}/t/v/{value_token}",
                                                              data={"value": value}, timeout=60))  # fmt: skip
        assert answer.status_code == 400 and answer.json()["where"] == "value", (value, answer.text[:200])
    for value in ["1_000", " 5 ", "NaN", "9" * 30, "-1", "1e3"]:
        answer = corpus.get(corpus.api, "/api/v1/contacts", params={"limit": value})
        assert answer.status_code == 400 and answer.json()["where"] == "limit", (value, answer.text[:200])
    for body in ('{"limit": NaN}', '{"limit": 1e400}', '{"limit": 99999999999999999999}', '{"limit": "5"}'):
        answer = corpus.keep(f"wave {body}", corpus.api.post(f"{corpus.base}/api/v1/campaigns/1/waves", data=body,
                                                              headers={"Content-Type": "application/json"}))  # fmt: skip
        assert answer.status_code in (400, 404), (body, answer.status_code, answer.text[:200])
    for id_ in (2**63, 2**64, 10**30):
        for path in ("contacts", "campaigns", "rollouts", "templates", "segments"):
            assert corpus.get(corpus.api, f"/api/v1/{path}/{id_}").status_code == 404, (path, id_)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', corpus.get(admin, "/").text)
    assert csrf
    for endpoint, method, values in int_routes(app):
        with app.test_request_context():
            path = url_for(endpoint, **values)
        answer = corpus.keep(f"{method} {path}", admin.request(method, corpus.base + path, timeout=60,
                                                                  data={"csrf_token": csrf.group(1)}))  # fmt: skip
        assert answer.status_code == 404, (method, path, answer.status_code)


def _redirects_targets_and_reports(corpus: Corpus, running: RunningApp, sendgrid: Any, email: str) -> None:
    host = urllib.parse.urlsplit(running.base_url).netloc
    for target in BYPASSES:
        answer = corpus.login(email, target)
        location = urllib.parse.urlsplit(
            urllib.parse.urljoin(running.base_url + "/", answer.headers["Location"])
        )
        assert answer.status_code == 302 and location.netloc == host, (target, answer.headers["Location"])
    for url in [*REFUSED_TARGETS, *SPELLED, "http://2130706433/hook", "http://0x7f000001/hook"]:
        corpus.refused("/api/v1/webhooks", {"url": url}, "url")
    # ESP reports: forged signature, then a signed report for an address never sent to, then its replay
    body = json.dumps([{"email": "person1@example.com", "event": "bounce", "type": "bounce"}]).encode()
    forged_key, _ = sendgrid_signer()
    path = f"{running.base_url}/api/v1/webhooks/sendgrid"
    content = {"Content-Type": "application/json"}
    for headers, status in (
        (sendgrid_headers(forged_key, body), 401),
        (sendgrid_headers(sendgrid, body), 200),
    ):
        answer = corpus.keep(
            "sendgrid", requests.post(path, data=body, headers={**headers, **content}, timeout=60)
        )
        assert answer.status_code == status, answer.text[:200]
    assert answer.json() == {"accepted": 0, "unmatched": 1}
    answer = corpus.keep("sendgrid replay", requests.post(path, data=body, headers={**headers, **content}))
    assert answer.status_code == 409 and "replay" in answer.json()["error"]
    # A DSN anyone could mail to the bounce domain: no VERP address, nothing of ours quoted
    report = dsn("person1@example.com", "failed", "5.1.1", "550 5.1.1 user unknown", "Subject: x\r\n")
    with smtplib.SMTP("127.0.0.1", running.inbound_port, timeout=60) as smtp:
        smtp.sendmail("", ["postmaster@bounces.example.com"], b"\r\n".join(report.splitlines()) + b"\r\n")
        smtp.sendmail(
            "", ["bounce+1.0123456789abcdef@bounces.example.com"], b"\r\n".join(report.splitlines()) + b"\r\n"
        )


def _nothing_wrongly_accepted(session: Session, named: set[str]) -> None:
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(Webhook)) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(Suppression)) == 0
    assert session.scalars(sa.select(Template.name)).all() == ["Wave"]
    assert session.scalar(sa.select(sa.func.count()).select_from(Campaign)) == 0
    emails = set(session.scalars(sa.select(Contact.email)))
    valid = {f"person{i}@example.com" for i in range(VALID)}
    assert emails == {"a@example.com", "bomb@example.com"} | valid | named
    assert set(session.scalars(sa.select(Contact.status))) == {"active"}


@pytest.mark.timeout(240)
def test_the_bad_input_corpus_through_the_running_platform(
    app: Flask, session: Session, smtp_sink: SmtpSink, redis_url: str, database_url: str,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:  # fmt: skip
    with app.test_request_context():
        create_user("admin@example.com", PASSWORD, Role.admin)
        token = issue_token(create_user("robot@example.com", PASSWORD, Role.admin))
        db().commit()
    sendgrid, public_key = sendgrid_signer()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SMTP_URL": smtp_sink.url,
        "SECRET_KEY": str(app.config["SECRET_KEY"]),
        "MAILRAMP_THROTTLE": '{"enabled": false}',
        "MAILRAMP_BOUNCE_DOMAIN": "bounces.example.com",
        "MAILRAMP_SENDGRID_WEBHOOK_PUBLIC_KEY": public_key,
    }
    with running_app(monkeypatch, tmp_path, env) as running:
        corpus = Corpus(running, token)
        admin = corpus.login("admin@example.com")
        assert admin.status_code == 302, admin.text[:300]
        wave_template = corpus.post("/api/v1/templates", {"name": "Wave", "subject": "Hi {{ contact.name }}",
                                                          "layout_html": "{{ content }}", "control_html": CONTROL})  # fmt: skip
        assert wave_template.status_code == 201, wave_template.text[:300]
        for i in range(VALID):
            assert (
                corpus.post(
                    "/api/v1/contacts", {"email": f"person{i}@example.com", "name": f"P {i}"}
                ).status_code
                == 201
            )
        bomb = {"email": "bomb@example.com", "attributes": {"w": 999999999}}
        assert corpus.post("/api/v1/contacts", bomb).status_code == 201
        named = _headers_and_addresses(corpus, wave_template.json()["id"])
        _templates_numbers_and_ids(corpus, app, admin.browser)  # type: ignore[attr-defined]
        _redirects_targets_and_reports(corpus, running, sendgrid, "admin@example.com")
        assert [a for a in corpus.answers if a[1] >= 500] == [], running.log_tail()
        _nothing_wrongly_accepted(session, named)

        # a small wave still completes: each valid contact once, the bomb contact failed alone
        campaign = corpus.post("/api/v1/campaigns", {"name": "Wave", "template_id": wave_template.json()["id"],
                                                     "from_email": "shop@example.com", "from_name": "Shop"})  # fmt: skip
        assert campaign.status_code == 201, campaign.text[:300]
        assert corpus.post(f"/api/v1/campaigns/{campaign.json()['id']}/waves", {}).status_code == 202

        def open_rows() -> dict[str, int]:
            session.expire_all()
            n = session.scalar(sa.select(sa.func.count()).where(Send.state.in_(("queued", "sending"))))
            return {"ledger rows not sent or failed": int(n or 0)}

        wait_while_progressing(open_rows, 60, 150, "the wave to finish")
        states = dict(
            session.execute(
                sa.select(Contact.email, Send.state).join(Contact, Contact.id == Send.contact_id)
            ).all()
        )
        assert states.pop("bomb@example.com") == "failed"
        assert set(states.values()) == {"sent"} and len(states) == VALID + 1 + len(named)
        error = session.scalar(
            sa.select(Send.error)
            .join(Contact, Contact.id == Send.contact_id)
            .where(Contact.email == "bomb@example.com")
        )
        assert error and "template" in error.lower(), error
        received = Counter(r for _, rcpts in smtp_sink.envelopes for r in rcpts)
        assert received == Counter(states.keys()), received  # every valid contact exactly once
        for message in smtp_sink.messages:
            assert "bcc" not in {k.lower() for k in message} and "X-Injected" not in message
        rt = app.extensions["mailramp"]
        for queue in queues.all_queues(rt):
            assert FailedJobRegistry(queue=queue).count == 0, queue.name
        assert queues.queue(rt, queues.SENDING).count == 0
        assert running.alive(), running.log_tail()
        log = running.log.read_text(errors="replace")
        assert "Traceback" not in log and "WORKER TIMEOUT" not in log, running.log_tail(200)
        peaks = running.memory.stop()
    print(
        "\n"
        + json.dumps({"peak_mb": peaks, "inputs": len(corpus.answers), "commands": running.memory.commands})
    )
    assert len(peaks) >= 6, peaks  # gunicorn and its 2 workers, the pool and its 2, scheduler, inbound
    assert max(peaks.values()) < MEMORY_LIMIT_MB, peaks
