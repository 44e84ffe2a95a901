"""Build the folium map of a city with Hongtu's own assets and data layers fetched by bbox.

folium lays out the map, its layer groups and the layer control; ``static/hongtu-map.js``
fills the groups from the ``/map/data/…`` endpoints as the user pans and zooms, so no page
ever carries a whole big layer. folium's default CDN assets are replaced by vendored files,
and Bootstrap / awesome-markers are left out (circle markers and div icons need neither).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import folium
import folium.plugins
from branca.element import MacroElement
from flask import current_app, g, request, url_for
from folium.elements import JSCSSMixin
from folium.template import Template

from geo.vocabulary import (
    AREA_CODE_LENGTHS,
    CENTER_LEVEL_NAMES,
    COVERAGE_KIND_NAMES,
    MAP_STATUS_COLORS,
    MAP_STATUS_NAMES,
    MAP_STATUSES,
    ORG_TYPE_NAMES,
    PAIR_TIER_NAMES,
    PAIR_TIERS,
    PLACE_KIND_NAMES,
    STATION_KIND_NAMES,
    STATUS_NAMES,
)
from geo.walking import WALK_SPEED_MS

from ..i18n import gettext
from ..layers import BY_KEY, LAYERS
from ..security import with_nonce
from ..store.models import APPROXIMATE
from .assets import vendor_url

#: Base maps: name shown, tile URL templates, subdomains, attribution.
BASEMAP_TILES = {
    "tianditu": (
        "天地图矢量",
        [
            "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
            "https://t{s}.tianditu.gov.cn/cva_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=cva&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
        ],
        "01234567",
        "&copy; 天地图 Tianditu",
    ),
    "tianditu_img": (
        "天地图影像",
        [
            "https://t{s}.tianditu.gov.cn/img_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=img&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
            "https://t{s}.tianditu.gov.cn/cia_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
            "&LAYER=cia&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={z}&TILEROW={y}"
            "&TILECOL={x}&tk={key}",
        ],
        "01234567",
        "&copy; 天地图 Tianditu",
    ),
    "amap": (
        "高德地图",
        ["https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"],
        "1234",
        "&copy; 高德地图 AMap",
    ),
    "osm": (
        "OpenStreetMap",
        ["https://tile.openstreetmap.org/{z}/{x}/{y}.png"],
        "",
        "&copy; OpenStreetMap contributors",
    ),
}


class HongtuLayers(MacroElement):
    """Hands the map, its layer control and the layer configuration to ``hongtu-map.js``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        Hongtu.init({{ this._parent.get_name() }}, {{ this.control.get_name() }},
                    {{ this.groups_js }}, {{ this.config|tojson }});
        {% endmacro %}
        """
    )

    def __init__(self, control: folium.LayerControl, groups: dict[str, MacroElement], config: dict):
        super().__init__()
        self._name = "HongtuLayers"
        self.control = control
        self.config = config
        self.groups_js = "{" + ", ".join(f"{k!r}: {g.get_name()}" for k, g in groups.items()) + "}"


def tile_hosts(basemap: str) -> frozenset[str]:
    """The host names a base map's tiles come from (none for ``none``)."""
    if basemap not in BASEMAP_TILES:
        return frozenset()
    _, urls, subdomains, _ = BASEMAP_TILES[basemap]
    expanded = [u.replace("{s}", s) for u in urls for s in (subdomains or "")] if subdomains else urls
    return frozenset(urlsplit(u).hostname for u in expanded)


def basemap_ids() -> list[str]:
    """The base maps this configuration offers."""
    return [b["id"] for b in basemap_choices()]


def basemap_choices(preferred: str | None = None) -> list[dict]:
    """Base-map choices for the configured key, ``preferred`` (else the configured default)
    first; 'none' always."""
    cfg = current_app.config
    key = cfg["HONGTU_TIANDITU_KEY"]
    choices = []
    default = cfg["HONGTU_BASEMAP"]
    for ident, (name, urls, subdomains, attribution) in BASEMAP_TILES.items():
        # Offline by default: an online base map is offered only when configured.
        if (ident.startswith("tianditu") and not key) or (ident in ("osm", "amap") and default != ident):
            continue
        choices.append(
            {
                "id": ident,
                "name": gettext(name),
                "attribution": attribution,
                "subdomains": subdomains,
                "urls": [u.replace("{key}", key) for u in urls],
                # AMap tiles are in GCJ-02: overlays must be drawn in GCJ-02 over them.
                "crs": "gcj02" if ident == "amap" else "wgs84",
            }
        )
    choices.append({"id": "none", "name": gettext("无底图"), "urls": []})
    choices.sort(key=lambda b: b["id"] != (preferred or default))
    return choices


def _localize(element: JSCSSMixin, js: list[tuple[str, str]], css: list[tuple[str, str]]) -> None:
    element.default_js = js
    element.default_css = css


#: The layers offered beside the organizations (which are a marker cluster of their own).
OVERLAYS = tuple(layer for layer in LAYERS if layer.key != "orgs")
#: The zoom from which organizations are drawn one dot each, coloured by status: about a
#: street's extent on a desktop screen, where a cluster would hide which ones are blank.
DOTS_FROM_ZOOM = 14
#: How far (screen pixels) the browser gathers organizations into one cluster: half
#: MarkerCluster's default, so a dense district is a few rings rather than one.
CLUSTER_RADIUS_PX = 40


def build_city_map(
    center: tuple[float, float],
    zoom: int = 11,
    area: dict | None = None,
    overlays: tuple[str, ...] | None = None,
    basemap: str | None = None,
    filters: dict[str, str] | None = None,
    fit: bool = True,
    inline: dict | None = None,
    rings: bool = False,
) -> folium.Map:
    """The city map: area outlines, places, organizations, centers and stations by bbox.

    Parameters
    ----------
    center : (lat, lon)
        Initial centre in WGS-84.
    zoom : int
        Initial zoom level.
    area : dict, optional
        An area to focus: ``code`` (organizations are filtered to it), ``bounds``
        ``[[south, west], [north, east]]`` (the map fits them) and ``outline`` (GeoJSON drawn on top).
    overlays : tuple of str, optional
        Keys of ``OVERLAYS`` to offer, all shown (default: all, some shown); organizations
        are always offered.
    basemap : str, optional
        The base map to start with (one of ``basemap_ids()``), else the configured default.
    filters : dict, optional
        Organization filters applied before any the user picks (an embed's URL parameters).
    fit : bool
        Whether to fit the view to ``area`` rather than keep ``center`` and ``zoom``.
    inline : dict, optional
        Layer name → GeoJSON carried in the page (a standalone file): nothing is fetched.
    rings : bool
        Whether a standalone file draws the centers' service radius.
    """
    m = folium.Map(location=list(center), zoom_start=zoom, tiles=None, prefer_canvas=True)
    # folium only gives zoom limits to its own tile layer; MarkerCluster needs them on the map.
    m.options.update(min_zoom=5, max_zoom=19)
    _localize(
        m,
        [("leaflet", vendor_url("leaflet", "leaflet.js"))],
        [
            ("leaflet_css", vendor_url("leaflet", "leaflet.css")),
            ("fontawesome_css", vendor_url("fontawesome", "css/all.min.css")),
        ],
    )
    groups: dict[str, MacroElement] = {}
    min_zoom = {}
    for layer in OVERLAYS:
        key = layer.key
        if overlays is None or key in overlays or key == "orgs_clusters":
            shown = layer.shown if overlays is None else (key in overlays or "orgs" in overlays)
            groups[key] = folium.FeatureGroup(name=gettext(layer.label), show=shown).add_to(m)
            min_zoom[key] = layer.min_zoom
    # A street or anything smaller (its page, its exports) is drawn dot by dot at any zoom;
    # MarkerCluster reads 0 as "never", so 1 (below the map's least zoom) stands for "always".
    small = area is not None and len(area.get("code", "")) >= AREA_CODE_LENGTHS["street"]
    points = folium.plugins.MarkerCluster(
        name=gettext(BY_KEY["orgs"].label),
        options={
            "disableClusteringAtZoom": 1 if small else DOTS_FROM_ZOOM,
            "maxClusterRadius": CLUSTER_RADIUS_PX,
            "chunkedLoading": True,
        },
        show=overlays is None or "orgs" in overlays,
    ).add_to(m)
    _localize(
        points,
        [("markerclusterjs", vendor_url("markercluster", "leaflet.markercluster.js"))],
        [
            ("markerclustercss", vendor_url("markercluster", "MarkerCluster.css")),
            ("markerclusterdefaultcss", vendor_url("markercluster", "MarkerCluster.Default.css")),
        ],
    )
    groups["orgs"] = points
    # A page with its own content around the map keeps the control folded.
    control = folium.LayerControl(collapsed=area is not None).add_to(m)
    config = {
        "basemaps": basemap_choices(basemap),
        "data": url_for("maps.data", layer="__layer__"),
        "card": url_for("maps.organization", org_id="__org__"),
        "centerCard": url_for("maps.center", center_id="__center__"),
        "areaPage": url_for("areas.page", code="__code__"),
        "search": url_for("maps.search"),
        "nearby": url_for("maps.nearby"),
        "radius": current_app.config["HONGTU_SERVICE_RADIUS_M"],
        # Walking distance → minutes on a card, at the analysis' default pace.
        "walkSpeed": WALK_SPEED_MS,
        # The ways of placing that give only an area: drawn as a hollow ring.
        "approximate": list(APPROXIMATE),
        "minZoom": min_zoom,
        # A card's pair_tier (an index) in words.
        "pairTiers": [PAIR_TIER_NAMES[tier] for tier in PAIR_TIERS],
        # The domain's other words, translated by the script as it shows them.
        "words": {
            "runStatus": STATUS_NAMES,
            "coverageKinds": COVERAGE_KIND_NAMES,
            "orgTypes": ORG_TYPE_NAMES,
            "placeKinds": PLACE_KIND_NAMES,
            "centerLevels": CENTER_LEVEL_NAMES,
            "stationKinds": STATION_KIND_NAMES,
        },
        "statuses": [
            {"key": key, "label": MAP_STATUS_NAMES[key], "color": MAP_STATUS_COLORS[key]} for key in MAP_STATUSES
        ],
        # How each layer is drawn, from the one catalogue (app/layers.py), in its order (a list:
        # Jinja's tojson sorts an object's keys).
        "layers": [
            {
                "key": layer.key,
                "kind": layer.kind,
                "label": gettext(layer.label),
                "style": layer.style,
                "symbol": layer.legend,
            }
            for layer in LAYERS
        ],
        "area": area,
        "filters": filters or {},
        "fit": fit,
        "embed": url_for("embed.embed"),
        "inline": inline,
        "rings": rings,
        # A published embed link's token goes with its data requests (no session in an iframe).
        "token": request.args.get("token") if (g.get("user") or {}).get("role") == "embed" else None,
    }
    HongtuLayers(control, groups, config).add_to(m)
    return m


def render_parts(m: folium.Map) -> dict[str, str]:
    """The header, body and script of a folium map, for embedding in a Jinja template."""
    root = m.get_root()
    root.render()
    return {
        "map_header": with_nonce(root.header.render()),
        "map_html": with_nonce(root.html.render()),
        "map_script": root.script.render(),
    }
