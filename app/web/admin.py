"""Administration in the browser: accounts at a glance, published embed links, the audit log.

Accounts are created and changed with ``hongtu user`` (a password never passes through a
web form other than the sign-in page)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, g, render_template, request, url_for

from ..db import base_store
from ..i18n import LOCAL_TIME, gettext
from ..layers import BY_KEY, EMBEDDABLE
from ..store import accounts
from .excel import download
from .params import BadParameter, parse_int

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _page(published: str | None = None, problem: str | None = None, status: int = 200):
    store = base_store()
    return render_template(
        "admin.html",
        users=accounts.list_users(store),
        tokens=accounts.list_tokens(store),
        role_names=accounts.ROLE_NAMES,
        layers=[BY_KEY[key] for key in EMBEDDABLE],
        published=published,
        problem=problem,
    ), status


@bp.get("/")
def index():
    """Accounts and embed links."""
    return _page()


@bp.post("/tokens")
def publish():
    """Publish an embed link for an area and layers, valid for some days."""
    days = parse_int("days", request.form.get("days"), 30, 1, 3650)
    area = request.form.get("area", "").strip() or None
    try:
        token = accounts.publish_embed(
            base_store(),
            g.user["username"],
            area,
            request.form.getlist("layers"),
            days,
            request.form.get("label", "").strip(),
        )
    except accounts.AccountError as exc:
        return _page(problem=str(exc), status=400)
    link = url_for(
        "embed.embed",
        token=token,
        area=area,
        layers=",".join(request.form.getlist("layers")),
        _external=True,
    )
    return _page(published=link)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke(token_id: int):
    """Revoke an embed link (or an API token) at once."""
    try:
        accounts.revoke_token(base_store(), token_id)
    except accounts.AccountError as exc:
        return _page(problem=str(exc), status=404)
    accounts.audit(base_store(), g.user["username"], "token", target=f"revoke {token_id}")
    return _page()


def _entries():
    action = request.args.get("action") or None
    if action is not None and action not in accounts.AUDIT_ACTIONS:
        known = accounts.AUDIT_ACTIONS
        raise BadParameter("action", f"应为 {'/'.join(known)}", f"expected one of {', '.join(known)}")
    return action


@bp.get("/audit")
def audit():
    """The latest 500 entries of the audit log, optionally of one action."""
    action = _entries()
    entries = accounts.audit_entries(base_store(), action)
    # Empty cells are None for the page, not NaN (which prints as "nan" and is truthy).
    records = entries.astype(object).where(entries.notna(), None).to_dict("records")
    return render_template("audit.html", entries=records, actions=accounts.AUDIT_ACTIONS, action=action)


@bp.get("/audit.<fmt>")
def audit_export(fmt: str):
    """The whole audit log (or one action) as CSV or Excel."""
    if fmt not in ("csv", "xlsx"):
        raise BadParameter("fmt", "应为 csv 或 xlsx", "expected csv or xlsx")
    action = _entries()
    entries = accounts.audit_entries(base_store(), action, limit=None)
    entries["at"] = entries["at"].dt.tz_convert(LOCAL_TIME).dt.tz_localize(None)
    entries["action"] = entries["action"].map(lambda a: gettext(accounts.AUDIT_ACTIONS.get(a, a)))
    entries["ok"] = entries["ok"].map({True: gettext("成功"), False: gettext("失败")})
    name = gettext(accounts.AUDIT_ACTIONS[action]) if action else gettext("全部")
    return download(entries, f"{gettext('审计日志')}-{name}-{date.today().isoformat()}", fmt, gettext("审计日志"))
