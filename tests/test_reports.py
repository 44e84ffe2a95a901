"""Report outputs: the PNG/PDF map image, the Excel report checked cell by cell against the run,
and the standalone HTML opened from disk with the network off — and their CLI commands."""

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from PIL import Image
from sqlalchemy import text

from app import create_app
from app.store import Store, area_stats, queries

from .conftest import signed_in

HONGTU = str(Path(sys.executable).with_name("hongtu"))
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def client(analyzed_store: Store):
    return signed_in(create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True}))


@pytest.fixture(scope="module")
def street(analyzed_store: Store) -> str:
    """The street with the most organizations in the latest run."""
    with analyzed_store.connect() as conn:
        return conn.execute(
            text(
                "SELECT street_code FROM run_organizations WHERE run_id = (SELECT max(id) FROM analysis_runs) "
                "GROUP BY street_code ORDER BY count(*) DESC, street_code LIMIT 1"
            )
        ).scalar()


def need_chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("Chromium is required under CI (scripts/setup.sh test installs it)")
        pytest.skip("Chromium not installed")


def test_png_has_the_asked_size_and_shows_a_map(client, street):
    need_chromium()
    answer = client.get(f"/area/{street}/map.png?width=900&height=640")
    assert answer.status_code == 200 and answer.mimetype == "image/png"
    image = Image.open(io.BytesIO(answer.data)).convert("RGB")
    assert image.size == (900, 640)
    # Not blank: outlines, choropleth, markers, legend and title make many colours.
    colours = image.getcolors(maxcolors=1 << 20)
    assert len(colours) > 200
    assert max(count for count, _ in colours) < 0.8 * 900 * 640
    pdf = client.get(f"/area/{street}/map.pdf?width=900&height=640")
    assert pdf.data.startswith(b"%PDF") and pdf.data.count(b"/Type /Page\n") + pdf.data.count(b"/Type /Page>") <= 1


def test_excel_report_matches_the_analysis_cell_by_cell(client, analyzed_store, street):
    run_id = queries.latest_run_id(analyzed_store)
    book = openpyxl.load_workbook(io.BytesIO(client.get(f"/area/{street}/report.xlsx").data))
    assert book.sheetnames == ["汇总", "下级区域", "空白组织台账", "结对", "联合党支部建议"]
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(min_row=2, values_only=True)}
    figures = area_stats.figures(analyzed_store, street, run_id)
    assert summary["两新组织"] == figures["orgs"] and summary["空白"] == figures["blank"]
    assert summary["两个覆盖率"] == pytest.approx(figures["both_rate"])
    assert summary["区划代码"] == street and summary["联合党支部建议"] == area_stats.joint_branch_count(
        analyzed_store, street, run_id
    )
    rate_row = next(r for r in book["汇总"].iter_rows(min_row=2) if r[0].value == "两个覆盖率")
    assert rate_row[1].number_format == "0.0%"
    ledger = area_stats.blank_ledger(analyzed_store, street, run_id)
    sheet = book["空白组织台账"]
    assert [c.value for c in sheet[1]][:2] == ["编号", "名称"]
    rows = list(sheet.iter_rows(min_row=2, values_only=True))
    assert [r[0] for r in rows] == list(ledger["org_id"]) and [r[5] for r in rows] == list(ledger["employees"])
    pairs = list(book["结对"].iter_rows(min_row=2, values_only=True))
    assert len(pairs) == figures["orgs"]
    proposals = {r[0] for r in book["联合党支部建议"].iter_rows(min_row=2, values_only=True)}
    assert len(proposals) == summary["联合党支部建议"]
    assert book["空白组织台账"].column_dimensions["B"].width > 10


def area_focus_bounds(client, code: str) -> list[list[float]]:
    """The area's bounds ``[[south, west], [north, east]]`` as its maps fit them."""
    from app.db import get_store
    from app.web.areas import area_focus

    with client.application.app_context():
        return area_focus(get_store(), code)["bounds"]


def test_standalone_html_opens_from_disk_with_the_network_off(client, analyzed_store, street, tmp_path):
    need_chromium()
    with analyzed_store.connect() as conn:
        placed = conn.execute(
            text(
                "SELECT count(*) FROM run_organizations WHERE run_id = (SELECT max(id) FROM analysis_runs) "
                "AND street_code = :s AND lon IS NOT NULL"
            ),
            {"s": street},
        ).scalar()
    from playwright.sync_api import sync_playwright

    html = client.get(f"/area/{street}/map.html").get_data(as_text=True)
    bounds = area_focus_bounds(client, street)
    assert 'src="/' not in html and 'href="/' not in html.split("<body")[0]
    path = tmp_path / "map.html"
    path.write_text(html, encoding="utf-8")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(offline=True)
        page = context.new_page()
        requests, errors = [], []
        page.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(path.as_uri(), wait_until="load")
        page.wait_for_function("window.hongtuReady === true", timeout=15_000)
        assert page.evaluate("window.hongtuGroups.street.getLayers().length") > 0
        # Every organization of the street is a dot of its own: none is hidden in a cluster.
        assert page.evaluate("window.hongtuGroups.orgs.getLayers().length") == placed
        assert page.locator(".marker-cluster").count() == 0
        # The area fills the frame, 5 % in from its edges (the title's band aside) ...
        page.set_viewport_size({"width": 1200, "height": 800})
        page.reload(wait_until="load")
        page.wait_for_function("window.hongtuReady === true", timeout=15_000)
        (south, west), (north, east) = bounds
        left, top, right, bottom = page.evaluate(
            f"""(() => {{ const s = hongtuMap.latLngToContainerPoint([{south}, {west}]);
                 const n = hongtuMap.latLngToContainerPoint([{north}, {east}]);
                 return [s.x, n.y, n.x, s.y]; }})()"""
        )
        assert left >= 0.05 * 1200 - 2 and right <= 0.95 * 1200 + 2 and bottom <= 0.95 * 800 + 2 and top >= 0
        assert right - left >= 0.9 * 1200 - 4 or bottom - top >= 0.95 * 800 - top_band(page) - 4
        # ... its names do not overlap, and the legend names only what is drawn.
        boxes = page.evaluate(
            """[...document.querySelectorAll('.ht-area-label')].filter(e => e.style.visibility !== 'hidden')
                 .map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })"""
        )
        assert boxes and not any(
            a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            for i, a in enumerate(boxes)
            for b in boxes[i + 1 :]
        )
        shown = page.evaluate(
            "[...document.querySelectorAll('.ht-key')].filter(e => !e.hidden).map(e => e.dataset.layer)"
        )
        assert "street" in shown and "pairings" not in shown and "gaps" not in shown
        assert requests == [] and errors == []
        browser.close()


def top_band(page) -> float:
    """Where the print title's band ends, in pixels from the top."""
    return page.evaluate("document.querySelector('.ht-print-title').getBoundingClientRect().bottom + 8")


@pytest.mark.parametrize(
    ("query", "size"),
    [("paper=a4", (1123, 794, 1.5625)), ("paper=a4&orientation=portrait&dpi=300", (794, 1123, 3.125))],
)
def test_paper_presets_draw_the_sheet_at_its_resolution(client, street, query, size):
    need_chromium()
    answer = client.get(f"/area/{street}/map.png?{query}")
    assert answer.status_code == 200
    width, height, scale = size
    drawn = Image.open(io.BytesIO(answer.data)).size
    assert abs(drawn[0] - width * scale) <= 1 and abs(drawn[1] - height * scale) <= 1


@pytest.mark.parametrize("query", ["paper=b5", "paper=a4&dpi=200", "paper=a4&orientation=sideways", "paper=a4&dpi=x"])
def test_a_bad_paper_is_refused_in_both_languages(client, street, query):
    answer = client.get(f"/area/{street}/map.png?{query}")
    assert answer.status_code == 400
    body = answer.get_data(as_text=True)
    assert ("应为" in body or "需要" in body) and "expected" in body


def test_cli_exports_map_and_report(analyzed_store, street, tmp_path):
    env = {**os.environ, "DATABASE_URL": analyzed_store.url}

    def hongtu(*args):
        return subprocess.run([HONGTU, *args], env=env, capture_output=True, text=True, timeout=300)

    done = hongtu("export", "map", "--area", street, "--format", "html", "--out", str(tmp_path / "m.html"))
    assert done.returncode == 0, done.stderr
    assert "<script>" in (tmp_path / "m.html").read_text(encoding="utf-8")
    done = hongtu("export", "report", "--area", street, "--out", str(tmp_path / "r.xlsx"))
    assert done.returncode == 0 and openpyxl.load_workbook(tmp_path / "r.xlsx").sheetnames[0] == "汇总"
    bad = hongtu("export", "report", "--area", "999999999")
    assert bad.returncode == 1 and "999999999" in bad.stderr and "Traceback" not in bad.stderr


class TileServer:
    """A tile server on the loopback answering every tile in one colour, counting requests."""

    COLOUR = (255, 0, 255)

    def __init__(self):
        import http.server
        import threading

        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), self.COLOUR).save(buffer, "PNG")
        tile, self.requests = buffer.getvalue(), []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def test_exports_draw_the_configured_base_map_and_nothing_else(analyzed_store, street, monkeypatch):
    from app.web import mapbuilder

    need_chromium()
    tiles = TileServer()
    try:
        monkeypatch.setitem(mapbuilder.BASEMAP_TILES, "osm", ("OpenStreetMap", [tiles.url], "", "© tiles"))
        app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_BASEMAP": "osm"})
        client = signed_in(app)
        assert mapbuilder.tile_hosts("osm") == {"127.0.0.1"} and mapbuilder.tile_hosts("none") == set()
        answer = client.get(f"/area/{street}/map.png?width=800&height=600")
        image = Image.open(io.BytesIO(answer.data)).convert("RGB")
        # Magenta, or magenta under the veil and the choropleth's light tints.
        tinted = sum(n for n, (r, g, b) in image.getcolors(maxcolors=1 << 20) if r > 180 and b > 180 and g < 170)
        assert tiles.requests and all(p.endswith(".png") for p in tiles.requests)
        assert tinted > 0.05 * 800 * 600  # the tiles show between the layers
        html = client.get(f"/area/{street}/map.html").get_data(as_text=True)
        assert tiles.url.split("{z}")[0] in html
        # Without a base map, nothing is asked of any tile host.
        asked = len(tiles.requests)
        plain = Image.open(io.BytesIO(client.get(f"/area/{street}/map.png?width=800&height=600&basemap=none").data))
        colours = plain.convert("RGB").getcolors(maxcolors=1 << 20)
        magenta = sum(n for n, (r, g, b) in colours if r > 180 and b > 180 and g < 170)
        assert len(tiles.requests) == asked and magenta < 0.01 * 800 * 600
    finally:
        tiles.close()
