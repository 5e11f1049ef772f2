"""Campaign records: audience x template x schedule, with an optional AI rollout; stored links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from croniter import croniter
from sqlalchemy.orm import Session

from campaigns.errors import InputError, NotFound, all_at_once
from campaigns.sending.headers import check_text
from models import Campaign, CampaignLink, Rollout, Segment, Template
from models.db import dialect_insert

EDITABLE = ("draft", "scheduled")


def _email(value: Any, where: str) -> str:
    from campaigns.contacts.records import normalize_email

    if not isinstance(value, str) or not value.strip():
        raise InputError("an email address is required", where=where)
    try:
        return normalize_email(value)
    except InputError as exc:
        raise InputError(exc.message, where=where) from exc


def _timezone(value: Any) -> str:
    name = str(value or "UTC")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "Europe" is a directory
        raise InputError(f"unknown timezone {name!r}", where="schedule.timezone") from exc
    return name


def _percent_bp(value: Any, where: str) -> int:
    try:
        percent = float(value)
    except (TypeError, ValueError) as exc:
        raise InputError(f"must be a number between 0 and 100, not {value!r}", where=where) from exc
    if not 0 <= percent <= 100:
        raise InputError(f"must be between 0 and 100, not {percent}", where=where)
    return round(percent * 100)


def _schedule(campaign: Campaign, schedule: dict[str, Any]) -> None:
    kind = schedule.get("kind", "now")
    campaign.timezone = _timezone(schedule.get("timezone"))
    campaign.send_at, campaign.cron = None, None
    if kind == "at":
        raw = schedule.get("send_at")
        try:
            when = datetime.fromisoformat(str(raw))
        except ValueError as exc:
            raise InputError(f"not an ISO date-time: {raw!r}", where="schedule.send_at") from exc
        if when.tzinfo is None:  # a wall-clock time in the campaign's timezone
            when = when.replace(tzinfo=ZoneInfo(campaign.timezone))
        campaign.send_at = when.astimezone(UTC)
    elif kind == "recurring":
        expression = str(schedule.get("cron", ""))
        if not croniter.is_valid(expression):
            raise InputError(f"not a cron expression: {expression!r}", where="schedule.cron")
        campaign.cron = expression
    elif kind != "now":
        raise InputError(f"schedule kind must be now, at or recurring, not {kind!r}", where="schedule.kind")


def default_stages(exposure_bp: int) -> list[dict[str, Any]]:
    return [{"name": f"{exposure_bp / 100:g}%", "kind": "percent", "exposure_bp": exposure_bp, "gates": {}}]


def _campaign_fields(session: Session, payload: dict[str, Any], problems: list[InputError]) -> dict[str, Any]:
    """The campaign's own fields, checked one by one: every problem is collected, not just the first."""
    fields: dict[str, Any] = {}

    def check(key: str, read: Any) -> None:
        try:
            fields[key] = read()
        except InputError as exc:
            problems.append(exc)

    def name() -> str:
        value = str(payload.get("name", "")).strip()
        if not value:
            raise InputError("a name is required", where="name")
        return value

    def template_id() -> int:
        value = payload.get("template_id")
        if not isinstance(value, int) or session.get(Template, value) is None:
            raise InputError(f"no template with id {value!r}", where="template_id")
        return value

    def segment_id() -> int | None:
        value = payload.get("segment_id")
        if value is not None and (not isinstance(value, int) or session.get(Segment, value) is None):
            raise InputError(f"no segment with id {value!r}", where="segment_id")
        return value

    def wave_size() -> int | None:
        value = payload.get("wave_size")
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError("must be a positive whole number of contacts", where="wave_size")
        return value

    def rules() -> dict[str, Any]:
        from campaigns.recommender.rules import CampaignRules

        value = payload.get("recommendation_rules") or {}
        if not isinstance(value, dict):
            raise InputError(
                "must be an object like {categories: [...], max_price: 20}", where="recommendation_rules"
            )
        try:
            CampaignRules.from_mapping(value)
        except InputError as exc:
            raise InputError(exc.message, where="recommendation_" + exc.where) from exc
        return value

    check("name", name)
    check("template_id", template_id)
    check("segment_id", segment_id)
    check("wave_size", wave_size)
    check("recommendation_rules", rules)
    check("subject", lambda: check_text(str(payload.get("subject", "")), "subject"))
    check("from_email", lambda: _email(payload.get("from_email"), "from_email"))
    check("from_name", lambda: check_text(str(payload.get("from_name", "")), "from_name"))
    return fields


def create_campaign(session: Session, payload: dict[str, Any], actor: str) -> Campaign:
    """A campaign (and its rollout, from `ai`). A refusal names the first problem and carries every
    problem of the campaign's own fields in `details`, so a form shows them all at once."""
    problems: list[InputError] = []
    fields = _campaign_fields(session, payload, problems)
    campaign = Campaign(**fields, series=str(payload.get("series", "")), created_by=actor)
    try:
        _schedule(campaign, payload.get("schedule") or {})
    except InputError as exc:
        problems.append(exc)
    if problems:
        raise all_at_once(problems)
    campaign.rollout_id = _rollout_for(session, payload, campaign, actor)
    campaign.status = "scheduled" if (campaign.send_at or campaign.cron) else "draft"
    session.add(campaign)
    session.flush()
    return campaign


def _rollout_for(session: Session, payload: dict[str, Any], campaign: Campaign, actor: str) -> int | None:
    """Attach an existing rollout (a campaign series shares one), or create one from `ai`."""
    if payload.get("rollout_id") is not None:
        rollout = session.get(Rollout, payload["rollout_id"])
        if rollout is None:
            raise InputError(f"no rollout with id {payload['rollout_id']!r}", where="rollout_id")
        return rollout.id
    ai = payload.get("ai")
    if ai is None:
        return None
    if not isinstance(ai, dict):
        raise InputError("must be an object like {exposure_percent: 20, holdout_percent: 5}", where="ai")
    from campaigns.rollout.changes import create_rollout
    from campaigns.rollout.machine import transition
    from campaigns.rollout.plans import default_holdout_bp, sized_default, workspace_plan

    kind = ai.get("plan", "staged")
    if kind not in ("staged", "manual"):
        raise InputError(f"must be staged or manual, got {kind!r}", where="ai.plan")
    exposure = _percent_bp(ai.get("exposure_percent", 100), "ai.exposure_percent")
    primary = ai.get("primary_metric") or "conversion_rate"
    if ai.get("holdout_percent") is not None:
        holdout = _percent_bp(ai["holdout_percent"], "ai.holdout_percent")
    else:  # sized so the watch after 100% can catch a tripling of unsubscribes (or the workspace's)
        session.flush()
        holdout = default_holdout_bp(session, campaign, primary_metric=primary, cap_bp=exposure)
        if exposure < 10_000:  # a capped ramp leaves room for the sized holdout only up to 100%
            holdout = max(min(holdout, 10_000 - exposure), int(workspace_plan(session)["holdout_bp"]))
    if exposure < 10_000 and exposure + holdout > 10_000:  # 100% means "everyone but the holdout"
        raise InputError("exposure and holdout together exceed 100%", where="ai")
    if ai.get("stages"):
        stages = ai["stages"]
    elif kind == "manual":
        stages = default_stages(exposure)
    else:  # sized to the campaign's audience (or the workspace's edited default), stopped at its exposure
        session.flush()
        stages = sized_default(
            session, campaign, cap_bp=exposure, holdout_bp=holdout, primary_metric=primary, mode=ai.get("mode"),
        )  # fmt: skip
    settings = {
        "series": campaign.series,
        "stages": stages,
        "holdout_bp": holdout,
        "plan": kind,
        "primary_metric": ai.get("primary_metric", "conversion_rate"),
    }
    try:  # through the rollout engine, so creating and starting it are audited like any change
        rollout = create_rollout(
            session,
            f"AI content: {campaign.name}",
            actor,
            model_version_id=ai.get("model_version_id"),
            **settings,
        )
        if ai.get("start", True):
            transition(session, rollout, "start", actor, f"started with campaign {campaign.name!r}")
    except InputError as exc:
        raise InputError(exc.message, where=f"ai.{exc.where}" if exc.where else "ai") from exc
    return rollout.id


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def register_links(
    session: Session, campaign_id: int, urls: set[str], known: dict[str, int]
) -> dict[str, int]:
    """Store click destinations once per campaign; returns url -> link id for all of `urls`."""
    missing = urls - known.keys()
    if missing:
        session.execute(
            dialect_insert(session)(CampaignLink).on_conflict_do_nothing(),
            [{"campaign_id": campaign_id, "url": url} for url in sorted(missing)],
        )
        rows = session.execute(
            sa.select(CampaignLink.url, CampaignLink.id).where(
                CampaignLink.campaign_id == campaign_id, CampaignLink.url.in_(missing)
            )
        )
        known = {**known, **{url: link_id for url, link_id in rows}}
    return known


def campaign_links(session: Session, campaign_id: int) -> dict[str, int]:
    rows = session.execute(
        sa.select(CampaignLink.url, CampaignLink.id).where(CampaignLink.campaign_id == campaign_id)
    )
    return {url: link_id for url, link_id in rows}
