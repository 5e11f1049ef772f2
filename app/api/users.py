"""Users and API tokens over the API: the same rules as the users page (`app.accounts`)."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from app.accounts import add_user, change_user, new_token, revoke_token, token_json, user_json, visible_tokens
from app.api.errors import json_body
from app.api.spec import route
from app.auth import current_user
from app.extensions import db
from campaigns.errors import InputError
from models import Role, User

TAG = "users"
USER_PROPERTIES: dict[str, Any] = {
    "email": {"type": "string"},
    "name": {"type": "string"},
    "role": {"enum": [r.value for r in Role]},
    "password": {"type": "string", "minLength": 10},
}
USER_BODY = {"type": "object", "properties": USER_PROPERTIES, "required": ["email", "role", "password"]}
TOKEN_BODY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "user_id": {"type": "integer"}},
    "required": ["name"],
}


def _me() -> User:
    user = current_user()
    assert user is not None  # the route's role check ran first
    return user


@route("/users", "GET", role=Role.admin, summary="Users and their roles", tag=TAG)
def users_list() -> Response:
    rows = db().query(User).order_by(User.email).all()
    return jsonify(users=[user_json(u) for u in rows])


@route("/users", "POST", role=Role.admin, summary="Add a user with a role", body=USER_BODY, tag=TAG)
def users_create() -> tuple[Response, int]:
    body = json_body()
    user = add_user(db(), body.get("email"), body.get("password"), body.get("role"), body.get("name", ""))
    db().commit()
    return jsonify(user_json(user)), 201


@route(
    "/users/<int:user_id>",
    "PATCH",
    role=Role.admin,
    summary="Change a role, (de)activate, rename or reset the password",
    body={"type": "object", "properties": {**USER_PROPERTIES, "active": {"type": "boolean"}}},
    tag=TAG,
)
def users_update(user_id: int) -> Response:
    user = change_user(db(), user_id, _me(), json_body())
    db().commit()
    return jsonify(user_json(user))


@route("/tokens", "GET", role=Role.marketer, summary="API tokens (an admin sees everyone's)", tag=TAG)
def tokens_list() -> Response:
    return jsonify(tokens=[token_json(t) for t in visible_tokens(db(), _me())])


@route(
    "/tokens",
    "POST",
    role=Role.marketer,
    summary="Issue a token (shown once); an admin may issue one for another user",
    body=TOKEN_BODY,
    tag=TAG,
)
def tokens_create() -> tuple[Response, int]:
    body = json_body()
    user_id = body.get("user_id")
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise InputError("must be a user id", where="user_id")
    owner, token = new_token(db(), _me(), body.get("name"), user_id)
    db().commit()
    return jsonify(token=token, user_id=owner.id, role=owner.role), 201


@route("/tokens/<int:token_id>/revoke", "POST", role=Role.marketer, summary="Revoke a token", tag=TAG)
def tokens_revoke(token_id: int) -> Response:
    token = revoke_token(db(), _me(), token_id)
    db().commit()
    return jsonify(token_json(token))
