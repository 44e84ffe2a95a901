"""Regenerate the screenshots in README.md and docs/ from the current code.

    .venv/bin/python scripts/screenshots.py [--out docs]

Builds the 5,000-organization demo city in a temporary instance (SpatiaLite), analyses it, serves
it with gunicorn as production does, and takes each picture in headless Chromium as its user
would see it: the city map (1440×900), a street's area page, its ledger on a phone (390×844),
the dashboard (1920×1080), the street's PNG export, and walking catchments beside the
straight-line rings.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STREET = "530102001"  # 华山街道, the demo's busiest street
PASSWORD = "Shots-Pw-2026"


def hongtu(env: dict, *args: str) -> None:
    subprocess.run([str(BIN / "hongtu"), *args], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sign_in(browser, base: str, user: str, viewport: dict, **options):
    page = browser.new_page(viewport=viewport, **options)
    page.goto(base + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    return page


def shoot(out: Path, base: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = sign_in(browser, base, "admin", {"width": 1440, "height": 900})
        page.goto(base + "/", wait_until="networkidle")
        page.wait_for_timeout(1500)
        page.screenshot(path=out / "screenshot.png")
        page.goto(f"{base}/area/{STREET}", wait_until="networkidle")
        page.wait_for_timeout(1500)
        page.screenshot(path=out / "area.png")
        # Walking catchments beside the straight-line rings, at the generated river east of the centre.
        page.goto(base + "/", wait_until="networkidle")
        page.evaluate(
            """() => {
              ["district", "street", "community", "places", "orgs", "orgs_clusters", "hotspots"]
                .forEach(k => hongtuGroups[k] && hongtuMap.removeLayer(hongtuGroups[k]));
              ["roads", "walk_catchments", "centers"].forEach(k => hongtuGroups[k].addTo(hongtuMap));
              document.querySelector(".leaflet-control-layers").classList.remove("leaflet-control-layers-expanded");
              hongtuMap.setView([25.046, 102.711], 15);
            }"""
        )
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(2000)
        page.screenshot(path=out / "walking.png")
        page.set_viewport_size({"width": 1920, "height": 1080})
        page.goto(base + "/dashboard", wait_until="networkidle")
        page.wait_for_selector("#ht-board[data-loaded=city]")
        page.wait_for_timeout(1500)
        page.screenshot(path=out / "dashboard.png")
        export = page.context.request.get(f"{base}/area/{STREET}/map.png?width=1600&height=1000")
        (out / "street-export.png").write_bytes(export.body())
        phone = sign_in(browser, base, "huashan", {"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
        phone.goto(f"{base}/area/{STREET}", wait_until="networkidle")
        phone.evaluate("document.querySelector('.ht-ledger-section').scrollIntoView()")
        phone.wait_for_timeout(800)
        phone.screenshot(path=out / "phone-ledger.png")
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    out = Path(parser.parse_args().out)
    with tempfile.TemporaryDirectory() as instance:
        env = {**os.environ, "HONGTU_INSTANCE": instance, "SECRET_KEY": "screenshots", "HONGTU_CITY_NAME": "昆明市"}
        env.pop("DATABASE_URL", None)
        hongtu(env, "init-db")
        hongtu(env, "demo", "--orgs", "5000")
        hongtu(env, "analyze")
        hongtu(env, "user", "add", "admin", "--role", "admin", "--password", PASSWORD)
        hongtu(env, "user", "add", "huashan", "--role", "street", "--area", STREET, "--password", PASSWORD)
        port = free_port()
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "app:create_app()"],
            cwd=ROOT,
            env={**env, "HONGTU_AUTO_ANALYZE_MIN": "0"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.1)
            shoot(out, base)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
