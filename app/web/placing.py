"""The 待定位 list: organizations without a position of their own, placed by hand.

Admins see the whole city's; street and community staff those inside their jurisdiction. A
position comes from a click on the map, a place chosen from search, or the phone's position
("use my location"); the write and its checks are :mod:`app.services.placing`, and every
attempt is audited here with who asked and from where.
"""

from __future__ import annotations

import math

import pandas as pd
from flask import Blueprint, current_app, g, jsonify, render_template, request, url_for

from ..db import base_store, get_store
from ..i18n import current_language, gettext
from ..security import csrf_token
from ..services.placing import Placement, PlacementError, history, place, to_place
from ..store import accounts, queries
from ..store.models import APPROXIMATE
from .geojson import to_display
from .mapbuilder import basemap_choices

bp = Blueprint("placing", __name__, url_prefix="/placing")

#: What the list holds: no position at all, or only the stated community or street.
LISTED = ("unplaced", *APPROXIMATE)
#: Rows shown at once: a street works through its list a page at a time.
PAGE_ROWS = 200
#: Largest placement request (bytes): a position is a few dozen; nothing bigger is parsed.
MAX_BODY_BYTES = 2048
#: How the list names each way an organization is (not yet) placed.
LOCATED_BY_LABELS = {
    "coordinates": "台账坐标",
    "place": "所在场所",
    "address": "地址匹配",
    "geocoder": "地理编码",
    "unplaced": "无位置",
    "community": "近似：所属社区",
    "street": "近似：所属街道",
    "manual": "已手工定位",
    "counts": "{n} 家：无位置 {u}，近似 {a}",
    "manual_count": "；已手工定位 {m}",
}
#: The page script's words.
TEXT = {
    "pick": "请先从列表中选择一家组织",
    "accuracy": "手机定位，误差约 {n} 米",
    "click": "在地图上点选该组织的位置，然后保存",
    "save": "保存此位置",
    "saved": "已保存",
    "locating": "正在获取手机位置…",
    "nogps": "此设备不能提供位置",
    "denied": "未获准使用位置",
    "failed": "保存失败",
    "none": "未找到场所",
    "history": "定位记录",
    "manual": "已手工定位",
    "counts": "{n} 家：无位置 {u}，近似 {a}",
    "manual_count": "；已手工定位 {m}",
}
#: How the history names the ways of placing by hand.
SOURCE_LABELS = {"map": "地图点选", "place": "选择场所", "gps": "手机定位", "import": "导入覆盖", "api": "接口更正"}


@bp.get("/")
def page():
    """The list and the map to place them on."""
    store = get_store()
    with_manual = request.args.get("manual") == "1"
    frame, counts = to_place(store, (*LISTED, "manual") if with_manual else LISTED, PAGE_ROWS)
    asked = request.args.get("org", "")[:64]
    if asked and asked not in set(frame["org_id"]):
        # Opened from its correction page to move it: listed first, however it is placed.
        one, _ = to_place(store, LISTED, 1, asked)
        frame = pd.concat([one, frame], ignore_index=True) if not one.empty else frame
    basemaps = basemap_choices()
    crs = basemaps[0].get("crs", "wgs84")
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    placed = [r for r in rows if r["lon"] is not None]
    for row, shown in zip(placed, to_display(placed, crs), strict=True):
        row["x"], row["y"] = shown["lon"], shown["lat"]
    extent = store.extent("areas", {"code": store.scope} if store.scope else None)
    config = {
        "basemaps": basemaps,
        "crs": crs,
        "csrf": csrf_token(),
        "text": {
            **{key: gettext(zh) for key, zh in TEXT.items()},
            "sources": {key: gettext(zh) for key, zh in SOURCE_LABELS.items()},
            "ways": {key: gettext(zh) for key, zh in LOCATED_BY_LABELS.items()},
        },
        "lang": current_language(),
        "data": url_for("maps.data", layer="__layer__"),
        "places": url_for("placing.places"),
        "place": url_for("placing.place_one", org_id="__org__"),
        "history": url_for("placing.history_of", org_id="__org__"),
        "extent": extent,
        "selected": asked or None,
    }
    return render_template(
        "placing.html",
        rows=rows,
        total=sum(counts.values()),
        unplaced=counts.get("unplaced", 0),
        manual=counts.get("manual", 0),
        with_manual=with_manual,
        config=config,
        names=LOCATED_BY_LABELS,
    )


@bp.get("/places")
def places():
    """Places by name or address, for choosing where an organization is."""
    q = request.args.get("q", "").strip()[:100]
    hits = queries.search_places(get_store(), q) if q else []
    return jsonify({"query": q, "results": to_display(hits, _crs(request.args.get("crs")))})


@bp.get("/<org_id>/history")
def history_of(org_id: str):
    """Where the organization was placed by hand, newest first."""
    try:
        frame = history(get_store(), org_id)
    except PlacementError as exc:
        return jsonify({"error": str(exc)}), exc.status
    # ISO 8601 in UTC, which the page shows in its reader's own time.
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return jsonify({"org_id": org_id, "placements": frame.astype(object).where(frame.notna(), None).to_dict("records")})


@bp.post("/<org_id>")
def place_one(org_id: str):
    """Place one organization: JSON ``{source, lon, lat, crs, accuracy_m, place_id}``."""
    if request.content_length is None or request.content_length > MAX_BODY_BYTES:
        return _refused(org_id, PlacementError(413, "请求过大", f"the request must be at most {MAX_BODY_BYTES} bytes"))
    body = request.get_json(silent=True)
    # Anything but a JSON object asks for nothing: refused by the service as having no source,
    # after it has checked the organization is the caller's to place.
    body = body if isinstance(body, dict) else {}
    asked = Placement(
        org_id=org_id,
        source=str(body.get("source", "")),
        lon=_number(body.get("lon")),
        lat=_number(body.get("lat")),
        crs=str(body.get("crs", "wgs84")),
        place_id=str(body["place_id"]) if body.get("place_id") is not None else None,
        accuracy_m=_number(body.get("accuracy_m")),
    )
    user = g.user["username"]
    try:
        entry = place(get_store(), asked, user)
    except PlacementError as exc:
        return _refused(org_id, exc)
    detail = f"{entry['from_located_by']} → manual ({asked.source}): {entry['to_lon']:.6f},{entry['to_lat']:.6f}"
    accounts.audit(base_store(), user, "place", target=org_id, address=request.remote_addr, detail=detail)
    shown = to_display([{"lon": entry["to_lon"], "lat": entry["to_lat"]}], _crs(body.get("display_crs")))[0]
    return jsonify(
        {
            "org_id": org_id,
            "located_by": "manual",
            "lon": entry["to_lon"],
            "lat": entry["to_lat"],
            "display": [shown["lon"], shown["lat"]],
        }
    )


def _crs(value) -> str:
    """The display datum asked for: GCJ-02 under AMap tiles, WGS-84 otherwise."""
    return "gcj02" if value == "gcj02" else "wgs84"


def _number(value) -> float | None:
    """A JSON number as a float (booleans and text are not numbers); None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return math.nan
    return number if math.isfinite(number) else math.nan


def _refused(org_id: str, exc: PlacementError):
    accounts.audit(
        base_store(), g.user["username"], "place", target=org_id, ok=False, address=request.remote_addr, detail=exc.en
    )
    current_app.logger.info("placement of %s refused: %s", org_id, exc.en)
    return jsonify({"error": f"{exc.zh} / {exc.en}", "zh": exc.zh, "en": exc.en}), exc.status
