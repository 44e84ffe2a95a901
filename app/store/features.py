"""Feature collections of the open API: what each one reads, and one paged query for all.

Every collection is a SELECT over a base table ``t`` whose spatial index answers ``bbox``;
analysis results are scoped to a run (``:run``), and a scoped store's reads to its jurisdiction.
Queries take bound parameters only: property names come from the collection's own closed
list, never from the request.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from . import Store
from .backends import bbox_params
from .errors import StoreError
from .models import ACTIVE_ASSIGNMENT_SQL
from .personal import PERSONAL

log = logging.getLogger(__name__)

BBox = tuple[float, float, float, float]


def _first_instructor(column: str) -> str:
    """SQL of a column of organization ``t``'s first active named instructor (by name)."""
    return (
        f"(SELECT p.{column} FROM instructors i JOIN instructor_people p ON p.id = i.person_id "
        f"WHERE i.organization_id = t.id AND {ACTIVE_ASSIGNMENT_SQL} ORDER BY p.name LIMIT 1)"
    )


@dataclass(frozen=True)
class Collection:
    """One collection of the API.

    Parameters
    ----------
    id, title, title_en, description
        Identifier in URLs and human-readable names.
    table
        Base table (alias ``t``).
    properties
        Property name → (SQL expression, JSON type: string / integer / number / boolean).
    fid
        The property that identifies an item.
    geometry_type
        GeoJSON geometry type of the items.
    joins, where
        Extra joins and a fixed condition of the SELECT.
    run
        Whether the collection holds results of an analysis run (``run`` parameter).
    line_to
        SQL of a second point: items are then lines from the centroid of the geometry to it.
    geom_table, geom_alias
        The table (and its alias) holding the geometry, whose spatial index answers a ``bbox``;
        by default the base table. Rows without one (a party organization on no place) have
        a null geometry and never meet a box.
    lookups
        The aliases of ``joins`` when each of them looks up at most one row per item (a LEFT
        JOIN on a unique key): a page that neither filters nor sorts on them is then chosen
        from the base table alone, and only its items are joined.
    copied
        Properties that each process's copy of a point collection holds beside the positions
        (``cache.point_copies``), so that pages filtering or sorting on them are answered from it:
        those a map or a client filters and sorts on, whose values are few or numbers.
    writable
        Whether other systems may create, replace, update and delete its items (OGC API –
        Features Part 4, :mod:`app.web.feature_edits`).
    """

    id: str
    title: str
    title_en: str
    description: str
    table: str
    properties: dict[str, tuple[str, str]]
    fid: str
    geometry_type: str
    joins: str = ""
    where: str = ""
    run: bool = False
    line_to: str | None = None
    geom_table: str = ""
    geom_alias: str = "t"
    lookups: tuple[str, ...] = ()
    copied: tuple[str, ...] = ()
    writable: bool = False

    @property
    def spatial_table(self) -> str:
        return self.geom_table or self.table


@dataclass(frozen=True)
class Page:
    """Which items of a collection a page holds: those meeting ``bbox`` and the equality
    ``filters``, in ``sortby`` order (property, descending) with the identifier breaking ties
    so pages are stable, ``limit`` of them from ``offset``; results of analysis run ``run_id``."""

    bbox: BBox | None = None
    filters: dict = field(default_factory=dict)
    sortby: list[tuple[str, bool]] = field(default_factory=list)
    limit: int = 100
    offset: int = 0
    run_id: int = 0


def _area(level: str, zh: str, en: str) -> Collection:
    return Collection(
        id=f"{level}s" if level != "community" else "communities",
        title=zh,
        title_en=en,
        description=f"{zh} boundaries with their codes / {en} with their codes",
        table="areas",
        properties={
            "code": ("t.code", "string"),
            "name": ("t.name", "string"),
            "parent_code": ("t.parent_code", "string"),
            "generated": ("t.generated", "boolean"),
        },
        fid="code",
        geometry_type="MultiPolygon",
        where=f"t.level = '{level}'",
    )


COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        _area("district", "区县", "Districts"),
        _area("street", "街道/乡镇", "Streets and towns"),
        _area("community", "社区/村", "Communities and villages"),
        _area("grid", "网格", "Grids"),
        Collection(
            id="places",
            title="园区·商圈·市场·楼宇",
            title_en="Parks, business circles, markets and buildings",
            description="园区、商圈、市场、商务楼宇 / parks, business circles, markets, commercial buildings",
            table="places",
            properties={
                "place_id": ("t.place_id", "string"),
                "name": ("t.name", "string"),
                "kind": ("t.kind", "string"),
                "address": ("t.address", "string"),
                "demonstration": ("t.demonstration", "boolean"),
            },
            fid="place_id",
            geometry_type="Geometry",
        ),
        Collection(
            id="organizations",
            title="两新组织",
            title_en="Organizations",
            description=(
                "非公企业和社会组织，附最近一次（或 run 指定的）分析的覆盖状态 / non-public enterprises and "
                "social organizations, with their coverage status in the latest (or the given) analysis run"
            ),
            table="organizations",
            properties={
                "org_id": ("t.org_id", "string"),
                "name": ("t.name", "string"),
                "org_type": ("t.org_type", "string"),
                "industry": ("t.industry", "string"),
                "credit_code": ("t.credit_code", "string"),
                "employees": ("t.employees", "integer"),
                "party_members": ("t.party_members", "integer"),
                "address": ("t.address", "string"),
                "operating": ("t.operating", "boolean"),
                "status": ("r.status", "string"),
                "in_scope": ("r.in_scope", "boolean"),
                "district_code": ("r.district_code", "string"),
                "street_code": ("r.street_code", "string"),
                "community_code": ("r.community_code", "string"),
                "grid_code": ("r.grid_code", "string"),
                # The pairing staff act on (own community first, then the street: pair_tier
                # 0/1/2), and the straight nearest center of any level beside it.
                "center_id": ("r.center_id", "string"),
                "pair_distance_m": ("r.pair_distance_m", "number"),
                "pair_tier": ("r.pair_tier", "integer"),
                "nearest_center_id": ("r.nearest_center_id", "string"),
                "nearest_center_m": ("r.reach_distance_m", "number"),
                # Along the streets (when the run walked): metres to the nearest center, and which.
                "walk_m": ("r.walk_m", "number"),
                "walk_center_id": ("r.walk_center_id", "string"),
                # The first active named instructor (by name), and the unit that sent them.
                "instructor_name": (_first_instructor("name"), "string"),
                "instructor_unit": (_first_instructor("unit"), "string"),
            },
            fid="org_id",
            geometry_type="Point",
            joins="LEFT JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id",
            lookups=("r",),
            run=True,
            writable=True,
            copied=(
                "org_type",
                "industry",
                "employees",
                "party_members",
                "operating",
                "status",
                "in_scope",
                "district_code",
                "street_code",
                "community_code",
                "grid_code",
            ),
        ),
        Collection(
            id="party-orgs",
            title="党组织",
            title_en="Party organizations",
            description=(
                "党委、党总支、党支部、联合党支部；位置为其依托的场所 / party organizations, located at their place"
            ),
            table="party_orgs",
            properties={
                "party_org_id": ("t.party_org_id", "string"),
                "name": ("t.name", "string"),
                "org_type": ("t.org_type", "string"),
                "coverage_kind": ("t.coverage_kind", "string"),
                "members": ("t.members", "integer"),
                "industry": ("t.industry", "string"),
                "secretary": ("t.secretary", "string"),
                "secretary_phone": ("t.secretary_phone", "string"),
                "units": ("(SELECT count(*) FROM party_org_coverage c WHERE c.party_org_id = t.id)", "integer"),
            },
            fid="party_org_id",
            geometry_type="Geometry",
            joins="LEFT JOIN places p ON p.id = t.place_id",
            lookups=("p",),
            geom_table="places",
            geom_alias="p",
        ),
        Collection(
            id="service-centers",
            title="党群服务中心",
            title_en="Party-mass service centers",
            description="党群服务中心（阵地）/ party-mass service centers",
            table="service_centers",
            properties={
                "center_id": ("t.center_id", "string"),
                "name": ("t.name", "string"),
                "level": ("t.level", "string"),
                "capacity": ("t.capacity", "integer"),
                "area_code": ("t.area_code", "string"),
            },
            fid="center_id",
            geometry_type="Point",
        ),
        Collection(
            id="stations",
            title="新就业群体驿站",
            title_en="New-employment worker stations",
            description="外卖、快递、网约车驿站 / stations for delivery riders, couriers and drivers",
            table="stations",
            properties={
                "station_id": ("t.station_id", "string"),
                "name": ("t.name", "string"),
                "kind": ("t.kind", "string"),
                "facilities": ("t.facilities", "string"),
            },
            fid="station_id",
            geometry_type="Point",
        ),
        Collection(
            id="roads",
            title="步行路网",
            title_en="Walking network",
            description="可步行的道路，步行可达按此计算 / the streets and paths walking reach is measured along",
            table="roads",
            properties={
                "road_id": ("t.road_id", "string"),
                "name": ("t.name", "string"),
                "kind": ("t.kind", "string"),
                "walkable": ("t.walkable", "boolean"),
                "generated": ("t.generated", "boolean"),
            },
            fid="road_id",
            geometry_type="MultiLineString",
        ),
        Collection(
            id="area-coverage",
            title="区域覆盖率",
            title_en="Coverage per area",
            description="各区县、街道、社区、网格的组织数与覆盖率 / counts and coverage rates per area",
            table="areas",
            properties={
                "code": ("t.code", "string"),
                "name": ("t.name", "string"),
                "level": ("t.level", "string"),
                **{
                    c: (f"a.{c}", "integer")
                    for c in ("orgs", "in_scope", "own", "joint", "area_based", "industry_based", "work", "blank")
                },
                **{c: (f"a.{c}", "number") for c in ("org_coverage_rate", "own_rate", "work_rate", "both_rate")},
            },
            fid="code",
            geometry_type="MultiPolygon",
            joins="JOIN run_areas a ON a.run_id = :run AND a.level = t.level AND a.code = t.code",
            run=True,
        ),
        Collection(
            id="pairings",
            title="共驻共建结对",
            title_en="Co-building pairings",
            description="每个组织与结对的党群服务中心（连线）/ each organization and its paired center, as a line",
            table="organizations",
            properties={
                "org_id": ("t.org_id", "string"),
                "name": ("t.name", "string"),
                "center_id": ("c.center_id", "string"),
                "center_name": ("c.name", "string"),
                "distance_m": ("r.pair_distance_m", "number"),
            },
            fid="org_id",
            geometry_type="LineString",
            joins=(
                "JOIN run_organizations r ON r.run_id = :run AND r.organization_id = t.id "
                "JOIN service_centers c ON c.center_id = r.center_id"
            ),
            run=True,
            line_to="c.geom",
        ),
        Collection(
            id="place-pairings",
            title="园区楼宇结对",
            title_en="Place pairings",
            description="园区、楼宇等场所与结对的党群服务中心 / each place and its paired center, as a line",
            table="places",
            properties={
                "place_id": ("t.place_id", "string"),
                "name": ("t.name", "string"),
                "center_id": ("c.center_id", "string"),
                "center_name": ("c.name", "string"),
                "distance_m": ("p.distance_m", "number"),
            },
            fid="place_id",
            geometry_type="LineString",
            joins=(
                "JOIN run_place_pairings p ON p.run_id = :run AND p.place_id = t.place_id "
                "JOIN service_centers c ON c.center_id = p.center_id"
            ),
            run=True,
            line_to="c.geom",
        ),
        Collection(
            id="joint-branches",
            title="联合党支部建议",
            title_en="Joint-branch proposals",
            description="拟组建联合党支部的单位，按建议编号分组 / units proposed for joint branches, by proposal",
            table="organizations",
            properties={
                "org_id": ("t.org_id", "string"),
                "name": ("t.name", "string"),
                "proposal_id": ("j.proposal_id", "integer"),
                "party_members": ("j.party_members", "integer"),
                "spread_m": ("j.spread_m", "number"),
                "round": ("j.round", "integer"),
            },
            fid="org_id",
            geometry_type="Point",
            joins="JOIN run_joint_branches j ON j.run_id = :run AND j.org_id = t.org_id",
            run=True,
        ),
        *(
            Collection(
                id=ident,
                title=zh,
                title_en=en,
                description=f"{zh} / {en}",
                table="run_features",
                properties={
                    "id": ("t.id", "integer"),
                    "rank": ("t.rank", "integer"),
                    "count": ("t.count", "integer"),
                    **extra,
                },
                fid="id",
                geometry_type=geometry,
                where=f"t.run_id = :run AND {condition}",
                run=True,
            )
            for ident, zh, en, geometry, condition, extra in (
                ("blank-areas", "空白热点", "Blank hot spots", "Polygon", "t.kind = 'hotspot'", {}),
                (
                    "service-gaps",
                    "服务盲区",
                    "Service gaps",
                    "Geometry",
                    "substr(t.kind, 1, 4) = 'gap_'",
                    {"radius_m": ("CAST(substr(t.kind, 5) AS INTEGER)", "integer")},
                ),
                ("siting", "建议新建阵地", "Proposed sites", "Point", "t.kind = 'site'", {}),
            )
        ),
    )
}


def _expression(store: Store, coll: Collection, name: str) -> str:
    """The SQL of property ``name`` as this store may show it (masked where it must be)."""
    sql = coll.properties[name][0]
    if name in PERSONAL and not store.contacts:
        return PERSONAL[name](store.backend, sql)
    return sql


def _conditions(store: Store, coll: Collection, bbox: BBox | None, filters: dict) -> tuple[list[str], dict]:
    conditions, params = [], {}
    if coll.where:
        conditions.append(coll.where)
    if bbox is not None:
        conditions.append(store.backend.bbox_clause(coll.spatial_table, coll.geom_alias))
        params.update(bbox_params(bbox))
    if store.scope is not None:
        conditions.append(store.scope_condition(coll.spatial_table, coll.geom_alias))
        params.update(store.scope_params())
    for i, (name, value) in enumerate(filters.items()):
        if name in PERSONAL and not store.contacts:
            # Masked values must not be found out by filtering on them either.
            conditions.append("1 = 0")
            continue
        conditions.append(f"{coll.properties[name][0]} = :f{i}")
        params[f"f{i}"] = value
    return conditions, params


def _where(conditions: list[str]) -> str:
    return " WHERE " + " AND ".join(conditions) if conditions else ""


def _direction(desc: bool) -> str:
    """An ORDER BY direction with empty values last either way: SQLite puts them first and
    PostgreSQL last when ascending, so without it the backends would page differently."""
    return "DESC NULLS LAST" if desc else "ASC NULLS LAST"


def _item_columns(store: Store, coll: Collection) -> list[str]:
    """The SELECT list of an item: its properties by name, ``geom`` and, for lines, ``end_geom``."""
    columns = [f"{_expression(store, coll, name)} AS {name}" for name in coll.properties]
    columns.append(f"{coll.geom_alias}.geom AS geom")
    if coll.line_to:
        columns.append(f"{coll.line_to} AS end_geom")
    return columns


def _read(store: Store, coll: Collection, output: str, page: Page) -> tuple[list[str], list]:
    """Names and rows of ``output`` over a page ``q`` of the collection: ``q`` holds up to
    ``page.limit + 1`` items (one more than asked tells that more follow) with the properties by name,
    ``geom`` and, for lines, ``end_geom``.

    ``output`` is computed for the page's rows only: in the same SELECT as the sort, a database
    would compute it for every item in the box before keeping ``limit`` of them.
    """
    columns = _item_columns(store, coll)
    conditions, params = _conditions(store, coll, page.bbox, page.filters)
    keys = list(page.sortby)
    if coll.fid not in [name for name, _ in keys]:
        keys.append((coll.fid, False))
    inner = ", ".join(f"{_expression(store, coll, name)} {_direction(desc)}" for name, desc in keys)
    outer = ", ".join(f"q.{name} {_direction(desc)}" for name, desc in keys)
    paging = f" ORDER BY {inner} LIMIT :limit OFFSET :offset"
    joined = re.compile(r"\b(" + "|".join(coll.lookups) + r")\.") if coll.lookups else None
    if joined is not None and not any(joined.search(sql) for sql in [*conditions, inner]):
        # The page's items from the base table alone, then the lookups for them only: a dense
        # box holds tens of thousands of items at a million organizations, and joining each
        # before keeping a page of them cost PostGIS half the page.
        chosen = f"SELECT t.id FROM {coll.table} t{_where(conditions)}{paging}"
        sql = f"SELECT {', '.join(columns)} FROM ({chosen}) k JOIN {coll.table} t ON t.id = k.id {coll.joins}"
    else:
        sql = f"SELECT {', '.join(columns)} FROM {coll.table} t {coll.joins}{_where(conditions)}{paging}"
    sql = f"SELECT {output} FROM ({sql}) q ORDER BY {outer}"
    params.update(run=page.run_id, limit=page.limit + 1, offset=page.offset)
    with store.connect() as conn:
        result = conn.execute(text(sql), params)
        return list(result.keys()), result.fetchall()


def items(store: Store, coll: Collection, page: Page) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """One page of a collection: properties, shapely geometries and whether more follow."""
    output = ", ".join(f"q.{name}" for name in coll.properties) + ", ST_AsBinary(q.geom) AS geom_wkb"
    if coll.line_to:
        output += ", ST_AsBinary(q.end_geom) AS end_wkb"
    names, rows = _read(store, coll, output, page)
    # Column by column: pandas inspects every row object when given a list of rows.
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    frame = pd.DataFrame({name: pd.Series(values) for name, values in zip(names, columns, strict=True)})
    more = len(frame) > page.limit
    frame = frame.head(page.limit)
    geoms = _geometries(frame.pop("geom_wkb"))
    if coll.line_to:
        ends = _geometries(frame.pop("end_wkb"))
        starts = shapely.centroid(geoms)
        coords = np.stack([shapely.get_coordinates(starts), shapely.get_coordinates(ends)], axis=1)
        geoms = shapely.linestrings(coords) if len(coords) else np.array([], dtype=object)
    return _typed(frame, coll), geoms, more


def _feature(store: Store, coll: Collection) -> str:
    """SQL of one item of ``q`` (the subquery of :func:`_read`) as a GeoJSON Feature text."""
    backend = store.backend
    geometry = backend.make_line("ST_Centroid(q.geom)", "q.end_geom") if coll.line_to else "q.geom"
    properties = [(name, backend.json_value(f"q.{name}", kind)) for name, (_, kind) in coll.properties.items()]
    feature = backend.json_object(
        [
            ("type", "'Feature'"),
            ("id", dict(properties)[coll.fid]),
            ("geometry", backend.geojson(geometry)),
            ("properties", backend.json_object(properties)),
        ]
    )
    # As text: a driver would parse json into objects only to have them written out again.
    return f"CAST({feature} AS TEXT)"


def geojson_features(store: Store, coll: Collection, page: Page) -> tuple[list[str], bool]:
    """One page of a collection as GeoJSON Feature texts, and whether more follow.

    The database writes each feature: encoding 2,000 features row by row in Python cost more
    than the query itself.
    """
    _, rows = _read(store, coll, _feature(store, coll), page)
    return [row[0] for row in rows[: page.limit]], len(rows) > page.limit


def feature_texts(
    store: Store, coll: Collection, run_id: int, ids: list[int] | None = None, between: tuple[int, int] | None = None
) -> dict[int, str]:
    """The GeoJSON Feature texts of the items with internal ids ``ids`` (or ids from
    ``between[0]`` to ``between[1]``), as :func:`geojson_features` writes them, by id."""
    conditions, params = _conditions(store, coll, None, {})
    if ids is not None:
        # Integers the caller read from the database, inlined: one statement whatever their number.
        conditions.append(f"t.id IN ({', '.join(str(int(i)) for i in ids)})")
    if between is not None:
        conditions.append("t.id BETWEEN :first_id AND :last_id")
        params = {**params, "first_id": between[0], "last_id": between[1]}
    columns = ", ".join(["t.id AS item_id", *_item_columns(store, coll)])
    sql = (
        f"SELECT q.item_id, {_feature(store, coll)} "
        f"FROM (SELECT {columns} FROM {coll.table} t {coll.joins}{_where(conditions)}) q"
    )
    with store.connect(transaction=False) as conn:
        return dict(conn.execute(text(sql), {**params, "run": run_id}).fetchall())


def count(store: Store, coll: Collection, page: Page, seconds: float | None = None) -> int | None:
    """How many items the page's box and filters match, on every page (``numberMatched``).

    With ``seconds``, a count that takes longer is given up (None, and logged): a page is not
    slowed for a figure a client can do without.
    """
    conditions, params = _conditions(store, coll, page.bbox, page.filters)
    sql = f"SELECT count(*) FROM {coll.table} t {coll.joins}{_where(conditions)}"
    if seconds is None:
        with store.connect() as conn:
            return conn.execute(text(sql), {**params, "run": page.run_id}).scalar()
    try:
        with store.connect() as conn, store.backend.time_limit(conn, seconds):
            return conn.execute(text(sql), {**params, "run": page.run_id}).scalar()
    except (DBAPIError, StoreError) as exc:
        log.info("numberMatched of %s left out after %.2f s: %s", coll.id, seconds, str(exc).splitlines()[0])
        return None


def extent(store: Store, coll: Collection) -> list[float] | None:
    """The bounding box of the collection's base table (cheap, from the index's own extent);
    for a scoped store, that of its jurisdiction (the city's extent is not the caller's)."""
    if store.scope is not None:
        area = store.read_frame("areas", [], where={"code": store.scope})
        return [float(v) for v in area.total_bounds] if len(area) else None
    with store.connect() as conn:
        row = conn.execute(text(store.backend.extent_sql(coll.spatial_table))).first()
    return None if row is None or row[0] is None else [float(v) for v in row]


def _geometries(wkb: pd.Series) -> np.ndarray:
    return shapely.from_wkb(np.array([bytes(b) if b is not None else None for b in wkb], dtype=object))


def _typed(frame: pd.DataFrame, coll: Collection) -> pd.DataFrame:
    """Give both backends' answers the same JSON types (SQLite has no boolean)."""
    for name, (_, kind) in coll.properties.items():
        if kind == "boolean":
            frame[name] = frame[name].map(lambda v: None if v is None or pd.isna(v) else bool(v))
    return frame
