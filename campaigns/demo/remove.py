"""Remove the demo in one step: its contacts, campaigns, rollouts and everything that hangs off them
(sends, waves, events, decisions, interactions, consent records, recommendations), its items, and
the segments and template it created when no remaining campaign uses them. Users are kept (the demo
login may be the only admin); one audit entry says what went.

What belongs to the demo: contacts and campaigns at its domain (campaigns.audience.demo_scope),
rollouts used only by demo campaigns (or named as the story names them), the demo's flow, items at
its shop URL.
Rows are deleted children first, by the columns that point at those ids, in chunks that fit any
database's parameter limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from campaigns.audience.demo_scope import DEMO_DOMAIN, demo_contacts_only
from campaigns.demo.flow_story import FLOW_NAME, ROLLOUT_F
from campaigns.demo.story import LABEL, ROLLOUT_A, ROLLOUT_B
from campaigns.demo.workspace import DEMO_SEGMENT_NAMES, SHOP_URL, TEMPLATE_NAME
from campaigns.privacy import audit
from models import Base, Campaign, Contact, Decision, Flow, Item, Rollout, Segment, Send, Template, Wave

CHUNK = 5_000
ROLLOUTS = (ROLLOUT_A, ROLLOUT_B, ROLLOUT_F)
KEEP = ("audit_log", "rollout_audit")  # append-only: the record of what happened stays, this removal included


@dataclass
class Removal:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows deleted

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def demo_present(session: Session) -> bool:
    """Any demo contact, campaign or rollout left?"""
    return (
        session.scalar(sa.select(Contact.id).where(demo_contacts_only()).limit(1)) is not None
        or session.scalar(sa.select(Campaign.id).where(_demo_campaign()).limit(1)) is not None
        or session.scalar(sa.select(Rollout.id).where(Rollout.name.in_(ROLLOUTS)).limit(1)) is not None
        or session.scalar(sa.select(Flow.id).where(Flow.name == FLOW_NAME)) is not None
    )


def _demo_campaign() -> sa.ColumnElement[bool]:
    return Campaign.from_email.like(f"%@{DEMO_DOMAIN}")


def remove_demo(session: Session) -> Removal:
    """Delete the demo (the caller commits). Safe to run twice: the second finds nothing."""
    contacts = list(session.scalars(sa.select(Contact.id).where(demo_contacts_only())))
    campaigns = list(session.scalars(sa.select(Campaign.id).where(_demo_campaign())))
    used_elsewhere = set(
        session.scalars(
            sa.select(Campaign.rollout_id).where(~_demo_campaign(), Campaign.rollout_id.is_not(None))
        )
    )
    candidates = set(
        session.scalars(
            sa.select(Campaign.rollout_id).where(_demo_campaign(), Campaign.rollout_id.is_not(None))
        )
    ) | set(session.scalars(sa.select(Rollout.id).where(Rollout.name.in_(ROLLOUTS))))
    rollouts = sorted(r for r in candidates if r is not None and r not in used_elsewhere)
    sends = _ids(session, Send.id, Send.campaign_id, campaigns) | _ids(
        session, Send.id, Send.contact_id, contacts
    )
    targets: dict[str, list[int]] = {
        "contact_id": contacts,
        "campaign_id": campaigns,
        "rollout_id": rollouts,
        "send_id": sorted(sends),
        "wave_id": sorted(_ids(session, Wave.id, Wave.campaign_id, campaigns)),
        "decision_id": sorted(_ids(session, Decision.id, Decision.rollout_id, rollouts)),
        "item_id": list(session.scalars(sa.select(Item.id).where(Item.url.like(f"{SHOP_URL}%")))),
    }
    roots = {
        "contacts": "contact_id", "campaigns": "campaign_id", "rollouts": "rollout_id", "sends": "send_id",
        "waves": "wave_id", "decisions": "decision_id", "items": "item_id",
    }  # fmt: skip
    removal = Removal()
    for table in reversed(Base.metadata.sorted_tables):  # children before their parents
        if table.name in KEEP:
            continue
        for column in table.columns:
            key = roots.get(table.name) if column.name == "id" else column.name
            if key in targets:
                deleted = _delete(session, table, column, targets[key])
                removal.rows[table.name] = removal.rows.get(table.name, 0) + deleted
    flows = session.execute(sa.delete(Flow).where(Flow.name == FLOW_NAME)).rowcount  # type: ignore[attr-defined]
    removal.rows["flows"] = int(flows or 0)  # its versions, entries and step links go with it (cascade)
    segments_in_use = sa.select(Campaign.segment_id).where(Campaign.segment_id.is_not(None))
    removal.rows["segments"] = _delete_named(session, Segment.__table__, DEMO_SEGMENT_NAMES, segments_in_use)
    templates_in_use = sa.select(Campaign.template_id)
    removal.rows["templates"] = _delete_named(session, Template.__table__, (TEMPLATE_NAME,), templates_in_use)
    removal.rows = {k: v for k, v in removal.rows.items() if v}
    audit.record(
        session, "remove", "demo", DEMO_DOMAIN,
        summary=f"demo removed {LABEL}: " + ", ".join(f"{n} {t}" for t, n in sorted(removal.rows.items())),
        after=dict(removal.rows),
    )  # fmt: skip
    return removal


def _ids(session: Session, id_column: Any, where: Any, among: list[int]) -> set[int]:
    found: set[int] = set()
    for part in _chunks(among):
        found.update(session.scalars(sa.select(id_column).where(where.in_(part))))
    return found


def _delete(session: Session, table: sa.Table, column: sa.Column[int], ids: list[int]) -> int:
    deleted = 0
    for part in _chunks(ids):
        result = session.execute(sa.delete(table).where(column.in_(part)))
        deleted += int(result.rowcount or 0)  # type: ignore[attr-defined]
    return deleted


def _delete_named(session: Session, table: Any, names: Iterable[str], in_use: sa.Select[Any]) -> int:
    """The demo's segments and template, unless a remaining campaign uses them."""
    query = sa.delete(table).where(table.c.name.in_(list(names)), table.c.id.not_in(in_use.scalar_subquery()))
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
