"""Several hosts, one signing key: without SECRET_KEY on a shared database, every host reads the key
kept there once; a database without that table refuses to start rather than invent a local key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from app import create_app
from campaigns.shared_secret import SecretKeyMissing, shared_secret_key
from models import InstanceSecret
from models.db import make_engine


def test_hosts_without_secret_key_share_the_one_in_the_database(
    app: Flask, database_url: str, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if database_url.startswith("sqlite"):
        engine = make_engine(database_url)  # the same rule, checked on the engine directly
        first, second = shared_secret_key(engine), shared_secret_key(engine)
        assert first == second and len(first) > 40
        engine.dispose()
        return
    monkeypatch.delenv("SECRET_KEY", raising=False)
    config = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "TESTING": True}
    host_a = create_app(config, instance_path=str(tmp_path / "a"))
    host_b = create_app(config, instance_path=str(tmp_path / "b"))
    assert host_a.config["SECRET_KEY"] == host_b.config["SECRET_KEY"]
    assert host_a.extensions["mailramp"].settings.secret_key == host_a.config["SECRET_KEY"]
    assert not (tmp_path / "a" / "secret_key").exists()  # nothing host-local
    with host_a.extensions["mailramp"].session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(InstanceSecret)) == 1
    for host in (host_a, host_b):
        host.extensions["mailramp"].session_factory.kw["bind"].dispose()


def test_an_unmigrated_database_without_secret_key_refuses_to_start(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")  # no tables at all
    with pytest.raises(SecretKeyMissing, match="SECRET_KEY"):
        shared_secret_key(engine)
    engine.dispose()
