"""The map page and its data endpoints, on both backends, through Flask's test client."""

import json
import re

import pytest
from sqlalchemy import text

from app import create_app
from app.store import Store
from app.web import maps

from .conftest import demo_city, signed_in

URBAN_BOX = "102.60,24.90,102.90,25.15"


@pytest.fixture
def client(demo_store: Store):
    return signed_in(create_app({"DATABASE_URL": demo_store.url, "TESTING": True}))


def test_map_page_is_small_and_uses_no_outside_url(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "两新组织" in html and "演示数据" in html
    assert not re.findall(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", html, flags=re.I)
    assert len(page.data) < 50_000
    for src in re.findall(r'(?:src|href)="(/[^"]+)"', html):
        assert client.get(src).status_code == 200, src


def test_organizations_at_street_zoom_are_points_inside_the_box(client):
    box = (102.70, 25.03, 102.72, 25.05)
    answer = client.get(f"/map/data/orgs?bbox={','.join(map(str, box))}&zoom=16").get_json()
    assert answer["mode"] == "points"
    orgs = demo_city().organizations
    xy = orgs.get_coordinates()
    inside = (xy.x >= box[0]) & (xy.x <= box[2]) & (xy.y >= box[1]) & (xy.y <= box[3])
    assert {f["properties"]["org_id"] for f in answer["features"]} == set(orgs.loc[inside, "org_id"])
    assert {f["properties"]["status"] for f in answer["features"]} <= {"org", "work", "blank"}


def test_organizations_at_city_zoom_are_clusters_that_add_up(client):
    answer = client.get(f"/map/data/orgs?bbox={URBAN_BOX}&zoom=11").get_json()
    assert answer["mode"] == "clusters"
    # Clusters come by whole tiles: every organization of the tiles covering the view, once.
    minx, miny, maxx, maxy = answer["tiles"]
    box = list(map(float, URBAN_BOX.split(",")))
    assert minx <= box[0] and miny <= box[1] and maxx >= box[2] and maxy >= box[3]
    xy = demo_city().organizations.get_coordinates()
    inside = ((xy.x >= minx) & (xy.x < maxx) & (xy.y >= miny) & (xy.y < maxy)).sum()
    assert sum(f["properties"]["n"] for f in answer["features"]) == inside
    assert sum(answer["by_status"].values()) == inside
    assert len(answer["features"]) < inside / 5
    # The same view again is answered from the shared cache, identically.
    assert client.get(f"/map/data/orgs?bbox={URBAN_BOX}&zoom=11").get_json() == answer


def test_status_matches_stored_party_work(client):
    city = demo_city()
    covered = set(city.coverage["organization_id"])
    work = set(city.instructors["organization_id"])
    answer = client.get("/map/data/orgs?bbox=102.70,25.02,102.73,25.05&zoom=17").get_json()
    ids = dict(zip(city.organizations["org_id"], city.organizations["id"], strict=True))
    for f in answer["features"]:
        i = ids[f["properties"]["org_id"]]
        expected = "org" if i in covered else "work" if i in work else "blank"
        assert f["properties"]["status"] == expected


@pytest.mark.parametrize("layer", ["district", "street", "community", "grid", "places", "centers", "stations"])
def test_every_layer_answers_geojson(client, layer):
    response = client.get(f"/map/data/{layer}?bbox={URBAN_BOX}&zoom=13")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    answer = json.loads(response.data)
    assert answer["type"] == "FeatureCollection" and answer["features"]


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("bbox=1,2&zoom=3", "bbox"),
        ("bbox=a,b,c,d", "bbox"),
        ("bbox=10,10,5,5", "bbox"),
        (f"bbox={URBAN_BOX}&zoom=x", "zoom"),
        (f"bbox={URBAN_BOX}&zoom=40", "zoom"),
    ],
)
def test_bad_parameters_get_400_naming_them(client, query, parameter):
    response = client.get(f"/map/data/orgs?{query}")
    assert response.status_code == 400
    body = response.get_json()
    assert body["parameter"] == parameter and "/" in body["error"]


def test_unknown_layer_is_404(client):
    assert client.get(f"/map/data/nope?bbox={URBAN_BOX}").status_code == 404


def test_unreachable_database_gives_503_page():
    app = create_app({"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none", "TESTING": True})
    client = app.test_client()
    page = client.get("/")
    assert page.status_code == 503 and "DATABASE_URL" in page.get_data(as_text=True)
    data = client.get(f"/map/data/orgs?bbox={URBAN_BOX}&zoom=12")
    assert data.status_code == 503 and "error" in data.get_json()


def test_page_without_schema_says_what_to_run(tmp_path):
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite'}", "TESTING": True})
    page = app.test_client().get("/")
    assert page.status_code == 503 and "hongtu init-db" in page.get_data(as_text=True)


@pytest.fixture
def analyzed_client(store: Store):
    """A small demo city with one analysis run."""
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo

    load_demo(store, n_orgs=600, seed=11)
    run_analysis(store, Parameters())
    return signed_in(create_app({"DATABASE_URL": store.url, "TESTING": True})), store


def test_filters_narrow_the_organizations(analyzed_client):
    client, store = analyzed_client
    box = "102.3,24.5,103.5,26.0"
    every = client.get(f"/map/data/orgs?bbox={box}&zoom=16").get_json()
    blank = client.get(f"/map/data/orgs?bbox={box}&zoom=16&status=blank").get_json()
    social = client.get(f"/map/data/orgs?bbox={box}&zoom=16&org_type=social_org&status=blank").get_json()
    assert every["mode"] == "points" and 0 < social["total"] < blank["total"] < every["total"]
    assert {f["properties"]["status"] for f in blank["features"]} == {"blank"}
    assert {f["properties"]["org_type"] for f in social["features"]} == {"social_org"}
    # Out-of-scope organizations are grey ('out') once a run has said so.
    statuses = {f["properties"]["status"] for f in every["features"]}
    assert statuses <= {"org", "work", "blank", "out"} and "out" in statuses
    assert client.get(f"/map/data/orgs?bbox={box}&status=bogus").status_code == 400


def test_search_finds_areas_places_centers_and_stations_grouped_by_kind(analyzed_client):
    client, store = analyzed_client
    street = store.read_frame("areas", ["code", "name"], where={"level": "street"}).iloc[0]
    community = store.read_frame("areas", ["code", "name"], where={"level": "community"}).iloc[3]
    for q, code in (
        (street["name"][:2], street["code"]),
        (community["name"], community["code"]),
        (street["code"], None),
    ):
        answer = client.get(f"/map/search?q={q}").get_json()
        kinds = [g["kind"] for g in answer["groups"]]
        assert kinds[0] == "areas" and kinds == sorted(kinds, key=maps.SEARCH_KINDS.index), q
        areas = answer["groups"][0]["results"]
        found = {h["code"]: h for h in areas}
        hit = found[code or street["code"]]
        assert hit["url"] == f"/area/{hit['code']}" and hit["outline"]["type"] in ("Polygon", "MultiPolygon")
        (south, west), (north, east) = hit["bounds"]
        outline = store.read_frame("areas", [], where={"code": hit["code"]}).geometry.iloc[0]
        assert (west, south, east, north) == pytest.approx(outline.bounds, abs=1e-3)
        if code is None:  # a code finds the area and everything under it, coarsest first
            assert all(c.startswith(street["code"]) for c in found) and areas[0]["code"] == street["code"]
    for table, key, kind in (
        ("places", "place_id", "places"),
        ("service_centers", "center_id", "centers"),
        ("stations", "station_id", "stations"),
    ):
        row = store.read_frame(table, [key, "name"]).iloc[0]
        groups = {g["kind"]: g["results"] for g in client.get(f"/map/search?q={row['name']}").get_json()["groups"]}
        assert row[key] in [h[key] for h in groups[kind]], table
    assert client.get("/map/search?q=%25").get_json()["groups"] == []
    assert client.get("/map/search?q=").status_code == 400


def test_search_and_card_with_navigation(analyzed_client):
    from geo.crs import wgs84_to_bd09, wgs84_to_gcj02

    client, store = analyzed_client
    name = store.read_frame("organizations", ["org_id", "name"]).iloc[5]
    hits = client.get(f"/map/search?q={name['name'][:6]}").get_json()["results"]
    assert name["org_id"] in [h["org_id"] for h in hits]
    assert client.get("/map/search?q=%25").get_json()["results"] == []
    card = client.get(f"/map/org/{name['org_id']}").get_json()
    assert card["name"] == name["name"] and card["grid_code"].startswith(card["community_code"])
    assert card["center_name"].endswith("党群服务中心") and card["pair_distance_m"] >= 0
    glon, glat = wgs84_to_gcj02(card["lon"], card["lat"])
    blon, blat = wgs84_to_bd09(card["lon"], card["lat"])
    assert f"position={float(glon):.6f},{float(glat):.6f}" in card["navigation"]["amap"]
    assert f"location={float(blat):.6f},{float(blon):.6f}" in card["navigation"]["baidu"]
    assert client.get("/map/org/nope").status_code == 404


def test_run_layers_and_choropleth(analyzed_client):
    client, _ = analyzed_client
    box = "102.3,24.5,103.5,26.0"
    hot = client.get(f"/map/data/hotspots?bbox={box}&zoom=12").get_json()
    assert all(f["properties"]["kind"] == "hotspot" for f in hot["features"])
    communities = client.get(f"/map/data/community?bbox={box}&zoom=12").get_json()["features"]
    rated = [f["properties"]["both_rate"] for f in communities if f["properties"].get("in_scope")]
    assert rated and all(r is None or 0 <= r <= 1 for r in rated)


def test_nearby_lists_what_is_within_the_radius_nearest_first(analyzed_client):
    import pyproj

    client, store = analyzed_client
    centre = store.read_frame("service_centers", ["center_id"]).geometry.iloc[3]
    answer = client.get(f"/map/nearby?lon={centre.x}&lat={centre.y}&r=800").get_json()
    assert answer["centers"][0]["distance_m"] == 0
    distances = [o["distance_m"] for o in answer["organizations"]]
    assert distances == sorted(distances) and all(d <= 800 for d in distances)
    orgs = store.read_frame("organizations", ["org_id"])
    geod = pyproj.Geod(ellps="WGS84")
    d = geod.inv([centre.x] * len(orgs), [centre.y] * len(orgs), orgs.geometry.x, orgs.geometry.y)[2]
    assert len(answer["organizations"]) == min(50, int((d <= 800).sum()))
    assert client.get("/map/nearby?lon=x&lat=1").status_code == 400
    assert client.get(f"/map/nearby?lon={centre.x}&lat={centre.y}&r=99999").status_code == 400


def test_overlays_follow_amap_into_gcj02(client):
    from geo.crs import wgs84_to_gcj02

    box = (102.70, 25.03, 102.72, 25.05)
    plain = client.get(f"/map/data/orgs?bbox={','.join(map(str, box))}&zoom=16").get_json()
    gcj_box = [*wgs84_to_gcj02(box[0], box[1]), *wgs84_to_gcj02(box[2], box[3])]
    shifted = client.get(f"/map/data/orgs?bbox={','.join(str(float(v)) for v in gcj_box)}&zoom=16&crs=gcj02").get_json()
    wgs = {f["properties"]["org_id"]: f["geometry"]["coordinates"] for f in plain["features"]}
    gcj = {f["properties"]["org_id"]: f["geometry"]["coordinates"] for f in shifted["features"]}
    assert set(wgs) <= set(gcj)
    for org_id, (lon, lat) in wgs.items():
        expected = wgs84_to_gcj02(lon, lat)
        assert gcj[org_id] == pytest.approx([float(expected[0]), float(expected[1])], abs=2e-6)
    assert client.get(f"/map/data/district?bbox={URBAN_BOX}&crs=mars").status_code == 400


def test_center_card_counts_its_paired_organizations(analyzed_client):
    client, store = analyzed_client
    with store.connect() as conn:
        center_id, paired = conn.execute(
            text(
                "SELECT center_id, count(*) FROM run_organizations GROUP BY center_id ORDER BY count(*) DESC, center_id"
            )
        ).first()
    card = client.get(f"/map/center/{center_id}").get_json()
    assert card["paired"] == paired > 0 and card["level"] == "community" and card["area_name"]
    assert client.get("/map/center/nope").status_code == 404


def test_cached_clusters_follow_an_import(store: Store, tmp_path):
    """The low-zoom aggregates and the map page's counts and industries are cached for every
    instance and dropped by the import's commit."""
    import pandas as pd

    from app.intake import import_file
    from app.intake.export import export_kind
    from app.services.demo import load_demo

    load_demo(store, n_orgs=600, seed=3)
    client = signed_in(create_app({"DATABASE_URL": store.url, "TESTING": True, "HONGTU_POINT_LIMIT": 50}))
    url = f"/map/data/orgs?bbox={URBAN_BOX}&zoom=10"
    before = client.get(url).get_json()
    assert before["mode"] == "clusters"
    page = client.get("/").get_data(as_text=True)
    assert "<b>600</b>" in page and "测试新行业" not in page
    with store.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM map_cache")).scalar() > 0
    export_kind(store, "orgs", "csv", tmp_path / "orgs.csv")
    rows = pd.read_csv(tmp_path / "orgs.csv", dtype=str, encoding="utf-8-sig")
    # One new organization: a copy of the first, with its own id and no credit code.
    new = rows.iloc[[0]].copy()
    new.iloc[0, 0] = "NEW-1"
    new[[c for c in rows.columns if "信用代码" in c]] = None
    new[[c for c in rows.columns if "所属行业" in c]] = "测试新行业"
    new.to_csv(tmp_path / "one.csv", index=False, encoding="utf-8-sig")
    report = import_file(store, "orgs", tmp_path / "one.csv")
    assert report.ok, report.summary()
    after = client.get(url).get_json()
    assert after["total"] == before["total"] + 1
    page = client.get("/").get_data(as_text=True)
    assert "<b>601</b>" in page and '<option value="测试新行业">' in page


def test_an_analysis_run_leaves_the_city_maps_opening_clusters_kept(store: Store, tmp_path):
    """The first visitor after a run reads the opening view's clusters instead of grouping every
    organization; they are the clusters the database gives, and an import drops them."""
    import pandas as pd

    from app.intake import import_file
    from app.intake.export import export_kind
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo
    from app.store import cache, queries, tiles

    load_demo(store, n_orgs=600, seed=3)
    run_id, _ = run_analysis(store, Parameters())
    lat, lon = queries.city_center(store)
    pixel = tiles.pixel_degrees(tiles.CITY_ZOOM)
    screen = (lon - 640 * pixel, lat - 400 * pixel, lon + 640 * pixel, lat + 400 * pixel)  # 1280 × 800
    cell = tiles.cluster_cell(tiles.CITY_ZOOM)
    kept = cache.cluster_tiles(store, screen, cell, run_id, compute=False)
    assert kept is not None
    clusters, box = kept
    fresh = queries.organization_clusters(store, box, cell, run_id)
    assert sorted((c["gx"], c["gy"], c["n"], c["blank"]) for c in clusters) == sorted(
        (c["gx"], c["gy"], c["n"], c["blank"]) for c in fresh
    )
    assert sum(c["n"] for c in clusters) > 100
    export_kind(store, "orgs", "csv", tmp_path / "orgs.csv")
    rows = pd.read_csv(tmp_path / "orgs.csv", dtype=str, encoding="utf-8-sig")
    rows.iloc[:1].assign(**{rows.columns[1]: "改了名的组织"}).to_csv(tmp_path / "one.csv", index=False)
    assert import_file(store, "orgs", tmp_path / "one.csv").updated == 1
    assert cache.cluster_tiles(store, screen, cell, run_id, compute=False) is None


def test_security_headers_on_every_answer(client):
    for path in ("/", "/area/", "/api", f"/map/data/district?bbox={URBAN_BOX}&zoom=10", "/vendor/leaflet/leaflet.js"):
        headers = client.get(path).headers
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'self'" in csp, path
    # No base map configured: images only from Hongtu itself.
    assert "img-src 'self' data:;" in client.get("/").headers["Content-Security-Policy"]
    tianditu = create_app(
        {"DATABASE_URL": client.application.config["DATABASE_URL"], "TESTING": True, "HONGTU_TIANDITU_KEY": "k"}
    )
    assert "https://*.tianditu.gov.cn" in signed_in(tianditu).get("/").headers["Content-Security-Policy"]


def test_schema_of_an_older_version_says_to_upgrade(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'old.sqlite'}")
    store.init_schema()
    with store.connect() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0003'"))
    client = signed_in(create_app({"DATABASE_URL": store.url, "TESTING": True}))
    page = client.get("/")
    assert page.status_code == 503 and "hongtu init-db" in page.get_data(as_text=True)
    data = client.get(f"/map/data/orgs?bbox={URBAN_BOX}&zoom=12")
    assert data.status_code == 503 and "init-db" in data.get_json()["error"]
    assert client.get("/vendor/leaflet/leaflet.js").status_code == 200


def test_a_box_far_larger_than_a_screen_is_answered_without_caching(client):
    answer = client.get("/map/data/orgs?bbox=-180,-85,180,85&zoom=16")
    assert answer.status_code == 200 and answer.get_json()["mode"] == "clusters"
    assert answer.get_json()["tiles"] == [-180, -85, 180, 85]


def test_error_pages_are_hongtus_in_the_callers_language(analyzed_store):
    """404, 403 and 405 pages are Hongtu's own (never Werkzeug's English), in Chinese or, with
    lang=en, English; data routes answer the same errors as JSON with their code, including a
    403 with its own description (the API used to call it a server error)."""
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})
    client = signed_in(app)
    missing = client.get("/area/999999")
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404 and "页面不存在" in page and "requested URL" not in page
    english = client.get("/area/999999?lang=en").get_data(as_text=True)
    assert "Page not found" in english and "requested URL" not in english
    street = analyzed_store.read_frame("areas", ["code"], where={"level": "street"})["code"].iloc[0]
    staff = signed_in(app, "street", street)
    refused = staff.get("/api/stats/city")
    assert refused.status_code == 403 and refused.get_json()["code"] == "Forbidden"
    wrong_method = client.delete("/api/collections")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["code"] == "MethodNotAllowed"
    for path in ("/api/nowhere", "/map/nowhere"):
        answer = client.get(path)
        assert answer.status_code == 404 and answer.get_json()["code"] == "NotFound", path
    bad = client.get("/api/collections/organizations/items?limit=abc").get_json()
    assert bad["code"] == "InvalidParameterValue" and bad["parameter"] == "limit" and "limit" in bad["description"]
