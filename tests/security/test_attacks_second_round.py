"""What an independent attack on the fixed service still found, each now refused (issue 19)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import shapely

from app.intake import import_file
from app.intake.children import _TURNS, MAX_CHILDREN
from app.intake.issues import IntakeError
from app.store import Store, accounts

from ..test_intake import COMMUNITY, GOOD_ROWS, HEADER, snapshot, write

CUIHU = "530102001001"
ATTACKS = Path(__file__).resolve().parent.parent / "data" / "attacks"


def _area_csv(path: Path, polygon) -> Path:
    return write(path, f'code,name,level,parent_code,wkt\n{CUIHU},翠湖社区,community,530102001,"{polygon.wkt}"\n')


def test_small_redraws_repeated_do_not_grow_a_community(loaded: Store, tmp_path):
    scoped = loaded.scoped(CUIHU)
    for n in range(5):
        stored = loaded.read_frame("areas", [], where={"code": CUIHU}).geometry.iloc[0]
        grown = shapely.affinity.scale(stored, 1.0018, 1.0018)  # each vertex moves under 1e-4 degrees
        import_file(scoped, "areas", _area_csv(tmp_path / f"a{n}.csv", grown))
    after = loaded.read_frame("areas", [], where={"code": CUIHU}).geometry.iloc[0]
    assert abs(after.area - COMMUNITY.area) < 1e-12


def test_a_place_reaching_over_the_boundary_is_not_one_communitys_to_change(loaded: Store, tmp_path):
    straddling = "POLYGON((102.64 24.96,102.66 24.96,102.66 24.98,102.64 24.98,102.64 24.96))"
    path = write(tmp_path / "places.csv", f'place_id,name,kind,wkt\nPX,跨界园区,park,"{straddling}"\n')
    assert import_file(loaded, "places", path).ok
    renamed = write(tmp_path / "p2.csv", f'place_id,name,kind,wkt\nPX,改名,park,"{straddling}"\n')
    before = snapshot(loaded)
    report = import_file(loaded.scoped(CUIHU), "places", renamed, dry_run=True)
    assert not report.ok and any("管辖范围外" in i.zh for i in report.errors) and snapshot(loaded) == before


def test_knocking_from_an_address_does_not_keep_that_address_locked(store: Store, monkeypatch):
    from datetime import timedelta

    from app import create_app

    from .test_accounts import _login, _new_user

    app = create_app({"DATABASE_URL": store.url, "TESTING": True})
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.6.6.6"
    for n in range(accounts.MAX_FAILED_PER_ADDRESS):
        _login(client, f"nobody-{n}", "Wrong-guess-1")
    user = _new_user(store)["username"]
    assert _login(client, user).status_code == 429
    now = accounts._now
    for minutes in range(1, 4):
        monkeypatch.setattr(accounts, "_now", lambda m=minutes: now() + timedelta(minutes=m * 0.75))
        _login(client, user)  # refused while locked: it must not move the lock on
    monkeypatch.setattr(accounts, "_now", lambda: now() + timedelta(minutes=3))
    assert _login(client, user).status_code == 302


def test_a_virtual_table_is_judged_by_its_module_not_a_comment(tmp_path):
    from app.intake.spatial_file import _check_geopackage

    target = Path(shutil.copy(ATTACKS / "view.gpkg", tmp_path / "x.gpkg"))
    with sqlite3.connect(target) as conn:
        conn.execute("DROP VIEW areas_view")
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute(
            "INSERT INTO sqlite_master VALUES ('table', 'vx', 'vx', 0, "
            "'CREATE VIRTUAL TABLE vx USING VirtualOGR(''/etc/passwd'') -- USING rtree')"
        )
    try:
        _check_geopackage(target)
    except IntakeError as exc:
        assert "虚拟表" in str(exc)
    else:
        raise AssertionError("a VirtualOGR table passed as an R*Tree")


def test_a_crs_that_does_not_exist_and_an_empty_point_get_the_message_not_a_500(loaded: Store, tmp_path):
    path = write(tmp_path / "orgs.csv", f"{HEADER}\n{GOOD_ROWS[0]}\n")
    for crs in ("EPSG:99999999", "EPSG:0"):
        assert not import_file(loaded, "orgs", path, crs=crs).ok
    empty = write(tmp_path / "empty.csv", 'org_id,name,org_type,wkt\nE1,空点,企业,"POINT EMPTY"\n')
    assert not import_file(loaded, "orgs", empty).ok


def test_an_absurd_count_is_refused_not_stored_wrapped(loaded: Store, tmp_path):
    row = GOOD_ROWS[0].replace(",25,2,", ",99999999999999999999,2,")
    report = import_file(loaded, "orgs", write(tmp_path / "orgs.csv", f"{HEADER}\n{row}\n"))
    assert not report.ok and report.errors[0].column == "employees"


def test_a_zip_of_many_members_is_refused_before_unpacking(loaded: Store, tmp_path):
    import zipfile

    path = tmp_path / "orgs.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for n in range(500):
            archive.writestr(f"junk{n}.txt", b"")
        archive.writestr("orgs.shp", b"x")
    report = import_file(loaded, "orgs", path)
    assert not report.ok and "文件过多" in report.errors[0].zh


def test_child_processes_of_imports_are_bounded_in_number(loaded: Store, tmp_path, monkeypatch):
    from app.intake import children

    monkeypatch.setattr(children, "WAIT_SECONDS", 0.2)
    taken = [_TURNS.acquire(timeout=1) for _ in range(MAX_CHILDREN)]
    try:
        path = Path(shutil.copy(ATTACKS / "geojson_crs_link.geojson", tmp_path / "orgs.geojson"))
        report = import_file(loaded, "orgs", path)
        assert not report.ok and "请稍后重试" in report.errors[0].zh
    finally:
        for _ in taken:
            _TURNS.release()
