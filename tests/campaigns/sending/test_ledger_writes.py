"""The ledger's per-row writes (`ledger.update_by_id`): one executemany per chunk, each distinct
list of segment labels serialized once."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.sending.ledger import _labels_memo, update_by_id
from models import Send
from tests.factories import add_campaign, add_contacts, add_template


def test_each_distinct_label_list_is_serialized_once() -> None:
    calls: list[Any] = []

    def dumps(value: Any) -> str:
        calls.append(value)
        return json.dumps(value)

    convert = _labels_memo(dumps)
    assert convert is not None
    values = [[], ["EU"], [], ["EU"], ["EU", "VIP"], [], {"not": "labels"}, [1, 2], [1, 2]]
    assert [convert(v) for v in values] == [json.dumps(v) for v in values]
    assert calls == [[], ["EU"], ["EU", "VIP"], {"not": "labels"}, [1, 2], [1, 2]]
    assert _labels_memo(None) is None


def test_rows_are_written_with_their_own_values(session: Session) -> None:
    campaign = add_campaign(session, add_template(session).id)
    contacts = add_contacts(session, 4)
    session.execute(sa.insert(Send), [{"campaign_id": campaign.id, "contact_id": c} for c in contacts])
    ids = list(session.scalars(sa.select(Send.id).order_by(Send.id)))
    labels: list[list[str]] = [[], ["EU"], ["EU", "VIP"], ["EU"]]
    update_by_id(
        session,
        [
            {"id": i, "state": "sending", "segments": seg, "forced": n == 2, "render_ms": 1.5 * n}
            for n, (i, seg) in enumerate(zip(ids, labels, strict=True))
        ],
    )
    session.commit()
    rows = session.execute(
        sa.select(Send.state, Send.segments, Send.forced, Send.render_ms).order_by(Send.id)
    ).all()
    assert [tuple(r) for r in rows] == [
        ("sending", [], False, 0.0),
        ("sending", ["EU"], False, 1.5),
        ("sending", ["EU", "VIP"], True, 3.0),
        ("sending", ["EU"], False, 4.5),
    ]
