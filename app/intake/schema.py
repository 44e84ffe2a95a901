"""What each importable kind looks like: canonical columns, Chinese header aliases, types, enums.

One :class:`Kind` per ``hongtu import KIND``. Column names are English and canonical; the
Chinese headers found in real ledgers (台账) are aliases. A header may also carry both, as the
downloadable templates do: ``企业名称(name)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from geo.vocabulary import CENTER_LEVEL_NAMES, COVERAGE_KIND_NAMES, ORG_TYPE_NAMES, PLACE_KIND_NAMES, STATION_KIND_NAMES

from ..store.models import (
    AREA_LEVELS,
    CENTER_LEVELS,
    COVERAGE_KINDS,
    ORG_TYPES,
    PARTY_ORG_TYPES,
    PLACE_KINDS,
    STATION_KINDS,
)


@dataclass(frozen=True)
class Column:
    """One column of an importable kind.

    ``type`` is one of ``str``, ``int``, ``float``, ``bool``, ``enum``, ``credit_code``,
    ``date`` (stored as ISO ``YYYY-MM-DD`` text).
    ``choices`` maps every accepted spelling (canonical and Chinese) to the canonical value.
    """

    name: str
    zh: str
    type: str = "str"
    required: bool = False
    aliases: tuple[str, ...] = ()
    choices: dict[str, str] = field(default_factory=dict)
    doc: str = ""
    default: object = None
    #: False for columns that are not a column of the kind's table (lon/lat, links).
    stored: bool = True
    #: True for stored columns Hongtu fills in itself (how a row was placed): never read from a file.
    computed: bool = False


@dataclass(frozen=True)
class Kind:
    """An importable kind: its table, id column, columns and geometry."""

    name: str
    zh: str
    table: str
    id_column: str
    columns: tuple[Column, ...]
    #: "point" (lon/lat or a point geometry), "polygon", "line", "any" (polygon or point), or "none".
    geometry: str
    #: Values written when a row is first inserted and never changed by a re-import.
    on_insert: dict = field(default_factory=dict)
    #: Whether rows without coordinates are placed by their place, address or stated area
    #: (``app.intake.locate``) rather than refused.
    locatable: bool = False

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def table_columns(self) -> list[str]:
        """The columns stored in the kind's own table."""
        return [c.name for c in self.columns if c.stored]


def _by_name(names: dict[str, str]) -> dict[str, str]:
    """A vocabulary's Chinese names as spellings of its values."""
    return {zh: value for value, zh in names.items()}


def _listed(names: dict[str, str]) -> str:
    """A vocabulary as a column's documentation says it: ``own 单独组建、joint 联合组建…``."""
    return "、".join(f"{value} {zh}" for value, zh in names.items())


def _enum(values: tuple[str, ...], chinese: dict[str, str] | None = None) -> dict[str, str]:
    choices = {v: v for v in values}
    choices.update(chinese or {})
    return choices


YES_NO = {
    "yes": True,
    "no": False,
    "是": True,
    "否": False,
    "有": True,
    "无": False,
    "true": True,
    "false": False,
    "1": True,
    "0": False,
    "y": True,
    "n": False,
}

_LON = Column("lon", "经度", "float", aliases=("longitude", "lng", "x", "东经"), doc="经度（十进制度）", stored=False)
_LAT = Column("lat", "纬度", "float", aliases=("latitude", "y", "北纬"), doc="纬度（十进制度）", stored=False)

KINDS: dict[str, Kind] = {
    "orgs": Kind(
        "orgs",
        "两新组织",
        "organizations",
        "org_id",
        (
            Column(
                "org_id",
                "组织编号",
                required=True,
                aliases=("编号", "企业编号", "单位编号", "id"),
                doc="组织的唯一编号，重复导入时按它更新",
            ),
            Column("name", "组织名称", required=True, aliases=("企业名称", "单位名称", "名称", "社会组织名称")),
            Column(
                "org_type",
                "组织类型",
                "enum",
                required=True,
                aliases=("类型", "单位类型"),
                choices=_enum(
                    ORG_TYPES,
                    {**_by_name(ORG_TYPE_NAMES), "非公企业": "enterprise", "非公有制企业": "enterprise"},
                ),
                doc="enterprise（企业）或 social_org（社会组织）",
            ),
            Column("industry", "所属行业", aliases=("行业", "行业类别"), doc="如 物业、物流快递、外卖配送、互联网"),
            Column(
                "credit_code",
                "统一社会信用代码",
                "credit_code",
                aliases=("信用代码", "社会信用代码"),
                doc="18 位，按 GB 32100-2015 校验",
            ),
            Column("employees", "从业人员数", "int", aliases=("从业人员", "职工人数", "员工人数", "人数"), default=0),
            Column("party_members", "正式党员数", "int", aliases=("党员数", "党员人数", "正式党员"), default=0),
            Column("address", "地址", aliases=("详细地址", "注册地址", "经营地址", "住所")),
            _LON,
            _LAT,
            Column(
                "community",
                "所属社区",
                aliases=("社区", "所在社区", "社区代码", "所属社区代码", "所属村社区", "村（社区）"),
                doc="12 位社区代码，或本市唯一的社区名称；无坐标时据此定位（近似）",
                stored=False,
            ),
            Column(
                "street",
                "所属街道",
                aliases=("街道", "所在街道", "街道代码", "所属街道代码", "所属乡镇", "乡镇", "乡镇（街道）"),
                doc="9 位街道代码或本市唯一的街道名称；无坐标、无社区时据此定位（近似）",
                stored=False,
            ),
            Column(
                "place",
                "所在楼宇",
                aliases=(
                    "所在楼宇/园区/商圈/市场",
                    "所在园区",
                    "所在商圈",
                    "所在市场",
                    "所在场所",
                    "楼宇",
                    "场所编号",
                ),
                doc="已导入场所（places）的编号或名称；无坐标时定位到该场所内",
                stored=False,
            ),
            Column(
                "located_by",
                "定位方式",
                aliases=("定位",),
                doc="由红图填写：coordinates 坐标、place 场所、address 地址、geocoder 地理编码、community 社区、"
                "street 街道、manual 手工、unplaced 待定位",
                computed=True,
            ),
            Column(
                "location_precision_m", "定位精度（米）", "float", doc="由红图填写：位置可能偏差的半径", computed=True
            ),
            Column("stated_area_code", "所属区划代码", doc="由红图填写：台账所述的社区或街道代码", computed=True),
            Column(
                "party_org_id",
                "所属党组织编号",
                aliases=("党组织编号",),
                doc="覆盖它的党组织编号（先导入 party-orgs）；多个用 ; 分隔",
                stored=False,
            ),
            Column(
                "instructor",
                "是否选派党建指导员",
                "bool",
                aliases=("党建指导员", "指导员", "联络员"),
                doc="是/否（yes/no）",
                default=False,
                stored=False,
            ),
            Column("operating", "是否在营", "bool", aliases=("在营", "经营状态"), default=True),
            Column("demonstration", "是否示范点", "bool", aliases=("示范点",), default=False),
        ),
        "point",
        locatable=True,
    ),
    "party-orgs": Kind(
        "party-orgs",
        "党组织",
        "party_orgs",
        "party_org_id",
        (
            Column("party_org_id", "党组织编号", required=True, aliases=("编号", "id")),
            Column("name", "党组织名称", required=True, aliases=("名称",)),
            Column(
                "org_type",
                "党组织类型",
                "enum",
                required=True,
                aliases=("类型", "组织类别"),
                choices=_enum(PARTY_ORG_TYPES, {"党支部（联合）": "联合党支部", "基层党委": "党委"}),
                doc="党委、党总支、党支部、联合党支部",
            ),
            Column(
                "coverage_kind",
                "组建方式",
                "enum",
                required=True,
                aliases=("覆盖方式",),
                choices=_enum(COVERAGE_KINDS, _by_name(COVERAGE_KIND_NAMES)),
                doc=_listed(COVERAGE_KIND_NAMES),
            ),
            Column("members", "党员数", "int", aliases=("党员人数", "正式党员数"), default=0),
            Column("secretary", "书记姓名", aliases=("书记", "党组织书记")),
            Column("secretary_phone", "书记联系电话", aliases=("联系电话", "书记电话")),
        ),
        "none",
    ),
    "instructors": Kind(
        "instructors",
        "党建指导员",
        "instructor_people",
        "instructor_id",
        (
            Column("instructor_id", "指导员编号", required=True, aliases=("编号", "id", "instructor")),
            Column("name", "姓名", required=True, aliases=("指导员姓名", "名字")),
            Column("unit", "派出单位", aliases=("单位", "所在单位", "dispatching_unit", "department")),
            Column("phone", "联系电话", aliases=("电话", "手机", "手机号", "mobile", "tel")),
            Column(
                "org_ids",
                "负责组织编号",
                aliases=("组织编号", "负责组织", "organizations", "org_id"),
                doc="所负责两新组织的编号（先导入 orgs）；多个用 ; 分隔",
                stored=False,
            ),
            Column("starts_on", "开始日期", "date", aliases=("选派日期", "起始日期", "start", "start_date")),
            Column("ends_on", "结束日期", "date", aliases=("截止日期", "end", "end_date"), doc="空：仍在任"),
        ),
        "none",
    ),
    "centers": Kind(
        "centers",
        "党群服务中心",
        "service_centers",
        "center_id",
        (
            Column("center_id", "阵地编号", required=True, aliases=("编号", "中心编号", "id")),
            Column("name", "阵地名称", required=True, aliases=("名称", "中心名称")),
            Column(
                "level",
                "层级",
                "enum",
                required=True,
                aliases=("级别",),
                choices=_enum(CENTER_LEVELS, _by_name(CENTER_LEVEL_NAMES)),
                doc=_listed(CENTER_LEVEL_NAMES),
            ),
            Column(
                "capacity", "承载能力", "int", aliases=("容量", "可结对数"), default=0, doc="可结对的组织数（共驻共建）"
            ),
            Column("area_code", "所在区划代码", aliases=("区划代码", "社区代码")),
            _LON,
            _LAT,
        ),
        "point",
    ),
    "stations": Kind(
        "stations",
        "新就业群体驿站",
        "stations",
        "station_id",
        (
            Column("station_id", "驿站编号", required=True, aliases=("编号", "id")),
            Column("name", "驿站名称", required=True, aliases=("名称",)),
            Column(
                "kind",
                "驿站类型",
                "enum",
                required=True,
                aliases=("类型",),
                choices=_enum(STATION_KINDS, _by_name(STATION_KIND_NAMES)),
                doc=_listed(STATION_KIND_NAMES),
            ),
            Column("facilities", "设施", aliases=("服务设施",), doc="逗号分隔，如 饮水,充电,休息"),
            _LON,
            _LAT,
        ),
        "point",
    ),
    "roads": Kind(
        "roads",
        "步行路网",
        "roads",
        "road_id",
        (
            Column("road_id", "道路编号", required=True, aliases=("编号", "id", "osm_id", "fid")),
            Column("name", "道路名称", aliases=("名称", "路名")),
            Column("kind", "道路类型", aliases=("类型", "等级", "highway", "fclass"), doc="如 主干路、支路、步行道"),
            Column(
                "walkable",
                "可步行",
                "bool",
                aliases=("步行", "walk"),
                default=True,
                doc="否：不可步行（快速路、封闭道路），不计入步行路网；单行限制对步行不适用",
            ),
        ),
        "line",
    ),
    "places": Kind(
        "places",
        "园区商圈市场楼宇",
        "places",
        "place_id",
        (
            Column("place_id", "场所编号", required=True, aliases=("编号", "id")),
            Column("name", "场所名称", required=True, aliases=("名称", "楼宇名称", "园区名称")),
            Column(
                "kind",
                "场所类型",
                "enum",
                required=True,
                aliases=("类型",),
                choices=_enum(PLACE_KINDS, {**_by_name(PLACE_KIND_NAMES), "楼宇": "building"}),
                doc=_listed(PLACE_KIND_NAMES),
            ),
            Column("address", "地址", aliases=("详细地址",)),
            Column("demonstration", "是否示范点", "bool", aliases=("示范点",), default=False),
            _LON,
            _LAT,
        ),
        "any",
    ),
    "areas": Kind(
        "areas",
        "行政区划与网格",
        "areas",
        "code",
        (
            Column(
                "code",
                "区划代码",
                required=True,
                aliases=("代码", "网格编码", "编码"),
                doc="区县 6 位、街道 9 位、社区 12 位、网格 15 位",
            ),
            Column("name", "名称", required=True, aliases=("区划名称",)),
            Column(
                "level",
                "层级",
                "enum",
                required=True,
                aliases=("级别",),
                choices=_enum(
                    AREA_LEVELS,
                    {
                        "区县": "district",
                        "街道": "street",
                        "乡镇": "street",
                        "社区": "community",
                        "村": "community",
                        "网格": "grid",
                    },
                ),
                doc="district、street、community、grid",
            ),
            Column("parent_code", "上级代码", aliases=("上级区划代码", "父级代码")),
        ),
        "polygon",
        on_insert={"generated": False},
    ),
}

#: Columns that hold a geometry in tabular files (well-known text).
WKT_COLUMNS = ("wkt", "geometry", "geom", "几何")

_HEADER_WITH_NAME = re.compile(r"^(.*?)[(（]\s*([a-z_]+)\s*[)）]\s*$")


def header_map(kind: Kind, headers: list[str]) -> dict[str, str]:
    """Map the file's headers to canonical column names (unknown headers are left out).

    Accepts the canonical name, its Chinese name, any alias, and ``中文(name)`` as in the
    templates; case and surrounding spaces do not matter.
    """
    lookup: dict[str, str] = {}
    for c in kind.columns:
        if c.computed:
            continue
        for spelling in (c.name, c.zh, *c.aliases):
            lookup.setdefault(spelling.strip().lower(), c.name)
    for w in WKT_COLUMNS:
        lookup.setdefault(w, "wkt")
    mapping = {}
    for h in headers:
        text = str(h).strip()
        m = _HEADER_WITH_NAME.match(text)
        key = m.group(2) if m and m.group(2) in lookup else text.lower()
        if key in lookup and lookup[key] not in mapping.values():
            mapping[h] = lookup[key]
    return mapping
