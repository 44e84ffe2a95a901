"""Read the files users have — Excel, CSV in any Chinese encoding, GeoJSON, GeoPackage,
Shapefile (also zipped) — into one shape: text attributes plus, for spatial formats, geometry.

Every value is read as text so validation sees exactly what the user typed, and reports
positions the way the user sees them: spreadsheet rows (header = row 1) or feature numbers.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from .issues import IntakeError

TABULAR = (".csv", ".xlsx")
SPATIAL = (".geojson", ".json", ".gpkg", ".shp", ".zip")
SUPPORTED = TABULAR + SPATIAL
#: Uncompressed bytes a zipped Shapefile may expand to, and the largest ratio allowed
#: (guards against decompression bombs).
ZIP_MAX_BYTES = 2 * 1024**3
ZIP_MAX_RATIO = 200


@dataclass
class RawTable:
    """A file as read: text columns, optional geometry, and how rows are numbered for the user."""

    frame: pd.DataFrame
    geometry: np.ndarray | None
    first_row: int
    #: "EPSG:n" when the file declares a projected or non-WGS-84 CRS, else None.
    file_crs: str | None
    row_label: str = "行 row"


def read_table(
    path: Path, sheet: str | None = None, encoding: str | None = None, max_bytes: int | None = None
) -> RawTable:
    """Read ``path`` by its extension.

    Raises
    ------
    IntakeError
        For an empty, oversize, damaged or unsupported file, naming the problem in Chinese and English.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise IntakeError(
            f"不支持的文件类型 {suffix or '（无扩展名）'}，支持 {' '.join(SUPPORTED)}",
            f"unsupported file type {suffix or '(none)'}; use one of {' '.join(SUPPORTED)}",
        )
    size = path.stat().st_size
    if size == 0:
        raise IntakeError("文件为空", "the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise IntakeError(
            f"文件过大（{size / 1e6:.1f} MB，上限 {max_bytes / 1e6:.0f} MB）",
            f"file too large ({size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB)",
        )
    if suffix == ".csv":
        raw = _read_csv(path, encoding)
    elif suffix == ".xlsx":
        raw = _read_xlsx(path, sheet)
    elif suffix == ".zip":
        raw = _read_zipped_shapefile(path)
    else:
        raw = _read_spatial(path)
    if raw.frame.empty:
        raise IntakeError("文件没有数据行（只有表头或为空）", "the file has no data rows (header only or empty)")
    return raw


def _decode(data: bytes, encoding: str | None) -> str:
    if b"\x00" in data[:8192]:
        raise IntakeError("文件内容是二进制数据，不是 CSV 文本", "the file holds binary data, not CSV text")
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in candidates:
        try:
            return data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
    raise IntakeError(
        f"无法按 {'/'.join(candidates)} 解码文件，请用 --encoding 指定编码",
        f"cannot decode the file as {'/'.join(candidates)}; give its encoding with --encoding",
    )


def _read_csv(path: Path, encoding: str | None) -> RawTable:
    # GB18030 is a superset of GBK and GB2312, so one attempt covers the ledgers Excel saves.
    text = _decode(path.read_bytes(), encoding)
    try:
        # Every cell as the text it is (no NA detection: empty is checked per column later).
        # The parser gets UTF-8 bytes: given text, pandas encodes it back in chunks, and that
        # took 9.5 of the 14 s it spent reading 1M organizations (3.4 s now).
        frame = pd.read_csv(
            io.BytesIO(text.encode("utf-8")), encoding="utf-8", dtype=str, na_filter=False, skipinitialspace=True
        )
    except pd.errors.EmptyDataError:
        raise IntakeError("文件为空", "the file is empty") from None
    except pd.errors.ParserError as exc:
        raise IntakeError(f"CSV 格式错误：{exc}", f"malformed CSV: {exc}") from None
    return RawTable(_strip(frame), None, first_row=2, file_crs=None)


def _read_xlsx(path: Path, sheet: str | None) -> RawTable:
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except Exception as exc:  # openpyxl raises zip, XML and key errors for damaged files
        raise IntakeError(
            f"不是有效的 Excel（.xlsx）文件，可能已损坏或被截断（{type(exc).__name__}）",
            f"not a valid Excel (.xlsx) file; it may be damaged or truncated ({type(exc).__name__})",
        ) from None
    if sheet is not None and sheet not in book.sheet_names:
        raise IntakeError(
            f"找不到工作表 {sheet!r}，现有：{'、'.join(book.sheet_names)}",
            f"no sheet named {sheet!r}; the workbook has: {', '.join(book.sheet_names)}",
        )
    with book:
        frame = pd.read_excel(book, sheet_name=sheet if sheet is not None else 0, dtype=str, keep_default_na=False)
    return RawTable(_strip(frame), None, first_row=2, file_crs=None)


def _read_spatial(path: Path) -> RawTable:
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(path)
    except Exception as exc:  # GDAL reports damage in many ways
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IntakeError(
            f"无法读取空间数据文件，可能已损坏或格式不符：{message}",
            f"cannot read the spatial file; it may be damaged or not what its extension says: {message}",
        ) from None
    file_crs = None
    if gdf.crs is not None and gdf.crs.to_epsg() not in (4326, 4490):
        epsg = gdf.crs.to_epsg()
        file_crs = f"EPSG:{epsg}" if epsg else gdf.crs.to_wkt()
    attributes = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    for column in attributes.columns:
        attributes[column] = attributes[column].map(_as_text)
    return RawTable(
        # A feature without attributes still has its geometry: no row is dropped as blank.
        _strip(attributes, drop_blank_tail=False),
        np.asarray(gdf.geometry.values),
        first_row=1,
        file_crs=file_crs,
        row_label="要素 feature",
    )


def _read_zipped_shapefile(path: Path) -> RawTable:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise IntakeError("不是有效的 zip 文件，可能已损坏", "not a valid zip file; it may be damaged") from None
    with archive, tempfile.TemporaryDirectory() as tmp:
        total = 0
        for info in archive.infolist():
            name = PurePosixPath(info.filename)
            if name.is_absolute() or ".." in name.parts or ":" in info.filename:
                raise IntakeError(f"zip 中含有不安全的路径 {info.filename!r}", f"unsafe path in zip: {info.filename!r}")
            total += info.file_size
            if total > ZIP_MAX_BYTES or (info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO):
                raise IntakeError("zip 解压后过大（疑似压缩炸弹）", "zip expands too much (a decompression bomb?)")
        shapefiles = [n for n in archive.namelist() if n.lower().endswith(".shp")]
        if len(shapefiles) != 1:
            raise IntakeError(
                f"zip 中应恰有一个 .shp 文件，实际 {len(shapefiles)} 个",
                f"the zip must hold exactly one .shp file, it holds {len(shapefiles)}",
            )
        archive.extractall(tmp)
        return _read_spatial(Path(tmp) / shapefiles[0])


def _as_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _strip(frame: pd.DataFrame, drop_blank_tail: bool = True) -> pd.DataFrame:
    frame = frame.copy()
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in frame.columns:
        values = frame[column].astype(str).to_numpy(dtype=object).tolist()
        stripped = list(map(str.strip, values))
        # Most columns hold no cell with spaces at either end: storing them again as a
        # column cost a third of reading the file.
        if stripped != values or not isinstance(frame[column].dtype, pd.StringDtype):
            frame[column] = stripped
    # Spreadsheets often carry trailing blank rows; they are not data. Looked for only when
    # the last row is blank: comparing every cell of a 100,000-row file cost 0.1 s.
    last = len(frame)
    if drop_blank_tail and last and (frame.iloc[-1] == "").all():
        blank = (frame == "").all(axis=1).to_numpy()
        last = last - int(np.argmax(~blank[::-1])) if (~blank).any() else 0
    return frame.iloc[:last].reset_index(drop=True)
