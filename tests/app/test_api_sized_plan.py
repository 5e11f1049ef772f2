"""A 3,000-contact list through the README's campaign path (API): the plan sized to it says, at
creation and in words, what it can and cannot learn, and it moves; the hold names its gate."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import Contact
from tests.app.test_api_campaigns import template_body


def test_a_3000_contact_list_gets_a_plan_that_moves_or_says_why(api: Any, session: Session) -> None:
    session.add_all([Contact(email=f"c{i}@example.com") for i in range(3000)])
    session.commit()
    template = api.post("/api/v1/templates", json=template_body()).get_json()
    campaign = api.post(
        "/api/v1/campaigns",
        json={"name": "Weekly", "template_id": template["id"], "from_email": "news@example.com",
              "schedule": {"kind": "recurring", "cron": "0 9 * * 1"}, "ai": {"exposure_percent": 100}},
    )  # fmt: skip
    assert campaign.status_code == 201, campaign.get_json()
    # the forecast comes back with the campaign, before anything is sent
    assert campaign.get_json()["rollout_forecast"]["words"].startswith("on 3,000 contacts a week")
    rollout = api.get(f"/api/v1/rollouts/{campaign.get_json()['rollout_id']}").get_json()
    forecast = rollout["forecast"]
    assert forecast["inputs"]["cadence"]["per_send"] == 3000
    assert forecast["inputs"]["cadence"]["interval_hours"] == 168.0
    first = rollout["stages"][0]
    # never a silent hold at 1%: the first stage gets evidence from every weekly send
    assert first["exposure_bp"] >= 2500
    assert forecast["words"].startswith("on 3,000 contacts a week this rollout can catch")
    if forecast["sends_to_everyone"] is None:
        assert "cannot" in forecast["words"]
    else:
        assert "it reaches everyone after about" in forecast["words"]
    assert forecast["stages"][0]["smallest_unsubscribe_ratio_detectable"] is not None
    # the wait for the completion power, and how slowly a 5% holdout of 3,000 watches after 100%
    assert "sends_to_complete" in forecast and forecast["watch"]["holdout_bp"] == 500
    assert (forecast["watch"]["sends_to_catch_x3_unsubscribes"] or 99) > 3
    # the mode the marketer may choose knowingly
    protect = api.post(
        "/api/v1/campaigns",
        json={"name": "Weekly 2", "template_id": template["id"], "from_email": "news@example.com",
              "ai": {"mode": "protect"}},
    )  # fmt: skip
    assert protect.status_code == 201, protect.get_json()
    bad = api.post(
        "/api/v1/campaigns",
        json={"name": "Weekly 3", "template_id": template["id"], "from_email": "news@example.com",
              "ai": {"mode": "silent"}},
    )  # fmt: skip
    assert bad.status_code == 400 and "ai" in bad.get_json()["where"]
