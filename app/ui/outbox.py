"""The outbox of the embedded SMTP server: what the platform "sent" when no real MTA is configured.

Message HTML is served on its own URL into a sandboxed frame, with remote images blocked, so looking
at a message neither runs its code nor fires its open pixel.
"""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

from flask import Response, abort, current_app, render_template

from app.auth import require_role
from app.extensions import get_runtime
from app.ui.actions import arg_int
from app.ui.blueprint import ui
from app.ui.tables import TableState
from campaigns.sending import outbox as mail_outbox
from models import Role

PAGE_SIZE = 50
MESSAGE_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'; sandbox"


def outbox_path() -> Path:
    return get_runtime().settings.instance_path / "outbox"


def _embedded() -> bool:
    port = current_app.config.get("OUTBOX_PORT")
    return str(current_app.config.get("SMTP_URL", "")).endswith(f":{port}")


@ui.route("/outbox")
@require_role(Role.viewer)
def outbox() -> str:
    page = max(arg_int("page", 1), 1)
    total, messages = mail_outbox.list_messages(outbox_path(), limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    return render_template(
        "ui/outbox.html",
        messages=messages,
        total=total,
        page=page,
        has_next=page * PAGE_SIZE < total,
        table=TableState(sort="", descending=False, page=page, per_page=PAGE_SIZE, total=total),
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
