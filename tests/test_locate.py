"""Ledgers without coordinates (issue 21, part 1): each row is placed by the best evidence it
carries — its coordinates, the place it names, a place its address names, its stated
community or street — or kept unplaced, and says how; the analysis trusts the stated area
over an approximate point and leaves unplaced organizations out of every distance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import shapely

from app.intake import import_file
from app.services.analysis import Parameters, run_analysis
from app.store import Store, area_stats

from .test_intake import areas_geojson, snapshot, write

DISTRICT = shapely.box(102.60, 24.90, 102.80, 25.10)
STREET_A = shapely.box(102.60, 24.90, 102.70, 25.10)
STREET_B = shapely.box(102.70, 24.90, 102.80, 25.10)
#: Two communities of the same name, one in each street; one of another name.
WEST = shapely.box(102.60, 24.90, 102.70, 25.00)
EAST = shapely.box(102.70, 24.90, 102.80, 25.00)
NORTH = shapely.box(102.60, 25.00, 102.70, 25.10)
JINDING = shapely.box(102.620, 24.920, 102.622, 24.922)
#: One building name in two communities.
XINGHE_WEST = shapely.box(102.650, 24.950, 102.651, 24.951)
XINGHE_EAST = shapely.box(102.750, 24.950, 102.751, 24.951)
TOWER = shapely.Point(102.66, 25.05)
HEADER = "组织编号,组织名称,组织类型,地址,经度,纬度,所属社区,所属街道,所在楼宇"


@pytest.fixture
def city(store: Store, tmp_path: Path) -> Store:
    areas = areas_geojson(
        tmp_path,
        [
            ("530102", "五华区", "district", None, DISTRICT),
            ("530102001", "华山街道", "street", "530102", STREET_A),
            ("530102002", "护国街道", "street", "530102", STREET_B),
            ("530102001001", "翠湖社区", "community", None, WEST),
            ("530102002001", "翠湖社区", "community", None, EAST),
            ("530102001002", "圆通社区", "community", None, NORTH),
        ],
    )
    assert import_file(store, "areas", areas).ok
    places = write(
        tmp_path / "places.csv",
        "场所编号,场所名称,场所类型,wkt\n"
        f'B1,金鼎大厦,楼宇,"{JINDING.wkt}"\n'
        f'B2,星河大厦,楼宇,"{XINGHE_WEST.wkt}"\n'
        f'B3,星河大厦,楼宇,"{XINGHE_EAST.wkt}"\n'
        f"B4,科技大楼,楼宇,{TOWER.wkt}\n",
    )
    assert import_file(store, "places", places).ok
    return store


def write_ledger(tmp_path: Path, *rows: str) -> Path:
    """A ledger CSV of ``HEADER``'s columns with ``rows``."""
    return write(tmp_path / "ledger.csv", "\n".join([HEADER, *rows]) + "\n")


def stored_positions(store: Store) -> pd.DataFrame:
    """How each stored organization was placed, by ``org_id`` (geometry included)."""
    frame = store.read_frame("organizations", ["org_id", "located_by", "location_precision_m", "stated_area_code"])
    return frame.set_index("org_id")


def test_each_row_is_placed_by_the_best_evidence_it_carries(city: Store, tmp_path):
    report = import_file(
        city,
        "orgs",
        write_ledger(
            tmp_path,
            "X1,坐标公司,企业,,102.61,24.91,,,",
            "X2,场所编号公司,企业,,,,,,B4",
            "X3,地址公司,企业,云南省昆明市五华区金鼎大厦12楼,,,,,",
            "X4,社区代码公司,企业,某路1号,,,530102001002,,",
            "X5,街道名称公司,企业,某路2号,,,,护国街道,",
            "X6,无从定位公司,企业,北京市朝阳区建国路1号,,,,,",
        ),
    )
    assert report.ok and report.inserted == 6, report.issues
    placed = stored_positions(city)
    assert placed["located_by"].to_dict() == {
        "X1": "coordinates",
        "X2": "place",
        "X3": "address",
        "X4": "community",
        "X5": "street",
        "X6": "unplaced",
    }
    point = placed.geometry
    assert point["X1"].equals(shapely.Point(102.61, 24.91))
    # A lone unit of a point-only building sits on it.
    assert point["X2"].distance(TOWER) < 1e-9
    assert JINDING.contains(point["X3"]) and NORTH.contains(point["X4"]) and STREET_B.contains(point["X5"])
    assert point["X6"] is None
    # Precision: none for given coordinates; the size of the building or area otherwise.
    precision = placed["location_precision_m"]
    assert pd.isna(precision["X1"]) and 100 < precision["X3"] < 200 and 5_000 < precision["X4"] < 7_000
    assert placed.loc["X4", "stated_area_code"] == "530102001002"
    assert placed.loc["X5", "stated_area_code"] == "530102002"
    unplaced = [i for i in report.issues if i.row == 7]
    assert unplaced and unplaced[0].severity == "warning" and "待定位" in unplaced[0].zh


def test_a_building_in_two_communities_is_taken_in_the_stated_one_else_reported(city: Store, tmp_path):
    report = import_file(
        city,
        "orgs",
        write_ledger(tmp_path, "Y1,东边公司,企业,星河大厦3楼,,,530102002001,,", "Y2,不明公司,企业,星河大厦5楼,,,,,"),
    )
    assert report.ok, report.issues
    placed = stored_positions(city)
    assert placed.loc["Y1", "located_by"] == "address" and XINGHE_EAST.contains(placed.geometry["Y1"])
    assert placed.loc["Y2", "located_by"] == "unplaced"
    assert any(i.row == 3 and "多个场所" in i.zh for i in report.issues)


@pytest.mark.parametrize(
    "community, words",
    [("翠湖社区", "请填写12位代码"), ("530199001001", "不在本市"), ("太和社区", "没有这个社区")],
)
def test_a_stated_community_that_is_not_one_of_the_city_is_refused(city: Store, tmp_path, community, words):
    before = snapshot(city)
    report = import_file(city, "orgs", write_ledger(tmp_path, f"Z1,公司,企业,某路,,,{community},,"))
    assert not report.ok and snapshot(city) == before
    assert any(i.row == 2 and i.column == "community" and words in i.zh for i in report.errors), report.issues


def test_fifty_units_of_one_building_are_spread_inside_it_and_stay_put(city: Store, tmp_path):
    rows = [f"U{i:02d},单位{i},企业,金鼎大厦{i}室,,,,," for i in range(50)]
    assert import_file(city, "orgs", write_ledger(tmp_path, *rows)).ok
    points = stored_positions(city).geometry
    assert all(JINDING.contains(p) for p in points)
    assert len({(round(p.x, 7), round(p.y, 7)) for p in points}) == 50
    again = import_file(city, "orgs", write_ledger(tmp_path, *rows))
    assert again.ok and again.unchanged == 50


def test_an_empty_pair_of_coordinates_is_placed_but_half_a_pair_is_an_error(city: Store, tmp_path):
    report = import_file(city, "orgs", write_ledger(tmp_path, "H1,半坐标公司,企业,,102.61,,530102001001,,"))
    assert not report.ok and any(i.column == "lat" for i in report.errors)


def test_staff_of_a_community_place_what_they_leave_unsaid_in_their_own(city: Store, tmp_path):
    scoped = city.scoped("530102001002")
    report = import_file(scoped, "orgs", write_ledger(tmp_path, "S1,本社区公司,企业,某巷,,,,,"))
    assert report.ok, report.issues
    placed = stored_positions(city)
    assert placed.loc["S1", "located_by"] == "community" and NORTH.contains(placed.geometry["S1"])
    # Naming another community puts the row outside their jurisdiction: refused.
    refused = import_file(scoped, "orgs", write_ledger(tmp_path, "S2,别处公司,企业,某巷,,,530102001001,,"))
    assert not refused.ok and any("管辖范围" in i.zh for i in refused.errors)


def test_the_analysis_trusts_the_stated_area_and_leaves_unplaced_ones_out_of_distances(city: Store, tmp_path):
    centers = write(
        tmp_path / "centers.csv",
        "阵地编号,阵地名称,层级,承载能力,所在区划代码,经度,纬度\nC1,中心,community,50,530102001001,102.65,24.95\n",
    )
    assert import_file(city, "centers", centers).ok
    report = import_file(
        city,
        "orgs",
        write_ledger(
            tmp_path,
            # In 金鼎大厦 (inside 翠湖社区 west) but stated as 圆通社区: the ledger's word wins.
            "A1,楼宇公司,企业,金鼎大厦,,,530102001002,,",
            "A2,无从定位公司,企业,,,,,,",
            "A3,坐标公司,企业,,102.61,24.91,,,",
            "A4,社区公司,企业,,,,530102001002,,",
        ),
    )
    assert report.ok, report.issues
    run_id, results = run_analysis(city, Parameters())
    rows = results.organizations.set_index("org_id")
    assert rows.loc["A1", "community_code"] == "530102001002"
    assert rows.loc["A3", "community_code"] == "530102001001"
    assert pd.isna(rows.loc["A2", "community_code"]) and bool(rows.loc["A2", "unassigned"])
    assert pd.isna(rows.loc["A2", "reach_distance_m"]) and pd.isna(rows.loc["A2", "center_id"])
    assert rows.loc["A3", "reach_distance_m"] > 0
    assert results.summary["unplaced"] == 1 and results.summary["organizations"] == 4
    # Every rate table says how many have no position, or only their stated area.
    tallies = {code: area_stats.figures(city, code, run_id) for code in (None, "530102001", "530102001002")}
    assert [(t["unplaced"], t["approximate"], t["orgs"]) for t in tallies.values()] == [(1, 1, 4), (0, 1, 3), (0, 1, 2)]


def test_the_example_ledger_imports_on_the_demo_and_shows_every_way_of_placing(store: Store):
    from app.services.demo import load_demo

    load_demo(store, n_orgs=5000, seed=42)
    example = Path(__file__).resolve().parents[1] / "data" / "examples" / "两新组织台账_无坐标.xlsx"
    report = import_file(store, "orgs", example)
    assert report.ok and report.inserted == 9, report.issues
    assert report.located == {
        "coordinates": 1,
        "place": 2,
        "address": 2,
        "community": 2,
        "street": 1,
        "unplaced": 1,
    }
    assert "待定位 unplaced 1" in report.summary()


def test_a_ledger_missing_a_required_column_is_reported_not_a_crash(city: Store, tmp_path):
    report = import_file(city, "orgs", write(tmp_path / "ledger.csv", "组织编号,地址\nM1,金鼎大厦\n"))
    assert not report.ok and not report.located
    assert {i.column for i in report.errors} >= {"name", "org_type"}
