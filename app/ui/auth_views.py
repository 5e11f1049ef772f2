"""Login and logout. Sessions expire; failed logins are rate-limited per address and account."""

from __future__ import annotations

import time

from flask import current_app, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app.auth import authenticate, current_user, end_sessions, start_session
from app.extensions import db, get_runtime
from app.ui.blueprint import ui


def _too_many_attempts(email: str) -> bool:
    """A fixed one-minute window in Redis, shared by every web process."""
    redis = get_runtime().redis
    limit = int(current_app.config["LOGIN_ATTEMPTS_PER_MINUTE"])
    window = int(time.time() // 60)
    keys = [f"mailramp:login:{who}:{window}" for who in (request.remote_addr or "-", email.lower())]
    pipe = redis.pipeline()
    for key in keys:
        pipe.incr(key)
        pipe.expire(key, 120)
    counts = pipe.execute()[::2]
    return max(int(c) for c in counts) > limit


@ui.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        email = request.form.get("email", "")
        if _too_many_attempts(email):
            flash("Too many login attempts. Wait a minute and try again.", "error")
            return render_template("ui/login.html"), 429  # type: ignore[return-value]
        user = authenticate(email, request.form.get("password", ""))
        if user is None:
            flash("Wrong email or password.", "error")
            return render_template("ui/login.html"), 401  # type: ignore[return-value]
        start_session(user)
        target = request.args.get("next") or ""
        if not target.startswith("/") or target.startswith("//"):
            target = url_for("ui.index")
        return redirect(target)
    return render_template("ui/login.html")


@ui.route("/logout", methods=["POST"])
def logout() -> Response:
    """Ends this user's sessions in every browser, not only this one."""
    user = current_user()
    if user is not None:
        end_sessions(user)
        db().commit()
    session.clear()
    return redirect(url_for("ui.login"))
