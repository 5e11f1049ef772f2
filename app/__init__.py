"""Flask only: the application factory binds configuration, the engine runtime and the blueprints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from flask_wtf.csrf import CSRFProtect

from app import config, extensions

csrf = CSRFProtect()


def create_app(test_config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    instance_path = instance_path or os.environ.get("MAILRAMP_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    config.load(app, test_config)
    app.permanent_session_lifetime = timedelta(minutes=int(app.config["SESSION_LIFETIME_MINUTES"]))
    extensions.init_app(app)
    csrf.init_app(app)

    from app.api import api
    from app.tracking import tracking
    from app.ui import ui

    csrf.exempt(api)  # token-authenticated, no cookies
    csrf.exempt(tracking)  # signed tokens; RFC 8058 one-click POSTs come from mail clients
    app.register_blueprint(api)
    app.register_blueprint(tracking)
    app.register_blueprint(ui)

    from app import cli

    cli.init_app(app)
    return app
