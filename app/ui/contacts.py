"""Contacts: search, the import form, and one contact's page with its arm history."""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db
from app.ui import ui
from app.ui.actions import arg_int, perform
from app.ui.imports import ENCODINGS, recent_runs
from campaigns import suppression
from models import Campaign, Contact, Interaction, Item, Role, Send
from models.contacts import CONTACT_STATUSES

PAGE_SIZE = 50


@ui.route("/contacts")
@require_role(Role.viewer)
def contacts() -> str:
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    page = max(arg_int("page", 1), 1)
    query = sa.select(Contact)
    if q:
        pattern = f"%{q.lower()}%"
        query = query.where(sa.or_(Contact.email.like(pattern), sa.func.lower(Contact.name).like(pattern)))
    if status in CONTACT_STATUSES:
        query = query.where(Contact.status == status)
    rows = list(
        db().scalars(query.order_by(Contact.id.desc()).offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1))
    )
    total = db().scalar(sa.select(sa.func.count()).select_from(Contact)) or 0
    return render_template(
        "ui/contacts.html",
        contacts=rows[:PAGE_SIZE],
        has_next=len(rows) > PAGE_SIZE,
        page=page,
        q=q,
        status=status,
        statuses=CONTACT_STATUSES,
        total=total,
        runs=recent_runs(("contacts", "suppressions")),
        encodings=ENCODINGS,
    )


@ui.route("/contacts/<int:contact_id>")
@require_role(Role.viewer)
def contacts_detail(contact_id: int) -> str:
    contact = db().get(Contact, contact_id) or abort(404)
    history = (
        db()
        .execute(
            sa.select(Send, Campaign.name)
            .join(Campaign, Campaign.id == Send.campaign_id)
            .where(Send.contact_id == contact_id)
            .order_by(Send.queued_at.desc())
            .limit(200)
        )
        .all()
    )
    purchases = (
        db()
        .execute(
            sa.select(Interaction, Item.name, Item.category)
            .join(Item, Item.id == Interaction.item_id)
            .where(Interaction.contact_id == contact_id)
            .order_by(Interaction.occurred_at.desc())
            .limit(20)
        )
        .all()
    )
    return render_template(
        "ui/contact_detail.html",
        contact=contact,
        history=history,
        purchases=purchases,
        suppressed=suppression.is_suppressed(db(), contact.email),
    )


@ui.route("/contacts/<int:contact_id>/suppression", methods=["POST"])
@require_role(Role.marketer)
def contacts_suppression(contact_id: int) -> Response:
    contact = db().get(Contact, contact_id) or abort(404)
    back = url_for("ui.contacts_detail", contact_id=contact_id)
    if request.form.get("suppress") == "1":
        return perform(
            lambda: suppression.add_suppression(db(), contact.email, "manual"),
            success=f"{contact.email} will not be sent to.",
            back=back,
        )
    return perform(
        lambda: suppression.remove_suppression(db(), contact.email),
        success=f"{contact.email} is no longer suppressed.",
        back=back,
    )
