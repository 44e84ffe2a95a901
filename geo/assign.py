"""Assign points (organizations) to grids — hence community, street and district — and to places.

The grids of a city partition it, and codes nest (grid 15 = community 12 + 3 = street 9 + 3 +
3 = district 6 + …), so one point-in-polygon join against the grids answers every level.
A point in no polygon goes to the nearest one within ``tolerance_m`` and is marked as snapped;
farther away it is left unassigned and flagged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely
from shapely import STRtree

from .vocabulary import AREA_CODE_LENGTHS


def locate(points: np.ndarray, polygons: np.ndarray, tolerance_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Index of the polygon containing each point (metric CRS), or -1.

    Where polygons overlap (shared borders) the lowest index wins, so the answer is stable.

    Returns
    -------
    index : int array, -1 where no polygon contains the point or lies within ``tolerance_m``
    snapped : bool array, True where the point was outside every polygon but within tolerance
    """
    index = np.full(len(points), -1, dtype=np.int64)
    snapped = np.zeros(len(points), dtype=bool)
    if len(points) == 0 or len(polygons) == 0:
        return index, snapped
    poly_idx, point_idx = _contains_pairs(points, polygons)
    # The lowest polygon index per point: write in descending polygon order so it lands last.
    order = np.argsort(-poly_idx, kind="stable")
    index[point_idx[order]] = poly_idx[order]
    missing = np.flatnonzero(index < 0)
    if len(missing) and tolerance_m > 0:
        near_point, near_poly = STRtree(polygons).query_nearest(
            points[missing], max_distance=tolerance_m, all_matches=False
        )
        index[missing[near_point]] = near_poly
        snapped[missing[near_point]] = True
    return index, snapped


def _contains_pairs(points: np.ndarray, polygons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(polygon, point) index pairs where the polygon contains the point.

    The tree is built on the points and queried with the polygons (~3× faster than asking each
    point for its polygon); the bounding-box candidates are then tested in one ``contains_xy``
    call on prepared polygons. Prepared, a polygon answers from an index of its edges: at 1M
    points this took 0.2–0.35 s where GEOS's ``contains`` predicate in the tree query took
    1.2–1.6 s (7,881 grids, 150 streets, 14 districts), and the 4.6M candidates of 10k places
    0.43 s where unprepared ``contains_xy`` took 1.4 s.
    """
    tree = STRtree(points)
    poly_i, point_i = tree.query(polygons)
    xy = shapely.get_coordinates(points)
    shapely.prepare(polygons)
    inside = shapely.contains_xy(polygons[poly_i], xy[point_i, 0], xy[point_i, 1])
    return poly_i[inside], point_i[inside]


def assign_areas(points: np.ndarray, polygons: pd.DataFrame, tolerance_m: float = 50.0) -> pd.DataFrame:
    """District, street, community and grid code of every point.

    Parameters
    ----------
    points : array of shapely Points, metric CRS
    polygons : (Geo)DataFrame of one partition level (metric CRS) with a ``code`` column —
        grids (15 digits) answer every level, communities (12) all but the grid, and so on.
    tolerance_m : float
        How far outside every polygon a point may lie and still be assigned to the nearest.

    Returns
    -------
    DataFrame with ``district_code``, ``street_code``, ``community_code``, ``grid_code`` (None
    where unassigned or finer than the polygons), ``snapped`` and ``unassigned`` flags.
    """
    index, snapped = locate(points, np.asarray(polygons.geometry.values), tolerance_m)
    return area_codes(index, snapped, polygons["code"])


def area_codes(index: np.ndarray, snapped: np.ndarray, polygon_codes: pd.Series) -> pd.DataFrame:
    """The codes of every level for points located in polygons (see ``assign_areas``).

    Parameters
    ----------
    index : int array, position of each point's polygon in ``polygon_codes`` (-1 for none)
    snapped : bool array, whether the point was snapped to its polygon
    polygon_codes : the polygons' codes
    """
    codes = polygon_codes.astype(str).reset_index(drop=True)
    found = index >= 0
    out = pd.DataFrame(index=range(len(index)))
    for level, width in AREA_CODE_LENGTHS.items():
        # Slice the few thousand polygon codes, then pick per point: no string work per point.
        level_codes = np.asarray(codes.str[:width].where(codes.str.len() >= width), dtype=object)
        out[f"{level}_code"] = np.where(found, level_codes[np.maximum(index, 0)], None) if len(codes) else None
    out["snapped"] = snapped
    out["unassigned"] = ~found
    return out
