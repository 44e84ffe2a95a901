"""The domain's fixed vocabulary, declared once for every layer of Hongtu (pure: no Flask, no
database): the area levels, the digits of their codes, and the kinds of organizations and places.
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
