"""The dashboard (大屏): one screen of the latest run's figures for the committee's wall.

``/dashboard`` is a page without the site menu, drawn by ECharts (vendored, served by Hongtu):
the four rates as rings, areas ranked by 两个覆盖率, the trend across runs, industry ×
coverage, blank organizations per area, and a map of blank organizations and hot spots whose
areas drill down on a click. ``/dashboard/data.json?area=CODE`` gives one area's figures (the
city without ``area``); the page asks for it again every ``?refresh=N`` seconds.

Areas with fewer than ``HONGTU_RANK_MIN`` organizations in scope are ranked after the others,
each with its n, so that a county of two organizations does not top the ranking with 100 %.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, Response, abort, current_app, render_template, request

from geo.coverage import RATE_COLUMNS
from geo.vocabulary import MAP_STATUS_COLORS

from ..db import get_store
from ..i18n import current_language, gettext, local_time
from ..store import area_stats, cache, queries
from .geojson import feature_collection
from .labels import LEVEL_NAMES, RATE_NAMES, area_name
from .params import parse_int

bp = Blueprint("dashboard", __name__)

#: Shortest auto-refresh period a screen may ask for, in seconds.
MIN_REFRESH_S = 10
#: Industries shown, most organizations first.
MAX_INDUSTRIES = 10
#: Outlines are simplified to this share of the area's larger side: far below a screen pixel.
OUTLINE_DETAIL = 1 / 1500


@bp.get("/dashboard")
def dashboard():
    """The page; its figures come from :func:`data`."""
    refresh = parse_int("refresh", request.args.get("refresh"), 0, 0, 24 * 3600) if request.args.get("refresh") else 0
    return render_template(
        "dashboard.html",
        refresh=max(refresh, MIN_REFRESH_S) if refresh else 0,
        area=request.args.get("area", ""),
    )


@bp.get("/dashboard/data.json")
def data():
    """One area's dashboard figures as JSON (see :func:`board`)."""
    store = get_store()
    code = request.args.get("area") or None
    try:
        area_stats.level_of(code)
    except ValueError:
        abort(404)
    if code and not area_stats.trail(store, code):
        abort(404)
    run_id = queries.latest_run_id(store)
    least = current_app.config["HONGTU_RANK_MIN"]
    key = json.dumps(["dashboard", code, run_id, least, current_language(), area_name([]), store.scope])
    body = cache.answer(store, key, lambda _version: json.dumps(board(store, code, run_id, least), ensure_ascii=False))
    return Response(body, mimetype="application/json")


def board(store, code: str | None, run_id: int, least: int) -> dict:
    """Everything the dashboard shows of area ``code`` (None: the city) in run ``run_id``.

    Parameters
    ----------
    least : int
        Fewest organizations in scope for an area to be ranked among the others.
    """
    trail = area_stats.trail(store, code) if code else []
    level = area_stats.level_of(code)
    below = area_stats.child_level(level)
    answer = {
        "area": {"code": code, "name": area_name(trail), "level": level, "level_name": gettext(LEVEL_NAMES[level])},
        "trail": [{"code": None, "name": area_name([])}, *({"code": a["code"], "name": a["name"]} for a in trail)],
        "child_level": below and gettext(LEVEL_NAMES[below]),
        "run": None,
        "least": least,
        "rate_names": {k: gettext(v) for k, v in RATE_NAMES.items()},
        "colors": MAP_STATUS_COLORS,
    }
    figures = area_stats.figures(store, code, run_id) if run_id else None
    if figures is None:
        return answer
    runs = {r["id"]: r for r in queries.analysis_runs(store)}
    answer["run"] = {"id": run_id, "date": local_time(runs[run_id]["created_at"]) if run_id in runs else ""}
    answer["figures"] = {**figures, "branches": area_stats.joint_branch_count(store, code, run_id)}
    kids = area_stats.children(store, code, run_id)
    answer["children"] = _ranked(kids, least)
    answer["outlines"] = json.loads(_outlines(store, code, kids))
    answer["hotspots"] = _hotspots(store, code, run_id)
    trend = area_stats.trend(store, code)
    answer["trend"] = [
        {"run_id": int(r["run_id"]), "date": f"{pd.Timestamp(r['created_at']):%m-%d}", **_rates(r)}
        for r in trend.to_dict("records")
    ]
    industries = area_stats.industries(store, code, run_id)
    industries = industries[industries["in_scope"] > 0].head(MAX_INDUSTRIES)
    answer["industries"] = [
        {"name": gettext(r["industry"]), **{k: int(r[k]) for k in ("in_scope", "covered", "work", "blank")}}
        for r in industries.to_dict("records")
    ]
    return answer


def _rates(row: dict) -> dict:
    return {k: None if pd.isna(row[k]) else round(float(row[k]), 4) for k in RATE_COLUMNS}


def _ranked(kids: pd.DataFrame, least: int) -> list[dict]:
    """The child areas ranked by 两个覆盖率, the ones with fewer than ``least`` in scope last."""
    kids = kids.assign(
        in_scope=kids["in_scope"].fillna(0).astype(int),
        orgs=kids["orgs"].fillna(0).astype(int),
        blank=kids["blank"].fillna(0).astype(int),
    )
    kids = kids.assign(ranked=kids["in_scope"] >= least)
    kids = kids.sort_values(["ranked", "both_rate", "in_scope"], ascending=[False, False, False], na_position="last")
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "orgs": r["orgs"],
            "in_scope": r["in_scope"],
            "blank": r["blank"],
            "ranked": bool(r["ranked"]),
            **_rates(r),
        }
        for r in kids.to_dict("records")
    ]


def _outlines(store, code: str | None, kids: pd.DataFrame) -> str:
    """The child areas' outlines as GeoJSON, simplified far below a screen pixel."""
    where = {"level": "district"} if code is None else {"parent_code": code}
    frame = store.read_frame("areas", ["code", "name"], where=where)
    if frame.empty:
        return '{"type":"FeatureCollection","features":[]}'
    minx, miny, maxx, maxy = frame.total_bounds
    detail = max(maxx - minx, maxy - miny) * OUTLINE_DETAIL
    frame["geometry"] = shapely.simplify(frame.geometry.values, detail)
    blank = kids.set_index("code")["blank"].fillna(0).astype(int)
    frame["blank"] = frame["code"].map(blank).fillna(0).astype(int)
    # Where a name goes: a point surely inside, even for a crescent-shaped area.
    labels = shapely.get_coordinates(shapely.point_on_surface(frame.geometry.values))
    frame["label"] = np.round(labels, 5).tolist()
    return feature_collection(frame, ["code", "name", "blank", "label"], grid_size=detail / 4)


def _hotspots(store, code: str | None, run_id: int) -> list[list[float]]:
    """The run's hot spots of blank organizations inside the area: ``[lon, lat, count]`` each."""
    spots = store.read_frame("run_features", ["count"], where={"run_id": run_id, "kind": "hotspot"})
    if spots.empty:
        return []
    centers = shapely.centroid(spots.geometry.values)
    if code is not None:
        outline = store.read_frame("areas", ["code"], where={"code": code})
        if outline.empty:
            return []
        inside = shapely.intersects(outline.geometry.values[0], centers)
        centers, spots = centers[inside], spots[inside]
    xy = np.round(shapely.get_coordinates(centers), 5)
    return [[float(x), float(y), int(n)] for (x, y), n in zip(xy, spots["count"].to_numpy(), strict=True)]
