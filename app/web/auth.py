"""Signing in and out, and the health check a load balancer polls."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from ..db import base_store
from ..i18n import gettext
from ..store import accounts

bp = Blueprint("auth", __name__)


def _next_url() -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    target = request.values.get("next", "")
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("maps.index")
    return target


@bp.get("/login")
def login():
    """The sign-in form."""
    return render_template("login.html", next=_next_url(), problem=None)


@bp.post("/login")
def login_post():
    """Check the user name and password; on success start a fresh session."""
    username = request.form.get("username", "").strip()[:64]
    store = base_store()
    try:
        user = accounts.authenticate(store, username, request.form.get("password", ""), request.remote_addr)
    except accounts.AccountError as exc:
        return render_template("login.html", next=_next_url(), problem=str(exc)), 429
    if user is None:
        problem = gettext("用户名或密码错误") + " / wrong user name or password"
        return render_template("login.html", next=_next_url(), problem=problem), 401
    # A new session on every sign-in: nothing from before (a planted session id) survives.
    session.clear()
    session["uid"] = user["id"]
    return redirect(_next_url())


@bp.post("/logout")
def logout():
    """End the session."""
    uid = session.get("uid")
    if uid is not None:
        user = accounts.get_user(base_store(), uid)
        accounts.audit(base_store(), user and user["username"], "logout", address=request.remote_addr)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
def health():
    """``ok`` when the database answers (for load balancers; no data, no login)."""
    base_store().check()
    return current_app.response_class("ok\n", mimetype="text/plain")
