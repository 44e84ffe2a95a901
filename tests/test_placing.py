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

from app import create_app
from app.intake import import_file
from app.services.placing import Placement, PlacementError, history, place, to_place
from app.store import Store, accounts
from geo.crs import wgs84_to_gcj02

from .conftest import Served, signed_in
from .test_browser import browser, wait_for  # noqa: F401 (browser: a fixture)
from .test_intake import snapshot
from .test_locate import JINDING, NORTH, WEST, city, write_ledger  # noqa: F401 (city: a fixture)

APPROXIMATE_OR_NOT = ("unplaced", "community", "street")


@pytest.fixture
def ledger(city: Store, tmp_path: Path) -> Store:  # noqa: F811
    report = import_file(
        city,
        "orgs",
        write_ledger(
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
    frame, counts = to_place(ledger, APPROXIMATE_OR_NOT)
    assert counts == {"unplaced": 1, "community": 1} and frame["org_id"].tolist() == ["P1", "P2"]
    # The counts are of all of them, not of the rows listed.
    first, counts = to_place(ledger, APPROXIMATE_OR_NOT, limit=1)
    assert first["org_id"].tolist() == ["P1"] and counts == {"unplaced": 1, "community": 1}
    # Community staff see their approximate organization; one without any area is the city's.
    mine, counts = to_place(ledger.scoped("530102001002"), APPROXIMATE_OR_NOT)
    assert counts == {"community": 1} and mine["org_id"].tolist() == ["P2"]
    assert to_place(ledger.scoped("530102001001"), APPROXIMATE_OR_NOT)[1] == {}


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
    assert snapshot(ledger) == before
    if asked.org_id != "NOPE":
        assert history(ledger, asked.org_id).empty


def test_staff_place_only_their_organizations_and_only_inside_their_jurisdiction(ledger: Store):
    scoped = ledger.scoped("530102001002")
    before = snapshot(ledger)
    # P3 lies in another community; P1 has no area at all: neither is theirs to move.
    for org in ("P3", "P1"):
        with pytest.raises(PlacementError) as refused:
            place(scoped, Placement(org, "map", 102.65, 25.05), "staff")
        assert refused.value.status == 404
    # Their own organization, moved into a neighbouring community, or onto the border they share
    # (which would make it both communities'): refused as well.
    for lon, lat in (WEST.centroid.coords[0], (102.65, 25.00)):
        with pytest.raises(PlacementError) as refused:
            place(scoped, Placement("P2", "map", lon, lat), "staff")
        assert refused.value.status == 403 and snapshot(ledger) == before
    place(scoped, Placement("P2", "map", *NORTH.centroid.coords[0]), "staff")
    assert _row(ledger, "P2")["located_by"] == "manual"


def test_an_import_keeps_a_hand_set_position_unless_asked_to_overwrite(ledger: Store, tmp_path: Path):
    place(ledger, Placement("P3", "map", 102.62, 24.93), "staff")
    # The same ledger again, with the organization's old coordinates: the hand-set one stays.
    again = import_file(ledger, "orgs", write_ledger(tmp_path, "P3,坐标公司,企业,,102.61,24.91,,,"))
    assert again.ok and again.unchanged == 1 and again.located == {"manual": 1}
    assert any(i.row == 2 and i.severity == "warning" and "手工定位" in i.zh for i in again.issues)
    assert (_row(ledger, "P3")["x"], _row(ledger, "P3")["located_by"]) == (pytest.approx(102.62), "manual")
    # A ledger without coordinates keeps it silently, and the other columns still update.
    renamed = import_file(ledger, "orgs", write_ledger(tmp_path, "P3,坐标公司（新名）,企业,某路,,,,,"))
    assert renamed.ok and renamed.updated == 1 and not renamed.issues
    assert _row(ledger, "P3")["located_by"] == "manual"
    # Asked to, the file's coordinates win, and the history says an import moved it.
    replaced = import_file(
        ledger, "orgs", write_ledger(tmp_path, "P3,坐标公司,企业,,102.61,24.91,,,"), overwrite_positions=True
    )
    assert replaced.ok and replaced.updated == 1
    row = _row(ledger, "P3")
    assert row["located_by"] == "coordinates" and row["x"] == pytest.approx(102.61)
    past = history(ledger, "P3")
    assert past["source"].tolist() == ["import", "map"]
    assert past.iloc[0]["from_lon"] == pytest.approx(102.62) and past.iloc[0]["to_lon"] == pytest.approx(102.61)


def _client(app, role: str, area: str | None = None):
    client = signed_in(app, role, area)
    with client.session_transaction() as session:
        session["csrf"] = "token"
    return client


def _data(store: Store) -> dict:
    """The store's rows, but for the audit log (which records refusals too)."""
    return {table: rows for table, rows in snapshot(store).items() if table != "audit_log"}


def _post(client, org: str, body) -> tuple[int, dict]:
    answer = client.post(f"/placing/{org}", json=body, headers={"X-CSRF-Token": "token"})
    return answer.status_code, answer.get_json()


def test_the_heading_counts_every_organization_to_place_beyond_the_rows_shown(ledger: Store, tmp_path, monkeypatch):
    from app.web import placing as page

    assert import_file(ledger, "orgs", write_ledger(tmp_path, "P4,又一无址公司,企业,,,,,,")).ok
    monkeypatch.setattr(page, "PAGE_ROWS", 1)
    shown = _client(create_app({"DATABASE_URL": ledger.url}), "admin").get("/placing/").get_data(as_text=True)
    assert "3 家：无位置 2，近似 1" in shown and shown.count('data-org="') == 1


def test_the_page_is_for_those_who_keep_the_ledger(ledger: Store):
    app = create_app({"DATABASE_URL": ledger.url})
    page = _client(app, "community", "530102001002").get("/placing/")
    assert page.status_code == 200 and "圆通社区公司" in page.get_data(as_text=True)
    assert "无址公司" not in page.get_data(as_text=True)
    assert "无址公司" in _client(app, "admin").get("/placing/").get_data(as_text=True)
    for role in ("planner", "viewer"):
        assert _client(app, role).get("/placing/").status_code == 403
        assert _post(_client(app, role), "P1", {"source": "map", "lon": 102.65, "lat": 24.95})[0] == 403


def test_a_placement_over_http_is_audited_and_hostile_bodies_change_nothing(ledger: Store):
    app = create_app({"DATABASE_URL": ledger.url})
    staff = _client(app, "community", "530102001002")
    before = _data(ledger)
    hostile = [
        {"source": "map", "lon": "102.65", "lat": "25.05"},
        {"source": "map", "lon": True, "lat": 25.05},
        {"source": "map", "lon": 1e400, "lat": 25.05},
        {"source": "map", "lon": [102.65], "lat": 25.05},
        {"source": "gps", "lon": 102.65, "lat": 25.05, "accuracy_m": -1},
        {"source": "place", "place_id": {"$ne": ""}},
        {"source": "map'; DROP TABLE organizations; --", "lon": 102.65, "lat": 25.05},
        ["source", "map"],
        "map",
        {"source": "map", "lon": 10**400, "lat": 25.05},
    ]
    for body in hostile:
        status, answer = _post(staff, "P2", body)
        assert status in (400, 404) and answer["zh"] and answer["en"], body
    # A body far larger than a position is not even parsed.
    padded = {"source": "map", "lon": 102.65, "lat": 25.05, "x": [[0] * 100] * 100}
    status, answer = _post(staff, "P2", padded)
    assert status == 413 and answer["en"]
    # Without the CSRF token, nothing is even tried.
    assert staff.post("/placing/P2", json={"source": "map", "lon": 102.65, "lat": 25.05}).status_code == 400
    assert _data(ledger) == before
    status, answer = _post(staff, "P2", {"source": "map", "lon": 102.65, "lat": 25.05, "display_crs": "gcj02"})
    assert status == 200 and answer["located_by"] == "manual" and answer["display"][0] != answer["lon"]
    log = accounts.audit_entries(ledger, "place")
    assert log["ok"].tolist()[:1] == [True] and (~log["ok"]).sum() == len(hostile) + 1
    assert log.iloc[0]["target"] == "P2" and "community → manual" in log.iloc[0]["detail"]
    history_answer = staff.get("/placing/P2/history").get_json()
    assert [p["source"] for p in history_answer["placements"]] == ["map"]
    # Places are searched within the jurisdiction only.
    assert staff.get("/placing/places?q=科技").get_json()["results"][0]["place_id"] == "B4"
    assert staff.get("/placing/places?q=金鼎").get_json()["results"] == []


@pytest.mark.browser
def test_staff_place_an_organization_from_a_phone_with_its_location_and_the_map(browser, ledger: Store):  # noqa: F811
    served = Served(ledger)
    try:
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            geolocation={"latitude": 25.05, "longitude": 102.65, "accuracy": 12},
            permissions=["geolocation"],
        )
        page = context.new_page()
        outside, errors = [], []
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served.url) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        served.sign_in(page, "community", "530102001002")
        page.goto(served.url + "/placing/", wait_until="networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("#ht-to-place button").count() == 1
        page.tap("#ht-to-place button")
        page.tap("#ht-gps")
        # The phone's position is proposed on the map, and saved only when asked.
        page.wait_for_selector("#ht-save:not([disabled])", timeout=10_000)
        assert _row(ledger, "P2")["located_by"] == "community"
        page.tap("#ht-save")
        page.wait_for_selector("#ht-to-place button.done", timeout=10_000)
        # The heading counts it at once: none left approximate, one placed by hand.
        assert page.locator("#ht-counts").inner_text() == "0 家：无位置 0，近似 0；已手工定位 1"
        row = _row(ledger, "P2")
        assert row["located_by"] == "manual" and (row["x"], row["y"]) == pytest.approx((102.65, 25.05))
        assert row["location_precision_m"] == 12
        # Then by a tap on the map, saved with the button.
        box = page.locator("#ht-placing-map").bounding_box()
        x, y = page.evaluate(
            "(() => { const p = hongtuPlacingMap.latLngToContainerPoint([25.0504, 102.6504]); return [p.x, p.y]; })()"
        )
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.tap("#ht-save")
        wait_for(
            page, "document.querySelector('#ht-history li') && document.querySelectorAll('#ht-history li').length === 2"
        )
        row = _row(ledger, "P2")
        assert (row["x"], row["y"]) == pytest.approx((102.6504, 25.0504), abs=3e-5)
        assert history(ledger, "P2")["source"].tolist() == ["map", "gps"]
        assert outside == [] and errors == []
        context.close()
    finally:
        served.close()
