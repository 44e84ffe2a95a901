"""Signing in and out, and the health check a load balancer polls."""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for

from ..db import base_store
from ..i18n import gettext
from ..store import accounts

bp = Blueprint("auth", __name__)

#: Characters a browser drops from a URL before following it (WHATWG URL parsing).
_DROPPED = str.maketrans("", "", "\t\n\r")


def safe_next(target: str) -> str | None:
    """``target`` if, read as a browser reads it, it is a path on this site; else None.

    Browsers drop tabs and newlines and read a backslash as a slash, so a slash, a tab and a
    slash is another host (``//host``); so is anything with a scheme or a host."""
    seen = target.translate(_DROPPED).replace("\\", "/")
    if not seen.startswith("/") or seen.startswith("//") or any(ord(c) < 32 or ord(c) == 127 for c in seen):
        return None
    parts = urlsplit(seen)
    if parts.scheme or parts.netloc:
        return None
    return seen


def _next_url() -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    return safe_next(request.values.get("next", "")) or url_for("maps.index")


def session_fields(user: dict) -> dict:
    """What a new session of ``user`` holds: the account, the credential version it is issued
    under, its own random id (ended by signing out), when it began and was last used."""
    now = int(time.time())
    sid = secrets.token_urlsafe(24)
    return {"uid": user["id"], "cv": user["credential_version"], "sid": sid, "iat": now, "seen": now}


def start_session(user: dict) -> None:
    """A new session for ``user``: nothing from before (a planted session id) survives."""
    session.clear()
    session.update(session_fields(user))


def _login_page(problem: str, status: int, headers: dict | None = None):
    return render_template("login.html", next=_next_url(), problem=problem), status, headers or {}


@bp.get("/login")
def login():
    """The sign-in form."""
    return render_template("login.html", next=_next_url(), problem=None)


@bp.post("/login")
def login_post():
    """Check the user name, password and (when enrolled) second factor; on success start a fresh session."""
    username = request.form.get("username", "").strip()[:64]
    store = base_store()
    password = request.form.get("password", "")
    try:
        user = accounts.authenticate(store, username, password, request.remote_addr, request.form.get("code"))
    except accounts.LoginRefused as exc:
        wait = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return _login_page(str(exc), 429 if exc.retry_after else 401, wait)
    if user is None:
        return _login_page(gettext("用户名或密码错误") + " / wrong user name or password", 401)
    if (
        current_app.config["HONGTU_ADMIN_2FA"]
        and user["role"] == "admin"
        and not accounts.has_second_factor(store, username)
    ):
        accounts.audit(store, username, "login", ok=False, address=request.remote_addr, detail="second factor missing")
        return _login_page(
            "管理员须启用双因素认证：hongtu user 2fa " + username + " / administrators need a second factor: "
            f"run hongtu user 2fa {username}",
            403,
        )
    start_session(user)
    return redirect(_next_url())


@bp.post("/logout")
def logout():
    """End the session, here and for any copy of its cookie."""
    uid, sid = session.get("uid"), session.get("sid")
    if uid is not None:
        user = accounts.get_user(base_store(), uid)
        accounts.audit(base_store(), user and user["username"], "logout", address=request.remote_addr)
        if sid:
            lifetime = timedelta(seconds=current_app.config["HONGTU_SESSION_LIFETIME_S"])
            accounts.end_session(base_store(), sid, lifetime)
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/healthz")
def health():
    """``ok`` when the database answers (for load balancers; no data, no login)."""
    base_store().check()
    return current_app.response_class("ok\n", mimetype="text/plain")
