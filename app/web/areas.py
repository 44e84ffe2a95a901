"""Area pages: the city → district → street → community → grid drill-down, each with its map,
figures, charts, children, blank-organization ledger and exports."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, abort, current_app, render_template, request

from geo import walking
from geo.crs import from_wgs84
from geo.vocabulary import CHANGE_KIND_NAMES, CHANGE_KINDS, ORG_TYPE_NAMES, STATUS_NAMES

from ..db import get_store
from ..i18n import gettext
from ..services import visits
from ..store import area_stats, queries
from . import charts
from .excel import download
from .labels import LEVEL_NAMES, RATE_NAMES, area_name
from .mapbuilder import build_city_map, render_parts
from .params import BadParameter, parse_int
from .placing import LOCATED_BY_LABELS

bp = Blueprint("areas", __name__, url_prefix="/area")

EXPORTS = ("ledger", "children", "industries", "changes", "visits")
#: What each export is called in its file name, sheet and title.
EXPORT_NAMES = {
    "ledger": "空白组织台账",
    "children": "下级区域统计",
    "industries": "行业统计",
    "changes": "本期变化",
    "visits": "走访记录",
}
LEDGER_ROWS_SHOWN = 200
CHANGE_ROWS_SHOWN = 200


def _level(code: str | None) -> str:
    try:
        return area_stats.level_of(code)
    except ValueError:
        abort(404)


def _export_frame(store, code: str | None, what: str, run_id: int) -> pd.DataFrame:
    if what == "ledger":
        frame = area_stats.blank_ledger(store, code, run_id)
        frame["org_type"] = frame["org_type"].map({k: gettext(zh) for k, zh in ORG_TYPE_NAMES.items()})
        frame["located_by"] = frame["located_by"].map({k: gettext(v) for k, v in LOCATED_BY_LABELS.items()})
        return frame
    if what == "children":
        return area_stats.children(store, code, run_id)
    if what == "visits":
        frame = area_stats.visit_list(store, code, run_id)
        return frame.assign(far=frame["far"].astype(bool).map({True: gettext("是"), False: gettext("否")}))
    if what == "changes":
        before, after = compared_runs(store, run_id)
        if not before:
            return pd.DataFrame(columns=list(area_stats.CHANGE_COLUMNS))
        return labelled_changes(area_stats.run_changes(store, code, before, after))
    return area_stats.industries(store, code, run_id)


def compared_runs(store, latest: int) -> tuple[int, int]:
    """The runs 本期变化 compares: ``?a=`` and ``?b=`` when given, else the latest run and the
    one before it (0 for ``a`` when there is none)."""
    ids = {}
    for name in ("a", "b"):
        if name in request.args:
            ids[name] = parse_int(name, request.args[name], 0, 1, 2**31 - 1)
    known = queries.known_runs(store, ids.values()) if ids else set()
    for name, run_id in ids.items():
        if run_id not in known:
            raise BadParameter(name, "没有这次分析", "no such analysis run")
    after = ids.get("b", latest)
    return ids.get("a", area_stats.previous_run_id(store, after)), after


def labelled_changes(frame: pd.DataFrame) -> pd.DataFrame:
    """本期变化 with its kinds and statuses in words (translated when the page is in English)."""
    words = {k: gettext(v) for k, v in {**CHANGE_KIND_NAMES, **STATUS_NAMES}.items()}
    return frame.assign(
        change=frame["change"].map(words),
        status_before=frame["status_before"].map(words),
        status_after=frame["status_after"].map(words),
    )


def area_focus(store, code: str | None, crs: str = "wgs84") -> dict:
    """What a map needs to focus on an area (the city without a code): its code, its bounds
    ``[[south, west], [north, east]]`` and its outline as GeoJSON, simplified to about a pixel,
    in the map's ``crs``."""
    if code is None:
        frame = store.read_frame("areas", ["code"], where={"level": "district"})
    else:
        frame = store.read_frame("areas", ["code"], where={"code": code})
    minx, miny, maxx, maxy = frame.total_bounds
    tolerance = max(maxx - minx, maxy - miny) / 1500
    outline = shapely.simplify(shapely.union_all(frame.geometry.values), tolerance)
    if crs != "wgs84":
        outline = from_wgs84(np.array([outline]), crs)[0]
        minx, miny, maxx, maxy = shapely.bounds(outline)
    focus = {
        "bounds": [[miny, minx], [maxy, maxx]],
        "outline": json.loads(shapely.to_geojson(shapely.set_precision(outline, tolerance / 4))),
    }
    if code is not None:
        focus["code"] = code
    return focus


def _map(store, code: str | None) -> dict[str, str]:
    """The page's map: fitted to the area, its organizations only, its outline on top."""
    focus = area_focus(store, code)
    (miny, minx), (maxy, maxx) = focus["bounds"]
    return render_parts(build_city_map(((miny + maxy) / 2, (minx + maxx) / 2), zoom=12, area=focus))


@bp.get("/", defaults={"code": None})
@bp.get("/<code>")
def page(code: str | None):
    """The page of one area (the city without a code)."""
    level = _level(code)
    store = get_store()
    trail = area_stats.trail(store, code) if code else []
    if code and not trail:
        abort(404)
    run_id = queries.latest_run_id(store)
    kids = area_stats.children(store, code, run_id)
    figures = area_stats.figures(store, code, run_id)
    context = {
        "code": code,
        "level": level,
        "level_names": LEVEL_NAMES,
        "rate_names": RATE_NAMES,
        "trail": trail,
        "name": area_name(trail),
        "run_id": run_id,
        "figures": figures,
        "children": kids.replace({np.nan: None}).to_dict("records"),
        "child_level": area_stats.child_level(level),
        "exports": EXPORTS,
        **_map(store, code),
    }
    if figures is not None:
        industries = area_stats.industries(store, code, run_id)
        ledger = area_stats.blank_ledger(store, code, run_id, limit=LEDGER_ROWS_SHOWN)
        trend = area_stats.trend(store, code)
        top = industries.head(12)
        days = current_app.config["HONGTU_VISIT_DAYS"]
        since = (visits.today() - timedelta(days=days)).isoformat()
        context.update(visit_days=days, visit_figures=area_stats.visit_figures(store, code, run_id, since))
        radius, minutes = current_app.config["HONGTU_SERVICE_RADIUS_M"], max(walking.REACH_MINUTES)
        context.update(
            reach_radius=radius,
            reach_minutes=minutes,
            reach=area_stats.reach_figures(store, code, run_id, radius, minutes * 60 * walking.WALK_SPEED_MS),
        )
        before, after = compared_runs(store, run_id)
        if before:
            found = area_stats.run_changes(store, code, before, after)
            counts = found["change"].value_counts()
            context.update(
                changes=labelled_changes(found.head(CHANGE_ROWS_SHOWN)).replace({np.nan: None}).to_dict("records"),
                change_counts=[(CHANGE_KIND_NAMES[k], int(counts.get(k, 0))) for k in CHANGE_KINDS],
                change_total=len(found),
                change_runs=(before, after),
            )
        context.update(
            ledger=ledger.replace({np.nan: None}).to_dict("records"),
            ledger_total=int(figures["blank"]),
            branches=area_stats.joint_branch_count(store, code, run_id),
            children_chart=charts.rate_bars(
                list(kids["name"]), list(kids["both_rate"].astype(float)), gettext("两个覆盖率")
            )
            if len(kids)
            else None,
            industry_chart=charts.stacked_bars(
                [gettext(n) for n in top["industry"]],
                {k: list(top[k]) for k in ("covered", "work", "blank")},
                {"covered": gettext("组织覆盖"), "work": gettext("工作覆盖"), "blank": gettext("空白")},
                gettext("行业分布（在统计范围）"),
            ),
            trend_chart=charts.trend_lines(
                [f"#{r} {pd.Timestamp(d):%m-%d}" for r, d in zip(trend["run_id"], trend["created_at"], strict=True)],
                {gettext(RATE_NAMES[c]): list(trend[c].astype(float)) for c in ("both_rate", "org_coverage_rate")},
                gettext("历次分析"),
            ),
        )
    return render_template("area.html", **context)


@bp.get("/export/<what>.<fmt>", defaults={"code": None})
@bp.get("/<code>/export/<what>.<fmt>")
def export(code: str | None, what: str, fmt: str):
    """A table of the area as CSV (UTF-8 with BOM, opens in Excel) or an Excel workbook."""
    _level(code)
    if what not in EXPORTS or fmt not in ("csv", "xlsx"):
        abort(404)
    store = get_store()
    run_id = queries.latest_run_id(store)
    if not run_id:
        abort(404)
    frame = _export_frame(store, code, what, run_id)
    trail = area_stats.trail(store, code) if code else []
    area = area_name(trail)
    label, today = gettext(EXPORT_NAMES[what]), date.today().isoformat()
    title = f"{area} {label} · {gettext('分析')} #{run_id} · {today}"
    return download(frame, f"{area}-{label}-{today}", fmt, label[:31], title)
