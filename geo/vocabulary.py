"""The domain's fixed vocabulary, declared once for every layer of Hongtu (pure: no Flask, no
database): the area levels, the digits of their codes, the kinds of organizations and places, and
the coverage statuses the map draws.
"""

from __future__ import annotations

#: Administrative levels below the city, coarsest first.
AREA_LEVELS = ("district", "street", "community", "grid")
#: Digits in a code at each level (统计用区划代码: 6 district, 9 street, 12 community; a unit grid
#: adds 3 more, 15).
AREA_CODE_LENGTHS = {"district": 6, "street": 9, "community": 12, "grid": 15}
#: Non-public enterprises and social organizations.
ORG_TYPES = ("enterprise", "social_org")
#: Their Chinese names, as a ledger writes them.
ORG_TYPE_NAMES = {"enterprise": "企业", "social_org": "社会组织"}
#: Parks, business circles, markets and commercial buildings.
PLACE_KINDS = ("park", "business_circle", "market", "building")
#: Their Chinese names.
PLACE_KIND_NAMES = {"park": "园区", "business_circle": "商圈", "market": "市场", "building": "商务楼宇"}
#: How a party organization covers its units (组建方式): on its own, jointly, by area, by industry.
COVERAGE_KINDS = ("own", "joint", "area", "industry")
#: Their Chinese names.
COVERAGE_KIND_NAMES = {"own": "单独组建", "joint": "联合组建", "area": "区域组建", "industry": "行业组建"}
#: The levels of a 党群服务中心 / 阵地.
CENTER_LEVELS = ("street", "community", "building", "park")
#: Their Chinese names.
CENTER_LEVEL_NAMES = {"street": "街道", "community": "社区", "building": "楼宇", "park": "园区"}
#: Kinds of 新就业群体驿站, by whom they serve.
STATION_KINDS = ("delivery", "courier", "ride_hailing", "mixed")
#: Their Chinese names.
STATION_KIND_NAMES = {"delivery": "外卖", "courier": "快递", "ride_hailing": "网约车", "mixed": "综合"}
#: An organization's coverage status on the map, in the order a mix of them is drawn (a cluster's
#: ring, the legend): organisational, work (instructor only), blank, out of the statistical scope.
MAP_STATUSES = ("org", "work", "blank", "out")
#: Their Chinese names.
MAP_STATUS_NAMES = {"org": "组织覆盖", "work": "工作覆盖", "blank": "空白", "out": "不在统计范围"}
#: The one colour each is drawn in: dots, cluster rings, the legend, exports.
MAP_STATUS_COLORS = {"org": "#2e7d32", "work": "#f9a825", "blank": "#c62828", "out": "#9e9e9e"}
#: What can happen to an organization between two analysis runs (本期变化), in the order a
#: list of changes shows them: newly blank first, since that is what staff must act on.
CHANGE_KINDS = ("became_blank", "became_covered", "added", "closed", "moved")
#: Their Chinese names.
CHANGE_KIND_NAMES = {
    "became_blank": "新增空白",
    "became_covered": "新增覆盖",
    "added": "新增组织",
    "closed": "停业或注销",
    "moved": "位置变动",
}
#: The Chinese names of an organization's coverage status in a run (``coverage.STATUSES``):
#: covered the way its party organization was formed, by work, or blank.
STATUS_NAMES = {**COVERAGE_KIND_NAMES, "work": "工作覆盖", "blank": "空白"}
#: Ways an analysis pairs units with centers (共驻共建): own community first, then the street,
#: then across the border (the default); only the street's community centers; the nearest
#: community center wherever it is.
PAIRINGS = ("jurisdiction", "street", "nearest")
#: How close to home a unit's paired center is under the jurisdiction rule, best first: its
#: own community's, another of its street (the street's own or a neighbouring community's),
#: across the street's border.
PAIR_TIERS = ("community", "street", "elsewhere")
#: Their Chinese names.
PAIR_TIER_NAMES = {"community": "本社区", "street": "本街道", "elsewhere": "跨街道"}
