"""The UI blueprint and what holds for every page: the viewer's read-only rule, security headers and
error pages."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from app import health
from app.auth import current_user
from campaigns.errors import NotFound
from models import Role

ui = Blueprint("ui", __name__, template_folder="../templates")
health.init_blueprint(ui)  # the outage banner, and a 503 page while Redis or the database is down

# Actions anyone may POST to: logging in and out changes nothing in the workspace.
_OPEN_POSTS = {"ui.login", "ui.sign_in_link", "ui.logout"}
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# The UI serves every asset itself; nothing inline is executed and nothing may frame it.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


@ui.before_request
def _viewers_change_nothing() -> None:
    if request.method in _SAFE_METHODS or request.endpoint in _OPEN_POSTS:
        return
    user = current_user()
    if user is not None and not user.role_enum.allows(Role.marketer):
        abort(403)


@ui.after_request
def _security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    try:
        signed_in = current_user() is not None
    except DBAPIError:  # the database is down: the outage page; keep it out of caches too
        signed_in = True
    if signed_in:
        response.headers.setdefault("Cache-Control", "no-store")
    return response


_TITLES = {
    403: ("Not allowed", "Your role cannot do this. Ask an admin if you need it."),
    404: ("Not found", "There is nothing here. It may have been deleted."),
    409: ("Not possible now", "This action is not allowed in the current state."),
}


@ui.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> tuple[str, int] | HTTPException:
    code = exc.code or 500
    if code not in _TITLES:
        return exc
    title, message = _TITLES[code]
    return render_template("ui/error.html", code=code, title=title, message=message), code


@ui.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    message = "This form has expired or did not come from this site. Go back, reload the page and try again."
    return render_template("ui/error.html", code=400, title="Form expired", message=message), 400


@ui.errorhandler(NotFound)
def _engine_not_found(exc: NotFound) -> tuple[str, int]:
    return render_template("ui/error.html", code=404, title="Not found", message=str(exc)), 404
