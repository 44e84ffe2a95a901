"""The walking network (步行路网): importing roads, on both backends, and what is refused."""

from pathlib import Path

import geopandas as gpd
import pandas as pd
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


def test_a_run_walks_along_the_roads_and_says_when_it_cannot(loaded: Store, tmp_path: Path):  # noqa: F811
    from app.services.analysis import Parameters, load_inputs, run_analysis, write_outputs
    from geo import walking

    centers = gpd.GeoDataFrame(
        {
            "center_id": ["C1"],
            "name": ["翠湖社区党群服务中心"],
            "level": ["community"],
            "capacity": [0],
            "source_crs": ["wgs84"],
        },
        geometry=[shapely.Point(102.63, 24.97)],
        crs=4326,
    )
    with loaded.connect() as conn:
        loaded.insert_frame(conn, "service_centers", centers)
    # Without roads: straight line, and the run says so.
    _, results = run_analysis(loaded, Parameters())
    assert results.summary["reach"] == "line" and "未载入步行路网" in results.summary["reach_note"]
    assert results.organizations["walk_m"].isna().all()
    # A street grid over the community: every organization's walk is the engine's, stored and written.
    lines = [shapely.LineString([(102.60, y), (102.70, y)]) for y in (24.96, 24.97, 24.98, 25.04, 25.05)]
    lines += [shapely.LineString([(x, 24.95), (x, 25.10)]) for x in (102.62, 102.63, 102.70, 102.71)]
    assert import_file(loaded, "roads", roads_file(tmp_path, lines)).ok
    inputs = load_inputs(loaded)
    run_id, results = run_analysis(loaded, Parameters())
    assert results.summary["reach"] == "walk"
    orgs = inputs.orgs.sort_values("id")
    xy = shapely.get_coordinates(orgs.geometry.values)
    expected = walking.nearest_center(
        walking.build_network(inputs.roads.geometry.values), xy, shapely.get_coordinates(inputs.centers.geometry.values)
    )
    frame = results.organizations.set_index("org_id").loc[orgs["org_id"]]
    assert frame["walk_m"].to_numpy() == pytest.approx(expected.walk_m.round(1), abs=0.05, nan_ok=True)
    walked = frame["walk_m"].notna()
    assert 0 < walked.sum() < len(frame)  # one organization sits on a street that joins no other
    assert (frame["walk_m"][walked] >= frame["reach_distance_m"][walked] - 0.1).all()  # never shorter than a line
    assert set(frame["walk_center_id"][walked]) == {"C1"} and frame["walk_center_id"][~walked].isna().all()
    assert results.summary["walk_unreachable"] == int((~walked).sum())
    # C1's 15-minute catchment holds the organizations it reaches within 15 minutes, and is stored.
    catchment = results.catchments[results.catchments["kind"] == "walk_catchment"]
    assert len(catchment) == 1 and catchment["properties"].iloc[0]["center_id"] == "C1"
    assert catchment["count"].iloc[0] == int((frame["walk_m"] <= 15 * 60 * 1.2).sum())
    stored = loaded.read_frame("run_features", ["kind"], where={"run_id": run_id})
    assert set(stored["kind"]) >= {"walk_catchment", "walk_reach"}
    # The area figures put both side by side: reached within 1000 m by line, within 15 minutes on foot.
    from app.store import area_stats

    scoped = results.organizations[results.organizations["in_scope"].astype(bool)]
    figures = area_stats.reach_figures(loaded, None, run_id, 1000, 1080)
    line_ok, walk_ok = scoped["reach_distance_m"] <= 1000, scoped["walk_m"] <= 1080
    assert figures == {
        "placed": len(scoped),
        "line": int(line_ok.sum()),
        "walk": int(walk_ok.sum()),
        "line_only": int((line_ok & ~walk_ok).sum()),
    }
    # The layer 直线可达、步行不可达 draws exactly those a ruler reaches and a walk does not.
    from app import create_app

    from .conftest import signed_in

    client = signed_in(create_app({"DATABASE_URL": loaded.url, "TESTING": True, "HONGTU_SERVICE_RADIUS_M": 20_000}))
    drawn = client.get("/map/data/line_only?bbox=102.5,24.9,102.8,25.2&zoom=14").get_json()["features"]
    every = results.organizations
    expected = every[(every["reach_distance_m"] <= 20_000) & ~(every["walk_m"] <= 1080)]["org_id"]
    assert sorted(f["properties"]["org_id"] for f in drawn) == sorted(expected) and len(expected)
    out = write_outputs(loaded, run_id, tmp_path / "out")
    table = pd.read_csv([p for p in out if p.name == "organizations.csv"][0])
    assert {"walk_m", "walk_center_id"} <= set(table.columns)
    # Asked for straight lines, the run measures straight lines even with roads.
    _, line = run_analysis(loaded, Parameters(reach="line"))
    assert line.summary["reach"] == "line" and line.organizations["walk_m"].isna().all()
