"""The correction page: staff fix one organization's record, or add one found in the field.

A phone-sized form of the fields :mod:`app.services.editing` lets staff change, the record's
history under it, and a link to the 待定位 map for moving its point. The form carries the
version it was read at, so a save over someone else's change is refused (412) with the values
now stored; every save and refusal is audited.
"""

from __future__ import annotations

import math
import re

import pandas as pd
from flask import Blueprint, Response, g, redirect, render_template, request, url_for

from geo.crs import to_wgs84_xy
from geo.vocabulary import ORG_TYPE_NAMES

from ..db import base_store, get_store
from ..i18n import LOCAL_TIME, gettext
from ..services import editing
from ..store import accounts
from .excel import download
from .params import BadParameter

bp = Blueprint("corrections", __name__, url_prefix="/orgs")

#: How the history names each field, besides the ledger's own column names.
FIELD_NAMES = {"position": "位置", editing.WHOLE_RECORD: "整条记录"}
#: How the history names the ways a correction came in.
VIA_NAMES = {"map": "红图页面", "api": "接口"}
#: What a download's file name keeps of an organization's id.
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
#: Fields the form shows as a choice, with their options (stored value → label).
CHOICES = {"org_type": ORG_TYPE_NAMES, "operating": {True: "是", False: "否"}, "instructor": {True: "是", False: "否"}}


def field_names() -> dict[str, str]:
    """How the form and the history name each field (Chinese, translated when shown)."""
    return {**{f: editing.ORGS.column(f).zh for f in editing.EDITABLE}, **FIELD_NAMES}


def _form_values() -> dict:
    """The fields as the form sent them (choices back to their stored values)."""
    values = {}
    for field in editing.EDITABLE:
        raw = request.form.get(field, "").strip()
        values[field] = {"1": True, "0": False}.get(raw, raw) if field in ("operating", "instructor") else raw
    return values


def _position() -> editing.Position | None:
    """The position the form sends (set by "use my location" on the new-organization form)."""
    try:
        lon, lat = float(request.form.get("lon", "")), float(request.form.get("lat", ""))
    except ValueError:
        return None
    if not (math.isfinite(lon) and math.isfinite(lat)):
        return None
    crs = "gcj02" if request.form.get("crs") == "gcj02" else "wgs84"
    x, y = to_wgs84_xy([lon], [lat], crs)
    return editing.Position(float(x[0]), float(y[0]), "gps" if request.form.get("source") == "gps" else "map")


def _page(
    found: dict | None,
    values: dict,
    error: editing.EditError | None = None,
    status: int = 200,
    saved: bool = False,
    attempted: dict | None = None,
) -> Response:
    """The form over ``found`` (None: a new organization) showing ``values``; with a refusal,
    what it says and, after a 412, the values ``attempted`` that were not saved."""
    history = None
    if found is not None:
        frame = _history(found["org_id"])
        history = frame.astype(object).where(frame.notna(), None).to_dict("records")
    body = render_template(
        "correction.html",
        found=found,
        values=values,
        etag=editing.etag(found) if found else "",
        fields=editing.EDITABLE,
        names=field_names(),
        choices=CHOICES,
        vias=VIA_NAMES,
        history=history,
        error=error,
        bad={i["field"] for i in error.issues} if error else set(),
        saved=saved,
        attempted=attempted,
    )
    return Response(body, status=status)


def _audit(action: str, target: str, ok: bool = True, detail: str | None = None) -> None:
    accounts.audit(
        base_store(), g.user["username"], action, target=target, ok=ok, address=request.remote_addr, detail=detail
    )


@bp.get("/<org_id>")
def form(org_id: str):
    """The record, ready to correct, and its history."""
    found = editing.record(get_store(), org_id)
    if found is None:
        raise editing.not_yours(get_store(), org_id)
    return _page(found, found, saved=request.args.get("saved") == "1")


@bp.post("/<org_id>")
def save(org_id: str):
    """Save the form: the changed fields, checked, or the form again saying what is wrong."""
    store = get_store()
    values = _form_values()
    try:
        editing.edit(store, org_id, values, g.user["username"], "map", request.form.get("etag") or None)
    except editing.EditError as exc:
        _audit("org_edit", org_id, ok=False, detail=exc.en)
        if exc.status == 412:
            current = exc.current
            attempted = {f: v for f, v in values.items() if editing.spelled(v) != editing.spelled(current[f])}
            return _page(current, current, exc, 412, attempted=attempted)
        found = editing.record(store, org_id)
        if found is None:
            raise
        return _page(found, values, exc, exc.status)
    _audit("org_edit", org_id)
    return redirect(url_for("corrections.form", org_id=org_id, saved=1))


@bp.get("/new")
def new():
    """The form for an organization found in the field."""
    return _page(None, editing.defaults())


@bp.post("/new")
def add():
    """Add the organization at the phone's position (or the point picked on the map)."""
    values = _form_values()
    position = _position()
    try:
        if position is None:
            raise editing.EditError(400, "请先使用手机定位或在地图上点选位置", "give the position: use your location")
        found = editing.create(get_store(), values, position, g.user["username"], "map")
    except editing.EditError as exc:
        _audit("org_create", values.get("name") or "", ok=False, detail=exc.en)
        return _page(None, values, exc, exc.status)
    _audit("org_create", found["org_id"])
    return redirect(url_for("corrections.form", org_id=found["org_id"], saved=1))


@bp.get("/<org_id>/history.<fmt>")
def history_export(org_id: str, fmt: str):
    """The record's history as an Excel workbook or a CSV that Excel opens with Chinese intact."""
    if fmt not in ("csv", "xlsx"):
        raise BadParameter("fmt", "应为 csv 或 xlsx", "expected csv or xlsx")
    frame = _history(org_id)
    names = field_names()
    frame["field"] = frame["field"].map(lambda f: gettext(names.get(f, f)))
    frame["via"] = frame["via"].map(lambda v: gettext(VIA_NAMES.get(v, v)))
    return download(frame, f"{_SAFE_NAME.sub('_', org_id)}-history", fmt, gettext("更正记录"))


def _history(org_id: str) -> pd.DataFrame:
    """The record's history, its times in China's time as text."""
    frame = editing.history(get_store(), org_id)
    shown = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(LOCAL_TIME)
    frame["at"] = shown.dt.strftime("%Y-%m-%d %H:%M:%S")
    return frame
