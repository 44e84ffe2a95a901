"""Map pages and the bbox/zoom data endpoints their layers are filled from."""

from __future__ import annotations

from urllib.parse import quote

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from flask import Blueprint, current_app, jsonify, render_template, request, url_for

from geo import walking
from geo.crs import (
    METRES_PER_DEGREE_LAT,
    METRES_PER_DEGREE_LON,
    from_wgs84_xy,
    to_wgs84_xy,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)
from geo.vocabulary import AREA_LEVELS, MAP_STATUSES

from ..db import base_store, get_store
from ..i18n import gettext
from ..layers import BY_KEY, RUN_FEATURE_KINDS
from ..services import analysis_jobs, visits
from ..store import area_stats, cache, queries, tiles
from .access import may
from .areas import area_focus
from .geojson import feature_collection, geojson_response, point_collection, to_display
from .labels import LEVEL_NAMES
from .mapbuilder import build_city_map, render_parts
from .params import BadParameter, parse_bbox, parse_int

bp = Blueprint("maps", __name__)

#: Simple point/polygon layers: table and the attribute columns sent to the browser.
SIMPLE_LAYERS = {
    "places": ("places", ("place_id", "name", "kind")),
    "centers": ("service_centers", ("center_id", "name", "level", "capacity")),
    "stations": ("stations", ("station_id", "name", "kind", "facilities")),
    "roads": ("roads", ("road_id", "name", "kind", "walkable")),
}


#: Highest zoom at which the cached cluster tiles are consulted before counting (city to district).
CACHED_ZOOM = 13


def _display_crs() -> str:
    """The coordinates the browser draws in: WGS-84, or GCJ-02 under AMap tiles."""
    crs = request.args.get("crs", "wgs84")
    if crs not in ("wgs84", "gcj02"):
        raise BadParameter("crs", "应为 wgs84 或 gcj02", "expected wgs84 or gcj02")
    return crs


def _bbox(crs: str = "wgs84") -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = parse_bbox(request.args.get("bbox", ""))
    if crs != "wgs84":
        # The offset varies by metres per kilometre: converted corners plus a small margin
        # cover the whole view.
        (minx, maxx), (miny, maxy) = to_wgs84_xy(np.array([minx, maxx]), np.array([miny, maxy]), crs)
        minx, miny, maxx, maxy = minx - 0.002, miny - 0.002, maxx + 0.002, maxy + 0.002
    return minx, miny, maxx, maxy


def _zoom() -> int:
    return parse_int("zoom", request.args.get("zoom"), 12, 0, 22)


def filters_from(args, allow_area: bool = True) -> dict[str, str]:
    """The organization filters among request ``args``, validated; empty ones left out."""
    names = queries.MAP_FILTERS if allow_area else tuple(n for n in queries.MAP_FILTERS if n != "area")
    filters = {name: args.get(name, "").strip() for name in names}
    allowed = {
        "status": MAP_STATUSES,
        "org_type": ("enterprise", "social_org"),
        "scope": ("in", "out"),
        "size": tuple(queries.SIZE_BANDS),
    }
    for name, values in allowed.items():
        if filters[name] and filters[name] not in values:
            raise BadParameter(name, f"应为 {'/'.join(values)}", f"expected one of {', '.join(values)}")
    if filters.get("area"):
        try:
            area_stats.level_of(filters["area"])
        except ValueError:
            raise BadParameter(
                "area", "应为 6/9/12/15 位区划或网格代码", "expected a 6, 9, 12 or 15-digit area code"
            ) from None
    return {k: v for k, v in filters.items() if v}


@bp.get("/map/org/<org_id>")
def organization(org_id: str):
    """The card of one organization, with navigation links for AMap (GCJ-02) and Baidu (BD-09)."""
    store = get_store()
    card = queries.organization_card(store, org_id, queries.latest_run_id(store))
    if card is None:
        return jsonify({"error": f"org_id: 未找到 / no organization {org_id!r}", "parameter": "org_id"}), 404
    card["navigation"] = navigation_links(card["lon"], card["lat"], card["name"])
    # The status is the run's; the record above it may be newer (an import, a correction).
    card["results_stale"] = analysis_jobs.freshness(base_store())["stale"]
    card["unvisited"] = visits.is_unvisited(
        card["instructor"], card["last_visit"], current_app.config["HONGTU_VISIT_DAYS"]
    )
    if may("visits.form"):
        card["visit"] = url_for("visits.form", org_id=org_id)
    if may("corrections.form"):
        card["correct"] = url_for("corrections.form", org_id=org_id)
    return jsonify(card)


@bp.get("/map/center/<center_id>")
def center(center_id: str):
    """The card of one service center: level, capacity, organizations paired by the latest run."""
    store = get_store()
    run_id = queries.latest_run_id(store)
    card = queries.center_card(store, center_id, run_id)
    if card is None:
        return jsonify({"error": f"center_id: 未找到 / no center {center_id!r}", "parameter": "center_id"}), 404
    card["run_id"] = run_id or None
    return jsonify(card)


def navigation_links(lon: float, lat: float, name: str) -> dict[str, str]:
    """Links opening AMap and Baidu Maps at a WGS-84 point, in each one's own coordinates."""
    glon, glat = (float(v) for v in wgs84_to_gcj02(lon, lat))
    blon, blat = (float(v) for v in wgs84_to_bd09(lon, lat))
    label = quote(name)
    return {
        "amap": f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name={label}&coordinate=gaode",
        "baidu": (
            f"https://api.map.baidu.com/marker?location={blat:.6f},{blon:.6f}&title={label}"
            f"&content={label}&output=html&coord_type=bd09ll&src=hongtu"
        ),
    }


#: What search looks through, in the order its groups are listed, each named as on the map.
SEARCH_KINDS = ("areas", "places", "centers", "stations", "organizations")
SEARCH_NAMES = {
    "areas": "区域",
    **{key: BY_KEY[key].label for key in ("places", "centers", "stations")},
    "organizations": "两新组织",
}


@bp.get("/map/search")
def search():
    """Areas (by name or code), places, centers, stations and organizations (by name, address or
    credit code) within the caller's jurisdiction, grouped by kind; an area comes with its
    bounds and outline to zoom to, and its page."""
    q = request.args.get("q", "").strip()[:100]
    if not q:
        raise BadParameter("q", "请输入名称、地址或信用代码", "give a name, address or credit code")
    store, crs = get_store(), _display_crs()
    areas = queries.search_areas(store, q)
    for hit in areas:
        del hit["depth"]
        focus = area_focus(store, hit["code"], crs)
        hit.update(
            level_name=gettext(LEVEL_NAMES[hit["level"]]),
            bounds=focus["bounds"],
            outline=focus["outline"],
            url=url_for("areas.page", code=hit["code"]),
        )
    found = {
        "areas": areas,
        "places": to_display(queries.search_places(store, q, 8), crs),
        "centers": to_display(queries.search_points(store, "service_centers", q), crs),
        "stations": to_display(queries.search_points(store, "stations", q), crs),
        "organizations": to_display(queries.search_organizations(store, q), crs),
    }
    groups = [{"kind": k, "name": gettext(SEARCH_NAMES[k]), "results": found[k]} for k in SEARCH_KINDS if found[k]]
    return jsonify(
        {"query": q, "groups": groups, "results": [{**hit, "kind": g["kind"]} for g in groups for hit in g["results"]]}
    )


#: Largest radius a nearby query may ask for, in metres.
NEARBY_MAX_M = 5000.0
_GEOD = pyproj.Geod(ellps="WGS84")


@bp.get("/map/nearby")
def nearby():
    """Organizations and service centers within ``r`` metres of a point, nearest first."""
    try:
        lon, lat = float(request.args["lon"]), float(request.args["lat"])
    except (KeyError, ValueError):
        raise BadParameter("lon/lat", "需要经纬度", "expected lon and lat") from None
    lon, lat = (float(v) for v in to_wgs84_xy(lon, lat, _display_crs()))
    try:
        radius = float(request.args.get("r", current_app.config["HONGTU_SERVICE_RADIUS_M"]))
    except ValueError:
        raise BadParameter("r", "需要数字（米）", "expected metres") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not 0 < radius <= NEARBY_MAX_M:
        raise BadParameter(
            "lon/lat/r",
            f"超出范围（半径不超过 {NEARBY_MAX_M:.0f} 米）",
            f"out of range (radius at most {NEARBY_MAX_M:.0f} m)",
        )
    dlat = radius / METRES_PER_DEGREE_LAT
    dlon = radius / (METRES_PER_DEGREE_LON * max(np.cos(np.radians(lat)), 1e-6))
    bbox = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
    store = get_store()
    orgs = pd.DataFrame(queries.organization_points(store, bbox, 5000, queries.latest_run_id(store)))
    centers = store.read_frame("service_centers", ["center_id", "name", "level", "capacity"], bbox=bbox)
    # The areas the point lies in, coarsest first, so the card can link to their pages.
    answer = {"lon": lon, "lat": lat, "r": radius, "areas": queries.areas_containing(store, lon, lat)}
    for key, frame, xy in (
        ("organizations", orgs, (orgs["lon"], orgs["lat"]) if len(orgs) else None),
        (
            "centers",
            pd.DataFrame(centers.drop(columns="geometry")),
            (shapely.get_x(centers.geometry.values), shapely.get_y(centers.geometry.values)) if len(centers) else None,
        ),
    ):
        if xy is None:
            answer[key] = []
            continue
        distance = _GEOD.inv(np.full(len(frame), lon), np.full(len(frame), lat), *xy)[2]
        frame = frame.assign(distance_m=np.round(distance, 1))
        frame = frame[frame["distance_m"] <= radius].sort_values("distance_m").head(50)
        answer[key] = frame.drop(columns=["lon", "lat"], errors="ignore").to_dict("records")
    return jsonify(answer)


@bp.get("/")
def index():
    """The city map."""
    store = get_store()
    facts = queries.data_facts(store)
    if store.scope:
        # Staff see their own area, fitted, with the rest veiled.
        return _map_page(store, facts, build_city_map((0, 0), area=area_focus(store, store.scope)))
    center = queries.city_center(store)
    if center is None:
        return render_template("empty.html", counts=facts["counts"])
    return _map_page(store, facts, build_city_map(center, zoom=tiles.CITY_ZOOM))


def _map_page(store, facts: dict, m) -> str:
    return render_template(
        "map.html",
        counts=facts["counts"],
        industries=facts["industries"],
        size_bands={k: {"label": v[0]} for k, v in queries.SIZE_BANDS.items()},
        area_choices=queries.area_choices(store),
        run_id=queries.latest_run_id(store),
        **render_parts(m),
    )


@bp.get("/map/data/<layer>")
def data(layer: str):
    """GeoJSON of one layer for the visible box; big layers are aggregated at low zoom."""
    crs = _display_crs()
    bbox, zoom = _bbox(crs), _zoom()
    filters = filters_from(request.args) if layer == "orgs" else {}
    body = layer_geojson(get_store(), layer, bbox, zoom, crs, filters, current_app.config["HONGTU_POINT_LIMIT"])
    if body is None:
        return jsonify({"error": f"layer: 未知图层 / unknown layer {layer!r}", "parameter": "layer"}), 404
    return geojson_response(body)


def layer_geojson(
    store, layer: str, bbox: tuple, zoom: int, crs: str = "wgs84", filters: dict | None = None, point_limit: int = 1500
) -> str | None:
    """The GeoJSON text of one layer in ``bbox`` at ``zoom`` (None for an unknown layer).

    Organizations come as points when at most ``point_limit`` match ``filters``, else as clusters.
    """
    # One screen pixel at this zoom, in degrees: the finest detail worth sending.
    pixel = tiles.pixel_degrees(zoom)
    if layer in AREA_LEVELS:
        frame = store.read_frame("areas", ["code", "name", "level"], bbox=bbox, where={"level": layer})
        frame["geometry"] = shapely.simplify(frame.geometry.values, pixel)
        # The latest run's 两个覆盖率 per area, for the choropleth.
        rates = queries.area_rates(store, queries.latest_run_id(store), layer)
        frame = frame.join(rates, on="code")
        # Where a label goes: a point surely inside, even for a crescent-shaped area.
        labels = shapely.point_on_surface(frame.geometry.values)
        lx, ly = from_wgs84_xy(shapely.get_x(labels), shapely.get_y(labels), crs)
        frame["label"] = [[round(float(x), 5), round(float(y), 5)] for x, y in zip(lx, ly, strict=True)]
        columns = ["code", "name", "level", "label", *rates.columns]
        # A power-of-ten grid keeps coordinates short in the JSON.
        grid = 10.0 ** np.floor(np.log10(pixel / 4))
        return feature_collection(frame, columns, grid_size=grid, crs=crs)
    if layer in RUN_FEATURE_KINDS:
        frame = store.read_frame(
            "run_features",
            ["kind", "rank", "count"],
            bbox=bbox,
            where={"run_id": queries.latest_run_id(store), "kind": RUN_FEATURE_KINDS[layer]},
        )
        return feature_collection(frame, ["kind", "rank", "count"], crs=crs)
    if layer == "pairings":
        lines = queries.pairing_lines(
            store, bbox, queries.latest_run_id(store), current_app.config["HONGTU_POINT_LIMIT"]
        )
        ends = np.stack(
            [lines[["lon", "lat"]].to_numpy(float), lines[["clon", "clat"]].to_numpy(float)], axis=1
        ).reshape(-1, 2, 2)
        frame = gpd.GeoDataFrame(lines, geometry=shapely.linestrings(ends), crs=4326)
        columns = ["org_id", "name", "center_id", "center_name", "pair_distance_m"]
        return feature_collection(frame, columns, crs=crs)
    if layer == "branches":
        members = queries.joint_branch_members(store, bbox, queries.latest_run_id(store))
        proposals = members.groupby("proposal_id", sort=True).agg(
            units=("org_id", "size"),
            party_members=("party_members", "sum"),
            spread_m=("spread_m", "first"),
            names=("name", list),
        )
        _, index = np.unique(members["proposal_id"].to_numpy(), return_inverse=True)
        geoms = shapely.multipoints(members[["lon", "lat"]].to_numpy(float), indices=index) if len(members) else []
        frame = gpd.GeoDataFrame(proposals.reset_index(), geometry=list(geoms), crs=4326)
        columns = ["proposal_id", "units", "party_members", "spread_m", "names"]
        return feature_collection(frame, columns, crs=crs)
    if layer == "line_only":
        rows = queries.line_only_points(
            store,
            bbox,
            queries.latest_run_id(store),
            current_app.config["HONGTU_SERVICE_RADIUS_M"],
            max(walking.REACH_MINUTES) * 60 * walking.WALK_SPEED_MS,
            point_limit,
        )
        return point_collection(rows, crs=crs)
    if layer in SIMPLE_LAYERS:
        table, columns = SIMPLE_LAYERS[layer]
        frame = store.read_frame(table, columns, bbox=bbox)
        return feature_collection(frame, columns, crs=crs)
    if layer == "orgs":
        limit = point_limit
        run_id, filters = queries.latest_run_id(store), filters or {}
        cell = tiles.cluster_cell(zoom)
        # Cached tiles that already hold more than the limit inside the view settle it for
        # clusters without counting (at 1M organizations the count is the slow part).
        cached = cache.cluster_tiles(store, bbox, cell, run_id, filters, compute=False) if zoom <= CACHED_ZOOM else None
        if cached is not None and tiles.inside_count(cached[0], bbox, cell) > limit:
            total = limit + 1
        else:
            total = queries.organization_count(store, bbox, limit, run_id, filters)
        if total <= limit:
            rows = queries.organization_points(store, bbox, limit, run_id, filters)
            counts = pd.Series([r["status"] for r in rows]).value_counts()
            by_status = {s: int(counts.get(s, 0)) for s in MAP_STATUSES}
            return point_collection(rows, {"mode": "points", "total": total, "by_status": by_status}, crs)
        rows, covered = cached if cached is not None else cache.cluster_tiles(store, bbox, cell, run_id, filters)
        # The legend's counts per status come with the clusters at no extra query.
        by_status = {s: int(sum(r[s] for r in rows)) for s in MAP_STATUSES}
        extra = {
            "mode": "clusters",
            "cell": cell,
            "tiles": covered,
            "total": sum(r["n"] for r in rows),
            "by_status": by_status,
        }
        return point_collection(rows, extra, crs)
    return None
