"""The dashboard (大屏): city-wide figures, rates by district and industry, blank counts,
proposed joint branches and a map, for a wall screen; ``?refresh=N`` reloads it every N seconds."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..db import get_store
from ..i18n import gettext
from ..store import area_stats, queries
from . import charts
from .labels import RATE_NAMES
from .mapbuilder import build_city_map, render_parts

bp = Blueprint("dashboard", __name__)

#: Shortest auto-refresh period a screen may ask for, in seconds.
MIN_REFRESH_S = 10


@bp.get("/dashboard")
def dashboard():
    """City-wide figures of the latest analysis run."""
    store = get_store()
    run_id = queries.latest_run_id(store)
    try:
        refresh = max(int(request.args.get("refresh", "0")), MIN_REFRESH_S) if request.args.get("refresh") else None
    except ValueError:
        refresh = None
    context = {
        "run_id": run_id,
        "refresh": refresh,
        "counts": queries.data_facts(store)["counts"],
        "rate_names": RATE_NAMES,
    }
    figures = area_stats.figures(store, None, run_id) if run_id else None
    if figures is not None:
        districts = area_stats.children(store, None, run_id).sort_values("both_rate", ascending=False)
        industries = area_stats.industries(store, None, run_id)
        industries = industries[industries["in_scope"] > 0].head(12)
        industry_rates = (industries["covered"] + industries["work"]) / industries["in_scope"]
        blank = districts.sort_values("blank", ascending=False)
        context.update(
            figures=figures,
            branches=area_stats.joint_branch_count(store, None, run_id),
            district_chart=charts.rate_bars(
                list(districts["name"]), list(districts["both_rate"].astype(float)), gettext("各区县两个覆盖率")
            ),
            industry_chart=charts.rate_bars(
                [gettext(n) for n in industries["industry"]],
                list(industry_rates.astype(float)),
                gettext("各行业两个覆盖率"),
            ),
            blank_chart=charts.stacked_bars(
                list(blank["name"]),
                {"blank": list(blank["blank"].fillna(0).astype(int))},
                {"blank": gettext("空白")},
                gettext("各区县空白组织"),
            ),
        )
    districts = store.read_frame("areas", ["code"], where={"level": "district"})
    minx, miny, maxx, maxy = districts.total_bounds if len(districts) else (102.5, 24.8, 103.0, 25.2)
    m = build_city_map(
        ((miny + maxy) / 2, (minx + maxx) / 2),
        zoom=9,
        area={"bounds": [[miny, minx], [maxy, maxx]], "outline": None},
        overlays=("district", "street", "hotspots"),
    )
    return render_template("dashboard.html", **context, **render_parts(m))
