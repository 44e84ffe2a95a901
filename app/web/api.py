"""The open API under ``/api``: OGC API – Features (Part 1: Core, GeoJSON, OpenAPI 3.0) over
every layer and analysis result, plus statistics and run comparison.

Clients that read any OGC API – Features service (QGIS, GDAL's OAPIF driver, OWSLib) read
this one. Errors are JSON with a bilingual message; a bad parameter is a 400 that names it.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from urllib.parse import urlencode

import numpy as np
import shapely
from flask import Blueprint, Response, abort, render_template, request, url_for

from ..db import get_store
from ..services import editing
from ..services.analysis import compare_runs
from ..spreadsheets import to_csv
from ..store import area_stats, cache, features, queries
from ..store.models import AREA_LEVELS
from . import openapi
from .params import BadParameter, parse_bbox, parse_int

bp = Blueprint("api", __name__, url_prefix="/api")

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
)
#: Parameters every items request may carry, besides the collection's own properties.
ITEM_PARAMETERS = frozenset({"bbox", "limit", "offset", "sortby", "f", "resulttype", "run", "crs", "bbox-crs"})
MAX_LIMIT = 10_000
STAT_LEVELS = ("city", "district", "street", "community", "grid", "place", "industry")
GEOJSON = "application/geo+json"
#: The OpenAPI document's media type, with the version GDAL's OAPIF driver looks for.
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"


def _json(body: dict, mimetype: str = "application/json") -> Response:
    return Response(json.dumps(body, ensure_ascii=False, default=_default), mimetype=mimetype)


def _default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _link(href: str, rel: str, kind: str = "application/json", title: str | None = None) -> dict:
    link = {"href": href, "rel": rel, "type": kind}
    if title:
        link["title"] = title
    return link


@bp.get("")
@bp.get("/")
def landing():
    """The landing page: what this service is and where its parts are."""
    return _json(
        {
            "title": "红图 Hongtu 开放接口",
            "description": "两新组织党建地图数据（OGC API – Features）/ party-building map data of Hongtu",
            "links": [
                _link(url_for("api.landing", _external=True), "self"),
                _link(
                    url_for("api.openapi_json", _external=True),
                    "service-desc",
                    OPENAPI,
                    "OpenAPI",
                ),
                _link(url_for("api.docs", _external=True), "service-doc", "text/html", "接口文档 API docs"),
                _link(url_for("api.conformance", _external=True), "conformance"),
                _link(url_for("api.collections", _external=True), "data"),
            ],
        }
    )


@bp.get("/conformance")
def conformance():
    return _json({"conformsTo": list(CONFORMANCE)})


@bp.get("/openapi.json")
def openapi_json():
    body = json.dumps(openapi.document(url_for("api.landing", _external=True).rstrip("/")), ensure_ascii=False)
    # content_type, not mimetype: the version parameter is kept as written, no charset added.
    return Response(body, content_type=OPENAPI)


@bp.get("/docs")
def docs():
    """A readable page of the OpenAPI document (served locally, no Swagger UI from a CDN)."""
    return render_template("api_docs.html", doc=openapi.document(url_for("api.landing", _external=True).rstrip("/")))


def _collection_meta(store, coll: features.Collection) -> dict:
    items = url_for("api.items", collection_id=coll.id, _external=True)
    bbox = features.extent(store, coll)
    meta = {
        "id": coll.id,
        "title": f"{coll.title} {coll.title_en}",
        "description": coll.description,
        "itemType": "feature",
        "crs": [CRS84],
        "links": [
            _link(url_for("api.collection", collection_id=coll.id, _external=True), "self"),
            _link(items, "items", GEOJSON, "GeoJSON"),
            _link(items + "?f=csv", "items", "text/csv", "CSV"),
        ],
    }
    if bbox is not None:
        meta["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return meta


@bp.get("/collections")
def collections():
    store = get_store()
    return _json(
        {
            "links": [_link(url_for("api.collections", _external=True), "self")],
            "collections": [_collection_meta(store, c) for c in features.COLLECTIONS.values()],
        }
    )


def _find(collection_id: str) -> features.Collection:
    coll = features.COLLECTIONS.get(collection_id)
    if coll is None:
        abort(404)
    return coll


@bp.get("/collections/<collection_id>")
def collection(collection_id: str):
    return _json(_collection_meta(get_store(), _find(collection_id)))


def _coerce(name: str, raw: str, kind: str):
    try:
        if kind == "integer":
            value = int(raw)
            # Beyond 64 bits no row can match, and the databases refuse the number.
            if not -(2**63) <= value < 2**63:
                raise ValueError(raw)
            return value
        if kind == "number":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
    except ValueError:
        raise BadParameter(name, f"应为 {kind} 类型", f"expected {kind}") from None
    if kind == "boolean":
        if raw not in ("true", "false"):
            raise BadParameter(name, "应为 true 或 false", "expected true or false")
        return raw == "true"
    return raw


def _run_id(store, coll: features.Collection, version: int | None = None) -> int:
    """The run a result collection is read from: ``run`` or the latest (as of data ``version``
    when known); 0 for plain layers."""
    if not coll.run:
        if "run" in request.args:
            raise BadParameter("run", "该集合不属于分析结果", "this collection holds no analysis results")
        return 0
    latest = queries.latest_run_id(store, version)
    run_id = parse_int("run", request.args.get("run"), latest, 1 if "run" in request.args else 0, 2**31 - 1)
    if "run" in request.args and not queries.known_runs(store, [run_id]):
        raise BadParameter("run", "没有这次分析", "no such analysis run")
    return run_id


def _known_parameters(allowed) -> None:
    """Refuse, naming it, the first request parameter not in ``allowed`` (``lang`` always is)."""
    for name in request.args:
        if name not in allowed and name != "lang":
            raise BadParameter(name, "未知参数", "unknown parameter")


def _query(coll: features.Collection) -> dict:
    """The validated parameters of an items request."""
    args = request.args
    _known_parameters(ITEM_PARAMETERS | set(coll.properties))
    for name in ("crs", "bbox-crs"):
        if name in args and args[name] != CRS84:
            raise BadParameter(name, "仅支持 CRS84（WGS-84 经纬度）", f"only {CRS84} is supported")
    sortby = []
    for key in filter(None, args.get("sortby", "").split(",")):
        desc = key.startswith("-")
        name = key.lstrip("+-")
        if name not in coll.properties:
            raise BadParameter("sortby", f"不能按 {name} 排序", f"cannot sort by {name!r}")
        sortby.append((name, desc))
    fmt = args.get("f", "json")
    if fmt not in ("json", "geojson", "csv"):
        raise BadParameter("f", "应为 json 或 csv", "expected json or csv")
    resulttype = args.get("resulttype", "results")
    if resulttype not in ("results", "hits"):
        raise BadParameter("resulttype", "应为 results 或 hits", "expected results or hits")
    return {
        "bbox": parse_bbox(args["bbox"]) if "bbox" in args else None,
        "filters": {
            name: _coerce(name, args[name], kind) for name, (_, kind) in coll.properties.items() if name in args
        },
        "sortby": sortby,
        "limit": parse_int("limit", args.get("limit"), 100, 1, MAX_LIMIT),
        "offset": parse_int("offset", args.get("offset"), 0, 0, 2**31 - 1),
        "format": "csv" if fmt == "csv" else "json",
        "hits": resulttype == "hits",
    }


@bp.get("/collections/<collection_id>/items")
def items(collection_id: str):
    """A page of features, filtered by bbox and properties, sorted, as GeoJSON or CSV."""
    coll = _find(collection_id)
    store = get_store()
    q = _query(coll)
    base = url_for("api.items", collection_id=coll.id, _external=True)
    if q["hits"]:
        matched = features.count(store, coll, _page(q, _run_id(store, coll)))
        return _json(
            {"type": "FeatureCollection", "numberMatched": matched, "numberReturned": 0, "features": []}, GEOJSON
        )
    if q["format"] == "csv":
        frame, geoms, _ = features.items(store, coll, _page(q, _run_id(store, coll)))
        out = frame.assign(geometry_wkt=shapely.to_wkt(geoms, rounding_precision=7) if len(geoms) else [])
        return Response(
            "\ufeff" + to_csv(out),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{coll.id}.csv"'},
        )
    args = request.args.to_dict()

    def geojson(version: int) -> bytes:
        run_id = _run_id(store, coll, version)
        found, more, matched = cache.page_features(store, coll, _page(q, run_id), version)
        links = [
            _link(f"{base}?{urlencode(args)}", "self", GEOJSON),
            _link(f"{base}?{urlencode({**args, 'f': 'csv'})}", "alternate", "text/csv"),
            _link(url_for("api.collection", collection_id=coll.id, _external=True), "collection"),
        ]
        if more:
            links.append(_link(f"{base}?{urlencode({**args, 'offset': q['offset'] + q['limit']})}", "next", GEOJSON))
        if q["offset"] > 0:
            links.append(
                _link(f"{base}?{urlencode({**args, 'offset': max(q['offset'] - q['limit'], 0)})}", "prev", GEOJSON)
            )
        head = {
            "type": "FeatureCollection",
            "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
            **({"numberMatched": matched} if matched is not None else {}),
            "numberReturned": len(found),
            "links": links,
        }
        if coll.run:
            head["run"] = run_id or None
        return json.dumps(head, ensure_ascii=False)[:-1].encode() + b',"features":[' + b",".join(found) + b"]}"

    # Pages are kept until the next write: views asked for again (a report's map, a client
    # reloading its layer) are answered without reading the data. Everything a page depends
    # on besides the data is in the key — the caller's jurisdiction and masking included; the
    # latest run needs no place there, as storing a run is a write.
    key = json.dumps([base, sorted(args.items()), store.scope, store.contacts], ensure_ascii=False)
    return Response(cache.answer(store, key, geojson), mimetype=GEOJSON)


def _page(q: dict, run_id: int) -> features.Page:
    """The page of validated request parameters ``q``."""
    return features.Page(q["bbox"], q["filters"], q["sortby"], q["limit"], q["offset"], run_id)


@bp.get("/collections/<collection_id>/items/<path:fid>")
def item(collection_id: str, fid: str):
    """One feature by its identifier."""
    coll = _find(collection_id)
    store = get_store()
    _known_parameters(("f", "run"))
    integer = coll.properties[coll.fid][1] == "integer"
    # isdigit() alone takes "²", which int() refuses.
    if integer and not (fid.isascii() and fid.isdigit() and int(fid) < 2**63):
        abort(404)
    key = int(fid) if integer else fid
    one = features.Page(filters={coll.fid: key}, limit=1, run_id=_run_id(store, coll))
    found, _ = features.geojson_features(store, coll, one)
    if not found:
        abort(404)
    feature = json.loads(found[0])
    feature["links"] = [
        _link(url_for("api.item", collection_id=coll.id, fid=fid, _external=True), "self", GEOJSON),
        _link(url_for("api.collection", collection_id=coll.id, _external=True), "collection"),
    ]
    if not coll.writable:
        return _json(feature, GEOJSON)
    # The version a write must name (If-Match), and the fields it may change that the listing
    # leaves out (the party links and the instructor).
    stored = editing.record(store, key)
    if stored is None:  # removed between the two reads
        abort(404)
    feature["properties"].update({k: stored[k] for k in editing.EDITABLE if k not in feature["properties"]})
    response = _json(feature, GEOJSON)
    response.headers["ETag"] = editing.etag(stored)
    return response


@bp.get("/runs")
def runs():
    """The analysis runs, newest first, with their parameters and figures: the city's, or for
    a caller with a jurisdiction, those of the jurisdiction (``area``)."""
    store = get_store()
    runs = queries.analysis_runs(store)
    if store.scope:
        figures = area_stats.trend(store, store.scope).set_index("run_id").drop(columns="created_at")
        for run in runs:
            mine = figures.loc[run["id"]] if run["id"] in figures.index else None
            run.pop("input_counts")
            run["summary"] = None
            run["area"] = {
                "code": store.scope,
                **(mine.where(mine.notna(), None).to_dict() if mine is not None else {}),
            }
    return _json({"runs": runs})


@bp.get("/stats/<level>")
def stats(level: str):
    """Counts and rates per area of ``level`` (or per place or industry) in a run."""
    if level not in STAT_LEVELS:
        raise BadParameter("level", f"应为 {'/'.join(STAT_LEVELS)}", f"expected one of {', '.join(STAT_LEVELS)}")
    store = get_store()
    _known_parameters(("run",))
    run_id = _run_id(store, features.COLLECTIONS["area-coverage"])
    if store.scope and level not in AREA_LEVELS:
        # City, place and industry figures reach beyond a jurisdiction.
        abort(403, description="此统计超出您的管辖范围 / these figures reach beyond your jurisdiction")
    frame = queries.run_area_rows(store, run_id, level)
    return _json({"run": run_id or None, "level": level, "rows": frame.to_dict("records")})


@bp.get("/stats/compare")
def compare():
    """What changed between two runs ``a`` and ``b`` (本期变化) and the rates before and after:
    the city's, or within the caller's jurisdiction."""
    store = get_store()
    _known_parameters(("a", "b"))
    ids = {}
    for name in ("a", "b"):
        if name not in request.args:
            raise BadParameter(name, "需要两次分析的编号", "give the ids of two runs as a and b")
        ids[name] = parse_int(name, request.args[name], 0, 1, 2**31 - 1)
    known = queries.known_runs(store, ids.values())
    for name, run_id in ids.items():
        if run_id not in known:
            raise BadParameter(name, "没有这次分析", "no such analysis run")
    transitions, rates = compare_runs(store, ids["a"], ids["b"], store.scope)
    return _json(
        {"a": ids["a"], "b": ids["b"], "transitions": transitions.to_dict("records"), "rates": rates.to_dict("records")}
    )
