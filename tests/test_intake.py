"""Imports on both backends: every bad file is refused with its row and column and changes
nothing; good files in every format and coordinate system land where they should."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from sqlalchemy import text

from app import create_app
from app.intake import import_file
from app.intake.export import export_kind, kind_frame, write_template
from app.store import Store
from app.store.models import Base
from geo import crs as geocrs

from .conftest import signed_in

GEOD = pyproj.Geod(ellps="WGS84")
DISTRICT = shapely.box(102.60, 24.95, 102.80, 25.10)
STREET = shapely.box(102.60, 24.95, 102.70, 25.10)
COMMUNITY = shapely.box(102.60, 24.95, 102.65, 25.00)
HEADER = (
    "组织编号,企业名称,组织类型,所属行业,统一社会信用代码,从业人员数,正式党员数,地址,"
    "经度,纬度,所属党组织编号,是否选派党建指导员"
)
GOOD_ROWS = [
    "A1,云锦网络科技有限公司,企业,互联网,91350100M000100Y43,25,2,翠湖路1号,102.70,25.04,,是",
    "A2,金汇行业协会,社会组织,行业协会商会,,40,0,,102.71,25.05,P1,否",
    "A3,星联快递有限公司,企业,物流快递,,12,1,,102.62,24.98,P1,否",
]


def snapshot(store: Store) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every table, geometry included."""
    out = {}
    with store.connect() as conn:
        for name, table in Base.metadata.tables.items():
            cols = [f"ST_AsBinary({c.name})" if c.name == "geom" else c.name for c in table.columns]
            order = ", ".join(c.name for c in table.primary_key.columns)
            rows = conn.execute(text(f"SELECT {', '.join(cols)} FROM {name} ORDER BY {order}")).fetchall()
            digest = hashlib.sha256(
                repr([tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]).encode()
            ).hexdigest()
            out[name] = (len(rows), digest)
    return out


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    if isinstance(content, str):
        content = content.encode(encoding)
    path.write_bytes(content)
    return path


def orgs_csv(tmp: Path, *rows: str, header: str = HEADER, name: str = "orgs.csv", encoding="utf-8") -> Path:
    return write(tmp / name, "\n".join([header, *rows]) + "\n", encoding)


def areas_geojson(tmp: Path, features: list[tuple[str, str, str, str | None, object]], name="areas.geojson") -> Path:
    frame = gpd.GeoDataFrame(
        {
            "code": [f[0] for f in features],
            "name": [f[1] for f in features],
            "level": [f[2] for f in features],
            "parent_code": [f[3] for f in features],
        },
        geometry=[f[4] for f in features],
        crs=4326,
    )
    frame.to_file(tmp / name, driver="GeoJSON")
    return tmp / name


@pytest.fixture
def loaded(store: Store, tmp_path: Path) -> Store:
    """A store holding one district, street and community, a party organization and three organizations."""
    areas = areas_geojson(
        tmp_path,
        [
            ("530102", "五华区", "district", None, DISTRICT),
            ("530102001", "华山街道", "street", "530102", STREET),
            ("530102001001", "翠湖社区", "community", None, COMMUNITY),
        ],
    )
    party = write(
        tmp_path / "party.csv",
        "党组织编号,党组织名称,党组织类型,组建方式,党员数\nP1,联合党支部,联合党支部,联合组建,3\n",
    )
    for kind, path in (("areas", areas), ("party-orgs", party), ("orgs", orgs_csv(tmp_path, *GOOD_ROWS))):
        report = import_file(store, kind, path)
        assert report.ok, [str(i) for i in report.issues]
    return store


def xlsx_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_excel(buffer, index=False)
    return buffer.getvalue()


def zipped(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# Each bad file: (kind, file name, content, expected row, expected column, words of the reason).
BAD_FILES = {
    "missing required column": ("orgs", "a.csv", "组织编号,经度,纬度\nB1,102.7,25.0\n", 1, "name", "缺少必需的列"),
    "empty required value": (
        "orgs",
        "a.csv",
        f"{HEADER}\n{GOOD_ROWS[0]}\nB2,,企业,,,1,0,,102.7,25.0,,否\n",
        3,
        "name",
        "必填项为空",
    ),
    "unparseable number": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,,十二,0,,102.7,25.0,,否\n",
        2,
        "employees",
        "不是有效的非负整数",
    ),
    "lon/lat out of range": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,,1,0,,502.7,25.0,,否\n",
        2,
        "lon/lat",
        "超出范围",
    ),
    "lon/lat swapped": ("orgs", "a.csv", f"{HEADER}\nB1,甲,企业,,,1,0,,25.04,102.70,,否\n", 2, "lon/lat", "填反"),
    "outside the loaded areas": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,,1,0,,116.40,39.90,,否\n",
        2,
        "lon/lat",
        "不在已载入区划范围内",
    ),
    "duplicate id": ("orgs", "a.csv", f"{HEADER}\n{GOOD_ROWS[0]}\n{GOOD_ROWS[0]}\n", 3, "org_id", "首次出现在第 2 行"),
    "credit code check character": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,91350100M000100Y44,1,0,,102.7,25.0,,否\n",
        2,
        "credit_code",
        "校验位",
    ),
    "credit code one character too long": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,91350100M000100Y430,1,0,,102.7,25.0,,否\n",
        2,
        "credit_code",
        "格式或校验位错误",
    ),
    "count with a line break in its cell": (
        "orgs",
        "a.csv",
        f'{HEADER}\nB1,甲,企业,,,12,0,,102.7,25.0,,否\nB2,乙,企业,,,"3\n4",0,,102.7,25.0,,否\n',
        3,
        "employees",
        "不是有效的非负整数",
    ),
    "unknown enum value": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,enterprize,,,1,0,,102.7,25.0,,否\n",
        2,
        "org_type",
        "是否为 enterprise",
    ),
    "unknown party organization": (
        "orgs",
        "a.csv",
        f"{HEADER}\nB1,甲,企业,,,1,0,,102.7,25.0,PX9,否\n",
        2,
        "party_org_id",
        "PX9 不存在",
    ),
    "unknown parent area": (
        "areas",
        "a.csv",
        "代码,名称,层级,上级代码,wkt\n530102099001,新社区,社区,530102099,"
        '"POLYGON((102.61 24.96,102.62 24.96,102.62 24.97,102.61 24.96))"\n',
        2,
        "parent_code",
        "上级区划不存在",
    ),
    "polygon that cannot be repaired": (
        "areas",
        "a.csv",
        "代码,名称,层级,上级代码,wkt\n530102001002,扁社区,社区,530102001,"
        '"POLYGON((102.61 24.96,102.62 24.97,102.62 24.97,102.61 24.96))"\n',
        2,
        "wkt",
        "无法修复",
    ),
    "polygon without area": (
        "areas",
        "a.csv",
        "代码,名称,层级,上级代码,wkt\n530102001003,线社区,社区,530102001,"
        '"POLYGON((102.61 24.96,102.62 24.97,102.63 24.98,102.61 24.96))"\n',
        2,
        "wkt",
        "面积为零",
    ),
    "code of the wrong length": (
        "areas",
        "a.csv",
        "代码,名称,层级,上级代码,wkt\n5301020010,错社区,社区,530102001,"
        '"POLYGON((102.61 24.96,102.62 24.96,102.62 24.97,102.61 24.96))"\n',
        2,
        "code",
        "代码位数",
    ),
    "empty file": ("orgs", "a.csv", b"", None, "", "文件为空"),
    "header only": ("orgs", "a.csv", HEADER + "\n", None, "", "没有数据行"),
    "binary garbage": ("orgs", "a.csv", bytes(range(256)) * 40, None, "", "二进制"),
    "wrong extension": ("orgs", "a.txt", HEADER + "\n" + GOOD_ROWS[0], None, "", "不支持的文件类型"),
    "csv named xlsx": ("orgs", "a.xlsx", HEADER + "\n" + GOOD_ROWS[0], None, "", "不是有效的 Excel"),
    "truncated excel": ("orgs", "a.xlsx", "TRUNCATED_XLSX", None, "", "损坏或被截断"),
    "truncated geojson": (
        "areas",
        "a.geojson",
        '{"type": "FeatureCollection", "features": [{"type": "Fea',
        None,
        "",
        "无法读取空间数据文件",
    ),
    "zip with path traversal": ("areas", "a.zip", "ZIP_TRAVERSAL", None, "", "不安全的路径"),
    "zip bomb": ("areas", "a.zip", "ZIP_BOMB", None, "", "压缩炸弹"),
    "oversize file": ("orgs", "a.csv", HEADER + "\n" + "\n".join(GOOD_ROWS * 200), None, "", "文件过大"),
}


def _bad_content(content):
    if content == "TRUNCATED_XLSX":
        whole = xlsx_bytes(pd.DataFrame([r.split(",") for r in GOOD_ROWS], columns=HEADER.split(",")))
        return whole[: len(whole) // 2]
    if content == "ZIP_TRAVERSAL":
        return zipped({"../../evil.shp": b"x", "evil.dbf": b"x"})
    if content == "ZIP_BOMB":
        return zipped({"bomb.shp": b"\0" * 50_000_000})
    return content


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_with_row_and_column_and_changes_nothing(loaded: Store, tmp_path: Path, case: str):
    kind, name, content, row, column, words = BAD_FILES[case]
    path = write(tmp_path / name, _bad_content(content))
    before = snapshot(loaded)
    report = import_file(loaded, kind, path, max_bytes=50_000, report_dir=tmp_path / "reports")
    assert not report.ok and not report.written
    matching = [i for i in report.errors if i.row == row and i.column == column and words in i.zh]
    assert matching, [str(i) for i in report.issues]
    assert all("/" in str(i) and i.en for i in report.errors)
    assert report.report_path is not None and report.report_path.exists()
    assert snapshot(loaded) == before


def test_errors_anywhere_mean_nothing_is_written(loaded: Store, tmp_path: Path):
    before = snapshot(loaded)
    bad = orgs_csv(tmp_path, "N1,新组织,企业,,,5,0,,102.72,25.06,,否", "N2,另一个,企业,,,x,0,,102.72,25.06,,否")
    report = import_file(loaded, "orgs", bad)
    assert [(i.row, i.column) for i in report.errors] == [(3, "employees")]
    assert snapshot(loaded) == before


def test_swapped_coordinates_can_be_fixed_on_request(loaded: Store, tmp_path: Path):
    path = orgs_csv(tmp_path, "S1,填反的组织,企业,,,5,0,,25.04,102.70,,否")
    report = import_file(loaded, "orgs", path, fix_swapped=True)
    assert report.ok and report.inserted == 1
    assert [i.severity for i in report.issues] == ["warning"]
    point = loaded.read_frame("organizations", ["org_id"]).set_index("org_id").geometry["S1"]
    assert (point.x, point.y) == pytest.approx((102.70, 25.04))


def test_dry_run_reports_and_writes_nothing(loaded: Store, tmp_path: Path):
    before = snapshot(loaded)
    report = import_file(loaded, "orgs", orgs_csv(tmp_path, "D1,试运行,企业,,,5,0,,102.72,25.06,,否"), dry_run=True)
    assert report.ok and report.inserted == 1 and not report.written
    assert snapshot(loaded) == before


def test_reimport_changes_nothing_and_a_changed_row_updates_in_place(loaded: Store, tmp_path: Path):
    same = orgs_csv(tmp_path, *GOOD_ROWS)
    before = snapshot(loaded)
    again = import_file(loaded, "orgs", same)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 3)
    assert snapshot(loaded) == before
    ids = dict(loaded.read_frame("organizations", ["org_id", "id"])[["org_id", "id"]].values)
    changed = orgs_csv(tmp_path, GOOD_ROWS[0].replace(",25,2,", ",30,2,"), *GOOD_ROWS[1:], name="changed.csv")
    report = import_file(loaded, "orgs", changed)
    assert (report.inserted, report.updated, report.unchanged) == (0, 1, 2)
    frame = loaded.read_frame("organizations", ["org_id", "id", "employees"]).set_index("org_id")
    assert frame.loc["A1", "employees"] == 30 and frame.loc["A1", "id"] == ids["A1"]


def test_party_links_and_instructors_follow_the_file(loaded: Store, tmp_path: Path):
    with loaded.connect() as conn:
        linked = (
            conn.execute(
                text(
                    "SELECT o.org_id FROM party_org_coverage c JOIN organizations o ON o.id = c.organization_id "
                    "ORDER BY o.org_id"
                )
            )
            .scalars()
            .all()
        )
        instructed = (
            conn.execute(text("SELECT o.org_id FROM instructors i JOIN organizations o ON o.id = i.organization_id"))
            .scalars()
            .all()
        )
    assert linked == ["A2", "A3"] and instructed == ["A1"]
    moved = orgs_csv(tmp_path, GOOD_ROWS[0].replace(",,是", ",P1,否"), *GOOD_ROWS[1:], name="moved.csv")
    assert import_file(loaded, "orgs", moved).updated == 1
    with loaded.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM party_org_coverage")).scalar() == 3
        assert conn.execute(text("SELECT count(*) FROM instructors")).scalar() == 0


def test_new_organizations_get_their_own_links_beside_changed_ones(loaded: Store, tmp_path: Path):
    """New rows' ids are taken before they are written and their links written from them: each
    link must land on its own organization, around ids another writer took (a gap on PostGIS)."""
    party = write(
        tmp_path / "p2.csv", "党组织编号,党组织名称,党组织类型,组建方式,党员数\nP2,第二支部,党支部,单独组建,4\n"
    )
    assert import_file(loaded, "party-orgs", party).ok
    with loaded.connect(write=True) as conn:
        loaded.backend.new_ids(conn, "organizations", 5)
    rows = [
        GOOD_ROWS[0].replace(",,是", ",P2；P1,否"),
        GOOD_ROWS[1],
        "N1,新一科技有限公司,企业,互联网,,8,1,,102.70,25.05,P2,是",
        "N2,新二商贸有限公司,企业,批发零售,,9,0,,102.71,25.04,P1、P2,否",
    ]
    report = import_file(loaded, "orgs", orgs_csv(tmp_path, *rows, name="mixed.csv"))
    assert (report.inserted, report.updated, report.unchanged) == (2, 1, 1)
    with loaded.connect() as conn:
        links = conn.execute(
            text(
                "SELECT o.org_id, p.party_org_id FROM party_org_coverage c "
                "JOIN organizations o ON o.id = c.organization_id JOIN party_orgs p ON p.id = c.party_org_id"
            )
        ).fetchall()
        instructed = conn.execute(
            text("SELECT o.org_id FROM instructors i JOIN organizations o ON o.id = i.organization_id")
        ).fetchall()
    assert sorted(links) == [
        ("A1", "P1"),
        ("A1", "P2"),
        ("A2", "P1"),
        ("A3", "P1"),
        ("N1", "P2"),
        ("N2", "P1"),
        ("N2", "P2"),
    ]
    assert [r[0] for r in instructed] == ["N1"]
    # The next import's ids follow on: nothing taken twice.
    more = import_file(loaded, "orgs", orgs_csv(tmp_path, "N3,新三公司,企业,,,3,0,,102.70,25.05,P1,否", name="n3.csv"))
    assert more.inserted == 1
    ids = loaded.read_frame("organizations", ["org_id", "id"])["id"]
    assert ids.is_unique and len(ids) == 6


def test_gbk_csv_and_excel_with_chinese_headers(store: Store, tmp_path: Path):
    gbk = orgs_csv(tmp_path, *[r.replace(",P1,", ",,") for r in GOOD_ROWS], encoding="gbk")
    assert gbk.read_bytes().decode("gbk").startswith("组织编号")
    report = import_file(store, "orgs", gbk)
    assert report.ok and report.inserted == 3
    names = store.read_frame("organizations", ["org_id", "name"]).set_index("org_id")["name"]
    assert names["A1"] == "云锦网络科技有限公司"
    frame = pd.DataFrame(
        {
            "组织名称(name)": ["表格组织"],
            "组织编号(org_id)": ["E1"],
            "组织类型(org_type)": ["社会组织"],
            "经度(lon)": [102.71],
            "纬度(lat)": [25.03],
            "是否在营(operating)": ["否"],
        }
    )
    path = write(tmp_path / "sheet.xlsx", xlsx_bytes(frame))
    report = import_file(store, "orgs", path)
    assert report.ok, [str(i) for i in report.issues]
    row = store.read_frame("organizations", ["org_id", "org_type", "operating"]).set_index("org_id").loc["E1"]
    assert row["org_type"] == "social_org" and not row["operating"]


def test_named_sheet_and_missing_sheet(store: Store, tmp_path: Path):
    frame = pd.DataFrame({"org_id": ["W1"], "name": ["甲"], "org_type": ["企业"], "lon": [102.7], "lat": [25.0]})
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer) as writer:
        pd.DataFrame({"说明": ["封面"]}).to_excel(writer, sheet_name="封面", index=False)
        frame.to_excel(writer, sheet_name="台账", index=False)
    path = write(tmp_path / "book.xlsx", buffer.getvalue())
    assert import_file(store, "orgs", path, sheet="台账").ok
    missing = import_file(store, "orgs", path, sheet="不存在")
    assert not missing.ok and "台账" in missing.errors[0].zh


@pytest.mark.parametrize("source", ["gcj02", "bd09"])
def test_amap_and_baidu_coordinates_land_on_wgs84(store: Store, tmp_path: Path, source: str):
    truth = np.array([[102.7012, 25.0388], [102.6543, 24.9811]])
    forward = geocrs.wgs84_to_gcj02 if source == "gcj02" else geocrs.wgs84_to_bd09
    lon, lat = forward(truth[:, 0], truth[:, 1])
    rows = [
        f"C{i},坐标{i},企业,,,5,0,,{float(x)!r},{float(y)!r},,否" for i, (x, y) in enumerate(zip(lon, lat, strict=True))
    ]
    report = import_file(store, "orgs", orgs_csv(tmp_path, *rows), crs=source)
    assert report.ok
    stored = store.read_frame("organizations", ["org_id", "source_crs"])
    xy = stored.get_coordinates().to_numpy()
    assert GEOD.inv(xy[:, 0], xy[:, 1], truth[:, 0], truth[:, 1])[2].max() < 0.5
    assert set(stored["source_crs"]) == {source}


def test_zipped_shapefile_in_a_projected_crs(store: Store, tmp_path: Path):
    polygon = shapely.box(102.60, 24.95, 102.80, 25.10)
    frame = gpd.GeoDataFrame(
        {"code": ["530102"], "name": ["五华区"], "level": ["district"]}, geometry=[polygon], crs=4326
    )
    shp = tmp_path / "shp" / "districts.shp"
    shp.parent.mkdir()
    frame.to_crs(4543).to_file(shp, encoding="utf-8")
    archive = write(tmp_path / "districts.zip", zipped({p.name: p.read_bytes() for p in shp.parent.iterdir()}))
    report = import_file(store, "areas", archive)
    assert report.ok, [str(i) for i in report.issues]
    stored = store.read_frame("areas", ["code", "source_crs"])
    assert stored["source_crs"].tolist() == ["EPSG:4543"]
    assert shapely.hausdorff_distance(stored.geometry.iloc[0], polygon) < 1e-6


def test_invalid_polygon_is_repaired_and_reported(loaded: Store, tmp_path: Path):
    bowtie = "POLYGON((102.61 24.96,102.63 24.98,102.63 24.96,102.61 24.98,102.61 24.96))"
    path = write(tmp_path / "a.csv", f'代码,名称,层级,wkt\n530102001009,蝶形社区,社区,"{bowtie}"\n')
    report = import_file(loaded, "areas", path)
    assert report.ok and report.inserted == 1
    assert [i.severity for i in report.issues] == ["warning"] and "修复" in report.issues[0].zh
    stored = loaded.read_frame("areas", ["code", "parent_code"], where={"code": "530102001009"})
    assert stored.geometry.iloc[0].is_valid and stored["parent_code"].iloc[0] == "530102001"


KIND_ORDER = ("areas", "places", "party-orgs", "orgs", "centers", "stations")


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "geojson", "gpkg"])
def test_export_then_import_is_lossless(demo_store: Store, store: Store, tmp_path: Path, fmt: str):
    for kind in KIND_ORDER:
        # Tabular formats hold polygons as WKT; district outlines exceed an Excel cell, so they
        # travel as GeoPackage in the xlsx case, as a user would.
        kind_fmt = fmt
        if kind == "party-orgs" and fmt in ("geojson", "gpkg"):
            kind_fmt = "csv"
        if kind == "areas" and fmt == "xlsx":
            kind_fmt = "gpkg"
        out = tmp_path / f"{kind}.{kind_fmt}"
        export_kind(demo_store, kind, kind_fmt, out)
        report = import_file(store, kind, out)
        assert report.ok, (kind, [str(i) for i in report.issues[:5]])
        before, after = kind_frame(demo_store, kind), kind_frame(store, kind)
        key = {
            "areas": "code",
            "places": "place_id",
            "party-orgs": "party_org_id",
            "orgs": "org_id",
            "centers": "center_id",
            "stations": "station_id",
        }[kind]
        before, after = before.set_index(key).sort_index(), after.set_index(key).sort_index()
        assert before.index.equals(after.index), kind
        attributes = [c for c in before.columns if c not in ("geometry", "source_crs")]
        pd.testing.assert_frame_equal(
            pd.DataFrame(before[attributes]), pd.DataFrame(after[attributes]), check_dtype=False, obj=kind
        )
        if "geometry" in before:
            a = shapely.get_coordinates(before.geometry.values)
            b = shapely.get_coordinates(after.geometry.values)
            assert a.shape == b.shape and np.abs(a - b).max() < 1e-7, kind


def test_template_headers_import_back(store: Store, tmp_path: Path):
    template = tmp_path / "t.xlsx"
    write_template("orgs", template)
    headers = pd.read_excel(template, sheet_name="数据").columns.tolist()
    assert "组织名称(name)" in headers and "经度(lon)" in headers
    frame = pd.DataFrame(
        [["T1", "模板组织", "企业", 102.7, 25.0]],
        columns=["组织编号(org_id)", "组织名称(name)", "组织类型(org_type)", "经度(lon)", "纬度(lat)"],
    )
    assert import_file(store, "orgs", write(tmp_path / "filled.xlsx", xlsx_bytes(frame))).ok
    doc = pd.read_excel(template, sheet_name="说明")
    assert len(doc) == len(headers)


def test_cli_import_exit_status_and_report(tmp_path: Path):
    import os
    import subprocess
    import sys

    hongtu = str(Path(sys.executable).with_name("hongtu"))
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite'}"}
    good = orgs_csv(tmp_path, *[r.replace(",P1,", ",,") for r in GOOD_ROWS])
    ok = subprocess.run([hongtu, "import", "orgs", str(good)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and "新增 3" in ok.stdout
    bad = orgs_csv(tmp_path, "B1,甲,企业,,,x,0,,102.7,25.0,,否", name="bad.csv")
    failed = subprocess.run([hongtu, "import", "orgs", str(bad)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert failed.returncode == 1
    assert "第 2 行" in failed.stderr and "employees" in failed.stderr
    report = Path(failed.stdout.split("report: ")[1].strip())
    assert report.exists() and "employees" in report.read_text(encoding="utf-8-sig")


def test_upload_page_escapes_values_and_refuses_bad_files(loaded: Store, tmp_path: Path):
    client = signed_in(create_app({"DATABASE_URL": loaded.url, "TESTING": True}))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/import/").get_data(as_text=True)).group(1)
    evil = "<script>alert(1)</script>"
    bad = orgs_csv(tmp_path, f"U1,甲,企业,,,{evil},0,,102.7,25.0,,否").read_bytes()
    # Without the form's CSRF token the upload is refused before anything is read.
    refused = client.post(
        "/import/", data={"kind": "orgs", "file": (io.BytesIO(bad), "x.csv")}, content_type="multipart/form-data"
    )
    assert refused.status_code == 400 and "CSRF" in refused.get_data(as_text=True)
    wrong = client.post(
        "/import/",
        data={"kind": "orgs", "csrf_token": "forged", "file": (io.BytesIO(bad), "x.csv")},
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 400
    response = client.post(
        "/import/",
        data={"kind": "orgs", "crs": "wgs84", "csrf_token": token, "file": (io.BytesIO(bad), "台账.csv")},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert evil not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    good = orgs_csv(tmp_path, "U2,网页导入,企业,,,5,0,,102.7,25.0,,否", name="good.csv").read_bytes()
    response = client.post(
        "/import/",
        data={"kind": "orgs", "csrf_token": token, "file": (io.BytesIO(good), "good.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200 and "新增 1" in response.get_data(as_text=True)
    template = client.get("/import/template/orgs.xlsx")
    assert template.status_code == 200 and template.data[:2] == b"PK"


def test_trailing_blank_rows_of_a_spreadsheet_are_not_data(loaded: Store, tmp_path: Path):
    blank = "," * HEADER.count(",")
    path = orgs_csv(tmp_path, GOOD_ROWS[0], blank, GOOD_ROWS[2], blank, blank)
    report = import_file(loaded, "orgs", path)
    # The blank row between data rows is a row with empty required values; the two at the end are not rows.
    assert report.rows == 3
    assert {(i.row, i.column) for i in report.errors} >= {(3, "org_id"), (3, "name")}


def centers_geojson(tmp: Path, *features: tuple[dict, list[float]]) -> Path:
    """A GeoJSON file of points: each feature's properties and coordinates."""
    doc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": properties, "geometry": {"type": "Point", "coordinates": xy}}
            for properties, xy in features
        ],
    }
    return write(tmp / "centers.geojson", json.dumps(doc, ensure_ascii=False))


def test_geojson_features_are_numbered_for_the_user(loaded: Store, tmp_path: Path):
    path = centers_geojson(
        tmp_path,
        ({"center_id": "C1", "name": "中心", "level": "社区"}, [102.61, 24.96]),
        ({"center_id": "C2", "name": "中心二", "level": "小区"}, [102.62, 24.97]),
    )
    report = import_file(loaded, "centers", path)
    assert [(i.row, i.column) for i in report.errors] == [(2, "level")]


def test_a_last_feature_without_attributes_is_still_a_feature(loaded: Store, tmp_path: Path):
    # Blank trailing rows of a spreadsheet are dropped; a feature is never blank: it has its geometry.
    path = centers_geojson(
        tmp_path, ({"center_id": "C1", "name": "中心", "level": "社区"}, [102.61, 24.96]), ({}, [102.62, 24.97])
    )
    report = import_file(loaded, "centers", path)
    assert report.rows == 2
    assert {(i.row, i.column) for i in report.errors} == {(2, "center_id"), (2, "name"), (2, "level")}


def test_street_staff_import_only_within_their_street(loaded: Store, tmp_path: Path):
    from app.intake import import_file

    before = loaded.read_frame("organizations", ["org_id", "name"]).sort_values("org_id").reset_index(drop=True)
    street = loaded.scoped("530102001")
    # 102.75 lies in the district but east of the street: the whole file is refused.
    mixed = orgs_csv(tmp_path, "S1,街内单位,企业,,,5,0,,102.62,25.0,,否", "S2,街外单位,企业,,,5,0,,102.75,25.0,,否")
    report = import_file(street, "orgs", mixed)
    assert not report.ok
    assert [(i.row, i.en.startswith("outside your jurisdiction")) for i in report.errors] == [(3, True)]
    after = loaded.read_frame("organizations", ["org_id", "name"]).sort_values("org_id").reset_index(drop=True)
    assert after.equals(before)
    # Kinds located by no geometry of their own are for city-wide staff only.
    party = write(tmp_path / "p.csv", "党组织编号,党组织名称,党组织类型,组建方式\nP9,新支部,党支部,own\n")
    assert "only city-wide staff" in import_file(street, "party-orgs", party).errors[0].en
    inside = orgs_csv(tmp_path, "S1,街内单位,企业,,,5,0,,102.62,25.0,,否", name="inside.csv")
    assert import_file(street, "orgs", inside).ok


# Intake reports everything at once and in order, and accepts the columns it documents (issue 21).


def test_point_places_may_be_given_by_lon_and_lat(loaded: Store, tmp_path):
    path = write(tmp_path / "places.csv", "场所编号,场所名称,场所类型,经度,纬度\nPL1,翠湖大厦,商务楼宇,102.62,24.97\n")
    report = import_file(loaded, "places", path)
    assert report.ok and report.inserted == 1, [str(i) for i in report.issues]
    place = loaded.read_frame("places", ["place_id"])
    assert place.geometry.iloc[0].geom_type == "Point" and round(place.geometry.iloc[0].x, 2) == 102.62


def test_a_file_with_only_one_of_lon_and_lat_names_the_missing_one(loaded: Store, tmp_path):
    header = HEADER.replace(",纬度", "")
    rows = [",".join(r.split(",")[:9] + r.split(",")[10:]) for r in GOOD_ROWS]
    before = snapshot(loaded)
    report = import_file(loaded, "orgs", write(tmp_path / "orgs.csv", "\n".join([header, *rows]) + "\n"))
    assert not report.ok and snapshot(loaded) == before
    assert [(i.row, i.column) for i in report.errors] == [(1, "lat")]


def test_a_missing_key_column_is_reported_with_every_other_problem_in_row_order(loaded: Store, tmp_path):
    header = HEADER.split(",", 1)[1]
    rows = [r.split(",", 1)[1] for r in GOOD_ROWS]
    rows[2] = rows[2].replace(",12,1,", ",许多,1,")
    rows[0] = rows[0].replace(",25,2,", ",-3,2,")
    report = import_file(loaded, "orgs", write(tmp_path / "orgs.csv", "\n".join([header, *rows]) + "\n"))
    assert not report.ok
    found = [(i.row, i.column) for i in report.errors]
    assert found[0] == (1, "org_id") and (2, "employees") in found and (4, "employees") in found
    rows_in_order = [r for r, _ in found]
    assert rows_in_order == sorted(rows_in_order)


def test_the_instance_folder_is_the_deployments_own(tmp_path, monkeypatch):
    monkeypatch.setenv("HONGTU_INSTANCE", str(tmp_path / "hongtu-data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app({"TESTING": True})
    assert app.instance_path == str(tmp_path / "hongtu-data")
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'hongtu-data' / 'hongtu.sqlite'}"


def test_probable_duplicates_are_warned_of_in_the_file_and_against_the_store(loaded: Store, tmp_path):
    rows = [
        "D1,云锦网络科技有限责任公司,企业,互联网,,25,2,云南省昆明市五华区翠湖路１号,102.70,25.04,,否",
        "D2,新的单位,企业,互联网,91350100M000100Y43,5,0,,102.70,25.04,,否",
        "D3,同名同址,企业,,,5,0,翠湖路 8 号,102.71,25.04,,否",
        "D4,同名同址,企业,,,5,0,翠湖路8号,102.71,25.04,,否",
    ]
    report = import_file(loaded, "orgs", orgs_csv(tmp_path, *rows))
    assert report.ok and report.inserted == 4, [str(i) for i in report.issues]
    warned = {(i.row, i.column): i.zh for i in report.issues if i.severity == "warning" and "重复" in i.zh}
    # A1 is stored as 云锦网络科技有限公司 at 翠湖路1号, credit code 91350100M000100Y43.
    assert "A1" in warned[(2, "name")] and "A1" in warned[(3, "credit_code")]
    assert "第 4 行" in warned[(5, "name")]
    assert len(warned) == 3


def test_a_scoped_import_names_no_stored_duplicate_outside_the_jurisdiction(loaded: Store, tmp_path):
    row = "D5,云锦网络科技有限公司,企业,互联网,,25,2,翠湖路1号,102.62,24.97,,否"
    report = import_file(loaded.scoped("530102001001"), "orgs", orgs_csv(tmp_path, row))
    assert report.ok and not [i for i in report.issues if "A1" in i.zh]
