"""Small vectorized geometry helpers shared by the generator and the importers."""

from __future__ import annotations

import numpy as np
import shapely


def as_multipolygons(geoms: np.ndarray) -> np.ndarray:
    """The polygon parts of each geometry as one MultiPolygon; an empty MultiPolygon where none.

    Lines and points (which ``make_valid`` or a clip may leave behind) are dropped.
    """
    geoms = np.asarray(geoms, dtype=object)
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_type_id(parts) == 3
    out = np.array([shapely.MultiPolygon()] * len(geoms), dtype=object)
    if keep.any():
        shapely.multipolygons(parts[keep], indices=index[keep], out=out)
    return out
