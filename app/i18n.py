"""Chinese first, English on request: the language of a request and its message catalog.

Source strings are the Chinese text itself (as gettext uses the source language as msgid);
``translations/en.json`` maps each to English. A missing entry falls back to the Chinese,
and ``tests/test_i18n.py`` fails on any string used without an entry, so nothing is left
half-translated. The same catalog is handed to Hongtu's scripts for their labels.

A translation with a count ``{n}`` may give its singular and plural forms apart, separated by
``|`` (``"{n} organization|{n} organizations"``): the first is used when n is 1.

The language comes from ``?lang=`` (remembered in a cookie), else the cookie, else Chinese:
the service is for Chinese offices, so the browser's Accept-Language does not override it.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import Flask, Response, g, request
from markupsafe import Markup

LANGUAGES = {"zh": "zh-CN", "en": "en"}
DEFAULT = "zh"
COOKIE = "hongtu_lang"
CATALOG_DIR = Path(__file__).parent / "translations"
#: China keeps one time zone (UTC+8); times are stored in UTC and shown in it.
LOCAL_TIME = "Asia/Shanghai"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The message catalog of ``lang`` (empty for the source language)."""
    path = CATALOG_DIR / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def current_language() -> str:
    """The language of the current request: ``zh`` or ``en``."""
    if "lang" not in g:
        asked = request.args.get("lang") or request.cookies.get(COOKIE)
        g.lang = asked if asked in LANGUAGES else DEFAULT
    return g.lang


def local_time(value: datetime | None) -> str:
    """``value`` (timezone-aware) as a local date and minute, e.g. ``2026-12-07 09:30``."""
    return value.astimezone(ZoneInfo(LOCAL_TIME)).strftime("%Y-%m-%d %H:%M") if value else ""


def gettext(message: str, **values) -> str:
    """``message`` in the current language, with ``{name}`` placeholders filled from ``values``."""
    text = catalog(current_language()).get(message, message)
    if not values:
        return text
    return plural(text, values.get("n")).format(**values)


def plural(text: str, n: object) -> str:
    """The form of ``text`` (``singular|plural`` when it has a count ``{n}``) for count ``n``."""
    if n is None or "{n}" not in text or "|" not in text:
        return text
    one, many = text.split("|", 1)
    return one if n == 1 else many


def js_catalog() -> Markup:
    """The current language's catalog as a JSON literal safe inside a ``<script>`` element."""
    data = json.dumps(catalog(current_language()), ensure_ascii=False)
    # "</" would end the script element; "<!--" would change how the browser parses it.
    return Markup(data.replace("<", "\\u003c"))


def switch_url(lang: str) -> str:
    """The current page in ``lang``: the same path and arguments, ``lang`` replaced."""
    args = request.args.to_dict(flat=False)
    args["lang"] = [lang]
    return f"{request.path}?{urlencode(args, doseq=True)}"


def init_app(app: Flask) -> None:
    """Give templates ``_``, ``lang`` and ``html_lang``, and remember an explicit ``?lang=``."""

    @app.context_processor
    def _language():
        lang = current_language()
        return {
            "_": gettext,
            "lang": lang,
            "html_lang": LANGUAGES[lang],
            "js_catalog": js_catalog,
            "switch_url": switch_url,
        }

    @app.after_request
    def _remember(response: Response) -> Response:
        asked = request.args.get("lang")
        if asked in LANGUAGES and request.cookies.get(COOKIE) != asked:
            response.set_cookie(COOKIE, asked, max_age=365 * 24 * 3600, samesite="Lax", httponly=True)
        return response
