"""Charts drawn on the server as inline SVG: no chart library to ship, print-ready, offline.

Each function returns markup with every label escaped, for ``{{ chart }}`` in a template.
Colours follow the map: the 两个覆盖率 ramp of ``hongtu-map.js`` and its status colours.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from markupsafe import Markup, escape

#: Status colours of the map: organizational coverage, work coverage, blank.
STATUS_COLORS = {"covered": "#2e7d32", "work": "#f9a825", "blank": "#c62828"}
NO_DATA = "#bdbdbd"


def rate_color(rate: float | None) -> str:
    """The choropleth colour of a rate in [0, 1] (grey when there is none)."""
    if rate is None or not np.isfinite(rate):
        return NO_DATA
    for bound, color in ((0.9, "#1b5e20"), (0.75, "#66bb6a"), (0.6, "#fdd835"), (0.4, "#fb8c00")):
        if rate >= bound:
            return color
    return "#c62828"


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal ("–" when there is none); also the templates'
    ``percent`` filter."""
    return "–" if rate is None or not np.isfinite(rate) else f"{rate * 100:.1f}%"


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg class="ht-chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def text_width(text: str, size: float) -> float:
    """About how wide (px) ``text`` is at font ``size``: a CJK character is a square, Latin about half."""
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return size * (wide + 0.58 * (len(text) - wide))


def _key(entries: Sequence[tuple[str, str]], x0: float, y0: float, width: float) -> tuple[list[str], float]:
    """A key of (colour, label) swatches from (``x0``, ``y0``), wrapped within ``width``; the SVG
    parts and the height it takes."""
    body, x, y, line = [], x0, y0, 16
    for color, label in entries:
        step = 18 + text_width(label, 11) + 12
        if x > x0 and x + step > x0 + width:
            x, y = x0, y + line
        body.append(
            f'<rect x="{x:.0f}" y="{y}" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14:.0f}" y="{y + 9}" font-size="11">{escape(label)}</text>'
        )
        x += step
    return body, y - y0 + line


def rate_bars(labels: Sequence[str], rates: Sequence[float | None], title: str, width: int = 440) -> Markup:
    """Horizontal bars of rates in [0, 1], one per label, coloured like the choropleth."""
    row, left, right = 22, 160, 56
    height = row * len(labels) + 24
    span = width - left - right
    body = [f'<line x1="{left}" y1="4" x2="{left}" y2="{height - 18}" stroke="#999"/>']
    for pct in (0.25, 0.5, 0.75, 1.0):
        x = left + span * pct
        body.append(f'<line x1="{x:.1f}" y1="4" x2="{x:.1f}" y2="{height - 18}" stroke="#eee"/>')
        body.append(f'<text x="{x:.1f}" y="{height - 4}" font-size="10" text-anchor="middle">{pct:.0%}</text>')
    for i, (name, rate) in enumerate(zip(labels, rates, strict=True)):
        y = 6 + i * row
        value = 0.0 if rate is None or not np.isfinite(rate) else float(rate)
        body.append(
            f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">{escape(name)}</text>'
            f'<rect x="{left}" y="{y}" width="{span * value:.1f}" height="{row - 6}" fill="{rate_color(rate)}"/>'
            f'<text x="{left + span * value + 4:.1f}" y="{y + 13}" font-size="11">{percent(rate)}</text>'
        )
    return _svg(width, height, body, title)


def stacked_bars(
    labels: Sequence[str], parts: dict[str, Sequence[int]], names: dict[str, str], title: str, width: int = 440
) -> Markup:
    """Horizontal bars of counts split into ``parts`` (keys of ``STATUS_COLORS``), with a key."""
    row, left, right = 22, 160, 56
    legend, legend_height = _key(
        [(STATUS_COLORS[k], names[k]) for k in names], left, row * len(labels) + 8, width - left
    )
    height = row * len(labels) + 8 + int(legend_height)
    totals = np.sum([np.asarray(v, float) for v in parts.values()], axis=0) if labels else np.zeros(0)
    scale = (width - left - right) / max(float(totals.max()) if len(totals) else 0.0, 1.0)
    body = []
    for i, name in enumerate(labels):
        y = 4 + i * row
        x = float(left)
        body.append(f'<text x="{left - 6}" y="{y + 13}" font-size="12" text-anchor="end">{escape(name)}</text>')
        for key, values in parts.items():
            w = float(values[i]) * scale
            body.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 6}" fill="{STATUS_COLORS[key]}"/>')
            x += w
        body.append(f'<text x="{x + 4:.1f}" y="{y + 13}" font-size="11">{int(totals[i])}</text>')
    return _svg(width, height, body + legend, title)


def trend_lines(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, width: int = 440
) -> Markup:
    """Rates across runs: one line per series over the run labels, the y axis 0–100 %."""
    palette = ("#b71c1c", "#2e7d32", "#1565c0", "#f9a825")
    plot, left, right, top, bottom = 190, 40, 16, 10, 34
    # The key goes under the plot, wrapped, so that long (English) names are never cut.
    legend, legend_height = _key(
        [(palette[k % len(palette)], name) for k, name in enumerate(series)], left, plot, width - left - right
    )
    height = plot + int(legend_height)
    span_x, span_y = width - left - right, plot - top - bottom
    n = len(labels)
    xs = [left + (span_x * i / (n - 1) if n > 1 else span_x / 2) for i in range(n)]
    body = []
    for pct in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + span_y * (1 - pct)
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + span_x}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{pct:.0%}</text>'
        )
    for x, name in zip(xs, labels, strict=True):
        body.append(f'<text x="{x:.1f}" y="{plot - 18}" font-size="10" text-anchor="middle">{escape(name)}</text>')
    for k, values in enumerate(series.values()):
        color = palette[k % len(palette)]
        points = [
            (x, top + span_y * (1 - float(v)))
            for x, v in zip(xs, values, strict=True)
            if v is not None and np.isfinite(v)
        ]
        if points:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            body.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>' for x, y in points)
    return _svg(width, height, body + legend, title)
