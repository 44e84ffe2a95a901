"""Grid cells (网格) for communities that have none: square cells clipped to the community.

Cells are sized so each holds about ``target`` organizations (a setting), numbered north→south,
west→east within their community, and coded 6 + 3 + 3 + 3 digits (the community's 12-digit
code and a 3-digit sequence). Everything runs on all communities at once.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .shapes import as_multipolygons

#: Three digits of sequence: at most this many grids per community.
MAX_GRIDS = 999


def generate_grids(communities: gpd.GeoDataFrame, org_counts: pd.Series, target: int = 50) -> gpd.GeoDataFrame:
    """Grid cells for ``communities`` (metric CRS; columns ``code`` and ``name``).

    Parameters
    ----------
    communities : GeoDataFrame
        Communities to grid, in a metric CRS.
    org_counts : Series
        Organizations per community code (missing codes count as 0).
    target : int
        Wanted organizations per grid; a community with none still gets one grid.

    Returns
    -------
    GeoDataFrame with ``code`` (15 digits), ``name``, ``level`` ("grid"), ``parent_code`` and
    MultiPolygon geometry; together the cells of a community cover it exactly.
    """
    if communities.empty:
        return gpd.GeoDataFrame(
            columns=["code", "name", "level", "parent_code", "geometry"], geometry="geometry", crs=communities.crs
        )
    geoms = communities.geometry.values
    counts = org_counts.reindex(communities["code"]).fillna(0).to_numpy()
    wanted = np.clip(np.ceil(counts / max(target, 1)), 1, MAX_GRIDS)
    bounds = shapely.bounds(geoms)
    width, height = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
    # Square cells of the community's area divided by the wanted count; the bounding box holds
    # more cells than the polygon, so widen until no community exceeds three digits of sequence.
    side = np.sqrt(shapely.area(geoms) / wanted)
    for _ in range(20):
        nx = np.maximum(np.ceil(width / side), 1).astype(int)
        ny = np.maximum(np.ceil(height / side), 1).astype(int)
        over = nx * ny > MAX_GRIDS
        if not over.any():
            break
        side = np.where(over, side * 1.25, side)
    owner = np.repeat(np.arange(len(geoms)), nx * ny)
    start = np.repeat(np.cumsum(nx * ny) - nx * ny, nx * ny)
    k = np.arange(len(owner)) - start
    row, col = k // nx[owner], k % nx[owner]
    # Row 0 is the northernmost: numbering runs north→south, then west→east.
    x0 = bounds[owner, 0] + col * side[owner]
    y1 = bounds[owner, 3] - row * side[owner]
    cells = shapely.box(x0, y1 - side[owner], x0 + side[owner], y1)
    clipped = as_multipolygons(shapely.intersection(cells, geoms[owner]))
    keep = ~shapely.is_empty(clipped) & (shapely.area(clipped) > 0)
    owner, row, col, clipped = owner[keep], row[keep], col[keep], clipped[keep]
    order = np.lexsort((col, row, owner))
    owner, clipped = owner[order], clipped[order]
    seq = np.arange(len(owner)) - np.searchsorted(owner, owner) + 1
    codes = communities["code"].to_numpy()[owner]
    names = communities["name"].to_numpy()[owner] if "name" in communities else codes
    return gpd.GeoDataFrame(
        {
            "code": [f"{c}{s:03d}" for c, s in zip(codes, seq, strict=True)],
            "name": [f"{n}第{s}网格" for n, s in zip(names, seq, strict=True)],
            "level": "grid",
            "parent_code": codes,
        },
        geometry=clipped,
        crs=communities.crs,
    )
