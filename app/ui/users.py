"""Settings: the users admin page (admins create users with roles) and API tokens. The rules live in
`app.accounts`, shared with the API."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template, request, url_for
from werkzeug.wrappers import Response

from app.accounts import add_user, change_user, new_token, revoke_token, visible_tokens
from app.auth import current_user, require_role
from app.extensions import db
from app.ui.actions import describe, perform
from app.ui.blueprint import ui
from campaigns.errors import InputError, NotFound
from models import Role, User


def _me() -> User:
    user = current_user()
    assert user is not None  # require_role ran first
    return user


@ui.route("/settings/users")
@require_role(Role.admin)
def users() -> str:
    rows = db().scalars(sa.select(User).order_by(User.active.desc(), User.email)).all()
    return render_template("ui/users.html", users=rows, roles=list(Role))


@ui.route("/settings/users", methods=["POST"])
@require_role(Role.admin)
def users_create() -> Response:
    form = request.form
    return perform(
        lambda: add_user(
            db(), form.get("email"), form.get("password"), form.get("role"), form.get("name", "")
        ),
        success=lambda u: f"Created {u.email} ({u.role}).",
        back=url_for("ui.users"),
    )


@ui.route("/settings/users/<int:user_id>", methods=["POST"])
@require_role(Role.admin)
def users_update(user_id: int) -> Response:
    changes: dict[str, object] = {}
    if "role" in request.form:
        changes["role"] = request.form["role"]
    if "active" in request.form:
        changes["active"] = request.form["active"] == "1"
    if request.form.get("password"):
        changes["password"] = request.form["password"]
    return perform(
        lambda: change_user(db(), user_id, _me(), changes),
        success=lambda u: f"Updated {u.email}.",
        back=url_for("ui.users"),
    )


def _token_owners() -> list[User]:
    me = _me()
    if not me.role_enum.allows(Role.admin):
        return [me]
    return list(db().scalars(sa.select(User).where(User.active.is_(True)).order_by(User.email)).all())


def _tokens_page(**extra: object) -> str:
    context: dict[str, object] = {"new_token": None, **extra}
    return render_template(
        "ui/tokens.html", tokens=visible_tokens(db(), _me()), owners=_token_owners(), **context
    )


@ui.route("/settings/tokens")
@require_role(Role.marketer)
def tokens() -> str:
    return _tokens_page()


@ui.route("/settings/tokens", methods=["POST"])
@require_role(Role.marketer)
def tokens_create() -> str | tuple[str, int]:
    """Shows the new token once, in this response only (never in a flash, which lives in the cookie)."""
    try:
        owner, token = new_token(db(), _me(), request.form.get("name"), request.form.get("user_id", type=int))
    except (InputError, NotFound) as exc:
        db().rollback()
        return _tokens_page(name_error=describe(exc)), 400
    db().commit()
    return _tokens_page(new_token=token, owner=owner)


@ui.route("/settings/tokens/<int:token_id>/revoke", methods=["POST"])
@require_role(Role.marketer)
def tokens_revoke(token_id: int) -> Response:
    return perform(
        lambda: revoke_token(db(), _me(), token_id),
        success=lambda t: f"Revoked {t.prefix}…",
        back=url_for("ui.tokens"),
    )
