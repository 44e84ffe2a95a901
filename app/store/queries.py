"""Read queries the web layer needs, written once for both backends.

Spatial filtering goes through ``store.backend.bbox_clause`` so it is answered from the
R*Tree (SpatiaLite) or GiST (PostGIS) index; everything else is portable SQL.
"""

from __future__ import annotations

from sqlalchemy import text

from . import Store

BBox = tuple[float, float, float, float]

#: Coverage status of organization ``t`` from the stored party work: organizational
#: coverage (any party organization), else work coverage (an instructor), else blank.
STATUS_SQL = (
    "CASE WHEN EXISTS (SELECT 1 FROM party_org_coverage c WHERE c.organization_id = t.id) "
    "THEN 'org' WHEN EXISTS (SELECT 1 FROM instructors i WHERE i.organization_id = t.id) "
    "THEN 'work' ELSE 'blank' END"
)


def _bbox_params(bbox: BBox) -> dict[str, float]:
    return dict(zip(("minx", "miny", "maxx", "maxy"), map(float, bbox), strict=True))


def count_at_most(store: Store, table: str, bbox: BBox, limit: int) -> int:
    """Rows of ``table`` in ``bbox``, counted no further than ``limit + 1`` (cheap on big tables)."""
    sql = f"SELECT count(*) FROM (SELECT 1 FROM {table} t WHERE {store.backend.bbox_clause(table, 't')} LIMIT :lim) sub"
    with store.connect() as conn:
        return conn.execute(text(sql), {**_bbox_params(bbox), "lim": limit + 1}).scalar()


def organization_points(store: Store, bbox: BBox, limit: int) -> list[dict]:
    """Organizations in ``bbox`` with their attributes and coverage status, at most ``limit``."""
    sql = (
        "SELECT t.org_id, t.name, t.org_type, t.industry, t.employees, t.party_members, "
        f"t.address, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, {STATUS_SQL} AS status "
        f"FROM organizations t WHERE {store.backend.bbox_clause('organizations', 't')} "
        "ORDER BY t.id LIMIT :lim"
    )
    with store.connect() as conn:
        rows = conn.execute(text(sql), {**_bbox_params(bbox), "lim": limit}).mappings()
        return [dict(r) for r in rows]


def organization_clusters(store: Store, bbox: BBox, cell_deg: float) -> list[dict]:
    """Organizations in ``bbox`` aggregated on a square lattice of ``cell_deg`` degrees.

    Each cluster has its member count, the mean position and the number of blank organizations.
    """
    sql = (
        "SELECT count(*) AS n, avg(lon) AS lon, avg(lat) AS lat, "
        "sum(CASE WHEN status = 'blank' THEN 1 ELSE 0 END) AS blank FROM ("
        f"SELECT ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, {STATUS_SQL} AS status, "
        "CAST(ST_X(t.geom) / :cell AS INTEGER) AS gx, CAST(ST_Y(t.geom) / :cell AS INTEGER) AS gy "
        f"FROM organizations t WHERE {store.backend.bbox_clause('organizations', 't')}) s "
        "GROUP BY gx, gy"
    )
    with store.connect() as conn:
        rows = conn.execute(text(sql), {**_bbox_params(bbox), "cell": cell_deg}).mappings()
        return [dict(r) for r in rows]


def areas_containing(store: Store, lon: float, lat: float) -> list[dict]:
    """The areas (district → grid) whose polygon contains a WGS-84 point, coarsest first."""
    sql = (
        "SELECT t.code, t.level, t.name FROM areas t WHERE "
        f"{store.backend.index_clause('areas', 't')} "
        "AND ST_Contains(t.geom, ST_GeomFromText(:wkt, 4326)) ORDER BY length(t.code)"
    )
    params = {**_bbox_params((lon, lat, lon, lat)), "wkt": f"POINT({float(lon)!r} {float(lat)!r})"}
    with store.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]
