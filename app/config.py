"""Settings from the environment; every one has a default that runs the embedded demo.

| variable | default | meaning |
|---|---|---|
| HONGTU_INSTANCE | instance/ of the checkout | folder of import reports, the default database and caches |
| DATABASE_URL | sqlite:///<instance>/hongtu.sqlite | SpatiaLite file or postgresql+psycopg://… |
| SECRET_KEY | random per process | Flask session signing key; set it in production |
| HONGTU_BASEMAP | none (tianditu if a key is set) | none, tianditu, tianditu_img, amap, osm |
| HONGTU_TIANDITU_KEY | (empty) | 天地图 key (tk) |
| HONGTU_CITY_NAME | 全市 | the city's name in headings, titles and exports (the demo: 昆明市) |
| HONGTU_RANK_MIN | 30 | areas with fewer organizations in scope are ranked last, with their n, on the dashboard |
| HONGTU_SERVICE_RADIUS_M | 1000 | service radius of a 党群服务中心 in metres |
| HONGTU_POINT_LIMIT | 1500 | most organizations sent as points for one map view; beyond it, clusters |
| HONGTU_MAX_UPLOAD_MB | 200 | largest file an import accepts (CLI and upload page) |
| HONGTU_FRAME_ANCESTORS | 'self' | sites allowed to show /embed in an iframe (CSP frame-ancestors sources) |
| HONGTU_CHROMIUM | chromium on the PATH | browser that renders PNG/PDF map images |
| HONGTU_HTTPS | 0 | 1 behind an HTTPS proxy: Secure `__Host-` cookie, HSTS, X-Forwarded-For/Proto trusted (one hop) |
| HONGTU_ADMIN_2FA | 0 | 1: administrators must sign in with a second factor (enrol: `hongtu user 2fa NAME`) |
| HONGTU_SESSION_IDLE_MIN | 30 | a session unused this long ends |
| HONGTU_SESSION_HOURS | 12 | a session ends this long after sign-in, used or not |
| HONGTU_RENDER_PAGES | 2 | map images (PNG/PDF) rendered at once per process |
| HONGTU_RENDER_WAIT_S | 20 | how long a render waits for a page before answering 503 + Retry-After |
| HONGTU_EXPORTS_PER_MIN | 20 | exports and renders one user may ask for per minute (then 429 + Retry-After) |
| HONGTU_VISIT_KINDS | a 四必访 list | the occasions of a visit, comma-separated (see VISIT_KINDS) |
| HONGTU_VISIT_FAR_M | 300 | a visit checked in farther than this from the organization is flagged (metres) |
| HONGTU_VISIT_DAYS | 90 | an organization with an instructor and no visit for this many days is 挂名未走访 |
| HONGTU_VISIT_PHOTO_MB | 8 | largest visit photo accepted |
| HONGTU_AUTO_ANALYZE_MIN | 10 | minutes after the last write that a run starts by itself (0: never) |
| HONGTU_GEOCODER | none | none, tianditu or amap: geocode ledger addresses that name no stored place |
| HONGTU_GEOCODER_KEY | HONGTU_TIANDITU_KEY for tianditu | the provider's web-service key |
| HONGTU_GEOCODER_URL | the provider's | its endpoint (a proxy on an intranet) |
| HONGTU_GEOCODER_RATE | 3 | requests per second at most |
| HONGTU_GEOCODER_MAX | 300 | requests per import at most |
| HONGTU_GEOCODER_TIMEOUT_S | 5 | how long one request may take |
| HONGTU_GEOCODER_CITY | (empty) | AMap's city (name or adcode) to search in |
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASEMAPS = ("none", "tianditu", "tianditu_img", "amap", "osm")
GEOCODERS = ("none", "tianditu", "amap")
#: The occasions of a visit by default: a 四必访 rule as many places keep it, and routine visits.
VISIT_KINDS = "新成立必访,有困难必访,逢节日必访,党员变动必访,日常走访"


def from_env(instance_path: str) -> dict:
    """Flask config values read from the environment."""
    key = os.environ.get("HONGTU_TIANDITU_KEY", "")
    basemap = os.environ.get("HONGTU_BASEMAP", "tianditu" if key else "none")
    if basemap not in BASEMAPS:
        raise ValueError(f"HONGTU_BASEMAP must be one of {', '.join(BASEMAPS)}, not {basemap!r}")
    geocoder = os.environ.get("HONGTU_GEOCODER", "none")
    if geocoder not in GEOCODERS:
        raise ValueError(f"HONGTU_GEOCODER must be one of {', '.join(GEOCODERS)}, not {geocoder!r}")
    if geocoder != "none" and not (os.environ.get("HONGTU_GEOCODER_KEY") or (geocoder == "tianditu" and key)):
        raise ValueError(f"HONGTU_GEOCODER={geocoder} needs HONGTU_GEOCODER_KEY")
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{Path(instance_path) / 'hongtu.sqlite'}"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        "HONGTU_BASEMAP": basemap,
        "HONGTU_TIANDITU_KEY": key,
        "HONGTU_CITY_NAME": os.environ.get("HONGTU_CITY_NAME", "").strip(),
        "HONGTU_RANK_MIN": int(os.environ.get("HONGTU_RANK_MIN", "30")),
        "HONGTU_SERVICE_RADIUS_M": float(os.environ.get("HONGTU_SERVICE_RADIUS_M", "1000")),
        "HONGTU_POINT_LIMIT": int(os.environ.get("HONGTU_POINT_LIMIT", "1500")),
        "HONGTU_FRAME_ANCESTORS": os.environ.get("HONGTU_FRAME_ANCESTORS", "'self'"),
        "HONGTU_CHROMIUM": os.environ.get("HONGTU_CHROMIUM", ""),
        "HONGTU_HTTPS": os.environ.get("HONGTU_HTTPS", "0") == "1",
        "HONGTU_MAX_UPLOAD_BYTES": int(float(os.environ.get("HONGTU_MAX_UPLOAD_MB", "200")) * 1024 * 1024),
        "HONGTU_ADMIN_2FA": os.environ.get("HONGTU_ADMIN_2FA", "0") == "1",
        "HONGTU_SESSION_IDLE_S": int(float(os.environ.get("HONGTU_SESSION_IDLE_MIN", "30")) * 60),
        "HONGTU_SESSION_LIFETIME_S": int(float(os.environ.get("HONGTU_SESSION_HOURS", "12")) * 3600),
        "HONGTU_RENDER_PAGES": int(os.environ.get("HONGTU_RENDER_PAGES", "2")),
        "HONGTU_RENDER_WAIT_S": float(os.environ.get("HONGTU_RENDER_WAIT_S", "20")),
        "HONGTU_EXPORTS_PER_MIN": int(os.environ.get("HONGTU_EXPORTS_PER_MIN", "20")),
        "HONGTU_VISIT_KINDS": [
            k.strip() for k in os.environ.get("HONGTU_VISIT_KINDS", VISIT_KINDS).split(",") if k.strip()
        ],
        "HONGTU_VISIT_FAR_M": float(os.environ.get("HONGTU_VISIT_FAR_M", "300")),
        "HONGTU_VISIT_DAYS": int(os.environ.get("HONGTU_VISIT_DAYS", "90")),
        "HONGTU_VISIT_PHOTO_BYTES": int(float(os.environ.get("HONGTU_VISIT_PHOTO_MB", "8")) * 1024 * 1024),
        "HONGTU_AUTO_ANALYZE_MIN": float(os.environ.get("HONGTU_AUTO_ANALYZE_MIN", "10")),
        "HONGTU_GEOCODER": geocoder,
        "HONGTU_GEOCODER_KEY": os.environ.get("HONGTU_GEOCODER_KEY", ""),
        "HONGTU_GEOCODER_URL": os.environ.get("HONGTU_GEOCODER_URL", ""),
        "HONGTU_GEOCODER_RATE": float(os.environ.get("HONGTU_GEOCODER_RATE", "3")),
        "HONGTU_GEOCODER_MAX": int(os.environ.get("HONGTU_GEOCODER_MAX", "300")),
        "HONGTU_GEOCODER_TIMEOUT_S": float(os.environ.get("HONGTU_GEOCODER_TIMEOUT_S", "5")),
        "HONGTU_GEOCODER_CITY": os.environ.get("HONGTU_GEOCODER_CITY", ""),
    }
