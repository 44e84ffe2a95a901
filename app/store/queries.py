"""Read queries the web layer needs, written once for both backends.

Spatial filtering goes through ``store.backend.bbox_clause`` so it is answered from the
R*Tree (SpatiaLite) or GiST (PostGIS) index; everything else is portable SQL.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from geo.vocabulary import MAP_STATUSES

from . import Store, StoreError, personal, result_frame
from .models import ACTIVE_ASSIGNMENT_SQL, AnalysisRun

BBox = tuple[float, float, float, float]

#: Coverage status of organization ``t`` from the stored party work: organizational
#: coverage (any party organization), else work coverage (an instructor), else blank.
STATUS_SQL = (
    "CASE WHEN EXISTS (SELECT 1 FROM party_org_coverage c WHERE c.organization_id = t.id) "
    f"THEN 'org' WHEN EXISTS (SELECT 1 FROM instructors i WHERE i.organization_id = t.id AND {ACTIVE_ASSIGNMENT_SQL}) "
    "THEN 'work' ELSE 'blank' END"
)


def bbox_params(bbox: BBox) -> dict[str, float]:
    """The bound parameters ``:minx, :miny, :maxx, :maxy`` of a box."""
    return dict(zip(("minx", "miny", "maxx", "maxy"), map(float, bbox), strict=True))


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
    facts = cached_answer(
        store,
        f"data-facts {store.scope}",
        lambda _: json.dumps({"counts": store.counts(), "industries": industries(store)}),
    )
    return json.loads(facts)


#: The latest run of each database as of a data version: (version, run id) by store URL.
_latest_runs: dict[str, tuple[int, int]] = {}


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
    # group instead of one per status cost 0.5 instead of 0.67 s on SpatiaLite and 0.29
    # instead of 0.46 s on PostGIS for a city-wide view at 100,000 organizations.
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


#: Cells per side of a cached tile of clusters.
TILE_CELLS = 4
#: Most tiles one request may read or fill (a 4K screen needs about 150).
MAX_TILES = 400


def cached_clusters(
    store: Store,
    bbox: BBox,
    cell_deg: float,
    run_id: int = 0,
    filters: dict[str, str] | None = None,
    compute: bool = True,
) -> tuple[list[dict], BBox] | None:
    """The clusters of the whole tiles (``TILE_CELLS`` × ``TILE_CELLS`` cells) covering ``bbox``.

    Tiles come from the shared ``map_cache`` when computed from the current data version;
    the missing ones are computed in one query and stored for every app instance. A cell lies
    wholly in one tile, so a cluster is the same whichever view asked for it. Returns the
    clusters and the box of the tiles — or None when ``compute`` is false and a tile is missing.
    """
    filters = filters or {}
    tile = cell_deg * TILE_CELLS
    cols = range(math.floor(bbox[0] / tile), math.floor(bbox[2] / tile) + 1)
    rows_ = range(math.floor(bbox[1] / tile), math.floor(bbox[3] / tile) + 1)
    if len(cols) * len(rows_) > MAX_TILES:
        # A box far larger than any screen at this zoom: answer it directly, cache nothing.
        return (organization_clusters(store, bbox, cell_deg, run_id, filters), bbox) if compute else None
    prefix = json.dumps([f"{cell_deg:.12g}", run_id, sorted(filters.items()), store.scope], ensure_ascii=False)
    keys = {(i, j): f"clusters:{prefix}:{i}:{j}" for i in cols for j in rows_}
    with store.connect() as conn:
        version = store.data_version(conn)
        names = ", ".join(f":k{n}" for n in range(len(keys)))
        found = dict(
            conn.execute(
                text(f"SELECT key, body FROM map_cache WHERE version = :v AND key IN ({names})"),
                {"v": version, **{f"k{n}": key for n, key in enumerate(keys.values())}},
            ).fetchall()
        )
    clusters = [c for key in keys.values() if key in found for c in json.loads(found[key])]
    missing = [ij for ij, key in keys.items() if key not in found]
    if missing and not compute:
        return None
    if missing:
        # One query over the hull of the missing tiles; clusters of tiles outside them are dropped.
        i0, i1 = min(i for i, _ in missing), max(i for i, _ in missing)
        j0, j1 = min(j for _, j in missing), max(j for _, j in missing)
        hull = (i0 * tile, j0 * tile, (i1 + 1) * tile, (j1 + 1) * tile)
        by_tile: dict[tuple[int, int], list[dict]] = {ij: [] for ij in missing}
        for c in organization_clusters(store, hull, cell_deg, run_id, filters):
            c = {k: (float(v) if k in ("lon", "lat") else int(v)) for k, v in c.items()}
            ij = (c["gx"] // TILE_CELLS, c["gy"] // TILE_CELLS)
            if ij in by_tile:
                by_tile[ij].append(c)
        for ij in missing:
            clusters += by_tile[ij]
        with _keeping(store) as conn:
            conn.execute(
                text("INSERT INTO map_cache (key, version, body) VALUES (:k, :v, :b) ON CONFLICT (key) DO NOTHING"),
                [{"k": keys[ij], "v": version, "b": json.dumps(by_tile[ij])} for ij in missing],
            )
    box = (cols[0] * tile, rows_[0] * tile, (cols[-1] + 1) * tile, (rows_[-1] + 1) * tile)
    return clusters, box


#: The zoom the city map opens at, screen pixels per side of a cluster cell, and the largest
#: screen (pixels) whose opening view ``warm_city_view`` computes ahead.
CITY_ZOOM = 12
CLUSTER_PIXELS = 64
OPENING_SCREEN = (2560, 1600)


def pixel_degrees(zoom: int) -> float:
    """One screen pixel at ``zoom``, in degrees of longitude (Web Mercator tiles of 256 pixels)."""
    return 360.0 / (256 * 2**zoom)


def cluster_cell(zoom: int) -> float:
    """Side (degrees) of the cluster lattice at ``zoom``: fixed per zoom, so clusters stay put while panning."""
    return pixel_degrees(zoom) * CLUSTER_PIXELS


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


def warm_city_view(store: Store, run_id: int) -> None:
    """Compute and keep the clusters the city map opens with, for screens up to ``OPENING_SCREEN``.

    Called once a write is committed (an analysis run): the first visitor after it then reads
    kept tiles instead of grouping every organization (0.2 s of PostgreSQL's time at 100k, on
    a worker that also has the page's other layers to answer).
    """
    center = city_center(store)
    if center is None:
        return
    lat, lon = center
    pixel = pixel_degrees(CITY_ZOOM)
    # A pixel spans fewer degrees of latitude than of longitude, by the cosine of the latitude.
    half_w, half_h = OPENING_SCREEN[0] / 2 * pixel, OPENING_SCREEN[1] / 2 * pixel * math.cos(math.radians(lat))
    cached_clusters(store, (lon - half_w, lat - half_h, lon + half_w, lat + half_h), cluster_cell(CITY_ZOOM), run_id)


#: Largest answer kept by ``cached_answer`` (bytes), and most answers kept before starting over.
MAX_CACHED_BYTES = 4_000_000
#: Largest answer also kept for other processes in ``map_cache``: writing a 700 KB API page
#: there cost PostgreSQL 9 ms, a fifth of computing it, on every page of a client panning
#: through new boxes; clusters, facts and statistics are far smaller.
MAX_SHARED_BYTES = 256_000
#: Least time computing an answer must have taken for it to be shared: sharing is a write
#: (2.5 ms on SpatiaLite, 5 ms on PostgreSQL measured per small API page, and one commit
#: more for eight clients to queue on), dearer than computing an empty or small page again.
MIN_SHARED_SECONDS = 0.02
MAX_CACHED_ANSWERS = 1000
#: Bytes of answers each process also keeps in memory (least recently used go first).
MAX_LOCAL_BYTES = 64 * 1024**2


class _LocalAnswers:
    """A process's own copies of kept answers, each with the data version it was computed from.

    Only ever served after the shared data version has been read and matches, so an instance
    never answers from data another instance has since changed; it only saves moving the
    answer out of the database again.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self.items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, version: int) -> bytes | None:
        with self.lock:
            found = self.items.get(key)
            if found is None or found[0] != version:
                return None
            self.items.move_to_end(key)
            return found[1]

    def put(self, key: str, version: int, body: bytes) -> None:
        with self.lock:
            if key in self.items:
                self.size -= len(self.items.pop(key)[1])
            self.items[key] = (version, body)
            self.size += len(body)
            while self.size > self.budget:
                self.size -= len(self.items.popitem(last=False)[1][1])


_local = _LocalAnswers(MAX_LOCAL_BYTES)


def cached_answer(store: Store, key: str, compute: Callable[[int], str | bytes]) -> bytes:
    """``compute(version)`` as UTF-8 (it may answer UTF-8 itself), or its copy kept from the
    current data version (``version``): in this process's memory, else in the shared ``map_cache``.

    ``key`` must name everything the answer depends on besides the data (the request, the
    caller's scope); it is hashed. An answer computed while a write commits is kept under the
    version read before it, so it is never served as current.
    """
    digest = "answer:" + hashlib.sha256(key.encode()).hexdigest()
    # Data versions are counted per database: a process's copies are kept per database too.
    local = f"{store.url} {digest}"
    with store.connect(transaction=False) as conn:
        version = store.data_version(conn)
        body = _local.get(local, version)
        if body is not None:
            return body
        kept = conn.execute(
            text("SELECT body FROM map_cache WHERE key = :k AND version = :v"), {"k": digest, "v": version}
        ).scalar()
    if kept is not None:
        body = kept.encode()
        _local.put(local, version, body)
        return body
    started = time.perf_counter()
    answer = compute(version)
    took = time.perf_counter() - started
    body = answer if isinstance(answer, bytes) else answer.encode()
    if len(body) <= MAX_CACHED_BYTES:
        _local.put(local, version, body)
    if len(body) <= MAX_SHARED_BYTES and took >= MIN_SHARED_SECONDS:
        _keep(store, digest, version, body.decode())
    return body


@contextmanager
def _keeping(store: Store) -> Iterator[Connection]:
    """A transaction that keeps answers in ``map_cache`` for every instance. When it cannot be
    written (the database busy with an import, or read-only) it is dropped, and the answer is
    still given."""
    try:
        with store.connect() as conn:
            yield conn
    except (StoreError, OperationalError):
        pass


def _keep(store: Store, key: str, version: int, body: str) -> None:
    """Store an answer for every instance (see ``_keeping``)."""
    with _keeping(store) as conn:
        # A write first: a SQLite transaction that read before writing cannot wait for
        # another writer and fails at once.
        conn.execute(
            text(
                "DELETE FROM map_cache WHERE key LIKE 'answer:%' "
                "AND (SELECT count(*) FROM map_cache WHERE key LIKE 'answer:%') >= :most"
            ),
            {"most": MAX_CACHED_ANSWERS},
        )
        conn.execute(
            text(
                "INSERT INTO map_cache (key, version, body) VALUES (:k, :v, :b) "
                "ON CONFLICT (key) DO UPDATE SET version = excluded.version, body = excluded.body"
            ),
            {"k": key, "v": version, "b": body},
        )


def inside_count(clusters: list[dict], bbox: BBox, cell_deg: float) -> int:
    """Organizations of the clusters whose cells lie wholly inside ``bbox``: a lower bound of the
    organizations in it."""
    minx, miny, maxx, maxy = bbox
    return sum(
        c["n"]
        for c in clusters
        if c["gx"] * cell_deg >= minx
        and (c["gx"] + 1) * cell_deg <= maxx
        and c["gy"] * cell_deg >= miny
        and (c["gy"] + 1) * cell_deg <= maxy
    )


CARD_SQL = (
    "SELECT t.id, t.org_id, t.name, t.org_type, t.industry, t.credit_code, t.employees, t.party_members, "
    "t.address, t.operating, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, r.status AS run_status, r.in_scope, "
    "r.district_code, r.street_code, r.community_code, r.grid_code, r.place_id, r.center_id, "
    "r.pair_distance_m, r.pair_tier, p.name AS place_name, c.name AS center_name "
    "FROM organizations t LEFT JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
    "LEFT JOIN places p ON p.place_id = r.place_id "
    "LEFT JOIN service_centers c ON c.center_id = r.center_id WHERE t.org_id = :org"
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


def _matching(store: Store, sql: str, table: str, key: str, params: dict) -> list[dict]:
    """The rows of a search (``sql`` over ``table`` aliased ``t``) the store may see, shortest
    name first, at most ``params["lim"]``."""
    sql, scope = store.restrict(sql, table, "t")
    with store.connect() as conn:
        rows = conn.execute(text(f"{sql} ORDER BY length(name), {key} LIMIT :lim"), {**params, **scope}).mappings()
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
