"""The map in a real headless Chromium: offline, interactive, and escaping untrusted names."""

import os
import re
import shutil
import threading
import time

import geopandas as gpd
import pytest
import shapely
from sqlalchemy import text
from werkzeug.serving import make_server

from app.store import Store, accounts
from app.web.mapbuilder import DOTS_FROM_ZOOM
from geo.vocabulary import MAP_STATUS_COLORS

from .conftest import Served, ensure_user

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EVIL = '<img src=x onerror="window.__xss=1">${alert(1)}'


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI (scripts/setup.sh test installs it)")
        pytest.skip("Chromium not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


def open_map(browser, served: Served):
    url = served.url
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    served.sign_in(page)
    outside, errors = [], []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(url) else None)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/", wait_until="networkidle")
    return page, outside, errors


def wait_for(page, expression: str, timeout: float = 10.0) -> None:
    """Poll a JavaScript expression until it is true. (Playwright's wait_for_function compiles
    its predicate in the page, which Hongtu's Content-Security-Policy rightly forbids.)"""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        page.wait_for_timeout(50)


def click_map_at(page, lat: float, lon: float) -> None:
    """Click the map where a WGS-84 point is drawn (markers are on a canvas: no element to click)."""
    box = page.locator(".folium-map").bounding_box()
    x, y = page.evaluate(
        f"(() => {{ const p = hongtuMap.latLngToContainerPoint([{lat}, {lon}]); return [p.x, p.y]; }})()"
    )
    page.mouse.click(box["x"] + x, box["y"] + y)


def zoom_to(page, lat: float, lon: float, zoom: int) -> None:
    """Move the map and wait until the organizations for the new view have arrived."""
    with page.expect_response(lambda r: "/map/data/orgs" in r.url and f"zoom={zoom}" in r.url):
        page.evaluate(f"() => {{ window.hongtuMap.setView([{lat}, {lon}], {zoom}); }}")
    page.wait_for_timeout(200)


def test_demo_map_works_offline_and_zooms_to_points(browser, demo_store: Store):
    served = Served(demo_store)
    try:
        page, outside, errors = open_map(browser, served)
        page.wait_for_selector(".ht-mix-icon", timeout=10_000)
        assert page.locator(".ht-mix-icon").count() > 5
        zoom_to(page, 25.04, 102.71, 17)
        wait_for(page, "window.hongtuGroups.orgs.getLayers().length > 5")
        assert page.locator(".ht-mix-icon").count() == 0
        assert outside == [] and errors == []
    finally:
        served.close()


#: A colour stop as Chromium gives a conic gradient back: each "colour from% to%" becomes two.
STOP = re.compile(r"(rgb\([^)]*\)) ([\d.]+)%")
#: Each status's colour as Chromium writes it back.
COLOURS = {
    status: "rgb({}, {}, {})".format(*(int(hex_[i : i + 2], 16) for i in (1, 3, 5)))
    for status, hex_ in MAP_STATUS_COLORS.items()
}


def ring_shares(background: str) -> dict[str, float]:
    """The share (%) of a cluster's ring each colour takes."""
    shares: dict[str, float] = {}
    stops = STOP.findall(background)
    for (colour, start), (_, end) in zip(stops[::2], stops[1::2], strict=True):
        shares[colour] = shares.get(colour, 0.0) + float(end) - float(start)
    return shares


def cluster_rings(page) -> list[tuple[dict, dict]]:
    """Each drawn server cluster's counts and its ring's shares."""
    drawn = page.evaluate(
        """window.hongtuGroups.orgs_clusters.getLayers().map(m =>
             [m.options.hongtuCounts, m.getElement().querySelector('.ht-mix').style.background])"""
    )
    return [(counts, ring_shares(background)) for counts, background in drawn]


def test_clusters_are_drawn_by_their_coverage_mix_never_their_size(browser, demo_store: Store):
    served = Served(demo_store)
    try:
        page, outside, errors = open_map(browser, served)
        page.wait_for_selector(".ht-mix-icon", timeout=10_000)
        rings = cluster_rings(page)
        assert len(rings) > 5
        for counts, shares in rings:
            n = sum(counts[s] for s in MAP_STATUS_COLORS)
            expected = {COLOURS[s]: 100 * counts[s] / n for s in MAP_STATUS_COLORS if counts[s]}
            assert shares.keys() == expected.keys()
            assert all(abs(shares[c] - expected[c]) < 0.02 for c in expected)
        # The legend counts what the rings draw.
        blank = sum(counts["blank"] for counts, _ in rings)
        assert page.locator(".ht-n[data-status=blank]").inner_text() == str(blank) and blank > 0
        # Filtered to 空白, a ring is all red: no other status's colour is drawn.
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and "status=blank" in r.url):
            page.select_option("select[name=status]", "blank")
        page.wait_for_timeout(300)
        # (Fewer now, they come as points, clustered in the browser: the same rule.)
        wait_for(page, "document.querySelectorAll('.leaflet-marker-pane .ht-mix').length > 0")
        drawn = page.evaluate(
            "[...document.querySelectorAll('.leaflet-marker-pane .ht-mix')].map(e => e.style.background)"
        )
        assert all(ring_shares(background) == {COLOURS["blank"]: pytest.approx(100)} for background in drawn)
        # No flag in the attribution: plain text.
        attribution = page.locator(".leaflet-control-attribution")
        assert attribution.locator("svg, img").count() == 0 and attribution.inner_text().startswith("Leaflet")
        # From street zoom on, one dot per organization.
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and "status=" not in r.url):
            page.select_option("select[name=status]", "")
        lon, lat = demo_store.read_frame("organizations", ["org_id"]).geometry.iloc[0].coords[0]
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and f"zoom={DOTS_FROM_ZOOM}" in r.url) as answer:
            page.evaluate(f"() => {{ hongtuMap.setView([{lat}, {lon}], {DOTS_FROM_ZOOM}); }}")
        assert answer.value.json()["mode"] == "points"
        page.wait_for_timeout(300)
        wait_for(page, "window.hongtuGroups.orgs.getLayers().length > 0")
        assert page.locator(".ht-mix-icon").count() == 0
        assert outside == [] and errors == []
    finally:
        served.close()


def test_a_filter_redraws_and_recounts_with_a_card_open(browser, demo_store: Store):
    served = Served(demo_store)
    try:
        page, outside, errors = open_map(browser, served)
        zoom_to(page, 25.04, 102.71, 16)
        wait_for(page, "window.hongtuGroups.orgs.getLayers().length > 5")
        before = int(page.locator("#ht-visible").inner_text())
        lat, lon = page.evaluate(
            """(() => { const b = hongtuMap.getBounds().pad(-0.2);
                 const m = hongtuGroups.orgs.getLayers().find(m => b.contains(m.getLatLng()));
                 return [m.getLatLng().lat, m.getLatLng().lng]; })()"""
        )
        click_map_at(page, lat, lon)
        page.locator(".leaflet-popup-content").wait_for(timeout=5_000)
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and "status=blank" in r.url):
            page.select_option("select[name=status]", "blank")
        page.wait_for_timeout(300)
        after = int(page.locator("#ht-visible").inner_text())
        assert 0 < after < before
        assert page.locator(".leaflet-popup-content").count() == 0
        statuses = page.evaluate("[...new Set(hongtuGroups.orgs.getLayers().map(m => m.hongtuStatus))]")
        assert statuses == ["blank"]
        assert outside == [] and errors == []
    finally:
        served.close()


def test_untrusted_names_are_shown_as_text(browser, store: Store):
    district = gpd.GeoDataFrame(
        {"code": ["530102"], "level": ["district"], "name": ["五华区"], "parent_code": [None], "generated": [False]},
        geometry=[shapely.MultiPolygon([shapely.box(102.6, 24.9, 102.8, 25.1)])],
        crs=4326,
    )
    org = gpd.GeoDataFrame(
        {
            "org_id": ["X1"],
            "name": [EVIL],
            "org_type": ["enterprise"],
            "industry": ["<b>互联网</b>"],
            "employees": [12],
            "party_members": [0],
            "address": ["</script><script>window.__xss=2</script>"],
            "operating": [True],
            "demonstration": [False],
            "source_crs": ["wgs84"],
        },
        geometry=[shapely.Point(102.7, 25.0)],
        crs=4326,
    )
    with store.connect() as conn:
        store.insert_frame(conn, "areas", district)
        store.insert_frame(conn, "organizations", org)
    served = Served(store)
    try:
        page, outside, errors = open_map(browser, served)
        zoom_to(page, 25.0, 102.7, 17)
        wait_for(page, "window.hongtuGroups.orgs.getLayers().length == 1")
        click_map_at(page, 25.0, 102.7)
        popup = page.locator(".leaflet-popup-content")
        popup.wait_for(timeout=5_000)
        assert EVIL in popup.inner_text()
        assert "</script><script>" in popup.inner_text()
        assert popup.locator("img, b:has-text('互联网'), script").count() == 0
        assert page.evaluate("window.__xss") is None
        assert outside == [] and errors == []
    finally:
        served.close()


def test_filter_reduces_counts_and_search_zooms_to_the_hit(browser, demo_store: Store):
    served = Served(demo_store)
    try:
        page, outside, errors = open_map(browser, served)
        zoom_to(page, 25.04, 102.71, 15)
        before = int(page.locator("#ht-visible").inner_text())
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and "status=blank" in r.url):
            page.select_option("select[name=status]", "blank")
        page.wait_for_timeout(200)
        after = int(page.locator("#ht-visible").inner_text())
        assert 0 < after < before
        # The legend follows: only blank organizations are left in view.
        legend = {s: page.locator(f".ht-n[data-status={s}]").inner_text() for s in ("org", "work", "blank")}
        assert legend == {"org": "0", "work": "0", "blank": str(after)}
        target = demo_store.read_frame("organizations", ["org_id", "name"]).iloc[42]
        page.fill("#ht-search input", target["name"])
        page.click("#ht-search button")
        page.locator("#ht-search-results li").first.click()
        wait_for(page, "window.hongtuMap.getZoom() === 17")
        centre = page.evaluate("(() => { const c = hongtuMap.getCenter(); return [c.lng, c.lat]; })()")
        point = target.geometry
        assert abs(centre[0] - point.x) < 1e-4 and abs(centre[1] - point.y) < 1e-4
        assert page.evaluate("window.hongtuHighlight") == target["org_id"]
        # An area's name finds the area: the map fits its outline, and its page is one click away.
        street = demo_store.read_frame("areas", ["code", "name"], where={"level": "street"}).iloc[0]
        page.fill("#ht-search input", street["name"])
        page.click("#ht-search button")
        first = page.locator("#ht-search-results ul").first.locator("li").first
        first.wait_for()
        assert page.locator("#ht-search-results h4").first.inner_text().startswith("区域")
        assert first.locator("a").get_attribute("href") == f"/area/{street['code']}"
        first.click()
        minx, miny, maxx, maxy = street.geometry.bounds
        wait_for(
            page,
            f"hongtuMap.getBounds().contains([[{miny}, {minx}], [{maxy}, {maxx}]]) && hongtuMap.getZoom() >= 12",
        )
        # A click on a community's polygon gives its card and, below it, what lies nearby.
        communities = demo_store.read_frame("areas", ["code", "name"], where={"parent_code": street["code"]})
        inside = communities.iloc[0]
        spot = inside.geometry.point_on_surface()
        wait_for(page, "window.hongtuGroups.community.getLayers().length > 0")
        with page.expect_response(lambda r: "/map/nearby" in r.url):
            click_map_at(page, spot.y, spot.x)
        popup = page.locator(".ht-nearby-card")
        popup.first.wait_for()
        page.wait_for_timeout(500)
        assert popup.count() == 1  # one list, with the community's card on top
        assert inside["name"] in popup.inner_text() and "党群服务中心 (" in popup.inner_text()
        assert outside == [] and errors == []
    finally:
        served.close()


def test_layer_toggles_change_what_is_drawn(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        page, outside, errors = open_map(browser, served)
        zoom_to(page, 25.04, 102.71, 14)
        assert page.evaluate("window.hongtuGroups.grid.getLayers().length") == 0
        with page.expect_response(lambda r: "/map/data/grid" in r.url):
            page.get_by_label("网格", exact=True).check()
        wait_for(page, "window.hongtuGroups.grid.getLayers().length > 0")
        with page.expect_response(lambda r: "/map/data/branches" in r.url):
            page.get_by_label("联合党支部建议").check()
        wait_for(page, "window.hongtuGroups.branches.getLayers().length > 0")
        assert page.evaluate("window.hongtuGroups.district.getLayers().length") > 0
        page.get_by_label("区县", exact=True).uncheck()
        wait_for(page, "window.hongtuGroups.district.getLayers().length === 0")
        assert outside == [] and errors == []
    finally:
        served.close()


def test_drill_down_from_district_to_grid(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        served.sign_in(page)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(served.url + "/area/", wait_until="networkidle")
        for level in ("区县", "街道/乡镇", "社区/村", "网格"):
            # Follow the sub-area with the most organizations, as a planner would.
            link = page.evaluate(
                """() => { let best = null, most = -1;
                   document.querySelectorAll('#ht-children tbody tr').forEach(tr => {
                     const n = parseInt(tr.cells[2].textContent) || 0;
                     if (n > most) { most = n; best = tr.querySelector('a').textContent; } });
                   return best; }"""
            )
            page.locator("#ht-children a", has_text=link).first.click()
            page.wait_for_load_state("networkidle")
            assert page.locator("h1").inner_text().startswith(link)
            assert level in page.locator("h1 small").inner_text()
            # The area's own map is drawn and fitted to it.
            wait_for(page, "window.hongtuGroups.district.getLayers().length > 0")
        assert page.locator(".ht-breadcrumbs a").count() == 4  # 全市 + district + street + community
        assert page.locator("#ht-ledger").count() == 1 and page.locator("#ht-children").count() == 0
        assert errors == []
    finally:
        served.close()


def test_dashboard_fits_the_wall_and_drills_down_on_a_click(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        for width, height in ((1920, 1080), (3840, 2160)):
            page = browser.new_page(viewport={"width": width, "height": height})
            served.sign_in(page)
            errors = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.goto(served.url + "/dashboard", wait_until="networkidle")
            wait_for(page, "document.getElementById('ht-board').dataset.loaded === 'city'")
            size = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            assert size[0] <= width and size[1] <= height, (width, height, size)
            assert page.locator(".ht-nav").count() == 0 and page.locator(".ht-b-exit").is_visible()
            drawn = page.evaluate(
                "[...document.querySelectorAll('.ht-b-chart')]"
                ".map(c => c.querySelectorAll('svg path, svg text').length)"
            )
            assert len(drawn) == 6 and min(drawn) > 0, drawn
            # The charts grow with the screen: the wall at 4K is not a 1080p picture in a corner.
            box = page.locator("#ht-b-map").bounding_box()
            assert box["width"] > width * 0.35 and box["height"] > height * 0.6
            page.close()
            assert errors == [], errors
        # A click on a district's area (away from its hot spots) drills down to its streets.
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        served.sign_in(page)
        page.goto(served.url + "/dashboard", wait_until="networkidle")
        wait_for(page, "document.getElementById('ht-board').dataset.loaded === 'city'")
        board = page.context.request.get(served.url + "/dashboard/data.json").json()
        target = min(board["outlines"]["features"], key=lambda f: f["properties"]["blank"])["properties"]
        x, y = page.evaluate(
            "(p) => echarts.getInstanceByDom(document.getElementById('ht-b-map')).convertToPixel({geoIndex: 0}, p)",
            target["label"],
        )
        frame = page.locator("#ht-b-map").bounding_box()
        page.mouse.click(frame["x"] + x, frame["y"] + y)
        wait_for(page, f"document.getElementById('ht-board').dataset.loaded === '{target['code']}'")
        assert page.locator("h1").inner_text().startswith(target["name"])
        assert target["code"] in page.url
        page.locator("#ht-b-trail a").first.click()
        wait_for(page, "document.getElementById('ht-board').dataset.loaded === 'city'")
        page.close()
    finally:
        served.close()


def test_english_switch_changes_the_labels(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        page, outside, errors = open_map(browser, served)
        assert page.get_by_label("区县", exact=True).count() == 1
        page.click("#ht-lang")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.lang") == "en"
        assert page.get_by_label("Districts", exact=True).count() == 1
        assert "Coverage status" in page.locator(".ht-legend").inner_text()
        # At 1280 px the English header stays one line and nothing is wider than the screen.
        page.set_viewport_size({"width": 1280, "height": 800})
        for path in ("/", "/area/"):
            page.goto(served.url + path, wait_until="networkidle")
            assert page.locator(".ht-bar").bounding_box()["height"] < 45, path
            assert page.evaluate("document.documentElement.scrollWidth") <= 1280, path
        assert page.evaluate("Hongtu.t('组织覆盖')") == "Organizational coverage"
        # The choice is remembered: the next page is English without asking again.
        page.goto(served.url + "/dashboard", wait_until="networkidle")
        assert "Dashboard" in page.locator("h1").inner_text() or "dashboard" in page.locator("h1").inner_text()
        page.click("#ht-lang")
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.lang") == "zh-CN"
        assert outside == [] and errors == []
    finally:
        served.close()


def test_usable_on_a_phone(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
        page = context.new_page()
        served.sign_in(page)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(served.url + "/", wait_until="networkidle")
        # Nothing wider than the screen; the panel is folded and unfolds on a tap.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert page.locator("select[name=status]").is_hidden()
        page.tap(".ht-panel-body summary")
        assert page.locator("select[name=status]").is_visible()
        with page.expect_response(lambda r: "/map/data/orgs" in r.url and "zoom=13" in r.url):
            page.tap(".leaflet-control-zoom-in")
        for path in ("/area/", "/dashboard"):
            page.goto(served.url + path, wait_until="networkidle")
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
        # A street's page reaches its blank ledger within three screens, one card per organization.
        street = analyzed_store.read_frame("areas", ["code"], where={"level": "street"})["code"].iloc[0]
        page.goto(f"{served.url}/area/{street}", wait_until="networkidle")
        top = page.evaluate("document.getElementById('ht-ledger').getBoundingClientRect().top + window.scrollY")
        assert top < 3 * 844 and page.evaluate("document.documentElement.scrollWidth") <= 390
        rows = page.locator("#ht-ledger tbody tr")
        assert rows.count() and rows.first.evaluate("r => getComputedStyle(r).display") == "block"
        assert rows.first.bounding_box()["width"] <= 390
        assert errors == []
        context.close()
    finally:
        served.close()


class ReportSite:
    """Another site on the loopback (a report page of some office system) that frames
    ``embed_url``; Chromium does not let a public page frame a local address."""

    def __init__(self):
        self.embed_url = ""

        def app(environ, start_response):
            frame = f'<iframe id="m" src="{self.embed_url}" width="800" height="500"></iframe>'
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [f"<html><body><h1>报告</h1>{frame}</body></html>".encode()]

        self.server = make_server("127.0.0.1", 0, app)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_embed_in_an_iframe_shows_the_chosen_area(browser, analyzed_store: Store):
    district = analyzed_store.read_frame("areas", ["code"], where={"level": "district"}).iloc[0]
    site = ReportSite()
    served = Served(analyzed_store, HONGTU_FRAME_ANCESTORS=site.origin)
    # Another system's page shows Hongtu through a published link: no session in the iframe.
    admin = ensure_user(analyzed_store)["username"]
    token = accounts.issue_token(
        analyzed_store, "embed", admin, area_code=district["code"], layers=["district", "orgs"], days=1
    )
    site.embed_url = f"{served.url}/embed?token={token}&area={district['code']}&layers=district,orgs"
    try:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.origin, wait_until="networkidle")
        inner = page.frames[1]
        wait_for(inner, "window.hongtuGroups && window.hongtuGroups.district.getLayers().length > 0")
        bounds = inner.evaluate(
            "(() => { const b = hongtuMap.getBounds();"
            " return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()"
        )
        minx, miny, maxx, maxy = district.geometry.bounds
        # The view holds the whole district and not much more.
        assert bounds[0] <= minx and bounds[1] <= miny and bounds[2] >= maxx and bounds[3] >= maxy
        assert min((bounds[2] - bounds[0]) / (maxx - minx), (bounds[3] - bounds[1]) / (maxy - miny)) < 2.5
        assert inner.locator(".ht-bar").count() == 0
        assert errors == []
    finally:
        served.close()
    # With the default setting, another site cannot frame it.
    served = Served(analyzed_store)
    site.embed_url = f"{served.url}/embed?token={token}"
    try:
        page = browser.new_page()
        page.goto(site.origin, wait_until="networkidle")
        page.wait_for_timeout(500)
        assert page.frames[1].evaluate("typeof window.hongtuMap") == "undefined"
    finally:
        served.close()
        site.close()


def test_share_dialog_gives_a_link_to_the_same_view(browser, analyzed_store: Store):
    served = Served(analyzed_store)
    try:
        page, outside, errors = open_map(browser, served)
        zoom_to(page, 25.04, 102.71, 14)
        page.select_option("select[name=status]", "blank")
        page.click("#ht-share-open")
        link = page.locator("#ht-share-link").input_value()
        assert link.startswith(served.url + "/embed?") and "zoom=14" in link and "status=blank" in link
        assert link.replace("&", "&amp;") in page.locator("#ht-share-iframe").input_value()
        embed = browser.new_page(viewport={"width": 1200, "height": 800})
        served.sign_in(embed)
        embed.goto(link, wait_until="networkidle")
        assert embed.evaluate("hongtuMap.getZoom()") == 14
        centre = embed.evaluate("(() => { const c = hongtuMap.getCenter(); return [c.lat, c.lng]; })()")
        assert abs(centre[0] - 25.04) < 1e-3 and abs(centre[1] - 102.71) < 1e-3
        assert outside == [] and errors == []
    finally:
        served.close()


#: Payloads of every kind the issue names; each would open a dialog if it ever ran.
PAYLOADS = {
    "script": "<script>alert('script')</script>",
    "img": "<img src=x onerror=\"alert('img')\">",
    "template": "${alert('template')}",
    "url": "javascript:alert('url')",
}


def test_hostile_text_in_every_field_stays_text_everywhere(browser, store: Store, tmp_path):
    """Payloads in every text field a user can import, shown back through the map's popups,
    cards, search and nearby lists, the area page and its charts, the dashboard, the audit log,
    the standalone export, the API and CSV exports: Chromium never opens a dialog."""
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo

    load_demo(store, n_orgs=300, seed=3)
    evil = " ".join(PAYLOADS.values())
    with store.connect() as conn:
        org = conn.execute(text("SELECT id, ST_X(geom), ST_Y(geom) FROM organizations ORDER BY id LIMIT 1")).first()
        conn.execute(
            # Industry names are at most 64 characters: one payload there.
            text("UPDATE organizations SET name = :e, address = :e, industry = :i WHERE id = :id"),
            {"e": "单位" + evil, "i": PAYLOADS["img"], "id": org[0]},
        )
        for table in ("places", "service_centers", "stations", "party_orgs"):
            conn.execute(text(f"UPDATE {table} SET name = :e"), {"e": f"{table}{evil}"})
        conn.execute(text("UPDATE stations SET facilities = :e"), {"e": evil})
        conn.execute(text("UPDATE party_orgs SET secretary = :e"), {"e": PAYLOADS["script"]})
        conn.execute(text("UPDATE areas SET name = :e || code"), {"e": evil})
    run_analysis(store, Parameters())
    with store.connect() as conn:
        community = conn.execute(
            text("SELECT community_code FROM run_organizations WHERE organization_id = :id"), {"id": org[0]}
        ).scalar()
    served = Served(store)
    dialogs = []
    try:
        page, outside, errors = open_map(browser, served)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        # The organization's popup and full card, and the nearby list, at its own position.
        zoom_to(page, org[2], org[1], 18)
        with page.expect_response(lambda r: "/map/org/" in r.url):
            click_map_at(page, org[2], org[1])
        page.wait_for_timeout(300)
        assert PAYLOADS["img"] in page.locator(".leaflet-popup-content").inner_text()
        box = page.locator(".folium-map").bounding_box()
        page.mouse.click(box["x"] + 40, box["y"] + box["height"] - 40)
        page.wait_for_timeout(500)
        # Search lists the hostile name as text.
        page.fill("#ht-search input", "单位")
        page.click("#ht-search button")
        page.locator("#ht-search-results li").first.wait_for()
        assert PAYLOADS["script"] in page.locator("#ht-search-results").inner_text()
        # Every layer with names drawn at once.
        page.evaluate("Object.values(window.hongtuGroups).forEach(g => g.addTo(window.hongtuMap))")
        page.wait_for_timeout(1000)
        admin = page.context.request
        standalone = tmp_path / "map.html"
        standalone.write_bytes(admin.get(f"{served.url}/area/{community}/map.html").body())
        for url in (
            f"{served.url}/area/{community}",
            f"{served.url}/area/{community[:6]}",
            f"{served.url}/dashboard",
            standalone.as_uri(),
        ):
            page.goto(url, wait_until="networkidle")
            wait_for(page, "document.readyState === 'complete'")
            assert PAYLOADS["template"] in page.locator("body").inner_text(), url
            assert page.locator("a[href^='javascript:']").count() == 0, url
        # An import under a hostile file name, then the audit log that names it.
        token = page.goto(served.url + "/import/") and page.locator("input[name=csrf_token]").first.input_value()
        admin.post(
            served.url + "/import/",
            multipart={
                "csrf_token": token,
                "kind": "orgs",
                "file": {"name": f"{PAYLOADS['img']}.csv", "mimeType": "text/csv", "buffer": b"x"},
            },
        )
        page.goto(served.url + "/admin/audit", wait_until="networkidle")
        assert PAYLOADS["img"] in page.locator("body").inner_text()
        assert page.evaluate("document.querySelectorAll('img[src=x], script:not([src])').length") == 0
        assert dialogs == [] and [u for u in outside if u != standalone.as_uri()] == [], (dialogs, outside)
        # The API answers JSON that no browser sniffs into HTML; exports never start a formula.
        api = admin.get(served.url + f"/api/collections/organizations/items/{org_id(store, org[0])}")
        assert api.headers["content-type"].startswith("application/geo+json")
        assert api.headers["x-content-type-options"] == "nosniff"
        assert api.json()["properties"]["name"] == "单位" + evil
    finally:
        served.close()


def org_id(store: Store, internal: int) -> str:
    with store.connect() as conn:
        return conn.execute(text("SELECT org_id FROM organizations WHERE id = :id"), {"id": internal}).scalar()


def test_no_page_needs_unsafe_inline_scripts(browser, analyzed_store: Store):
    """Every page's inline scripts run by this response's nonce: no 'unsafe-inline' in
    script-src, a fresh nonce per response, the maps still draw, and Chromium reports no
    Content-Security-Policy violation on any page."""
    served = Served(analyzed_store)
    district = analyzed_store.read_frame("areas", ["code"], where={"level": "district"})["code"].iloc[0]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    served.sign_in(page)
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    nonces = set()
    for path in ("/", f"/area/{district}", "/dashboard", f"/embed?area={district}", "/placing/", "/admin/", "/import/"):
        answer = page.goto(served.url + path, wait_until="networkidle")
        assert answer.status == 200, path
        policy = answer.headers["content-security-policy"]
        script_src = next(part for part in policy.split("; ") if part.startswith("script-src"))
        assert "'unsafe-inline'" not in script_src, path
        nonces.add(script_src)
        if path in ("/", f"/area/{district}", f"/embed?area={district}"):
            wait_for(page, "window.hongtuReady === true", 20)
    assert not violations, violations
    assert len(nonces) == 7  # a new nonce for every response
    page.close()
