"""The signing key every host shares when SECRET_KEY is not configured: kept in the database, once.

Sessions and tracking links are signed with it, so two hosts with different keys would refuse each
other's links. The first host to start writes a random key; every later host reads that row.
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from models import InstanceSecret, utcnow

NAME = "secret_key"


class SecretKeyMissing(RuntimeError):
    """No SECRET_KEY configured and none in the database: the platform must not start."""


def shared_secret_key(engine: sa.Engine) -> str:
    """The key in the database, written once by the first host that asks."""
    try:
        with engine.begin() as conn:
            key = conn.scalar(sa.select(InstanceSecret.value).where(InstanceSecret.name == NAME))
            if key:
                return str(key)
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.insert(InstanceSecret).values(
                        name=NAME, value=secrets.token_urlsafe(48), created_at=utcnow()
                    )
                )
        except IntegrityError:
            pass  # another host wrote it first: use theirs
        with engine.begin() as conn:
            return str(conn.scalar(sa.select(InstanceSecret.value).where(InstanceSecret.name == NAME)))
    except DBAPIError as exc:  # no such table: the database has not been migrated yet
        raise SecretKeyMissing(
            "SECRET_KEY is not set and the database has no shared key yet (not migrated?): run "
            "`mailramp db upgrade` (it needs no key; `mailramp run` does it for you), then start again, "
            "and mailramp keeps one key in the database for every host; or set SECRET_KEY to the same "
            f"value on every host ({type(exc.orig).__name__})"
        ) from exc
