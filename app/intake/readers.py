"""Read the files users have — Excel, CSV in any Chinese encoding, GeoJSON, GeoPackage,
Shapefile (also zipped) — into one shape: text attributes plus, for spatial formats, geometry.

Every value is read as text so validation sees exactly what the user typed, and reports
positions the way the user sees them: spreadsheet rows (header = row 1) or feature numbers.
"""

from __future__ import annotations

import io
import json
import pickle
import shutil
import tempfile
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from ..spreadsheets import restore
from . import _xlsx_worker
from .children import run_child
from .issues import IntakeError
from .spatial_file import DRIVERS, read_spatial

TABULAR = (".csv", ".xlsx")
SPATIAL = (*DRIVERS, ".zip")
SUPPORTED = TABULAR + SPATIAL
#: Uncompressed bytes a zipped Shapefile may expand to, and the largest ratio allowed
#: (guards against decompression bombs).
ZIP_MAX_BYTES = 1024**3
ZIP_MAX_RATIO = 200
#: Files a zip may hold: a Shapefile has a handful of parts.
ZIP_MAX_MEMBERS = 100
#: Parts an Excel workbook may hold (a ledger has a few dozen), and the seconds and bytes of
#: address space its parsing may take.
XLSX_MAX_PARTS = 1000
XLSX_SECONDS = 120
XLSX_MEMORY = 3 * 1024**3
XLSX_WORKER = Path(__file__).with_name("_xlsx_worker.py")
#: Parts of a zipped Shapefile that are unpacked; anything else in the zip is left packed.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
#: Zips unpacked at once by one process, and how long another waits for its turn (seconds).
MAX_EXTRACTIONS = 2
EXTRACT_WAIT_SECONDS = 30
_EXTRACTIONS = threading.BoundedSemaphore(MAX_EXTRACTIONS)


#: Encodings a CSV may be read in (as Python names them): the ones Chinese ledgers are saved
#: in. Codecs that turn escapes into characters (unicode_escape…) would let anything through.
TEXT_ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "gbk", "gb2312", "big5", "utf-16", "ascii", "latin-1", "cp1252")


def _codec(name: str) -> str:
    import codecs

    try:
        found = codecs.lookup(name).name
    except LookupError:
        return name
    return {"iso8859-1": "latin-1", "utf-16-le": "utf-16", "utf-16-be": "utf-16"}.get(found, found)


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
    if encoding and _codec(encoding) not in TEXT_ENCODINGS:
        raise IntakeError(
            f"不支持的编码 {encoding[:40]!r}，可用：{'、'.join(TEXT_ENCODINGS)}",
            f"unsupported encoding {encoding[:40]!r}; use one of {', '.join(TEXT_ENCODINGS)}",
        )
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for enc in candidates:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if "\x00" in text:
            raise IntakeError("文件含有 NUL 字符，不是 CSV 文本", "the file holds a NUL character: it is not CSV text")
        return text
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
    """Parse a workbook in a bounded child (:mod:`app.intake._xlsx_worker`), after checking
    that its zip does not expand past what a ledger needs."""
    _check_workbook_zip(path)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sheet.pickle"
        done = run_child(XLSX_WORKER, [str(path), sheet or "", str(out), str(XLSX_MEMORY)], XLSX_SECONDS)
        if done is None:
            raise IntakeError(
                f"解析 Excel 文件超过 {XLSX_SECONDS} 秒，已中止；请删去空白行列或另存为 CSV",
                f"parsing the Excel file took longer than {XLSX_SECONDS} s and was stopped; "
                "delete blank rows and columns or save it as CSV",
            )
        if done.returncode == _xlsx_worker.MISSING_SHEET:
            names = json.loads(done.stdout.decode("utf-8"))
            raise IntakeError(
                f"找不到工作表 {sheet!r}，现有：{'、'.join(names)}",
                f"no sheet named {sheet!r}; the workbook has: {', '.join(names)}",
            )
        if done.returncode != 0:
            reason = done.stderr.decode("utf-8", "replace").strip()[-80:] or f"exit {done.returncode}"
            raise IntakeError(
                f"不是有效的 Excel（.xlsx）文件，可能已损坏或被截断，或含有不安全的 XML（{reason}）",
                f"not a valid Excel (.xlsx) file; it may be damaged, truncated or hold unsafe XML ({reason})",
            )
        with open(out, "rb") as handle:
            # Written by our own worker, as this user: no more trusted or less than this process.
            frame = pickle.load(handle)  # noqa: S301
    return RawTable(_strip(frame), None, first_row=2, file_crs=None)


def _check_workbook_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as book:
            members = book.infolist()
    except (zipfile.BadZipFile, OSError):
        raise IntakeError(
            "不是有效的 Excel（.xlsx）文件，可能已损坏或被截断",
            "not a valid Excel (.xlsx) file; it may be damaged or truncated",
        ) from None
    expanded = sum(m.file_size for m in members)
    if len(members) > XLSX_MAX_PARTS or expanded > ZIP_MAX_BYTES:
        raise IntakeError(
            f"Excel 文件解压后过大（{len(members)} 个部件，{expanded / 1e6:.0f} MB）",
            f"the Excel file expands too far ({len(members)} parts, {expanded / 1e6:.0f} MB)",
        )


def _read_spatial(path: Path) -> RawTable:
    read = read_spatial(path)
    file_crs = None
    if read.crs is not None and read.crs.to_epsg() not in (4326, 4490):
        epsg = read.crs.to_epsg()
        file_crs = f"EPSG:{epsg}" if epsg else read.crs.to_wkt()
    attributes = read.attributes
    for column in attributes.columns:
        attributes[column] = attributes[column].map(_as_text)
    return RawTable(
        # A feature without attributes still has its geometry: no row is dropped as blank.
        _strip(attributes, drop_blank_tail=False),
        read.geometry,
        first_row=1,
        file_crs=file_crs,
        row_label="要素 feature",
    )


def _read_zipped_shapefile(path: Path) -> RawTable:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise IntakeError("不是有效的 zip 文件，可能已损坏", "not a valid zip file; it may be damaged") from None
    with archive:
        members = _shapefile_members(archive)
        if not _EXTRACTIONS.acquire(timeout=EXTRACT_WAIT_SECONDS):
            raise IntakeError(
                "其他导入正在解压文件，请稍后重试", "other imports are unpacking files right now: retry in a minute"
            )
        try:
            with tempfile.TemporaryDirectory() as tmp:
                shp = _extract(archive, members, Path(tmp))
                return _read_spatial(shp)
        finally:
            _EXTRACTIONS.release()


def _shapefile_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The parts of the one Shapefile in ``archive``, checked before a byte is unpacked."""
    if len(archive.infolist()) > ZIP_MAX_MEMBERS:
        raise IntakeError(
            f"zip 中的文件过多（上限 {ZIP_MAX_MEMBERS} 个）",
            f"the zip holds too many files (at most {ZIP_MAX_MEMBERS})",
        )
    total = 0
    for info in archive.infolist():
        name = PurePosixPath(info.filename)
        if name.is_absolute() or ".." in name.parts or ":" in info.filename:
            raise IntakeError(f"zip 中含有不安全的路径 {info.filename!r}", f"unsafe path in zip: {info.filename!r}")
        total += info.file_size
        if total > ZIP_MAX_BYTES or (info.compress_size and info.file_size / info.compress_size > ZIP_MAX_RATIO):
            raise IntakeError(
                f"zip 解压后过大（上限 {ZIP_MAX_BYTES // 1024**2} MB，疑似压缩炸弹）",
                f"the zip expands too much (the limit is {ZIP_MAX_BYTES // 1024**2} MB; a decompression bomb?)",
            )
    shapefiles = [i for i in archive.infolist() if i.filename.lower().endswith(".shp") and not i.is_dir()]
    if len(shapefiles) != 1:
        raise IntakeError(
            f"zip 中应恰有一个 .shp 文件，实际 {len(shapefiles)} 个",
            f"the zip must hold exactly one .shp file, it holds {len(shapefiles)}",
        )
    stem = shapefiles[0].filename[:-4]
    return [i for i in archive.infolist() if i.filename[: len(stem)] == stem and _is_part(i.filename[len(stem) :])]


def _is_part(suffix: str) -> bool:
    return suffix.lower() in SHAPEFILE_PARTS


def _extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], folder: Path) -> Path:
    """Unpack the Shapefile's parts flat into ``folder`` under fixed names; answers the .shp.

    The declared sizes were checked; ``ZipFile.open`` never yields more than a member declares,
    and a damaged member (bad CRC, truncated) is reported instead of half-written."""
    shp = folder / "upload.shp"
    for info in members:
        target = folder / f"upload{info.filename[-4:].lower()}"
        try:
            with archive.open(info) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink, 1024 * 1024)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise IntakeError(
                f"zip 中的 {info.filename!r} 已损坏（{exc}）", f"{info.filename!r} in the zip is damaged ({exc})"
            ) from None
    return shp


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
        stripped = restore(list(map(str.strip, values)))
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
