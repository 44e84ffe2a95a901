"""Coordinate conversions against published reference values (listed in docs/domain.md)."""

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from app.services.demo import DATA_DIR
from geo import crs

# (lon, lat) WGS-84 → GCJ-02, as published (docs/domain.md, "Coordinates").
WGS_TO_GCJ = [
    ((121.5272106, 31.1774276), (121.531541859215, 31.17530398364597)),
    ((113.912316, 22.543847), (113.9171764808363, 22.540796131694766)),
    ((116.377817, 39.911954), (116.38404722455657, 39.91334545536069)),
    ((116.404, 39.915), (116.41024449916938, 39.91640428150164)),
]
GEOD = pyproj.Geod(ellps="WGS84")


def metres(lon1, lat1, lon2, lat2) -> np.ndarray:
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.mark.parametrize(("wgs", "gcj"), WGS_TO_GCJ)
def test_wgs84_to_gcj02_matches_published_values(wgs, gcj):
    lon, lat = crs.wgs84_to_gcj02(*wgs)
    assert lon == pytest.approx(gcj[0], abs=1e-9)
    assert lat == pytest.approx(gcj[1], abs=1e-9)


def test_gcj02_to_bd09_matches_published_value():
    # docs/domain.md: the point (116.404, 39.915) taken as GCJ-02 gives this BD-09 position.
    lon, lat = crs.gcj02_to_bd09(116.404, 39.915)
    assert (float(lon), float(lat)) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)


def test_vectorized_over_columns_and_inverse_within_half_a_metre():
    rng = np.random.default_rng(0)
    lon = rng.uniform(73.5, 134.5, 10_000)
    lat = rng.uniform(18.5, 53.0, 10_000)
    for forward, inverse in (
        (crs.wgs84_to_gcj02, crs.gcj02_to_wgs84),
        (crs.wgs84_to_bd09, crs.bd09_to_wgs84),
    ):
        back = inverse(*forward(lon, lat))
        assert metres(lon, lat, *back).max() < 0.5


def test_identity_outside_china():
    lon, lat = np.array([2.35, -74.0, 139.8]), np.array([48.85, 40.7, 35.7])
    assert np.array_equal(crs.wgs84_to_gcj02(lon, lat)[0], lon)
    assert np.array_equal(crs.bd09_to_wgs84(lon, lat)[1], lat)


def test_shift_in_kunming_is_hundreds_of_metres():
    lon, lat = crs.wgs84_to_gcj02(102.7040, 25.0460)
    assert 200 < metres(102.7040, 25.0460, lon, lat) < 800


def test_kunming_boundaries_round_trip_within_half_a_metre():
    gcj = gpd.read_file(DATA_DIR / "kunming_boundaries_gcj02.geojson").geometry.values
    back = crs.from_wgs84(crs.to_wgs84(gcj, "gcj02"), "gcj02")
    a, b = shapely.get_coordinates(gcj), shapely.get_coordinates(back)
    assert len(a) > 10_000
    assert metres(a[:, 0], a[:, 1], b[:, 0], b[:, 1]).max() < 0.5


def test_bd09_and_gcj02_inputs_of_one_point_land_together():
    lon, lat = np.array([102.70, 102.80]), np.array([25.04, 24.88])
    from_gcj = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    from_bd = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert metres(*from_gcj, *from_bd).max() < 0.5


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("WGS84", "wgs84"),
        ("cgcs2000", "wgs84"),
        ("EPSG:4490", "wgs84"),
        ("gcj02", "gcj02"),
        ("BD09", "bd09"),
        ("epsg:4547", "EPSG:4547"),
    ],
)
def test_canonical_crs_names(name, expected):
    assert crs.canonical_crs(name) == expected


def test_unknown_crs_name_is_rejected():
    with pytest.raises(ValueError, match="unknown CRS"):
        crs.canonical_crs("mars")


def test_metric_zone_of_kunming_is_cgcs2000_cm_102():
    assert crs.metric_epsg(102.7) == 4543
    assert "CM 102E" in pyproj.CRS.from_epsg(crs.metric_epsg(102.7)).name
    assert "CM 117E" in pyproj.CRS.from_epsg(crs.metric_epsg(116.4)).name
