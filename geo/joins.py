"""The analysis' two heavy spatial joins behind one small interface, done in memory here.

``assign`` puts points in polygons (a point-in-polygon join, snapping to the nearest polygon
within a tolerance) and ``nearest`` finds each point's nearest target and its distance. An
analysis takes any object with these two methods: :class:`MemoryJoins` (STRtree, KD-tree) or
the database's own (``app.store.spatial_joins.PostGISJoins``), which give the same answers.
"""

from __future__ import annotations

from typing import Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from . import assign, coverage


class Joins(Protocol):
    """What an analysis asks of a spatial join engine (metric CRS throughout)."""

    def assign(self, points: np.ndarray, polygons: gpd.GeoDataFrame, tolerance_m: float) -> pd.DataFrame:
        """Area codes of every point (as :func:`geo.assign.assign_areas`)."""

    def nearest(self, points_xy: np.ndarray, targets: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Position in ``targets`` of each point's nearest target (-1 if none) and the distance."""


class MemoryJoins:
    """The joins done in this process: STRtree point-in-polygon and a KD-tree."""

    def assign(self, points: np.ndarray, polygons: gpd.GeoDataFrame, tolerance_m: float) -> pd.DataFrame:
        return assign.assign_areas(points, polygons, tolerance_m)

    def nearest(self, points_xy: np.ndarray, targets: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        distance, index = coverage.nearest_distance(
            points_xy, shapely.get_coordinates(np.asarray(targets.geometry.values))
        )
        return np.asarray(index), np.asarray(distance)
