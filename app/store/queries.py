"""Read queries the web layer needs, written once for both backends.

Spatial filtering goes through ``store.backend.bbox_clause`` so it is answered from the
R*Tree (SpatiaLite) or GiST (PostGIS) index; everything else is portable SQL.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select, text

from geo.vocabulary import MAP_STATUSES

from . import Store, cache, personal, result_frame
from .backends import bbox_params
from .models import ACTIVE_ASSIGNMENT_SQL, AnalysisRun
from .tiles import BBox

#: Coverage status of organization ``t`` from the stored party work: organizational
#: coverage (any party organization), else work coverage (an instructor), else blank.
STATUS_SQL = (
    "CASE WHEN EXISTS (SELECT 1 FROM party_org_coverage c WHERE c.organization_id = t.id) "
    f"THEN 'org' WHEN EXISTS (SELECT 1 FROM instructors i WHERE i.organization_id = t.id AND {ACTIVE_ASSIGNMENT_SQL}) "
    "THEN 'work' ELSE 'blank' END"
)


#: Map status of an organization: from the latest analysis run when there is one (out of
#: scope → 'out'; own, joint, area- and industry-based → 'org'), else from the stored party work.
MAP_STATUS_SQL = (
    f"CASE WHEN r.organization_id IS NULL THEN ({STATUS_SQL}) WHEN NOT r.in_scope THEN 'out' "
    "WHEN r.status IN ('own', 'joint', 'area', 'industry') THEN 'org' ELSE r.status END"
)
#: Filters the map accepts that are an equality on one column of the organization subquery.
ORG_FILTERS = ("org_type", "industry", "status")
#: Size bands by employees: (label, lowest, highest or None). The lowest band ends where the
#: default statistical scope of enterprises begins (10 employees).
SIZE_BANDS = {
    "micro": ("10 人以下", 0, 9),
    "small": ("10–49 人", 10, 49),
    "medium": ("50–299 人", 50, 299),
    "large": ("300 人及以上", 300, None),
}
#: Every filter name the map accepts.
MAP_FILTERS = (*ORG_FILTERS, "scope", "size", "area")
#: Area level by the length of its code.
LEVEL_BY_CODE_LENGTH = {6: "district", 9: "street", 12: "community", 15: "grid"}


def _organizations(store: Store, filters: dict[str, str]) -> tuple[str, dict]:
    """SQL (and parameters) of the organizations in the bound box, with map status, filtered.

    ``filters`` holds validated values: ``ORG_FILTERS`` by equality, ``scope`` in/out, ``size`` a
    key of ``SIZE_BANDS``, ``area`` an area code (matched on the latest run's assignment, or
    spatially within the area's polygon when no run exists; the run's ``:run`` is 0 then).
    """
    sql = (
        "SELECT * FROM (SELECT t.id, t.org_id, t.name, t.org_type, t.industry, t.employees, t.party_members, "
        f"t.address, t.located_by, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, {MAP_STATUS_SQL} AS status "
        "FROM organizations t LEFT JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
        f"WHERE {store.backend.bbox_clause('organizations', 't')}"
    )
    params = {f"f_{name}": filters[name] for name in ORG_FILTERS if filters.get(name)}
    if filters.get("area"):
        params["f_area"] = filters["area"]
        sql += f" AND {_in_area(store, filters['area'], 'f_area')}"
    sql, params = _kept_in_scope(store, sql, params)
    sql += ") s"
    conditions = [f"s.{name} = :f_{name}" for name in ORG_FILTERS if filters.get(name)]
    if filters.get("scope"):
        conditions.append("s.status = 'out'" if filters["scope"] == "out" else "s.status <> 'out'")
    if filters.get("size"):
        _, low, high = SIZE_BANDS[filters["size"]]
        conditions.append(f"coalesce(s.employees, 0) >= {int(low)}")
        if high is not None:
            conditions.append(f"coalesce(s.employees, 0) <= {int(high)}")
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    return sql, params


def _kept_in_scope(store: Store, sql: str, params: dict) -> tuple[str, dict]:
    """``sql`` over organizations ``t`` (ending in a WHERE condition) kept to the store's
    jurisdiction by where each organization is now, not where the last run found it: one moved
    into another district leaves its old community's view at once."""
    sql, scope = store.restrict(sql, "organizations", "t")
    return sql, {**params, **scope}


def _in_area(store: Store, area: str, param: str) -> str:
    """SQL: organization ``t`` (with run row ``r``) lies in the area bound to ``:param``.

    Organizations the run assigned are matched by code; any it has not seen (imported since,
    or no run yet) by the area's polygon."""
    column = f"r.{LEVEL_BY_CODE_LENGTH[len(area)]}_code"
    inside = store.backend.is_true(f"ST_Contains((SELECT a.geom FROM areas a WHERE a.code = :{param}), t.geom)")
    return f"((r.organization_id IS NOT NULL AND {column} = :{param}) OR (r.organization_id IS NULL AND {inside}))"


def run_area_rows(store: Store, run_id: int, level: str) -> pd.DataFrame:
    """Every count and rate of the run per area of one level within the store's scope, by code
    (an empty frame without a run)."""
    sql, scope = store.restrict("SELECT * FROM run_areas t WHERE run_id = :run AND level = :level", "areas", "t")
    with store.connect() as conn:
        result = conn.execute(text(f"{sql} ORDER BY code"), {"run": run_id, "level": level, **scope})
        return result_frame(result).drop(columns="run_id")


def area_rates(store: Store, run_id: int, level: str) -> pd.DataFrame:
    """The run's counts and rates per area code of one level, for the map's choropleth."""
    columns = ["code", "orgs", "in_scope", "blank", "both_rate", "org_coverage_rate"]
    return run_area_rows(store, run_id, level)[columns].set_index("code")


def known_runs(store: Store, ids) -> set[int]:
    """Which of the run ids ``ids`` exist."""
    with store.connect() as conn:
        return {row[0] for row in conn.execute(select(AnalysisRun.id).where(AnalysisRun.id.in_(list(ids))))}


def analysis_runs(store: Store) -> list[dict]:
    """The analysis runs, newest first: parameters, input counts, duration, note and city-wide
    figures (without the per-flag detail of joint-branch checks)."""
    query = select(
        AnalysisRun.id,
        AnalysisRun.created_at,
        AnalysisRun.parameters,
        AnalysisRun.input_counts,
        AnalysisRun.duration_s,
        AnalysisRun.note,
        AnalysisRun.summary,
    ).order_by(AnalysisRun.id.desc())
    with store.connect() as conn:
        rows = conn.execute(query).mappings()
        runs = []
        for row in rows:
            run = dict(row)
            summary = dict(run.pop("summary") or {})
            summary.pop("branch_flags", None)
            runs.append({**run, "summary": summary})
    return runs


def industries(store: Store) -> list[str]:
    """The industries organizations are filed under, for the map's filter."""
    with store.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                text("SELECT DISTINCT industry FROM organizations WHERE industry IS NOT NULL ORDER BY industry")
            )
        ]


def data_facts(store: Store) -> dict:
    """Row counts of the data tables in the caller's scope (``counts``) and the industries organizations are filed
    under (``industries``), kept per data version: every map page shows them, and counting a
    million rows takes PostgreSQL most of a second."""
    facts = cache.answer(
        store,
        f"data-facts {store.scope}",
        lambda _: json.dumps({"counts": store.counts(), "industries": industries(store)}),
    )
    return json.loads(facts)


#: The latest run of each database as of a data version: (version, run id) by store URL.
_latest_runs: dict[str, tuple[int, int]] = {}


def latest_run_time(store: Store):
    """When the latest analysis run was made (None without one)."""
    with store.connect() as conn:
        return conn.execute(select(AnalysisRun.created_at).order_by(AnalysisRun.id.desc()).limit(1)).scalar()


def latest_run_id(store: Store, version: int | None = None) -> int:
    """The newest analysis run, or 0 when there is none. Given the data ``version`` the caller
    read, the answer is remembered for that version: a run is only ever stored by a write."""
    remembered = _latest_runs.get(store.url)
    if version is not None and remembered is not None and remembered[0] == version:
        return remembered[1]
    with store.connect(transaction=False) as conn:
        run_id = conn.execute(text("SELECT coalesce(max(id), 0) FROM analysis_runs")).scalar()
    if version is not None:
        _latest_runs[store.url] = (version, run_id)
    return run_id


def organization_count(store: Store, bbox: BBox, limit: int, run_id: int, filters: dict[str, str]) -> int:
    """Organizations in ``bbox`` passing ``filters``, counted no further than ``limit + 1``."""
    sql, params = _organizations(store, filters)
    with store.connect() as conn:
        return conn.execute(
            text(f"SELECT count(*) FROM ({sql} LIMIT :lim) c"),
            {**bbox_params(bbox), **params, "run": run_id, "lim": limit + 1},
        ).scalar()


def organization_points(
    store: Store, bbox: BBox, limit: int, run_id: int = 0, filters: dict[str, str] | None = None
) -> list[dict]:
    """Organizations in ``bbox`` with their attributes and map status, at most ``limit``."""
    sql, params = _organizations(store, filters or {})
    with store.connect() as conn:
        rows = conn.execute(
            text(f"{sql} ORDER BY s.id LIMIT :lim"), {**bbox_params(bbox), **params, "run": run_id, "lim": limit}
        ).mappings()
        return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def _floor(expr: str) -> str:
    """Portable floor to an integer: SQLite's CAST truncates, PostgreSQL's rounds."""
    return f"(CAST({expr} AS INTEGER) - CASE WHEN {expr} < CAST({expr} AS INTEGER) THEN 1 ELSE 0 END)"


def organization_clusters(
    store: Store, bbox: BBox, cell_deg: float, run_id: int = 0, filters: dict[str, str] | None = None
) -> list[dict]:
    """Organizations in ``bbox`` aggregated on a square lattice of ``cell_deg`` degrees.

    Each cluster has its cell (``gx``, ``gy``), member count, mean position and count of each
    map status.
    """
    sql, params = _organizations(store, filters or {})
    # Grouped by cell and status, the statuses then folded into their cell: one aggregate per
    # group is cheaper than one per status on both backends (docs/performance.md).
    grouped = (
        "SELECT gx, gy, status, count(*) AS n, sum(lon) AS lon, sum(lat) AS lat FROM ("
        f"SELECT {_floor('q.lon / :cell')} AS gx, {_floor('q.lat / :cell')} AS gy, q.status, q.lon, q.lat "
        f"FROM ({sql}) q) g GROUP BY gx, gy, status"
    )
    with store.connect() as conn:
        rows = conn.execute(text(grouped), {**bbox_params(bbox), **params, "run": run_id, "cell": cell_deg}).fetchall()
    clusters: dict[tuple[int, int], dict] = {}
    for gx, gy, status, n, lon, lat in rows:  # a row per cell and status, not per organization
        c = clusters.setdefault(
            (gx, gy), {"gx": gx, "gy": gy, "n": 0, "lon": 0.0, "lat": 0.0, **dict.fromkeys(MAP_STATUSES, 0)}
        )
        c["n"] += n
        c["lon"] += lon
        c["lat"] += lat
        if status in MAP_STATUSES:
            c[status] += n
    for c in clusters.values():
        c["lon"] /= c["n"]
        c["lat"] /= c["n"]
    return list(clusters.values())


def city_center(store: Store) -> tuple[float, float] | None:
    """Where the city map opens (lat, lon): the median community center (the urban core, not
    the middle of the rural extent), else the middle of the districts; None without districts."""
    # The districts' bounds from the database: reading their outlines for it was half of a
    # new worker's first map page.
    bounds = store.extent("areas", where={"level": "district"})
    if bounds is None:
        return None
    seats = store.read_frame("service_centers", ["id"], where={"level": "community"})
    if len(seats):
        lon, lat = np.median(shapely.get_coordinates(seats.geometry.values), axis=0)
        return float(lat), float(lon)
    minx, miny, maxx, maxy = bounds
    return (miny + maxy) / 2, (minx + maxx) / 2


CARD_SQL = (
    "SELECT t.id, t.org_id, t.name, t.org_type, t.industry, t.credit_code, t.employees, t.party_members, "
    "t.address, t.operating, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, r.status AS run_status, r.in_scope, "
    "r.district_code, r.street_code, r.community_code, r.grid_code, r.place_id, r.center_id, "
    "r.pair_distance_m, r.pair_tier, r.reach_distance_m, r.walk_m, p.name AS place_name, c.name AS center_name, "
    "w.name AS walk_center_name "
    "FROM organizations t LEFT JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
    "LEFT JOIN places p ON p.place_id = r.place_id "
    "LEFT JOIN service_centers c ON c.center_id = r.center_id "
    "LEFT JOIN service_centers w ON w.center_id = r.walk_center_id WHERE t.org_id = :org"
)


def organization_card(store: Store, org_id: str, run_id: int) -> dict | None:
    """Everything a popup shows about one organization (None if unknown)."""
    with store.connect() as conn:
        sql, params = _kept_in_scope(store, CARD_SQL, {"run": run_id, "org": org_id})
        row = conn.execute(text(sql), params).mappings().first()
        if row is None:
            return None
        card = dict(row)
        card["party_orgs"] = [
            dict(r)
            for r in conn.execute(
                text(
                    "SELECT p.party_org_id, p.name, p.org_type, p.coverage_kind FROM party_org_coverage c "
                    "JOIN party_orgs p ON p.id = c.party_org_id WHERE c.organization_id = :id ORDER BY p.party_org_id"
                ),
                {"id": card["id"]},
            ).mappings()
        ]
        # Who is assigned now: the named instructors (phones masked for roles without need),
        # and whether any assignment, named or the ledger's plain yes, is active.
        people = conn.execute(
            text(
                f"SELECT p.name, p.unit, {personal.shown(store, 'instructor_phone', 'p.phone')} AS phone, "
                "p.starts_on, p.ends_on "
                "FROM instructors i JOIN instructor_people p ON p.id = i.person_id "
                f"WHERE i.organization_id = :id AND {ACTIVE_ASSIGNMENT_SQL} ORDER BY p.name"
            ),
            {"id": card["id"]},
        )
        card["instructors"] = [dict(r) for r in people.mappings()]
        card["instructor"] = bool(
            conn.execute(
                text(f"SELECT count(*) FROM instructors i WHERE i.organization_id = :id AND {ACTIVE_ASSIGNMENT_SQL}"),
                {"id": card["id"]},
            ).scalar()
        )
        card["community_name"] = conn.execute(
            text("SELECT name FROM areas WHERE code = :c"), {"c": card["community_code"]}
        ).scalar()
        last = (
            conn.execute(
                text(
                    "SELECT at, username, field, (SELECT count(*) FROM org_changes WHERE org_id = :org) AS n "
                    "FROM org_changes WHERE org_id = :org ORDER BY id DESC LIMIT 1"
                ),
                {"org": org_id},
            )
            .mappings()
            .first()
        )
        # The latest correction, so that the card says its figures may predate it.
        card["last_change"] = None if last is None else {**dict(last), "at": _utc_text(last["at"])}
        card["last_visit"] = conn.execute(
            text("SELECT max(visited_on) FROM visits WHERE organization_id = :id"), {"id": card["id"]}
        ).scalar()
    card.pop("id")
    return card


def _utc_text(value) -> str:
    """A stored time as ISO 8601 in UTC (SQLite hands back text, PostgreSQL a datetime)."""
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def center_card(store: Store, center_id: str, run_id: int) -> dict | None:
    """A service center with the number of organizations the run paired with it."""
    sql, scope = store.restrict(
        "SELECT c.center_id, c.name, c.level, c.capacity, c.area_code, a.name AS area_name, "
        "(SELECT count(*) FROM run_organizations r WHERE r.run_id = :run AND r.center_id = c.center_id) "
        "AS paired FROM service_centers c LEFT JOIN areas a ON a.code = c.area_code WHERE c.center_id = :id",
        "service_centers",
        "c",
    )
    with store.connect() as conn:
        row = conn.execute(text(sql), {"run": run_id, "id": center_id, **scope}).mappings().first()
    return dict(row) if row else None


def _like(text_: str) -> str:
    """``text_`` for a LIKE pattern with ESCAPE '\\': its own wildcards match only themselves."""
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_organizations(store: Store, query: str, limit: int = 20) -> list[dict]:
    """Organizations whose name or address contains ``query``, or whose credit code starts with it."""
    pattern = _like(query)
    return _matching(
        store,
        "SELECT org_id, name, address, credit_code, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM organizations t "
        "WHERE (name LIKE :contains ESCAPE '\\' OR address LIKE :contains ESCAPE '\\' "
        "OR credit_code LIKE :prefix ESCAPE '\\')",
        "organizations",
        "org_id",
        {"contains": f"%{pattern}%", "prefix": f"{pattern.upper()}%", "lim": limit},
    )


def search_places(store: Store, query: str, limit: int = 20) -> list[dict]:
    """Places whose name or address contains ``query``, with a point surely inside each."""
    return _matching(
        store,
        "SELECT place_id, name, kind, address, ST_X(ST_PointOnSurface(geom)) AS lon, "
        "ST_Y(ST_PointOnSurface(geom)) AS lat FROM places t "
        "WHERE (name LIKE :contains ESCAPE '\\' OR address LIKE :contains ESCAPE '\\')",
        "places",
        "place_id",
        {"contains": f"%{_like(query)}%", "lim": limit},
    )


def search_areas(store: Store, query: str, limit: int = 8) -> list[dict]:
    """Districts, streets, communities and grids whose name contains ``query`` or whose code
    starts with it, coarsest first."""
    pattern = _like(query)
    return _matching(
        store,
        "SELECT code, name, level, length(code) AS depth FROM areas t "
        "WHERE (name LIKE :contains ESCAPE '\\' OR code LIKE :prefix ESCAPE '\\')",
        "areas",
        "code",
        {"contains": f"%{pattern}%", "prefix": f"{pattern}%", "lim": limit},
        order="depth",
    )


def search_points(store: Store, table: str, query: str, limit: int = 8) -> list[dict]:
    """Service centers (``table`` ``service_centers``) or stations (``stations``) whose name
    contains ``query``."""
    key, kind = {"service_centers": ("center_id", "level"), "stations": ("station_id", "kind")}[table]
    return _matching(
        store,
        f"SELECT {key}, name, {kind}, ST_X(geom) AS lon, ST_Y(geom) AS lat FROM {table} t "
        "WHERE name LIKE :contains ESCAPE '\\'",
        table,
        key,
        {"contains": f"%{_like(query)}%", "lim": limit},
    )


def _matching(store: Store, sql: str, table: str, key: str, params: dict, order: str = "length(name)") -> list[dict]:
    """The rows of a search (``sql`` over ``table`` aliased ``t``) the store may see, in
    ``order`` (shortest name first), at most ``params["lim"]``."""
    sql, scope = store.restrict(sql, table, "t")
    with store.connect() as conn:
        rows = conn.execute(
            text(f"{sql} ORDER BY {order}, length(name), {key} LIMIT :lim"), {**params, **scope}
        ).mappings()
        return [dict(r) for r in rows]


def areas_containing(store: Store, lon: float, lat: float) -> list[dict]:
    """The areas (district → grid) whose polygon contains a WGS-84 point, coarsest first."""
    sql, scope = store.restrict(
        f"SELECT t.code, t.level, t.name FROM areas t WHERE {store.backend.index_clause('areas', 't')} "
        "AND ST_Contains(t.geom, ST_GeomFromText(:wkt, 4326))",
        "areas",
        "t",
    )
    sql += " ORDER BY length(t.code)"
    params = {**bbox_params((lon, lat, lon, lat)), "wkt": f"POINT({float(lon)!r} {float(lat)!r})", **scope}
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def pairing_lines(store: Store, bbox: BBox, run_id: int, limit: int) -> pd.DataFrame:
    """The run's organization → service-center pairings of the organizations in ``bbox``."""
    sql = (
        "SELECT t.org_id, t.name, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, c.center_id, c.name AS center_name, "
        "ST_X(c.geom) AS clon, ST_Y(c.geom) AS clat, r.pair_distance_m FROM organizations t "
        "JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
        f"JOIN service_centers c ON c.center_id = r.center_id WHERE {store.backend.bbox_clause('organizations', 't')}"
    )
    sql, params = _kept_in_scope(store, sql, {**bbox_params(bbox), "run": run_id, "lim": limit})
    with store.connect() as conn:
        result = conn.execute(text(f"{sql} ORDER BY t.id LIMIT :lim"), params)
        return result_frame(result)


def line_only_points(store: Store, bbox: BBox, run_id: int, radius_m: float, walk_m: float, limit: int) -> list[dict]:
    """The run's organizations in ``bbox`` that a center reaches within ``radius_m`` in a straight
    line but not within ``walk_m`` along the streets (or not at all); none when the run did not walk."""
    sql = (
        "SELECT t.org_id, t.name, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, r.reach_distance_m, r.walk_m "
        "FROM organizations t JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
        f"WHERE {store.backend.bbox_clause('organizations', 't')} AND r.reach_distance_m <= :radius "
        "AND (r.walk_m IS NULL OR r.walk_m > :walk) "
        "AND EXISTS (SELECT 1 FROM run_organizations w WHERE w.run_id = :run AND w.walk_m IS NOT NULL)"
    )
    params = {**bbox_params(bbox), "run": run_id, "radius": radius_m, "walk": walk_m, "lim": limit}
    sql, params = _kept_in_scope(store, sql, params)
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(text(f"{sql} ORDER BY t.id LIMIT :lim"), params).mappings()]


def joint_branch_members(store: Store, bbox: BBox, run_id: int) -> pd.DataFrame:
    """Every member unit of the run's joint-branch proposals that have a unit in ``bbox``."""
    sql = (
        "SELECT j.proposal_id, j.org_id, j.party_members, j.spread_m, o.name, ST_X(o.geom) AS lon, "
        "ST_Y(o.geom) AS lat FROM run_joint_branches j JOIN organizations o ON o.org_id = j.org_id "
        "WHERE j.run_id = :run AND j.proposal_id IN (SELECT k.proposal_id FROM run_joint_branches k "
        "JOIN organizations t ON t.org_id = k.org_id "
        f"WHERE k.run_id = :run AND {store.backend.bbox_clause('organizations', 't')})"
    )
    # Under a scope, proposals reaching across its border show only their members inside it.
    sql, scope = store.restrict(sql, "organizations", "o")
    with store.connect() as conn:
        result = conn.execute(
            text(f"{sql} ORDER BY j.proposal_id, j.org_id"), {**bbox_params(bbox), "run": run_id, **scope}
        )
        return result_frame(result)


def area_choices(store: Store) -> list[dict]:
    """Districts with their streets (code and name), for the map's area filter."""
    sql, scope = store.restrict(
        "SELECT code, name, level, parent_code FROM areas t WHERE level IN ('district', 'street')", "areas", "t"
    )
    with store.connect() as conn:
        rows = conn.execute(text(f"{sql} ORDER BY code"), scope).mappings()
        districts: dict[str, dict] = {}
        for r in rows:
            if r["level"] == "district":
                districts[r["code"]] = {"code": r["code"], "name": r["name"], "streets": []}
            elif r["code"][:6] in districts:
                districts[r["code"][:6]]["streets"].append({"code": r["code"], "name": r["name"]})
    return list(districts.values())
