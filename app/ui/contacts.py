"""Contacts: search, the import form, and one contact's page with its arm history."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import require_role
from app.extensions import db, get_runtime
from app.ui.actions import perform
from app.ui.blueprint import ui
from app.ui.imports import ENCODINGS, recent_runs
from app.ui.tables import table_state
from campaigns.contacts import records as people
from campaigns.contacts import suppression
from campaigns.errors import InputError
from campaigns.privacy import consent, erasure
from models import Contact, Interaction, Item, Role, Segment
from models.contacts import CONTACT_STATUSES


@ui.route("/contacts")
@require_role(Role.viewer)
def contacts() -> str:
    q = request.args.get("q", "").strip()
    status = request.args.get("status", "")
    segment_id = request.args.get("segment", type=int)
    table = table_state(tuple(people.SORTABLE), "created_at", default_descending=True)

    def fetch(offset: int) -> tuple[list[Contact], int]:
        return people.sorted_contacts(
            db(), query=q, status=status if status in CONTACT_STATUSES else None, segment_id=segment_id,
            sort=table.sort, descending=table.descending, offset=offset, limit=table.per_page,
        )  # fmt: skip

    rows, total = fetch(table.offset)
    table = table.with_total(total)
    if not rows and total:  # a page past the end: the last one
        rows, _ = fetch(table.offset)
    return render_template(
        "ui/contacts.html",
        rows=rows,
        table=table,
        args={"q": q, "status": status, "segment": segment_id or ""},
        q=q,
        status=status,
        segment_id=segment_id,
        statuses=CONTACT_STATUSES,
        segments=db().scalars(sa.select(Segment).order_by(Segment.name)).all(),
        total=db().scalar(sa.select(sa.func.count()).select_from(Contact)) or 0,
        runs=recent_runs(("contacts", "suppressions")),
        encodings=ENCODINGS,
    )


@ui.route("/contacts/<int:contact_id>")
@require_role(Role.viewer)
def contacts_detail(contact_id: int) -> str:
    contact = people.get_contact(db(), contact_id)
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
        history=people.send_history(db(), contact_id, limit=200),
        purchases=purchases,
        suppressed=suppression.is_suppressed(db(), contact.email),
        consent_history=consent.history(db(), contact_id),
    )


@ui.route("/contacts/<int:contact_id>/suppression", methods=["POST"])
@require_role(Role.marketer)
def contacts_suppression(contact_id: int) -> Response:
    contact = people.get_contact(db(), contact_id)
    back = url_for("ui.contacts_detail", contact_id=contact_id)
    if request.form.get("suppress") == "1":

        def suppress() -> None:
            suppression.add_suppression(db(), contact.email, "manual")  # records the consent step

        return perform(
            suppress,
            success=f"{contact.email} will not be sent to.",
            back=back,
        )
    return perform(
        lambda: suppression.remove_suppression(db(), contact.email),
        success=f"{contact.email} is no longer suppressed.",
        back=back,
    )


@ui.route("/contacts/<int:contact_id>/erase", methods=["POST"])
@require_role(Role.admin)
def contacts_erase(contact_id: int) -> Response:
    """Erasure on a person's request: the contact and everything derived from it."""
    reason = request.form.get("reason", "").strip()

    def erase() -> None:
        if not reason:
            raise InputError("say why: an erasure needs a reason (the request's reference)", where="reason")
        erasure.erase_contact(db(), get_runtime().redis, contact_id, reason)

    return perform(
        erase,
        success=f"Contact {contact_id} is erased: a hash of the address stays on the suppression list.",
        back=url_for("ui.contacts"),
        failed=url_for("ui.contacts_detail", contact_id=contact_id),
    )
