"""Map pages and the bbox/zoom data endpoints their layers are filled from."""

from __future__ import annotations

import numpy as np
import shapely
from flask import Blueprint, current_app, jsonify, render_template, request

from ..db import get_store
from ..store import queries
from .geojson import feature_collection, geojson_response, point_collection
from .mapbuilder import build_city_map, render_parts

bp = Blueprint("maps", __name__)

AREA_LEVELS = ("district", "street", "community", "grid")
#: Simple point/polygon layers: table and the attribute columns sent to the browser.
SIMPLE_LAYERS = {
    "places": ("places", ("place_id", "name", "kind")),
    "centers": ("service_centers", ("center_id", "name", "level", "capacity")),
    "stations": ("stations", ("station_id", "name", "kind", "facilities")),
}


class BadParameter(ValueError):
    """A request parameter that cannot be used; answered with 400 and its name."""

    def __init__(self, name: str, zh: str, en: str):
        super().__init__(f"{name}: {zh} / {en}")
        self.name = name


@bp.errorhandler(BadParameter)
def _bad_parameter(exc: BadParameter):
    return jsonify({"error": str(exc), "parameter": exc.name}), 400


def _bbox() -> tuple[float, float, float, float]:
    raw = request.args.get("bbox", "")
    try:
        minx, miny, maxx, maxy = (float(v) for v in raw.split(","))
    except ValueError:
        raise BadParameter("bbox", "需要 minx,miny,maxx,maxy 四个数", "expected minx,miny,maxx,maxy") from None
    if not (-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90):
        raise BadParameter("bbox", "范围无效", "out of range or min > max")
    return minx, miny, maxx, maxy


def _zoom() -> int:
    try:
        zoom = int(request.args.get("zoom", "12"))
    except ValueError:
        raise BadParameter("zoom", "需要整数", "expected an integer") from None
    if not 0 <= zoom <= 22:
        raise BadParameter("zoom", "应在 0–22 之间", "expected 0–22")
    return zoom


@bp.get("/")
def index():
    """The city map."""
    store = get_store()
    if not store.schema_ready():
        return render_template("empty.html", reason="schema"), 503
    counts = store.counts()
    districts = store.read_frame("areas", ["code"], where={"level": "district"})
    if districts.empty:
        return render_template("empty.html", reason="data", counts=counts)
    minx, miny, maxx, maxy = districts.total_bounds
    # Start where community centers are densest (the urban core), not at the centre of the
    # rural extent: their median position.
    seats = store.read_frame("service_centers", ["id"], where={"level": "community"})
    if len(seats):
        lon, lat = np.median(shapely.get_coordinates(seats.geometry.values), axis=0)
    else:
        lat, lon = (miny + maxy) / 2, (minx + maxx) / 2
    m = build_city_map((lat, lon), zoom=12)
    return render_template("map.html", counts=counts, **render_parts(m))


@bp.get("/map/data/<layer>")
def data(layer: str):
    """GeoJSON of one layer for the visible box; big layers are aggregated at low zoom."""
    bbox, zoom = _bbox(), _zoom()
    store = get_store()
    # One screen pixel at this zoom, in degrees: the finest detail worth sending.
    pixel = 360.0 / (256 * 2**zoom)
    if layer in AREA_LEVELS:
        frame = store.read_frame("areas", ["code", "name", "level"], bbox=bbox, where={"level": layer})
        frame["geometry"] = shapely.simplify(frame.geometry.values, pixel)
        return geojson_response(feature_collection(frame, ["code", "name", "level"], grid_size=pixel / 4))
    if layer in SIMPLE_LAYERS:
        table, columns = SIMPLE_LAYERS[layer]
        frame = store.read_frame(table, columns, bbox=bbox)
        return geojson_response(feature_collection(frame, columns))
    if layer == "orgs":
        limit = current_app.config["HONGTU_POINT_LIMIT"]
        if queries.count_at_most(store, "organizations", bbox, limit) <= limit:
            rows = queries.organization_points(store, bbox, limit)
            return geojson_response(point_collection(rows, {"mode": "points"}))
        # About one cluster per 64 screen pixels; the lattice is fixed per zoom so clusters
        # stay put while panning.
        cell = pixel * 64
        rows = queries.organization_clusters(store, bbox, cell)
        return geojson_response(point_collection(rows, {"mode": "clusters", "cell": cell}))
    return jsonify({"error": f"layer: 未知图层 / unknown layer {layer!r}", "parameter": "layer"}), 404
