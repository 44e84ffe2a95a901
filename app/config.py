"""Settings from the environment; every one has a default that runs the embedded demo.

| variable | default | meaning |
|---|---|---|
| DATABASE_URL | sqlite:///<instance>/hongtu.sqlite | SpatiaLite file or postgresql+psycopg://… |
| SECRET_KEY | random per process | Flask session signing key; set it in production |
| HONGTU_BASEMAP | none (tianditu if a key is set) | none, tianditu, tianditu_img, amap, osm |
| HONGTU_TIANDITU_KEY | (empty) | 天地图 key (tk) |
| HONGTU_SERVICE_RADIUS_M | 1000 | service radius of a 党群服务中心 in metres |
| HONGTU_POINT_LIMIT | 1500 | most organizations sent as points for one map view; beyond it, clusters |
| HONGTU_MAX_UPLOAD_MB | 200 | largest file an import accepts (CLI and upload page) |
| HONGTU_FRAME_ANCESTORS | 'self' | sites allowed to show /embed in an iframe (CSP frame-ancestors sources) |
| HONGTU_CHROMIUM | chromium on the PATH | browser that renders PNG/PDF map images |
| HONGTU_HTTPS | 0 | 1 behind an HTTPS proxy: Secure session cookie, X-Forwarded-For/Proto trusted (one hop) |
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASEMAPS = ("none", "tianditu", "tianditu_img", "amap", "osm")


def from_env(instance_path: str) -> dict:
    """Flask config values read from the environment."""
    key = os.environ.get("HONGTU_TIANDITU_KEY", "")
    basemap = os.environ.get("HONGTU_BASEMAP", "tianditu" if key else "none")
    if basemap not in BASEMAPS:
        raise ValueError(f"HONGTU_BASEMAP must be one of {', '.join(BASEMAPS)}, not {basemap!r}")
    return {
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite:///{Path(instance_path) / 'hongtu.sqlite'}"),
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_hex(32),
        "HONGTU_BASEMAP": basemap,
        "HONGTU_TIANDITU_KEY": key,
        "HONGTU_SERVICE_RADIUS_M": float(os.environ.get("HONGTU_SERVICE_RADIUS_M", "1000")),
        "HONGTU_POINT_LIMIT": int(os.environ.get("HONGTU_POINT_LIMIT", "1500")),
        "HONGTU_FRAME_ANCESTORS": os.environ.get("HONGTU_FRAME_ANCESTORS", "'self'"),
        "HONGTU_CHROMIUM": os.environ.get("HONGTU_CHROMIUM", ""),
        "HONGTU_HTTPS": os.environ.get("HONGTU_HTTPS", "0") == "1",
        "HONGTU_MAX_UPLOAD_BYTES": int(float(os.environ.get("HONGTU_MAX_UPLOAD_MB", "200")) * 1024 * 1024),
    }
