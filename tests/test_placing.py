"""Placing organizations by hand (issue 21, part 2): staff move an unplaced or approximate
organization by a map click, a chosen place or the phone's position; each move is recorded,
kept by later imports, and refused outside the city or the user's jurisdiction."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from app.intake import import_file
from app.services.placing import Placement, PlacementError, history, place, to_place
from app.store import Store
from geo.crs import wgs84_to_gcj02

from .test_intake import snapshot, write
from .test_locate import HEADER, JINDING, NORTH, WEST, city  # noqa: F401 (city: a fixture)

APPROXIMATE_OR_NOT = ("unplaced", "community", "street")


def _ledger(tmp_path: Path, *rows: str) -> Path:
    return write(tmp_path / "ledger.csv", "\n".join([HEADER, *rows]) + "\n")


@pytest.fixture
def ledger(city: Store, tmp_path: Path) -> Store:  # noqa: F811
    report = import_file(
        city,
        "orgs",
        _ledger(
            tmp_path,
            "P1,无址公司,企业,,,,,,",
            "P2,圆通社区公司,企业,某巷,,,530102001002,,",
            "P3,坐标公司,企业,,102.61,24.91,,,",
        ),
    )
    assert report.ok, report.issues
    return city


def _row(store: Store, org_id: str) -> dict:
    with store.connect() as conn:
        row = conn.execute(
            text(
                "SELECT located_by, location_precision_m, ST_X(geom) AS x, ST_Y(geom) AS y "
                "FROM organizations WHERE org_id = :o"
            ),
            {"o": org_id},
        ).one()
    return dict(row._mapping)


def test_the_list_shows_unplaced_first_then_approximate_and_keeps_to_the_jurisdiction(ledger: Store):
    frame, total = to_place(ledger, APPROXIMATE_OR_NOT)
    assert total == 2 and frame["org_id"].tolist() == ["P1", "P2"]
    # Community staff see their approximate organization; one without any area is the city's.
    mine, total = to_place(ledger.scoped("530102001002"), APPROXIMATE_OR_NOT)
    assert total == 1 and mine["org_id"].tolist() == ["P2"]
    assert to_place(ledger.scoped("530102001001"), APPROXIMATE_OR_NOT)[1] == 0


def test_a_click_places_an_organization_by_hand_and_records_who_when_from_and_to(ledger: Store):
    with ledger.connect() as conn:
        version = ledger.data_version(conn)
    entry = place(ledger, Placement("P1", "map", 102.65, 24.95), "staff1")
    row = _row(ledger, "P1")
    assert row["located_by"] == "manual" and (row["x"], row["y"]) == pytest.approx((102.65, 24.95))
    with ledger.connect() as conn:
        assert ledger.data_version(conn) > version  # the map's caches drop the old position
    assert entry["from_located_by"] == "unplaced" and entry["from_lon"] is None
    place(ledger, Placement("P1", "map", 102.66, 24.96), "staff2")
    past = history(ledger, "P1")
    assert past["username"].tolist() == ["staff2", "staff1"]
    assert past["from_located_by"].tolist() == ["manual", "unplaced"]
    assert past.iloc[0]["from_lon"] == pytest.approx(102.65) and past.iloc[0]["to_lon"] == pytest.approx(102.66)


def test_a_click_on_an_amap_base_map_is_stored_in_wgs84(ledger: Store):
    gx, gy = wgs84_to_gcj02(np.array([102.65]), np.array([24.95]))
    place(ledger, Placement("P1", "map", float(gx[0]), float(gy[0]), crs="gcj02"), "staff")
    row = _row(ledger, "P1")
    assert (row["x"], row["y"]) == pytest.approx((102.65, 24.95), abs=1e-5)


def test_a_place_chosen_from_search_puts_it_inside_the_place(ledger: Store):
    place(ledger, Placement("P2", "place", place_id="B1"), "staff")
    row = _row(ledger, "P2")
    assert JINDING.contains(shapely.Point(row["x"], row["y"])) and row["location_precision_m"] > 0
    assert history(ledger, "P2").iloc[0]["from_located_by"] == "community"


def test_the_phones_position_is_kept_with_its_accuracy_and_a_vague_fix_is_refused(ledger: Store):
    place(ledger, Placement("P2", "gps", 102.65, 25.05, accuracy_m=12.0), "staff")
    assert _row(ledger, "P2")["location_precision_m"] == 12.0
    before = snapshot(ledger)
    with pytest.raises(PlacementError) as refused:
        place(ledger, Placement("P2", "gps", 102.66, 25.06, accuracy_m=1500.0), "staff")
    assert refused.value.status == 400 and "精度" in refused.value.zh
    assert snapshot(ledger) == before


@pytest.mark.parametrize(
    "asked, status",
    [
        (Placement("P1", "map", math.nan, 24.95), 400),
        (Placement("P1", "map", math.inf, 24.95), 400),
        (Placement("P1", "map", "102.65", 24.95), 400),
        (Placement("P1", "map", 200.0, 24.95), 400),
        (Placement("P1", "map", 102.65, 24.95, crs="bd09x"), 400),
        (Placement("P1", "import", 102.65, 24.95), 400),
        (Placement("P1", "gps", 102.65, 24.95), 400),
        # Beijing: inside no area of this city.
        (Placement("P1", "map", 116.40, 39.90), 400),
        (Placement("NOPE", "map", 102.65, 24.95), 404),
        (Placement("P1", "place", place_id="NOPE"), 404),
    ],
)
def test_a_bad_placement_is_refused_and_changes_nothing(ledger: Store, asked: Placement, status: int):
    before = snapshot(ledger)
    with pytest.raises(PlacementError) as refused:
        place(ledger, asked, "staff")
    assert refused.value.status == status and refused.value.zh and refused.value.en
    assert snapshot(ledger) == before and history(ledger, asked.org_id).empty


def test_staff_place_only_their_organizations_and_only_inside_their_jurisdiction(ledger: Store):
    scoped = ledger.scoped("530102001002")
    before = snapshot(ledger)
    # P3 lies in another community; P1 has no area at all: neither is theirs to move.
    for org in ("P3", "P1"):
        with pytest.raises(PlacementError) as refused:
            place(scoped, Placement(org, "map", 102.65, 25.05), "staff")
        assert refused.value.status == 404
    # Their own organization, moved into a neighbouring community: refused as well.
    with pytest.raises(PlacementError) as refused:
        place(scoped, Placement("P2", "map", *WEST.centroid.coords[0]), "staff")
    assert refused.value.status == 403 and snapshot(ledger) == before
    place(scoped, Placement("P2", "map", *NORTH.centroid.coords[0]), "staff")
    assert _row(ledger, "P2")["located_by"] == "manual"


def test_an_import_keeps_a_hand_set_position_unless_asked_to_overwrite(ledger: Store, tmp_path: Path):
    place(ledger, Placement("P3", "map", 102.62, 24.93), "staff")
    # The same ledger again, with the organization's old coordinates: the hand-set one stays.
    again = import_file(ledger, "orgs", _ledger(tmp_path, "P3,坐标公司,企业,,102.61,24.91,,,"))
    assert again.ok and again.unchanged == 1 and again.located == {"manual": 1}
    assert any(i.row == 2 and i.severity == "warning" and "手工定位" in i.zh for i in again.issues)
    assert (_row(ledger, "P3")["x"], _row(ledger, "P3")["located_by"]) == (pytest.approx(102.62), "manual")
    # A ledger without coordinates keeps it silently, and the other columns still update.
    renamed = import_file(ledger, "orgs", _ledger(tmp_path, "P3,坐标公司（新名）,企业,某路,,,,,"))
    assert renamed.ok and renamed.updated == 1 and not renamed.issues
    assert _row(ledger, "P3")["located_by"] == "manual"
    # Asked to, the file's coordinates win, and the history says an import moved it.
    replaced = import_file(
        ledger, "orgs", _ledger(tmp_path, "P3,坐标公司,企业,,102.61,24.91,,,"), overwrite_positions=True
    )
    assert replaced.ok and replaced.updated == 1
    row = _row(ledger, "P3")
    assert row["located_by"] == "coordinates" and row["x"] == pytest.approx(102.61)
    past = history(ledger, "P3")
    assert past["source"].tolist() == ["import", "map"]
    assert past.iloc[0]["from_lon"] == pytest.approx(102.62) and past.iloc[0]["to_lon"] == pytest.approx(102.61)
