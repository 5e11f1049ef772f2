"""The outbox of the embedded SMTP server: what the platform "sent" when no real MTA is configured.

Message HTML is served on its own URL into a sandboxed frame, with remote images blocked, so looking
at a message neither runs its code nor fires its open pixel.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import sqlalchemy as sa
from flask import Response, abort, current_app, render_template, request

from app.auth import require_role
from app.extensions import db, get_runtime
from app.ui.actions import arg_int
from app.ui.blueprint import ui
from app.ui.tables import TableState
from campaigns.sending import outbox as mail_outbox
from models import Contact, Role, Send

PAGE_SIZE = 50
MESSAGE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


def outbox_path() -> Path:
    return get_runtime().settings.instance_path / "outbox"


def _embedded() -> bool:
    port = current_app.config.get("OUTBOX_PORT")
    return str(current_app.config.get("SMTP_URL", "")).endswith(f":{port}")


ARM_LABELS = {"treatment": "AI", "control": "control", "holdout": "holdout", "excluded": "excluded"}


def arms_of(entries: list[mail_outbox.OutboxEntry]) -> dict[str, str]:
    """Each listed message's arm (by key), from the send ledger: one query for the page."""
    wanted: dict[tuple[int, str], str] = {}
    for entry in entries:
        address = parseaddr(entry.to)[1].strip().lower()
        if entry.campaign_id.isdigit() and address:
            wanted[(int(entry.campaign_id), address)] = entry.key
    arms = {e.key: f"test: {e.test_arm}" for e in entries if e.test_arm}
    if not wanted:
        return arms
    rows = db().execute(
        sa.select(Send.campaign_id, Contact.email, Send.arm)
        .join(Contact, Contact.id == Send.contact_id)
        .where(Send.campaign_id.in_({c for c, _ in wanted}), Contact.email.in_({a for _, a in wanted}))
    )
    for campaign_id, email, arm in rows:
        key = wanted.get((campaign_id, email.lower()))
        if key is not None and key not in arms:
            arms[key] = ARM_LABELS.get(arm, arm)
    return arms


@ui.route("/outbox")
@require_role(Role.viewer)
def outbox() -> str:
    page = max(arg_int("page", 1), 1)
    q = " ".join(request.args.get("q", "").split())[:200]
    total, messages = mail_outbox.list_messages(
        outbox_path(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, query=q
    )
    table = TableState(sort="", descending=False, page=page, per_page=PAGE_SIZE, total=total)
    if not messages and total:  # a page past the end: the last one
        table = table.with_total(total)
        _, messages = mail_outbox.list_messages(outbox_path(), limit=PAGE_SIZE, offset=table.offset, query=q)
    return render_template(
        "ui/outbox.html",
        messages=messages,
        arms=arms_of(messages),
        total=total,
        q=q,
        page=table.page,
        table=table,
        embedded=_embedded(),
        smtp_url=current_app.config.get("SMTP_URL"),
    )


def _message(key: str) -> EmailMessage:
    message = mail_outbox.read_message(outbox_path(), key) if outbox_path().exists() else None
    if message is None:
        abort(404)
    return message


@ui.route("/outbox/<key>")
@require_role(Role.viewer)
def outbox_message(key: str) -> str:
    message = _message(key)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    headers = [(name, str(value)) for name, value in message.items() if name != "X-Outbox-Envelope-To"]
    return render_template(
        "ui/outbox_message.html",
        key=key,
        message=message,
        headers=headers,
        text=text.get_content() if text is not None else "",
        has_html=html is not None,
    )


@ui.route("/outbox/<key>/body.html")
@require_role(Role.viewer)
def outbox_html(key: str) -> Response:
    part = _message(key).get_body(preferencelist=("html",))
    if part is None:
        abort(404)
    response = Response(part.get_content(), mimetype="text/html")
    response.headers["Content-Security-Policy"] = MESSAGE_CSP
    return response
