"""Write the attack files the security tests upload (run once; the outputs are committed).

Each file is what an attacker would upload through the import page; tests/security/ names
what each must not achieve. The million-vertex polygon is made by its test (40 MB of text).
"""

from __future__ import annotations

import io
import sqlite3
import zipfile
from pathlib import Path

import geopandas as gpd
from shapely.geometry import Point, box

HERE = Path(__file__).resolve().parent
WUHUA = box(102.68, 25.03, 102.72, 25.06)


def _vrt(source: str) -> str:
    layer = source.rsplit("/", 1)[-1].split(".")[0]
    return (
        "<OGRVRTDataSource><OGRVRTLayer name='leak'>"
        f"<SrcDataSource>{source}</SrcDataSource><SrcLayer>{layer}</SrcLayer>"
        "<GeometryType>wkbPoint</GeometryType><LayerSRS>WGS84</LayerSRS>"
        "<OpenOptions><OOI key='HEADERS'>NO</OOI></OpenOptions>"
        "<GeometryField encoding='PointFromColumns' x='field_1' y='field_1'/>"
        "</OGRVRTLayer></OGRVRTDataSource>\n"
    )


def _gpkg(path: Path, extra_sql: str) -> None:
    frame = gpd.GeoDataFrame(
        {"code": ["530102001009"], "name": ["攻击社区"], "level": ["community"], "parent_code": ["530102001"]},
        geometry=[WUHUA],
        crs="EPSG:4326",
    )
    path.unlink(missing_ok=True)
    frame.to_file(path, driver="GPKG", layer="areas", engine="pyogrio")
    with sqlite3.connect(path) as conn:
        conn.executescript(extra_sql)


def _xlsx(sheet_xml: str) -> bytes:
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>",
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
        'Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" '
        'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
        'Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet_xml,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _sheet(doctype: str, cell: str) -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{doctype}'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>org_id</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>name</t></is></c></row>'
        f'<row r="2"><c r="A2" t="inlineStr"><is><t>X1</t></is></c><c r="B2" t="inlineStr"><is><t>{cell}</t></is></c>'
        "</row></sheetData></worksheet>"
    )


def _many_cells(rows: int, columns: int) -> str:
    """A sheet of ``rows`` × ``columns`` identical cells: a few dozen kilobytes zipped, seconds
    to parse per hundred thousand cells."""
    header = "".join(f'<c t="inlineStr"><is><t>c{i}</t></is></c>' for i in range(columns))
    row = "<row>" + '<c t="n"><v>1</v></c>' * columns + "</row>"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        f"<row>{header}</row>{row * rows}</sheetData></worksheet>"
    )


def _bad_crc_zip() -> bytes:
    frame = gpd.GeoDataFrame({"org_id": ["Z1"], "name": ["坏压缩包"]}, geometry=[Point(102.7, 25.04)], crs="EPSG:4326")
    folder = HERE / "_shp"
    folder.mkdir(exist_ok=True)
    frame.to_file(folder / "orgs.shp", engine="pyogrio")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for part in sorted(folder.iterdir()):
            archive.write(part, part.name)
            part.unlink()
    folder.rmdir()
    data = bytearray(buffer.getvalue())
    # Stored (not deflated): flip one byte inside the .dbf's data, leaving its CRC as it was.
    start = data.index(b"Z1")
    data[start] = ord("Y")
    return bytes(data)


def main() -> None:
    (HERE / "vrt_reads_passwd.geojson").write_text(_vrt("CSV:/etc/passwd"))
    (HERE / "vrt_fetches_url.geojson").write_text(_vrt("CSV:/vsicurl/http://127.0.0.1:9/secret.csv"))
    (HERE / "vrt_reads_passwd.gpkg").write_text(_vrt("CSV:/etc/passwd"))
    (HERE / "geojson_crs_link.geojson").write_text(
        '{"type": "FeatureCollection", "crs": {"type": "link", "properties": '
        '{"href": "http://127.0.0.1:9/crs.wkt", "type": "ogcwkt"}}, "features": [{"type": "Feature", '
        '"properties": {"org_id": "L1", "name": "链接"}, '
        '"geometry": {"type": "Point", "coordinates": [102.7, 25.04]}}]}'
    )
    _gpkg(
        HERE / "trigger.gpkg",
        "CREATE TABLE loot (x TEXT); CREATE TRIGGER steal AFTER UPDATE ON areas BEGIN "
        "INSERT INTO loot VALUES (new.name); END;",
    )
    _gpkg(HERE / "view.gpkg", "CREATE VIEW areas_view AS SELECT * FROM areas;")
    _gpkg(HERE / "attributes_only.gpkg", "")
    with sqlite3.connect(HERE / "attributes_only.gpkg") as conn:
        # An aspatial table registered as the only layer: attributes, no geometry column.
        conn.executescript(
            "DELETE FROM gpkg_geometry_columns; DELETE FROM gpkg_contents; DROP TABLE IF EXISTS rtree_areas_geom;"
            "CREATE TABLE plain (fid INTEGER PRIMARY KEY, code TEXT, name TEXT);"
            "INSERT INTO plain VALUES (1, '530102001009', '无几何');"
            "INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES ('plain', 'attributes', 'plain');"
            "DROP TABLE areas;"
        )
    (HERE / "bad_crc.zip").write_bytes(_bad_crc_zip())
    laughs = (
        '<!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
        + "]>"
    )
    (HERE / "billion_laughs.xlsx").write_bytes(_xlsx(_sheet(laughs, "&lol9;")))
    (HERE / "million_cells.xlsx").write_bytes(_xlsx(_many_cells(100_000, 10)))
    (HERE / "external_entity.xlsx").write_bytes(
        _xlsx(_sheet('<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "&xxe;"))
    )


if __name__ == "__main__":
    main()
