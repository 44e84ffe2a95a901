"""The server-drawn SVG charts of area pages and exports: nothing drawn outside the picture."""

import re
from html import unescape

from app.web import charts

NAMES = {"covered": "Organizational coverage", "work": "Work coverage", "blank": "Blank"}


def spans(svg: str) -> list[tuple[float, float]]:
    """(left, right) of every text the chart draws, by the same width estimate it lays out with."""
    width = float(re.search(r'viewBox="0 0 ([\d.]+)', svg).group(1))
    found = []
    for x, size, anchor, text in re.findall(
        r'<text x="([\d.]+)" y="[\d.]+" font-size="([\d.]+)"(?: text-anchor="(\w+)")?>([^<]*)</text>', svg
    ):
        w = charts.text_width(unescape(text), float(size))
        left = {"end": float(x) - w, "middle": float(x) - w / 2}.get(anchor, float(x))
        found.append((left, left + w))
    assert found
    return [(left, right) for left, right in found if left < 0 or right > width]


def test_long_english_keys_wrap_inside_the_chart():
    trend = charts.trend_lines(
        ["#1", "#2", "#3"],
        {
            "Dual coverage rate": [0.5, 0.6, 0.7],
            "Organizational coverage rate": [0.4, 0.5, 0.5],
            "Work coverage rate": [0.1, 0.1, 0.2],
        },
        "Trend",
    )
    assert spans(str(trend)) == []
    bars = charts.stacked_bars(["Wholesale and retail", "Internet"], {k: [3, 4] for k in NAMES}, NAMES, "Industries")
    assert spans(str(bars)) == []
    # Wrapped, the key takes more lines than it would in Chinese.
    chinese = charts.stacked_bars(
        ["批发零售"], {k: [3] for k in NAMES}, {"covered": "组织覆盖", "work": "工作覆盖", "blank": "空白"}, "行业"
    )
    height = lambda svg: float(re.search(r'viewBox="0 0 [\d.]+ ([\d.]+)', str(svg)).group(1))  # noqa: E731
    assert height(charts.stacked_bars(["Internet"], {k: [3] for k in NAMES}, NAMES, "x", width=260)) > height(chinese)
