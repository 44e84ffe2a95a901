"""Area pages, their exports, the dashboard and the map layers built on the latest run — each
figure checked against the run's own rows, on both backends."""

import io
import re
from datetime import date
from urllib.parse import quote

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import text

from app import create_app
from app.store import Store, area_stats

from .conftest import signed_in

BOX = "102.3,24.5,103.5,26.0"


@pytest.fixture(scope="module")
def client(analyzed_store: Store):
    return signed_in(create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True}))


def run_rows(store: Store) -> pd.DataFrame:
    """The latest run's organizations, joined with their attributes."""
    with store.connect() as conn:
        result = conn.execute(
            text(
                "SELECT r.*, o.employees, o.org_type, o.industry FROM run_organizations r "
                "JOIN organizations o ON o.id = r.organization_id "
                "WHERE r.run_id = (SELECT max(id) FROM analysis_runs)"
            )
        )
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def busiest(rows: pd.DataFrame, level: str) -> str:
    """The code of the area of ``level`` holding the most organizations."""
    return rows[f"{level}_code"].value_counts().index[0]


def test_drill_down_from_city_to_grid_with_breadcrumbs(client, analyzed_store):
    rows = run_rows(analyzed_store)
    page = client.get("/area/").get_data(as_text=True)
    trail = []
    for level in ("district", "street", "community", "grid"):
        code = busiest(rows[rows[f"{level}_code"].str.startswith(trail[-1] if trail else "")], level)
        assert f'href="/area/{code}"' in page, (level, code)
        page = client.get(f"/area/{code}").get_data(as_text=True)
        trail.append(code)
        crumbs = re.search(r'<nav class="ht-breadcrumbs".*?</nav>', page, flags=re.S).group(0)
        # Every ancestor is a link; the area itself is the last, unlinked crumb.
        assert re.findall(r'href="/area/(\d+)"', crumbs) == trail[:-1]
    assert "ht-children" not in page  # a grid has no sub-areas


def test_children_and_industries_add_up_to_the_area(analyzed_store):
    rows = run_rows(analyzed_store)
    run_id = int(rows["run_id"].iloc[0])
    for code in (None, busiest(rows, "district"), busiest(rows, "street")):
        figures = area_stats.figures(analyzed_store, code, run_id)
        inside = rows if code is None else rows[rows[f"{area_stats.level_of(code)}_code"] == code]
        assert figures["orgs"] == len(inside)
        assert figures["blank"] == int(((inside["status"] == "blank") & inside["in_scope"]).sum())
        kids = area_stats.children(analyzed_store, code, run_id)
        assert kids["orgs"].fillna(0).sum() == figures["orgs"]
        industries = area_stats.industries(analyzed_store, code, run_id)
        assert industries["orgs"].sum() == figures["orgs"] and industries["blank"].sum() == figures["blank"]
        assert (industries["covered"] + industries["work"] + industries["blank"] == industries["in_scope"]).all()


def test_trend_has_one_point_per_run(analyzed_store):
    trend = area_stats.trend(analyzed_store, None)
    assert list(trend["run_id"]) == sorted(trend["run_id"]) and len(trend) == 2


def test_ledger_export_is_the_blank_in_scope_set(client, analyzed_store):
    rows = run_rows(analyzed_store)
    street = busiest(rows, "street")
    expected = rows[(rows["street_code"] == street) & (rows["status"] == "blank") & rows["in_scope"]]
    csv = client.get(f"/area/{street}/export/ledger.csv")
    assert csv.status_code == 200 and csv.data.startswith("\ufeff".encode())
    frame = pd.read_csv(io.BytesIO(csv.data), encoding="utf-8-sig", dtype=str)
    assert set(frame["编号"]) == set(expected["org_id"]) and len(frame) == len(expected)
    employees = frame["从业人员"].astype(int).tolist()
    assert employees == sorted(employees, reverse=True)
    workbook = client.get(f"/area/{street}/export/ledger.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(workbook.data))
    sheet = book.active
    # A title row (area, run, date), then the header, repeated on every printed page.
    name = analyzed_store.read_frame("areas", ["name"], where={"code": street})["name"].iloc[0]
    run_id = int(rows["run_id"].iloc[0])
    assert sheet.cell(1, 1).value == f"{name} 空白组织台账 · 分析 #{run_id} · {date.today().isoformat()}"
    assert sheet.max_row == len(expected) + 2 and sheet.cell(2, 2).value == "名称"
    assert {sheet.cell(r, 1).value for r in range(3, sheet.max_row + 1)} == set(expected["org_id"])
    assert sheet.print_title_rows == "$2:$2" and sheet.page_setup.orientation == "landscape"
    assert sheet.page_setup.fitToWidth == 1 and sheet.freeze_panes == "A3"
    # The street's and community's names beside their codes, and the file named for the area.
    headers = [c.value for c in sheet[2]]
    assert {"所在街道", "所在社区"} <= set(headers)
    assert sheet.cell(3, headers.index("所在街道") + 1).value == name
    # How each position was found, in words.
    assert {sheet.cell(r, headers.index("位置来源") + 1).value for r in range(3, sheet.max_row + 1)} <= {
        "台账坐标",
        "所在场所",
        "地址匹配",
        "地理编码",
        "近似：所属社区",
        "近似：所属街道",
        "已手工定位",
    }
    assert quote(f"{name}-空白组织台账-{date.today().isoformat()}.xlsx") in workbook.headers["Content-Disposition"]


def test_children_workbook_matches_the_run_cell_by_cell(client, analyzed_store):
    rows = run_rows(analyzed_store)
    district = busiest(rows, "district")
    sheet = openpyxl.load_workbook(io.BytesIO(client.get(f"/area/{district}/export/children.xlsx").data)).active
    headers = [c.value for c in sheet[2]]
    assert headers[:3] == ["区划代码", "名称", "层级"]
    kids = area_stats.children(analyzed_store, district, int(rows["run_id"].iloc[0]))
    got = {row[0]: row for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert set(got) == set(kids["code"])
    both, orgs = headers.index("两个覆盖率"), headers.index("两新组织")
    for kid in kids.itertuples():
        assert got[kid.code][orgs] == kid.orgs
        # An area with nobody in scope has no rate: an empty cell, not 0.
        assert got[kid.code][both] == (None if pd.isna(kid.both_rate) else pytest.approx(kid.both_rate))
    assert sheet.cell(3, both + 1).number_format == "0.0%"


def test_area_pages_answer_404_for_unknown_codes(client):
    assert client.get("/area/999999").status_code == 404
    assert client.get("/area/12ab").status_code == 404
    assert client.get("/area/530102/export/secrets.csv").status_code == 404


def test_area_page_shows_figures_charts_and_exports(client, analyzed_store):
    rows = run_rows(analyzed_store)
    code = busiest(rows, "community")
    page = client.get(f"/area/{code}").get_data(as_text=True)
    figures = area_stats.figures(analyzed_store, code, int(rows["run_id"].iloc[0]))
    assert f"<b>{figures['orgs']}</b>两新组织" in page
    assert page.count('<svg class="ht-chart"') == 3
    assert f"/area/{code}/export/ledger.xlsx" in page
    assert '"code": "' + code + '"' in page  # the map is focused on the area


def test_dashboard_is_one_screen_without_the_site_menu_and_can_refresh(client):
    page = client.get("/dashboard?refresh=3").get_data(as_text=True)
    assert 'class="ht-nav"' not in page and "退出大屏" in page
    assert 'data-refresh="10"' in page  # never faster than MIN_REFRESH_S
    assert 'data-refresh="0"' in client.get("/dashboard").get_data(as_text=True)
    assert "/vendor/echarts/echarts.min.js" in page
    assert client.get("/dashboard?refresh=soon").status_code == 400


def test_dashboard_figures_are_the_runs_and_small_samples_rank_last(analyzed_store):
    rows = run_rows(analyzed_store)
    scoped = rows[rows["in_scope"].astype(bool)]
    least = int(scoped["district_code"].value_counts().median())  # some districts above, some below
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_RANK_MIN": least})
    board = signed_in(app).get("/dashboard/data.json").get_json()
    assert board["figures"]["orgs"] == len(rows)
    assert board["figures"]["blank"] == int((scoped["status"] == "blank").sum())
    kids = board["children"]
    n = scoped["district_code"].value_counts()
    assert {k["code"]: k["in_scope"] for k in kids if k["in_scope"]} == n.to_dict()
    ranked = [k["ranked"] for k in kids]
    assert ranked == sorted(ranked, reverse=True) and True in ranked and False in ranked
    assert all(k["ranked"] == (k["in_scope"] >= least) for k in kids)
    rates = [k["both_rate"] for k in kids if k["ranked"]]
    assert rates == sorted(rates, reverse=True)
    assert {f["properties"]["code"] for f in board["outlines"]["features"]} == {k["code"] for k in kids}
    assert sum(i["in_scope"] for i in board["industries"]) <= len(scoped)


def test_dashboard_drills_down_and_refuses_unknown_areas(client, analyzed_store):
    rows = run_rows(analyzed_store)
    district = busiest(rows, "district")
    board = client.get(f"/dashboard/data.json?area={district}").get_json()
    assert board["area"]["code"] == district and [a["code"] for a in board["trail"]] == [None, district]
    inside = rows[rows["district_code"] == district]
    assert board["figures"]["orgs"] == len(inside)
    assert {k["code"] for k in board["children"] if k["orgs"]} == set(inside["street_code"].dropna())
    assert all(k["code"].startswith(district) for k in board["children"])
    for bad in ("999999", "12", "abc", "5301020010019999"):
        assert client.get(f"/dashboard/data.json?area={bad}").status_code == 404


def test_map_filters_by_size_scope_and_area(client, analyzed_store):
    rows = run_rows(analyzed_store)
    street = busiest(rows, "street")

    def ids(query: str) -> set[str]:
        answer = client.get(f"/map/data/orgs?bbox={BOX}&zoom=17&{query}").get_json()
        assert answer["mode"] == "points", query
        return {f["properties"]["org_id"] for f in answer["features"]}

    assert ids(f"area={street}") == set(rows.loc[rows["street_code"] == street, "org_id"])
    small = rows["employees"].fillna(0).between(10, 49)
    assert ids(f"area={street}&size=small") == set(rows.loc[small & (rows["street_code"] == street), "org_id"])
    outside = rows[~rows["in_scope"] & (rows["street_code"] == street)]
    assert ids(f"area={street}&scope=out") == set(outside["org_id"])
    for bad in ("size=huge", "scope=maybe", "area=12", "area=abcdef"):
        assert client.get(f"/map/data/orgs?bbox={BOX}&{bad}").status_code == 400, bad


def test_pairing_lines_join_each_organization_to_its_center(client, analyzed_store):
    centers = analyzed_store.read_frame("service_centers", ["center_id"]).set_index("center_id")
    orgs = analyzed_store.read_frame("organizations", ["org_id"]).set_index("org_id")
    rows = run_rows(analyzed_store).set_index("org_id")
    lines = client.get("/map/data/pairings?bbox=102.65,24.98,102.78,25.10&zoom=15").get_json()["features"]
    assert lines
    for f in lines:
        p, (start, end) = f["properties"], f["geometry"]["coordinates"]
        assert rows.loc[p["org_id"], "center_id"] == p["center_id"]
        org, center = orgs.loc[p["org_id"], "geometry"], centers.loc[p["center_id"], "geometry"]
        assert start == pytest.approx([org.x, org.y], abs=2e-6)
        assert end == pytest.approx([center.x, center.y], abs=2e-6)


def test_joint_branch_layer_holds_whole_proposals(client, analyzed_store):
    with analyzed_store.connect() as conn:
        result = conn.execute(
            text(
                "SELECT proposal_id, count(*) AS units, sum(party_members) AS members FROM run_joint_branches "
                "WHERE run_id = (SELECT max(id) FROM analysis_runs) GROUP BY proposal_id"
            )
        )
        expected = {r.proposal_id: (r.units, r.members) for r in result}
    features = client.get(f"/map/data/branches?bbox={BOX}&zoom=13").get_json()["features"]
    assert len(features) == len(expected) > 0
    for f in features:
        p = f["properties"]
        assert (p["units"], p["party_members"]) == expected[p["proposal_id"]]
        assert len(f["geometry"]["coordinates"]) == p["units"] and 2 <= p["units"] <= 5 and p["party_members"] >= 3


def test_area_layers_carry_label_points_inside_their_polygons(client):
    import shapely

    features = client.get(f"/map/data/street?bbox={BOX}&zoom=12").get_json()["features"]
    for f in features[:50]:
        shape = shapely.geometry.shape(f["geometry"])
        assert shape.buffer(1e-3).contains(shapely.Point(f["properties"]["label"]))


def test_nearby_names_the_areas_of_the_point(client, analyzed_store):
    org = analyzed_store.read_frame("organizations", ["org_id"]).iloc[0]
    rows = run_rows(analyzed_store).set_index("org_id")
    answer = client.get(f"/map/nearby?lon={org.geometry.x}&lat={org.geometry.y}&r=300").get_json()
    codes = [a["code"] for a in answer["areas"]]
    assert codes[:3] == list(rows.loc[org["org_id"], ["district_code", "street_code", "community_code"]])


def test_embed_is_chosen_by_its_url_and_framed_only_where_allowed(analyzed_store):
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})
    client = signed_in(app)
    rows = run_rows(analyzed_store)
    street = busiest(rows, "street")
    page = client.get(f"/embed?area={street}&layers=street,orgs&status=blank")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")
    assert '"filters": {"status": "blank"}' in html and f'"code": "{street}"' in html
    assert "ht-bar" not in html and "/map/data/" in html  # no header; layers by bbox as on the map
    assert client.get("/").headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")
    for bad in ("layers=secret", "basemap=google", "center=north", "zoom=99", "status=nobody", "area=12ab"):
        assert client.get(f"/embed?{bad}").status_code == 400, bad
    assert client.get("/embed?area=999999").status_code == 404
    allowed = signed_in(
        create_app(
            {"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_FRAME_ANCESTORS": "https://oa.example.gov.cn"}
        )
    )
    assert (
        allowed.get("/embed").headers["Content-Security-Policy"].endswith("frame-ancestors https://oa.example.gov.cn")
    )
    assert allowed.get("/").headers["Content-Security-Policy"].endswith("frame-ancestors 'self'")
