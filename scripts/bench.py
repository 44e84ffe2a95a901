"""Hongtu's benchmark: import, analysis, map delivery and API latency at several city sizes.

    scripts/bench [--sizes 10000,100000,1000000] [--backends spatialite,postgis] [--json FILE]

For each size the demo generator makes a city; then, side by side with what a user would
otherwise do:

- import: Hongtu's importer on a CSV into SpatiaLite and PostGIS, against what a user would
  otherwise write — ``pandas.read_csv`` + geopandas ``to_file`` (SpatiaLite) / ``to_postgis``
  of the same CSV (no checks, no upsert, no links) — each in a process of its own
  (``scripts/bench_import.py``), taking turns three times (once at 1M), medians reported;
- analysis: ``scripts/bench_analysis.py`` in its own process (stages, peak memory) against
  geopandas ``sjoin`` + ``sjoin_nearest``; the walking stage (``scripts/bench_walking.py``, a
  300k-edge street lattice and 1,300 centers) against the straight line's KD-tree;
- map delivery: bytes the browser receives before the map is interactive (assets excluded)
  and the time to interactive in headless Chromium (and the time until the dashboard has drawn
  its figures), against a naive folium map holding every
  organization as a marker (built up to 100,000: beyond, it is too large to be useful);
- API latency: p50/p95 of a street-sized bbox (organizations as GeoJSON) — the same box again
  (a kept page), a new box every request (answered from each process's copy of the layer,
  see ``app/store/cache/point_copies.py``) and a new box computed by the database (as pages with
  filters are, and plain pages while a copy loads) — and of a city-wide map view (clusters),
  with 1 and 8 concurrent clients against gunicorn with 2 workers; the same for boxes inside
  the busiest street, as an unrestricted caller and as that street's user, plain, filtered
  (``status=blank``) and sorted; and how long a process takes after a write until it answers
  from its copy again.

It prints a table and writes the figures as JSON (default ``bench-results/bench.json``).
PostGIS comes from ``HONGTU_BENCH_POSTGRES_URL`` (default: database ``hongtu_bench`` on
127.0.0.1:5432).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import folium
import pandas as pd
import shapely
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.intake.export import header  # noqa: E402
from app.intake.schema import KINDS  # noqa: E402
from app.services.analysis import Parameters, run_analysis  # noqa: E402
from app.services.demo import DATA_DIR  # noqa: E402
from app.store import Store, cache, features  # noqa: E402
from app.store.admin import ensure_postgis_database  # noqa: E402
from app.store.queries import latest_run_id  # noqa: E402
from geo.democity import generate  # noqa: E402
from tests.conftest import Gunicorn, api_token  # noqa: E402

POSTGRES_URL = os.environ.get("HONGTU_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_bench")
NAIVE_FOLIUM_MAX = 100_000
#: A street-sized box in central Kunming (about 2 km × 2 km) and the city-wide view.
STREET_BOX = "102.700,25.030,102.720,25.048"
CITY_VIEW = "/map/data/orgs?bbox=102.45,24.80,103.05,25.30&zoom=11"
REQUESTS_PER_CLIENT = 25
#: Imports timed per size and backend, Hongtu's and the reference's taking turns (medians kept).
IMPORT_REPEATS = 3


def organizations_csv(city, path: Path) -> None:
    """The city's organizations as the CSV a user imports (Chinese headers, links, instructors)."""
    orgs = city.organizations
    links = city.coverage.merge(city.party_orgs[["id", "party_org_id"]], left_on="party_org_id", right_on="id")
    party = orgs["id"].map(links.groupby("organization_id")["party_org_id_y"].agg(";".join))
    kind = KINDS["orgs"]
    table = pd.DataFrame(
        {
            # Columns the importer derives (how each row was located) are not in a ledger.
            **{c: orgs[c] for c in kind.table_columns if c in orgs.columns},
            "lon": shapely.get_x(orgs.geometry.values),
            "lat": shapely.get_y(orgs.geometry.values),
            "party_org_id": party,
            "instructor": orgs["id"].isin(city.instructors["organization_id"]).map({True: "是", False: "否"}),
        }
    ).rename(columns=lambda c: header(kind, c))
    table.to_csv(path, index=False, encoding="utf-8-sig")


def fresh_store(backend: str, tmp: Path, city) -> Store:
    """An empty store with the city's areas, places, party organizations and centers."""
    if backend == "spatialite":
        store = Store(f"sqlite:///{tmp / 'bench.sqlite'}")
    else:
        # A new database for each size, as a new deployment has: no dead rows of the last size.
        ensure_postgis_database(POSTGRES_URL, fresh=True)
        store = Store(POSTGRES_URL)
    store.init_schema()
    with store.connect() as conn:
        store.clear(conn)
        for table, frame in city.tables().items():
            if table not in ("organizations", "party_org_coverage", "instructors"):
                store.insert_frame(conn, table, frame)
    return store


def bench_import(backend: str, tmp: Path, city, csv: Path) -> tuple[Store, dict]:
    """Hongtu's import and geopandas' writer, each timed in a fresh process of its own, into a
    fresh store each time, taking turns ``IMPORT_REPEATS`` times (one at 1M); answers the store
    of the last import and the medians. One pair of runs varied by a third between runs."""
    env = {k: v for k, v in os.environ.items() if k != "SPATIALITE_LOAD"}

    def seconds(importer: str, target: str) -> float:
        script = ROOT / "scripts" / "bench_import.py"
        command = [sys.executable, str(script), importer, target, str(csv)]
        # Hongtu's store tells GDAL not to load SpatiaLite (see backends.py); GDAL's SpatiaLite
        # writer needs it, so the children start from the environment before that.
        return float(subprocess.run(command, check=True, capture_output=True, env=env).stdout)

    ours, theirs, store = [], [], None
    for _ in range(IMPORT_REPEATS if len(city.organizations) < 1_000_000 else 1):
        if store is not None:
            store.engine.dispose()  # PostGIS drops the database it was connected to
        store = fresh_store(backend, tmp, city)
        ours.append(seconds("hongtu", store.url))
        reference = tmp / "reference.sqlite"
        reference.unlink(missing_ok=True)
        theirs.append(seconds("geopandas", str(reference) if backend == "spatialite" else store.url))
    writer = "to_file (SpatiaLite)" if backend == "spatialite" else "to_postgis"
    hongtu_s, reference_s = statistics.median(ours), statistics.median(theirs)
    return store, {
        "hongtu_s": round(hongtu_s, 2),
        "reference": f"pandas read_csv + geopandas {writer}",
        "reference_s": round(reference_s, 2),
        "ratio": round(hongtu_s / reference_s, 2),
        "runs": len(ours),
    }


def latency(base: str, path, clients: int, token: str) -> dict:
    """p50/p95 (ms) with ``clients`` concurrent clients, each sending a fixed count; ``path`` is
    a path, or a function of (client, request number) giving each request its own."""
    where = path if callable(path) else (lambda _client, _i: path)

    def one(client):
        times = []
        for i in range(REQUESTS_PER_CLIENT):
            request = urllib.request.Request(base + where(client, i), headers={"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as answer:
                answer.read()
                assert answer.status == 200
            times.append((time.perf_counter() - started) * 1000)
        return times

    warm = urllib.request.Request(base + where(-1, 0), headers={"Authorization": f"Bearer {token}"})
    urllib.request.urlopen(warm, timeout=60).read()  # the workers' first request loads modules
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        times = sorted(t for batch in pool.map(one, range(clients)) for t in batch)
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1)}


def street_box(client: int, i: int, extra: str = "") -> str:
    """A street-sized box of its own for each request (none answered from a kept page)."""
    minx, miny, maxx, maxy = map(float, STREET_BOX.split(","))
    shift = ((client + 2) * REQUESTS_PER_CLIENT + i) * 0.0004
    box = f"{minx + shift:.4f},{miny:.4f},{maxx + shift:.4f},{maxy:.4f}"
    return f"/api/collections/organizations/items?bbox={box}&limit=2000{extra}"


def street_box_database(client: int, i: int) -> str:
    """A new street box whose page the database computes: sorted by name, a property the
    process's copy does not hold."""
    return street_box(client, i, "&sortby=name")


def busiest_street(store: Store) -> tuple[str, tuple[float, float, float, float]]:
    """The street holding the most organizations, and its bounds."""
    with store.connect() as conn:
        code = conn.execute(
            text(
                "SELECT street_code FROM run_organizations WHERE run_id = :run AND street_code IS NOT NULL "
                "GROUP BY street_code ORDER BY count(*) DESC LIMIT 1"
            ),
            {"run": latest_run_id(store)},
        ).scalar()
    return code, tuple(store.read_frame("areas", [], where={"code": code}).total_bounds)


def in_street(bounds, extra: str = ""):
    """Requests for boxes of a quarter of the street's bounds, each one new, all inside them:
    the same boxes for a street user and an unrestricted one."""
    minx, miny, maxx, maxy = bounds
    w, h = (maxx - minx) / 2, (maxy - miny) / 2

    def path(client: int, i: int) -> str:
        n = (client + 2) * REQUESTS_PER_CLIENT + i
        # A low-discrepancy walk over the street: every box new, spread evenly.
        x, y = minx + (n * 0.6180339887 % 1) * w, miny + (n * 0.7548776662 % 1) * h
        return f"/api/collections/organizations/items?bbox={x:.5f},{y:.5f},{x + w:.5f},{y + h:.5f}&limit=2000{extra}"

    return path


def copy_ready(store: Store) -> float:
    """Seconds from a write until a process answers plain pages from its copy of the
    organizations (the first page, from the database, and loading the copy meanwhile: the
    positions, then the texts when they fit the budget)."""
    coll = features.COLLECTIONS["organizations"]
    # As in a gunicorn worker, this database's copy is the only one held (the last size's or
    # backend's texts would otherwise take the budget).
    cache.drop_copies()
    with store.connect() as conn:
        store.data_changed(conn)
        version = store.data_version(conn)
    page = features.Page(bbox=tuple(map(float, STREET_BOX.split(","))), limit=2000, run_id=latest_run_id(store))
    started = time.perf_counter()
    cache.page_features(store, coll, page, version)
    cache.wait_for_loads()
    return round(time.perf_counter() - started, 2)


def settle(base: str, token: str, copy_ready_s: float) -> None:
    """Let both workers load their copies before latency is measured: the API rows are the
    steady state, and how long a copy takes to load is its own row ("copy ready after a write")."""
    latency(base, lambda client, i: street_box(client + 100, i), 2, token)
    time.sleep(max(2.0, 2 * copy_ready_s))


def map_delivery(url: str, token: str) -> dict:
    """Bytes before interactive (assets excluded) and time to interactive, in headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
        sizes = []

        def record(response):
            if "/vendor/" in response.url or "/static/" in response.url:
                return
            try:
                sizes.append(len(response.body()))
            except Exception:  # a response without a body (redirect, aborted)
                sizes.append(0)

        page.on("response", record)
        started = time.perf_counter()
        with page.expect_response(lambda r: "/map/data/orgs" in r.url, timeout=120_000):
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
        page.wait_for_function("window.hongtuReady === true", timeout=120_000)
        seconds = time.perf_counter() - started
        browser.close()
    return {"bytes": int(sum(sizes)), "interactive_s": round(seconds, 2)}


def dashboard_delivery(url: str, token: str) -> dict:
    """Time (s) until the dashboard has drawn its figures at 1920×1080 in headless Chromium: the
    first visit after a run (figures computed) and the next one (figures kept)."""
    from playwright.sync_api import sync_playwright

    seconds = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        for _ in range(2):
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.set_extra_http_headers({"Authorization": f"Bearer {token}"})
            started = time.perf_counter()
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector("#ht-board[data-loaded=city]", timeout=120_000)
            seconds.append(round(time.perf_counter() - started, 2))
            page.close()
        browser.close()
    return {"first_s": seconds[0], "next_s": seconds[1]}


def naive_folium(city, tmp: Path) -> dict | None:
    """A folium map with every organization as a marker, served as a file: its size and load time."""
    if len(city.organizations) > NAIVE_FOLIUM_MAX:
        return None
    xy = city.organizations.get_coordinates()
    m = folium.Map(location=[25.04, 102.71], zoom_start=12, prefer_canvas=True)
    for name, x, y in zip(city.organizations["name"], xy.x, xy.y, strict=True):
        folium.CircleMarker([y, x], radius=4, popup=name).add_to(m)
    path = tmp / "naive.html"
    m.save(str(path))
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        # Its CDN assets are answered from Hongtu's vendored copies (the rest with nothing), so
        # the network plays no part and the map still draws.
        page.route("**/*", lambda route: _offline_asset(route))
        started = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=600_000)
        seconds = time.perf_counter() - started
        browser.close()
    return {"bytes": path.stat().st_size, "load_s": round(seconds, 2)}


def _offline_asset(route) -> None:
    from app.web.assets import PACKAGES

    url = route.request.url
    if url.startswith("file:"):
        route.continue_()
        return
    name = url.rsplit("/", 1)[-1].split("?")[0]
    local = {
        "leaflet.js": PACKAGES["leaflet"] / "leaflet.js",
        "leaflet.css": PACKAGES["leaflet"] / "leaflet.css",
    }.get(name)
    if local is None and name.startswith("jquery") and name.endswith(".js"):
        local = next(PACKAGES["jquery"].glob("jquery*.min.js"), None)
    route.fulfill(body=local.read_bytes() if local else b"", status=200)


def bench_size(n: int, backends: list[str]) -> dict:
    print(f"== {n:,} organizations", flush=True)
    result: dict = {"organizations": n}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        city = generate(DATA_DIR, n_orgs=n, seed=1)
        csv = tmp / "orgs.csv"
        organizations_csv(city, csv)
        figures = tmp / "analysis.json"
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "bench_analysis.py"), "--orgs", str(n), "--json", str(figures)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result["analysis"] = json.loads(figures.read_text())
        print(f"   analysis core {result['analysis']['core_vs_bare']}× bare", flush=True)
        walk = tmp / "walking.json"
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "bench_walking.py"), "--orgs", str(n), "--json", str(walk)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        result["walking"] = json.loads(walk.read_text())
        print(f"   walking {result['walking']}", flush=True)
        for backend in backends:
            entry = result.setdefault(backend, {})
            store, entry["import"] = bench_import(backend, tmp, city, csv)
            print(f"   {backend} import {entry['import']}", flush=True)
            run_analysis(store, Parameters())
            server = Gunicorn(store.url)
            token = api_token(store)
            street, bounds = busiest_street(store)
            street_token = api_token(store, "street", street)
            try:
                # The first visit after the import and the analysis, before the write that
                # copy_ready makes to time the copies.
                entry["map"] = map_delivery(server.url + "/", token)
                entry["dashboard"] = dashboard_delivery(server.url + "/dashboard", token)
                entry["copy_ready_s"] = copy_ready(store)
                settle(server.url, token, entry["copy_ready_s"])
                street = f"/api/collections/organizations/items?bbox={STREET_BOX}&limit=2000"
                views = (
                    ("street_bbox", street, token),
                    ("street_bbox_new", street_box, token),
                    ("street_bbox_database", street_box_database, token),
                    ("city_view", CITY_VIEW, token),
                    # A street user and an unrestricted one over the same boxes in the street,
                    # plain and filtered (the target: p95 within 1.3× of each other).
                    ("in_street", in_street(bounds), token),
                    ("in_street_scoped", in_street(bounds), street_token),
                    ("in_street_blank", in_street(bounds, "&status=blank"), token),
                    ("in_street_scoped_blank", in_street(bounds, "&status=blank"), street_token),
                    ("in_street_scoped_sorted", in_street(bounds, "&sortby=-employees"), street_token),
                )
                entry["api"] = {
                    f"{name}_{clients}": latency(server.url, path, clients, who)
                    for name, path, who in views
                    for clients in (1, 8)
                }
            finally:
                server.close()
            print(f"   {backend} map {entry['map']} dashboard {entry['dashboard']} api {entry['api']}", flush=True)
            store.engine.dispose()
        result["naive_folium"] = naive_folium(city, tmp)
        print(f"   naive folium {result['naive_folium']}", flush=True)
    return result


def table(results: list[dict], backends: list[str]) -> str:
    """The figures as a Markdown table, one column per size."""
    sizes = [f"{r['organizations']:,}" for r in results]
    rows = [("organizations", sizes)]

    def add(label, fn):
        rows.append((label, [fn(r) for r in results]))

    add(
        "analysis core / whole (× bare sjoin + sjoin_nearest)",
        lambda r: f"{r['analysis']['core_vs_bare']} / {r['analysis']['whole_vs_bare']}",
    )
    add(
        "analysis whole run (s) / peak memory (GB)",
        lambda r: f"{r['analysis']['whole_s']} / {r['analysis']['peak_rss_gb']}",
    )
    add(
        "walking stage, 300k-edge network, 1,300 centers: s / added peak GB / × the straight line / catchments s",
        lambda r: (
            f"{r['walking']['stage_s']} / {r['walking']['added_peak_gb']} / {r['walking']['ratio']}× / "
            f"{r['walking']['catchments_s']}"
            if "walking" in r
            else "–"
        ),
    )
    for b in backends:
        add(
            f"import CSV → {b} (s) / read_csv + geopandas writer (s) = ratio (median of 3, at 1M one run)",
            lambda r, b=b: (
                f"{r[b]['import']['hongtu_s']} / {r[b]['import']['reference_s']} = {r[b]['import']['ratio']}×"
            ),
        )
        add(
            f"map page, {b}: bytes before interactive / time to interactive (s)",
            lambda r, b=b: f"{r[b]['map']['bytes'] / 1024:.0f} KB / {r[b]['map']['interactive_s']}",
        )
        add(
            f"dashboard, {b}: drawn at 1920×1080, first visit after a run / next (s)",
            lambda r, b=b: (
                f"{r[b]['dashboard']['first_s']} / {r[b]['dashboard']['next_s']}" if "dashboard" in r[b] else "–"
            ),
        )
        add(
            f"API, {b}: a process answers plain pages from its copy, after a write (s)",
            lambda r, b=b: str(r[b].get("copy_ready_s", "–")),
        )
        for key, label in (
            ("street_bbox", "street bbox GeoJSON (same box: kept page)"),
            ("street_bbox_new", "street bbox GeoJSON (every box new: the process's copy)"),
            ("street_bbox_database", "street bbox GeoJSON (every box new, computed by the database)"),
            ("city_view", "city-wide clusters"),
            ("in_street", "boxes in the busiest street, unrestricted caller"),
            ("in_street_scoped", "the same boxes, that street's user"),
            ("in_street_blank", "the same boxes, status=blank, unrestricted"),
            ("in_street_scoped_blank", "the same boxes, status=blank, street user"),
            ("in_street_scoped_sorted", "the same boxes, sortby=-employees, street user"),
        ):
            add(
                f"API {label}, {b}: p50 / p95 (ms), 1 → 8 clients",
                lambda r, b=b, key=key: (
                    f"{r[b]['api'][key + '_1']['p50_ms']} / {r[b]['api'][key + '_1']['p95_ms']} → "
                    f"{r[b]['api'][key + '_8']['p50_ms']} / {r[b]['api'][key + '_8']['p95_ms']}"
                ),
            )
    add(
        "naive folium, every marker: file size / load (s)",
        lambda r: (
            f"{r['naive_folium']['bytes'] / 1024**2:.1f} MB / {r['naive_folium']['load_s']}"
            if r["naive_folium"]
            else "not built"
        ),
    )
    lines = ["| | " + " | ".join(sizes) + " |", "|---|" + "---|" * len(sizes)]
    lines += [f"| {label} | " + " | ".join(values) + " |" for label, values in rows[1:]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--backends", default="spatialite,postgis")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "bench.json"))
    parser.add_argument(
        "--peers", action="store_true", help="only Hongtu's API beside pygeoapi, QGIS Server, MapServer"
    )
    parser.add_argument("--peer-orgs", type=int, default=100_000)
    parser.add_argument("--peer-boxes", type=int, default=500)
    parser.add_argument("--peer-rounds", type=int, default=3)
    args = parser.parse_args()
    if args.peers:
        import bench_peers

        result = bench_peers.run(POSTGRES_URL, args.peer_orgs, args.peer_boxes, args.peer_rounds)
        print("\n" + bench_peers.table(result))
        out = ROOT / "bench-results" / "peers.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, ensure_ascii=False, indent=2))
        return
    backends = args.backends.split(",")
    results = [bench_size(int(n), backends) for n in args.sizes.split(",")]
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"\n{machine}\n")
    print(table(results, backends))
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine, "results": results}, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
