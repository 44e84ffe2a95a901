""" "两个覆盖" (the two coverages): status per organization, rates per area, blank spots, service reach.

Rules (docs/domain.md, "Analysis"): organizational coverage is an own, joint, area-based or
industry-based party organization; work coverage is an assigned instructor for a unit without
one; blank is neither. Rates count operating organizations in scope only:

- 组织覆盖率 org_coverage_rate = (own + joint + area_based + industry_based) / in_scope
- 单独组建率 own_rate = own / in_scope
- 工作覆盖率 work_rate = work / (in_scope without a party organization)
- "两个覆盖"率 both_rate = (organizational + work) / in_scope
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: Status values, strongest coverage first: an organization covered several ways counts once.
STATUSES = ("own", "joint", "area", "industry", "work", "blank")
COUNT_COLUMNS = ("own", "joint", "area_based", "industry_based", "work", "blank")
#: Organizations (in scope or not) without a position of their own: none at all, or only the
#: area their ledger states. Every rate table carries them, so that no figure hides them.
POSITION_COLUMNS = ("unplaced", "approximate")
RATE_COLUMNS = ("org_coverage_rate", "own_rate", "work_rate", "both_rate")
#: Every count of a rate table, in order.
TALLY_COLUMNS = ("orgs", "in_scope", *COUNT_COLUMNS, *POSITION_COLUMNS)
_COUNT_OF = dict(zip(STATUSES, COUNT_COLUMNS, strict=True))


@dataclass(frozen=True)
class Scope:
    """Which organizations the rates count (local rules; every number is a setting).

    Defaults follow common practice: enterprises with 10+ employees and social organizations
    with 30+ staff are canvassed; only operating ones count.
    """

    min_employees_enterprise: int = 10
    min_staff_social_org: int = 30
    operating_only: bool = True


def organization_status(org_ids: np.ndarray, links: pd.DataFrame, instructed: np.ndarray) -> np.ndarray:
    """Coverage status of each organization.

    Parameters
    ----------
    org_ids : array of internal organization ids
    links : DataFrame with ``organization_id`` and ``coverage_kind`` (own/joint/area/industry)
    instructed : array of organization ids with an instructor or liaison
    """
    rank = pd.Series(np.arange(len(STATUSES)), index=list(STATUSES))
    strongest = links.assign(rank=links["coverage_kind"].map(rank)).groupby("organization_id")["rank"].min()
    best = pd.Series(org_ids).map(strongest)
    best = best.where(best.notna(), np.where(np.isin(org_ids, instructed), rank["work"], rank["blank"]))
    return np.array(STATUSES, dtype=object)[best.to_numpy(dtype=int)]


def in_scope(orgs: pd.DataFrame, scope: Scope = Scope()) -> np.ndarray:
    """Whether each organization (``org_type``, ``employees``, ``operating``) is in scope."""
    threshold = np.where(orgs["org_type"] == "social_org", scope.min_staff_social_org, scope.min_employees_enterprise)
    inside = orgs["employees"].to_numpy() >= threshold
    if scope.operating_only:
        inside &= orgs["operating"].to_numpy(dtype=bool)
    return inside


def status_counts(
    status: np.ndarray,
    scoped: np.ndarray,
    unplaced: np.ndarray | None = None,
    approximate: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per organization: 1 in the column of its status (in scope only), ``orgs``,
    ``in_scope``, and whether it is ``unplaced`` or placed ``approximate`` (booleans, all
    False when not given). Built once, then summed by any key with :func:`rates`."""
    n = len(status)
    codes = pd.Categorical(status, categories=STATUSES).codes
    scoped = np.asarray(scoped, dtype=np.int64)
    matrix = np.zeros((n, len(TALLY_COLUMNS)), dtype=np.int64)
    matrix[np.arange(n), 2 + codes] = scoped
    matrix[:, 0] = 1
    matrix[:, 1] = scoped
    for i, flags in enumerate((unplaced, approximate), start=2 + len(STATUSES)):
        if flags is not None:
            matrix[:, i] = np.asarray(flags, dtype=bool)
    return pd.DataFrame(matrix, columns=list(TALLY_COLUMNS))


def rates(counts: pd.DataFrame, keys, index: pd.Index | None = None) -> pd.DataFrame:
    """Counts and the four rates per key (``keys`` aligned with the rows of ``counts``).

    With ``index``, every listed key appears (zeros where it has no organization), so areas
    without any organization are reported too. Rates are NaN where their denominator is zero.
    """
    table = counts.groupby(np.asarray(keys), dropna=True, sort=True).sum()
    if index is not None:
        table = table.reindex(index, fill_value=0)
    return add_rates(table[list(TALLY_COLUMNS)])


def add_rates(table: pd.DataFrame) -> pd.DataFrame:
    """Add the four rates to a table of counts."""
    organizational = table["own"] + table["joint"] + table["area_based"] + table["industry_based"]
    scope = table["in_scope"].where(table["in_scope"] > 0)
    without = (table["in_scope"] - organizational).where(lambda v: v > 0)
    return table.assign(
        org_coverage_rate=organizational / scope,
        own_rate=table["own"] / scope,
        work_rate=table["work"] / without,
        both_rate=(organizational + table["work"]) / scope,
    )


def lattice_clusters(
    x: np.ndarray, y: np.ndarray, cell_m: float, min_count: int = 1, weights: np.ndarray | None = None
) -> gpd.GeoDataFrame:
    """Group points into clusters of touching lattice cells (metric CRS).

    Points are binned into square cells of ``cell_m`` metres; cells holding at least
    ``min_count`` points are kept, and cells touching (sides or corners) form one cluster.
    A density clustering in metres, linear in the number of points.

    Returns
    -------
    GeoDataFrame (no CRS set) with ``cluster``, ``count`` (points), ``cells`` and the cluster
    polygon, largest count first; and a ``point_cluster`` attribute on ``.attrs`` mapping each
    point to its cluster (-1 outside any).
    """
    gx = np.floor(np.asarray(x) / cell_m).astype(np.int64)
    gy = np.floor(np.asarray(y) / cell_m).astype(np.int64)
    w = np.ones(len(gx), dtype=np.int64) if weights is None else np.asarray(weights, dtype=np.int64)
    cells = pd.DataFrame({"gx": gx, "gy": gy, "w": w}).groupby(["gx", "gy"], sort=True)["w"].sum()
    hot = cells[cells >= min_count]
    point_cluster = np.full(len(gx), -1, dtype=np.int64)
    if hot.empty:
        result = gpd.GeoDataFrame({"cluster": [], "count": [], "cells": []}, geometry=[])
        result.attrs["point_cluster"] = point_cluster
        return result
    hx = hot.index.get_level_values(0).to_numpy()
    hy = hot.index.get_level_values(1).to_numpy()
    # Neighbouring hot cells (8-connectivity) via a KD-tree on cell indices.
    pairs = cKDTree(np.column_stack([hx, hy])).query_pairs(1.5, output_type="ndarray")
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(hot), len(hot)))
    _, label = connected_components(graph, directed=False)
    boxes = shapely.box(hx * cell_m, hy * cell_m, (hx + 1) * cell_m, (hy + 1) * cell_m)
    grouped = pd.DataFrame({"label": label, "count": hot.to_numpy(), "geometry": boxes}).groupby("label")
    counts = grouped["count"].sum()
    # Clusters are numbered by size, largest first.
    order = counts.sort_values(ascending=False, kind="stable").index.to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    polygons = np.array([shapely.union_all(g) for g in grouped["geometry"].agg(list)], dtype=object)
    result = gpd.GeoDataFrame(
        {
            "cluster": np.arange(len(order)),
            "count": counts.to_numpy()[order],
            "cells": grouped.size().to_numpy()[order],
        },
        geometry=polygons[order],
    )
    found = pd.Series(label, index=hot.index).reindex(pd.MultiIndex.from_arrays([gx, gy])).to_numpy()
    has = ~np.isnan(found)
    point_cluster[has] = rank[found[has].astype(np.int64)]
    result.attrs["point_cluster"] = point_cluster
    return result


def nearest_distance(points_xy: np.ndarray, targets_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (metres) from each point to the nearest target, and that target's index (-1 if none)."""
    if len(targets_xy) == 0:
        return np.full(len(points_xy), np.inf), np.full(len(points_xy), -1)
    distance, index = cKDTree(targets_xy).query(points_xy, k=1)
    return distance, index


def service_gaps(
    points_xy: np.ndarray, centers_xy: np.ndarray, radius_m: float, cell_m: float = 500.0
) -> tuple[np.ndarray, gpd.GeoDataFrame]:
    """Organizations beyond ``radius_m`` of every center, and the unreached areas they lie in.

    The unreached area is the cells (``cell_m``) holding unreached organizations, joined where
    they touch, minus every center's reach: polygons with the number of organizations inside.

    Returns
    -------
    unreached : bool array per point
    gaps : GeoDataFrame (no CRS set) with ``count`` and polygon, largest first
    """
    distance, _ = nearest_distance(points_xy, centers_xy)
    unreached = distance > radius_m
    gaps = lattice_clusters(points_xy[unreached, 0], points_xy[unreached, 1], cell_m)
    if len(gaps) and len(centers_xy):
        # Each gap loses the reach of the centers near it (a loop over gaps, not points);
        # 16-sided circles keep the unions cheap, within 2 % of the radius.
        near = cKDTree(centers_xy)
        bounds = shapely.bounds(gaps.geometry.values)
        centres = (bounds[:, :2] + bounds[:, 2:]) / 2
        spans = np.hypot(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]) / 2 + radius_m
        circles = shapely.buffer(shapely.points(centers_xy), radius_m, quad_segs=4)
        polygons = gaps.geometry.values.copy()
        for i, nearby in enumerate(near.query_ball_point(centres, spans)):
            if nearby:
                polygons[i] = shapely.difference(polygons[i], shapely.union_all(circles[nearby]))
        gaps = gaps.set_geometry(polygons)
    return unreached, gaps
