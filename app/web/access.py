"""Who may do what, and where: one check before every request.

Every endpoint is listed in ``POLICY`` with the permission it needs; an endpoint missing from
it is refused (a new route is closed until someone decides who may use it). The check finds
the caller — a signed-in session, an API token (``Authorization: Bearer …``, or Basic with
the token as password) or a published embed link (``?token=…``) — and then:

- anonymous callers are sent to the login page (pages) or answered 401 (API and map data);
- a caller without the permission gets 403;
- an area named by the request (``/area/<code>``, ``?area=``) must lie inside the caller's
  jurisdiction (403 otherwise); area pages, exports and embeds without one go to the caller's
  own area;
- every read in the request goes through the store returned by :func:`app.db.get_store`,
  scoped to the caller's jurisdiction and masking contact data the role does not need.
"""

from __future__ import annotations

import base64
import binascii
import time
from datetime import timedelta
from urllib.parse import urlencode

from flask import (
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    request,
    session,
    url_for,
)

from .. import errors
from ..db import base_store
from ..security import SAFE_METHODS, bearer_credentials
from ..store import accounts

#: Endpoints anyone may reach.
PUBLIC = frozenset({"auth.login", "auth.login_post", "auth.logout", "auth.health", "static", "vendor.asset"})
#: Endpoint → the permission it needs. ``city`` marks figures of the whole city, shown only
#: to callers whose jurisdiction is the whole city.
POLICY: dict[str, str] = {
    "maps.index": "read",
    "maps.data": "read",
    "maps.organization": "read",
    "maps.center": "read",
    "maps.search": "read",
    "maps.nearby": "read",
    "areas.page": "read",
    "embed.embed": "read",
    "dashboard.dashboard": "read city",
    "dashboard.data": "read city",
    "api.landing": "read",
    "api.conformance": "read",
    "api.openapi_json": "read",
    "api.docs": "read",
    "api.collections": "read",
    "api.collection": "read",
    "api.items": "read",
    "api.item": "read",
    "api.stats": "read",
    "api.runs": "read",
    "api.compare": "read",
    "areas.export": "export",
    "reports.area_map": "export",
    "reports.area_report": "export",
    "intake.form": "write",
    "intake.upload": "write",
    "intake.template": "write",
    "intake.report_file": "write",
    "placing.page": "write",
    "placing.places": "write",
    "placing.history_of": "write",
    "placing.place_one": "write",
    "corrections.form": "write",
    "corrections.save": "write",
    "corrections.new": "write",
    "corrections.add": "write",
    "corrections.history_export": "export",
    "edits.create": "write",
    "edits.replace": "write",
    "edits.update": "write",
    "edits.delete": "admin",
    "visits.form": "write",
    "visits.save": "write",
    "visits.photo": "read",
    "results.status": "read",
    "results.start": "analyze",
    "admin.index": "admin",
    "admin.publish": "admin",
    "admin.revoke": "admin",
    "admin.audit": "admin",
    "admin.audit_export": "admin",
}
#: What a published embed link may reach: the embed page and the data of its layers.
EMBED_ENDPOINTS = frozenset({"embed.embed", "maps.data"})
#: Endpoints that show one area and, called without one, show the caller's own.
AREA_ENDPOINTS = frozenset({"areas.page", "areas.export", "reports.area_map", "reports.area_report", "embed.embed"})


#: Blueprints an API token never opens: administration and imports.
TOKENLESS = ("admin.", "intake.")
#: The only writes an API token may make: OGC API – Features Part 4 on items.
TOKEN_WRITES = frozenset({"edits.create", "edits.replace", "edits.update", "edits.delete"})


def _refuse(status: int, zh: str, en: str, audited: bool = True) -> Response:
    """The refusal, as JSON for data endpoints or Hongtu's page; a 403 or 429 is audited with
    who asked and from where (unless ``audited`` is false)."""
    message = f"{zh} / {en}"
    if audited and status in (403, 429):
        caller = g.get("user")
        accounts.audit(
            base_store(),
            caller and caller["username"],
            "refused",
            target=request.full_path.rstrip("?"),
            ok=False,
            address=request.remote_addr,
            detail=en,
        )
    return errors.answer(status, message)


def _caller() -> dict | None:
    """The signed-in user, the owner of an API token, or a published embed link; None if anonymous."""
    store = base_store()
    if "uid" in session:
        user = _session_user(store)
        if user is not None:
            return user
        session.clear()
    if bearer_credentials():
        username, token = _api_credentials(request.headers["Authorization"])
        user = accounts.resolve_token(store, token, "api") if token else None
        if user is None or username not in (None, user["username"]):
            abort(_refuse(401, "API 令牌无效或已撤销", "the API token is unknown, expired or revoked"))
        return {**user, "by_token": True}
    token = request.args.get("token")
    if token and request.endpoint in EMBED_ENDPOINTS:
        link = accounts.resolve_token(store, token, "embed")
        if link is None:
            abort(_refuse(403, "嵌入链接无效、已过期或已撤销", "this embed link is unknown, expired or revoked"))
        return {"username": link["username"], "role": "embed", "area_code": link["area_code"], "layers": link["layers"]}
    return None


def _api_credentials(header: str) -> tuple[str | None, str]:
    """The account name (None for a bearer token) and the API token of an Authorization header.

    Besides ``Bearer <token>``, HTTP Basic with the token's account as user name and the token
    as password: Debian 12's QGIS (3.22) can send no other header, and GDAL and OWSLib can send
    it too. An account's own password is never accepted here — only a token, which is revoked
    on its own and acts within the account's jurisdiction.
    """
    scheme, _, value = header.partition(" ")
    if scheme == "Bearer":
        return None, value.strip()
    try:
        username, colon, token = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, ""
    return (username, token) if colon else (None, "")


def _session_user(store) -> dict | None:
    """The account of this request's session cookie while the session stands: not ended by
    signing out, issued under the account's current credentials, used within the idle time-out
    and younger than the absolute lifetime."""
    now = int(time.time())
    config = current_app.config
    started, seen = session.get("iat", 0), session.get("seen", 0)
    if now - started > config["HONGTU_SESSION_LIFETIME_S"] or now - seen > config["HONGTU_SESSION_IDLE_S"]:
        return None
    user = accounts.session_user(store, session["uid"], session.get("cv"), session.get("sid"))
    # Written back at most once a minute: every answer need not carry a new cookie.
    if user is not None and now - seen >= 60:
        session["seen"] = now
    return user


def _inside(code: str, scope: str | None) -> bool:
    return scope is None or code.startswith(scope)


def authorize() -> Response | None:
    """The check before every request (see the module's description)."""
    endpoint = request.endpoint
    if endpoint is None or endpoint in PUBLIC:
        return None
    caller = _caller()
    g.user = caller
    if caller is None:
        if errors.wants_json():
            return _refuse(401, "请先登录", "sign in first (session or Authorization: Bearer <token>)")
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    token_write = request.method not in SAFE_METHODS and endpoint not in TOKEN_WRITES
    if caller.get("by_token") and (token_write or endpoint.startswith(TOKENLESS)):
        # A token is kept in other systems' settings (QGIS projects, GDAL configurations): it
        # reads, and writes only through the API's own item edits, which take no form's CSRF
        # token; never a page's form, an import or administration.
        return _refuse(
            403, "API 令牌只能读取数据或通过接口更正组织", "an API token may only read, or edit items through the API"
        )
    needed, city = _rule(endpoint)
    permissions = accounts.PERMISSIONS[caller["role"]]
    scope = caller["area_code"]
    if caller["role"] == "embed":
        if endpoint == "embed.embed" and not request.args.get("layers"):
            # An empty layers= is the link's own layers too, as the check below reads it.
            return redirect(url_for(endpoint, **{**_plain_args(), "layers": ",".join(caller["layers"])}))
        if endpoint not in EMBED_ENDPOINTS or not _embed_allows(caller):
            return _refuse(403, "嵌入链接不包含此内容", "this embed link does not publish that")
    elif needed not in permissions:
        return _refuse(403, "您的角色无权访问", "your role may not do this")
    if city and scope is not None:
        return _refuse(403, "全市数据超出您的管辖范围", "city-wide figures reach beyond your jurisdiction")
    area = (request.view_args or {}).get("code") or request.args.get("area")
    if area and not _inside(area, scope):
        return _refuse(403, "该区域不在您的管辖范围内", "that area is outside your jurisdiction")
    # HEAD is answered as GET is (Flask runs the GET view): it must be checked as GET is.
    if not area and scope and endpoint in AREA_ENDPOINTS and request.method in ("GET", "HEAD"):
        return redirect(_with_area(endpoint, scope))
    if needed == "export" and request.method in ("GET", "HEAD"):
        limited = _rate_limited(caller)
        if limited is not None:
            return limited
    g.store = base_store().scoped(scope, contacts="contacts" in permissions)
    return None


def _rate_limited(caller: dict) -> Response | None:
    """429 + Retry-After when the caller asked for more exports and renders in the last minute
    than ``HONGTU_EXPORTS_PER_MIN``; counted from the audit log, as failed logins are. The
    first refusal of a minute is audited; the ones after it in that minute are not."""
    limit = current_app.config["HONGTU_EXPORTS_PER_MIN"]
    name = caller["username"]
    # Users this app has found over the limit, and when (time.monotonic) it lets them count
    # again: a client asking in a loop is refused without a count or an audit entry each time.
    limited_until = current_app.extensions.setdefault("hongtu-export-limited", {})
    now = time.monotonic()
    known = limited_until.get(name, 0.0) > now
    if not known:
        if accounts.recent(base_store(), "export", name, timedelta(minutes=1)) < limit:
            return None
        limited_until[name] = now + 60
    response = _refuse(
        429,
        f"导出过于频繁（每分钟至多 {limit} 次），请稍后再试",
        f"too many exports (at most {limit} a minute)",
        audited=not known,
    )
    response.headers["Retry-After"] = "60"
    return response


def _rule(endpoint: str) -> tuple[str, bool]:
    """The permission ``endpoint`` needs, and whether it shows figures of the whole city."""
    needed, _, extent = POLICY.get(endpoint, "closed").partition(" ")
    return needed, extent == "city"


def _embed_allows(link: dict) -> bool:
    if request.endpoint == "maps.data":
        layer = request.view_args["layer"]
        # The organization layer's clusters and points are one published layer.
        return layer in link["layers"]
    asked = [name for name in request.args.get("layers", "").split(",") if name]
    return set(asked) <= set(link["layers"])


def _plain_args() -> dict:
    """The request's parameters for a URL of our own: url_for reads ``_method``, ``_anchor``,
    ``_scheme`` and ``_external`` as its options, so a parameter so named is left out."""
    return {k: v for k, v in request.args.to_dict().items() if not k.startswith("_")}


def _with_area(endpoint: str, code: str) -> str:
    """This request's URL with the area filled in: ``?area=`` for the embed, ``<code>`` elsewhere."""
    args = _plain_args()
    if endpoint == "embed.embed":
        return url_for(endpoint, **{**args, "area": code})
    return url_for(endpoint, **{**request.view_args, "code": code}) + (f"?{urlencode(args)}" if args else "")


def audit_exports(response: Response) -> Response:
    """Record every export (area ledgers and tables, map images, reports) in the audit log,
    with refused-as-busy renders as failed ones."""
    # A render refused as busy counts too: the per-user limit bounds attempts, so that one user
    # cannot keep the shared pages busy by asking again and again.
    if response.status_code in (200, 503) and _rule(request.endpoint or "")[0] == "export":
        accounts.audit(
            base_store(),
            (g.get("user") or {}).get("username"),
            "export",
            target=request.full_path.rstrip("?"),
            ok=response.status_code == 200,
            address=request.remote_addr,
        )
    return response


def may(endpoint: str) -> bool:
    """Whether the caller of this request may use ``endpoint`` (for showing links only: the
    check before the request is what refuses)."""
    caller = g.get("user")
    if caller is None or caller["role"] == "embed":
        return False
    needed, city = _rule(endpoint)
    return needed in accounts.PERMISSIONS[caller["role"]] and not (city and caller["area_code"])


def init_app(app: Flask) -> None:
    """Check every request; audit exports; let templates ask ``may(endpoint)``."""
    app.before_request(authorize)
    app.after_request(audit_exports)
    app.jinja_env.globals["may"] = may
