"""GeoJSON responses assembled from vectorized geometry encoding (no per-feature geometry objects)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import geopandas as gpd
import numpy as np
import shapely
from flask import Response

from geo.crs import from_wgs84, from_wgs84_xy


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def feature_collection(
    frame: gpd.GeoDataFrame,
    columns: Sequence[str],
    grid_size: float = 1e-6,
    extra: dict | None = None,
    crs: str = "wgs84",
) -> str:
    """A FeatureCollection string of ``frame``'s geometries with ``columns`` as properties.

    Coordinates are converted to ``crs`` (``gcj02`` for AMap tiles) and snapped to
    ``grid_size`` degrees (1e-6° ≈ 0.1 m) to keep answers small.
    """
    geoms = shapely.set_precision(from_wgs84(np.asarray(frame.geometry.values), crs), grid_size)
    encoded = shapely.to_geojson(geoms)
    records = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None)
    features = (
        f'{{"type":"Feature","geometry":{g},"properties":{_dumps(p)}}}'
        for g, p in zip(encoded, records.to_dict("records"), strict=True)
    )
    return _collection(features, extra)


def point_collection(rows: list[dict], extra: dict | None = None, crs: str = "wgs84") -> str:
    """A FeatureCollection of point rows carrying ``lon``/``lat`` keys (WGS-84, shown in ``crs``);
    the rest are properties."""
    rows = to_display(rows, crs)
    features = (
        '{"type":"Feature","geometry":{"type":"Point","coordinates":'
        f'[{r["lon"]:.6f},{r["lat"]:.6f}]}},"properties":{_dumps(_without_xy(r))}}}'
        for r in rows
    )
    return _collection(features, extra)


def to_display(rows: list[dict], crs: str) -> list[dict]:
    """Rows with their ``lon``/``lat`` converted from WGS-84 to ``crs``, all at once."""
    if crs == "wgs84" or not rows:
        return rows
    lon, lat = from_wgs84_xy(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]), crs)
    return [{**r, "lon": float(x), "lat": float(y)} for r, x, y in zip(rows, lon, lat, strict=True)]


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
