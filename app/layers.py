"""The map's layers, declared once: the map page, its script (through the page's config),
``/map/data``, embeds and their tokens, and the admin form all read this list.

Adding a layer is one entry here plus the query that serves it in ``app/web/maps.py``
(``layer_geojson``); its label is translated through the one message catalog like every other
Chinese source string.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from geo.vocabulary import AREA_LEVELS


@dataclass(frozen=True)
class Layer:
    """One layer of the map.

    Parameters
    ----------
    key
        Its name in URLs (``/map/data/<key>``, ``/embed?layers=``) and in the map's config.
    label
        Chinese name in the layer control and the legend (translated by the message catalog).
    kind
        ``area`` (an area level's outlines and choropleth), ``point``, ``polygon``, ``line``,
        ``run`` (a result of the latest analysis run) or ``clusters`` (the organizations grouped
        by the server at low zoom, drawn with the organizations).
    min_zoom
        Lowest zoom at which it is asked for.
    shown
        Whether a full map opens with it on.
    style
        Leaflet path options it is drawn with (empty: drawn by its own renderer).
    collection
        The ``/api`` collection serving the same features, if any.
    embeddable
        Whether an embed link may publish it; ``why_not`` says why not.
    feature_kind
        For a ``run`` layer, the kind of ``run_features`` row that holds it.
    symbol
        How the legend shows it and the colour it is drawn in: ``shape`` (``fill``, ``line``,
        ``ring`` or ``dot``), ``color`` and ``dash``. Empty: taken from ``style``; the
        organizations have none (the statuses stand for them).
    """

    key: str
    label: str
    kind: str
    min_zoom: int = 0
    shown: bool = False
    style: dict = field(default_factory=dict)
    collection: str | None = None
    embeddable: bool = True
    why_not: str = ""
    feature_kind: str = ""
    symbol: dict = field(default_factory=dict)

    @property
    def legend(self) -> dict | None:
        """The legend's symbol: ``symbol``, else derived from ``style``; None for none."""
        if self.symbol:
            return {"dash": False, **self.symbol}
        if not self.style:
            return None
        filled = self.style.get("fill", True) and self.style.get("fillOpacity", 0) > 0
        return {"shape": "fill" if filled else "line", "color": self.style["color"], "dash": "dashArray" in self.style}


#: The area levels' outlines: on a canvas a polygon answers the pointer inside it even unfilled,
#: so district and street outlines stay inert and a click reaches the community beneath.
_AREA_STYLE = {
    "district": {"color": "#7b1fa2", "weight": 2.5, "fill": False, "interactive": False},
    "street": {"color": "#5e35b1", "weight": 1.5, "dashArray": "6 4", "fill": False, "interactive": False},
    "community": {"color": "#3949ab", "weight": 1, "fill": False, "opacity": 0.7},
    "grid": {"color": "#90a4ae", "weight": 0.8, "fill": False, "dashArray": "2 3"},
}
_AREA_LABEL = {"district": "区县", "street": "街道/乡镇", "community": "社区/村", "grid": "网格"}
_AREA_ZOOM = {"district": 0, "street": 9, "community": 11, "grid": 13}
_AREA_COLLECTION = {"district": "districts", "street": "streets", "community": "communities", "grid": "grids"}

LAYERS: tuple[Layer, ...] = (
    *(
        Layer(
            level,
            _AREA_LABEL[level],
            "area",
            _AREA_ZOOM[level],
            shown=level != "grid",
            style=_AREA_STYLE[level],
            collection=_AREA_COLLECTION[level],
        )
        for level in AREA_LEVELS
    ),
    Layer(
        "places",
        "园区·商圈·市场·楼宇",
        "polygon",
        11,
        shown=True,
        collection="places",
        symbol={"shape": "fill", "color": "#ef6c00"},
    ),
    Layer(
        "centers",
        "党群服务中心",
        "point",
        13,
        shown=True,
        collection="service-centers",
        symbol={"shape": "ring", "color": "#1565c0"},
    ),
    Layer(
        "stations", "新就业群体驿站", "point", 11, collection="stations", symbol={"shape": "dot", "color": "#00838f"}
    ),
    Layer(
        "roads",
        "步行路网",
        "line",
        14,
        style={"color": "#8d6e63", "weight": 1.5, "opacity": 0.8, "fill": False},
        collection="roads",
    ),
    Layer(
        "line_only",
        "直线可达、步行不可达",
        "point",
        12,
        symbol={"shape": "ring", "color": "#ad1457"},
    ),
    Layer(
        "walk_catchments",
        "步行 15 分钟服务圈（最近一次分析）",
        "run",
        style={"color": "#00695c", "weight": 0, "fillOpacity": 0.22},
        feature_kind="walk_catchment",
    ),
    Layer(
        "hotspots",
        "空白热点（最近一次分析）",
        "run",
        shown=True,
        style={"color": "#b71c1c", "weight": 2, "fillOpacity": 0.25},
        collection="blank-areas",
        feature_kind="hotspot",
    ),
    Layer(
        "gaps",
        "服务盲区（1000 米外）",
        "run",
        style={"color": "#0d47a1", "weight": 1, "dashArray": "4 3", "fillOpacity": 0.15},
        collection="service-gaps",
        feature_kind="gap_1000",
    ),
    Layer(
        "gaps500",
        "服务盲区（500 米外）",
        "run",
        style={"color": "#1976d2", "weight": 1, "dashArray": "2 3", "fillOpacity": 0.1},
        collection="service-gaps",
        feature_kind="gap_500",
    ),
    Layer(
        "sites",
        "建议新建阵地",
        "run",
        collection="siting",
        feature_kind="site",
        symbol={"shape": "ring", "color": "#6a1b9a"},
    ),
    Layer(
        "pairings",
        "结对连线（共驻共建）",
        "line",
        14,
        collection="pairings",
        symbol={"shape": "line", "color": "#1565c0", "dash": True},
    ),
    Layer(
        "branches",
        "联合党支部建议",
        "point",
        12,
        collection="joint-branches",
        symbol={"shape": "line", "color": "#6a1b9a"},
    ),
    Layer(
        "orgs_clusters",
        "两新组织（聚合）",
        "clusters",
        shown=True,
        embeddable=False,
        why_not="与两新组织图层一起发布 / published with the organizations layer",
    ),
    Layer("orgs", "两新组织", "point", shown=True, collection="organizations"),
)

BY_KEY: dict[str, Layer] = {layer.key: layer for layer in LAYERS}
#: What an embed link may publish.
EMBEDDABLE: tuple[str, ...] = tuple(layer.key for layer in LAYERS if layer.embeddable)
#: Result layers of the latest analysis run: key → the kind of ``run_features`` row that holds them.
RUN_FEATURE_KINDS = {layer.key: layer.feature_kind for layer in LAYERS if layer.kind == "run"}
