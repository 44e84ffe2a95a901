"""Validate a file's rows against its kind, all rows at once, before anything is written.

Every check works on whole columns (pandas/numpy/shapely masks); Python only loops over the
rows that fail, to phrase their messages. Coordinates end in WGS-84.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyproj
import shapely

from geo import crs as geocrs
from geo.codes import valid_credit_codes
from geo.shapes import as_multipolygons
from geo.vocabulary import AREA_CODE_LENGTHS

from .issues import Issue
from .locate import Gazetteer, locate, resolve_areas
from .normalize import normalized
from .readers import RawTable
from .repair import REPAIR_SECONDS, repaired
from .schema import YES_NO, Column, Kind, header_map

#: Where coordinates may lie when no areas are loaded yet (mainland China, generously).
CHINA_BOX = (73.0, 3.0, 136.0, 54.0)
#: Vertices one geometry, and one file, may hold: a boundary drawn at survey detail has tens
#: of thousands; beyond these, validating and repairing it would tie up a worker for minutes.
MAX_VERTICES = 250_000
MAX_FILE_VERTICES = 5_000_000
#: How far (degrees, ≈ 10 m) a jurisdiction-bound user's rows may reach over its boundary.
JURISDICTION_TOLERANCE = 1e-4
#: How far outside the loaded areas' extent a point may lie, in degrees (≈ 5 km).
EXTENT_MARGIN = 0.05
#: Cells of a column that are all plain counts (or empty), joined by line breaks.
_PLAIN_COUNTS = re.compile(r"[0-9]{0,9}(?:\n[0-9]{0,9})*")
#: Largest count a ledger may give (people, members): beyond it a value is a typing error.
MAX_COUNT = 10**8
_LIST_SEPARATORS = re.compile(r"(?:[;；,，、]\s*)+")
_PARENT_LEVEL = {"street": "district", "community": "street", "grid": "community"}


@dataclass
class Context:
    """What the store already holds that a file may refer to."""

    area_codes: set[str] = field(default_factory=set)
    party_org_ids: set[str] = field(default_factory=set)
    #: Bounding box (WGS-84) of the loaded areas, or None when there are none.
    extent: tuple[float, float, float, float] | None = None
    #: The importing user's jurisdiction (area code and polygon); None for the whole city.
    jurisdiction: tuple[str, object] | None = None
    #: Ids of the kind already stored outside the jurisdiction: a file may not change them.
    foreign_ids: set[str] = field(default_factory=set)
    #: Reads the stored places and areas that rows without coordinates are placed by (locatable
    #: kinds); called only for a file that has such rows or names communities or streets.
    gazetteer: Callable[[], Gazetteer] | None = None
    #: Asks an online geocoder for addresses (``app.intake.locate.locate``'s ``geocode``).
    geocode: Callable[[pd.Series], pd.DataFrame] | None = None
    #: The stored organizations' ids (read for the kinds that refer to them: instructors).
    org_ids: set[str] = field(default_factory=set)


@dataclass
class Validated:
    """Typed canonical columns, WGS-84 geometry, what was wrong, and which columns the file had."""

    frame: pd.DataFrame
    geometry: np.ndarray | None
    issues: list[Issue]
    present: set[str]
    source_crs: str
    #: How the file's first data row is numbered for the user.
    first_row: int = 1

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]


class _Issues:
    def __init__(self, first_row: int):
        self.first_row = first_row
        # Problems with columns belong to the header row of a spreadsheet; spatial files have none.
        self.header_row = first_row - 1 if first_row > 1 else None
        self.items: list[Issue] = []

    def add(self, mask, column: str, values, zh, en, severity: str = "error") -> None:
        """Record an issue for every row where ``mask`` is true; ``zh``/``en`` may be per-row
        arrays, ``values`` a function giving them (called only when a row is flagged)."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if not len(rows):
            return
        values = np.asarray(values() if callable(values) else values, dtype=object)
        for i in rows:
            self.items.append(
                Issue(
                    int(i) + self.first_row,
                    column,
                    "" if values[i] is None else str(values[i]),
                    zh if isinstance(zh, str) else str(zh[i]),
                    en if isinstance(en, str) else str(en[i]),
                    severity,
                )
            )

    def file(self, column: str, zh: str, en: str, severity: str = "error") -> None:
        self.items.append(Issue(self.header_row, column, "", zh, en, severity))


def validate(
    kind: Kind, raw: RawTable, crs: str = "wgs84", context: Context | None = None, fix_swapped: bool = False
) -> Validated:
    """Check every row of ``raw`` as ``kind``; return typed values and all issues found."""
    context = context or Context()
    issues = _Issues(raw.first_row)
    mapping = header_map(kind, list(raw.frame.columns))
    frame = raw.frame.rename(columns=mapping)[list(mapping.values())]
    for header in raw.frame.columns:
        if header not in mapping:
            issues.file(header, "未识别的列，已忽略", "unknown column, ignored", "warning")
    source_crs = _effective_crs(crs, raw.file_crs)
    has_xy = {"lon", "lat"} <= set(frame.columns)
    has_geometry = raw.geometry is not None or "wkt" in frame.columns
    missing = [c.name for c in kind.columns if c.required and c.name not in frame.columns]
    half = sorted({"lon", "lat"} - set(frame.columns)) if {"lon", "lat"} & set(frame.columns) else []
    if half and not has_geometry and kind.geometry in ("point", "any"):
        # One of the pair alone places nothing: name the other, whatever else the file has.
        missing += half
    elif kind.geometry == "point" and not (has_xy or has_geometry or kind.locatable):
        missing.append("lon/lat")
    elif kind.geometry == "any" and not (has_xy or has_geometry):
        missing.append("wkt 或 lon/lat")
    if kind.geometry in ("polygon", "line") and not has_geometry:
        missing.append("wkt")
    for name in missing:
        issues.file(name, "缺少必需的列", "required column is missing")
    n = len(frame)
    out = pd.DataFrame(index=range(n))
    # The columns present are checked even when one is missing: every problem at once.
    for column in kind.columns:
        if column.name in ("lon", "lat") or column.computed:
            continue
        if column.name in frame.columns:
            out[column.name] = _parse(column, frame[column.name], issues)
        else:
            out[column.name] = column.default
    if missing:
        return Validated(out, None, by_row(issues.items), set(frame.columns), source_crs, raw.first_row)

    ids = frame[kind.id_column]
    duplicated = (ids.duplicated(keep="first") & (ids != "")).to_numpy()
    if duplicated.any():
        first_seen = ids.drop_duplicates(keep="first")
        row_of = pd.Series(first_seen.index.to_numpy() + raw.first_row, index=first_seen.to_numpy())
        first_row = ids[duplicated].map(row_of)
        issues.add(
            duplicated,
            kind.id_column,
            ids,
            _full(n, duplicated, [f"编号重复（首次出现在第 {r} 行）" for r in first_row]),
            _full(n, duplicated, [f"duplicate id (first seen in row {r})" for r in first_row]),
        )

    geometry = None
    present = set(frame.columns) - {"lon", "lat", "wkt"}
    if kind.geometry != "none":
        geometry, placed, column, unplaced = _geometry(kind, frame, raw, source_crs, context, fix_swapped, issues)
        if kind.locatable:
            placed |= _locate_rows(out, geometry, unplaced, context, issues)
            present |= {c.name for c in kind.columns if c.computed}
        if context.jurisdiction is not None:
            _inside_jurisdiction(kind, frame, geometry, placed, column, context.jurisdiction, issues)
    _references(kind, out, frame, context, issues)
    if kind.name == "orgs":
        _duplicates(out, issues)
    if context.jurisdiction is not None:
        _jurisdiction(kind, out, ids, context, issues)
    out["source_crs"] = source_crs
    return Validated(out, geometry, by_row(issues.items), present, source_crs, raw.first_row)


#: What makes two organizations probably one: the column a warning names, and its words.
_DUPLICATE_KEYS = {
    "credit_code": ("统一社会信用代码相同", "same credit code"),
    "name": ("名称和地址相同", "same name and address"),
}


def _duplicate_key(frame: pd.DataFrame, column: str) -> pd.Series:
    if column == "credit_code":
        return frame["credit_code"].fillna("").astype(str).reset_index(drop=True)
    return _name_at_address(frame)


def _duplicates(out: pd.DataFrame, issues: _Issues) -> None:
    """Warn of rows with the same credit code, or the same normalised name at the same
    normalised address, as an earlier row of the file. Warnings only: two units may share a
    building, and spellings differ."""
    n = len(out)
    for column, (zh, en) in _DUPLICATE_KEYS.items():
        key = _duplicate_key(out, column)
        first = pd.Series(np.arange(n), index=key).groupby(level=0).transform("min").to_numpy()
        again = (key != "").to_numpy() & (first != np.arange(n))
        rows = first + issues.first_row
        issues.add(
            again,
            column,
            out[column],
            _full(n, again, [f"疑似重复：与第 {r} 行{zh}" for r in rows[again]]),
            _full(n, again, [f"probable duplicate of row {r}: {en}" for r in rows[again]]),
            "warning",
        )


def stored_duplicates(checked: Validated, stored: pd.DataFrame) -> list[Issue]:
    """Warnings for rows that probably duplicate a stored organization of another id
    (``stored``: ``org_id`` and those of ``name``, ``address``, ``credit_code`` the file has)."""
    out = checked.frame
    issues = _Issues(checked.first_row)
    stored = stored[~stored["org_id"].isin(out["org_id"])]
    for column, (zh, en) in _DUPLICATE_KEYS.items():
        needed = ["credit_code"] if column == "credit_code" else ["name", "address"]
        if stored.empty or not set(needed) <= set(stored.columns) & checked.present:
            continue
        # Keyed together: an address is "shared" when a stored row has it too.
        both = pd.concat([out[["org_id", *needed]], stored[["org_id", *needed]]], ignore_index=True)
        keys = _duplicate_key(both, column)
        key, stored_key = keys.iloc[: len(out)].reset_index(drop=True), keys.iloc[len(out) :]
        owner = pd.Series(both["org_id"].iloc[len(out) :].to_numpy(), index=stored_key.to_numpy())
        owner = owner[(owner.index != "") & ~owner.index.duplicated()]
        match = key.map(owner)
        found = (key != "").to_numpy() & match.notna().to_numpy()
        issues.add(
            found,
            column,
            out[column],
            _full(len(out), found, [f"疑似重复：与已有组织 {o} {zh}" for o in match[found]]),
            _full(len(out), found, [f"probable duplicate of stored organization {o}: {en}" for o in match[found]]),
            "warning",
        )
    return issues.items


def _name_at_address(frame: pd.DataFrame) -> pd.Series:
    """The normalised address and name as one key, for rows whose address is shared with another
    row of ``frame`` ('' for the others: they cannot be a duplicate by name and address).
    Names are normalised only for those rows, and each distinct address once."""
    codes, distinct = pd.factorize(frame["address"].fillna("").to_numpy(dtype=object))
    address = normalized(pd.Series(distinct, dtype=object)).to_numpy(dtype=object)[codes]
    name = frame["name"].fillna("").to_numpy(dtype=object)
    shared = pd.Series(address).duplicated(keep=False).to_numpy() & (address != "") & (name != "")
    key = np.full(len(frame), "", dtype=object)
    key[shared] = address[shared] + "@" + normalized(pd.Series(name[shared], dtype=object)).to_numpy(dtype=object)
    return pd.Series(key)


def warn_rows(checked: Validated, mask: np.ndarray, column: str, zh: str, en: str) -> list[Issue]:
    """Warnings for the rows of ``mask`` of a checked file, found after its check (as it is
    written); the value shown is the file's, when the column is one it kept."""
    issues = _Issues(checked.first_row)
    values = checked.frame[column] if column in checked.frame else np.full(len(checked.frame), "")
    issues.add(mask, column, values, zh, en, "warning")
    return issues.items


def by_row(items: list[Issue]) -> list[Issue]:
    """Problems of the file as a whole first, then by row, each row's in the order found."""
    return sorted(items, key=lambda i: (i.row is not None, i.row or 0))


def _jurisdiction(kind: Kind, out: pd.DataFrame, ids: pd.Series, context: Context, issues: _Issues) -> None:
    """Rows a jurisdiction-bound user may not write: ids stored outside it, areas not under it."""
    issues.add(
        ids.isin(context.foreign_ids),
        kind.id_column,
        ids,
        "该编号属于管辖范围外的记录",
        "this id belongs to a record outside your jurisdiction",
    )
    if kind.name == "areas":
        code = context.jurisdiction[0]
        issues.add(
            ~out["code"].fillna("").str.startswith(code),
            "code",
            out["code"],
            "不在您的管辖范围内",
            "outside your jurisdiction",
        )


def _effective_crs(crs: str, file_crs: str | None) -> str:
    # A CRS the file itself declares (a .prj, a GeoPackage SRS) wins: AMap/Baidu offsets are
    # never declared in files, so a declared CRS is the true one.
    return file_crs if file_crs else geocrs.canonical_crs(crs)


def _parse(column: Column, values: pd.Series, issues: _Issues) -> pd.Series:
    empty = values == ""
    if column.required:
        issues.add(empty, column.name, values, "必填项为空", "required value is empty")
    if column.type == "str":
        return values.where(~empty, None)
    if column.type == "credit_code":
        codes = values.str.upper()
        bad = ~empty & ~valid_credit_codes(codes.to_numpy())
        issues.add(
            bad,
            column.name,
            values,
            "统一社会信用代码格式或校验位错误（GB 32100-2015）",
            "credit code malformed or its check character is wrong (GB 32100-2015)",
        )
        return codes.where(~empty, None)
    if column.type == "int":
        text = values.tolist()
        # Counts as people type them, plain digits, are read by int() itself: pandas' general
        # number parser below cost 0.1 s a column for 100,000 rows, this a fifth of it.
        if _PLAIN_COUNTS.fullmatch("\n".join(text)):
            try:
                parsed = np.fromiter((int(t) if t else column.default or 0 for t in text), np.int64, len(text))
            except ValueError:  # a cell with a line break of its own: the general path reports it
                pass
            else:
                return pd.Series(parsed, index=values.index)
        number = pd.to_numeric(values.str.replace(",", "", regex=False), errors="coerce")
        bad = ~empty & (number.isna() | (number % 1 != 0) | (number < 0) | (number > MAX_COUNT))
        issues.add(bad, column.name, values, "不是有效的非负整数", "not a whole non-negative number")
        return number.where(~empty & ~bad, column.default or 0).astype("int64")
    if column.type == "bool":
        mapped = _lookup(values, YES_NO)
        bad = ~empty & mapped.isna()
        issues.add(bad, column.name, values, "应为 是/否", "expected yes/no (是/否)")
        return mapped.where(~empty & ~bad, column.default).astype(bool)
    if column.type == "enum":
        mapped = _lookup(values, {k.lower(): v for k, v in column.choices.items()})
        bad = ~empty & mapped.isna()
        if bad.any():
            allowed = sorted(set(column.choices.values()))
            hints = values[bad].map(lambda v: difflib.get_close_matches(v, list(column.choices), n=1, cutoff=0.3))
            suggestion = pd.Series("", index=values.index)
            suggestion[bad] = hints.map(lambda h: column.choices[h[0]] if h else "")
            zh = suggestion.map(lambda s: f"未知取值{'，是否为 ' + s + '？' if s else ''}可选：{'、'.join(allowed)}")
            en = suggestion.map(
                lambda s: f"unknown value{'; did you mean ' + s + '?' if s else ''} allowed: {', '.join(allowed)}"
            )
            issues.add(bad, column.name, values, zh.to_numpy(), en.to_numpy())
        return mapped.where(~bad, None)
    if column.type == "date":
        # As ledgers write them: 2026-03-01, 2026/3/1, 2026.3.1, 20260301, 2026年3月1日, or
        # an Excel date cell (read as 2026-03-01 00:00:00).
        spelled = values.str.replace(r"[年月./]", "-", regex=True).str.replace("日", "", regex=False)
        spelled = spelled.str.replace(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", regex=True).str.split(" ").str[0]
        parsed = pd.to_datetime(spelled, format="%Y-%m-%d", errors="coerce")
        bad = ~empty & (parsed.isna() | (parsed.dt.year < 1949) | (parsed.dt.year > 2100))
        issues.add(bad, column.name, values, "不是有效日期（如 2026-03-01）", "not a valid date (e.g. 2026-03-01)")
        return parsed.dt.strftime("%Y-%m-%d").where(~empty & ~bad, None)
    raise ValueError(f"unknown column type {column.type}")


def _lookup(values: pd.Series, lowercase_keys: dict) -> pd.Series:
    """``values`` looked up case-insensitively in a dict with lower-case keys (NaN where absent)."""
    # A handful of distinct spellings per column: each is looked up once, not once per row
    # ("True" in every row lower-cased 100,000 times cost 50 ms a column).
    codes, spellings = pd.factorize(values.to_numpy(dtype=object))
    found = [lowercase_keys.get(s, lowercase_keys.get(s.lower(), np.nan)) for s in spellings]
    return pd.Series(np.asarray(found + [np.nan], dtype=object)[codes], index=values.index)


def _geometry(kind, frame, raw, source_crs, context, fix_swapped, issues) -> np.ndarray:
    n = len(frame)
    blank = np.full(n, "")
    if raw.geometry is not None:
        geoms = np.asarray(raw.geometry, dtype=object).copy()
        column = "geometry"
    elif "wkt" in frame.columns:
        geoms = shapely.from_wkt(frame["wkt"].where(frame["wkt"] != "", None).to_numpy(), on_invalid="ignore")
        bad = (frame["wkt"] != "").to_numpy() & shapely.is_missing(geoms)
        issues.add(bad, "wkt", frame["wkt"], "WKT 几何无法解析", "cannot parse the WKT geometry")
        column = "wkt"
    else:
        geoms = np.full(n, None, dtype=object)
        column = "lon/lat"
    # An empty geometry (POINT EMPTY) places nothing: refused, then left out as a missing one.
    empty = ~shapely.is_missing(geoms) & shapely.is_empty(geoms)
    issues.add(empty, column, blank, "几何为空（EMPTY）", "the geometry is empty")
    geoms[empty] = None
    geoms, too_big = _bounded(geoms, column, issues)
    # Rows given by lon/lat are checked (and their problems reported) on the way in.
    from_xy = np.zeros(n, dtype=bool)
    # Rows with no position at all, which a locatable kind places by other means.
    unplaced = np.zeros(n, dtype=bool)
    if {"lon", "lat"} <= set(frame.columns) and kind.geometry in ("point", "any"):
        from_xy = shapely.is_missing(geoms) & ~_wkt_reported(frame) & ~too_big
        if kind.locatable:
            unplaced = from_xy & (frame["lon"] == "").to_numpy() & (frame["lat"] == "").to_numpy()
            from_xy &= ~unplaced
        geoms[from_xy] = _points_from_xy(frame, source_crs, context, fix_swapped, issues, from_xy)
    elif kind.locatable:
        unplaced = shapely.is_missing(geoms) & ~_wkt_reported(frame) & ~too_big
    missing = shapely.is_missing(geoms)
    issues.add(
        missing & ~from_xy & ~unplaced & ~_wkt_reported(frame) & ~too_big,
        column,
        blank,
        "缺少几何",
        "geometry is missing",
    )
    type_id = shapely.get_type_id(geoms)
    wanted = {"point": (0, 4), "polygon": (3, 6), "line": (1, 5), "any": (0, 3, 6)}[kind.geometry]
    wrong = ~missing & ~np.isin(type_id, wanted)
    expected = {
        "point": ("点", "a point"),
        "polygon": ("面（多边形）", "a polygon"),
        "line": ("线", "a line"),
        "any": ("面或点", "a polygon or a point"),
    }[kind.geometry]
    type_names = np.array([g.geom_type if g is not None else "" for g in geoms[wrong]], dtype=object)
    issues.add(
        wrong, column, _full(n, wrong, type_names), f"几何类型应为{expected[0]}", f"geometry must be {expected[1]}"
    )
    ok = ~missing & ~wrong & ~from_xy
    geoms = _to_wgs84(geoms, source_crs, ok)
    bounds = shapely.bounds(geoms)
    out_of_range = ok & ((np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (np.abs(bounds[:, [1, 3]]) > 90).any(axis=1))
    issues.add(
        out_of_range,
        column,
        blank,
        "坐标超出经纬度范围（是否为投影坐标？请用 --crs EPSG:n）",
        "coordinates out of lon/lat range (projected? give --crs EPSG:n)",
    )
    ok &= ~out_of_range
    multipoint = ok & (type_id == 4)
    one_part = shapely.get_num_geometries(geoms) == 1
    issues.add(multipoint & ~one_part, column, blank, "多点几何只能含一个点", "a multipoint must hold one point")
    geoms[multipoint & one_part] = shapely.get_geometry(geoms[multipoint & one_part], 0)
    ok &= ~(multipoint & ~one_part)
    polygonal = ok & np.isin(type_id, (3, 6))
    invalid = polygonal & ~shapely.is_valid(geoms)
    if invalid.any():
        reasons = _full(n, invalid, shapely.is_valid_reason(geoms[invalid]))
        fixed = repaired(geoms[invalid])
        if fixed is None:
            issues.add(
                invalid,
                column,
                reasons,
                f"多边形无效且过于复杂，{REPAIR_SECONDS} 秒内无法自动修复，请先在 GIS 软件中修复",
                f"invalid polygon too complex to repair within {REPAIR_SECONDS} s: repair it in a GIS first",
            )
            geoms[invalid] = None
            ok &= ~invalid
            polygonal &= ~invalid
        else:
            fixed = as_multipolygons(fixed)
            failed = np.zeros(n, dtype=bool)
            failed[invalid] = shapely.is_empty(fixed)
            issues.add(
                invalid & ~failed,
                column,
                reasons,
                "多边形无效，已用 make_valid 修复",
                "invalid polygon repaired with make_valid",
                "warning",
            )
            issues.add(failed, column, reasons, "多边形无效且无法修复", "invalid polygon that cannot be repaired")
            geoms[invalid] = fixed
    flat = polygonal & ~invalid & (shapely.area(geoms) <= 1e-14)
    issues.add(flat, column, blank, "多边形面积为零（各点共线）", "polygon has no area (its points are collinear)")
    if kind.geometry == "polygon":
        # Areas are stored as MULTIPOLYGON.
        geoms[polygonal] = as_multipolygons(geoms[polygonal])
    if kind.geometry == "line":
        linear = ok & np.isin(type_id, (1, 5))
        zero = linear & ~(shapely.length(geoms) > 0)
        issues.add(zero, column, blank, "线的长度为零", "the line has no length")
        ok &= ~zero
        # Roads are stored as MULTILINESTRING.
        single = ok & (type_id == 1)
        geoms[single] = shapely.multilinestrings(geoms[single], indices=np.arange(single.sum()))
    if context.extent is not None and kind.name != "areas":
        points = shapely.point_on_surface(geoms[ok])
        outside = np.zeros(n, dtype=bool)
        outside[ok] = ~_in_box(shapely.get_x(points), shapely.get_y(points), _grown(context.extent))
        issues.add(outside, column, blank, "不在已载入区划范围内", "outside the extent of the loaded areas")
    # Points from lon/lat included (``ok`` leaves them out: they were checked on the way in).
    placed = ~shapely.is_missing(geoms) & ~wrong & ~out_of_range
    return geoms, placed, column, unplaced


def _locate_rows(out: pd.DataFrame, geoms: np.ndarray, unplaced: np.ndarray, context: Context, issues: _Issues):
    """Fill in how each row is placed (``app.intake.locate``), placing the ``unplaced`` ones
    into ``geoms``; answers which of them now have a position."""
    n = len(out)
    stated_anywhere = (out[["community", "street"]].fillna("") != "").to_numpy().any()
    needed = context.gazetteer is not None and (unplaced.any() or stated_anywhere)
    gazetteer = context.gazetteer() if needed else Gazetteer.empty()

    def report(rows_of_todo, column, zh, en):
        mask = np.zeros(n, dtype=bool)
        mask[np.flatnonzero(unplaced)[np.asarray(rows_of_todo, dtype=bool)]] = True
        issues.add(mask, column, out[column].fillna(""), zh, en, "warning")

    def report_all(column):
        def add(mask, zh, en):
            issues.add(mask, column, out[column], zh, en)

        return add

    community = resolve_areas(out["community"], "community", gazetteer, report_all("community"))
    street = resolve_areas(out["street"], "street", gazetteer, report_all("street"))
    clash = (community.notna() & street.notna() & (community.str[:9] != street)).to_numpy()
    issues.add(
        clash, "community", out["community"], "所属社区不在所属街道内", "the community is not in the street given"
    )
    stated = community.where(community.notna(), street)
    if context.jurisdiction is not None and len(context.jurisdiction[0]) in (9, 12):
        # A community's (or street's) own staff state their own area for the rows they leave unsaid.
        stated = stated.where(stated.notna(), context.jurisdiction[0])
    todo = np.flatnonzero(unplaced)
    found = locate(
        out["org_id"].iloc[todo],
        out["address"].iloc[todo],
        out["place"].iloc[todo],
        stated.iloc[todo],
        gazetteer,
        report,
        context.geocode,
    )
    geoms[todo] = found.geometry
    located_by = np.full(n, "coordinates", dtype=object)
    located_by[todo] = found.located_by
    precision = np.full(n, np.nan)
    precision[todo] = found.precision_m
    out["located_by"] = located_by
    out["location_precision_m"] = precision
    out["stated_area_code"] = stated.to_numpy(dtype=object)
    placed = np.zeros(n, dtype=bool)
    placed[todo] = ~shapely.is_missing(found.geometry)
    return placed


def _inside_jurisdiction(kind, frame, geoms, placed, column, jurisdiction, issues) -> None:
    """A jurisdiction-bound user's located rows must lie inside the jurisdiction as stored (not
    as any polygon of this file), and its own boundary is not theirs to redraw."""
    code, polygon = jurisdiction
    n = len(frame)
    own = np.zeros(n, dtype=bool)
    if kind.name == "areas" and "code" in frame:
        own = placed & (frame["code"].to_numpy(dtype=object) == code)
        redrawn = np.zeros(n, dtype=bool)
        redrawn[own] = ~shapely.equals_exact(geoms[own], polygon, JURISDICTION_TOLERANCE)
        # Within the tolerance it is the stored boundary, written back unchanged: moving each
        # vertex a little per import would otherwise grow the area without limit.
        geoms[own & ~redrawn] = polygon
        issues.add(
            redrawn,
            column,
            np.full(n, code),
            "不能修改本辖区的边界（请联系全市管理员）",
            "you may not redraw your own jurisdiction's boundary (ask the city's administrators)",
        )
    rest = placed & ~own
    beyond = np.zeros(n, dtype=bool)
    beyond[rest] = ~shapely.covered_by(geoms[rest], _grown_polygon(polygon))
    issues.add(
        beyond,
        column,
        np.full(n, ""),
        f"不在您的管辖范围 {code} 内（须完全位于辖区边界以内）",
        f"outside your jurisdiction {code} (it must lie wholly inside its boundary)",
    )


def _grown_polygon(polygon):
    # A shared boundary digitised twice never matches to the last digit.
    return shapely.buffer(polygon, JURISDICTION_TOLERANCE)


def _bounded(geoms: np.ndarray, column: str, issues: _Issues) -> tuple[np.ndarray, np.ndarray]:
    """``geoms`` without those too large to check, and which they were: a geometry over
    ``MAX_VERTICES`` is refused by its row, every one when the file holds over ``MAX_FILE_VERTICES``."""
    vertices = shapely.get_num_coordinates(geoms)
    huge = vertices > MAX_VERTICES
    issues.add(
        huge,
        column,
        vertices,
        f"几何的顶点过多（上限 {MAX_VERTICES:,}），请先简化",
        f"the geometry has too many vertices (the limit is {MAX_VERTICES:,}): simplify it first",
    )
    if int(vertices.sum()) > MAX_FILE_VERTICES:
        issues.file(
            column,
            f"文件的顶点总数 {int(vertices.sum()):,} 超过上限 {MAX_FILE_VERTICES:,}，请简化或分批导入",
            f"the file holds {int(vertices.sum()):,} vertices, over the limit of {MAX_FILE_VERTICES:,}: "
            "simplify it or import it in parts",
        )
        huge[:] = True
    if huge.any():
        geoms = geoms.copy()
        # Left out of every later check (make_valid on a million vertices takes half a minute).
        geoms[huge] = None
    return geoms, huge


def _wkt_reported(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose WKT was given but unparseable: already reported as such."""
    if "wkt" not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return (frame["wkt"] != "").to_numpy()


def _full(n: int, mask: np.ndarray, values) -> np.ndarray:
    out = np.full(n, "", dtype=object)
    out[mask] = values
    return out


def _points_from_xy(frame, source_crs, context, fix_swapped, issues, rows) -> np.ndarray:
    lon_text, lat_text = frame["lon"], frame["lat"]
    x = pd.to_numeric(lon_text, errors="coerce").to_numpy(dtype=float, copy=True)
    y = pd.to_numeric(lat_text, errors="coerce").to_numpy(dtype=float, copy=True)
    for name, text, value in (("lon", lon_text, x), ("lat", lat_text, y)):
        empty = rows & (text == "").to_numpy()
        issues.add(empty, name, text, "经纬度为空", "coordinate is empty")
        issues.add(rows & ~empty & np.isnan(value), name, text, "不是有效数字", "not a number")
    usable = rows & ~np.isnan(x) & ~np.isnan(y)
    if source_crs.startswith("EPSG:"):
        x, y = _transform_xy(x, y, source_crs)
    box = _grown(context.extent) if context.extent is not None else CHINA_BOX
    straight = _in_box(x, y, box)
    swapped = usable & ~straight & _in_box(y, x, box)

    def pair() -> np.ndarray:
        return (lon_text + ", " + lat_text).to_numpy()

    if fix_swapped:
        issues.add(swapped, "lon/lat", pair, "经纬度填反，已互换", "lon and lat were swapped; swapped back", "warning")
        x[swapped], y[swapped] = y[swapped], x[swapped].copy()
    else:
        issues.add(
            swapped,
            "lon/lat",
            pair,
            "经纬度疑似填反（可用 --fix-swapped 自动互换）",
            "lon and lat look swapped (use --fix-swapped to swap them back)",
        )
    rest = usable & ~swapped
    out_of_range = rest & ((np.abs(x) > 180) | (np.abs(y) > 90))
    issues.add(out_of_range, "lon/lat", pair, "经纬度超出范围", "lon/lat out of range")
    if context.extent is not None:
        outside = rest & ~out_of_range & ~_in_box(x, y, box)
        issues.add(outside, "lon/lat", pair, "不在已载入区划范围内", "outside the extent of the loaded areas")
    if source_crs in ("gcj02", "bd09"):
        x, y = (geocrs.gcj02_to_wgs84 if source_crs == "gcj02" else geocrs.bd09_to_wgs84)(x, y)
    points = shapely.points(np.column_stack([x, y]))
    unusable = ~usable | out_of_range
    if not fix_swapped:
        unusable |= swapped
    points[unusable] = None
    return points[rows]


def _transform_xy(x: np.ndarray, y: np.ndarray, source_crs: str) -> tuple[np.ndarray, np.ndarray]:
    transformer = pyproj.Transformer.from_crs(source_crs, 4326, always_xy=True)
    return transformer.transform(x, y)


def _to_wgs84(geoms: np.ndarray, source_crs: str, ok: np.ndarray) -> np.ndarray:
    geoms = geoms.copy()
    if source_crs == "wgs84" or not ok.any():
        return geoms
    if source_crs.startswith("EPSG:"):
        transformer = pyproj.Transformer.from_crs(source_crs, 4326, always_xy=True)
        geoms[ok] = shapely.transform(geoms[ok], lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))
    else:
        geoms[ok] = geocrs.to_wgs84(geoms[ok], source_crs)
    return geoms


def _in_box(x, y, box) -> np.ndarray:
    return (x >= box[0]) & (x <= box[2]) & (y >= box[1]) & (y <= box[3])


def _grown(extent):
    return (extent[0] - EXTENT_MARGIN, extent[1] - EXTENT_MARGIN, extent[2] + EXTENT_MARGIN, extent[3] + EXTENT_MARGIN)


def _references(kind: Kind, out: pd.DataFrame, frame: pd.DataFrame, context: Context, issues: _Issues) -> None:
    if kind.name == "areas":
        _area_codes(out, context, issues)
    elif kind.name == "orgs" and "party_org_id" in frame.columns:
        _list_references(
            out,
            "party_org_id",
            context.party_org_ids,
            ("党组织编号 {} 不存在（请先导入 party-orgs）", "unknown party organization {} (import party-orgs first)"),
            issues,
        )
    elif kind.name == "instructors" and "org_ids" in frame.columns:
        _list_references(
            out,
            "org_ids",
            context.org_ids,
            ("组织编号 {} 不存在（请先导入 orgs）", "unknown organization {} (import orgs first)"),
            issues,
        )
        if "ends_on" in out and "starts_on" in out:
            reversed_dates = out["ends_on"].notna() & out["starts_on"].notna() & (out["ends_on"] < out["starts_on"])
            issues.add(
                reversed_dates, "ends_on", out["ends_on"].fillna(""), "结束日期早于开始日期", "ends before it starts"
            )
    elif kind.name == "centers" and "area_code" in frame.columns and context.area_codes:
        code = out["area_code"].fillna("")
        issues.add(
            (code != "") & ~code.isin(context.area_codes), "area_code", code, "区划代码不存在", "unknown area code"
        )


def _list_references(out: pd.DataFrame, column: str, known: set[str], words: tuple[str, str], issues: _Issues) -> None:
    """Check the ``;``-separated ids of ``column`` against ``known`` (``words``: the Chinese and
    English message, ``{}`` for the unknown ids) and store the list in its one spelling."""
    # Any run of separators becomes one ";": the stored spelling, and what is split to check.
    given = out[column].str.replace(_LIST_SEPARATORS, ";", regex=True).str.strip(";")
    refs = split_list(given)
    unknown = refs[~refs.isin(known)].groupby(level=0)
    zh = pd.Series("", index=out.index)
    en = zh.copy()
    zh[list(unknown.groups)] = unknown.agg("、".join).map(words[0].format)
    en[list(unknown.groups)] = unknown.agg(", ".join).map(words[1].format)
    issues.add(zh != "", column, out[column], zh.to_numpy(), en.to_numpy())
    out[column] = given.astype(object).where(given.notna() & (given != ""), None)


def split_list(values: pd.Series) -> pd.Series:
    """The items of ``;``-separated lists, each indexed by its row's position; empty rows give none."""
    text = pd.Series(values.to_numpy(dtype=object), index=np.arange(len(values)))
    text = text[text.notna() & (text != "")]
    # Most organizations name one party organization: splitting only the lists that hold
    # several is several times faster than splitting every row.
    several = text.str.contains(";", regex=False)
    return pd.concat([text[~several], text[several].str.split(";").explode()]).sort_index(kind="stable")


def _area_codes(out: pd.DataFrame, context: Context, issues: _Issues) -> None:
    code = out["code"].fillna("")
    level = out["level"]
    length = level.map(AREA_CODE_LENGTHS)
    bad_code = level.notna() & (code != "") & ((code.str.len() != length) | ~code.str.isdigit())
    issues.add(
        bad_code,
        "code",
        code,
        length.map(lambda n: f"代码位数与层级不符（应为 {n:.0f} 位数字）"),
        length.map(lambda n: f"code does not fit its level (expected {n:.0f} digits)"),
    )
    parent_len = level.map(lambda lv: AREA_CODE_LENGTHS.get(_PARENT_LEVEL.get(lv, ""), 0))
    derived = pd.Series([c[:k] if k else None for c, k in zip(code, parent_len, strict=True)], index=out.index)
    parent = out["parent_code"].where(out["parent_code"].notna(), derived)
    needs_parent = level.isin(list(_PARENT_LEVEL)) & ~bad_code
    known = context.area_codes | set(code)
    unknown = needs_parent & ~parent.isin(known)
    issues.add(
        unknown,
        "parent_code",
        parent,
        "上级区划不存在（请先导入上级或放在同一文件）",
        "unknown parent area (import it first or in the same file)",
    )
    mismatch = (
        needs_parent
        & ~unknown
        & ~pd.Series([str(c).startswith(str(p)) for c, p in zip(code, parent, strict=True)], index=out.index)
    )
    issues.add(mismatch, "code", code, "代码与上级代码不一致", "code does not start with its parent's code")
    out["parent_code"] = parent.where(level != "district", None)
