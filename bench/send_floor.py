"""The send bench's floor: only the irreducible work of each personalised email of a wave, in a
loop, with nothing else. For every send of the wave as the pipeline sent it (its contact, whether it
got the AI block or the control block, that contact's recommendations): render the same compiled
templates with Jinja2 (the content block, the layout around it, the subject), sign the same links
(unsubscribe, web version, the tracked clicks, the open pixel) and build the same MIME message with
the same `MessageBuilder` the send path uses. What is left out is the bookkeeping: the ledger reads
and writes, arm assignment, recommendation lookups (done before the clock starts), the journal,
locks, the throttle, the render watchdog and output limits, and delivery."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup


def floor_inputs(rt: Any, campaign_id: int) -> tuple[Any, Any, list[tuple[Any, ...]]]:
    """(compiled template, message builder, one tuple per send) of a sent wave, as `send_batch`
    builds them; the recommendations of the AI sends looked up here, outside the timed loop."""
    from campaigns.content.render import contact_context
    from campaigns.content.templates import compiled
    from campaigns.recommender.service import LookupMemo
    from campaigns.sending import bounces, webview
    from campaigns.sending.builders import campaign_builder
    from campaigns.sending.prepare import recommendations_for
    from models import Campaign, Contact, Send, Template

    session = rt.session_factory()
    try:
        campaign = session.get(Campaign, campaign_id)
        template = session.get(Template, campaign.template_id)
        builder = campaign_builder(
            session,
            rt.settings,
            campaign,
            return_path=bounces.return_path(rt.settings),
            web_version=webview.url_maker(rt.settings),
        )
        rows = session.execute(
            sa.select(
                Send.id, Send.content, Send.model_version_id, Contact.id, Contact.email, Contact.name,
                Contact.country, Contact.timezone, Contact.attributes,
            )
            .join(Contact, Contact.id == Send.contact_id)
            .where(Send.campaign_id == campaign_id, Send.state == "sent")
            .order_by(Send.id)
        ).all()  # fmt: skip
        recs: dict[int, list[dict[str, Any]]] = {}
        ai_rows = [r for r in rows if r.content == "ai"]
        if ai_rows:
            recs = recommendations_for(
                session,
                ai_rows[0].model_version_id,
                [r[3] for r in ai_rows],
                campaign.recommendation_rules,
                LookupMemo(),
                {r[3]: r.country or "" for r in ai_rows},
            )
        sends = [
            (
                r.id,
                r[3],
                r.email,
                r.name,
                r.content == "ai",
                contact_context(r[3], r.email, r.name, r.country, r.timezone, r.attributes),
                recs.get(r[3], []),
                {"id": campaign.id, "name": campaign.name},
            )
            for r in rows
        ]
        return compiled(template), builder, sends
    finally:
        session.close()


def floor_loop(tmpl: Any, builder: Any, sends: list[tuple[Any, ...]]) -> tuple[int, float, float]:
    """Render, sign and build every send's message: (messages, wall seconds, CPU seconds)."""
    subject_t, layout_t = tmpl.subject, tmpl.layout
    started, cpu = time.perf_counter(), time.process_time()
    size = 0
    for send_id, contact_id, email, name, ai, contact, recs, campaign in sends:
        unsubscribe = builder.unsubscribe_url(send_id)
        web = builder.web_version(send_id) if builder.web_version else None
        context = {
            "contact": contact,
            "recommendations": recs if ai else [],
            "unsubscribe_url": unsubscribe,
            "web_version_url": web,
            "campaign": campaign,
        }
        content = Markup((tmpl.ai if ai else tmpl.control).render(context))
        html = layout_t.render({**context, "content": content})
        subject = " ".join(subject_t.render(context).split())
        message = builder.build(
            send_id=send_id,
            contact_id=contact_id,
            email=email,
            name=name,
            subject=subject,
            html=html,
            item_by_url={r["url"]: r["item_id"] for r in recs} if ai else {},
            unsubscribe_url=unsubscribe,
            web_version_url=web,
        )
        size += len(message.data)
    return len(sends), time.perf_counter() - started, time.process_time() - cpu
