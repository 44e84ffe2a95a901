"""Report outputs of an area: a standalone HTML map that opens from disk with no network, a
PNG or PDF image of it for Word and PowerPoint, and an Excel workbook of its figures.

Images are rendered by headless Chromium (Playwright) from the standalone HTML, so a picture
in a report looks exactly like the map on screen, with title, legend, scale bar, north arrow
and the date of the data added for print.
"""

from __future__ import annotations

import base64
import io
import json
import math
import mimetypes
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
from flask import Blueprint, Response, abort, current_app, render_template, request

from ..db import get_store
from ..i18n import gettext
from ..store import area_stats, queries
from .areas import area_focus
from .assets import PACKAGES
from .excel import send_workbook, write_sheet
from .labels import HEADERS, LEVEL_NAMES, RATE_NAMES, area_name, city_name
from .mapbuilder import basemap_choices, basemap_ids, build_city_map, render_parts, tile_hosts
from .maps import layer_geojson
from .params import BadParameter, parse_int
from .renderer import RenderBusy, RenderError, renderer

bp = Blueprint("reports", __name__, url_prefix="/area")

ROOT = Path(__file__).resolve().parents[2]
#: Layers a standalone map carries, with the organizations of the area.
STANDALONE_LAYERS = ("district", "street", "community", "grid", "places", "centers", "hotspots")
#: Most organizations a standalone file carries as points; beyond, it carries clusters.
STANDALONE_POINTS = 20_000
IMAGE_FORMATS = {"png": "image/png", "pdf": "application/pdf"}
#: Most pixels an image asked for by width and height may have (a 4K screen's worth and a
#: little more): each million costs the browser some 40 MB while it draws. Paper comes only in
#: the fixed sizes below (at most an A3 sheet at 300 dpi, 17.4 million).
MAX_PIXELS = 10_000_000
#: Paper an image can be drawn for: millimetres, long side first (landscape).
PAPERS = {"a4": (297, 210), "a3": (420, 297)}
#: Resolutions offered on paper, in dots per inch. The layout is the sheet's at CSS's 96 px per
#: inch, so text keeps its printed size whatever the resolution; only the pixels multiply.
PAPER_DPI = (150, 300)
CSS_DPI = 96


def _fit_zoom(bounds: list[list[float]], width: int, height: int) -> int:
    """The zoom at which ``bounds`` fill a ``width`` × ``height`` pixel view (Web Mercator)."""
    (south, west), (north, east) = bounds

    def y(lat: float) -> float:
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    zx = math.log2(width * 360 / (256 * max(east - west, 1e-9)))
    zy = math.log2(height * 2 * math.pi / (256 * max(y(north) - y(south), 1e-9)))
    return int(np.clip(math.floor(min(zx, zy)), 5, 18))


def _inline_file(url: str) -> Path | None:
    """The local file behind an asset URL of this app (vendored or static)."""
    if url.startswith("/vendor/"):
        package, _, name = url[len("/vendor/") :].partition("/")
        base = PACKAGES.get(package)
    elif url.startswith("/static/"):
        base, name = ROOT / "static", url[len("/static/") :]
    else:
        return None
    path = (base / name).resolve() if base else None
    return path if path and path.is_file() and path.is_relative_to(base.resolve()) else None


def _css_with_data_urls(path: Path) -> str:
    """A stylesheet with the images it refers to embedded as data URLs."""

    def embed(match: re.Match) -> str:
        target = (path.parent / match.group(1).strip("'\"")).resolve()
        if not target.is_file():
            return match.group(0)
        kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return f"url(data:{kind};base64,{base64.b64encode(target.read_bytes()).decode()})"

    return re.sub(r"url\(([^)]+\.(?:png|svg|gif))\)", embed, path.read_text(encoding="utf-8"))


def inline_assets(html: str) -> str:
    """``html`` with every script and stylesheet of this app copied into the page itself."""

    def script(match: re.Match) -> str:
        path = _inline_file(match.group(1))
        if path is None:
            return ""
        # "</script" inside a script would end it early.
        code = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        return f"<script>{code}</script>"

    def style(match: re.Match) -> str:
        path = _inline_file(match.group(1))
        return f"<style>{_css_with_data_urls(path)}</style>" if path else ""

    html = re.sub(r'<script[^>]*\bsrc="([^"]+)"[^>]*>\s*</script>', script, html)
    html = re.sub(r'<link[^>]*\brel="(?:stylesheet|icon)"[^>]*\bhref="([^"]+)"[^>]*>', style, html)
    return re.sub(r'<link[^>]*\bhref="([^"]+)"[^>]*\brel="stylesheet"[^>]*>', style, html)


def _data_date(store) -> str:
    """The date of the latest analysis run (the data the map shows), else today."""
    return f"{(queries.latest_run_time(store) or datetime.now()):%Y-%m-%d}"


def export_basemap(asked: str | None = None) -> str:
    """The base map of an exported map: the configured one (or ``asked``, when offered), else none."""
    offered = basemap_ids()
    chosen = asked or current_app.config["HONGTU_BASEMAP"]
    return chosen if chosen in offered else "none"


def standalone_map(
    store, code: str | None, width: int = 1200, height: int = 800, rings: bool = False, basemap: str = "none"
) -> str:
    """A self-contained HTML map of an area (the city without a code): assets and data inside;
    ``rings`` draws the centers' service radius. With a ``basemap`` its tiles are the only thing
    the page loads (in GCJ-02 over AMap's, as the live map does)."""
    crs = basemap_choices(basemap)[0].get("crs", "wgs84")
    focus = area_focus(store, code)
    zoom = _fit_zoom(focus["bounds"], width, height)
    (miny, minx), (maxy, maxx) = focus["bounds"]
    bbox = (minx, miny, maxx, maxy)
    level = area_stats.level_of(code)
    layers = tuple(name for name in STANDALONE_LAYERS if name != "grid" or level in ("street", "community", "grid"))
    filters = {"area": code} if code else {}
    inline = {name: _loads(layer_geojson(store, name, bbox, zoom, crs)) for name in layers}
    inline["orgs"] = _loads(
        layer_geojson(store, "orgs", bbox, zoom, crs, filters=filters, point_limit=STANDALONE_POINTS)
    )
    shown = area_focus(store, code, crs)
    (miny, minx), (maxy, maxx) = shown["bounds"]
    m = build_city_map(
        ((miny + maxy) / 2, (minx + maxx) / 2),
        zoom=zoom,
        area=shown,
        overlays=(*layers, "orgs"),
        basemap=basemap,
        inline=inline,
        rings=rings,
    )
    trail = area_stats.trail(store, code) if code else []
    title = area_name(trail) + " · " + gettext("两新组织党建地图")
    html = render_template(
        "standalone.html",
        title=title,
        level=gettext(LEVEL_NAMES[level]),
        data_date=_data_date(store),
        run_id=queries.latest_run_id(store),
        width=width,
        height=height,
        **render_parts(m),
    )
    return inline_assets(html)


def _loads(body: str | None):
    return json.loads(body) if body else None


def render_image(html: str, fmt: str, width: int, height: int) -> bytes:
    """A PNG or PDF of a standalone map page, drawn by this process's headless Chromium at
    ``width`` × ``height`` (see :mod:`app.web.renderer`)."""
    drawer = renderer(current_app.config)
    with drawer.page():
        return drawer.draw(html, fmt, width, height)


def area_workbook(store, code: str | None, run_id: int) -> bytes:
    """The Excel report of an area: summary, sub-areas, blank ledger, pairings, joint branches."""
    level = area_stats.level_of(code)
    figures = area_stats.figures(store, code, run_id) or {}
    trail = area_stats.trail(store, code) if code else []
    summary = pd.DataFrame(
        [
            (gettext("区域"), " › ".join(a["name"] for a in trail) or city_name()),
            (gettext("层级"), gettext(LEVEL_NAMES[level])),
            (gettext("区划代码"), code or ""),
            (gettext("分析"), f"#{run_id} · {_data_date(store)}"),
            *((gettext(HEADERS[c]), figures.get(c)) for c in (*area_stats.TALLY_COLUMNS, *area_stats.BOUND_COLUMNS)),
            *((gettext(RATE_NAMES[c]), figures.get(c)) for c in area_stats.RATE_COLUMNS),
            (gettext("联合党支部建议"), area_stats.joint_branch_count(store, code, run_id)),
        ],
        columns=[gettext("项目"), gettext("数值")],
    )
    sheets = {
        gettext("汇总"): summary,
        gettext("下级区域"): area_stats.children(store, code, run_id).drop(columns="level"),
        gettext("空白组织台账"): area_stats.blank_ledger(store, code, run_id),
        gettext("结对"): area_stats.pairings(store, code, run_id),
        gettext("联合党支部建议"): area_stats.joint_branches(store, code, run_id),
    }
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets.items():
            write_sheet(writer, frame, name)
        sheet = writer.sheets[gettext("汇总")]
        rate_labels = {gettext(RATE_NAMES[c]) for c in area_stats.RATE_COLUMNS}
        for row in sheet.iter_rows(min_row=2):
            if row[0].value in rate_labels:
                row[1].number_format = "0.0%"
    return buffer.getvalue()


def _area_or_404(code: str | None) -> None:
    try:
        area_stats.level_of(code)
    except ValueError:
        abort(404)
    if code and not area_stats.trail(get_store(), code):
        abort(404)


def _frame() -> tuple[int, int, float]:
    """The image's layout size in CSS pixels and its device pixels per CSS pixel: a sheet of
    paper (``paper``, ``orientation``, ``dpi``) or a pixel size (``width``, ``height``)."""
    paper = request.args.get("paper")
    if paper is None:
        return (
            parse_int("width", request.args.get("width"), 1200, 300, 4000),
            parse_int("height", request.args.get("height"), 800, 200, 4000),
            1.0,
        )
    if paper not in PAPERS:
        raise BadParameter("paper", f"应为 {'、'.join(PAPERS)} 之一", f"expected one of {', '.join(PAPERS)}")
    orientation = request.args.get("orientation", "landscape")
    if orientation not in ("landscape", "portrait"):
        raise BadParameter("orientation", "应为 landscape 或 portrait", "expected landscape or portrait")
    dpi = parse_int("dpi", request.args.get("dpi"), PAPER_DPI[0], min(PAPER_DPI), max(PAPER_DPI))
    if dpi not in PAPER_DPI:
        raise BadParameter(
            "dpi", f"应为 {PAPER_DPI[0]} 或 {PAPER_DPI[1]}", f"expected {PAPER_DPI[0]} or {PAPER_DPI[1]}"
        )
    long, short = (round(mm / 25.4 * CSS_DPI) for mm in PAPERS[paper])
    width, height = (long, short) if orientation == "landscape" else (short, long)
    return width, height, dpi / CSS_DPI


@bp.get("/map.<fmt>", defaults={"code": None})
@bp.get("/<code>/map.<fmt>")
def area_map(code: str | None, fmt: str):
    """The area's map as a standalone HTML file, a PNG or a PDF: ``width`` × ``height`` px, or a
    sheet (``paper`` a4/a3, ``orientation``, ``dpi`` 150/300); ``rings=1`` draws service radii."""
    _area_or_404(code)
    if fmt not in ("html", *IMAGE_FORMATS):
        abort(404)
    width, height, scale = _frame()
    rings = request.args.get("rings") == "1"
    basemap = export_basemap(request.args.get("basemap"))
    if "paper" not in request.args and width * height > MAX_PIXELS:
        raise BadParameter(
            "width/height",
            f"图片过大（上限 {MAX_PIXELS // 1_000_000} 百万像素）",
            f"the image is too large (at most {MAX_PIXELS // 1_000_000} million pixels)",
        )
    name = f"hongtu-{code or 'city'}-map.{fmt}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "html":
        body = standalone_map(get_store(), code, width, height, rings, basemap)
        return Response(body, mimetype="text/html", headers=disposition)
    try:
        drawer = renderer(current_app.config)
        # The page is held from before the map is built: building it is half the work.
        with drawer.page():
            html = standalone_map(get_store(), code, width, height, rings, basemap)
            body = drawer.draw(html, fmt, width, height, scale, tile_hosts(basemap))
    except RenderBusy as exc:
        return render_template("error.html", message=str(exc)), 503, {"Retry-After": str(exc.retry_after)}
    except RenderError as exc:
        return render_template("error.html", message=str(exc)), 503
    return Response(body, mimetype=IMAGE_FORMATS[fmt], headers=disposition)


@bp.get("/report.xlsx", defaults={"code": None})
@bp.get("/<code>/report.xlsx")
def area_report(code: str | None):
    """The area's Excel report from the latest analysis run."""
    _area_or_404(code)
    store = get_store()
    run_id = queries.latest_run_id(store)
    if not run_id:
        abort(404)
    name = f"hongtu-{code or 'city'}-report-run{run_id}.xlsx"
    return send_workbook(io.BytesIO(area_workbook(store, code, run_id)), name)
