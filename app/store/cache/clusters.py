"""Organization clusters kept by whole tiles in ``map_cache``, for every instance.

A cell lies wholly in one tile, so a cluster is the same whichever view asked for it, and a
view reads the tiles it covers instead of grouping every organization again.
"""

from __future__ import annotations

import json

from .. import Store, queries, tiles
from . import shared


def cluster_tiles(
    store: Store,
    bbox: tiles.BBox,
    cell_deg: float,
    run_id: int = 0,
    filters: dict[str, str] | None = None,
    compute: bool = True,
) -> tuple[list[dict], tiles.BBox] | None:
    """The clusters of the whole tiles covering ``bbox``, and the box of those tiles.

    Tiles computed from the current data version are read from ``map_cache``; the missing ones
    are computed in one query and kept. Returns None when ``compute`` is false and a tile is
    missing.
    """
    filters = filters or {}
    cols, rows = tiles.tile_span(bbox, cell_deg)
    if len(cols) * len(rows) > tiles.MAX_TILES:
        # A box far larger than any screen at this zoom: answer it directly, keep nothing.
        return (queries.organization_clusters(store, bbox, cell_deg, run_id, filters), bbox) if compute else None
    prefix = json.dumps([f"{cell_deg:.12g}", run_id, sorted(filters.items()), store.scope], ensure_ascii=False)
    keys = {(i, j): f"clusters:{prefix}:{i}:{j}" for i in cols for j in rows}
    with store.connect() as conn:
        version = store.data_version(conn)
        found = shared.read(conn, list(keys.values()), version)
    clusters = [c for key in keys.values() if key in found for c in json.loads(found[key])]
    missing = [ij for ij, key in keys.items() if key not in found]
    if missing and not compute:
        return None
    if missing:
        # One query over the hull of the missing tiles; clusters of tiles outside them are dropped.
        i0, i1 = min(i for i, _ in missing), max(i for i, _ in missing)
        j0, j1 = min(j for _, j in missing), max(j for _, j in missing)
        hull = tiles.tiles_box(range(i0, i1 + 1), range(j0, j1 + 1), cell_deg)
        by_tile: dict[tuple[int, int], list[dict]] = {ij: [] for ij in missing}
        for c in queries.organization_clusters(store, hull, cell_deg, run_id, filters):
            c = {k: (float(v) if k in ("lon", "lat") else int(v)) for k, v in c.items()}
            ij = (c["gx"] // tiles.TILE_CELLS, c["gy"] // tiles.TILE_CELLS)
            if ij in by_tile:
                by_tile[ij].append(c)
        for ij in missing:
            clusters += by_tile[ij]
        shared.add_tiles(store, {keys[ij]: json.dumps(by_tile[ij]) for ij in missing}, version)
    return clusters, tiles.tiles_box(cols, rows, cell_deg)


def warm_city_view(store: Store, run_id: int) -> None:
    """Compute and keep the clusters the city map opens with, for screens up to
    ``tiles.OPENING_SCREEN``: called once an analysis run is committed, so that its first
    visitor reads kept tiles instead of grouping every organization."""
    center = queries.city_center(store)
    if center is None:
        return
    box = tiles.screen_box(*center, tiles.CITY_ZOOM, tiles.OPENING_SCREEN)
    cluster_tiles(store, box, tiles.cluster_cell(tiles.CITY_ZOOM), run_id)
