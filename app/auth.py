"""Who is asking, and may they: browser sessions and API tokens, checked against roles on every call."""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from flask import abort, g, jsonify, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from app.extensions import db
from models import ApiToken, Role, User

F = TypeVar("F", bound=Callable[..., Any])
TOKEN_PREFIX = "mr_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def create_user(email: str, password: str, role: Role, name: str = "") -> User:
    user = User(
        email=email.strip().lower(), name=name, role=role.value, password_hash=hash_password(password)
    )
    db().add(user)
    return user


@functools.cache
def _decoy_hash() -> str:
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None; an unknown email costs the same hash
    check as a known one, so the time taken does not tell which emails have an account."""
    user = db().scalar(sa.select(User).where(User.email == email.strip().lower(), User.active.is_(True)))
    matches = check_password_hash(user.password_hash if user is not None else _decoy_hash(), password)
    return user if user is not None and matches else None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user: User, name: str = "") -> str:
    """Returns the token once; only its SHA-256 is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    db().add(ApiToken(user=user, name=name, token_hash=token_digest(token), prefix=token[:10]))
    return token


def _user_from_token(header: str) -> User | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.startswith(TOKEN_PREFIX):
        return None
    row = db().scalar(
        sa.select(ApiToken).where(
            ApiToken.token_hash == token_digest(token.strip()), ApiToken.revoked.is_(False)
        )
    )
    if row is None or not row.user.active:
        return None
    g.token_prefix = row.prefix  # the audit log names the token, not only its user
    now = datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        # At most one write a minute per token, committed at once so no request holds a write lock.
        row.last_used_at = now
        db().commit()
    return row.user


def current_user() -> User | None:
    if "user" in g:
        return cast(User | None, g.user)
    user: User | None = None
    header = request.headers.get("Authorization", "")
    if header:
        user = _user_from_token(header)
    elif request.path.startswith("/api/") and request.method not in ("GET", "HEAD"):
        # The API is CSRF-exempt, so a change through it needs a token: the browser's session cookie
        # only reads (the UI links to the streamed CSV exports).
        user = None
    elif session.get("user_id") is not None:
        user = db().get(User, session["user_id"])
        if user is not None and (not user.active or session.get("epoch", 0) != user.session_epoch):
            user = None  # deactivated, or the session ended by a logout or password change elsewhere
    g.user = user
    return user


def start_session(user: User) -> None:
    """Sign this browser in as `user` (a fresh session: no fixation)."""
    session.clear()
    session.permanent = True
    session["user_id"] = user.id
    session["epoch"] = user.session_epoch


def end_sessions(user: User, keep_current: bool = False) -> None:
    """End every browser session of `user` (a logout, a password change); with `keep_current`, the
    session of this request stays signed in. The caller commits."""
    user.session_epoch = (user.session_epoch or 0) + 1
    if keep_current and session.get("user_id") == user.id:
        session["epoch"] = user.session_epoch


def actor() -> str:
    """The audit log's name for whoever makes this request."""
    user = current_user()
    return user.email if user else "anonymous"


def require_role(needed: Role) -> Callable[[F], F]:
    """Every page and API call names the least role it needs. API calls answer JSON 401/403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            is_api = request.path.startswith("/api/")
            if user is None:
                if is_api:
                    return jsonify(error="authentication required", where="Authorization header"), 401
                return redirect(url_for("ui.login", next=request.full_path))
            if not user.role_enum.allows(needed):
                if is_api:
                    return jsonify(error=f"this needs the {needed.value} role; you are {user.role}"), 403
                abort(403)
            return view(*args, **kwargs)

        return cast(F, wrapped)

    return decorator
