"""The walking network (步行路网): importing roads, on both backends, and what is refused."""

from pathlib import Path

import geopandas as gpd
import pytest
import shapely

from app.intake import import_file
from app.store import Store

from .test_intake import loaded, snapshot  # noqa: F401  (the fixture and the checksum)


def roads_file(tmp: Path, geometries, file="roads.geojson", **columns) -> Path:
    frame = gpd.GeoDataFrame(
        {"road_id": [f"R{i}" for i in range(len(geometries))], **columns}, geometry=list(geometries), crs=4326
    )
    frame.to_file(tmp / file, driver="GeoJSON")
    return tmp / file


def test_roads_import_as_lines_with_their_columns(loaded: Store, tmp_path: Path):  # noqa: F811
    lines = [
        shapely.LineString([(102.61, 24.96), (102.64, 24.99)]),
        shapely.MultiLineString([[(102.62, 24.97), (102.62, 24.99)], [(102.62, 24.99), (102.63, 24.99)]]),
        shapely.LineString([(102.605, 24.955), (102.645, 24.955)]),
    ]
    path = roads_file(tmp_path, lines, name=["翠湖路", "环城路", None], walkable=["是", "是", "否"])
    report = import_file(loaded, "roads", path)
    assert report.ok, [str(i) for i in report.issues]
    stored = loaded.read_frame("roads", ["road_id", "name", "walkable", "generated"]).sort_values("road_id")
    assert stored["road_id"].tolist() == ["R0", "R1", "R2"] and stored["walkable"].tolist() == [True, True, False]
    assert set(stored.geometry.geom_type) == {"MultiLineString"} and not stored["generated"].any()
    assert shapely.equals(stored.geometry.iloc[1], lines[1])


@pytest.mark.parametrize(
    "geometry, words",
    [
        (shapely.box(102.61, 24.96, 102.62, 24.97), "Polygon"),
        (shapely.Point(102.61, 24.96), "Point"),
        (shapely.LineString([(102.61, 24.96), (102.61, 24.96)]), "长度为零"),
    ],
)
def test_roads_that_are_not_lines_are_refused_by_row(loaded: Store, tmp_path: Path, geometry, words):  # noqa: F811
    good = shapely.LineString([(102.61, 24.96), (102.64, 24.99)])
    before = snapshot(loaded)
    report = import_file(loaded, "roads", roads_file(tmp_path, [good, geometry]))
    assert not report.ok and not report.written
    assert any(i.row == 2 and (words in i.zh or words in str(i.value)) for i in report.errors), [
        str(i) for i in report.errors
    ]
    assert snapshot(loaded) == before
