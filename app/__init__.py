"""Flask only: the application factory binds configuration, the engine runtime and the blueprints."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_wtf.csrf import CSRFProtect

from app import config, extensions

csrf = CSRFProtect()


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


class FiniteJSONProvider(DefaultJSONProvider):
    """JSON has no NaN or Infinity: such a number (a bad value stored before validation) is null."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        try:
            return super().dumps(obj, **{**kwargs, "allow_nan": False})
        except ValueError:
            return super().dumps(_finite(obj), **{**kwargs, "allow_nan": False})


def _ids_in_range(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Every `<int:...>` in every route (UI pages, API, tracking) is a bigint id: a larger one names
    nothing (404) instead of overflowing the database driver."""
    from werkzeug.exceptions import NotFound

    from app.api.schema import BIGINT_MAX

    for name, value in (values or {}).items():
        if isinstance(value, int) and not isinstance(value, bool) and value > BIGINT_MAX:
            raise NotFound(f"{name} {value} does not exist")


def create_app(test_config: Mapping[str, Any] | None = None, instance_path: str | None = None) -> Flask:
    instance_path = instance_path or os.environ.get("MAILRAMP_INSTANCE_PATH") or None
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.json = FiniteJSONProvider(app)
    config.load(app, test_config)
    app.permanent_session_lifetime = timedelta(minutes=int(app.config["SESSION_LIFETIME_MINUTES"]))
    extensions.init_app(app)
    csrf.init_app(app)
    app.url_value_preprocessor(_ids_in_range)

    from app.audit_actor import request_actor
    from campaigns.privacy import audit

    audit.set_resolver(request_actor)

    from app.api import api
    from app.ops import ops
    from app.signup import signup_pages
    from app.tracking import tracking
    from app.ui import ui
    from app.webview import web_version

    csrf.exempt(api)  # token-authenticated, no cookies
    csrf.exempt(tracking)  # signed tokens; RFC 8058 one-click POSTs come from mail clients
    app.register_blueprint(api)
    app.register_blueprint(tracking)
    app.register_blueprint(ui)
    csrf.exempt(signup_pages)  # public: a signed form token instead of a session (works in an iframe)
    app.register_blueprint(signup_pages)
    app.register_blueprint(web_version)
    app.register_blueprint(ops)

    from app.tracking_fast import TrackingFastPath

    app.wsgi_app = TrackingFastPath(app, app.wsgi_app)  # type: ignore[method-assign]

    from app import commands

    commands.init_app(app)
    return app
