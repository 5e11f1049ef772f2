"""A person's data end to end: contacts imported with consent evidence, a real wave through a real
SMTP server, an unsubscribe and a complaint ingested; then the consent history, the export, and an
erasure that leaves the address and the contact id in no table (every table checked through the
metadata) and in no Redis key, with campaign results unchanged and a re-import suppressed."""

from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa
from flask import Flask
from redis import Redis
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.events.tracking import STREAM, RawEvent, push
from campaigns.jobs import start_wave
from campaigns.reports.results import campaign_results
from campaigns.runtime import Runtime
from campaigns.sending.send import send_batch
from models import (
    Base,
    Contact,
    Interaction,
    Item,
    ModelVersion,
    Recommendation,
    Send,
    ShadowRender,
    Suppression,
)
from tests.conftest import ApiClient, SmtpSink
from tests.factories import add_campaign, add_template

ANN, BOB = "ann@example.com", "bob@example.com"
CSV = (
    "email,name,consent,consent_at,consent_source,consent_ip,consent_wording,confirmed,plan\n"
    f"{ANN},Ann Smith,yes,2026-01-05T10:00:00Z,shop checkout,203.0.113.9,Send me offers,yes,pro\n"
    f"{BOB},Bob Jones,yes,,,,,,free\n"
    f"{ANN.upper()},Ann Again,yes,,,,,,free\n"  # a duplicate: its error quotes the address
)
HUMAN_UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120 Safari/537.36"


def world(app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink) -> dict[str, Any]:
    rt: Runtime = app.extensions["mailramp"]
    imported = api.post("/api/v1/contacts/import", data=CSV.encode(), headers={"Content-Type": "text/csv"})
    assert imported.status_code in (200, 201, 202), imported.json
    ids = dict(session.execute(sa.select(Contact.email, Contact.id)).all())
    ann, bob = ids[ANN], ids[BOB]
    campaign = add_campaign(session, add_template(session).id)
    wave = start_wave(rt, campaign.id, None)
    send_batch(rt, campaign.id, wave["wave_id"], 0)
    assert len(smtp_sink.messages) == 2
    sends = dict(session.execute(sa.select(Send.contact_id, Send.id)).all())
    by_to = {m["To"].addresses[0].addr_spec: m for m in smtp_sink.messages}
    unsubscribe = (
        by_to[ANN]["List-Unsubscribe"].split(",")[0].strip("<>").removeprefix("http://mailramp.test")
    )
    client = app.test_client()
    html = by_to[ANN].get_body(("html",)).get_content()
    click = next(u for u in re.findall(r'href="([^"]+)"', html) if "/t/c/" in u)
    assert (
        client.get(click.removeprefix("http://mailramp.test"), headers={"User-Agent": HUMAN_UA}).status_code
        == 302
    )
    assert client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 204
    assert api.post("/api/v1/events", json={"kind": "complaint", "send_id": sends[bob]}).status_code in (
        200,
        202,
    )
    ingest(rt)
    # what the recommender and the shadow path leave behind
    item = Item(sku="85123A", name="White hanging heart")
    model = ModelVersion(name="m1", kind="blend")
    session.add_all([item, model])
    session.flush()
    session.add_all(
        [
            Interaction(contact_id=ann, item_id=item.id, kind="purchase", value=2.55),
            Recommendation(
                model_version_id=model.id,
                contact_id=ann,
                items=[{"item_id": item.id, "score": 0.9, "reason": "because you bought it"}],
            ),
            ShadowRender(send_id=sends[ann], item_ids=[item.id], content_sha256="ab" * 32),
        ]
    )
    session.commit()
    # Redis state that still names Ann's send: a journal line and a raw event not yet ingested
    rt.redis.rpush(f"mailramp:journal:{wave['wave_id']}:9", f"{sends[ann]}|1|0|".encode())
    push(rt.redis, RawEvent(kind="open", send_id=sends[ann], user_agent=HUMAN_UA, ip="198.51.100.7"))
    push(rt.redis, RawEvent(kind="open", send_id=sends[bob]))
    return {"rt": rt, "ann": ann, "bob": bob, "campaign_id": campaign.id, "sends": sends}


def test_consent_history_after_import_unsubscribe_and_complaint(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    w = world(app, session, api, smtp_sink)
    ann = api.get(f"/api/v1/contacts/{w['ann']}/consent").json["history"]
    assert [(h["state"], h["method"]) for h in ann] == [("granted", "import"), ("withdrawn", "unsubscribe")]
    first = ann[0]
    assert first["source"] == "upload.csv row 2" or first["source"].endswith(" row 2")
    assert first["wording"] == "Send me offers" and first["ip"] == "203.0.113.9"
    assert first["evidence"]["confirmed"] is True and first["evidence"]["consent_source"] == "shop checkout"
    assert ann[1]["source"].startswith(f"campaign {w['campaign_id']}")
    bob = api.get(f"/api/v1/contacts/{w['bob']}/consent").json["history"]
    assert [(h["state"], h["method"]) for h in bob] == [("granted", "import"), ("withdrawn", "complaint")]
    assert api.get("/api/v1/contacts/999999/consent").status_code == 404


def test_export_holds_everything_about_the_person(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink
) -> None:
    w = world(app, session, api, smtp_sink)
    response = api.get(f"/api/v1/contacts/{w['ann']}/export")
    assert response.status_code == 200
    doc = response.json
    assert doc["profile"]["email"] == ANN and doc["profile"]["status"] == "unsubscribed"
    assert doc["attributes"] == {"plan": "pro"}
    assert [h["method"] for h in doc["consent_history"]] == ["import", "unsubscribe"]
    [send] = doc["sends"]
    assert send["arm"] in ("treatment", "control", "excluded", "holdout") and send["state"] == "sent"
    assert send["campaign_id"] == w["campaign_id"] and send["unsubscribed_at"]
    assert {e["kind"] for e in doc["events"]} >= {"click", "unsubscribe"}
    assert all(e["send_id"] == w["sends"][w["ann"]] for e in doc["events"])
    assert doc["interactions"][0]["item"] == {"sku": "85123A", "name": "White hanging heart"}
    assert doc["recommendations"][0]["items"][0]["name"] == "White hanging heart"
    assert doc["shadow_renders"][0]["send_id"] == w["sends"][w["ann"]]
    assert BOB not in json.dumps(doc)
    viewer = api.client.get(f"/api/v1/contacts/{w['ann']}/export")
    assert viewer.status_code == 401
    logged = api.get(f"/api/v1/audit?action=export&contact_id={w['ann']}").json["entries"]
    assert len(logged) == 1


def _json_holds(value: Any, contact_id: int) -> bool:
    if isinstance(value, dict):
        return any(
            (k == "contact_id" and v == contact_id) or _json_holds(v, contact_id) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_json_holds(v, contact_id) for v in value)
    return False


def traces(session: Session, email: str, contact_id: int) -> list[str]:
    """Every column of every table: text and JSON must not contain the address; a column that is a
    contact id (named so, or a foreign key to contacts) must not hold this id; JSON must not say
    "contact_id": id anywhere."""
    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            refers = column.name == "contact_id" or any(
                fk.column.table.name == "contacts" for fk in column.foreign_keys
            )
            if table.name == "contacts" and column.name == "id":
                refers = True
            if refers:
                n = session.scalar(sa.select(sa.func.count()).select_from(table).where(column == contact_id))
                if n:
                    found.append(f"{table.name}.{column.name} = {contact_id}")
            if isinstance(column.type, sa.String | sa.Text | sa.JSON):
                n = session.scalar(
                    sa.select(sa.func.count())
                    .select_from(table)
                    .where(sa.func.lower(sa.cast(column, sa.Text)).contains(email))
                )
                if n:
                    found.append(f"{table.name}.{column.name} contains {email}")
            if isinstance(column.type, sa.JSON):
                for value in session.scalars(sa.select(column)):
                    if _json_holds(value, contact_id):
                        found.append(f"{table.name}.{column.name} has contact_id {contact_id}")
    return found


def redis_traces(redis: Redis, email: str, send_id: int) -> list[str]:
    """Every list, stream, string and hash in Redis: no address, no journal line or raw event of the send."""
    found = []
    for key in redis.scan_iter(count=1000):
        kind = redis.type(key).decode()
        values: list[bytes] = []
        if kind == "list":
            values = redis.lrange(key, 0, -1)
        elif kind == "stream":
            values = [b" ".join(f.values()) for _, f in redis.xrange(key)]
        elif kind == "string":
            values = [redis.get(key) or b""]
        elif kind == "hash":
            values = list(redis.hgetall(key).values())
        for value in values:
            if (
                email.encode() in value
                or value.startswith(f"{send_id}|".encode())
                or f'"send_id":{send_id},'.encode() in value
            ):
                found.append(f"{key.decode()}: {value[:80]!r}")
    return found


def test_erasure_leaves_no_trace_and_keeps_results(
    app: Flask, session: Session, api: ApiClient, smtp_sink: SmtpSink, redis: Redis
) -> None:
    w = world(app, session, api, smtp_sink)
    ann, ann_send = w["ann"], w["sends"][w["ann"]]
    api.patch(f"/api/v1/contacts/{ann}", json={"name": "Ann B. Smith"})  # audited, pseudonymously
    assert traces(session, ANN, ann)  # the check finds what is there
    assert redis_traces(redis, ANN, ann_send)
    before = campaign_results(session, w["campaign_id"])
    assert api.post(f"/api/v1/contacts/{ann}/erase", json={}).status_code == 400  # needs a reason
    erased = api.post(f"/api/v1/contacts/{ann}/erase", json={"reason": "request #12"})
    assert erased.status_code == 200, erased.json
    assert erased.json["sends"] == 1 and erased.json["interactions"] == 1
    assert erased.json["journal_entries"] == 1 and erased.json["stream_entries"] == 1
    session.expire_all()
    assert traces(session, ANN, ann) == []
    assert redis_traces(redis, ANN, ann_send) == []
    assert campaign_results(session, w["campaign_id"]) == before
    assert session.get(Contact, w["bob"]) is not None and redis.xlen(STREAM) == 1  # Bob untouched
    # the erasure is in the audit log, under the pseudonym only
    logged = api.get("/api/v1/audit?action=erase").json["entries"]
    assert (
        len(logged) == 1 and logged[0]["summary"] == "request #12" and logged[0]["object_id"].startswith("c_")
    )
    # a later import of the same address is suppressed again, not mailed
    again = api.post(
        "/api/v1/contacts/import", data=f"email\n{ANN}\n".encode(), headers={"Content-Type": "text/csv"}
    )
    assert again.status_code in (200, 201, 202)
    assert session.scalar(sa.select(Suppression.reason).where(Suppression.email == ANN)) == "erased"
    from campaigns.audience.rules import count

    assert count(session, {"all": []}, sendable_only=True) == 0  # Bob complained, Ann is suppressed
