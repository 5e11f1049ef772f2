"""Shadow report: AI path errors and latency next to the control renders actually sent."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from campaigns.rollout.shadow import shadow_report
from models import Campaign, Contact, Send, ShadowRender, Template


def test_shadow_report_per_stage(session: Session, make_rollout: Any) -> None:
    rollout = make_rollout()
    template = Template(name="t")
    session.add(template)
    session.flush()
    campaign = Campaign(
        name="c", template_id=template.id, rollout_id=rollout.id, from_email="news@example.com"
    )
    contacts = [Contact(email=f"s{i}@example.com") for i in range(5)]
    session.add_all([campaign, *contacts])
    session.flush()
    # stage 0: four shadow renders, one failed; AI latencies 10, 20, 30 ms; control renders 2 ms each
    for i, contact in enumerate(contacts[:4]):
        send = Send(
            campaign_id=campaign.id,
            contact_id=contact.id,
            rollout_id=rollout.id,
            stage_index=0,
            arm="control",
            state="sent",
            render_ms=2.0,
        )
        session.add(send)
        session.flush()
        session.add(
            ShadowRender(
                send_id=send.id,
                rollout_id=rollout.id,
                item_ids=[] if i == 3 else [i, 100],
                content_sha256="" if i == 3 else f"h{i}",
                latency_ms=[10.0, 20.0, 30.0, 999.0][i],
                error="timeout" if i == 3 else "",
            )
        )
    session.commit()
    (stage,) = shadow_report(session, rollout.id)
    assert stage["stage_index"] == 0 and stage["renders"] == 4 and stage["control_sent"] == 4
    assert stage["errors"] == 1 and stage["error_rate"] == 0.25
    assert stage["ai_latency_ms"] == {"p50": 20.0, "p95": 29.0, "max": 30.0}  # failed render excluded
    assert stage["control_render_ms"]["p50"] == 2.0
    assert (
        stage["with_recommendations"] == 3
        and stage["distinct_items"] == 4
        and stage["distinct_contents"] == 3
    )
    assert shadow_report(session, rollout.id + 1) == []
