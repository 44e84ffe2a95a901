"""Embeddable maps: ``/embed`` draws a chrome-less map chosen entirely by URL parameters, for an
iframe in another system's page; which sites may frame it is the ``HONGTU_FRAME_ANCESTORS``
setting (CSP ``frame-ancestors``)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, render_template, request

from ..db import get_store
from ..layers import EMBEDDABLE
from ..store import area_stats, queries
from .areas import area_focus
from .mapbuilder import basemap_ids, build_city_map, render_parts
from .maps import filters_from
from .params import BadParameter, parse_int

bp = Blueprint("embed", __name__)

DEFAULT_LAYERS = ("district", "street", "community", "orgs")


def _layers() -> tuple[str, ...]:
    raw = request.args.get("layers", "")
    if not raw:
        return DEFAULT_LAYERS
    layers = tuple(dict.fromkeys(filter(None, raw.split(","))))
    unknown = [name for name in layers if name not in EMBEDDABLE]
    if unknown:
        raise BadParameter("layers", f"未知图层 {','.join(unknown)}", f"unknown layers {', '.join(unknown)}")
    return layers


def _center() -> tuple[float, float] | None:
    raw = request.args.get("center")
    if not raw:
        return None
    try:
        lat, lon = (float(v) for v in raw.split(","))
    except ValueError:
        raise BadParameter("center", "需要 纬度,经度", "expected lat,lon") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise BadParameter("center", "超出范围", "out of range")
    return lat, lon


@bp.get("/embed")
def embed():
    """A map for an iframe: ``area``, ``layers``, ``basemap``, ``center``/``zoom`` and the
    organization filters (``status``, ``org_type``, ``industry``, ``scope``, ``size``)."""
    store = get_store()
    code = request.args.get("area") or None
    if code is not None:
        try:
            area_stats.level_of(code)
        except ValueError:
            raise BadParameter("area", "区划代码无效", "not an area code") from None
        trail = area_stats.trail(store, code)
        if not trail:
            abort(404)
    basemap = request.args.get("basemap") or None
    if basemap is not None and basemap not in basemap_ids():
        raise BadParameter("basemap", f"应为 {'/'.join(basemap_ids())}", f"expected one of {', '.join(basemap_ids())}")
    filters = filters_from(request.args, allow_area=False)
    layers, center = _layers(), _center()
    zoom = parse_int("zoom", request.args.get("zoom"), 12, 3, 19)
    focus = area_focus(store, code)
    if center is None:
        (miny, minx), (maxy, maxx) = focus["bounds"]
        center = ((miny + maxy) / 2, (minx + maxx) / 2)
    m = build_city_map(
        center,
        zoom=zoom,
        area=focus,
        overlays=layers,
        basemap=basemap,
        filters=filters,
        fit="center" not in request.args,
    )
    title = trail[-1]["name"] if code else None
    return render_template("embed.html", title=title, run_id=queries.latest_run_id(store), **render_parts(m))


def frame_ancestors(response: Response) -> Response:
    """Let only the configured sites frame an embed; every other page only by Hongtu itself."""
    sources = current_app.config["HONGTU_FRAME_ANCESTORS"] if request.endpoint == "embed.embed" else "'self'"
    response.headers.setdefault("Content-Security-Policy", f"frame-ancestors {sources}")
    return response
