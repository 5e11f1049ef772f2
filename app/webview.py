"""The "view in browser" page of a sent email: a signed token in, the email's HTML out, no open counted."""

from __future__ import annotations

from flask import Blueprint, Response, abort

from app.extensions import db, get_runtime
from campaigns.sending import webview

web_version = Blueprint("webview", __name__)


@web_version.get(f"{webview.PATH}<token>")
def show(token: str) -> Response:
    rt = get_runtime()
    send_id = webview.verify(rt.settings.secret_key, token)
    html = webview.render_web_version(db(), rt.settings, send_id) if send_id is not None else None
    if html is None:
        abort(404)
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    response.headers["Content-Security-Policy"] = "script-src 'none'; object-src 'none'"
    return response
