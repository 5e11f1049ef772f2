"""The doors phase 1 left closed: contacts a CSV import creates start `contact_created` flows (set-based
per chunk); a conversion from the tracking endpoint and a recent purchase imported into the catalog
start `purchase` flows and end journeys that exit on a purchase; leaving a segment and joining it
again is a new `segment_joined`."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from campaigns.events.ingest import ingest
from campaigns.events.tokens import TokenSigner, TrackingRef
from campaigns.flows.entering import enter_created
from campaigns.flows.time_triggers import run_time_triggers
from campaigns.flows.triggers import record_event
from models import Contact, ContactEvent, FlowEntry, Send, simulated_now, utcnow
from tests.campaigns.data_fixtures import run_csv
from tests.campaigns.flows.helpers import make_flow, send_step, start_clock, tick
from tests.conftest import ApiClient
from tests.factories import add_campaign, add_contacts, add_template

WAIT = [{"id": "w", "type": "wait", "days": 1}]


def entries(session: Session, flow_id: int) -> list[tuple[int, str, str]]:
    session.expire_all()
    return list(
        session.execute(
            sa.select(FlowEntry.contact_id, FlowEntry.trigger_key, FlowEntry.state)
            .where(FlowEntry.flow_id == flow_id)
            .order_by(FlowEntry.id)
        ).all()
    )


def test_imported_contacts_enter_contact_created_flows_once(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    flow = make_flow(api, "Welcome", {"trigger": {"kind": "contact_created"}, "steps": WAIT})
    rows = "".join(f"new{i}@example.com,New {i}\n" for i in range(5))
    run = run_csv(rt.session_factory, "contacts", "email,name\n" + rows, chunk_rows=2)  # 3 chunks
    assert run.rows_imported == 5
    imported = set(session.scalars(sa.select(Contact.id)))
    assert {c for c, _k, _s in entries(session, flow["id"])} == imported
    # the same file again updates them: nobody is new, nobody enters again
    run_csv(rt.session_factory, "contacts", "email,name\n" + rows)
    assert len(entries(session, flow["id"])) == 5
    # a contact made elsewhere after the import already entered uses the same key: not twice
    first = min(imported)
    record_event(session, first, "contact_created", key=f"contact_created:{first}")
    assert enter_created(session, [first], utcnow()) == 0
    session.commit()
    assert len(entries(session, flow["id"])) == 5


def test_an_import_without_a_listening_flow_enters_nobody(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    make_flow(api, "Draft", {"trigger": {"kind": "contact_created"}, "steps": WAIT}, activate=False)
    run_csv(rt.session_factory, "contacts", "email\na@example.com\nb@example.com\n")
    assert session.scalar(sa.select(sa.func.count()).select_from(FlowEntry)) == 0


def test_a_tracked_conversion_starts_purchase_flows_and_ends_cart_journeys(
    app: Flask, session: Session, api: ApiClient, client: FlaskClient
) -> None:
    rt = app.extensions["mailramp"]
    clock = start_clock()
    bought = make_flow(api, "Thanks", {"trigger": {"kind": "purchase"}, "steps": WAIT})
    cart = make_flow(
        api,
        "Cart",
        {
            "trigger": {"kind": "event", "name": "added_to_cart"},
            "steps": [{"id": "grace", "type": "wait", "hours": 4}, send_step(session, "remind", "Forgot?")],
            "exit_conditions": [{"event": "purchase"}],
        },
    )
    contact = add_contacts(session, 1)[0]
    campaign = add_campaign(session, add_template(session).id)
    send = Send(campaign_id=campaign.id, contact_id=contact, state="sent", sent_at=clock.now)
    session.add(send)
    session.commit()
    with simulated_now(clock.now):
        record_event(session, contact, "added_to_cart", key="cart-1")
    session.commit()
    token = TokenSigner(app.config["SECRET_KEY"]).sign(TrackingRef("conversion", send.id))
    for _ in range(2):  # a replayed conversion acts once
        assert client.post(f"/t/v/{token}", data={"value": "25", "order": "A-1"}).status_code == 204
        ingest(rt)
    assert [(c, s) for c, _k, s in entries(session, bought["id"])] == [(contact, "active")]
    assert [(c, s) for c, _k, s in entries(session, cart["id"])] == [(contact, "exited")]
    assert session.scalar(sa.select(sa.func.count()).where(ContactEvent.name == "purchase")) == 1
    clock.advance(hours=5)
    assert tick(rt, clock).sent == 0  # the reminder never goes out


def test_a_recent_imported_purchase_starts_purchase_flows_an_old_one_does_not(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    flow = make_flow(api, "Thanks", {"trigger": {"kind": "purchase"}, "steps": WAIT})
    recent, old = add_contacts(session, 2)
    session.commit()
    today = utcnow().replace(microsecond=0)
    history = today - timedelta(days=30)
    data = (
        "email,sku,description,occurred_at,value\n"
        f"person0@example.com,SKU1,Mug,{today.isoformat()},12.5\n"
        f"person1@example.com,SKU1,Mug,{history.isoformat()},12.5\n"
    )
    assert run_csv(rt.session_factory, "interactions", data).rows_imported == 2
    run_csv(rt.session_factory, "interactions", data)  # the same orders again: stored before, skipped
    assert [c for c, _k, _s in entries(session, flow["id"])] == [recent]
    assert old not in {c for c, _k, _s in entries(session, flow["id"])}


def test_leaving_and_joining_a_segment_again_is_a_new_join(
    app: Flask, session: Session, api: ApiClient
) -> None:
    rt = app.extensions["mailramp"]
    clock = start_clock()
    segment = api.post(
        "/api/v1/segments",
        json={"name": "Pro", "rules": {"field": "attributes.plan", "op": "eq", "value": "pro"}},
    ).json
    flow = make_flow(
        api,
        "Pro",
        {
            "trigger": {"kind": "segment_joined", "segment_id": segment["id"]},
            "steps": [{"id": "w", "type": "wait", "minutes": 1}],
            "re_entry": {"rule": "always"},
        },
    )
    contact = add_contacts(session, 2)[1]  # person1: plan pro

    def plan(value: str) -> None:
        session.execute(sa.update(Contact).where(Contact.id == contact).values(attributes={"plan": value}))
        session.commit()

    assert run_time_triggers(rt, clock.now) == 1
    assert run_time_triggers(rt, clock.advance(minutes=5)) == 0  # still in: no new join
    tick(rt, clock)  # the first journey waits its minute, then completes
    clock.advance(minutes=2)
    tick(rt, clock)
    assert [s for _c, _k, s in entries(session, flow["id"])] == ["completed"]
    plan("free")
    assert run_time_triggers(rt, clock.advance(minutes=5)) == 0  # left
    plan("pro")
    assert run_time_triggers(rt, clock.advance(minutes=5)) == 1  # joined again
    assert run_time_triggers(rt, clock.advance(minutes=5)) == 0
    keys = [k for c, k, _s in entries(session, flow["id"]) if c == contact]
    assert keys == [f"segment:{segment['id']}", f"segment:{segment['id']}:2"]
