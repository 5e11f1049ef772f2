"""Login, sign-in links and logout. Sessions expire; failed logins are throttled per client and
account, never keeping out a browser that signed in before (app.login_throttle); while strangers hold
an account, a new browser gets in through a link mailed to the account's address (app.login_links)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from app import login_links, login_throttle
from app.auth import authenticate, current_user, end_sessions, start_session
from app.extensions import db, get_runtime
from app.safe_redirect import local_target
from app.ui.blueprint import ui
from campaigns.errors import InputError


@ui.route("/login", methods=["GET", "POST"])
def login() -> str | Response:
    if request.method == "POST":
        email = request.form.get("email", "")
        redis = get_runtime().redis
        state = login_throttle.state(redis, email)
        if state == "blocked":
            flash("Too many failed logins from here. Wait a minute and try again.", "error")
            return render_template("ui/login.html"), 429  # type: ignore[return-value]
        user = authenticate(email, request.form.get("password", ""))
        target = local_target(request.args.get("next"), url_for("ui.index"))
        if state == "held":  # every try counts and gets the same answer, right password or not
            login_throttle.record_failure(redis, email)
            return login_links.held_answer(user, target)
        if user is None:
            login_throttle.record_failure(redis, email)
            flash("Wrong email or password.", "error")
            return render_template("ui/login.html"), 401  # type: ignore[return-value]
        start_session(user)
        return login_throttle.remember_device(redirect(target), email)
    return render_template("ui/login.html")


@ui.route("/login/link/<token>", methods=["GET", "POST"])
def sign_in_link(token: str) -> str | Response:
    """The mailed link: the GET shows a button (a mail scanner fetching the link spends nothing), the
    POST spends the link, signs this browser in and remembers it as a known browser."""
    try:
        user, target = login_links.redeem(token, spend=request.method == "POST")
    except InputError as exc:
        return render_template("ui/sign_in_link.html", error=str(exc)), 400  # type: ignore[return-value]
    if request.method == "GET":
        return render_template("ui/sign_in_link.html", email=user.email)
    start_session(user)
    response = login_throttle.remember_device(redirect(local_target(target, url_for("ui.index"))), user.email)
    response.delete_cookie(login_links.BROWSER_COOKIE)
    return response


@ui.route("/logout", methods=["POST"])
def logout() -> Response:
    """Ends this user's sessions in every browser, not only this one."""
    user = current_user()
    if user is not None:
        end_sessions(user)
        db().commit()
    session.clear()
    return redirect(url_for("ui.login"))
