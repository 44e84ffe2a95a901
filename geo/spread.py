"""Positions for things known only to be inside an area: spread, and the same every time.

Fifty units of one office building, placed by the building's name, must not sit on one pixel,
and a re-import of the same ledger must put each where it was. Each thing's key (its id) is
hashed to a position inside its shape: uniformly within a polygon, on a small sunflower
spiral around a point.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

#: Tries of the hashed positions before a polygon's own interior point is taken; each try lands
#: inside with the polygon's share of its bounding box, so thin shapes need a few.
TRIES = 12
#: The golden angle (radians): successive spiral points never line up.
_GOLDEN = np.pi * (3 - np.sqrt(5))


def _uniform(keys: np.ndarray, salt: int) -> tuple[np.ndarray, np.ndarray]:
    """Two numbers in [0, 1) per key, fixed by the key and ``salt``."""
    salted = pd.Series(keys, dtype=object).astype(str) + f"\x1f{salt}"
    hashed = pd.util.hash_array(salted.to_numpy(dtype=object))
    return (hashed >> np.uint64(32)).astype(float) / 2**32, (hashed & np.uint64(0xFFFFFFFF)).astype(float) / 2**32


def spread_inside(keys: np.ndarray, shapes: np.ndarray, point_radius: float) -> np.ndarray:
    """A point inside each of ``shapes`` (polygons or points, one per key), spread by ``keys``.

    Parameters
    ----------
    keys : array of str
        What each position is for (ids); equal keys in equal shapes give equal points.
    shapes : array of shapely geometries
        Where each key lies; a point shape stands for a small building.
    point_radius : float
        Radius of the spiral around a point shape, in the shapes' units (degrees for WGS-84).

    Returns
    -------
    numpy.ndarray of shapely Point
    """
    keys = np.asarray(keys, dtype=object)
    shapes = np.asarray(shapes, dtype=object)
    out = np.empty(len(keys), dtype=object)
    is_point = shapely.get_type_id(shapes) == 0
    if is_point.any():
        out[is_point] = _spiral(keys[is_point], shapes[is_point], point_radius)
    polygons = np.flatnonzero(~is_point)
    if len(polygons):
        out[polygons] = _sampled(keys[polygons], shapes[polygons])
    return out


def _spiral(keys: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """Sunflower-spiral points around each centre: the k-th key of a centre (by key order) at
    radius ``radius·√(k/n)``, so that a centre's n keys fill its disc evenly."""
    xy = shapely.get_coordinates(centres)
    frame = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "key": keys.astype(str)})
    group = frame.groupby(["x", "y"], sort=False)["key"]
    rank = group.rank(method="first").to_numpy() - 1
    count = group.transform("size").to_numpy()
    r = radius * np.sqrt((rank + 0.5) / count)
    angle = rank * _GOLDEN
    # A lone key sits on its building, not beside it.
    r[count == 1] = 0.0
    return shapely.points(xy[:, 0] + r * np.cos(angle), xy[:, 1] + r * np.sin(angle))


def _sampled(keys: np.ndarray, polygons: np.ndarray) -> np.ndarray:
    """Hashed positions in each polygon's bounding box, kept at the first try inside."""
    bounds = shapely.bounds(polygons)
    out = shapely.point_on_surface(polygons)
    pending = np.arange(len(keys))
    shapely.prepare(polygons)
    for salt in range(TRIES):
        if not len(pending):
            break
        u, v = _uniform(keys[pending], salt)
        b = bounds[pending]
        candidates = shapely.points(b[:, 0] + u * (b[:, 2] - b[:, 0]), b[:, 1] + v * (b[:, 3] - b[:, 1]))
        inside = shapely.contains_properly(polygons[pending], candidates)
        out[pending[inside]] = candidates[inside]
        pending = pending[~inside]
    return out
