"""Request hardening for every route: CSRF tokens on state-changing requests and the security
headers of every answer.

The CSRF token lives in the signed session cookie (HttpOnly, SameSite=Lax) and must come back
with every POST/PUT/PATCH/DELETE, as the ``csrf_token`` form field or an ``X-CSRF-Token``
header; without it the request is refused with 400 before any view runs. A request without a
session that carries its own credentials (``Authorization``: an API token) needs none: it is
authenticated by that header, which a cross-site page cannot set.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, abort, current_app, g, request, session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Tile hosts a configured base map may load images from.
TILE_HOSTS = {
    "tianditu": "https://*.tianditu.gov.cn",
    "tianditu_img": "https://*.tianditu.gov.cn",
    "amap": "https://*.is.autonavi.com",
    "osm": "https://tile.openstreetmap.org",
}


def bearer_credentials() -> bool:
    """Whether the request carries credentials of its own (an API token, as Bearer or Basic)."""
    return request.headers.get("Authorization", "").startswith(("Bearer ", "Basic "))


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csp_nonce() -> str:
    """This response's script nonce: only script blocks that carry it run (made on first use)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def with_nonce(html: str) -> str:
    """``html`` (folium's rendered parts) with this response's nonce on its inline scripts."""
    return html.replace("<script>", f'<script nonce="{csp_nonce()}">')


def _check_text() -> None:
    # A NUL character has no place in any parameter, and PostgreSQL cannot even compare with one.
    given = [request.args, request.form]
    if any("\x00" in key + "".join(values) for params in given for key, values in params.lists()):
        abort(400, description="参数含有 NUL 字符 / a parameter contains a NUL character")


def _check_csrf() -> None:
    # A method or path that matches no route is answered by routing (405 / 404) instead.
    if request.method in SAFE_METHODS or request.routing_exception is not None:
        return
    if "uid" not in session and bearer_credentials():
        # Authenticated by the header alone (see app.web.access), never by a cookie.
        return
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    expected = session.get("csrf", "")
    if not expected or not hmac.compare_digest(sent, expected):
        abort(400, description="CSRF 令牌缺失或无效，请刷新页面后重试 / missing or wrong CSRF token: reload the page")


def _content_security_policy() -> str:
    cfg = current_app.config
    tiles = {TILE_HOSTS[b] for b in ("tianditu", "tianditu_img") if cfg["HONGTU_TIANDITU_KEY"]}
    if cfg["HONGTU_BASEMAP"] in TILE_HOSTS:
        tiles.add(TILE_HOSTS[cfg["HONGTU_BASEMAP"]])
    # Inline scripts (folium's map set-up, the pages' own blocks) run only with this response's
    # nonce, so an injected <script> would not. folium's inline styles still need
    # 'unsafe-inline' for styles, which cannot run code.
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{csp_nonce()}'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data: {' '.join(sorted(tiles))}".rstrip(),
            "font-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ]
    )


#: Browser features no Hongtu page uses, but the position (a field visit records where it is).
PERMISSIONS_POLICY = "geolocation=(self), camera=(), microphone=(), payment=(), usb=(), interest-cohort=()"


def _headers(response: Response) -> Response:
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if current_app.config["HONGTU_HTTPS"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    csp = _content_security_policy()
    # frame-ancestors is added per route (an embed may be framed by the configured sites).
    existing = response.headers.get("Content-Security-Policy")
    response.headers["Content-Security-Policy"] = f"{csp}; {existing}" if existing else csp
    return response


def init_app(app: Flask) -> None:
    """Check CSRF before every view, add the headers after, give templates ``csrf_token``."""
    # Flask's defaults hold these keys already (SameSite unset), so they are set, not defaulted.
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_SECURE"] = app.config["HONGTU_HTTPS"]
    if app.config["HONGTU_HTTPS"]:
        # __Host-: the browser keeps it only if Secure, for path / and this host alone (no
        # sibling subdomain can plant or read it).
        app.config["SESSION_COOKIE_NAME"] = "__Host-hongtu"
        app.config["SESSION_COOKIE_PATH"] = "/"
        app.config["SESSION_COOKIE_DOMAIN"] = False
        # Behind a TLS-terminating proxy: trust its X-Forwarded-Proto/For (one hop) so links,
        # redirects and the audit log's addresses are the client's.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)
    app.before_request(_check_text)
    app.before_request(_check_csrf)
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["csp_nonce"] = csp_nonce
