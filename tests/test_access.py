"""Accounts, roles and jurisdiction over every route: who gets in, and what each one sees —
checked by comparing the ids answered with the ids expected, on both backends."""

import base64
import csv
import io
import re

import openpyxl
import pytest
from sqlalchemy import text

from app import create_app
from app.store import Store, accounts
from app.web.access import POLICY, PUBLIC

from .conftest import PASSWORD, ensure_user, signed_in

BOX = "102.3,24.5,103.5,26.0"


@pytest.fixture(scope="module")
def app(analyzed_store: Store):
    return create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})


def latest_rows(store: Store):
    with store.connect() as conn:
        return conn.execute(
            text(
                "SELECT o.org_id, r.community_code, r.street_code FROM run_organizations r "
                "JOIN organizations o ON o.id = r.organization_id WHERE r.run_id = (SELECT max(id) FROM analysis_runs)"
            )
        ).fetchall()


@pytest.fixture(scope="module")
def community(analyzed_store: Store) -> str:
    """The community holding the most organizations."""
    counts: dict[str, int] = {}
    for _, code, _ in latest_rows(analyzed_store):
        if code:
            counts[code] = counts.get(code, 0) + 1
    return max(counts, key=counts.get)


def sample_url(app, rule, code: str, org_id: str) -> str:
    """A URL of ``rule`` with plausible values for its arguments."""
    values = {
        "code": code,
        "what": "ledger",
        "fmt": "csv",
        "layer": "orgs",
        "collection_id": "organizations",
        "fid": org_id,
        "org_id": org_id,
        "center_id": "C1",
        "level": "community",
        "kind": "orgs",
        "name": "x.csv",
        "token_id": 1,
        "visit_id": 1,
        "package": "leaflet",
        "filename": "leaflet.js",
    }
    with app.test_request_context():
        from flask import url_for

        return url_for(rule.endpoint, **{a: values[a] for a in rule.arguments})


def test_every_endpoint_has_a_declared_policy(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - PUBLIC - set(POLICY) == set(), "declare who may use these in app/web/access.py POLICY"
    assert set(POLICY) <= endpoints, "POLICY names endpoints that do not exist"


def test_anonymous_callers_are_sent_to_login_or_refused(app, community, analyzed_store):
    org_id = latest_rows(analyzed_store)[0][0]
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        url = sample_url(app, rule, community, org_id)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            # State-changing requests carry a valid CSRF token, so only the login check can refuse them.
            with client.session_transaction() as session:
                session["csrf"] = "t"
            answer = client.open(url, method=method, data={"csrf_token": "t"})
            if url.startswith(("/api", "/map/")):
                assert answer.status_code == 401, (method, url)
                assert answer.is_json and "error" in answer.get_json(), url
            else:
                assert answer.status_code == 302, (method, url, answer.status_code)
                assert answer.headers["Location"].startswith("/login?next="), url
            checked += 1
    assert checked >= 30


def test_a_community_user_sees_only_their_community(app, community, analyzed_store):
    client = signed_in(app, "community", community)
    rows = latest_rows(analyzed_store)
    mine = {org for org, code, _ in rows if code == community}
    theirs = sorted({org for org, code, _ in rows if code != community})
    polygon = analyzed_store.read_frame("areas", [], where={"code": community}).geometry.iloc[0]

    # Lists: the API's organizations, the map's points, a search for every name.
    api = client.get(f"/api/collections/organizations/items?bbox={BOX}&limit=10000").get_json()
    assert {f["properties"]["org_id"] for f in api["features"]} == mine
    points = client.get(f"/map/data/orgs?bbox={BOX}&zoom=18").get_json()
    assert {f["properties"]["org_id"] for f in points["features"]} == mine
    hits = client.get("/map/search?q=公司").get_json()["results"]
    assert hits and {h["org_id"] for h in hits if h["kind"] == "organizations"} <= mine
    # Searching areas finds the community and what lies in it, never its neighbours or parents.
    district, street = community[:6], community[:9]
    for q in (district, street, "街道", "区"):
        areas = [h for h in client.get(f"/map/search?q={q}").get_json()["results"] if h["kind"] == "areas"]
        assert all(h["code"].startswith(community) for h in areas), q
    # Everything else located by geometry: only what meets the community's polygon.
    for collection, key, table in (
        ("service-centers", "center_id", "service_centers"),
        ("places", "place_id", "places"),
        ("stations", "station_id", "stations"),
    ):
        frame = analyzed_store.read_frame(table, [key])
        expected = set(frame.loc[frame.intersects(polygon), key])
        got = client.get(f"/api/collections/{collection}/items?limit=10000").get_json()["features"]
        assert {f["properties"][key] for f in got} == expected, collection
    extent = client.get("/api/collections/organizations").get_json()["extent"]["spatial"]["bbox"][0]
    assert extent == pytest.approx(list(polygon.bounds))
    areas = client.get("/api/collections/grids/items?limit=10000").get_json()["features"]
    assert areas and all(f["properties"]["code"].startswith(community) for f in areas)
    stats = client.get("/api/stats/grid").get_json()["rows"]
    assert stats and all(r["code"].startswith(community) for r in stats)

    # Single items: their own answer; anyone else's is not found.
    own = sorted(mine)[0]
    assert client.get(f"/api/collections/organizations/items/{own}").status_code == 200
    assert client.get(f"/map/org/{own}").status_code == 200
    for other in theirs[:5]:
        assert client.get(f"/api/collections/organizations/items/{other}").status_code == 404
        assert client.get(f"/map/org/{other}").status_code == 404

    # Area pages, exports and embeds: their own area, or 403 for any other.
    other = next(code for _, code, _ in rows if code and code != community)
    street = community[:9]
    for url in (
        "/area/{}",
        "/area/{}/export/ledger.csv",
        "/area/{}/export/children.xlsx",
        "/area/{}/report.xlsx",
        "/embed?area={}",
    ):
        assert client.get(url.format(community)).status_code == 200, url
        assert client.get(url.format(other)).status_code == 403, url
        assert client.get(url.format(street)).status_code == 403, url  # the parent is wider
    ledger = list(csv.reader(io.StringIO(client.get(f"/area/{community}/export/ledger.csv").data.decode("utf-8-sig"))))
    assert len(ledger) > 1 and {row[0] for row in ledger[1:]} <= mine
    # Without an area they land on their own.
    assert client.get("/area/").headers["Location"] == f"/area/{community}"
    assert client.get("/embed").headers["Location"].endswith(f"area={community}")
    assert client.get(f"/map/data/orgs?bbox={BOX}&zoom=18&area={other}").status_code == 403
    # City-wide figures and administration are not theirs.
    for url in ("/dashboard", "/api/stats/city", "/admin/", "/admin/audit"):
        assert client.get(url).status_code == 403, url
    # The list of runs is theirs, with their own figures in place of the city's.
    runs = client.get("/api/runs").get_json()["runs"]
    assert runs and all(r["summary"] is None and r["area"]["code"] == community for r in runs)


def test_roles_grant_what_they_say(app, community):
    viewer = signed_in(app, "viewer", community)
    page = viewer.get(f"/area/{community}")
    assert page.status_code == 200
    # Links are offered only where the role may go.
    html = page.get_data(as_text=True)
    assert 'href="/import/"' not in html and 'href="/dashboard"' not in html
    assert viewer.get(f"/area/{community}/export/ledger.csv").status_code == 403
    assert viewer.get("/import/").status_code == 403
    planner = signed_in(app, "planner")
    assert planner.get("/dashboard").status_code == 200 and planner.get("/area/report.xlsx").status_code == 200
    assert planner.get("/import/").status_code == 403 and planner.get("/admin/").status_code == 403
    admin = signed_in(app, "admin")
    assert admin.get("/admin/").status_code == 200 and admin.get("/import/").status_code == 200
    assert all(f'href="{link}"' in admin.get("/area/").get_data(as_text=True) for link in ("/import/", "/admin/"))


def form_token(client, url: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)


def test_login_logout_csrf_and_rate_limit(app, analyzed_store):
    user = ensure_user(analyzed_store, "planner")
    client = app.test_client()
    # No token, or a wrong one: 400 before the password is even looked at.
    assert client.post("/login", data={"username": user["username"], "password": PASSWORD}).status_code == 400
    token = form_token(client, "/login")
    wrong = client.post("/login", data={"username": user["username"], "password": PASSWORD, "csrf_token": "x"})
    assert wrong.status_code == 400
    signed = client.post("/login", data={"username": user["username"], "password": PASSWORD, "csrf_token": token})
    assert signed.status_code == 302 and client.get("/dashboard").status_code == 200
    cookie = signed.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    # The big screen has no menu: the sign-out form is on every other page.
    client.post("/logout", data={"csrf_token": form_token(client, "/area/")})
    assert client.get("/dashboard").status_code == 302

    # Five wrong passwords lock the name: the right one is then refused too, with 429. (From an
    # address of its own: other tests sign in from 127.0.0.1.)
    victim = ensure_user(analyzed_store, "viewer")["username"]
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "10.7.7.7"
    token = form_token(attacker, "/login")
    for _ in range(accounts.MAX_FAILED_LOGINS):
        answer = attacker.post("/login", data={"username": victim, "password": "guess-guess", "csrf_token": token})
        assert answer.status_code == 401
    answer = attacker.post("/login", data={"username": victim, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 429 and "1 分钟" in answer.get_data(as_text=True)
    assert answer.headers["Retry-After"].isdigit()
    # The address alone locks only after many more failures (an office shares one address).
    colleague = ensure_user(analyzed_store, "planner")["username"]
    answer = attacker.post("/login", data={"username": colleague, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 302
    token = form_token(attacker, "/login")  # signing in starts a new session, with a new token
    for n in range(accounts.MAX_FAILED_PER_ADDRESS):
        attacker.post("/login", data={"username": f"guess{n}", "password": "x", "csrf_token": token})
    answer = attacker.post("/login", data={"username": colleague, "password": PASSWORD, "csrf_token": token})
    assert answer.status_code == 429


def test_a_disabled_account_is_out_at_once(app, analyzed_store):
    ensure_user(analyzed_store, "viewer", "530102")
    client = signed_in(app, "viewer", "530102")
    token = accounts.issue_token(analyzed_store, "api", "viewer-530102")
    assert client.get("/area/530102").status_code == 200
    accounts.set_active(analyzed_store, "viewer-530102", False)
    try:
        assert client.get("/area/530102").status_code == 302
        answer = app.test_client().get("/api/collections", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401
    finally:
        accounts.set_active(analyzed_store, "viewer-530102", True)


def test_published_embed_links_expire_and_are_revoked(app, community, analyzed_store):
    admin = ensure_user(analyzed_store)["username"]
    live = accounts.issue_token(analyzed_store, "embed", admin, area_code=community, layers=["orgs"], days=1)
    expired = accounts.issue_token(analyzed_store, "embed", admin, area_code=community, layers=["orgs"], days=-1)
    client = app.test_client()
    page = client.get(f"/embed?token={live}&area={community}&layers=orgs")
    assert page.status_code == 200 and "ht-bar" not in page.get_data(as_text=True)
    data = client.get(f"/map/data/orgs?bbox={BOX}&zoom=18&token={live}").get_json()
    mine = {org for org, code, _ in latest_rows(analyzed_store) if code == community}
    assert {f["properties"]["org_id"] for f in data["features"]} == mine
    # Only what was published: no other layer, no card, no ledger, no other area.
    assert client.get(f"/map/data/places?bbox={BOX}&zoom=18&token={live}").status_code == 403
    assert client.get(f"/embed?token={live}&area={community[:9]}&layers=orgs").status_code == 403
    assert client.get(f"/area/{community}/export/ledger.csv?token={live}").status_code == 302
    assert client.get(f"/embed?token={expired}&area={community}&layers=orgs").status_code == 403
    # Revoked: refused from the next request on.
    for entry in accounts.list_tokens(analyzed_store, "embed"):
        if entry["live"] and entry["area_code"] == community and entry["layers"] == "orgs":
            accounts.revoke_token(analyzed_store, entry["id"])
    assert client.get(f"/embed?token={live}&area={community}&layers=orgs").status_code == 403
    assert client.get(f"/map/data/orgs?bbox={BOX}&zoom=18&token={live}").status_code == 403


def test_admin_publishes_and_revokes_a_link_in_the_browser_form(app, community, analyzed_store):
    admin = signed_in(app, "admin")
    token = form_token(admin, "/admin/")
    page = admin.post(
        "/admin/tokens",
        data={"csrf_token": token, "area": community, "layers": ["orgs", "community"], "days": "7", "label": "报告"},
    ).get_data(as_text=True)
    link = re.search(r'id="ht-published" readonly size="80" value="([^"]+)"', page).group(1).replace("&amp;", "&")
    anonymous = app.test_client()
    assert anonymous.get(link).status_code == 200
    newest = accounts.list_tokens(analyzed_store, "embed")[0]
    admin.post(f"/admin/tokens/{newest['id']}/revoke", data={"csrf_token": token})
    # An id beyond any database integer is no token: 404, not a server error.
    assert admin.post(f"/admin/tokens/{2**64}/revoke", data={"csrf_token": token}).status_code == 404
    assert anonymous.get(link).status_code == 403


def test_secretary_contacts_are_masked_for_roles_without_need(store: Store):
    with store.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO party_orgs (party_org_id, name, org_type, coverage_kind, members, secretary, "
                "secretary_phone) VALUES ('P1', '某公司党支部', '党支部', 'own', 5, '张三丰', '13812345678')"
            )
        )
    app = create_app({"DATABASE_URL": store.url, "TESTING": True})
    url = "/api/collections/party-orgs/items/P1"
    full = signed_in(app, "admin").get(url).get_json()["properties"]
    assert (full["secretary"], full["secretary_phone"]) == ("张三丰", "13812345678")
    masked = signed_in(app, "planner").get(url).get_json()["properties"]
    assert (masked["secretary"], masked["secretary_phone"]) == ("张**", "138****5678")
    # Nor can the masked value be found out by filtering on it.
    probe = signed_in(app, "planner").get("/api/collections/party-orgs/items?secretary_phone=13812345678")
    assert probe.get_json()["features"] == []


def test_audit_log_records_who_did_what(app, community, analyzed_store):
    client = signed_in(app, "community", community)
    assert client.get(f"/area/{community}/export/ledger.xlsx").status_code == 200
    accounts.authenticate(analyzed_store, "nobody", "nothing", "10.0.0.9")
    admin = signed_in(app, "admin")
    page = admin.get("/admin/audit?action=export").get_data(as_text=True)
    assert f"community-{community}" in page and f"/area/{community}/export/ledger.xlsx" in page
    # Empty cells are empty, not "nan" (an export has no detail, a failed login no user).
    for path in ("/admin/audit", "/admin/audit?action=login", "/admin/audit?action=export"):
        assert ">nan<" not in admin.get(path).get_data(as_text=True), path
    exported = admin.get("/admin/audit.csv?action=login").data.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(exported)))
    # Actions and outcomes in words, in the export and on the page.
    assert any({"nobody", "10.0.0.9", "登录", "失败"} <= set(r.values()) for r in rows)
    assert "<td>导出</td>" in page and ">export<" not in page
    assert admin.get("/admin/audit?action=drop").status_code == 400


def test_exported_text_never_starts_a_spreadsheet_formula(app, analyzed_store):
    formula = '=HYPERLINK("http://evil.example","x")'
    accounts.authenticate(analyzed_store, formula, "wrong", "10.0.0.8")
    admin = signed_in(app, "admin")
    rows = list(csv.reader(io.StringIO(admin.get("/admin/audit.csv?action=login").data.decode("utf-8-sig"))))
    cells = [cell for row in rows for cell in row]
    assert "'" + formula in cells and formula not in cells
    book = openpyxl.load_workbook(io.BytesIO(admin.get("/admin/audit.xlsx?action=login").data))
    values = [c.value for row in book.active.iter_rows() for c in row]
    assert "'" + formula in values and not any(isinstance(v, str) and v.startswith("=") for v in values)


def test_every_route_naming_another_area_or_its_data_refuses_a_community_user(app, community, analyzed_store):
    """Route enumeration for a community user: wherever a route names an area, organization or
    feature outside their community, the answer is 403 or 404 — never that data."""
    rows = latest_rows(analyzed_store)
    other = next(code for _, code, _ in rows if code and code != community)
    outsider = next(org for org, code, _ in rows if code and code != community)
    with analyzed_store.connect() as conn:
        name = conn.execute(text("SELECT name FROM organizations WHERE org_id = :o"), {"o": outsider}).scalar()
    client = signed_in(app, "community", community)
    # A write must pass the CSRF check to reach the one of jurisdiction.
    with client.session_transaction() as session:
        session["csrf"] = "token"
    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or not {"code", "org_id", "fid"} & set(rule.arguments):
            continue
        url = sample_url(app, rule, other, outsider)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            answer = client.open(url, method=method, headers={"X-CSRF-Token": "token"}, json={})
            assert answer.status_code in (403, 404), (method, url, answer.status_code)
            # (The refusal may repeat the id the caller sent, never what is stored under it.)
            assert name not in answer.get_data(as_text=True), url
            checked += 1
    assert checked >= 8


def _basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def test_basic_authentication_takes_an_api_token_and_nothing_else(app, community, analyzed_store):
    """QGIS 3.22 can send only Basic: the token as password, its account as user name, with the
    same jurisdiction as the bearer form. The account's own password, another name, a revoked
    token and malformed headers are all refused."""
    user = ensure_user(analyzed_store, "community", community)["username"]
    token = accounts.issue_token(analyzed_store, "api", user)
    client = app.test_client()
    url = "/api/collections/organizations/items?limit=10000"

    def ids(headers):
        answer = client.get(url, headers=headers)
        return answer.status_code, {f["id"] for f in answer.get_json().get("features", [])}

    status, bearer = ids({"Authorization": f"Bearer {token}"})
    assert status == 200 and bearer
    assert ids(_basic(user, token)) == (200, bearer)
    for headers in (
        _basic(user, PASSWORD),
        _basic("admin", token),
        _basic("", token),
        {"Authorization": "Basic " + base64.b64encode(token.encode()).decode()},
        {"Authorization": "Basic not*base64"},
        {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
    ):
        assert ids(headers)[0] == 401, headers
    accounts.revoke_token(analyzed_store, accounts.list_tokens(analyzed_store, "api")[0]["id"])
    assert ids(_basic(user, token))[0] == 401


def test_an_api_token_reads_and_never_writes_or_administers(app, community, analyzed_store):
    """A token lives in other systems' settings: with it, data can be read, but no form can be
    posted (even with a CSRF token fetched with the same token) and no administration or import
    page opens — for Bearer and Basic alike."""
    admin = ensure_user(analyzed_store, "admin")["username"]
    token = accounts.issue_token(analyzed_store, "api", admin)
    for headers in ({"Authorization": f"Bearer {token}"}, _basic(admin, token)):
        client = app.test_client()
        assert client.get("/api/collections", headers=headers).status_code == 200
        assert client.get("/", headers=headers).status_code == 200
        for path in ("/admin/", "/admin/audit", "/import/"):
            assert client.get(path, headers=headers).status_code == 403, path
        form = client.get("/placing/", headers=headers).get_data(as_text=True)
        csrf = re.search(r'"csrf":\s*"([^"]+)"', form).group(1)
        before = len(accounts.list_tokens(analyzed_store, "embed"))
        answer = client.post(
            "/admin/tokens", data={"csrf_token": csrf, "layers": "orgs", "days": "3650"}, headers=headers
        )
        assert answer.status_code == 403 and len(accounts.list_tokens(analyzed_store, "embed")) == before
        org = latest_rows(analyzed_store)[0][0]
        place = {"source": "map", "lon": 102.7, "lat": 25.0}
        moved = client.post(f"/placing/{org}", json=place, headers={**headers, "X-CSRF-Token": csrf})
        assert moved.status_code == 403


def test_odd_parameters_never_break_a_redirect_or_an_item(app, community, analyzed_store):
    admin = ensure_user(analyzed_store)["username"]
    link = accounts.issue_token(analyzed_store, "embed", admin, area_code=community, layers=["community"], days=1)
    client = app.test_client()
    # url_for's own options as parameters: dropped, not a 500 or a fragment of the caller's.
    for extra in ("_method=POST", "_anchor=x", "_external=1", "_scheme=javascript"):
        answer = client.get(f"/embed?token={link}&{extra}")
        assert answer.status_code == 302 and "#" not in answer.location and "javascript" not in answer.location
    # An empty layers= is the link's own layers, not the default ones.
    answer = client.get(f"/embed?token={link}&layers=&area={community}")
    assert answer.status_code == 302 and "layers=community" in answer.location and "orgs" not in answer.location
    signed = signed_in(app)
    assert signed.get("/api/collections/blank-areas/items/%C2%B2").status_code == 404
    # An area typed with spaces around it publishes a link that opens.
    token = form_token(signed, "/admin/")
    page = signed.post(
        "/admin/tokens", data={"csrf_token": token, "area": f" {community} ", "layers": ["community"], "days": "1"}
    ).get_data(as_text=True)
    published = re.search(r'id="ht-published" readonly size="80" value="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert app.test_client().get(published).status_code == 200
