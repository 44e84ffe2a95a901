"""Chinese coordinate systems: WGS-84, GCJ-02 and BD-09, and the metric CRS of a city.

Everything here is vectorized over numpy arrays (one call converts a whole column) and over
shapely geometries (every vertex of every polygon in one call).

The GCJ-02 offset is the publicly documented obfuscation polynomial (Krasovsky ellipsoid,
a = 6378245 m, e² = 0.00669342162296594323); BD-09 is GCJ-02 with a further polar shift.
Outside China both are the identity, as in the AMap and Baidu clients.
CGCS2000 (EPSG:4490) is treated as equal to WGS-84, which it is at map accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import shapely

_A = 6378245.0
_EE = 0.00669342162296594323
_X_PI = np.pi * 3000.0 / 180.0

#: Names accepted for the source CRS of input data, mapped to canonical names.
#: Metres in a degree of latitude, and of longitude on the equator (WGS-84, mean values: good
#: to a fraction of a per cent for distances of a city).
METRES_PER_DEGREE_LAT = 110_574.0
METRES_PER_DEGREE_LON = 111_320.0

CRS_ALIASES = {
    "wgs84": "wgs84",
    "epsg:4326": "wgs84",
    "gps": "wgs84",
    "cgcs2000": "wgs84",
    "epsg:4490": "wgs84",
    "tianditu": "wgs84",
    "gcj02": "gcj02",
    "amap": "gcj02",
    "bd09": "bd09",
    "baidu": "bd09",
}


def outside_china(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """True where a point lies outside the rough bounding box in which GCJ-02 applies."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS-84 in degrees at WGS-84 position (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    sq = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (
        -100.0
        + 2.0 * x
        + 3.0 * y
        + 0.2 * y * y
        + 0.1 * x * y
        + 0.2 * sq
        + common
        + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
        + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    )
    dlon = (
        300.0
        + x
        + 2.0 * y
        + 0.1 * x * x
        + 0.1 * x * y
        + 0.1 * sq
        + common
        + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
        + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    )
    rad = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_A / sqrt_magic * np.cos(rad) * np.pi)
    out = outside_china(lon, lat)
    return np.where(out, 0.0, dlon), np.where(out, 0.0, dlat)


def wgs84_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS-84 longitude/latitude (degrees) to GCJ-02 (AMap, Tencent)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    dlon, dlat = _offset(lon, lat)
    return lon + dlon, lat + dlat


def _invert(
    forward: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lon: np.ndarray,
    lat: np.ndarray,
    tolerance_deg: float = 1e-9,
    max_iter: int = 20,
) -> tuple[np.ndarray, np.ndarray]:
    """Invert a near-identity forward shift by fixed-point iteration.

    The shift varies slowly (metres per kilometre), so each step gains several digits;
    1e-9° is about 0.1 mm, far below the 0.5 m the intake promises.
    """
    target_lon = np.asarray(lon, dtype=float)
    target_lat = np.asarray(lat, dtype=float)
    x, y = target_lon.copy(), target_lat.copy()
    for _ in range(max_iter):
        fx, fy = forward(x, y)
        ex, ey = fx - target_lon, fy - target_lat
        x = x - ex
        y = y - ey
        if not np.any(np.abs(ex) > tolerance_deg) and not np.any(np.abs(ey) > tolerance_deg):
            break
    return x, y


def gcj02_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to WGS-84, iterated to about 0.1 mm."""
    return _invert(wgs84_to_gcj02, lon, lat)


def gcj02_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert GCJ-02 to BD-09 (Baidu)."""
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    bx, by = z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006
    out = outside_china(x, y)
    return np.where(out, x, bx), np.where(out, y, by)


def bd09_to_gcj02(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 to GCJ-02, iterated (the closed-form inverse is only good to ~1 m)."""
    return _invert(gcj02_to_bd09, lon, lat)


def wgs84_to_bd09(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS-84 to BD-09."""
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert BD-09 to WGS-84."""
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


_TO_WGS84 = {"gcj02": gcj02_to_wgs84, "bd09": bd09_to_wgs84}
_FROM_WGS84 = {"gcj02": wgs84_to_gcj02, "bd09": wgs84_to_bd09}


def canonical_crs(name: str) -> str:
    """Return 'wgs84', 'gcj02', 'bd09' or 'EPSG:n' for a user-supplied CRS name.

    Raises
    ------
    ValueError
        If the name is neither a known alias nor an ``EPSG:n`` code.
    """
    key = name.strip().lower()
    if key in CRS_ALIASES:
        return CRS_ALIASES[key]
    if key.startswith("epsg:") and key[5:].isdigit():
        return f"EPSG:{int(key[5:])}"
    raise ValueError(f"unknown CRS {name!r}; use wgs84, cgcs2000, gcj02, bd09 or EPSG:n")


def _transform_geometries(geoms, func):
    def apply(coords: np.ndarray) -> np.ndarray:
        x, y = func(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return shapely.transform(geoms, apply)


def to_wgs84(geoms, crs: str):
    """Convert shapely geometries (array or single) from ``crs`` ('gcj02', 'bd09', 'wgs84') to WGS-84."""
    crs = canonical_crs(crs)
    if crs == "wgs84":
        return geoms
    return _transform_geometries(geoms, _TO_WGS84[crs])


def from_wgs84(geoms, crs: str):
    """Convert shapely geometries from WGS-84 to ``crs`` ('gcj02', 'bd09', 'wgs84')."""
    crs = canonical_crs(crs)
    if crs == "wgs84":
        return geoms
    return _transform_geometries(geoms, _FROM_WGS84[crs])


def from_wgs84_xy(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert WGS-84 coordinate columns to ``crs`` ('gcj02', 'bd09', 'wgs84')."""
    crs = canonical_crs(crs)
    return (np.asarray(lon, float), np.asarray(lat, float)) if crs == "wgs84" else _FROM_WGS84[crs](lon, lat)


def to_wgs84_xy(lon: np.ndarray, lat: np.ndarray, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Convert coordinate columns in ``crs`` ('gcj02', 'bd09', 'wgs84') to WGS-84."""
    crs = canonical_crs(crs)
    return (np.asarray(lon, float), np.asarray(lat, float)) if crs == "wgs84" else _TO_WGS84[crs](lon, lat)


def metric_epsg(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Kruger zone (CM in the code) for a longitude.

    Zones 25–45 with central meridians 75°E–135°E are EPSG:4534–4554; Kunming (102.7°E,
    CM 102°E) gives EPSG:4543.
    """
    cm = int(round(lon / 3.0)) * 3
    cm = min(max(cm, 75), 135)
    return 4534 + (cm - 75) // 3
