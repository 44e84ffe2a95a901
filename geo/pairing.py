"""Co-building pairing (共驻共建): each organization (or place) → a community service center.

Nearest by default. Optionally only centers of the same street (jurisdiction), and optionally
within each center's capacity: then the pairing that serves the most units at the least total
distance, solved exactly as a transportation problem over each unit's ``k`` nearest centers.
Coordinates are metres in the city's metric CRS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linprog
from scipy.spatial import cKDTree


def pair_nearest(
    points_xy: np.ndarray,
    centers_xy: np.ndarray,
    point_groups: np.ndarray | None = None,
    center_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest center for each point (-1 if none) and its distance in metres.

    With ``point_groups``/``center_groups`` (e.g. street codes) a point only pairs with a
    center of its own group; points whose group has no center stay unpaired.
    """
    index = np.full(len(points_xy), -1, dtype=np.int64)
    distance = np.full(len(points_xy), np.nan)
    if len(points_xy) == 0 or len(centers_xy) == 0:
        return index, distance
    rows, cols, dist = _candidate_edges(points_xy, centers_xy, 1, point_groups, center_groups)
    index[rows], distance[rows] = cols, dist
    return index, distance


def pair_with_capacity(
    points_xy: np.ndarray,
    centers_xy: np.ndarray,
    capacity: np.ndarray,
    k: int = 8,
    point_groups: np.ndarray | None = None,
    center_groups: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pair points with centers without exceeding any center's capacity.

    Among each point's ``k`` nearest eligible centers, finds the pairing that first pairs as
    many points as possible and then minimizes the total distance. This is a transportation
    problem (totally unimodular), so the simplex vertex HiGHS returns is integral: exact.

    Returns
    -------
    index : center per point, -1 where capacity ran out within the ``k`` nearest
    distance : metres, NaN where unpaired
    """
    n = len(points_xy)
    index = np.full(n, -1, dtype=np.int64)
    distance = np.full(n, np.nan)
    if n == 0 or len(centers_xy) == 0:
        return index, distance
    rows, cols, dist = _candidate_edges(points_xy, centers_xy, k, point_groups, center_groups)
    if len(rows) == 0:
        return index, distance
    # Pairing one more unit is always worth more than any distance saved.
    bonus = float(dist.max()) + 1.0
    m = len(rows)
    a_points = sparse.csr_matrix((np.ones(m), (rows, np.arange(m))), shape=(n, m))
    a_centers = sparse.csr_matrix((np.ones(m), (cols, np.arange(m))), shape=(len(centers_xy), m))
    result = linprog(
        dist - bonus,
        A_ub=sparse.vstack([a_points, a_centers]).tocsc(),
        b_ub=np.concatenate([np.ones(n), np.asarray(capacity, dtype=float)]),
        bounds=(0, 1),
        method="highs-ds",
    )
    if result.status != 0:
        raise RuntimeError(f"capacitated pairing failed: {result.message}")
    chosen = result.x > 0.5
    index[rows[chosen]] = cols[chosen]
    distance[rows[chosen]] = dist[chosen]
    return index, distance


def _candidate_edges(points_xy, centers_xy, k, point_groups, center_groups):
    """(point, center, distance) for each point's ``k`` nearest eligible centers."""
    if point_groups is None:
        kk = min(k, len(centers_xy))
        d, i = cKDTree(centers_xy).query(points_xy, k=kk)
        d, i = d.reshape(len(points_xy), kk), i.reshape(len(points_xy), kk)
        rows = np.repeat(np.arange(len(points_xy)), kk)
        return rows, i.ravel(), d.ravel()
    parts = []
    points_by_group = pd.Series(np.arange(len(points_xy))).groupby(np.asarray(point_groups)).indices
    centers_by_group = pd.Series(np.arange(len(centers_xy))).groupby(np.asarray(center_groups)).indices
    for group, members in points_by_group.items():
        own = centers_by_group.get(group)
        if own is None:
            continue
        kk = min(k, len(own))
        d, i = cKDTree(centers_xy[own]).query(points_xy[members], k=kk)
        d, i = d.reshape(len(members), kk), i.reshape(len(members), kk)
        parts.append((np.repeat(members, kk), own[i.ravel()], d.ravel()))
    if not parts:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([])
    return tuple(np.concatenate(p) for p in zip(*parts, strict=True))
