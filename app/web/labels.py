"""Chinese labels (translated through the catalog) of area levels, rates and table columns,
and the name an area is shown by."""

from flask import current_app

from ..i18n import gettext

LEVEL_NAMES = {"city": "全市", "district": "区县", "street": "街道/乡镇", "community": "社区/村", "grid": "网格"}
RATE_NAMES = {
    "both_rate": "两个覆盖率",
    "org_coverage_rate": "组织覆盖率",
    "own_rate": "单独组建率",
    "work_rate": "工作覆盖率",
}
#: Headers of exported tables, by column (translated when the page is in English).
HEADERS = {
    "org_id": "编号",
    "name": "名称",
    "org_type": "类型",
    "industry": "行业",
    "credit_code": "统一社会信用代码",
    "employees": "从业人员",
    "party_members": "正式党员",
    "address": "地址",
    "street_code": "街道代码",
    "community_code": "社区代码",
    "grid_code": "网格编码",
    "place_name": "所在场所",
    "center_name": "结对阵地",
    "pair_distance_m": "结对距离（米）",
    "reach_distance_m": "直线到最近阵地（米）",
    "walk_m": "步行到最近阵地（米）",
    "center_id": "阵地编号",
    "proposal_id": "建议编号",
    "spread_m": "最远间距（米）",
    "members_elsewhere": "辖区外成员数",
    "code": "区划代码",
    "level": "层级",
    "orgs": "两新组织",
    "in_scope": "在统计范围",
    "own": "单独组建",
    "joint": "联合组建",
    "area_based": "区域组建",
    "industry_based": "行业组建",
    "work": "工作覆盖",
    "blank": "空白",
    "unplaced": "待定位",
    "approximate": "近似位置",
    "branch_eligible": "可组建联合党支部的单位",
    "branch_covered": "已纳入联合党支部建议的单位",
    "branch_bound": "最多可纳入的单位",
    "covered": "组织覆盖",
    "at": "时间",
    "username": "用户",
    "via": "途径",
    "field": "字段",
    "old": "原值",
    "new": "新值",
    "change": "变化",
    "community_name": "所在社区",
    "street_name": "所在街道",
    "located_by": "位置来源",
    "instructor_name": "党建指导员",
    "visited_on": "走访日期",
    "kind": "走访类型",
    "notes": "走访情况",
    "distance_m": "签到距离（米）",
    "far": "位置偏远",
    "status_before": "上期状态",
    "status_after": "本期状态",
    "moved_m": "移动距离（米）",
    **RATE_NAMES,
}


def city_name() -> str:
    """The city's name (``HONGTU_CITY_NAME``), or 全市 in the page's language when none is set."""
    return current_app.config.get("HONGTU_CITY_NAME") or gettext("全市")


def area_name(trail: list[dict]) -> str:
    """The name of the area ``trail`` (district first) ends at; the city's for an empty trail."""
    return trail[-1]["name"] if trail else city_name()
