"""Street and community staff cannot widen their own jurisdiction, nor write outside it
(issue 19, finding 2), on both backends."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import shapely

from app.intake import import_file
from app.store import Store

from ..test_intake import COMMUNITY, DISTRICT, GOOD_ROWS, HEADER, snapshot, write

CUIHU = "530102001001"
PROVINCE = shapely.box(97.0, 21.0, 106.0, 29.0)


def _geojson(path: Path, rows: list[dict], geoms: list) -> Path:
    gpd.GeoDataFrame(rows, geometry=geoms, crs=4326).to_file(path, driver="GeoJSON")
    return path


def _import(store: Store, kind: str, path: Path):
    before = snapshot(store)
    report = import_file(store.scoped(CUIHU), kind, path)
    return report, snapshot(store) == before


def _area(code: str, name: str, level: str, parent: str | None) -> dict:
    return {"code": code, "name": name, "level": level, "parent_code": parent}


def test_community_staff_cannot_redraw_their_own_community_to_cover_the_province(loaded, tmp_path):
    path = _geojson(tmp_path / "areas.geojson", [_area(CUIHU, "翠湖社区", "community", "530102001")], [PROVINCE])
    report, unchanged = _import(loaded, "areas", path)
    assert not report.ok and unchanged
    assert any("不能修改本辖区的边界" in i.zh for i in report.errors)
    # Scoped reads still follow the stored polygon: one of the three organizations.
    assert len(loaded.scoped(CUIHU).read_frame("organizations", ["org_id"])) == 1


def test_community_staff_may_rename_their_community_without_redrawing_it(loaded, tmp_path):
    path = _geojson(tmp_path / "areas.geojson", [_area(CUIHU, "翠湖新社区", "community", "530102001")], [COMMUNITY])
    report, _ = _import(loaded, "areas", path)
    assert report.ok and report.updated == 1, [str(i) for i in report.issues]


def test_ancestors_and_neighbours_are_not_a_community_users_to_change(loaded, tmp_path):
    path = _geojson(tmp_path / "areas.geojson", [_area("530102", "五华区", "district", None)], [PROVINCE])
    report, unchanged = _import(loaded, "areas", path)
    assert not report.ok and unchanged


def test_a_new_grid_must_lie_inside_the_stored_jurisdiction(loaded, tmp_path):
    inside = shapely.box(102.61, 24.96, 102.64, 24.99)
    straddling = shapely.box(102.64, 24.96, 102.66, 24.99)
    rows = [_area(f"{CUIHU}001", "一网格", "grid", CUIHU), _area(f"{CUIHU}002", "二网格", "grid", CUIHU)]
    report, unchanged = _import(loaded, "areas", _geojson(tmp_path / "grids.geojson", rows, [inside, straddling]))
    assert not report.ok and unchanged
    assert [i.row for i in report.errors] == [2], [str(i) for i in report.errors]
    report, _ = _import(loaded, "areas", _geojson(tmp_path / "grid.geojson", rows[:1], [inside]))
    assert report.ok and report.inserted == 1


def test_a_place_covering_the_city_cannot_be_created_by_touching_the_jurisdiction(loaded, tmp_path):
    rows = [{"place_id": "PL1", "name": "全城大楼", "kind": "building"}]
    report, unchanged = _import(loaded, "places", _geojson(tmp_path / "places.geojson", rows, [DISTRICT]))
    assert not report.ok and unchanged
    assert any("不在您的管辖范围" in i.zh for i in report.errors)


def test_organizations_are_checked_against_the_stored_jurisdiction_not_one_in_the_file(loaded, tmp_path):
    # A2 lies in the street but outside 翠湖社区: refused, whatever polygon the same user sent before.
    path = write(tmp_path / "orgs.csv", "\n".join([HEADER, GOOD_ROWS[1].replace("金汇", "改名")]) + "\n")
    report, unchanged = _import(loaded, "orgs", path)
    assert not report.ok and unchanged
