"""Offline front-end assets: Leaflet, MarkerCluster, jQuery and Font Awesome from xstatic packages,
and ECharts vendored from its npm package into ``static/vendor/`` (``scripts/vendor_echarts.sh``).

Government intranets have no CDN, so every script and stylesheet a page uses is served from
here; ``vendor_url`` gives the URLs the map builder hands to folium.
"""

from __future__ import annotations

from pathlib import Path

import xstatic.pkg.font_awesome
import xstatic.pkg.jquery
import xstatic.pkg.leaflet
import xstatic.pkg.leaflet_markercluster
from flask import Blueprint, abort, send_from_directory, url_for

PACKAGES: dict[str, Path] = {
    "leaflet": Path(xstatic.pkg.leaflet.BASE_DIR),
    "markercluster": Path(xstatic.pkg.leaflet_markercluster.BASE_DIR),
    "jquery": Path(xstatic.pkg.jquery.BASE_DIR),
    "fontawesome": Path(xstatic.pkg.font_awesome.BASE_DIR),
    "echarts": Path(__file__).resolve().parents[2] / "static" / "vendor" / "echarts",
}

bp = Blueprint("vendor", __name__, url_prefix="/vendor")


@bp.get("/<package>/<path:filename>")
def asset(package: str, filename: str):
    """A file of one vendored package, cacheable for a year (versions are pinned)."""
    if package not in PACKAGES:
        abort(404)
    return send_from_directory(PACKAGES[package], filename, max_age=365 * 24 * 3600)


def vendor_url(package: str, filename: str) -> str:
    """URL of a vendored file."""
    return url_for("vendor.asset", package=package, filename=filename)
