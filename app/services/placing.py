"""Placing an organization by hand: the 待定位 list's one write.

Street and community staff place the organizations an import could not place, or placed only
somewhere in their community: by a click on the map, by choosing a place from search, or with
the phone's own position. Every placement is one transaction that moves the organization,
marks it ``manual`` (a later import keeps it, see :func:`app.intake.import_file`) and appends
who, when, from and to to its history (``placements``).

A position must lie inside the city's areas and, for a user bound to a jurisdiction, inside
that jurisdiction; the organization must be one the user can see.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import insert, text

from geo.crs import to_wgs84_xy
from geo.spread import spread_inside

from ..errors import HongtuError
from ..intake.locate import POINT_PLACE_RADIUS, place_radius_m
from ..store import Store, result_frame
from ..store.models import PLACEMENT_SOURCES, org_changes, placements

#: Ways a user places by hand (an import's replacement, or another system's move through the
#: API, is recorded, never asked for here).
USER_SOURCES = tuple(s for s in PLACEMENT_SOURCES if s not in ("import", "api"))
#: A phone's fix vaguer than this (m) says less than the community it is in: refused.
MAX_GPS_ACCURACY_M = 100.0
#: Columns of the 待定位 list.
LIST_COLUMNS = ("org_id", "name", "address", "located_by", "location_precision_m", "stated_area_code", "lon", "lat")
#: Columns of an organization's placement history, newest first.
HISTORY_COLUMNS = (
    "at",
    "username",
    "source",
    "from_located_by",
    "from_lon",
    "from_lat",
    "to_lon",
    "to_lat",
    "place_id",
)


class PlacementError(HongtuError):
    """A placement refused, with the HTTP status that says why and a message in both languages."""

    def __init__(self, status: int, zh: str, en: str):
        super().__init__(zh, en)
        self.status = status


_NO_ORGANIZATION = PlacementError(
    404, "没有这个组织，或不在您的管辖范围内", "no such organization within your jurisdiction"
)


@dataclass(frozen=True)
class Placement:
    """One placement asked for: where (``lon``/``lat`` in ``crs``, or a ``place_id``) and how."""

    org_id: str
    source: str
    lon: float | None = None
    lat: float | None = None
    #: The datum of ``lon``/``lat``: a map under AMap tiles clicks in GCJ-02; a phone's GPS
    #: and every other base map answer WGS-84.
    crs: str = "wgs84"
    place_id: str | None = None
    accuracy_m: float | None = None


def to_place(
    store: Store, located_by: tuple[str, ...], limit: int = 500, org_id: str | None = None
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The organizations the store can see that are placed only ``located_by`` (e.g. unplaced
    and approximate), most in need first (unplaced, then the vaguest), at most ``limit``; and
    how many there are in all of each way, beyond the limit too. Given an ``org_id``: that
    organization alone, however it is placed."""
    marks = ", ".join(f":l{i}" for i in range(len(located_by)))
    condition = "t.org_id = :org" if org_id is not None else f"t.located_by IN ({marks})"
    where, scope = store.restrict(f"SELECT {{}} FROM organizations t WHERE {condition}", "organizations", "t")
    params = {**scope, "org": org_id, **{f"l{i}": v for i, v in enumerate(located_by)}}
    columns = ", ".join(f"t.{c}" for c in LIST_COLUMNS[:-2]) + ", ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat"
    order = " ORDER BY t.geom IS NOT NULL, t.location_precision_m DESC, t.org_id LIMIT :limit"
    with store.connect() as conn:
        counts = conn.execute(text(where.format("t.located_by, count(*)") + " GROUP BY t.located_by"), params).all()
        frame = result_frame(conn.execute(text(where.format(columns) + order), {**params, "limit": limit}))
    return frame, {way: int(n) for way, n in counts}


def history(store: Store, org_id: str) -> pd.DataFrame:
    """Where an organization the store can see was placed by hand, newest first; 404
    (:class:`PlacementError`) for one it cannot see."""
    if _visible(store, "organizations", "org_id", org_id, "t.org_id") is None:
        raise _NO_ORGANIZATION
    sql, scope = store.restrict(
        f"SELECT {', '.join('p.' + c for c in HISTORY_COLUMNS)}, s.name AS place_name FROM placements p "
        "JOIN organizations t ON t.id = p.organization_id LEFT JOIN places s ON s.place_id = p.place_id "
        "WHERE t.org_id = :org",
        "organizations",
        "t",
    )
    with store.connect() as conn:
        return result_frame(conn.execute(text(sql + " ORDER BY p.id DESC"), {**scope, "org": org_id}))


def place(store: Store, asked: Placement, username: str | None) -> dict:
    """Move one organization where ``asked`` says, mark it placed by hand, and record it.

    Answers the history entry written (``from_*``, ``to_*``, ``located_by`` before). Raises
    :class:`PlacementError`: 400 for a bad position or source, 404 for an organization or
    place the store cannot see, 403 for a position outside the user's jurisdiction.
    """
    with store.connect(write=True) as conn:
        # Read, checked and written in one transaction: a move by someone else in between
        # cannot slip past the check.
        columns = "ST_X(t.geom), ST_Y(t.geom), t.located_by"
        organization = _visible(store, "organizations", "org_id", asked.org_id, columns, conn)
        if organization is None:
            raise _NO_ORGANIZATION
        if asked.source not in USER_SOURCES:
            raise PlacementError(400, f"定位方式应为 {'/'.join(USER_SOURCES)}", f"source must be one of {USER_SOURCES}")
        internal, from_lon, from_lat, from_by = organization
        point, precision = _position(store, asked, conn)
        current = {"id": internal, "org_id": asked.org_id, "lon": from_lon, "lat": from_lat, "located_by": from_by}
        entry = move(
            store,
            conn,
            current,
            point,
            asked.source,
            username,
            precision=precision,
            accuracy_m=asked.accuracy_m if asked.source == "gps" else None,
            place_id=asked.place_id if asked.source == "place" else None,
        )
    return entry


def move(
    store: Store,
    conn,
    current: dict,
    point: shapely.Point,
    source: str,
    username: str | None,
    via: str = "map",
    precision: float | None = None,
    accuracy_m: float | None = None,
    place_id: str | None = None,
) -> dict:
    """In the caller's write transaction: move the organization ``current`` (its ``id``,
    ``org_id``, ``lon``, ``lat``, ``located_by`` as stored) to the WGS-84 ``point``, checked to
    lie inside the store's jurisdiction; mark it placed by hand and append the entry (answered)
    to its placements and to its corrections (field ``position``, ``via`` as recorded there)."""
    check_inside(store, conn, point)
    conn.execute(
        text(
            "UPDATE organizations SET geom = "
            f"{store.backend.point_sql(':x', ':y')}, located_by = 'manual', "
            "location_precision_m = :precision, source_crs = 'wgs84' WHERE id = :id"
        ),
        {"x": point.x, "y": point.y, "precision": precision, "id": current["id"]},
    )
    entry = {
        "organization_id": current["id"],
        "at": datetime.now(UTC),
        "username": username,
        "source": source,
        "from_located_by": current["located_by"],
        "from_lon": current["lon"],
        "from_lat": current["lat"],
        "to_lon": point.x,
        "to_lat": point.y,
        "accuracy_m": accuracy_m,
        "place_id": place_id,
    }
    conn.execute(insert(placements).values(**entry))
    conn.execute(
        insert(org_changes).values(
            org_id=current["org_id"],
            at=entry["at"],
            username=username,
            via=via,
            field="position",
            old=None if current["lon"] is None else f"{current['lon']:.6f},{current['lat']:.6f}",
            new=f"{point.x:.6f},{point.y:.6f}",
        )
    )
    store.data_changed(conn)
    return entry


def _visible(store: Store, table: str, key: str, value: str, columns: str, conn=None):
    """One row (id and ``columns``) of ``table`` whose ``key`` is ``value``, if the store sees it."""
    sql, scope = store.restrict(f"SELECT t.id, {columns} FROM {table} t WHERE t.{key} = :value", table, "t")
    if conn is not None:
        return conn.execute(text(sql), {**scope, "value": value}).first()
    with store.connect() as own:
        return own.execute(text(sql), {**scope, "value": value}).first()


def _position(store: Store, asked: Placement, conn) -> tuple[shapely.Point, float | None]:
    """The WGS-84 point asked for and its precision (m; None for a click)."""
    if asked.source == "place":
        found = _visible(store, "places", "place_id", asked.place_id or "", "ST_AsBinary(t.geom)", conn)
        if found is None:
            raise PlacementError(404, "没有这个场所，或不在您的管辖范围内", "no such place within your jurisdiction")
        shape = np.array([shapely.from_wkb(bytes(found[1]))], dtype=object)
        point = spread_inside(np.array([asked.org_id], dtype=object), shape, POINT_PLACE_RADIUS)[0]
        return point, float(place_radius_m(shape, POINT_PLACE_RADIUS)[0])
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in (asked.lon, asked.lat)):
        raise PlacementError(400, "经纬度应为数字", "lon and lat must be numbers")
    if not (-180 <= asked.lon <= 180 and -90 <= asked.lat <= 90):
        raise PlacementError(400, "经纬度超出范围", "lon or lat out of range")
    if asked.crs not in ("wgs84", "gcj02"):
        raise PlacementError(400, "坐标系应为 wgs84 或 gcj02", "crs must be wgs84 or gcj02")
    precision = None
    if asked.source == "gps":
        accuracy = asked.accuracy_m
        if not isinstance(accuracy, int | float) or not math.isfinite(accuracy) or accuracy < 0:
            raise PlacementError(400, "缺少定位精度", "the phone's accuracy (m) is missing")
        if accuracy > MAX_GPS_ACCURACY_M:
            raise PlacementError(
                400,
                f"手机定位精度 {accuracy:.0f} 米，超过 {MAX_GPS_ACCURACY_M:.0f} 米：请到室外重试或在地图上点选",
                f"the phone's fix is {accuracy:.0f} m wide (over {MAX_GPS_ACCURACY_M:.0f} m): retry outdoors",
            )
        precision = round(float(accuracy), 1)
    x, y = to_wgs84_xy(np.array([asked.lon], dtype=float), np.array([asked.lat], dtype=float), asked.crs)
    return shapely.Point(float(x[0]), float(y[0])), precision


def check_inside(store: Store, conn, point: shapely.Point) -> None:
    """Refuse a point outside every area of the city, or outside the store's jurisdiction."""
    geom = store.backend.point_sql(":x", ":y")
    inside = store.backend.is_true(f"ST_Intersects(a.geom, {geom})")
    params = {"x": point.x, "y": point.y}
    if conn.execute(text(f"SELECT 1 FROM areas a WHERE {inside} LIMIT 1"), params).first() is None:
        raise PlacementError(400, "该位置不在本市区划范围内", "that position is outside the city's areas")
    if store.scope is not None:
        # Strictly inside: a point on the boundary would lie in the neighbour's jurisdiction too,
        # and hand the organization (and its history) to both.
        within = store.backend.is_true(f"ST_Contains(a.geom, {geom})")
        sql = f"SELECT 1 FROM areas a WHERE a.code = :scope AND {within}"
        if conn.execute(text(sql), {**params, "scope": store.scope}).first() is None:
            raise PlacementError(403, "该位置超出您的管辖范围", "that position is outside your jurisdiction")
