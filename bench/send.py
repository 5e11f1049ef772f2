"""Emails per second for a 100,000-contact wave sent by one worker process to a local SMTP sink
running in another process, next to the same sink's raw acceptance rate (prebuilt messages sent
with smtplib over one connection) measured in the same run, and their ratio.

    .venv/bin/python bench/send.py [--contacts 100000] [--raw 20000]

Targets (issue 2): at least 1,000 emails/s from one worker process, at least 50% of the raw rate.
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import socket
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from bench.common import emit, scratch_app, workdir


class CountingSink:
    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 OK"


def run_sink(port: int, ready: Any) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(CountingSink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def raw_rate(port: int, messages: list[bytes]) -> float:
    smtp = smtplib.SMTP("127.0.0.1", port)
    started = time.perf_counter()
    for i, data in enumerate(messages):
        smtp.sendmail("shop@example.com", [f"person{i}@example.com"], data)
    elapsed = time.perf_counter() - started
    smtp.quit()
    return len(messages) / elapsed


def populate(session: Any, contacts: int) -> tuple[int, int]:
    from models import Contact, Interaction, Item

    chunk = 20_000
    for start in range(0, contacts, chunk):
        session.execute(
            sa.insert(Contact),
            [
                {
                    "email": f"person{i}@example.com",
                    "name": f"Person {i}",
                    "country": "United Kingdom",
                    "attributes": {"plan": "pro" if i % 3 else "free"},
                }
                for i in range(start, min(start + chunk, contacts))
            ],
        )
    session.execute(
        sa.insert(Item),
        [
            {
                "sku": f"SKU{i}",
                "name": f"Item number {i}",
                "url": f"https://shop.example/items/SKU{i}",
                "price": 2.5 + i % 40,
                "category": f"category {i % 12}",
            }
            for i in range(400)
        ],
    )
    item_ids = list(session.scalars(sa.select(Item.id)))
    contact_ids = list(session.scalars(sa.select(Contact.id).limit(20_000)))
    session.execute(
        sa.insert(Interaction),
        [
            {
                "contact_id": c,
                "item_id": item_ids[(c * 31 + j * 7) % len(item_ids)],
                "kind": "purchase",
                "value": 9.0,
            }
            for c in contact_ids
            for j in range(4)
        ],
    )
    session.commit()
    return contacts, len(item_ids)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--raw", type=int, default=20_000)
    parser.add_argument("--exposure", type=float, default=20.0)
    args = parser.parse_args()

    port = free_port()
    ready = multiprocessing.Event()
    sink = multiprocessing.Process(target=run_sink, args=(port, ready), daemon=True)
    sink.start()
    ready.wait(10)

    from rq import SimpleWorker

    from campaigns import queues
    from campaigns.jobs import start_wave
    from tests.factories import add_campaign, add_template

    app = scratch_app(workdir(), SMTP_URL=f"smtp://127.0.0.1:{port}")
    rt = app.extensions["mailramp"]
    session = rt.session_factory()
    t0 = time.perf_counter()
    populate(session, args.contacts)
    setup_s = time.perf_counter() - t0
    template = add_template(session)
    campaign = add_campaign(
        session, template.id, ai={"exposure_percent": args.exposure, "holdout_percent": 5}
    )

    t0 = time.perf_counter()
    start_wave(rt, campaign.id, None)
    plan_s = time.perf_counter() - t0
    q = queues.queue(rt, queues.SENDING)
    # Scoring runs first (its own job, on its own queue); it is timed separately from sending.
    t0 = time.perf_counter()
    SimpleWorker([queues.queue(rt, queues.SCORING)], connection=rt.redis).work(burst=True, max_jobs=1)
    score_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    SimpleWorker([q], connection=rt.redis).work(burst=True)
    send_s = time.perf_counter() - t0

    from models import Send

    states = dict(
        session.execute(
            sa.select(Send.state, sa.func.count()).where(Send.campaign_id == campaign.id).group_by(Send.state)
        ).all()
    )
    arms = dict(
        session.execute(
            sa.select(Send.arm, sa.func.count()).where(Send.campaign_id == campaign.id).group_by(Send.arm)
        ).all()
    )
    sent = int(states.get("sent", 0))
    sample = session.scalars(sa.select(Send).where(Send.campaign_id == campaign.id).limit(1)).one()
    # Raw rate: messages the same size as the campaign's, prebuilt, through smtplib.
    from campaigns.sending.message import MessageBuilder
    from campaigns.tokens import TokenSigner

    builder = MessageBuilder(
        signer=TokenSigner("bench"),
        base_url="http://bench.test",
        campaign_id=campaign.id,
        from_email="shop@example.com",
        from_name="Shop",
        link_ids={},
        message_id_key="k",
    )
    html = (
        "<html><body>" + "<p>Item <a href='https://shop.example/x'>name</a> 9.99</p>" * 8 + "</body></html>"
    )
    prebuilt = [
        builder.build(
            send_id=i,
            contact_id=i,
            email=f"p{i}@example.com",
            name="P",
            subject="Hi",
            html=html,
            item_by_url={},
        ).data
        for i in range(args.raw)
    ]
    raw = raw_rate(port, prebuilt)
    sink.terminate()

    rate = sent / send_s
    dialect = rt.session_factory.kw["bind"].dialect.name
    print(f"contacts: {args.contacts:,} on {dialect} (setup {setup_s:.1f} s); SMTP sink pid {sink.pid}")
    print(f"wave planned in {plan_s:.2f} s; recommendations scored in {score_s:.2f} s")
    print(f"sent {sent:,} in {send_s:.1f} s by one worker process: {rate:,.0f} emails/s  (states {states})")
    print(f"arms: {arms}; sample message {sample.message_id}")
    print(f"raw SMTP acceptance (prebuilt messages, smtplib): {raw:,.0f} emails/s")
    print(f"ratio: {rate / raw:.0%} of raw  (targets: >= 1,000 emails/s and >= 50%)")
    emit(
        {
            "bench": "send",
            "contacts": args.contacts,
            "sent": sent,
            "emails_per_s": round(rate, 1),
            "raw_emails_per_s": round(raw, 1),
            "ratio": round(rate / raw, 3),
            "plan_s": round(plan_s, 2),
            "score_s": round(score_s, 2),
            "send_s": round(send_s, 1),
        }
    )


if __name__ == "__main__":
    main()
