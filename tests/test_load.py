"""Load: gunicorn (2 workers) on PostGIS, 8 clients on the loopback for 60 s against map and API
routes — not one error, and the latency percentiles printed with the test's outcome."""

import concurrent.futures
import os
import statistics
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import text

from app.store import Store

from .conftest import Gunicorn, api_token

CLIENTS = 8
#: How long the clients send, and the most any one client sends (bounded in count and time).
SECONDS = float(os.environ.get("HONGTU_LOAD_SECONDS", "60"))
MAX_PER_CLIENT = 5000


def routes(store: Store) -> list[str]:
    """What map users and API clients ask for: views at every zoom, cards, pages, items."""
    with store.connect() as conn:
        org = conn.execute(text("SELECT org_id FROM organizations ORDER BY id LIMIT 1")).scalar()
        community = conn.execute(text("SELECT code FROM areas WHERE level = 'community' ORDER BY code")).scalar()
    return [
        "/map/data/orgs?bbox=102.55,24.85,102.95,25.20&zoom=11",
        "/map/data/orgs?bbox=102.69,25.02,102.73,25.05&zoom=16",
        "/map/data/community?bbox=102.60,24.95,102.85,25.15&zoom=13",
        "/map/data/centers?bbox=102.60,24.95,102.85,25.15&zoom=14",
        "/map/data/hotspots?bbox=102.3,24.5,103.5,26.0&zoom=10",
        f"/map/org/{org}",
        "/map/nearby?lon=102.71&lat=25.04&r=1000",
        "/api/collections/organizations/items?bbox=102.69,25.02,102.73,25.05&limit=500",
        "/api/collections/area-coverage/items?limit=50",
        f"/area/{community}",
    ]


def test_eight_clients_for_a_minute_without_one_error(analyzed_store: Store, capsys):
    if analyzed_store.backend_name != "postgis":
        pytest.skip("the load test runs as production does: on PostGIS")
    server = Gunicorn(analyzed_store.url, workers=2)
    headers = {"Authorization": f"Bearer {api_token(analyzed_store)}"}
    paths = routes(analyzed_store)
    deadline = time.monotonic() + SECONDS

    def client(index: int) -> tuple[list[float], list[str]]:
        times, errors = [], []
        for n in range(MAX_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            path = paths[(index + n) % len(paths)]
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(server.url + path, headers=headers), timeout=30
                ) as answer:
                    answer.read()
            except (urllib.error.URLError, OSError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            times.append((time.perf_counter() - started) * 1000)
        return times, errors

    try:
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            results = list(pool.map(client, range(CLIENTS)))
    finally:
        server.close()
    times = sorted(t for batch, _ in results for t in batch)
    errors = [e for _, batch in results for e in batch]
    assert errors == [], errors[:5]
    assert len(times) >= CLIENTS * len(paths), "too few requests to say anything"
    p50, p95 = statistics.median(times), times[int(0.95 * (len(times) - 1))]
    with capsys.disabled():
        print(
            f"\nload: {len(times)} requests in {SECONDS:.0f} s by {CLIENTS} clients "
            f"({len(times) / SECONDS:.0f}/s), 0 errors, p50 {p50:.0f} ms, p95 {p95:.0f} ms"
        )
