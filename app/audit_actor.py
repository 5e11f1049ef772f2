"""Who the audit log names for a change made while serving a request or running a CLI command."""

from __future__ import annotations

import getpass

import click
from flask import g, has_request_context, request

from campaigns.privacy.audit import Actor


def request_actor() -> Actor | None:
    if has_request_context():
        path = request.path
        via = "api" if path.startswith("/api/") else "signup" if path.startswith("/s/") else "ui"
        user = g.get("user")
        if user is None:  # public pages: the person signing up or confirming
            return Actor("visitor" if via == "signup" else "anonymous", via)
        prefix = g.get("token_prefix")
        return Actor(f"{user.email} (token {prefix}…)" if prefix else user.email, via)
    if click.get_current_context(silent=True) is not None:
        try:
            name = getpass.getuser()
        except (KeyError, OSError):
            name = "unknown"
        return Actor(f"cli:{name}", "cli")
    return None
