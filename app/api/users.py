"""Users and API tokens over the API: the same rules as the users page (`app.accounts`)."""

from __future__ import annotations

from typing import Literal

from flask import Response, jsonify
from pydantic import Field

from app.accounts import (
    MIN_PASSWORD,
    add_user,
    change_user,
    new_token,
    revoke_token,
    token_json,
    user_json,
    visible_tokens,
)
from app.api.responses import NewToken, TokenList, TokenOut, UserList, UserOut
from app.api.schema import ApiModel, Id
from app.api.spec import route
from app.auth import current_user
from app.extensions import db
from models import Role, User

TAG = "users"
RoleName = Literal["viewer", "marketer", "approver", "admin"]  # models.Role's values


class UserIn(ApiModel):
    email: str = Field(max_length=320)
    name: str = Field("", max_length=200)
    role: RoleName
    password: str = Field(min_length=MIN_PASSWORD, max_length=1000)


class UserPatch(ApiModel):
    name: str | None = Field(None, max_length=200)
    role: RoleName | None = None
    password: str | None = Field(
        None, min_length=MIN_PASSWORD, max_length=1000, description="ends the user's other sessions"
    )
    active: bool | None = None


class TokenIn(ApiModel):
    name: str = Field(min_length=1, max_length=200)
    user_id: Id | None = Field(None, description="an admin may issue a token for another user")


def _me() -> User:
    user = current_user()
    assert user is not None  # the route's role check ran first
    return user


@route("/users", "GET", role=Role.admin, summary="Users and their roles", tag=TAG, response=UserList)
def users_list() -> Response:
    rows = db().query(User).order_by(User.email).all()
    return jsonify(users=[user_json(u) for u in rows])


@route(
    "/users",
    "POST",
    role=Role.admin,
    summary="Add a user with a role",
    body=UserIn,
    tag=TAG,
    status=201,
    response=UserOut,
)
def users_create(body: UserIn) -> tuple[Response, int]:
    user = add_user(db(), body.email, body.password, body.role, body.name)
    db().commit()
    return jsonify(user_json(user)), 201


@route(
    "/users/<int:user_id>",
    "PATCH",
    role=Role.admin,
    summary="Change a role, (de)activate, rename or reset the password",
    body=UserPatch,
    tag=TAG,
    response=UserOut,
)
def users_update(user_id: int, body: UserPatch) -> Response:
    user = change_user(db(), user_id, _me(), body.model_dump(exclude_none=True))
    db().commit()
    return jsonify(user_json(user))


@route(
    "/tokens",
    "GET",
    role=Role.marketer,
    summary="API tokens (an admin sees everyone's)",
    tag=TAG,
    response=TokenList,
)
def tokens_list() -> Response:
    return jsonify(tokens=[token_json(t) for t in visible_tokens(db(), _me())])


@route(
    "/tokens",
    "POST",
    role=Role.marketer,
    summary="Issue a token (shown once); an admin may issue one for another user",
    body=TokenIn,
    tag=TAG,
    status=201,
    response=NewToken,
)
def tokens_create(body: TokenIn) -> tuple[Response, int]:
    owner, token = new_token(db(), _me(), body.name, body.user_id)
    db().commit()
    return jsonify(token=token, user_id=owner.id, role=owner.role), 201


@route(
    "/tokens/<int:token_id>/revoke",
    "POST",
    role=Role.marketer,
    summary="Revoke a token",
    tag=TAG,
    response=TokenOut,
)
def tokens_revoke(token_id: int) -> Response:
    token = revoke_token(db(), _me(), token_id)
    db().commit()
    return jsonify(token_json(token))
