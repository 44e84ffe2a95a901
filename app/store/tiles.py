"""Zoom, pixel and tile arithmetic of the web map: Web Mercator tiles of 256 pixels, a square
lattice of cluster cells fixed per zoom, and cached tiles of ``TILE_CELLS`` × ``TILE_CELLS`` cells."""

from __future__ import annotations

import math

BBox = tuple[float, float, float, float]

#: The zoom the city map opens at, screen pixels per side of a cluster cell, and the largest
#: screen (pixels) whose opening view is computed ahead after each analysis run.
CITY_ZOOM = 12
CLUSTER_PIXELS = 64
OPENING_SCREEN = (2560, 1600)
#: Cells per side of a cached tile of clusters.
TILE_CELLS = 4
#: Most tiles one request may read or fill (a 4K screen needs about 150).
MAX_TILES = 400


def pixel_degrees(zoom: int) -> float:
    """One screen pixel at ``zoom``, in degrees of longitude."""
    return 360.0 / (256 * 2**zoom)


def cluster_cell(zoom: int) -> float:
    """Side (degrees) of the cluster lattice at ``zoom``: fixed per zoom, so clusters stay put while panning."""
    return pixel_degrees(zoom) * CLUSTER_PIXELS


def tile_span(bbox: BBox, cell_deg: float) -> tuple[range, range]:
    """Column and row numbers of the tiles of ``cell_deg`` cells that cover ``bbox``."""
    tile = cell_deg * TILE_CELLS
    return (
        range(math.floor(bbox[0] / tile), math.floor(bbox[2] / tile) + 1),
        range(math.floor(bbox[1] / tile), math.floor(bbox[3] / tile) + 1),
    )


def tiles_box(cols: range, rows: range, cell_deg: float) -> BBox:
    """The box (degrees) of the tiles ``cols`` × ``rows``."""
    tile = cell_deg * TILE_CELLS
    return cols[0] * tile, rows[0] * tile, (cols[-1] + 1) * tile, (rows[-1] + 1) * tile


def screen_box(lat: float, lon: float, zoom: int, screen: tuple[int, int]) -> BBox:
    """The box a ``screen`` (pixels) centred on ``lat``, ``lon`` shows at ``zoom``."""
    pixel = pixel_degrees(zoom)
    # A pixel spans fewer degrees of latitude than of longitude, by the cosine of the latitude.
    half_w, half_h = screen[0] / 2 * pixel, screen[1] / 2 * pixel * math.cos(math.radians(lat))
    return lon - half_w, lat - half_h, lon + half_w, lat + half_h


def inside_count(clusters: list[dict], bbox: BBox, cell_deg: float) -> int:
    """Organizations of the clusters whose cells lie wholly inside ``bbox``: a lower bound of the
    organizations in it."""
    minx, miny, maxx, maxy = bbox
    return sum(
        c["n"]
        for c in clusters
        if c["gx"] * cell_deg >= minx
        and (c["gx"] + 1) * cell_deg <= maxx
        and c["gy"] * cell_deg >= miny
        and (c["gy"] + 1) * cell_deg <= maxy
    )
