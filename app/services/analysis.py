"""Run the analysis: load from the store, compute with ``geo/``, store everything as a run.

One run answers: which area, grid and place each organization is in (grids are generated and
stored where a community has none), its "两个覆盖" status and scope, rates per area / place /
industry, blank hot spots, service reach at R and 500 m with the unreached areas, sites for new
centers, co-building pairings, joint-branch proposals and branch flags.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer
from sqlalchemy import insert, select, text

from geo import assign, branches, coverage, grid, pairing, siting, walking
from geo.crs import metric_epsg
from geo.joins import Joins, MemoryJoins
from geo.vocabulary import PAIRINGS

from ..bulk import collector_paused
from ..spreadsheets import to_csv
from ..store import Store, area_stats, cache, result_frame
from ..store.models import (
    ACTIVE_ASSIGNMENT_SQL,
    APPROXIMATE,
    AREA_CODE_LENGTHS,
    AREA_LEVELS,
    EXACT,
    AnalysisRun,
    run_areas,
    run_joint_branches,
    run_organizations,
    run_place_pairings,
)
from ..store.spatial_joins import PostGISJoins

#: Point-only places (a building known by its address) catch organizations this close.
POINT_PLACE_RADIUS_M = 30.0
#: How long a run waits for another one on the same database to finish, in seconds.
RUN_WAIT_SECONDS = 900.0


#: How a run measures service reach: along the roads, or by straight line.
REACHES = ("walk", "line")


@dataclass
class Parameters:
    """Settings of one run (all stored with it)."""

    radius_m: float = 1000.0
    extra_radius_m: float = 500.0
    capacity: bool = False
    #: How units pair with centers (共驻共建): see ``PAIRINGS``.
    pairing: str = "jurisdiction"
    pairing_k: int = 8
    tolerance_m: float = 50.0
    grid_target: int = 50
    hotspot_cell_m: float = 500.0
    hotspot_min: int = 5
    sites: int = 10
    branch_distance_m: float = 1000.0
    branch_max_units: int = branches.MAX_UNITS
    branch_min_members: int = branches.MIN_MEMBERS
    scope: coverage.Scope = field(default_factory=coverage.Scope)
    #: Where the point-in-polygon and nearest-center joins run: "memory", or "database"
    #: (PostGIS with its GiST indexes, for province-scale data; the same answers).
    joins: str = "memory"
    #: How service reach is measured: "walk" along the roads (straight line when none are
    #: loaded, and the run says so), or "line".
    reach: str = "walk"
    #: Walking speed (m/s) turning walking distance into minutes.
    walk_speed_ms: float = walking.WALK_SPEED_MS

    def __post_init__(self) -> None:
        self.branch_rules()  # refuses settings outside the rules, before anything is read
        if self.reach not in REACHES:
            raise ValueError(f"可达方式应为 walk 或 line / reach must be walk or line: {self.reach!r}")
        if not self.walk_speed_ms > 0:
            raise ValueError(f"步行速度应为正数 / walking speed must be positive: {self.walk_speed_ms!r}")
        if self.pairing not in PAIRINGS:
            raise ValueError(
                f"结对方式应为 {'/'.join(PAIRINGS)} / pairing must be one of {', '.join(PAIRINGS)}: {self.pairing!r}"
            )

    def branch_rules(self) -> branches.Rules:
        """The joint-branch rules these settings give."""
        return branches.Rules(self.branch_distance_m, self.branch_max_units, self.branch_min_members)

    @classmethod
    def from_stored(cls, stored: dict) -> Parameters:
        """The settings a run stored (``asdict``), for running again with them; settings an
        older version stored and this one no longer knows are left out."""
        known = {f.name for f in fields(cls)} - {"scope"}
        scope_known = {f.name for f in fields(coverage.Scope)}
        scope = coverage.Scope(**{k: v for k, v in (stored.get("scope") or {}).items() if k in scope_known})
        return cls(**{k: v for k, v in stored.items() if k in known}, scope=scope)


@dataclass
class Inputs:
    """What a run reads from the store, in the city's metric CRS. ``orgs`` may leave out
    ``located_by`` and ``stated_area_code``: every organization is then at its coordinates."""

    areas: gpd.GeoDataFrame
    orgs: gpd.GeoDataFrame
    links: pd.DataFrame
    instructed: np.ndarray
    party_orgs: pd.DataFrame
    places: gpd.GeoDataFrame
    centers: gpd.GeoDataFrame
    epsg: int
    #: The store's inputs version when they were read (see ``Store.inputs_version``).
    version: int = 0
    #: The walkable roads (步行路网); None or empty: reach is measured by straight line.
    roads: gpd.GeoDataFrame | None = None


@dataclass
class Results:
    """Everything a run computes (metric CRS)."""

    organizations: pd.DataFrame
    areas: pd.DataFrame
    hotspots: gpd.GeoDataFrame
    gaps: dict[float, gpd.GeoDataFrame]
    sites: gpd.GeoDataFrame
    proposals: pd.DataFrame
    flags: pd.DataFrame
    place_pairings: pd.DataFrame
    new_grids: gpd.GeoDataFrame
    timings: dict[str, float]
    summary: dict
    #: Walking catchments per center (``walk_catchment``) and their union per level (``walk_reach``).
    catchments: gpd.GeoDataFrame | None = None


def load_inputs(store: Store) -> Inputs:
    """Read the areas, organizations, party work, places and centers of the store."""
    with store.connect() as conn:
        version = store.inputs_version(conn)
        areas = store.read_frame("areas", ["code", "name", "level", "parent_code"], conn=conn)
        orgs = store.read_frame(
            "organizations",
            [
                "id",
                "org_id",
                "org_type",
                "industry",
                "employees",
                "party_members",
                "operating",
                "located_by",
                "stated_area_code",
            ],
            conn=conn,
        )
        links = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT c.organization_id, p.coverage_kind FROM party_org_coverage c "
                    "JOIN party_orgs p ON p.id = c.party_org_id"
                )
            ).fetchall(),
            columns=["organization_id", "coverage_kind"],
        )
        active = f"SELECT DISTINCT i.organization_id FROM instructors i WHERE {ACTIVE_ASSIGNMENT_SQL}"
        instructed = np.array([r[0] for r in conn.execute(text(active))])
        party_orgs = pd.DataFrame(
            conn.execute(
                text(
                    "SELECT p.party_org_id, p.org_type, p.coverage_kind, p.members, "
                    "(SELECT min(o.party_members) FROM party_org_coverage c JOIN organizations o "
                    " ON o.id = c.organization_id WHERE c.party_org_id = p.id) AS unit_members FROM party_orgs p"
                )
            ).fetchall(),
            columns=["party_org_id", "org_type", "coverage_kind", "members", "unit_members"],
        )
        places = store.read_frame("places", ["place_id", "name", "kind"], conn=conn)
        centers = store.read_frame(
            "service_centers", ["center_id", "name", "level", "capacity", "area_code"], conn=conn
        )
        roads = store.read_frame("roads", ["road_id"], where={"walkable": True}, conn=conn)
    extent = areas.total_bounds if len(areas) else orgs.total_bounds
    epsg = metric_epsg((extent[0] + extent[2]) / 2)
    return Inputs(
        areas.to_crs(epsg),
        orgs.to_crs(epsg),
        links,
        instructed,
        party_orgs,
        places.to_crs(epsg),
        centers.to_crs(epsg),
        epsg,
        version,
        roads.to_crs(epsg),
    )


def analyze(
    inputs: Inputs, params: Parameters, joins: Joins | None = None, progress: Callable[[str], None] | None = None
) -> Results:
    """Compute a run from in-memory inputs: see the module docstring. ``joins`` does the
    point-in-polygon and nearest-center joins (in memory by default); ``progress`` is told
    the name of each stage as it ends."""
    joins = joins or MemoryJoins()
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now
        if progress is not None:
            progress(name)

    orgs, areas = inputs.orgs, inputs.areas
    points = np.asarray(orgs.geometry.values)
    # Organizations without a position take part in no spatial join and no distance: their
    # coordinates are NaN, and their areas are the ones their ledger states, if any.
    placed = ~shapely.is_missing(points)
    xy = np.full((len(points), 2), np.nan)
    xy[placed] = shapely.get_coordinates(points[placed])
    located, new_grids = _locate(points[placed], areas, params, joins)
    located = _stated_areas(_spread_back(located, placed), orgs)
    lap("assignment")

    # The smallest place containing an organization is the most specific: a building inside a
    # business circle, not the circle.
    shapes = _place_shapes(inputs.places)
    by_area = np.argsort(shapely.area(shapes), kind="stable")
    place_index = np.full(len(points), -1)
    place_index[placed], _ = assign.locate(points[placed], shapes[by_area])
    inside = place_index >= 0
    place_index[inside] = by_area[place_index[inside]]
    located["place_id"] = _take(inputs.places["place_id"].to_numpy(), place_index)
    lap("places")

    status = coverage.organization_status(orgs["id"].to_numpy(), inputs.links, inputs.instructed)
    scoped = coverage.in_scope(orgs, params.scope)
    frame = pd.concat(
        [
            orgs[["id", "org_id", "industry", "party_members", "operating"]].reset_index(drop=True),
            located.reset_index(drop=True),
        ],
        axis=1,
    )
    frame["status"], frame["in_scope"] = status, scoped
    # Where the run saw each organization, so that the next run can tell what moved.
    lon, lat = Transformer.from_crs(inputs.epsg, 4326, always_xy=True).transform(xy[:, 0], xy[:, 1])
    frame["lon"], frame["lat"] = np.where(placed, np.round(lon, 7), np.nan), np.where(placed, np.round(lat, 7), np.nan)
    approximate = orgs["located_by"].isin(APPROXIMATE).to_numpy() if "located_by" in orgs else np.zeros(len(orgs), bool)
    counts = coverage.status_counts(status, scoped, ~placed, approximate)
    area_table = _area_rates(counts, frame, areas, new_grids, inputs.places)
    lap("coverage")

    center_id = np.full(len(frame), None, dtype=object)
    distance = np.full(len(frame), np.nan)
    tier = np.full(len(frame), -1)
    center_id[placed], distance[placed], tier[placed] = _pair(xy[placed], frame[placed], inputs.centers, params, joins)
    frame["center_id"], frame["pair_distance_m"] = center_id, np.round(distance, 1)
    frame["pair_tier"] = pd.array(np.where(tier >= 0, tier, pd.NA), dtype="Int64")
    place_pairings = _pair_places(inputs.places, inputs.centers)
    lap("pairing")

    blank = (frame["status"] == "blank").to_numpy() & scoped & placed
    hot = coverage.lattice_clusters(xy[blank, 0], xy[blank, 1], params.hotspot_cell_m, params.hotspot_min)
    hot = hot.set_crs(inputs.epsg, allow_override=True)
    frame["hotspot"] = pd.array(np.full(len(frame), pd.NA), dtype="Int64")
    hot_of_blank = hot.attrs["point_cluster"]
    frame.loc[np.flatnonzero(blank)[hot_of_blank >= 0], "hotspot"] = hot_of_blank[hot_of_blank >= 0] + 1
    lap("hotspots")

    all_centers = shapely.get_coordinates(np.asarray(inputs.centers.geometry.values))
    reach = np.full(len(xy), np.nan)
    nearest = np.full(len(xy), None, dtype=object)
    if len(all_centers):
        found, reach[placed] = joins.nearest(xy[placed], inputs.centers)
        nearest[placed] = _take(inputs.centers["center_id"].to_numpy(), found)
    else:
        reach[placed] = np.inf
    frame["reach_distance_m"] = np.round(reach, 1)
    # The straight nearest center of any level, whatever the pairing rule chose.
    frame["nearest_center_id"] = nearest
    gaps = {}
    for radius in sorted({params.radius_m, params.extra_radius_m}):
        _, found = coverage.service_gaps(xy[placed], all_centers, radius, params.hotspot_cell_m)
        gaps[radius] = found.set_crs(inputs.epsg, allow_override=True)
    lap("service_reach")

    walk, network = _walk(xy, placed, all_centers, inputs, params)
    frame["walk_m"] = np.round(walk.walk_m, 1)
    frame["walk_center_id"] = _take(inputs.centers["center_id"].to_numpy(), walk.center)
    frame["walk_snap_m"] = np.round(walk.snap_m, 1)
    walked = network is not None
    catchments = _catchments(network, all_centers, walk, inputs, params)
    catchments = catchments.set_crs(inputs.epsg, allow_override=True)
    lap("walking")

    sites = _sites(xy[(reach > params.radius_m) & scoped], inputs.places, areas, new_grids, params)
    lap("siting")

    eligible = (
        frame["party_members"].between(1, 2) & frame["status"].isin(["work", "blank"]) & frame["operating"] & placed
    )
    units = pd.DataFrame(
        {
            "org_id": frame.loc[eligible, "org_id"],
            "members": frame.loc[eligible, "party_members"],
            "x": xy[eligible.to_numpy(), 0],
            "y": xy[eligible.to_numpy(), 1],
            "community_code": frame.loc[eligible, "community_code"],
            "industry": frame.loc[eligible, "industry"],
        }
    )
    joint = branches.propose_joint_branches(units, params.branch_rules())
    proposals = joint.proposals
    area_table = _with_branch_bounds(area_table, joint, frame[eligible.to_numpy()])
    own_members = inputs.party_orgs.set_index("party_org_id")["unit_members"]
    flags = branches.branch_flags(inputs.party_orgs, own_members)
    lap("joint_branches")

    city = area_table[area_table["level"] == "city"].iloc[0]
    summary = {
        "organizations": int(len(frame)),
        "in_scope": int(city["in_scope"]),
        "rates": {k: _json_number(city[k]) for k in ("org_coverage_rate", "own_rate", "work_rate", "both_rate")},
        "unassigned": int(frame["unassigned"].sum()),
        "snapped": int(frame["snapped"].sum()),
        "generated_grids": int(len(new_grids)),
        "unreached": {str(int(r)): int((reach > r).sum()) for r in gaps},
        "hotspots": int(len(hot)),
        "joint_branch_proposals": int(proposals["proposal_id"].nunique()) if len(proposals) else 0,
        "units_in_proposals": int(len(proposals)),
        # How far from the best the rules allow: units that could join, and at most how many.
        "joint_branch_eligible": int(len(units)),
        "joint_branch_bound": int(joint.components["bound"].sum()),
        "branch_flags": flags.to_dict("records"),
        "unpaired": int(pd.isna(frame["center_id"][placed]).sum()),
        # Left out of every distance (pairing, reach, hot spots, joint branches), and counted.
        "unplaced": int((~placed).sum()),
        "approximate": int(approximate.sum()),
        **_walk_summary(walk, placed, walked, params),
    }
    return Results(
        frame, area_table, hot, gaps, sites, proposals, flags, place_pairings, new_grids, timings, summary, catchments
    )


def _walk(xy: np.ndarray, placed: np.ndarray, centers_xy: np.ndarray, inputs: Inputs, params: Parameters):
    """Each organization's walk along the roads to its nearest center (NaN for all when the run
    measures by straight line or has no roads)."""
    n = len(xy)
    if params.reach != "walk" or inputs.roads is None or not len(inputs.roads):
        return walking.Reach(np.full(n, np.nan), np.full(n, -1), np.full(n, np.nan), np.zeros(n, bool)), None
    network = walking.build_network(np.asarray(inputs.roads.geometry.values))
    found = walking.nearest_center(network, xy[placed], centers_xy)
    out = walking.Reach(np.full(n, np.nan), np.full(n, -1), np.full(n, np.nan), np.zeros(n, bool))
    out.walk_m[placed], out.center[placed], out.snap_m[placed], out.far[placed] = (
        found.walk_m,
        found.center,
        found.snap_m,
        found.far,
    )
    return out, network


def _catchments(
    network: walking.Network | None, centers_xy: np.ndarray, walk: walking.Reach, inputs: Inputs, params: Parameters
) -> gpd.GeoDataFrame:
    """Each center's walking catchment at the longest life-circle time, with the organizations
    it reaches first within it, and one union per center level."""
    columns = ["kind", "rank", "count", "properties", "geometry"]
    if network is None or not len(centers_xy):
        return gpd.GeoDataFrame(columns=columns, geometry="geometry")
    minutes = max(walking.REACH_MINUTES)
    reach_m = minutes * 60 * params.walk_speed_ms
    areas = walking.catchments(network, centers_xy, reach_m)
    within = walk.walk_m <= reach_m
    counts = np.bincount(walk.center[within], minlength=len(centers_xy))
    centers = inputs.centers.reset_index(drop=True)
    kept = np.flatnonzero(~shapely.is_missing(areas))
    each = gpd.GeoDataFrame(
        {
            "kind": "walk_catchment",
            "rank": kept + 1,
            "count": counts[kept],
            "properties": [
                {"center_id": c, "level": lv, "minutes": minutes}
                for c, lv in zip(centers["center_id"].iloc[kept], centers["level"].iloc[kept], strict=True)
            ],
        },
        geometry=areas[kept],
    )
    level = centers["level"].iloc[kept].to_numpy()
    unions = [
        {
            "kind": "walk_reach",
            "rank": i + 1,
            "count": int(counts[kept][level == lv].sum()),
            "properties": {"level": lv, "minutes": minutes},
            "geometry": shapely.union_all(areas[kept][level == lv]),
        }
        for i, lv in enumerate(sorted(set(level)))
    ]
    return gpd.GeoDataFrame(pd.concat([each, gpd.GeoDataFrame(unions, columns=columns)], ignore_index=True))


def _walk_summary(walk: walking.Reach, placed: np.ndarray, walked: bool, params: Parameters) -> dict:
    """How the run measured reach, and what walking found."""
    if not walked:
        note = (
            "未载入步行路网，服务可达按直线距离计算 / no walking network loaded: reach is measured by straight line"
            if params.reach == "walk"
            else "按直线距离计算 / reach measured by straight line, as asked"
        )
        return {"reach": "line", "reach_note": note}
    limit = params.walk_speed_ms * 60
    return {
        "reach": "walk",
        "walk_reached": {str(m): int((walk.walk_m <= limit * m).sum()) for m in walking.REACH_MINUTES},
        "walk_unreachable": int((np.isnan(walk.walk_m) & placed).sum()),
        "walk_far_from_street": int(walk.far.sum()),
    }


def _with_branch_bounds(table: pd.DataFrame, joint: branches.JointBranches, eligible: pd.DataFrame) -> pd.DataFrame:
    """``table`` (rates per level and code) with each row's joint-branch units: eligible,
    covered by the proposals, and the upper bound on coverable ones."""
    keys = {
        **{level: eligible[f"{level}_code"] for level in AREA_LEVELS},
        "place": eligible["place_id"],
        "industry": eligible["industry"].fillna("未填"),
        "city": pd.Series("city", index=eligible.index),
    }
    parts = [joint.area_bounds(codes).assign(level=level) for level, codes in keys.items()]
    bounds = pd.concat(parts).rename(columns=lambda c: c if c == "level" else f"branch_{c}")
    bounds.index.name = "code"
    merged = table.merge(bounds.reset_index(), on=["level", "code"], how="left")
    columns = list(branches.BOUND_COLUMNS)
    merged[columns] = merged[columns].fillna(0).astype(int)
    return merged


def _json_number(value) -> float | None:
    return None if pd.isna(value) else round(float(value), 6)


def _locate(
    points: np.ndarray, areas: gpd.GeoDataFrame, params: Parameters, joins: Joins
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Codes of every level per organization, generating grids for communities without them."""
    levels = {level: areas[areas["level"] == level] for level in AREA_LEVELS}
    new_grids = _empty_grids(areas.crs)
    base_level = next((lv for lv in ("community", "street", "district") if len(levels[lv])), None)
    if base_level is None:
        return joins.assign(points, levels["district"], params.tolerance_m), new_grids
    if base_level == "community" and levels["community"]["code"].isin(levels["grid"]["parent_code"]).all():
        # Grids partition every community: one join against them answers all four levels.
        return joins.assign(points, levels["grid"], params.tolerance_m), new_grids
    out = joins.assign(points, levels[base_level], params.tolerance_m)
    if base_level == "community":
        gridded = set(levels["grid"]["parent_code"])
        missing = levels["community"][~levels["community"]["code"].isin(gridded)]
        new_grids = grid.generate_grids(missing, out["community_code"].value_counts(), params.grid_target)
        grids = pd.concat([levels["grid"][["code", "geometry"]], new_grids[["code", "geometry"]]], ignore_index=True)
        grid_code = joins.assign(points, grids, params.tolerance_m)["grid_code"]
        # A grid must lie in the organization's community; at a shared border keep the community's.
        consistent = grid_code.str[:12].to_numpy() == out["community_code"].to_numpy()
        out["grid_code"] = np.where(consistent, grid_code, None)
    return out, new_grids


def _spread_back(located: pd.DataFrame, placed: np.ndarray) -> pd.DataFrame:
    """``located`` (one row per placed organization) with a row for every organization: those
    without a position have no area and count as unassigned."""
    out = located.set_axis(np.flatnonzero(placed)).reindex(np.arange(len(placed)))
    for column in located.columns:
        if located[column].dtype == bool:
            out[column] = out[column].fillna(column == "unassigned").astype(bool)
    return out.astype({c: object for c in located.columns if c.endswith("_code")})


def _stated_areas(located: pd.DataFrame, orgs: gpd.GeoDataFrame) -> pd.DataFrame:
    """The areas of organizations placed only approximately (by a place, an address or their
    stated area), or not at all, taken from the community or street their ledger states: the
    analysis trusts the ledger's word over a point spread inside a building or a community."""
    if "stated_area_code" not in orgs:
        return located
    stated = orgs["stated_area_code"].to_numpy(dtype=object)
    trust = ~orgs["located_by"].isin(EXACT).to_numpy() & pd.notna(stated)
    if not trust.any():
        return located
    codes = pd.Series(stated[trust], dtype=object).astype(str)
    for level, digits in AREA_CODE_LENGTHS.items():
        if level == "grid":
            continue
        column = located[f"{level}_code"].to_numpy(dtype=object, copy=True)
        column[trust] = codes.str[:digits].where(codes.str.len() >= digits, None).to_numpy(dtype=object)
        located[f"{level}_code"] = column
    grid_code = located["grid_code"].to_numpy(dtype=object, copy=True)
    consistent = (pd.Series(grid_code).str[:12] == located["community_code"].reset_index(drop=True)).to_numpy()
    grid_code[trust & ~consistent] = None
    located["grid_code"] = grid_code
    located.loc[trust, "unassigned"] = False
    return located


def _empty_grids(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"code": [], "name": [], "level": [], "parent_code": []}, geometry=[], crs=crs)


def _place_shapes(places: gpd.GeoDataFrame) -> np.ndarray:
    geoms = np.asarray(places.geometry.values)
    is_point = shapely.get_type_id(geoms) == 0
    shapes = geoms.copy()
    shapes[is_point] = shapely.buffer(geoms[is_point], POINT_PLACE_RADIUS_M)
    return shapes


def _area_rates(
    counts: pd.DataFrame,
    frame: pd.DataFrame,
    areas: gpd.GeoDataFrame,
    new_grids: gpd.GeoDataFrame,
    places: gpd.GeoDataFrame,
) -> pd.DataFrame:
    """Counts and rates per area, place, industry and for the city (``counts`` per row of
    ``frame``, from :func:`geo.coverage.status_counts`)."""
    names = pd.concat([areas.set_index("code")["name"], new_grids.set_index("code")["name"]])
    tables = []
    for level in AREA_LEVELS:
        codes = pd.Index(
            pd.concat(
                [
                    areas.loc[areas["level"] == level, "code"],
                    new_grids["code"] if level == "grid" else pd.Series(dtype=object),
                ]
            ).unique()
        )
        table = coverage.rates(counts, frame[f"{level}_code"], index=codes)
        tables.append(table.assign(level=level, name=names.reindex(table.index).to_numpy()))
    place_table = coverage.rates(counts, frame["place_id"], index=pd.Index(places["place_id"]))
    tables.append(
        place_table.assign(
            level="place", name=places.set_index("place_id")["name"].reindex(place_table.index).to_numpy()
        )
    )
    industry = coverage.rates(counts, frame["industry"].fillna("未填"))
    tables.append(industry.assign(level="industry", name=industry.index.to_numpy()))
    # Listed even when the city has no organization yet: every run has a city row.
    city = coverage.rates(counts, np.full(len(frame), "city"), index=pd.Index(["city"]))
    tables.append(city.assign(level="city", name="全市"))
    out = pd.concat(tables)
    out.index.name = "code"
    return out.reset_index()


def _pair(xy: np.ndarray, frame: pd.DataFrame, centers: gpd.GeoDataFrame, params: Parameters, joins: Joins):
    """Each organization's center (共驻共建) by the run's rules: its id, the distance and the tier
    (index into ``geo.vocabulary.PAIR_TIERS``; -1 when the rule has no tiers or it is unpaired)."""
    capacity = params.capacity
    if params.pairing == "jurisdiction":
        # The street's own center takes part, after the unit's own community's.
        usable = centers[centers["level"].isin(["community", "street"])]
        index, distance, tier = pairing.pair_by_jurisdiction(
            xy,
            frame["community_code"].to_numpy(dtype=object),
            frame["street_code"].to_numpy(dtype=object),
            shapely.get_coordinates(np.asarray(usable.geometry.values)),
            usable["area_code"].to_numpy(dtype=object),
            usable["capacity"].to_numpy() if capacity else None,
            params.pairing_k,
        )
        return _take(usable["center_id"].to_numpy(), index), distance, tier
    community = centers[centers["level"] == "community"]
    cxy = shapely.get_coordinates(np.asarray(community.geometry.values))
    same_street = params.pairing == "street"
    center_street = community["area_code"].fillna("").str[:9].to_numpy()
    groups = (frame["street_code"].to_numpy(dtype=object), center_street) if same_street else (None, None)
    if capacity:
        index, distance = pairing.pair_with_capacity(
            xy, cxy, community["capacity"].to_numpy(), params.pairing_k, *groups
        )
    elif same_street:
        index, distance = pairing.pair_nearest(xy, cxy, *groups)
    elif len(cxy):
        index, distance = joins.nearest(xy, community)
    else:
        index, distance = np.full(len(xy), -1), np.full(len(xy), np.nan)
    return _take(community["center_id"].to_numpy(), index), distance, np.full(len(xy), -1)


def _take(ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``ids[index]``, None where ``index`` is -1 (found nothing), also when ``ids`` is empty."""
    out = np.full(len(index), None, dtype=object)
    found = index >= 0
    out[found] = ids[index[found]]
    return out


def _pair_places(places: gpd.GeoDataFrame, centers: gpd.GeoDataFrame) -> pd.DataFrame:
    """Parks and buildings → nearest community center."""
    chosen = places[places["kind"].isin(["park", "building"])]
    community = centers[centers["level"] == "community"]
    pxy = shapely.get_coordinates(shapely.point_on_surface(np.asarray(chosen.geometry.values)))
    index, distance = pairing.pair_nearest(pxy, shapely.get_coordinates(np.asarray(community.geometry.values)))
    ids = community["center_id"].to_numpy()
    return pd.DataFrame(
        {
            "place_id": chosen["place_id"].to_numpy(),
            "center_id": _take(ids, index),
            "distance_m": np.round(distance, 1),
        }
    )


def _sites(
    unreached_xy: np.ndarray,
    places: gpd.GeoDataFrame,
    areas: gpd.GeoDataFrame,
    new_grids: gpd.GeoDataFrame,
    params: Parameters,
) -> gpd.GeoDataFrame:
    """New center locations among places and grid centres reaching the most unreached organizations."""
    grids = pd.concat([areas.loc[areas["level"] == "grid", ["code", "geometry"]], new_grids[["code", "geometry"]]])
    candidates = pd.DataFrame(
        {
            "candidate_kind": ["place"] * len(places) + ["grid"] * len(grids),
            "candidate_id": list(places["place_id"]) + list(grids["code"]),
            "geometry": np.concatenate(
                [
                    shapely.point_on_surface(np.asarray(places.geometry.values)),
                    shapely.point_on_surface(np.asarray(grids.geometry.values)),
                ]
            ),
        }
    )
    chosen = siting.site_greedy(
        unreached_xy, shapely.get_coordinates(candidates["geometry"].to_numpy()), params.sites, params.radius_m
    )
    picked = candidates.iloc[chosen["candidate"].to_numpy()].reset_index(drop=True)
    return gpd.GeoDataFrame(
        {
            "rank": chosen["rank"],
            "candidate_kind": picked["candidate_kind"],
            "candidate_id": picked["candidate_id"],
            "reached": chosen["reached"],
            "total": chosen["total"],
        },
        geometry=picked["geometry"].to_numpy(),
        crs=areas.crs,
    )


@collector_paused()
def run_analysis(
    store: Store, params: Parameters, note: str | None = None, progress: Callable[[str], None] | None = None
) -> tuple[int, Results]:
    """Load, analyze and store a run; return its id and results. One run at a time over every
    process on the database: a second waits for the first (up to ``RUN_WAIT_SECONDS``).
    ``progress`` is told each stage's name as it ends (see ``analyze``)."""
    with store.exclusive("analysis", RUN_WAIT_SECONDS):
        started = time.perf_counter()
        inputs = load_inputs(store)
        loaded = time.perf_counter()
        if progress is not None:
            progress("load")
        joins = PostGISJoins(store, inputs.epsg) if params.joins == "database" else MemoryJoins()
        results = analyze(inputs, params, joins, progress)
        results.timings = {"load": round(loaded - started, 3), **results.timings}
        run_id = _store(store, inputs, params, results, started, note)
    if store.scope is None:
        cache.warm_city_view(store, run_id)
    return run_id, results


def _store(store: Store, inputs: Inputs, params: Parameters, results: Results, started: float, note: str | None) -> int:
    counts = {
        "areas": len(inputs.areas),
        "organizations": len(inputs.orgs),
        "party_orgs": len(inputs.party_orgs),
        "places": len(inputs.places),
        "service_centers": len(inputs.centers),
    }
    with store.connect() as conn:
        if len(results.new_grids):
            grids = results.new_grids.to_crs(4326).assign(generated=True, source_crs="wgs84")
            store.insert_frame(
                conn,
                "areas",
                grids[["code", "name", "level", "parent_code", "generated", "source_crs", "geometry"]],
                derived=True,
            )
        write_started = time.perf_counter()
        parameters = asdict(params)
        run_id = conn.execute(
            insert(AnalysisRun)
            .values(
                parameters=parameters,
                input_counts=counts,
                inputs_version=inputs.version,
                note=note,
                summary=results.summary,
            )
            .returning(AnalysisRun.id)
        ).scalar_one()
        orgs = results.organizations.rename(columns={"id": "organization_id"})
        columns = [c.name for c in run_organizations.columns if c.name != "run_id"]
        store.insert_frame(conn, "run_organizations", orgs[columns].assign(run_id=run_id))
        store.insert_frame(conn, "run_areas", results.areas.assign(run_id=run_id)[[c.name for c in run_areas.columns]])
        features = _features(results)
        store.insert_frame(conn, "run_features", features.assign(run_id=run_id))
        store.insert_frame(
            conn,
            "run_joint_branches",
            results.proposals.assign(run_id=run_id)[[c.name for c in run_joint_branches.columns]],
        )
        store.insert_frame(
            conn,
            "run_place_pairings",
            results.place_pairings.assign(run_id=run_id)[[c.name for c in run_place_pairings.columns]],
        )
        results.timings["store"] = round(time.perf_counter() - write_started, 3)
        conn.execute(
            AnalysisRun.__table__.update()
            .where(AnalysisRun.id == run_id)
            .values(
                duration_s=round(time.perf_counter() - started, 3),
                summary={**results.summary, "timings": results.timings},
            )
        )
    return run_id


def _features(results: Results) -> gpd.GeoDataFrame:
    parts = [
        results.hotspots.assign(
            kind="hotspot",
            rank=results.hotspots["cluster"] + 1,
            properties=[{"cells": int(c)} for c in results.hotspots["cells"]],
        )
    ]
    for radius, gaps in results.gaps.items():
        parts.append(
            gaps.assign(
                kind=f"gap_{int(radius)}",
                rank=np.arange(1, len(gaps) + 1),
                properties=[{"radius_m": radius}] * len(gaps),
            )
        )
    if results.catchments is not None and len(results.catchments):
        parts.append(results.catchments)
    sites = results.sites
    parts.append(
        gpd.GeoDataFrame(
            {
                "kind": "site",
                "rank": sites["rank"],
                "count": sites["reached"],
                "properties": [
                    {"candidate_kind": k, "candidate_id": c, "total": int(t)}
                    for k, c, t in zip(sites["candidate_kind"], sites["candidate_id"], sites["total"], strict=True)
                ],
            },
            geometry=sites.geometry.values,
            crs=sites.crs,
        )
    )
    frame = pd.concat([p[["kind", "rank", "count", "properties", "geometry"]] for p in parts], ignore_index=True)
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=results.sites.crs).to_crs(4326)
    frame[["rank", "count"]] = frame[["rank", "count"]].astype(np.int64)
    return frame


def write_outputs(store: Store, run_id: int, out: Path) -> list[Path]:
    """The run's files: coverage.csv (with blank ranks and zero-coverage flags), organizations.csv,
    joint_branches.csv, blank_areas.geojson, service_gaps.geojson, siting.csv, place_pairings.csv
    and branch_flags.csv."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with store.connect() as conn:

        def table(sql: str) -> pd.DataFrame:
            result = conn.execute(text(sql), {"run": run_id})
            return result_frame(result)

        cov = table(
            "SELECT level AS area_level, code AS area_code, name AS area_name, orgs, in_scope, own, joint, "
            "area_based, industry_based, work, blank, org_coverage_rate, own_rate, work_rate, both_rate "
            "FROM run_areas WHERE run_id = :run"
        )
        orgs = table(
            "SELECT org_id, district_code, street_code, community_code, grid_code, place_id, status, "
            "in_scope, center_id, pair_distance_m, reach_distance_m, walk_m, walk_center_id, hotspot "
            "FROM run_organizations "
            "WHERE run_id = :run ORDER BY organization_id"
        )
        joint = table(
            "SELECT proposal_id, org_id, party_members, spread_m, round FROM run_joint_branches "
            "WHERE run_id = :run ORDER BY proposal_id, org_id"
        )
        pairs = table("SELECT place_id, center_id, distance_m FROM run_place_pairings WHERE run_id = :run")
        summary = conn.execute(select(AnalysisRun.summary).where(AnalysisRun.id == run_id)).scalar() or {}
        features = store.read_frame("run_features", ["run_id", "kind", "rank", "count", "properties"], conn=conn)
    features = features[features["run_id"] == run_id]
    # Blank ranking within each level, and the areas in scope where nothing is covered at all.
    cov["blank_rank"] = cov.groupby("area_level")["blank"].rank(method="min", ascending=False).astype(int)
    covered = cov[["own", "joint", "area_based", "industry_based", "work"]].sum(axis=1)
    cov["zero_coverage"] = (cov["in_scope"] > 0) & (covered == 0)
    flags = pd.DataFrame(
        summary.get("branch_flags", []),
        columns=["party_org_id", "org_type", "coverage_kind", "members", "suggestion", "reason"],
    )
    for name, frame in (
        ("coverage.csv", cov),
        ("organizations.csv", orgs),
        ("joint_branches.csv", joint),
        ("place_pairings.csv", pairs),
        ("branch_flags.csv", flags),
    ):
        to_csv(frame, out / name, encoding="utf-8-sig")
        written.append(out / name)
    blank = features[features["kind"] == "hotspot"]
    gaps = features[features["kind"].str.startswith("gap_")].assign(radius_m=lambda f: f["kind"].str[4:].astype(int))
    for name, frame in (("blank_areas.geojson", blank), ("service_gaps.geojson", gaps)):
        frame.drop(columns=["run_id", "properties"]).to_file(out / name, driver="GeoJSON", engine="pyogrio")
        written.append(out / name)
    sites = features[features["kind"] == "site"]
    site_table = pd.DataFrame(
        {
            "rank": sites["rank"],
            "candidate_kind": [p["candidate_kind"] for p in sites["properties"]],
            "candidate_id": [p["candidate_id"] for p in sites["properties"]],
            "reached": sites["count"],
            "total_reached": [p["total"] for p in sites["properties"]],
            "lon": shapely.get_x(sites.geometry.values),
            "lat": shapely.get_y(sites.geometry.values),
        }
    )
    to_csv(site_table, out / "siting.csv", encoding="utf-8-sig")
    written.append(out / "siting.csv")
    return written


def compare_runs(store: Store, run_a: int, run_b: int, code: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What changed between two runs (本期变化, see ``area_stats.run_changes``) and the rates
    before and after: of the city and its districts, or of area ``code`` and its children."""
    found = area_stats.run_changes(store, code, run_a, run_b)
    if code is None:
        where, params = "level IN ('city', 'district')", {}
    else:
        where, params = (
            "substr(code, 1, :n) = :code AND level IN (:level, :child)",
            {
                "n": len(code),
                "code": code,
                "level": area_stats.level_of(code),
                "child": area_stats.child_level(area_stats.level_of(code)) or "",
            },
        )
    with store.connect() as conn:

        def rates(run_id: int) -> pd.DataFrame:
            sql = (
                "SELECT level, code, name, both_rate, org_coverage_rate, blank FROM run_areas "
                f"WHERE run_id = :r AND {where}"
            )
            return result_frame(conn.execute(text(sql), {"r": run_id, **params}))

        before, after = rates(run_a), rates(run_b).drop(columns="name")
    return found, before.merge(after, on=["level", "code"], suffixes=("_before", "_after"))
