"""Map images under load: do thirty clients asking for PNGs slow everyone else down?

    .venv/bin/python scripts/bench_render.py [--orgs 10000] [--clients 30] [--seconds 60]
        [--patient] [--export-limit N]

Builds a demo city in a temporary SpatiaLite file, serves it with gunicorn as production does
(``gunicorn.conf.py``, 2 workers), then for ``--seconds`` runs ``--clients`` clients each asking
for a street's ``map.png`` (1200 × 800) in a loop, beside 4 API clients paging street-sized
boxes of organizations with a token of another user. It samples the Chromium processes under
gunicorn (count, resident memory) every second, and prints the API's latency percentiles, the
PNG answers by status, and the peaks as JSON. PNG clients ask again at once after a 503, or
with ``--patient`` after the Retry-After it names. The per-user export limit
(``HONGTU_EXPORTS_PER_MIN``) is lifted so that the renderer itself is what is measured, unless
``--export-limit`` sets it.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PASSWORD = "Bench-render-pw1"


def _city(url: str, orgs: int) -> tuple[str, str]:
    """Load and analyse the demo city; answers a street code and an API token of a viewer."""
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo
    from app.store import Store, accounts

    store = Store(url)
    store.init_schema()
    load_demo(store, n_orgs=orgs, seed=3)
    run_analysis(store, Parameters())
    accounts.add_user(store, "bench-admin", PASSWORD, "admin")
    accounts.add_user(store, "bench-viewer", PASSWORD, "viewer")
    token = accounts.issue_token(store, "api", "bench-viewer")
    with store.connect() as conn:
        from sqlalchemy import text

        street = conn.execute(text("SELECT code FROM areas WHERE level = 'street' ORDER BY code LIMIT 1")).scalar()
    return street, token


def _serve(url: str, export_limit: int) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "HONGTU_EXPORTS_PER_MIN": str(export_limit)}
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            return process, base
        except OSError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("gunicorn did not start")


def _signed_in(base: str) -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": "bench-admin", "password": PASSWORD, "csrf_token": token}).encode()
    opener.open(base + "/login", form).read()
    return opener


def _chromium(root_pid: int) -> tuple[int, int]:
    """Chromium processes under ``root_pid`` and their resident memory (bytes)."""
    from app.processes import descendants

    mine = [p for p in descendants(root_pid) if "chrom" in p.name.lower()]
    return len(mine), sum(p.rss for p in mine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--patient", action="store_true", help="PNG clients wait as a 503's Retry-After says before asking again"
    )
    parser.add_argument(
        "--export-limit",
        type=int,
        default=1_000_000,
        help="HONGTU_EXPORTS_PER_MIN for the run (default: lifted; production's default is 20)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        street, token = _city(url, args.orgs)
        process, base = _serve(url, args.export_limit)
        try:
            result = _load(base, process.pid, street, token, args)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(json.dumps(result, indent=2))


def _load(base: str, root: int, street: str, token: str, args) -> dict:
    stop = time.monotonic() + args.seconds
    api, png, samples = [], {}, []
    lock = threading.Lock()

    def painter():
        opener = _signed_in(base)
        while time.monotonic() < stop:
            try:
                status = opener.open(f"{base}/area/{street}/map.png?width=1200&height=800", timeout=120).status
            except urllib.error.HTTPError as exc:
                status = exc.code
                if args.patient and exc.code == 503:
                    time.sleep(float(exc.headers.get("Retry-After", "5")))
            except OSError:
                status = "error"
            with lock:
                png[status] = png.get(status, 0) + 1

    def reader(n: int):
        headers = {"Authorization": f"Bearer {token}"}
        i = n
        while time.monotonic() < stop:
            x, y = 102.62 + (i % 20) * 0.01, 24.95 + (i // 20 % 15) * 0.01
            request = urllib.request.Request(
                f"{base}/api/collections/organizations/items?bbox={x},{y},{x + 0.03},{y + 0.02}&limit=500",
                headers=headers,
            )
            started = time.perf_counter()
            urllib.request.urlopen(request, timeout=60).read()
            with lock:
                api.append(time.perf_counter() - started)
            i += 7

    def sampler():
        while time.monotonic() < stop:
            samples.append(_chromium(root))
            time.sleep(1)

    threads = [threading.Thread(target=painter) for _ in range(args.clients)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=sampler))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ms = sorted(1000 * v for v in api)
    return {
        "png_clients": args.clients,
        "patient": args.patient,
        "export_limit": args.export_limit,
        "seconds": args.seconds,
        "api_requests": len(ms),
        "api_p50_ms": round(statistics.median(ms), 1),
        "api_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
        "png_answers": {str(k): v for k, v in sorted(png.items(), key=str)},
        "chromium_processes_max": max(n for n, _ in samples),
        "chromium_rss_max_mb": round(max(r for _, r in samples) / 2**20),
    }


if __name__ == "__main__":
    main()
