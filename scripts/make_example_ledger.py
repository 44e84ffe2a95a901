"""Write data/examples/两新组织台账_无坐标.xlsx: a ledger as registries and street offices keep
it (addresses and communities, one row with coordinates) that places every way Hongtu can.

    .venv/bin/python scripts/make_example_ledger.py

Its places and communities are the demo city's as ``hongtu demo`` builds it (5,000
organizations, seed 42): import it after the demo with ``hongtu import orgs`` and the report
says how each row was placed. tests/test_locate.py imports it on both backends.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.services.demo import DATA_DIR  # noqa: E402
from geo.democity import generate  # noqa: E402

OUT = ROOT / "data" / "examples" / "两新组织台账_无坐标.xlsx"
DEMO_ORGS, DEMO_SEED = 5000, 42


def rows() -> list[dict]:
    city = generate(DATA_DIR, n_orgs=DEMO_ORGS, seed=DEMO_SEED)
    areas, places = city.areas, city.places
    communities = areas[areas["level"] == "community"]
    unique = communities[~communities["name"].duplicated(keep=False)]
    street = areas[(areas["level"] == "street") & ~areas["name"].duplicated(keep=False)].iloc[0]
    inside = shapely.point_on_surface(unique.geometry.iloc[0])
    p = places.reset_index(drop=True)
    base = {"组织类型": "企业", "所属行业": "商务服务", "从业人员数": 20, "正式党员数": 1}
    return [
        {
            **base,
            "组织编号": "EX01",
            "组织名称": "示例坐标科技有限公司",
            "地址": "五华区翠湖南路1号",
            "经度": round(inside.x, 6),
            "纬度": round(inside.y, 6),
        },
        {**base, "组织编号": "EX02", "组织名称": "示例园区编号有限公司", "所在楼宇": p.loc[0, "place_id"]},
        {**base, "组织编号": "EX03", "组织名称": "示例园区名称有限公司", "所在楼宇": p.loc[1, "name"]},
        {
            **base,
            "组织编号": "EX04",
            "组织名称": "示例地址一有限公司",
            "地址": f"云南省昆明市{p.loc[2, 'name']}3栋201室",
        },
        {**base, "组织编号": "EX05", "组织名称": "示例地址二有限责任公司", "地址": f"昆明市{p.loc[5, 'name']}B座12楼"},
        {
            **base,
            "组织编号": "EX06",
            "组织名称": "示例社区代码服务中心",
            "组织类型": "社会组织",
            "地址": "某巷12号",
            "所属社区": unique["code"].iloc[1],
        },
        {
            **base,
            "组织编号": "EX07",
            "组织名称": "示例社区名称商贸有限公司",
            "地址": "某巷14号",
            "所属社区": unique["name"].iloc[2],
        },
        {
            **base,
            "组织编号": "EX08",
            "组织名称": "示例街道名称物流有限公司",
            "地址": "某路8号",
            "所属街道": street["name"],
        },
        {**base, "组织编号": "EX09", "组织名称": "示例待定位餐饮有限公司", "地址": "某区某路88号"},
    ]


def main() -> None:
    columns = [
        "组织编号",
        "组织名称",
        "组织类型",
        "所属行业",
        "从业人员数",
        "正式党员数",
        "地址",
        "经度",
        "纬度",
        "所属社区",
        "所属街道",
        "所在楼宇",
    ]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows()).reindex(columns=columns).to_excel(OUT, index=False, sheet_name="台账")
    print(OUT)


if __name__ == "__main__":
    main()
