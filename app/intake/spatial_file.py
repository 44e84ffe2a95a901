"""Open an uploaded GeoJSON, GeoPackage or Shapefile as that format and nothing else.

GDAL left to itself picks a driver by content, and some of its drivers read other files or
URLs (an OGR VRT named ``ledger.geojson`` can show ``/etc/passwd`` or fetch a URL). So each
extension has its one driver, the content is checked to be that format before GDAL sees it,
and GDAL runs in a child process (:mod:`app.intake._gdal_worker`) where every other driver is
skipped, network access goes to a closed port, and time and memory are bounded.
"""

from __future__ import annotations

import os
import pickle
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely

from .children import run_child
from .issues import IntakeError

#: The one GDAL driver each spatial extension is opened with.
DRIVERS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".gpkg": "GPKG", ".shp": "ESRI Shapefile"}
#: Seconds and bytes of address space a read may take.
READ_SECONDS = 120
READ_MEMORY = 3 * 1024**3
#: Encodings a Shapefile's .cpg may name (the spellings GDAL and Esri write), as Python codecs.
CPG_ENCODINGS = {
    "utf-8": "UTF-8",
    "utf8": "UTF-8",
    "65001": "UTF-8",
    "gbk": "GBK",
    "cp936": "GBK",
    "936": "GBK",
    "gb2312": "GBK",
    "gb18030": "GB18030",
    "54936": "GB18030",
    "big5": "BIG5",
    "950": "BIG5",
    "ascii": "ASCII",
    "us-ascii": "ASCII",
    "latin1": "ISO-8859-1",
    "iso-8859-1": "ISO-8859-1",
    "1252": "CP1252",
    "cp1252": "CP1252",
}
#: Largest .prj or .cpg accepted, in bytes (real ones are well under 2 KB).
SIDECAR_MAX_BYTES = 16 * 1024
WORKER = Path(__file__).with_name("_gdal_worker.py")
_SHP_MAGIC = (9994).to_bytes(4, "big")
_GPKG_APPLICATION_IDS = {b"GPKG", b"GP10", b"GP11"}
#: Virtual-table modules a GeoPackage may hold: its spatial index.
_GPKG_VIRTUAL_MODULES = ("rtree",)


@dataclass
class SpatialRead:
    """What GDAL read: attribute columns (as given), geometries, and the declared CRS."""

    attributes: pd.DataFrame
    geometry: np.ndarray
    crs: pyproj.CRS | None


def read_spatial(path: Path) -> SpatialRead:
    """Read ``path`` with the one driver of its extension, in a bounded child process.

    Raises
    ------
    IntakeError
        When the content is not the format its extension says, or GDAL cannot read it in time.
    """
    path = Path(path)
    driver = DRIVERS[path.suffix.lower()]
    encoding = ""
    if driver == "GeoJSON":
        _check_geojson(path)
    elif driver == "GPKG":
        _check_geopackage(path)
    else:
        _check_shapefile(path)
        encoding = _shapefile_encoding(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "read.pickle"
        done = run_child(
            WORKER, [str(path), driver, encoding, str(out), str(READ_MEMORY)], READ_SECONDS, env=_worker_env(driver)
        )
        if done is None:
            raise IntakeError(
                f"读取空间数据文件超过 {READ_SECONDS} 秒，已中止",
                f"reading the spatial file took longer than {READ_SECONDS} s and was stopped",
            )
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = message[-1][:300] if message else f"exit status {done.returncode}"
            raise IntakeError(
                f"无法读取空间数据文件，可能已损坏或格式不符：{reason}",
                f"cannot read the spatial file; it may be damaged or not what its extension says: {reason}",
            )
        with open(out, "rb") as handle:
            # Written by our own worker, as this user: no more trusted or less than this process.
            result = pickle.load(handle)  # noqa: S301
    attributes = pd.DataFrame(dict(zip(result["columns"], result["fields"], strict=True)))
    geometry = shapely.from_wkb(result["geometry"]) if result["geometry"] is not None else None
    if geometry is None:
        raise IntakeError(
            "空间数据文件没有几何列（只有属性）",
            "the spatial file has no geometry column (attributes only)",
        )
    return SpatialRead(attributes, geometry, _crs(result["crs"]))


@cache
def _other_drivers() -> tuple[str, ...]:
    import pyogrio

    return tuple(sorted(pyogrio.list_drivers()))


def _worker_env(driver: str) -> dict[str, str]:
    """The child's environment: only ``driver`` registered, and no way out to the network."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith(("GDAL_", "CPL_"))}
    closed = "http://127.0.0.1:9"
    env.update(
        GDAL_SKIP=",".join(d for d in _other_drivers() if d != driver),
        # Anything that still reaches for a URL (a GeoJSON "crs" link, /vsicurl/) meets a closed port.
        GDAL_HTTP_PROXY=closed,
        GDAL_HTTPS_PROXY=closed,
        http_proxy=closed,
        https_proxy=closed,
        all_proxy=closed,
        GDAL_HTTP_TIMEOUT="1",
        GDAL_HTTP_MAX_RETRY="0",
        CPL_VSIL_CURL_ALLOWED_EXTENSIONS=".hongtu-no-remote-files",
        GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR" if driver == "GeoJSON" else "FALSE",
        PROJ_NETWORK="OFF",
    )
    return env


def _not_format(name: str, en: str) -> IntakeError:
    return IntakeError(f"文件内容不是 {name} 格式", f"the file's content is not {en}")


def _head(path: Path, size: int = 4096) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def _check_geojson(path: Path) -> None:
    head = _head(path).lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        raise _not_format("GeoJSON", "GeoJSON (a JSON object)")


def _check_shapefile(path: Path) -> None:
    if _head(path, 4) != _SHP_MAGIC:
        raise _not_format("Shapefile", "a Shapefile (.shp)")
    prj = path.with_suffix(".prj")
    if prj.exists():
        text = _sidecar_text(prj)
        try:
            pyproj.CRS.from_wkt(text)
        except pyproj.exceptions.CRSError:
            raise IntakeError(
                "Shapefile 的 .prj 不是有效的坐标系定义（WKT）",
                "the Shapefile's .prj is not a valid coordinate system definition (WKT)",
            ) from None


def _shapefile_encoding(path: Path) -> str:
    """The encoding named by the .cpg (empty: GDAL's default, the .dbf's language id)."""
    cpg = path.with_suffix(".cpg")
    if not cpg.exists():
        return ""
    name = _sidecar_text(cpg).strip().lower()
    if name not in CPG_ENCODINGS:
        raise IntakeError(
            f"Shapefile 的 .cpg 指定了不支持的编码 {name[:40]!r}",
            f"the Shapefile's .cpg names an unsupported encoding {name[:40]!r}",
        )
    return CPG_ENCODINGS[name]


def _sidecar_text(path: Path) -> str:
    """A .prj or .cpg as text: its content, never a path or URL to follow."""
    if path.is_symlink() or not path.is_file() or path.stat().st_size > SIDECAR_MAX_BYTES:
        raise IntakeError(f"Shapefile 的 {path.suffix} 文件无效", f"the Shapefile's {path.suffix} file is not valid")
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IntakeError(
            f"Shapefile 的 {path.suffix} 不是文本", f"the Shapefile's {path.suffix} is not text"
        ) from None


def _check_geopackage(path: Path) -> None:
    """A real GeoPackage: SQLite with a GeoPackage application id, no views, no triggers but
    the standard's own (metadata checks, spatial-index upkeep), no virtual tables but R*Trees."""
    head = _head(path, 100)
    if not head.startswith(b"SQLite format 3\x00") or head[68:72] not in _GPKG_APPLICATION_IDS:
        raise _not_format("GeoPackage", "a GeoPackage")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
        try:
            # Reading sqlite_master runs no SQL of the file's.
            rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise IntakeError(f"GeoPackage 已损坏：{exc}", f"the GeoPackage is damaged: {exc}") from None
    virtual = {n for kind, n, _t, sql in rows if kind == "table" and (sql or "").upper().startswith("CREATE VIRTUAL")}
    for kind, name, table, sql in rows:
        text = (sql or "").upper()
        if kind == "view":
            raise IntakeError(
                f"GeoPackage 含有视图 {name!r}，不予读取", f"the GeoPackage holds a view {name!r}; refused"
            )
        if kind == "table" and name in virtual and not _rtree(text):
            raise IntakeError(
                f"GeoPackage 含有虚拟表 {name!r}，不予读取", f"the GeoPackage holds a virtual table {name!r}; refused"
            )
        if kind == "trigger" and not (_metadata_trigger(name, table) or _index_trigger(name, table, rows)):
            raise IntakeError(
                f"GeoPackage 含有触发器 {name!r}，不予读取", f"the GeoPackage holds a trigger {name!r}; refused"
            )


_VIRTUAL = re.compile(r'\s*CREATE\s+VIRTUAL\s+TABLE\s+(?:"[^"]*"|\S+)\s+USING\s+(\w+)', re.IGNORECASE)


def _rtree(sql: str) -> bool:
    """Whether ``sql`` creates a virtual table of an allowed module (the module right after
    USING, not a word anywhere: a comment may say anything)."""
    found = _VIRTUAL.match(sql)
    return found is not None and found.group(1).lower() in _GPKG_VIRTUAL_MODULES


def _metadata_trigger(name: str, table: str) -> bool:
    """Whether ``name`` is one of the GeoPackage standard's checks on its own metadata tables,
    or the feature count GDAL keeps for a table (``gpkg_ogr_contents``)."""
    counts = (f"trigger_insert_feature_count_{table}", f"trigger_delete_feature_count_{table}")
    return (name.startswith("gpkg_") and table.startswith("gpkg_")) or name in counts


def _index_trigger(name: str, table: str, rows: list) -> bool:
    """Whether ``name`` is a spatial-index trigger GDAL writes (``rtree_<table>_<column>_…``)
    on a feature table with that R*Tree."""
    tables = {r[1] for r in rows if r[0] == "table"}
    return name.startswith(f"rtree_{table}_") and any(
        t.startswith(f"rtree_{table}_") and name.startswith(t) for t in tables
    )


def _crs(value: str | None) -> pyproj.CRS | None:
    if not value:
        return None
    if value.upper().startswith("EPSG:") and value[5:].isdigit():
        return pyproj.CRS.from_epsg(int(value[5:]))
    try:
        return pyproj.CRS.from_wkt(value)
    except pyproj.exceptions.CRSError:
        raise IntakeError("文件的坐标系定义无效", "the file's coordinate system definition is not valid") from None
