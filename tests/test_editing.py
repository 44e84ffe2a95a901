"""Corrections of the 台账 (issue 23, part 3): staff and other systems edit, add and remove
organizations within their jurisdiction, through the importer's checks, with a history of every
field and no lost update (ETag / If-Match, OGC API – Features Part 4)."""

from __future__ import annotations

import json
import re
from html import unescape as html_unescape
from pathlib import Path

import pytest
from sqlalchemy import text

from app import create_app
from app.intake import import_file
from app.services import editing
from app.services.editing import EditError, Position
from app.store import Store

from .conftest import Served, api_token, signed_in
from .test_browser import browser, wait_for  # noqa: F401 (browser: a fixture)
from .test_intake import snapshot, write
from .test_locate import city  # noqa: F401 (a fixture)

STREET_A, STREET_B = "530102001", "530102002"
LEDGER = (
    "组织编号,组织名称,组织类型,从业人员数,正式党员数,经度,纬度,所属党组织编号,是否选派党建指导员,统一社会信用代码\n"
    "E1,翠湖物业有限公司,企业,20,2,102.65,24.95,J1,是,\n"
    "E2,圆通科技有限公司,企业,8,0,102.65,25.05,J1,否,\n"
    "E3,护国商贸有限公司,企业,5,1,102.75,24.95,,否,\n"
    "E4,第四公司,企业,5,0,102.66,24.95,J1,否,\n"
    "E5,第五公司,企业,5,0,102.67,24.95,J1,否,\n"
    "E6,第六公司,企业,5,0,102.68,24.95,J1,否,\n"
    "E7,第七公司,企业,5,0,102.69,24.95,,否,\n"
)


@pytest.fixture
def ledger(city: Store, tmp_path: Path) -> Store:  # noqa: F811
    party = write(
        tmp_path / "party.csv",
        "党组织编号,党组织名称,党组织类型,组建方式,党员数\nJ1,联合党支部,联合党支部,联合组建,3\nP2,第二支部,党支部,单独组建,4\n",
    )
    assert import_file(city, "party-orgs", party).ok
    report = import_file(city, "orgs", write(tmp_path / "orgs.csv", LEDGER))
    assert report.ok, report.issues
    return city


def _history(store: Store, org_id: str) -> list[tuple]:
    with store.connect() as conn:
        rows = conn.execute(
            text("SELECT username, via, field, old, new FROM org_changes WHERE org_id = :o ORDER BY id"), {"o": org_id}
        )
        return [tuple(r) for r in rows]


def _version(store: Store) -> int:
    with store.connect() as conn:
        return store.data_version(conn)


def test_an_edit_changes_the_fields_asked_and_records_each(ledger: Store):
    before = editing.record(ledger, "E3")
    version = _version(ledger)
    after = editing.edit(
        ledger,
        "E3",
        {"employees": "12", "party_org_id": "P2", "instructor": True},
        "staff",
        "map",
        editing.etag(before),
    )
    assert (after["employees"], after["party_org_id"], after["instructor"]) == (12, "P2", True)
    assert after["name"] == before["name"] and editing.etag(after) != editing.etag(before)
    assert _history(ledger, "E3") == [
        ("staff", "map", "employees", "5", "12"),
        ("staff", "map", "party_org_id", None, "P2"),
        ("staff", "map", "instructor", "否", "是"),
    ]
    assert _version(ledger) > version
    # The same values again change nothing and record nothing.
    editing.edit(ledger, "E3", {"employees": 12}, "staff", "map")
    assert len(_history(ledger, "E3")) == 3


def test_a_stale_version_is_refused_with_the_current_values(ledger: Store):
    read = editing.etag(editing.record(ledger, "E1"))
    editing.edit(ledger, "E1", {"employees": 30}, "first", "map", read)
    with pytest.raises(EditError) as refused:
        editing.edit(ledger, "E1", {"employees": 40}, "second", "map", read)
    assert refused.value.status == 412 and refused.value.current["employees"] == 30
    assert editing.record(ledger, "E1")["employees"] == 30


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"credit_code": "91530100MA6K0000X1"}, "credit_code"),
        ({"employees": "-3"}, "employees"),
        ({"employees": "十"}, "employees"),
        ({"org_type": "公司"}, "org_type"),
        ({"name": ""}, "name"),
        ({"name": "名" * 201}, "name"),
        ({"operating": "也许"}, "operating"),
        ({"party_org_id": "NOPE"}, "party_org_id"),
        ({"status": "covered"}, None),
    ],
)
def test_a_bad_value_is_refused_naming_its_field_and_nothing_is_written(ledger: Store, changes, field):
    before = snapshot(ledger)
    with pytest.raises(EditError) as refused:
        editing.edit(ledger, "E3", {"employees": 9, **changes}, "staff", "map")
    assert refused.value.status == 400
    if field:
        assert [i["field"] for i in refused.value.issues] == [field]
    else:
        assert "status" in str(refused.value)
    assert snapshot(ledger) == before and _history(ledger, "E3") == []


def test_a_joint_branch_takes_at_most_five_units(ledger: Store):
    # J1 covers E1, E2, E4, E5, E6: a sixth is refused, naming the rule; a member may stay.
    with pytest.raises(EditError) as refused:
        editing.edit(ledger, "E7", {"party_org_id": "J1"}, "staff", "map")
    assert "至多 5" in refused.value.zh and "at most 5" in refused.value.en
    assert editing.record(ledger, "E7")["party_org_id"] is None
    assert editing.edit(ledger, "E6", {"employees": 6}, "staff", "map")["party_org_id"] == "J1"


def test_staff_edit_only_inside_their_jurisdiction(ledger: Store):
    street = ledger.scoped(STREET_A)
    with pytest.raises(EditError) as hidden:
        editing.edit(street, "E3", {"employees": 1}, "staff", "map")
    assert hidden.value.status == 403 and editing.record(ledger, "E3")["employees"] == 5
    with pytest.raises(EditError) as missing:
        editing.edit(street, "E404", {"employees": 1}, "staff", "map")
    assert missing.value.status == 404
    with pytest.raises(EditError) as outside:
        editing.edit(street, "E1", {}, "staff", "map", position=Position(102.75, 24.95))
    assert outside.value.status == 403 and editing.record(ledger, "E1")["lon"] == 102.65
    with pytest.raises(EditError) as new_outside:
        editing.create(street, {"name": "外街公司", "org_type": "企业"}, Position(102.75, 24.96), "staff", "map")
    assert new_outside.value.status == 403 and editing.record(ledger, "外街公司") is None


def test_a_moved_point_is_kept_in_both_histories(ledger: Store):
    moved = editing.edit(ledger.scoped(STREET_A), "E1", {}, "staff", "map", position=Position(102.651, 24.951))
    assert (moved["lon"], moved["lat"], moved["located_by"]) == (102.651, 24.951, "manual")
    assert _history(ledger, "E1") == [("staff", "map", "position", "102.650000,24.950000", "102.651000,24.951000")]
    with ledger.connect() as conn:
        source = conn.execute(
            text("SELECT p.source FROM placements p JOIN organizations o ON o.id = p.organization_id")
        )
        assert source.scalars().all() == ["map"]


def test_an_organization_found_in_the_field_is_added_and_a_mistake_removed(ledger: Store):
    added = editing.create(
        ledger.scoped(STREET_A),
        {"name": "新发现公司", "org_type": "企业", "employees": 3},
        Position(102.61, 24.91),
        "s",
        "map",
    )
    assert added["org_id"].startswith("XC") and added["located_by"] == "manual" and added["employees"] == 3
    with pytest.raises(EditError) as taken:
        editing.create(
            ledger, {"org_id": "E1", "name": "重复", "org_type": "企业"}, Position(102.61, 24.91), "s", "map"
        )
    assert taken.value.status == 409
    gone = editing.delete(ledger, added["org_id"], "admin", "api", editing.etag(added))
    assert editing.record(ledger, added["org_id"]) is None
    entries = _history(ledger, added["org_id"])
    assert [e[2] for e in entries] == ["*", "*"] and json.loads(entries[-1][3])["name"] == gone["name"]


# --- OGC API – Features Part 4 ----------------------------------------------------------------

ITEM = "/api/collections/organizations/items/E1"
GEOJSON = "application/geo+json"


@pytest.fixture
def app(ledger: Store):
    return create_app({"DATABASE_URL": ledger.url, "TESTING": True})


def _bearer(store: Store, role: str = "admin", area: str | None = None) -> dict:
    return {"Authorization": f"Bearer {api_token(store, role, area)}"}


def test_part4_update_needs_the_current_etag(app, ledger: Store):
    client = app.test_client()
    auth = _bearer(ledger, "street", STREET_A)
    got = client.get(ITEM, headers=auth)
    assert got.status_code == 200 and got.json["properties"]["party_org_id"] == "J1"
    tag = got.headers["ETag"]
    patch = json.dumps({"properties": {"employees": 21, "address": "翠湖路 1 号"}})
    missing = client.patch(ITEM, data=patch, content_type="application/merge-patch+json", headers=auth)
    assert missing.status_code == 428
    done = client.patch(
        ITEM, data=patch, content_type="application/merge-patch+json", headers={**auth, "If-Match": tag}
    )
    assert done.status_code == 200 and done.json["properties"]["employees"] == 21
    assert done.headers["ETag"] != tag and client.get(ITEM, headers=auth).headers["ETag"] == done.headers["ETag"]
    stale = client.patch(
        ITEM, data=patch, content_type="application/merge-patch+json", headers={**auth, "If-Match": tag}
    )
    assert stale.status_code == 412 and stale.json["current"]["employees"] == 21
    assert stale.json["etag"] == done.headers["ETag"]
    assert _history(ledger, "E1")[-1] == ("street-530102001", "api", "address", None, "翠湖路 1 号")


def test_part4_replace_clears_what_the_feature_leaves_out(app, ledger: Store):
    client = app.test_client()
    auth = _bearer(ledger)
    tag = client.get(ITEM, headers=auth).headers["ETag"]
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [102.652, 24.952]},
        "properties": {"org_id": "E1", "name": "翠湖物业服务有限公司", "org_type": "enterprise", "status": "covered"},
    }
    put = client.put(ITEM, data=json.dumps(feature), content_type=GEOJSON, headers={**auth, "If-Match": tag})
    assert put.status_code == 200, put.json
    stored = editing.record(ledger, "E1")
    assert (stored["name"], stored["employees"], stored["party_org_id"], stored["instructor"]) == (
        "翠湖物业服务有限公司",
        0,
        None,
        False,
    )
    assert (stored["lon"], stored["lat"]) == (102.652, 24.952)
    renamed = dict(feature, properties={**feature["properties"], "org_id": "E9"})
    again = client.put(
        ITEM, data=json.dumps(renamed), content_type=GEOJSON, headers={**auth, "If-Match": put.headers["ETag"]}
    )
    assert again.status_code == 400 and again.json["parameter"] == "org_id"


def test_part4_create_and_delete(app, ledger: Store):
    client = app.test_client()
    street = _bearer(ledger, "street", STREET_A)
    feature = {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [102.62, 24.93]},
        "properties": {"org_id": "N1", "name": "网格上报公司", "org_type": "企业", "employees": 4},
    }
    created = client.post(
        "/api/collections/organizations/items", data=json.dumps(feature), content_type=GEOJSON, headers=street
    )
    assert created.status_code == 201 and created.headers["Location"].endswith("/items/N1")
    assert editing.record(ledger, "N1")["employees"] == 4
    tag = created.headers["ETag"]
    item = "/api/collections/organizations/items/N1"
    # Removing is for admins; staff mark a closed organization not operating.
    assert client.delete(item, headers={**street, "If-Match": tag}).status_code == 403
    assert client.delete(item, headers={**_bearer(ledger), "If-Match": tag}).status_code == 204
    assert client.get(item, headers=street).status_code == 404


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("not json", GEOJSON, 400),
        ("[1, 2]", GEOJSON, 400),
        ('{"properties": {"employees": NaN}}', GEOJSON, 400),
        ('{"properties": {"employees": {"$gt": 1}}}', GEOJSON, 400),
        ('{"properties": {"secret": 1}}', GEOJSON, 400),
        ('{"geometry": {"type": "Point", "coordinates": [1e999, 0]}}', GEOJSON, 400),
        ('{"geometry": {"type": "Polygon", "coordinates": []}}', GEOJSON, 400),
        ('{"properties": {"employees": 1}}', "text/plain", 415),
        ('{"properties": {"name": "' + "x" * 70_000 + '"}}', GEOJSON, 413),
    ],
)
def test_part4_refuses_bad_bodies_and_writes_nothing(app, ledger: Store, body, content_type, status):
    client = app.test_client()
    auth = _bearer(ledger)
    tag = client.get(ITEM, headers=auth).headers["ETag"]
    before = snapshot(ledger)
    answer = client.patch(ITEM, data=body, content_type=content_type, headers={**auth, "If-Match": tag})
    assert answer.status_code == status and answer.json["code"]
    assert snapshot(ledger) == before


def test_part4_keeps_to_the_callers_role_and_jurisdiction(app, ledger: Store):
    client = app.test_client()
    patch = json.dumps({"properties": {"employees": 1}})
    kind = "application/merge-patch+json"
    other = "/api/collections/organizations/items/E3"
    tag = client.get(other, headers=_bearer(ledger)).headers["ETag"]
    street = _bearer(ledger, "street", STREET_A)
    assert client.patch(other, data=patch, content_type=kind, headers={**street, "If-Match": tag}).status_code == 403
    viewer = _bearer(ledger, "viewer")
    assert client.patch(other, data=patch, content_type=kind, headers={**viewer, "If-Match": tag}).status_code == 403
    places = "/api/collections/places/items/B1"
    assert (
        client.patch(places, data=patch, content_type=kind, headers={**_bearer(ledger), "If-Match": "*"}).status_code
        == 405
    )
    assert editing.record(ledger, "E3")["employees"] == 5


def test_a_session_write_still_needs_its_csrf_token(app, ledger: Store):
    client = signed_in(app, "admin")
    tag = client.get(ITEM).headers["ETag"]
    patch = json.dumps({"properties": {"employees": 1}})
    headers = {"If-Match": tag, "Authorization": "Bearer not-a-token"}
    refused = client.patch(ITEM, data=patch, content_type="application/merge-patch+json", headers=headers)
    assert refused.status_code == 400 and "CSRF" in refused.json["error"]
    assert editing.record(ledger, "E1")["employees"] == 20


# --- The correction page -----------------------------------------------------------------------


def _form(client, org_id: str) -> dict:
    """The correction form's fields as the page fills them."""
    page = client.get(f"/orgs/{org_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    etag = re.search(r'name="etag" value="([^"]*)"', html).group(1)
    values = dict(re.findall(r'<input name="(\w+)" value="([^"]*)"', html))
    values |= {
        name: re.search(r'<option value="([^"]*)" selected', block).group(1)
        for name, block in re.findall(r'<select name="(\w+)">(.*?)</select>', html, re.S)
    }
    return {**values, "csrf_token": csrf, "etag": html_unescape(etag)}


def test_staff_correct_a_record_on_its_page_and_see_its_history(app, ledger: Store):
    client = signed_in(app, "street", STREET_A)
    form = _form(client, "E1")
    assert form["employees"] == "20" and form["instructor"] == "1" and form["party_org_id"] == "J1"
    saved = client.post("/orgs/E1", data={**form, "employees": "22", "address": "翠湖北路 2 号"})
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/orgs/E1?saved=1")
    page = client.get("/orgs/E1?saved=1").get_data(as_text=True)
    assert "已保存" in page and "翠湖北路 2 号" in page and "street-530102001" in page
    assert _history(ledger, "E1")[0] == ("street-530102001", "map", "employees", "20", "22")
    # The card on the map offers the page and says the record was corrected.
    card = client.get("/map/org/E1").json
    assert card["correct"].endswith("/orgs/E1") and card["last_change"]["n"] == 2
    assert "correct" not in signed_in(app, "viewer").get("/map/org/E1").json
    export = client.get("/orgs/E1/history.csv")
    assert export.status_code == 200 and "翠湖北路 2 号" in export.data.decode("utf-8-sig")


def test_a_bad_value_on_the_page_is_named_and_nothing_is_saved(app, ledger: Store):
    client = signed_in(app, "street", STREET_A)
    form = _form(client, "E1")
    before = snapshot(ledger)
    answer = client.post("/orgs/E1", data={**form, "employees": "二十", "party_org_id": "J1;NOPE"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 400 and "2 处需要修改" in page and "NOPE" in page and "二十" in page
    # Only the refusal is written, to the audit log.
    after = snapshot(ledger)
    assert after.pop("audit_log")[0] == before.pop("audit_log")[0] + 1 and after == before


def test_two_people_saving_one_record_lose_nothing(app, ledger: Store):
    first, second = signed_in(app, "street", STREET_A), signed_in(app, "admin")
    mine, theirs = _form(first, "E1"), _form(second, "E1")
    assert first.post("/orgs/E1", data={**mine, "employees": "31"}).status_code == 302
    late = second.post("/orgs/E1", data={**theirs, "employees": "45"})
    page = late.get_data(as_text=True)
    assert late.status_code == 412 and 'value="31"' in page and "45" in page
    assert editing.record(ledger, "E1")["employees"] == 31


def test_staff_cannot_open_or_save_a_record_outside_their_jurisdiction(app, ledger: Store):
    client = signed_in(app, "street", STREET_A)
    assert client.get("/orgs/E3").status_code == 403
    token = _form(client, "E1")["csrf_token"]
    assert client.post("/orgs/E3", data={"csrf_token": token, "name": "x", "org_type": "enterprise"}).status_code == 403
    assert signed_in(app, "planner").get("/orgs/E1").status_code == 403
    assert editing.record(ledger, "E3")["name"] == "护国商贸有限公司"


@pytest.mark.browser
def test_staff_add_an_organization_and_move_another_from_a_phone(browser, ledger: Store):  # noqa: F811
    served = Served(ledger)
    try:
        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            is_mobile=True,
            has_touch=True,
            geolocation={"latitude": 24.93, "longitude": 102.63, "accuracy": 15},
            permissions=["geolocation"],
        )
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        served.sign_in(page, "street", STREET_A)
        page.goto(served.url + "/orgs/new", wait_until="networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.fill("input[name=name]", "现场发现的快递站")
        page.fill("input[name=employees]", "6")
        page.tap("#ht-use-location")
        wait_for(page, "document.getElementById('ht-lon').value !== ''")
        page.tap("text=保存")
        page.wait_for_url("**/orgs/XC*?saved=1")
        org_id = page.url.split("/orgs/")[1].split("?")[0]
        added = editing.record(ledger, org_id)
        assert (added["name"], added["employees"], added["lon"], added["lat"]) == ("现场发现的快递站", 6, 102.63, 24.93)
        # From another record's page to the map, which has it chosen: the phone's position moves it.
        page.goto(served.url + "/orgs/E2", wait_until="networkidle")
        page.tap("text=调整位置")
        page.wait_for_selector("#ht-to-place button[aria-pressed=true]", timeout=10_000)
        page.tap("#ht-gps")
        page.wait_for_selector("#ht-save:not([disabled])", timeout=10_000)
        page.tap("#ht-save")
        page.wait_for_selector("#ht-to-place button.done", timeout=10_000)
        moved = editing.record(ledger, "E2")
        assert (moved["lon"], moved["lat"], moved["located_by"]) == (102.63, 24.93, "manual")
        assert _history(ledger, "E2")[-1][2:] == ("position", "102.650000,25.050000", "102.630000,24.930000")
        assert errors == []
        context.close()
    finally:
        served.close()
