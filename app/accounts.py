"""Administering who can sign in: users with roles, and API tokens. One set of rules for the users
page and the API (`/api/v1/users`, `/api/v1/tokens`); `app.auth` does the hashing and checking."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from flask import abort
from sqlalchemy.orm import Session

from app.auth import create_user, end_sessions, hash_password, issue_token
from campaigns.errors import InputError, NotFound
from models import ApiToken, Role, User

MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_role(raw: Any) -> Role:
    try:
        return Role(str(raw))
    except ValueError as exc:
        raise InputError(
            f"unknown role {raw!r}; one of {', '.join(r.value for r in Role)}", where="role"
        ) from exc


def _password(raw: Any) -> str:
    if not isinstance(raw, str) or len(raw) < MIN_PASSWORD:
        raise InputError(f"use at least {MIN_PASSWORD} characters", where="password")
    return raw


def add_user(session: Session, email: Any, password: Any, role: Any, name: Any = "") -> User:
    address = str(email or "").strip().lower()
    if not _EMAIL.match(address):
        raise InputError("enter an email address like name@example.com", where="email")
    if session.scalar(sa.select(User.id).where(User.email == address)) is not None:
        raise InputError(f"{address} already has an account", where="email")
    user = create_user(address, _password(password), parse_role(role), str(name or "").strip()[:200])
    session.flush()
    return user


def change_user(session: Session, user_id: int, acting: User, changes: dict[str, Any]) -> User:
    """Role, active, name or password. Nobody demotes or deactivates themselves (no lock-out)."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    unknown = set(changes) - {"role", "active", "name", "password"}
    if unknown:
        raise InputError(f"unknown field {sorted(unknown)[0]!r}", where=sorted(unknown)[0])
    role = parse_role(changes["role"]) if "role" in changes else None
    active = changes.get("active")
    if active is not None and not isinstance(active, bool):
        raise InputError("must be true or false", where="active")
    if user.id == acting.id and ((role is not None and role.value != user.role) or active is False):
        raise InputError("you cannot demote or deactivate yourself; ask another admin", where="role")
    if role is not None:
        user.role = role.value
    if active is not None:
        user.active = active
        if not active:
            end_sessions(user)
    if "name" in changes:
        user.name = str(changes["name"] or "").strip()[:200]
    if changes.get("password"):
        user.password_hash = hash_password(_password(changes["password"]))
        end_sessions(user, keep_current=True)  # a stolen session dies with the old password
    session.flush()
    return user


def visible_tokens(session: Session, me: User) -> list[ApiToken]:
    """Everyone's for an admin, one's own otherwise; live ones first."""
    query = sa.select(ApiToken).join(User).order_by(ApiToken.revoked, ApiToken.created_at.desc())
    if not me.role_enum.allows(Role.admin):
        query = query.where(ApiToken.user_id == me.id)
    return list(session.scalars(query))


def new_token(session: Session, me: User, name: Any, user_id: int | None = None) -> tuple[User, str]:
    """(owner, token): the token is returned once and only its hash is stored. Only an admin issues
    tokens for someone else (for example a read-only token for a viewer)."""
    owner = me
    if user_id is not None and user_id != me.id:
        if not me.role_enum.allows(Role.admin):
            abort(403, "only an admin issues tokens for another user")
        found = session.get(User, user_id)
        if found is None or not found.active:
            raise NotFound(f"user {user_id} does not exist or is deactivated")
        owner = found
    label = str(name or "").strip()[:200]
    if not label:
        raise InputError("name the token after what will use it", where="name")
    token = issue_token(owner, label)
    session.flush()
    return owner, token


def revoke_token(session: Session, me: User, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} does not exist")
    if token.user_id != me.id and not me.role_enum.allows(Role.admin):
        abort(403, "only an admin revokes someone else's token")
    token.revoked = True
    session.flush()
    return token


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role,
        "active": user.active,
        "created_at": user.created_at.isoformat(),
    }


def token_json(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "user_id": token.user_id,
        "user_email": token.user.email,
        "revoked": token.revoked,
        "created_at": token.created_at.isoformat(),
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
