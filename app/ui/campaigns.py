"""Campaigns: create (audience, template, schedule with timezone, optional AI rollout), send waves with
a progress bar, results per arm with the funnel, exports and the printable report."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

import sqlalchemy as sa
from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from app.auth import actor, require_role
from app.extensions import db, get_runtime
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from app.ui.campaign_form import campaign_payload
from app.ui.charts import engagement_charts, funnel_chart
from campaigns import campaign_records as engine
from campaigns import jobs
from campaigns.catalog import items as catalog
from campaigns.decisions.policy import PRIMARY_METRICS
from campaigns.errors import InputError
from campaigns.recommender import registry
from campaigns.reports import engagement
from campaigns.reports import results as reports
from campaigns.sending import planner, wave_preview
from models import Campaign, Role, Rollout, Segment, Template, Wave

COMMON_TIMEZONES = ("UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York",
                    "America/Chicago", "America/Los_Angeles", "Asia/Tokyo", "Australia/Sydney")  # fmt: skip


@ui.route("/campaigns")
@require_role(Role.viewer)
def campaigns() -> str:
    rows = (
        db()
        .execute(
            sa.select(Campaign, Template.name, Segment.name, Rollout)
            .join(Template, Template.id == Campaign.template_id)
            .outerjoin(Segment, Segment.id == Campaign.segment_id)
            .outerjoin(Rollout, Rollout.id == Campaign.rollout_id)
            .where(Campaign.kind == "campaign")
            .order_by(Campaign.id.desc())
            .limit(500)
        )
        .all()
    )
    return render_template("ui/campaigns.html", rows=rows)


# The campaign form's fields by the engine's `where` (a problem elsewhere shows at the top only).
_FORM_FIELDS = {
    "name": "name",
    "template_id": "template_id",
    "segment_id": "segment_id",
    "from_email": "from_email",
    "from_name": "from_name",
    "subject": "subject",
    "wave_size": "wave_size",
    "schedule.send_at": "send_at",
    "schedule.cron": "cron",
    "schedule.timezone": "timezone",
}


def _field_errors(error: InputError) -> dict[str, str]:
    """Every problem the engine found, at its field (the template form does the same)."""
    problems = (
        error.details if isinstance(error.details, list) else [{"where": error.where, "error": error.message}]
    )
    errors: dict[str, str] = {}
    for problem in problems:
        field = _FORM_FIELDS.get(str(problem.get("where") or ""))
        if field is not None and field not in errors:
            errors[field] = str(problem.get("error"))
    return errors


def _form_context(error: InputError | None = None) -> dict[str, Any]:
    errors = _field_errors(error) if error is not None else {}
    problems = (
        len(error.details)
        if error is not None and isinstance(error.details, list)
        else int(error is not None)
    )
    return {
        "errors": errors,
        "problems": problems,
        "templates": db().scalars(sa.select(Template).order_by(Template.name)).all(),
        "segments": db().scalars(sa.select(Segment).order_by(Segment.name)).all(),
        "rollouts": db()
        .scalars(
            sa.select(Rollout)
            .where(Rollout.state.not_in(("completed", "rolled_back")))
            .order_by(Rollout.name)
        )
        .all(),
        "models": [v for v in registry.versions(db()) if v.status == "ready"],
        "metrics": [(m, m.replace("_", " ")) for m in PRIMARY_METRICS],
        "timezones": sorted(available_timezones()),
        "categories": [c for c, _ in catalog.categories(db()) if c],
        "common_timezones": COMMON_TIMEZONES,
        "error": describe(error) if error is not None and problems == 1 else "",
        "form": request.form,
    }


@ui.route("/campaigns/new")
@require_role(Role.marketer)
def campaigns_new() -> str:
    return render_template("ui/campaign_new.html", **_form_context())


@ui.route("/campaigns/new", methods=["POST"])
@require_role(Role.marketer)
def campaigns_create() -> BaseResponse | tuple[str, int]:
    try:
        campaign = engine.create_campaign(db(), campaign_payload(request.form), actor())
    except InputError as exc:
        db().rollback()
        return render_template("ui/campaign_new.html", **_form_context(exc)), 400
    return perform(
        lambda: campaign,
        success=lambda c: f"Created campaign {c.name}.",
        back=lambda c: url_for("ui.campaigns_detail", campaign_id=c.id),
    )


def _progress(campaign_id: int) -> dict[str, Any]:
    state = reports.campaign_progress(db(), campaign_id)
    pending = sum(state["states"].get(s, 0) for s in ("queued", "sending"))
    waves_open = any(w["status"] in ("planning", "sending") for w in state["waves"])
    total, done = state["total"], state["done"]
    failed = state["states"].get("failed", 0)
    finished = not (pending or waves_open)
    text = f"{done:,} of {total:,} processed" + (f", {failed:,} failed" if failed else "")
    if state.get("failures"):  # the most frequent reason, so a stuck or failing wave says why
        top = state["failures"][0]
        text += f" ({top['count']:,} {top['reason']}, e.g. {top['example'][:160]})"
    for skip in state.get("skips", [])[:2]:  # frequency caps, unsubscribes: why some were not sent
        text += f", {skip['count']:,} skipped ({skip['reason']})"
    held = state.get("delivery", {})
    for word in ("throttled", "deferred"):  # held back by a receiving domain's limit or reply
        if held.get(word):
            text += f", {held[word]:,} {word}"
    if held.get("quiet_hours"):
        text += f", {held['quiet_hours']:,} waiting for their quiet hours to end"
    if total:
        text += ": done" if finished else ": sending\u2026"
    return {**state, "pending": pending, "finished": finished, "text": text}


def _local(when: datetime | None, timezone: str) -> str:
    if when is None:
        return ""
    try:
        zone = ZoneInfo(timezone)
    except Exception:
        zone = ZoneInfo("UTC")
    return when.astimezone(zone).strftime(f"%Y-%m-%d %H:%M {timezone}")


@ui.route("/campaigns/<int:campaign_id>")
@require_role(Role.viewer)
def campaigns_detail(campaign_id: int) -> str:
    campaign = engine.get_campaign(db(), campaign_id)
    results = reports.campaign_results(db(), campaign_id)
    people = engagement.recipients(db(), campaign_id)
    waves = db().scalars(sa.select(Wave).where(Wave.campaign_id == campaign_id).order_by(Wave.number)).all()
    return render_template(
        "ui/campaign_detail.html",
        campaign=campaign,
        template=db().get(Template, campaign.template_id),
        segment=db().get(Segment, campaign.segment_id) if campaign.segment_id else None,
        rollout=db().get(Rollout, campaign.rollout_id) if campaign.rollout_id else None,
        results=results,
        waves=waves,
        progress=_progress(campaign_id),
        remaining=planner.remaining(db(), campaign, datetime.now(UTC)),
        send_at_local=_local(campaign.send_at, campaign.timezone),
        funnel=funnel_chart(results),
        engagement=engagement_charts(
            engagement.over_time(people, engagement.horizon(people, datetime.now(UTC)))
        ),
        by_segment=engagement.by_segment(people),
        simulated="(simulated)" in campaign.name or get_runtime().settings.simulated_recipients,
    )


@ui.route("/campaigns/audience-size")
@require_role(Role.viewer)
def campaigns_audience_size() -> Response:
    """{"count": sendable contacts} of a segment (or everyone), for the campaign form."""
    from campaigns.audience import rules as audience
    from campaigns.audience import sizes as segment_sizes

    segment_id = request.args.get("segment_id", type=int)
    rules = audience.segment_rules(db(), segment_id)
    try:
        found = segment_sizes.size(get_runtime().redis, db(), segment_id, rules)
    except InputError as exc:
        return jsonify(error=describe(exc))
    return jsonify(count=found.sendable)


@ui.route("/campaigns/<int:campaign_id>/progress")
@require_role(Role.viewer)
def campaigns_progress(campaign_id: int) -> Response:
    engine.get_campaign(db(), campaign_id)
    return jsonify(_progress(campaign_id))


def _wave_limit(raw: str) -> int | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        limit = int(raw)
    except ValueError:
        raise InputError(f"not a whole number: {raw[:20]!r}", where="limit") from None
    if limit < 1:
        raise InputError("a wave needs at least one contact", where="limit")
    return limit


@ui.route("/campaigns/<int:campaign_id>/waves/confirm")
@require_role(Role.marketer)
def campaigns_confirm_wave(campaign_id: int) -> BaseResponse | str:
    """The confirmation before a send: how many contacts, in which arms, to which segment, when."""
    campaign = engine.get_campaign(db(), campaign_id)
    back = url_for("ui.campaigns_detail", campaign_id=campaign_id)
    try:
        limit = _wave_limit(request.args.get("limit", ""))
        preview = wave_preview.preview_wave(db(), campaign_id, limit)
    except InputError as exc:
        flash(describe(exc), "error")
        return redirect(back)
    return render_template("ui/wave_confirm.html", campaign=campaign, preview=preview, limit=limit)


@ui.route("/campaigns/<int:campaign_id>/waves", methods=["POST"])
@require_role(Role.marketer)
def campaigns_send_wave(campaign_id: int) -> BaseResponse:
    engine.get_campaign(db(), campaign_id)
    back = url_for("ui.campaigns_detail", campaign_id=campaign_id)
    if request.form.get("confirmed") != "1":  # never a send without its confirmation page
        limit = request.form.get("limit", "").strip()[:20] or None  # url_for leaves out a None
        return redirect(url_for("ui.campaigns_confirm_wave", campaign_id=campaign_id, limit=limit))

    def send() -> dict[str, Any]:
        limit = _wave_limit(request.form.get("limit", ""))
        db().rollback()  # start_wave opens its own unit of work
        return jobs.start_wave(get_runtime(), campaign_id, limit)

    return perform(
        send,
        success=lambda w: f"Wave {w['number']} started: {w['planned']:,} contacts in {w['batches']} batches.",
        back=back,
    )


@ui.route("/campaigns/<int:campaign_id>/cancel", methods=["POST"])
@require_role(Role.marketer)
def campaigns_cancel(campaign_id: int) -> BaseResponse:
    return perform(
        lambda: planner.cancel_campaign(db(), campaign_id),
        success="Campaign cancelled.",
        back=url_for("ui.campaigns_detail", campaign_id=campaign_id),
    )


@ui.route("/campaigns/<int:campaign_id>/report")
@require_role(Role.viewer)
def campaigns_report(campaign_id: int) -> str:
    campaign = engine.get_campaign(db(), campaign_id)
    results = reports.campaign_results(db(), campaign_id)
    return render_template(
        "ui/campaign_report.html",
        campaign=campaign,
        template=db().get(Template, campaign.template_id),
        segment=db().get(Segment, campaign.segment_id) if campaign.segment_id else None,
        rollout=db().get(Rollout, campaign.rollout_id) if campaign.rollout_id else None,
        results=results,
        funnel=funnel_chart(results),
        generated_at=datetime.now(UTC),
    )
