"""Co-building pairing (共驻共建): each organization (or place) → a service center.

Within the jurisdiction by default (``pair_by_jurisdiction``): a unit pairs with its own
community's center first, then with another center of its street (the street's own 党群服务中心
or a neighbouring community's), nearest first, and only then across the border — the center
staff can act on, since a street office works with its own centers. Or simply the nearest
community center, or only centers of the same street. Optionally within each center's
capacity: then the pairing that serves the most units (in the best tiers) at the least total
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


def pair_by_jurisdiction(
    points_xy: np.ndarray,
    point_community: np.ndarray,
    point_street: np.ndarray,
    centers_xy: np.ndarray,
    center_area: np.ndarray,
    capacity: np.ndarray | None = None,
    k: int = 8,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair each point with a center of its own community, else of its street, else any.

    Parameters
    ----------
    points_xy, centers_xy : numpy.ndarray
        Coordinates in metres, shape (n, 2) and (m, 2).
    point_community, point_street : numpy.ndarray
        Each point's community (12-digit) and street (9-digit) code; None where not known.
    center_area : numpy.ndarray
        Each center's area code: a community's for a community center, a street's for the
        street's own center; None where not known.
    capacity : numpy.ndarray, optional
        Units each center may take; then as many points as possible are paired, each in the
        best tier capacity allows, at the least total distance.
    k : int
        Candidate centers per point and tier.

    Returns
    -------
    index : numpy.ndarray
        Center per point, -1 where unpaired.
    distance : numpy.ndarray
        Metres, NaN where unpaired.
    tier : numpy.ndarray
        Index into ``vocabulary.PAIR_TIERS`` per point, -1 where unpaired.
    """
    n = len(points_xy)
    index, distance, tier = np.full(n, -1, dtype=np.int64), np.full(n, np.nan), np.full(n, -1, dtype=np.int64)
    if n == 0 or len(centers_xy) == 0:
        return index, distance, tier
    area = pd.Series(center_area, dtype=object)
    groups = [
        (np.asarray(point_community, dtype=object), area.where(area.str.len() == 12).to_numpy(dtype=object)),
        (np.asarray(point_street, dtype=object), area.str[:9].to_numpy(dtype=object)),
        (None, None),
    ]
    if capacity is None:
        # Each tier's search is asked only for the points the tiers before it left unpaired:
        # a point with a center in its community never needs a farther one.
        waiting = np.arange(n)
        for level, (point_groups, center_groups) in enumerate(groups):
            ask = None if point_groups is None else point_groups[waiting]
            rows, cols, dist = _candidate_edges(points_xy[waiting], centers_xy, 1, ask, center_groups)
            found = waiting[rows]
            index[found], distance[found], tier[found] = cols, dist, level
            waiting = np.setdiff1d(waiting, found, assume_unique=True)
        return index, distance, tier
    edges = [_candidate_edges(points_xy, centers_xy, k, *pair) for pair in groups]
    rows, cols, dist = (np.concatenate(part) for part in zip(*edges, strict=True))
    # A (point, center) pair found by two tiers' searches is one candidate.
    _, first = np.unique(rows * len(centers_xy) + cols, return_index=True)
    rows, cols, dist = rows[first], cols[first], dist[first]
    point_community, center_community = _shared_codes(*groups[0])
    point_street, center_street = _shared_codes(*groups[1])
    same_community = (point_community[rows] >= 0) & (point_community[rows] == center_community[cols])
    same_street = (point_street[rows] >= 0) & (point_street[rows] == center_street[cols])
    tiers = np.where(same_community, 0, np.where(same_street, 1, 2))
    # A better tier is worth more than any distance, and pairing one more unit more than any tier.
    chosen = _transport(rows, cols, tiers * (float(dist.max()) + 1.0) + dist, n, capacity, len(centers_xy))
    index[rows[chosen]], distance[rows[chosen]], tier[rows[chosen]] = cols[chosen], dist[chosen], tiers[chosen]
    return index, distance, tier


def _shared_codes(points: np.ndarray, centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Area codes of points and centers as integers of one numbering (-1 for none), which
    compare far faster than strings."""
    codes, _ = pd.factorize(np.concatenate([points, centers]))
    return codes[: len(points)], codes[len(points) :]


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
    chosen = _transport(rows, cols, dist, n, capacity, len(centers_xy))
    index[rows[chosen]] = cols[chosen]
    distance[rows[chosen]] = dist[chosen]
    return index, distance


def _transport(rows, cols, cost, n_points, capacity, n_centers) -> np.ndarray:
    """Which candidate edges (point ``rows``, center ``cols``) to take: each point at most once,
    each center at most its capacity, as many points as possible at the least total ``cost``."""
    # Pairing one more unit is always worth more than any cost saved.
    bonus = float(cost.max()) + 1.0
    m = len(rows)
    a_points = sparse.csr_matrix((np.ones(m), (rows, np.arange(m))), shape=(n_points, m))
    a_centers = sparse.csr_matrix((np.ones(m), (cols, np.arange(m))), shape=(n_centers, m))
    result = linprog(
        cost - bonus,
        A_ub=sparse.vstack([a_points, a_centers]).tocsc(),
        b_ub=np.concatenate([np.ones(n_points), np.asarray(capacity, dtype=float)]),
        bounds=(0, 1),
        method="highs-ds",
    )
    if result.status != 0:
        raise RuntimeError(f"capacitated pairing failed: {result.message}")
    return result.x > 0.5


def _candidate_edges(points_xy, centers_xy, k, point_groups, center_groups):
    """(point, center, distance) for each point's ``k`` nearest eligible centers: with groups,
    the centers of the point's own group (a point or center in no group, None, has none)."""
    if point_groups is None:
        kk = min(k, len(centers_xy))
        d, i = cKDTree(centers_xy).query(points_xy, k=kk)
        d, i = d.reshape(len(points_xy), kk), i.reshape(len(points_xy), kk)
        rows = np.repeat(np.arange(len(points_xy)), kk)
        return rows, i.ravel(), d.ravel()
    point_group, center_group = _shared_codes(
        np.asarray(point_groups, dtype=object), np.asarray(center_groups, dtype=object)
    )
    points, centers = np.flatnonzero(point_group >= 0), np.flatnonzero(center_group >= 0)
    if len(points) == 0 or len(centers) == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=np.int64), np.array([])
    # One tree for every group: each group's points and centers are moved far along x, by
    # four times the data's extent per group number, so that a search finds its own group's
    # centers first and another group's only beyond half that shift (dropped).
    both = np.concatenate([points_xy[points], centers_xy[centers]])
    shift = 4.0 * (float(np.ptp(both, axis=0).max()) + 1.0)
    tree = cKDTree(np.c_[centers_xy[centers, 0] + center_group[centers] * shift, centers_xy[centers, 1]])
    kk = min(k, len(centers))
    d, i = tree.query(np.c_[points_xy[points, 0] + point_group[points] * shift, points_xy[points, 1]], k=kk)
    d, i = d.reshape(len(points), kk), i.reshape(len(points), kk)
    own = d < shift / 2
    return np.repeat(points, kk)[own.ravel()], centers[i[own]], d[own]
