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
#: An organization's coverage status on the map, in the order a mix of them is drawn (a cluster's
#: ring, the legend): organisational, work (instructor only), blank, out of the statistical scope.
MAP_STATUSES = ("org", "work", "blank", "out")
#: Their Chinese names.
MAP_STATUS_NAMES = {"org": "组织覆盖", "work": "工作覆盖", "blank": "空白", "out": "不在统计范围"}
#: The one colour each is drawn in: dots, cluster rings, the legend, exports.
MAP_STATUS_COLORS = {"org": "#2e7d32", "work": "#f9a825", "blank": "#c62828", "out": "#9e9e9e"}
