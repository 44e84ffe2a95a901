"""GeoJSON responses assembled from vectorized geometry encoding (no per-feature geometry objects)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import shapely
from flask import Response


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def feature_collection(
    frame: gpd.GeoDataFrame,
    columns: Sequence[str],
    grid_size: float = 1e-6,
    extra: dict | None = None,
) -> str:
    """A FeatureCollection string of ``frame``'s geometries with ``columns`` as properties.

    Coordinates are snapped to ``grid_size`` degrees (1e-6° ≈ 0.1 m) to keep answers small.
    """
    geoms = shapely.set_precision(np.asarray(frame.geometry.values), grid_size)
    encoded = shapely.to_geojson(geoms)
    records = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    features = (
        f'{{"type":"Feature","geometry":{g},"properties":{_dumps(p)}}}'
        for g, p in zip(encoded, records.to_dict("records"), strict=True)
    )
    return _collection(features, extra)


def point_collection(rows: Iterable[dict], extra: dict | None = None) -> str:
    """A FeatureCollection of point rows carrying ``lon``/``lat`` keys; the rest are properties."""
    features = (
        '{"type":"Feature","geometry":{"type":"Point","coordinates":'
        f'[{r["lon"]:.6f},{r["lat"]:.6f}]}},"properties":{_dumps(_without_xy(r))}}}'
        for r in rows
    )
    return _collection(features, extra)


def _without_xy(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("lon", "lat")}


def _collection(features: Iterable[str], extra: dict | None) -> str:
    head = '{"type":"FeatureCollection",'
    if extra:
        head += _dumps(extra)[1:-1] + ","
    return head + '"features":[' + ",".join(features) + "]}"


def geojson_response(body: str) -> Response:
    """A ``application/geo+json`` response."""
    return Response(body, mimetype="application/geo+json")
