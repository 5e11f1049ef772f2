"""A time zone name that names a directory of zones ("Europe") or a path is refused at the door with
a 400 naming the field, like any unknown zone: it used to escape as an OSError (a 500)."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.campaign_records import _timezone
from campaigns.errors import InputError
from tests.factories import add_campaign, add_template


@pytest.mark.parametrize("name", ["Europe", "America", "../../etc/passwd"])
def test_zone_directories_are_a_400(api: Any, session: Any, name: str) -> None:
    contact = api.post("/api/v1/contacts", json={"email": "a@example.com", "timezone": name})
    assert contact.status_code == 400 and contact.json["where"] == "timezone"
    campaign = add_campaign(session, add_template(session).id)
    wave = api.post(
        f"/api/v1/campaigns/{campaign.id}/waves/local-time", json={"local_hour": 9, "default_timezone": name}
    )
    assert wave.status_code == 400 and wave.json["where"] == "default_timezone"
    with pytest.raises(InputError, match="unknown timezone"):
        _timezone(name)
