"""The open API: OGC API – Features read by real clients (OWSLib, GDAL's OAPIF driver), a valid
OpenAPI document fuzzed by schemathesis, and bbox / paging / filter answers checked against
direct queries — on both backends."""

import io
import json
import os
import shutil
import subprocess
import sys
from urllib.parse import urlencode

import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from app import create_app
from app.store import Store
from app.store.features import COLLECTIONS

from .conftest import Served, api_token, signed_in

BOX = (102.68, 25.01, 102.74, 25.06)


@pytest.fixture(scope="module")
def client(analyzed_store: Store):
    return signed_in(create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True}))


@pytest.fixture(scope="module")
def served(analyzed_store: Store):
    served = Served(analyzed_store)
    # Clients of the API authenticate with a token in a header, as OWSLib and GDAL can.
    served.auth = {"Authorization": f"Bearer {api_token(analyzed_store)}"}
    yield served
    served.close()


def in_box(store: Store, table: str, key: str, box=BOX) -> set:
    """The ids of a table's rows meeting a box, the slow and obvious way (shapely on all rows)."""
    frame = store.read_frame(table, [key])
    return set(frame.loc[frame.intersects(shapely.box(*box)), key])


def test_landing_conformance_and_collections(client):
    landing = client.get("/api").get_json()
    rels = {link["rel"] for link in landing["links"]}
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= rels
    conforms = client.get("/api/conformance").get_json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conforms
    collections = client.get("/api/collections").get_json()["collections"]
    assert [c["id"] for c in collections] == list(COLLECTIONS)
    for c in collections:
        assert any(link["rel"] == "items" for link in c["links"]), c["id"]
    orgs = client.get("/api/collections/organizations").get_json()
    minx, miny, maxx, maxy = orgs["extent"]["spatial"]["bbox"][0]
    assert 102 < minx < maxx < 104 and 24 < miny < maxy < 27


def test_owslib_lists_collections_and_reads_items_by_bbox(served, analyzed_store):
    from owslib.ogcapi.features import Features

    api = Features(served.url + "/api", headers=served.auth)
    ids = [c["id"] for c in api.collections()["collections"]]
    assert "organizations" in ids and "joint-branches" in ids
    answer = api.collection_items("organizations", bbox=list(BOX), limit=10_000)
    got = {f["properties"]["org_id"] for f in answer["features"]}
    assert got == in_box(analyzed_store, "organizations", "org_id")


def test_gdal_oapif_driver_reads_the_service(served, analyzed_store):
    # In a child process: GDAL keeps the GIL during its HTTP calls, which would starve the
    # server thread of this one.
    script = (
        "import json, sys, pyogrio\n"
        "source = 'OAPIF:' + sys.argv[1]\n"
        "layers = [str(name) for name, _ in pyogrio.list_layers(source)]\n"
        "frame = pyogrio.read_dataframe(source, layer='service-centers', bbox=tuple(map(float, sys.argv[2:])))\n"
        "print(json.dumps({'layers': layers, 'ids': list(frame['center_id']), 'epsg': frame.crs.to_epsg()}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, served.url + "/api", *map(str, BOX)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={
            **os.environ,
            "GDAL_HTTP_AUTH": "BEARER",
            "GDAL_HTTP_BEARER": served.auth["Authorization"].removeprefix("Bearer "),
        },
    )
    answer = json.loads(done.stdout)
    assert {"organizations", "districts", "service-centers", "area-coverage"} <= set(answer["layers"])
    assert set(answer["ids"]) == in_box(analyzed_store, "service_centers", "center_id")
    assert answer["epsg"] == 4326


def test_openapi_document_is_valid(client):
    from openapi_spec_validator import validate

    doc = client.get("/api/openapi.json").get_json()
    validate(doc)
    assert f"/collections/{next(iter(COLLECTIONS))}/items" in doc["paths"]
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/collections/organizations/items" in page and "https://" not in page


def test_paging_follows_next_links_to_exactly_the_rows_in_the_box(client, analyzed_store):
    url = "/api/collections/organizations/items?" + urlencode({"bbox": ",".join(map(str, BOX)), "limit": 37})
    seen, pages = [], 0
    while url:
        page = client.get(url).get_json()
        seen += [f["id"] for f in page["features"]]
        assert page["numberReturned"] == len(page["features"]) <= 37
        nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else None
        pages += 1
    assert len(seen) == len(set(seen)) and set(seen) == in_box(analyzed_store, "organizations", "org_id")
    assert pages == len(seen) // 37 + 1
    hits = client.get(f"/api/collections/organizations/items?bbox={','.join(map(str, BOX))}&resulttype=hits")
    assert hits.get_json()["numberMatched"] == len(seen)


def test_filters_and_sorting_match_direct_queries(client, analyzed_store):
    with analyzed_store.connect() as conn:
        expected = {
            r[0]
            for r in conn.execute(
                text(
                    "SELECT o.org_id FROM organizations o JOIN run_organizations r ON r.organization_id = o.id "
                    "WHERE r.run_id = (SELECT max(id) FROM analysis_runs) AND r.status = 'blank' "
                    "AND o.org_type = 'social_org'"
                )
            )
        }
    answer = client.get("/api/collections/organizations/items?status=blank&org_type=social_org&limit=10000")
    assert {f["id"] for f in answer.get_json()["features"]} == expected
    ranked = client.get("/api/collections/organizations/items?sortby=-employees,org_id&limit=500").get_json()
    keys = [(-f["properties"]["employees"], f["id"]) for f in ranked["features"]]
    assert keys == sorted(keys)
    csv = client.get("/api/collections/organizations/items?status=blank&org_type=social_org&limit=10000&f=csv")
    frame = pd.read_csv(io.BytesIO(csv.data), encoding="utf-8-sig", dtype=str)
    assert set(frame["org_id"]) == expected and frame["geometry_wkt"].str.startswith("POINT").all()


@pytest.mark.parametrize("collection", COLLECTIONS)
def test_features_written_by_the_database_agree_with_the_csv_page(client, collection):
    """GeoJSON pages are written by the database, CSV pages from rows in Python: the same items
    in the same order, each property of its declared JSON type, the same geometry to 1 cm."""
    coll = COLLECTIONS[collection]
    query = f"/api/collections/{collection}/items?limit=300"
    found = client.get(query).get_json()["features"]
    table = pd.read_csv(io.BytesIO(client.get(query + "&f=csv").data), encoding="utf-8-sig", keep_default_na=False)
    assert [str(f["id"]) for f in found] == table[coll.fid].astype(str).tolist()
    assert found or collection in ("service-gaps", "siting", "blank-areas")
    kinds = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
    for feature, (_, row) in zip(found, table.iterrows(), strict=True):
        assert feature["type"] == "Feature" and list(feature["properties"]) == list(coll.properties)
        for name, (_, kind) in coll.properties.items():
            value = feature["properties"][name]
            assert value is None or (isinstance(value, kinds[kind]) and (kind == "boolean") == isinstance(value, bool))
            if kind in ("integer", "number") and value is not None:
                assert value == pytest.approx(float(row[name]))
            elif kind == "boolean" and value is not None:
                assert str(value) == str(row[name])
        if feature["geometry"] is None:  # a party organization on no place
            assert row["geometry_wkt"] == ""
            continue
        geometry = shapely.geometry.shape(feature["geometry"])
        expected = shapely.from_wkt(row["geometry_wkt"])
        assert geometry.geom_type == expected.geom_type
        assert shapely.equals_exact(geometry, expected, tolerance=1e-6)


def test_results_of_an_earlier_run_and_single_items(client, analyzed_store):
    first = client.get("/api/collections/area-coverage/items?level=city&run=1").get_json()["features"]
    assert first == []  # the city row has no area polygon
    districts = client.get("/api/collections/area-coverage/items?level=district&run=1&limit=100").get_json()
    assert districts["run"] == 1 and len(districts["features"]) > 5
    with analyzed_store.connect() as conn:
        code, both = conn.execute(
            text("SELECT code, both_rate FROM run_areas WHERE run_id = 1 AND level = 'district' ORDER BY code")
        ).first()
    one = client.get(f"/api/collections/area-coverage/items/{code}?run=1").get_json()
    assert one["id"] == code and one["properties"]["both_rate"] == pytest.approx(both)
    assert client.get("/api/collections/area-coverage/items?run=99").status_code == 400
    stats = client.get("/api/stats/district?run=1").get_json()["rows"]
    assert {r["code"]: r["both_rate"] for r in stats}[code] == pytest.approx(both)
    compare = client.get("/api/stats/compare?a=1&b=2").get_json()
    assert compare["a"] == 1 and {r["code"] for r in compare["rates"]} >= {"city", code}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("bbox=1,2,3", "bbox"),
        ("bbox=10,10,0,0", "bbox"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("sortby=secret", "sortby"),
        ("f=xml", "f"),
        ("employees=many", "employees"),
        ("operating=yes", "operating"),
        ("crs=EPSG:3857", "crs"),
        ("colour=red", "colour"),
        ("resulttype=all", "resulttype"),
    ],
)
def test_bad_parameters_get_json_400_naming_them(client, query, parameter):
    answer = client.get(f"/api/collections/organizations/items?{query}")
    assert answer.status_code == 400 and answer.mimetype == "application/json"
    body = answer.get_json()
    assert body["parameter"] == parameter and " / " in body["description"]


def test_numbers_beyond_64_bits_are_refused_not_crashed_on(client):
    huge = str(2**70)
    assert client.get(f"/api/collections/siting/items/{huge}").status_code == 404
    answer = client.get(f"/api/collections/organizations/items?employees={huge}")
    assert answer.status_code == 400 and answer.get_json()["parameter"] == "employees"


def test_errors_are_json_never_html(client):
    for path in ("/api/nope", "/api/collections/nope", "/api/collections/organizations/items/nope", "/api/stats/x"):
        answer = client.get(path)
        assert answer.status_code in (400, 404) and answer.mimetype == "application/json", path
    assert client.post("/api/collections").status_code == 405
    assert client.post("/api/collections").mimetype == "application/json"


def test_no_server_error_for_generated_requests(served):
    """schemathesis sends requests generated from the OpenAPI document to the live app
    (loopback only, a bounded number per operation): none may end in a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(served.url + "/api/openapi.json", headers=served.auth)
    failures, sent = [], []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:
        label = operation.label

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
        )
        def check(case):
            response = case.call(timeout=30, headers=served.auth)
            sent.append(case.operation.label)
            if response.status_code >= 500:
                failures.append(f"{case.operation.label} {case.path_parameters} {case.query}: {response.status_code}")
            assert response.headers.get("Content-Type", "").split(";")[0] != "text/html", case.operation.label

        check()
        assert label in sent
    assert len(set(sent)) == len(operations)
    assert not failures, failures[:5]


def test_kept_pages_follow_writes_and_callers(store: Store):
    from app.services.demo import load_demo

    load_demo(store, n_orgs=300, seed=8)
    app = create_app({"DATABASE_URL": store.url, "TESTING": True})
    admin = signed_in(app)
    url = "/api/collections/organizations/items?limit=1000"
    first = admin.get(url).get_json()
    assert admin.get(url).get_json()["features"] == first["features"]  # kept
    # A community user asking the very same URL gets their own page, not the kept one.
    community = store.read_frame("areas", ["code"], where={"level": "community"})["code"].iloc[0]
    theirs = signed_in(app, "community", community).get(url).get_json()
    assert len(theirs["features"]) < len(first["features"])
    # A write drops every kept page: the next answer has the new organization.
    org = store.read_frame("organizations").head(1)
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", org.drop(columns="id").assign(org_id="KEPT-1", credit_code=None))
    again = admin.get(url).get_json()
    assert len(again["features"]) == len(first["features"]) + 1
    # So does a new analysis run: the page of the latest run names it.
    from app.services.analysis import Parameters, run_analysis

    run_id, _ = run_analysis(store, Parameters())
    assert admin.get(url).get_json()["run"] == run_id


def _orgs(client, **params) -> dict:
    answer = client.get("/api/collections/organizations/items?" + urlencode(params))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()


def test_every_page_says_how_many_items_match(client, analyzed_store):
    box = ",".join(map(str, BOX))
    total = len(analyzed_store.read_frame("organizations", ["org_id"]))
    assert _orgs(client, bbox=box, limit=10)["numberMatched"] == len(in_box(analyzed_store, "organizations", "org_id"))
    # A second page of the same box, a page without a box, a filter, one that matches nothing.
    assert _orgs(client, bbox=box, limit=10, offset=10)["numberMatched"] == len(
        in_box(analyzed_store, "organizations", "org_id")
    )
    assert _orgs(client, limit=5)["numberMatched"] == total
    enterprises = analyzed_store.read_frame("organizations", ["org_id"], where={"org_type": "enterprise"})
    assert _orgs(client, limit=5, org_type="enterprise")["numberMatched"] == len(enterprises)
    nothing = _orgs(client, limit=5, org_type="enterprise", employees=-1)
    assert nothing["numberMatched"] == 0 and nothing["features"] == []


def test_a_jurisdiction_counts_only_its_own(analyzed_store):
    street = next(iter(analyzed_store.read_frame("areas", ["code"], where={"level": "street"})["code"]))
    client = signed_in(create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True}), "street", street)
    mine = set(analyzed_store.scoped(street).read_frame("organizations", ["org_id"])["org_id"])
    page = _orgs(client, limit=5)
    assert page["numberMatched"] == len(mine) > 5 and {f["id"] for f in page["features"]} <= mine


def test_a_count_that_takes_too_long_is_left_out_not_waited_for(analyzed_store, monkeypatch):
    from sqlalchemy.exc import DBAPIError

    from app.store import features
    from app.store.cache import point_copies
    from app.store.errors import StoreError

    with pytest.raises((DBAPIError, StoreError)):
        with analyzed_store.connect() as conn, analyzed_store.backend.time_limit(conn, 0.05):
            slow = (
                "SELECT pg_sleep(2)"
                if analyzed_store.backend_name == "postgis"
                else "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
                "SELECT count(*) FROM n"
            )
            conn.execute(text(slow))
    page = features.Page(limit=5, run_id=0)
    assert features.count(analyzed_store, COLLECTIONS["organizations"], page, 30.0) > 0
    monkeypatch.setattr(features, "count", lambda *args, **kwargs: None)
    client = signed_in(create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True}))
    # Sorted by name, which the process's copy does not hold: a page the database answers.
    answer = _orgs(client, limit=5, org_type="social_org", sortby="name")
    assert "numberMatched" not in answer and answer["numberReturned"] == 5
    assert point_copies.COUNT_SECONDS <= 0.5


def test_gdal_counts_a_collection_in_a_request_or_two(served, analyzed_store):
    asked = []
    app = served.server.app

    def counting(environ, start_response):
        if environ["PATH_INFO"].endswith("/items"):
            asked.append(environ.get("QUERY_STRING", ""))
        return app(environ, start_response)

    served.server.app = counting
    script = (
        "import json, sys, pyogrio\n"
        "info = pyogrio.read_info('OAPIF:' + sys.argv[1], layer='organizations', force_feature_count=True)\n"
        "print(json.dumps({'features': int(info['features'])}))\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script, served.url + "/api"],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                "GDAL_HTTP_AUTH": "BEARER",
                "GDAL_HTTP_BEARER": served.auth["Authorization"].removeprefix("Bearer "),
            },
        )
    finally:
        served.server.app = app
    assert done.returncode == 0, done.stderr
    total = len(analyzed_store.read_frame("organizations", ["org_id"]))
    assert json.loads(done.stdout)["features"] == total
    assert len(asked) <= 3, asked


def _media(value: str) -> tuple[str, dict]:
    kind, *params = [part.strip() for part in value.split(";")]
    return kind.lower(), dict(p.split("=", 1) for p in params if "=" in p)


def test_every_link_says_what_its_target_serves(client):
    pages = [
        "/api",
        "/api/collections",
        "/api/collections/organizations",
        "/api/collections/organizations/items?limit=2",
    ]
    checked = 0
    for path in pages:
        for link in client.get(path).get_json()["links"]:
            target = client.get(link["href"].replace("http://localhost", ""))
            assert target.status_code == 200, link
            kind, params = _media(link["type"])
            served_kind, served_params = _media(target.headers["Content-Type"])
            # The same media type, and every parameter the link names (the OpenAPI version).
            assert served_kind == kind and params.items() <= served_params.items(), (link, target.headers)
            checked += 1
    assert checked > 10
    assert client.get("/api/openapi.json").headers["Content-Type"] == "application/vnd.oai.openapi+json;version=3.0"


def test_debians_ogrinfo_counts_the_collection_as_the_docs_say(served, analyzed_store):
    """docs/api.md's instruction for Debian 12's GDAL 3.6 (the header form: its GDAL_HTTP_AUTH
    has no BEARER) gives the whole count at once."""
    ogrinfo = shutil.which("ogrinfo")
    if ogrinfo is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Debian's gdal-bin is required under CI (scripts/setup.sh test installs it)")
        pytest.skip("gdal-bin not installed")
    done = subprocess.run(
        [ogrinfo, "-so", "OAPIF:" + served.url + "/api", "organizations"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: {served.auth['Authorization']}"},
    )
    assert done.returncode == 0, done.stderr
    total = len(analyzed_store.read_frame("organizations", ["org_id"]))
    assert f"Feature Count: {total}" in done.stdout
