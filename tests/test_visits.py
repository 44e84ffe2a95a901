"""Visits (issue 23, part 2): recorded from a phone with a checked date, occasion, position and
photo; flagged far away but kept; counted per area as the share of instructed organizations
visited lately; 挂名未走访 on the card; photos only within the jurisdiction."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from app import create_app
from app.intake import import_file
from app.services import analysis, editing, visits
from app.store import Store

from .conftest import Served, signed_in
from .test_browser import browser, wait_for  # noqa: F401 (browser: a fixture)
from .test_editing import STREET_A, STREET_B, ledger  # noqa: F401 (ledger: a fixture)
from .test_instructors import PEOPLE
from .test_intake import write
from .test_locate import city  # noqa: F401 (a fixture)

KINDS = ["新成立必访", "日常走访"]
#: E3 is at 102.75, 24.95 (护国街道); 0.001° of latitude is 111 m.
NEAR, FAR = visits.Checkin(102.75, 24.951), visits.Checkin(102.75, 24.96)


def _jpeg_with_gps(size=(3000, 2000)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {1: "N", 2: (24.0, 57.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _record(store: Store, **kw):
    values = {"visited_on": visits.today().isoformat(), "kind": "日常走访", "notes": "了解经营情况"}
    values.update(kw.pop("values", {}))
    return visits.record(store, kw.pop("org_id", "E3"), values, "staff", kinds=KINDS, far_m=300, **kw)


def _count(store: Store) -> int:
    with store.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM visits")).scalar()


def test_a_visit_is_stored_with_its_distance_and_a_clean_photo(ledger: Store):  # noqa: F811
    near = _record(ledger, checkin=NEAR, photo=_jpeg_with_gps())
    assert near["distance_m"] == pytest.approx(111.2, abs=0.5) and near["far"] is False and near["has_photo"]
    stored = visits.photo(ledger, near["id"])
    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG" and max(image.size) == visits.PHOTO_SIDE_PX
        assert not image.getexif()  # neither the phone's make nor its position
    # Far from the organization: kept, and flagged.
    far = _record(ledger, checkin=FAR)
    assert far["far"] is True and far["distance_m"] == pytest.approx(1112, abs=2)
    assert _count(ledger) == 2


@pytest.mark.parametrize(
    ("kw", "status", "field"),
    [
        ({"values": {"visited_on": "2999-01-01"}}, 400, "visited_on"),
        ({"values": {"visited_on": "昨天"}}, 400, "visited_on"),
        ({"values": {"kind": "喝茶"}}, 400, "kind"),
        ({"photo": b"%PDF-1.4 not an image"}, 400, "photo"),
        ({"photo": b"\xff\xd8\xff" + b"0" * 100}, 400, "photo"),
        ({"photo": b"x" * (9 * 1024 * 1024)}, 413, "photo"),
        ({"checkin": visits.Checkin(float("nan"), 24.9)}, 400, "position"),
        ({"org_id": "E404"}, 404, None),
    ],
)
def test_bad_visits_are_refused_and_nothing_is_stored(ledger: Store, kw, status, field):  # noqa: F811
    with pytest.raises(editing.EditError) as refused:
        _record(ledger, **kw)
    assert refused.value.status == status
    if field:
        assert refused.value.issues[0]["field"] == field and refused.value.zh and refused.value.en
    assert _count(ledger) == 0


def test_tomorrow_is_the_future(ledger: Store):  # noqa: F811
    with pytest.raises(editing.EditError):
        _record(ledger, values={"visited_on": (visits.today() + timedelta(days=1)).isoformat()})


def test_staff_visit_only_their_own_and_photos_stay_inside(ledger: Store):  # noqa: F811
    app = create_app({"DATABASE_URL": ledger.url})
    mine = signed_in(app, "street", STREET_B)
    with mine.session_transaction() as session:
        session["csrf"] = "t"
    form = {"csrf_token": "t", "visited_on": visits.today().isoformat(), "kind": "日常走访", "notes": "x"}
    photo = (io.BytesIO(_jpeg_with_gps((400, 300))), "p.jpg")
    answer = mine.post("/orgs/E3/visit", data={**form, "photo": photo}, content_type="multipart/form-data")
    assert answer.status_code == 200 and "已记录" in answer.get_data(as_text=True)
    (visit_id,) = visits.of_organization(ledger, "E3")["id"]
    assert mine.get(f"/orgs/visits/{visit_id}/photo").mimetype == "image/jpeg"
    other = signed_in(app, "street", STREET_A)
    with other.session_transaction() as session:
        session["csrf"] = "t"
    assert other.post("/orgs/E3/visit", data=form).status_code == 403
    assert other.get(f"/orgs/visits/{visit_id}/photo").status_code == 404
    # An id no database integer holds is no visit (it was a 500).
    assert mine.get(f"/orgs/visits/{2**64}/photo").status_code == 404
    viewer = signed_in(app, "viewer", STREET_B)
    with viewer.session_transaction() as session:
        session["csrf"] = "t"
    assert viewer.post("/orgs/E3/visit", data=form).status_code == 403
    assert _count(ledger) == 1


def test_instructed_organizations_unvisited_are_flagged_and_counted(ledger: Store, tmp_path: Path):  # noqa: F811
    assert import_file(ledger, "instructors", write(tmp_path / "people.csv", PEOPLE)).ok
    analysis.run_analysis(ledger, analysis.Parameters())
    app = create_app({"DATABASE_URL": ledger.url})
    client = signed_in(app, "street", STREET_B)
    card = client.get("/map/org/E3").json
    assert card["instructor"] and card["unvisited"] and card["last_visit"] is None
    # A visit 100 days ago is older than the 90-day window: still 挂名未走访.
    _record(ledger, values={"visited_on": (visits.today() - timedelta(days=100)).isoformat()})
    assert client.get("/map/org/E3").json["unvisited"] is True
    _record(ledger)
    card = client.get("/map/org/E3").json
    assert (card["unvisited"], card["last_visit"]) == (False, visits.today().isoformat())
    # 张三丰 serves E3 (护国街道, visited) and E7 (华山街道, not); E1's ledger says it has an
    # instructor (unnamed): instructed, and not visited either.
    page = client.get(f"/area/{STREET_B}").get_data(as_text=True)
    assert "近 90 天走访率（1 / 1）" in page
    west = signed_in(app, "street", STREET_A).get(f"/area/{STREET_A}").get_data(as_text=True)
    assert "近 90 天走访率（0 / 2）" in west and "挂名未走访 2 家" in west
    exported = client.get(f"/area/{STREET_B}/export/visits.csv").get_data(as_text=True)
    assert exported.count("张三丰") == 2 and "了解经营情况" in exported


@pytest.mark.browser
def test_a_visit_is_recorded_from_a_phone_with_its_position(browser, ledger: Store):  # noqa: F811
    served = Served(ledger)
    try:
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            geolocation={"latitude": 24.96, "longitude": 102.75, "accuracy": 10},
            permissions=["geolocation"],
        )
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        served.sign_in(page, "street", STREET_B)
        page.goto(served.url + "/orgs/E3/visit", wait_until="networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.select_option("select[name=kind]", "新成立必访")
        page.fill("textarea[name=notes]", "新成立企业，宣讲党建政策")
        page.tap("#ht-use-location")
        wait_for(page, "document.getElementById('ht-lon').value !== ''")
        page.tap("text=保存走访")
        page.wait_for_selector(".ht-ok")
        assert "位置偏远" in page.inner_text(".ht-ok")
        (stored,) = visits.of_organization(ledger, "E3").to_dict("records")
        assert (stored["kind"], bool(stored["far"])) == ("新成立必访", True)
        assert stored["distance_m"] == pytest.approx(1112, abs=2)
        assert "新成立企业" in page.inner_text("#ht-visits")
        assert errors == []
        context.close()
    finally:
        served.close()
