"""Settings: the users admin page (admins create users with roles) and API tokens."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import abort, render_template, request, url_for
from werkzeug.wrappers import Response

from app.auth import create_user, current_user, hash_password, issue_token, require_role
from app.extensions import db
from app.ui import ui
from app.ui.actions import perform
from campaigns.errors import InputError
from models import ApiToken, Role, User

MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _me() -> User:
    user = current_user()
    assert user is not None  # require_role ran first
    return user


@ui.route("/settings/users")
@require_role(Role.admin)
def users() -> str:
    rows = db().scalars(sa.select(User).order_by(User.active.desc(), User.email)).all()
    return render_template("ui/users.html", users=rows, roles=list(Role))


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError as exc:
        raise InputError(f"unknown role {raw!r}", where="role") from exc


@ui.route("/settings/users", methods=["POST"])
@require_role(Role.admin)
def users_create() -> Response:
    def create() -> User:
        email = request.form.get("email", "").strip().lower()
        password = request.form.get("password", "")
        if not _EMAIL.match(email):
            raise InputError("enter an email address like name@example.com", where="email")
        if db().scalar(sa.select(User.id).where(User.email == email)) is not None:
            raise InputError(f"{email} already has an account", where="email")
        if len(password) < MIN_PASSWORD:
            raise InputError(f"use at least {MIN_PASSWORD} characters", where="password")
        return create_user(email, password, _role(request.form.get("role", "")), request.form.get("name", ""))

    return perform(create, success=lambda u: f"Created {u.email} ({u.role}).", back=url_for("ui.users"))


@ui.route("/settings/users/<int:user_id>", methods=["POST"])
@require_role(Role.admin)
def users_update(user_id: int) -> Response:
    user = db().get(User, user_id)
    if user is None:
        abort(404)

    def update() -> User:
        assert user is not None
        if user.id == _me().id and (
            request.form.get("role", user.role) != user.role or request.form.get("active") == "0"
        ):
            raise InputError("you cannot demote or deactivate yourself; ask another admin", where="role")
        if "role" in request.form:
            user.role = _role(request.form["role"]).value
        if "active" in request.form:
            user.active = request.form["active"] == "1"
        if request.form.get("password"):
            if len(request.form["password"]) < MIN_PASSWORD:
                raise InputError(f"use at least {MIN_PASSWORD} characters", where="password")
            user.password_hash = hash_password(request.form["password"])
        return user

    return perform(update, success=lambda u: f"Updated {u.email}.", back=url_for("ui.users"))


def _visible_tokens() -> list[ApiToken]:
    me = _me()
    query = sa.select(ApiToken).join(User).order_by(ApiToken.revoked, ApiToken.created_at.desc())
    if not me.role_enum.allows(Role.admin):
        query = query.where(ApiToken.user_id == me.id)
    return list(db().scalars(query).all())


def _token_owners() -> list[User]:
    me = _me()
    if not me.role_enum.allows(Role.admin):
        return [me]
    return list(db().scalars(sa.select(User).where(User.active.is_(True)).order_by(User.email)).all())


@ui.route("/settings/tokens")
@require_role(Role.marketer)
def tokens() -> str:
    return render_template("ui/tokens.html", tokens=_visible_tokens(), owners=_token_owners(), new_token=None)


@ui.route("/settings/tokens", methods=["POST"])
@require_role(Role.marketer)
def tokens_create() -> str | tuple[str, int]:
    """Shows the new token once, in this response only (never in a flash, which lives in the cookie)."""
    me = _me()
    owner = me
    wanted = request.form.get("user_id", type=int)
    if wanted and wanted != me.id:
        if not me.role_enum.allows(Role.admin):
            abort(403)
        owner = db().get(User, wanted) or abort(404)
    name = request.form.get("name", "").strip()[:200]
    if not name:
        page = render_template(
            "ui/tokens.html",
            tokens=_visible_tokens(),
            owners=_token_owners(),
            new_token=None,
            name_error="name the token after what will use it",
        )
        return page, 400
    token = issue_token(owner, name)
    db().commit()
    return render_template(
        "ui/tokens.html", tokens=_visible_tokens(), owners=_token_owners(), new_token=token, owner=owner
    )


@ui.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@require_role(Role.marketer)
def tokens_revoke(token_id: int) -> Response:
    token = db().get(ApiToken, token_id)
    me = _me()
    if token is None:
        abort(404)
    if token.user_id != me.id and not me.role_enum.allows(Role.admin):
        abort(403)

    def revoke() -> ApiToken:
        assert token is not None
        token.revoked = True
        return token

    return perform(revoke, success=lambda t: f"Revoked {t.prefix}…", back=url_for("ui.tokens"))
