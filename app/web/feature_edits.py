"""OGC API – Features Part 4 (Create, Replace, Update, Delete) on the ``organizations`` items.

Other systems keep the 台账 current through the same checks as staff on the map
(:mod:`app.services.editing`): the caller's role and jurisdiction, the importer's checks on every
value, one transaction per write, and the history. Every item answers an ``ETag``; a replace,
update or delete must send it back as ``If-Match`` (428 without it, 412 with a stale one, the
current feature in the body), so that no client overwrites a change it has not seen.

Bodies are GeoJSON features in CRS84: ``POST`` and ``PUT`` a whole feature, ``PATCH`` a JSON
merge patch of one (RFC 7396: a property set to ``null`` is cleared). Run results (``status``,
the area codes) are read-only and ignored; ``org_id`` may not change.
"""

from __future__ import annotations

import json
import math

from flask import Blueprint, Response, g, request, url_for

from ..db import base_store, get_store
from ..services import editing
from ..store import accounts, features
from .params import BadParameter

bp = Blueprint("edits", __name__, url_prefix="/api")

#: Largest body a write may send (bytes): a feature of one organization is well under 2 KB.
MAX_BODY_BYTES = 64 * 1024
#: Media types a body may come in.
BODY_TYPES = ("application/geo+json", "application/json", "application/merge-patch+json")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
#: How a write from this API is recorded in the history.
VIA = "api"


def _collection(collection_id: str) -> features.Collection:
    coll = features.COLLECTIONS.get(collection_id)
    if coll is None or not coll.writable:
        raise editing.EditError(405, "该集合只读", "this collection is read-only")
    return coll


def _body() -> dict:
    """The request's JSON object, checked for size, media type and CRS."""
    if request.content_length is None:
        raise editing.EditError(411, "需要 Content-Length", "the body's Content-Length is required")
    if request.content_length > MAX_BODY_BYTES:
        raise editing.EditError(413, "请求过大", f"the body must be at most {MAX_BODY_BYTES} bytes")
    if request.mimetype not in BODY_TYPES:
        raise editing.EditError(415, "请求应为 GeoJSON", f"the body must be one of {', '.join(BODY_TYPES)}")
    crs = request.headers.get("Content-Crs", "").strip("<> ")
    if crs and crs != CRS84:
        raise editing.EditError(400, "仅支持 CRS84（WGS-84 经纬度）", f"Content-Crs must be {CRS84}")
    try:
        body = json.loads(request.get_data(cache=False), parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise editing.EditError(400, "请求不是有效的 JSON", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise editing.EditError(400, "请求应为一个 GeoJSON 要素", "the body must be a GeoJSON feature object")
    return body


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _feature(body: dict, coll: features.Collection, whole: bool) -> tuple[dict, editing.Position | None]:
    """The fields and position a (``whole``, else merge-patch) feature asks for."""
    if whole and body.get("type") != "Feature":
        raise editing.EditError(400, "请求应为 GeoJSON 要素（type: Feature）", 'the body must have "type": "Feature"')
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        raise editing.EditError(400, "properties 应为对象", "properties must be an object")
    read_only = set(coll.properties) - set(editing.EDITABLE) - {coll.fid}
    fields = {k: v for k, v in properties.items() if k not in read_only}
    for name, value in fields.items():
        if isinstance(value, dict) or (isinstance(value, list) and name != "party_org_id"):
            raise BadParameter(name, "取值应为文字、数字或是否", "a value must be text, a number or a boolean")
    position = _position(body["geometry"]) if body.get("geometry") is not None else None
    return fields, position


def _position(geometry) -> editing.Position:
    """The point of a GeoJSON geometry in CRS84 (longitude, latitude)."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        raise BadParameter("geometry", "位置应为点（Point）", "the geometry must be a Point")
    coordinates = geometry.get("coordinates")
    numbers = isinstance(coordinates, list) and len(coordinates) in (2, 3)
    numbers = numbers and all(isinstance(v, int | float) and not isinstance(v, bool) for v in coordinates)
    if not numbers or not all(math.isfinite(v) for v in coordinates):
        raise BadParameter("geometry", "坐标应为 [经度, 纬度]", "coordinates must be [longitude, latitude]")
    lon, lat = float(coordinates[0]), float(coordinates[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BadParameter("geometry", "经纬度超出范围", "longitude or latitude out of range")
    return editing.Position(lon, lat, "api")


def _if_match(fid: str) -> str:
    """The version the write names; first 403 for an item outside the caller's jurisdiction
    (404 for none at all), before the header is looked at."""
    if editing.record(get_store(), fid) is None:
        raise editing.not_yours(get_store(), fid)
    value = request.headers.get("If-Match")
    if not value:
        raise editing.EditError(
            428, "需要 If-Match（先读取该要素的 ETag）", "If-Match is required: send the item's ETag"
        )
    return value


def _answer(found: dict, status: int = 200) -> Response:
    """The stored record as a GeoJSON feature, with its ETag."""
    properties = {k: v for k, v in found.items() if k not in ("id", "lon", "lat")}
    geometry = None if found["lon"] is None else {"type": "Point", "coordinates": [found["lon"], found["lat"]]}
    feature = {"type": "Feature", "id": found["org_id"], "geometry": geometry, "properties": properties}
    response = Response(json.dumps(feature, ensure_ascii=False), status=status, mimetype="application/geo+json")
    response.headers["ETag"] = editing.etag(found)
    return response


def _audited(action: str, org_id: str, detail: str) -> None:
    accounts.audit(base_store(), g.user["username"], action, target=org_id, address=request.remote_addr, detail=detail)


@bp.post("/collections/<collection_id>/items")
def create(collection_id: str):
    """Add an organization: 201 with its ``Location`` and ``ETag``."""
    coll = _collection(collection_id)
    fields, position = _feature(_body(), coll, whole=True)
    if position is None:
        raise BadParameter("geometry", "新增组织需要位置", "a new organization needs its position")
    values = {**fields, "org_id": fields.get(coll.fid)} if fields.get(coll.fid) is not None else fields
    if "org_id" in values and not isinstance(values["org_id"], str):
        raise BadParameter(coll.fid, "编号应为文字", "the id must be text")
    found = editing.create(get_store(), values, position, g.user["username"], VIA)
    _audited("org_create", found["org_id"], "OGC API Part 4")
    response = _answer(found, 201)
    response.headers["Location"] = url_for("api.item", collection_id=coll.id, fid=found["org_id"], _external=True)
    return response


@bp.put("/collections/<collection_id>/items/<path:fid>")
def replace(collection_id: str, fid: str):
    """Replace an organization's record with the feature sent (fields left out are cleared)."""
    coll = _collection(collection_id)
    if_match = _if_match(fid)
    fields, position = _feature(_body(), coll, whole=True)
    _same_id(fields, coll, fid)
    cleared = {f: editing.ORGS.column(f).default for f in editing.EDITABLE}
    found = editing.edit(
        get_store(), fid, {**cleared, **_editable(fields, coll)}, g.user["username"], VIA, if_match, position
    )
    _audited("org_edit", fid, "OGC API Part 4 replace")
    return _answer(found)


@bp.patch("/collections/<collection_id>/items/<path:fid>")
def update(collection_id: str, fid: str):
    """Change the fields a JSON merge patch names; ``null`` clears one."""
    coll = _collection(collection_id)
    if_match = _if_match(fid)
    fields, position = _feature(_body(), coll, whole=False)
    _same_id(fields, coll, fid)
    found = editing.edit(get_store(), fid, _editable(fields, coll), g.user["username"], VIA, if_match, position)
    _audited("org_edit", fid, "OGC API Part 4 update")
    return _answer(found)


@bp.delete("/collections/<collection_id>/items/<path:fid>")
def delete(collection_id: str, fid: str):
    """Remove an organization entered by mistake: 204."""
    _collection(collection_id)
    editing.delete(get_store(), fid, g.user["username"], VIA, _if_match(fid))
    _audited("org_delete", fid, "OGC API Part 4")
    return Response(status=204)


def _same_id(fields: dict, coll: features.Collection, fid: str) -> None:
    if coll.fid in fields and fields[coll.fid] != fid:
        raise BadParameter(coll.fid, "编号不能更改", "the id of an item cannot change")


def _editable(fields: dict, coll: features.Collection) -> dict:
    """The fields without the id; a cleared (``null``) one takes its default."""
    return {
        k: (editing.ORGS.column(k).default if v is None and k in editing.EDITABLE else v)
        for k, v in fields.items()
        if k != coll.fid
    }
