"""Export what the store holds in the same columns the importers read, and blank templates.

An export re-imports without loss: ids, attributes and coordinates (full double precision in
CSV and Excel, WKT without rounding for polygons).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from ..spreadsheets import inert, to_csv
from ..store import Store
from .issues import IntakeError
from .schema import KINDS, Kind

FORMATS = ("xlsx", "csv", "geojson", "gpkg")
#: Excel refuses longer cell text; polygons that need more go to GeoJSON or GeoPackage.
EXCEL_CELL_LIMIT = 32_767


def header(kind: Kind, name: str) -> str:
    """The bilingual header of a column, as in the templates: ``组织名称(name)``."""
    if name == "wkt":
        return "几何WKT(wkt)"
    return f"{kind.column(name).zh}({name})"


def kind_frame(store: Store, kind_name: str) -> gpd.GeoDataFrame | pd.DataFrame:
    """The rows of one kind with its canonical columns (and geometry, for spatial kinds)."""
    kind = KINDS[kind_name]
    stored = kind.table_columns
    with store.connect() as conn:
        if kind.geometry == "none":
            rows = conn.execute(text(f"SELECT id, {', '.join(stored)} FROM {kind.table} ORDER BY id")).fetchall()
            frame = pd.DataFrame.from_records(rows, columns=["id", *stored])
            if kind_name == "instructors":
                assigned = pd.DataFrame.from_records(
                    conn.execute(
                        text(
                            "SELECT i.person_id, o.org_id FROM instructors i JOIN organizations o "
                            "ON o.id = i.organization_id WHERE i.person_id IS NOT NULL ORDER BY o.org_id"
                        )
                    ).fetchall(),
                    columns=["id", "org_ids"],
                )
                frame["org_ids"] = frame["id"].map(assigned.groupby("id")["org_ids"].agg(";".join))
            return frame.drop(columns="id")
        frame = store.read_frame(kind.table, ["id", *stored], conn=conn)
        if kind_name == "orgs":
            links = pd.DataFrame.from_records(
                conn.execute(
                    text(
                        "SELECT c.organization_id, p.party_org_id FROM party_org_coverage c "
                        "JOIN party_orgs p ON p.id = c.party_org_id ORDER BY p.party_org_id"
                    )
                ).fetchall(),
                columns=["id", "party_org_id"],
            )
            # The ledger's own yes/no: named instructors export with their own kind.
            anonymous = "SELECT organization_id FROM instructors WHERE person_id IS NULL"
            instructed = {r[0] for r in conn.execute(text(anonymous))}
            frame["party_org_id"] = frame["id"].map(links.groupby("id")["party_org_id"].agg(";".join))
            frame["instructor"] = frame["id"].isin(instructed)
    return frame.drop(columns="id")


def export_kind(store: Store, kind_name: str, fmt: str, out: Path) -> int:
    """Write one kind to ``out`` as xlsx, csv, geojson or gpkg; return the number of rows."""
    kind = KINDS[kind_name]
    frame = kind_frame(store, kind_name)
    out = Path(out)
    if fmt in ("geojson", "gpkg"):
        if kind.geometry == "none":
            raise IntakeError(
                f"{kind.zh}没有几何，请导出为 xlsx 或 csv", f"{kind_name} has no geometry: use xlsx or csv"
            )
        frame.to_file(out, driver="GeoJSON" if fmt == "geojson" else "GPKG", engine="pyogrio")
        return len(frame)
    table = _tabular(kind, frame)
    if fmt == "csv":
        to_csv(table, out, encoding="utf-8-sig")
    elif fmt == "xlsx":
        if "几何WKT(wkt)" in table and table["几何WKT(wkt)"].str.len().max() > EXCEL_CELL_LIMIT:
            raise IntakeError(
                "多边形过大，超出 Excel 单元格上限，请导出为 gpkg 或 geojson",
                "polygons too large for an Excel cell: export as gpkg or geojson",
            )
        _write_xlsx(table, out, kind)
    else:
        raise IntakeError(f"不支持的格式 {fmt}", f"unsupported format {fmt}; use {', '.join(FORMATS)}")
    return len(table)


def _tabular(kind: Kind, frame: pd.DataFrame) -> pd.DataFrame:
    table = pd.DataFrame(frame.drop(columns="geometry", errors="ignore"))
    if kind.geometry == "point":
        table["lon"] = shapely.get_x(frame.geometry.values)
        table["lat"] = shapely.get_y(frame.geometry.values)
    elif kind.geometry != "none":
        table["wkt"] = shapely.to_wkt(np.asarray(frame.geometry.values), rounding_precision=-1)
    for column in table.columns:
        if table[column].dtype == bool:
            table[column] = np.where(table[column], "是", "否")
    order = [c.name for c in kind.columns if c.name in table.columns] + (["wkt"] if "wkt" in table else [])
    return table[order].rename(columns=lambda c: header(kind, c))


def _write_xlsx(table: pd.DataFrame, out: Path, kind: Kind) -> None:
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        inert(table).to_excel(writer, sheet_name=kind.zh[:31], index=False)
        sheet = writer.sheets[kind.zh[:31]]
        for i, column in enumerate(table.columns, start=1):
            width = max([len(str(column))] + [len(str(v)) for v in table[column].head(200)]) + 2
            sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(width * 1.6, 60)
        sheet.freeze_panes = "A2"


def write_template(kind_name: str, out: Path) -> None:
    """An empty xlsx to fill in: one sheet with the headers, one documenting every column."""
    kind = KINDS[kind_name]
    names = [c.name for c in kind.columns if not c.computed]
    if kind.geometry in ("polygon", "line", "any"):
        names.append("wkt")
    empty = pd.DataFrame(columns=[header(kind, n) for n in names])
    doc = pd.DataFrame(
        [
            {
                "列 column": header(kind, c.name),
                "必填 required": "是" if c.required else "否",
                "类型 type": {
                    "str": "文本",
                    "int": "整数",
                    "float": "数字",
                    "bool": "是/否",
                    "enum": "取值之一",
                    "credit_code": "18位代码",
                }[c.type],
                "可选值 allowed": "、".join(sorted(set(c.choices.values()))) if c.choices else "",
                "说明 notes": c.doc,
            }
            # What Hongtu fills in itself is no column to fill (docs/columns.md lists it).
            for c in kind.columns
            if not c.computed
        ]
        + (
            [
                {
                    "列 column": "几何WKT(wkt)",
                    "必填 required": "是" if kind.geometry in ("polygon", "line") else "否",
                    "类型 type": "WKT",
                    "可选值 allowed": "",
                    "说明 notes": ("线" if kind.geometry == "line" else "多边形")
                    + "的 WKT 文本；也可导入 GeoJSON / GeoPackage / Shapefile",
                }
            ]
            if kind.geometry in ("polygon", "line", "any")
            else []
        )
    )
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        empty.to_excel(writer, sheet_name="数据", index=False)
        doc.to_excel(writer, sheet_name="说明", index=False)
        for sheet in writer.sheets.values():
            for col in sheet.columns:
                sheet.column_dimensions[col[0].column_letter].width = 22
