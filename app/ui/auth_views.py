"""Login and logout. Sessions expire; failed logins are throttled per client and account, never
keeping out a browser that signed in before (app.login_throttle)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app import login_throttle
from app.auth import authenticate, current_user, end_sessions, start_session
from app.extensions import db, get_runtime
from app.safe_redirect import local_target
from app.ui.blueprint import ui


@ui.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        email = request.form.get("email", "")
        redis = get_runtime().redis
        if login_throttle.is_throttled(redis, email):
            flash("Too many login attempts. Wait a minute and try again.", "error")
            return render_template("ui/login.html"), 429  # type: ignore[return-value]
        user = authenticate(email, request.form.get("password", ""))
        if user is None:
            login_throttle.record_failure(redis, email)
            flash("Wrong email or password.", "error")
            return render_template("ui/login.html"), 401  # type: ignore[return-value]
        start_session(user)
        target = local_target(request.args.get("next"), url_for("ui.index"))
        return login_throttle.remember_device(redirect(target), email)
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
