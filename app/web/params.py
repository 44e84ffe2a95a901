"""Request parameters shared by the map endpoints and the API: parsing with errors that name
the parameter, in Chinese and English."""

from __future__ import annotations

import math

from ..errors import HongtuError


class BadParameter(HongtuError, ValueError):
    """A request parameter that cannot be used; answered with 400 and its name."""

    status = 400

    def __init__(self, name: str, zh: str, en: str):
        super().__init__(zh, en, parameter=name)
        self.name = name


def parse_bbox(raw: str) -> tuple[float, float, float, float]:
    """``minx,miny,maxx,maxy`` in degrees, checked to be a real box on the globe."""
    try:
        minx, miny, maxx, maxy = (float(v) for v in raw.split(","))
    except ValueError:
        raise BadParameter("bbox", "需要 minx,miny,maxx,maxy 四个数", "expected minx,miny,maxx,maxy") from None
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))) or not (
        -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    ):
        raise BadParameter("bbox", "范围无效", "out of range or min > max")
    return minx, miny, maxx, maxy


def parse_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    """An integer parameter within ``[low, high]``, ``default`` when absent."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(name, "需要整数", "expected an integer") from None
    if not low <= value <= high:
        raise BadParameter(name, f"应在 {low}–{high} 之间", f"expected {low}–{high}")
    return value
