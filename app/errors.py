"""Errors that carry their HTTP status, and the one handler that answers them.

Hongtu's own exceptions (a bad parameter, an unavailable database) and Werkzeug's HTTP errors
(``abort(404)``) all end here: data routes (``/api``, ``/map/``, ``/healthz``) and callers that
ask for JSON get ``{"code", "description", "error", "parameter"}``; pages get Hongtu's error
page in the caller's language, never Werkzeug's English default.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .i18n import gettext
from .store.errors import StoreError

#: Per status: the code API clients see, and the page heading (Chinese, translated when shown)
#: with its English for JSON.
STATUS_TEXT = {
    400: ("InvalidParameterValue", "请求有误", "bad request"),
    401: ("Unauthorized", "请先登录", "sign in first"),
    403: ("Forbidden", "无权访问", "not allowed"),
    404: ("NotFound", "页面不存在", "not found"),
    405: ("MethodNotAllowed", "不支持该方法", "method not allowed"),
    409: ("Conflict", "与现有数据冲突", "conflicts with what is stored"),
    411: ("LengthRequired", "需要 Content-Length", "length required"),
    412: ("PreconditionFailed", "数据已被他人修改", "changed since it was read"),
    413: ("PayloadTooLarge", "请求内容过大", "request too large"),
    415: ("UnsupportedMediaType", "不支持的内容类型", "unsupported media type"),
    428: ("PreconditionRequired", "需要 If-Match", "If-Match required"),
    429: ("TooManyRequests", "请求过于频繁", "too many requests"),
    500: ("ServerError", "服务器错误", "server error"),
    503: ("ServiceUnavailable", "服务暂不可用", "service unavailable"),
}
#: Paths whose callers read JSON, not pages.
DATA_PATHS = ("/api", "/map/", "/healthz")


class HongtuError(Exception):
    """An error a user can act on: its HTTP ``status``, its Chinese and English text and, for a
    request parameter, the parameter's name. ``details`` go into a JSON answer as they are."""

    status = 500
    details: dict | None = None

    def __init__(self, zh: str, en: str, parameter: str | None = None):
        super().__init__(f"{parameter}: {zh} / {en}" if parameter else f"{zh} / {en}")
        self.zh, self.en, self.parameter = zh, en, parameter

    @property
    def code(self) -> str:
        return STATUS_TEXT.get(self.status, STATUS_TEXT[500])[0]


def wants_json() -> bool:
    """Whether this request's caller reads JSON (a data route, or it asks for it)."""
    return request.path.startswith(DATA_PATHS) or request.accept_mimetypes.best == "application/json"


def answer(
    status: int, message: str | None = None, parameter: str | None = None, details: dict | None = None
) -> Response:
    """The error answer for ``status``: ``message`` (bilingual) or the status's own text."""
    code, zh, en = STATUS_TEXT.get(status, STATUS_TEXT[500])
    text = message or f"{zh} / {en}"
    if wants_json():
        body = {**(details or {}), "code": code, "description": text, "error": text}
        if parameter:
            body["parameter"] = parameter
        response = jsonify(body)
    else:
        response = Response(render_template("error.html", heading=gettext(zh), message=message or ""))
    response.status_code = status
    return response


def _http_error(exc: HTTPException) -> Response:
    # Werkzeug's own description (English) is replaced; one given with abort() is Hongtu's.
    own = exc.description if exc.description != type(exc).description else None
    return answer(exc.code or 500, own)


def _hongtu_error(exc: HongtuError) -> Response:
    return answer(exc.status, str(exc), exc.parameter, exc.details)


def _store_error(exc: StoreError) -> Response:
    # Fail fast and say why; the pool reconnects by itself once the database is back.
    return answer(503, str(exc))


def init_app(app: Flask) -> None:
    """Answer every error of ``app`` through :func:`answer`."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(HongtuError, _hongtu_error)
    app.register_error_handler(StoreError, _store_error)
