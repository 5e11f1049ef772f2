"""Hosted signup forms (`/s/<slug>`) and confirmation links (`/s/confirm/<token>`), public.

Embeddable: the page may be framed by any site, and its anti-forgery token is signed into the form
itself (bound to the form, expiring) instead of a session cookie that a framed page may not get.
Bots are slowed by a per-address rate limit in Redis and a honeypot field; a filled honeypot gets the
usual answer and changes nothing. The confirmation link shows a button (a POST), so a mail scanner
that fetches links does not confirm on the person's behalf.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template, request, url_for
from werkzeug.wrappers import Response

from app.extensions import db, get_runtime
from campaigns.errors import InputError, NotFound
from campaigns.privacy import signup
from models import Contact, SignupForm

log = logging.getLogger(__name__)
signup_pages = Blueprint("signup", __name__, url_prefix="/s")
CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors *"
DEFAULTS = {
    "DOUBLE_OPT_IN": True,  # the workspace default for API signups without a form
    "CONFIRM_LINK_HOURS": 72,
    "SIGNUPS_PER_HOUR": 20,  # per client address
    "SIGNUP_FORM_HOURS": 12,  # how long a rendered form can be sent
    "CONFIRM_FROM": "",  # empty: no-reply@ the base URL's host
}


def setting(name: str) -> object:
    return current_app.config.get(name, DEFAULTS[name])


def confirm_max_age() -> int:
    return int(str(setting("CONFIRM_LINK_HOURS"))) * 3600


def confirm_sender() -> str:
    """CONFIRM_FROM, else no-reply@ the base URL's host when it is a domain name (never an IP
    address: the Message-ID and DKIM need a sending domain), else no-reply@mailramp.local."""
    sender = str(setting("CONFIRM_FROM") or "")
    if sender:
        return sender
    host = get_runtime().settings.base_url.split("://")[-1].split("/")[0].split(":")[0].lower()
    is_domain = "." in host and not host.replace(".", "").isdigit() and not host.startswith("[")
    return f"no-reply@{host if is_domain else 'mailramp.local'}"


def send_confirmation(contact: Contact, form: SignupForm | None) -> str:
    """Build the signed link and mail it now; returns the link (the API answers with it to tests
    and integrations that hold a token)."""
    settings = get_runtime().settings
    token = signup.confirmation_token(settings.secret_key, contact.id, contact.email)
    url = settings.base_url + url_for("signup.confirm_page", token=token)
    hours = int(str(setting("CONFIRM_LINK_HOURS")))
    refused = signup.confirmation_refused(db(), contact)
    if refused:  # the same answer to the caller: whether an address is suppressed does not leak
        log.info("no confirmation mailed to contact %s: %s", contact.id, refused)
        return url
    message = signup.confirmation_message(db(), settings, contact, form, url, confirm_sender(), hours)
    signup.deliver(settings.smtp_url, message)
    return url


@signup_pages.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def _form(slug: str) -> SignupForm:
    form = db().scalar(sa.select(SignupForm).where(SignupForm.slug == slug))
    if form is None:
        raise NotFound(f"there is no signup form {slug!r}")
    return form


def _page(status: int = 200, **context: object) -> tuple[str, int]:
    context.setdefault("title", "Sign up")
    return render_template("signup/page.html", **context), status


def _too_many() -> bool:
    """A fixed one-hour window per client address in Redis, shared by every web process."""
    redis = get_runtime().redis
    key = f"mailramp:signup:{request.remote_addr or '-'}:{int(time.time() // 3600)}"
    pipe = redis.pipeline()
    pipe.incr(key)
    pipe.expire(key, 7200)
    count = int(pipe.execute()[0])
    return count > int(str(setting("SIGNUPS_PER_HOUR")))


@signup_pages.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[str, int]:
    return _page(404, page="error", title="Not found", error=str(exc))


@signup_pages.route("/<slug>", methods=["GET"])
def form_page(slug: str) -> tuple[str, int]:
    form = _form(slug)
    token = signup.form_token(get_runtime().settings.secret_key, form.slug)
    return _page(page="form", form=form, form_token=token, values={}, title=form.name)


@signup_pages.route("/<slug>", methods=["POST"])
def submit(slug: str) -> tuple[str, int]:
    form = _form(slug)
    settings = get_runtime().settings
    values = {"email": request.form.get("email", ""), "name": request.form.get("name", "")}

    def again(status: int, error: str) -> tuple[str, int]:
        token = signup.form_token(settings.secret_key, form.slug)
        return _page(status, page="form", form=form, form_token=token, values=values, error=error)

    if _too_many():
        return again(429, "Too many signups from your address. Please try again later.")
    if request.form.get("website"):  # the honeypot: only bots fill it in
        log.info("signup form %s: honeypot filled, ignored", form.slug)
        return _page(page="sent", pending=form.double_opt_in)
    try:
        signup.check_form_token(
            settings.secret_key,
            form.slug,
            request.form.get("form_token", ""),
            int(str(setting("SIGNUP_FORM_HOURS"))) * 3600,
        )
        if request.form.get("consent") != "yes":
            raise InputError("tick the box to agree to receive these emails", where="consent")
        result, contact = signup.sign_up(
            db(),
            signup.Signup(
                email=values["email"],
                name=values["name"],
                ip=request.remote_addr or "",
                user_agent=request.headers.get("User-Agent", "")[:500],
            ),
            method="signup_form",
            source=f"form {form.slug}",
            double_opt_in=form.double_opt_in,
            form=form,
        )
    except InputError as exc:
        return again(400, exc.message)
    db().commit()
    if result.state == "pending":
        send_confirmation(contact, form)
    # the same answer whether or not the address was already subscribed: nothing leaks
    return _page(page="sent", pending=form.double_opt_in)


@signup_pages.route("/confirm/<token>", methods=["GET"])
def confirm_page(token: str) -> tuple[str, int]:
    try:
        signup.read_confirmation(get_runtime().settings.secret_key, token, confirm_max_age())
    except InputError as exc:
        return _page(400, page="error", title="Link not valid", error=exc.message)
    return _page(page="confirm", title="Confirm your subscription")


@signup_pages.route("/confirm/<token>", methods=["POST"])
def confirm_submit(token: str) -> tuple[str, int]:
    try:
        signup.confirm(
            db(),
            get_runtime().settings.secret_key,
            token,
            confirm_max_age(),
            ip=request.remote_addr or "",
            user_agent=request.headers.get("User-Agent", "")[:500],
        )
    except InputError as exc:
        return _page(400, page="error", title="Link not valid", error=exc.message)
    db().commit()
    return _page(page="confirmed", title="Subscribed")
