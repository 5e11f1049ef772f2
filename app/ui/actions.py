"""How a UI action runs: call the engine, commit, flash what happened, redirect (post/redirect/get).

Bad input and impossible states come back from the engine as `InputError` and `StateError`; the user
sees their message (with the field, row or line it names) and nothing is half-saved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import flash, redirect, request
from werkzeug.wrappers import Response

from app.extensions import db
from app.safe_redirect import local_target
from campaigns.errors import InputError, NotFound, StateError

T = TypeVar("T")


def perform(
    action: Callable[[], T],
    *,
    success: str | Callable[[T], str],
    back: str | Callable[[T], str],
    failed: str | None = None,
) -> Response:
    """Run `action`; on success commit and go to `back`, otherwise roll back and return to the form."""
    try:
        result = action()
        db().commit()
    except (InputError, StateError, NotFound) as exc:
        db().rollback()
        flash(describe(exc), "error")
        home = back if isinstance(back, str) else "/"
        return redirect(failed or local_target(request.referrer, home, host=request.host))
    flash(success(result) if callable(success) else success, "success")
    return redirect(back(result) if callable(back) else back)


def describe(exc: Exception) -> str:
    if isinstance(exc, InputError):
        return f"{exc.where}: {exc.message}" if exc.where else exc.message
    return str(exc)


def form_int(name: str, default: int | None = None) -> int | None:
    raw = request.form.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise InputError(f"{raw!r} is not a whole number", where=name) from exc


def arg_int(name: str, default: int) -> int:
    try:
        return max(int(request.args.get(name, default)), 0)
    except ValueError:
        return default
