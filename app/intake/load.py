"""Import a file: read, validate every row, then write all of it in one transaction — or nothing.

Rows are upserted by their external id: a re-imported unchanged row is not touched, a changed
row is updated in place (keeping its internal id, so party-organization links survive), a new
row is inserted. Organizations also carry their covering party organizations and whether an
instructor is assigned (work coverage).
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyproj
import shapely
from sqlalchemy import insert, text

from ..bulk import collector_paused
from ..store import Store
from ..store.errors import StoreBusy
from ..store.models import LOCATED_BY, placements
from .geocode import Geocoder
from .issues import IntakeError, Issue, write_report
from .locate import UNPLACED, Gazetteer
from .normalize import normalized
from .readers import read_table
from .schema import KINDS, Kind
from .validate import (
    JURISDICTION_TOLERANCE,
    Context,
    by_row,
    split_list,
    stored_duplicates,
    validate,
    warn_rows,
)

Progress = Callable[[str], None]
#: How the import report names each way of placing a row.
LOCATED_BY_NAMES = {
    "coordinates": "坐标 coordinates",
    "place": "所在楼宇 place",
    "address": "地址 address",
    "geocoder": "地理编码 geocoder",
    "community": "所属社区（近似）community, approximate",
    "street": "所属街道（近似）street, approximate",
    "manual": "手工 by hand",
    "unplaced": "待定位 unplaced",
}
#: How long an import waits for another one to finish writing before it asks to be retried (s).
IMPORT_WAIT_SECONDS = 20


@dataclass
class ImportReport:
    """What an import found and did."""

    kind: str
    path: str
    rows: int = 0
    issues: list[Issue] = field(default_factory=list)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    written: bool = False
    dry_run: bool = False
    report_path: Path | None = None
    #: Rows per way of placing them (``located_by``), for kinds that place rows.
    located: dict[str, int] = field(default_factory=dict)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        if not self.ok:
            return (
                f"发现 {len(self.errors)} 个错误，未写入任何数据 / {len(self.errors)} errors found, nothing was written"
            )
        verb = (
            ("校验通过（试运行，未写入）", "validated (dry run, nothing written)")
            if self.dry_run
            else ("导入完成", "imported")
        )
        text = (
            f"{verb[0]}：{self.rows} 行，新增 {self.inserted}，更新 {self.updated}，未变 {self.unchanged} / "
            f"{verb[1]}: {self.rows} rows, {self.inserted} new, {self.updated} updated, "
            f"{self.unchanged} unchanged"
        )
        if self.located:
            ways = "，".join(f"{LOCATED_BY_NAMES[k]} {v}" for k, v in self.located.items())
            text += f"\n定位 / placed by：{ways}"
        return text


def _gazetteer(store: Store) -> Gazetteer:
    """Every place and area of the city: a row may name one outside the user's jurisdiction,
    and is then refused for where it lands rather than left unplaced."""
    city = store.scoped(None)
    return Gazetteer.of(
        city.read_frame("places", ["place_id", "name"]), city.read_frame("areas", ["code", "name", "level"])
    )


def load_context(store: Store, kind: Kind | None = None, geocoder: Geocoder | None = None) -> Context:
    """The codes, ids and extent already in the store that an input file may refer to; for a
    scoped store (a user bound to a jurisdiction) also that jurisdiction and the ids of
    ``kind`` stored outside it; and the ``geocoder`` for the rows of a locatable kind."""
    with store.connect() as conn:
        # All rows at once: psycopg fetching 30,000 party organizations one by one took 0.1 s.
        codes = set(conn.execute(text("SELECT code FROM areas")).scalars().all())
        party = set(conn.execute(text("SELECT party_org_id FROM party_orgs")).scalars().all())
    context = Context(codes, party, store.extent("areas"))
    if kind is not None and kind.name == "instructors":
        with store.connect() as conn:
            context.org_ids = set(conn.execute(text("SELECT org_id FROM organizations")).scalars().all())
    if kind is not None and kind.locatable:
        context.gazetteer = functools.partial(_gazetteer, store)
        if geocoder is not None:
            # The cache is the city's, whoever imports: an address is where it is.
            city = store.scoped(None)
            context.geocode = lambda addresses: geocoder.answers(city, addresses, normalized(addresses))
    if store.scope is None or kind is None:
        return context
    if kind.geometry in ("none", "line"):
        raise IntakeError(f"{kind.zh}只能由全市管理员导入", f"only city-wide staff import {kind.name}")
    area = store.read_frame("areas", [], where={"code": store.scope})
    outside = f"SELECT t.{kind.id_column} FROM {kind.table} t WHERE NOT ({store.scope_condition(kind.table, 't')})"
    with store.connect() as conn:
        context.foreign_ids = {r[0] for r in conn.execute(text(outside), store.scope_params())}
    context.jurisdiction = (store.scope, area.geometry.iloc[0])
    if kind.geometry == "any":
        # A place reaching over the boundary is shared with its neighbours: not one area's to
        # change. (Points and areas are inside or not; their test above suffices.)
        stored = store.scoped(None).read_frame(kind.table, [kind.id_column])
        shared = ~shapely.covered_by(
            np.asarray(stored.geometry.values), shapely.buffer(context.jurisdiction[1], JURISDICTION_TOLERANCE)
        )
        context.foreign_ids |= set(stored.loc[shared, kind.id_column])
    return context


@collector_paused()
def import_file(
    store: Store,
    kind_name: str,
    path: Path,
    *,
    crs: str = "wgs84",
    dry_run: bool = False,
    sheet: str | None = None,
    encoding: str | None = None,
    fix_swapped: bool = False,
    overwrite_positions: bool = False,
    geocoder: Geocoder | None = None,
    max_bytes: int | None = None,
    report_dir: Path | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import ``path`` as ``kind_name`` (orgs, party-orgs, centers, stations, places, areas).

    Nothing is written when any row has an error, or on ``dry_run``. When ``report_dir`` is
    given and there are issues, they are written there as a CSV (``report.report_path``).
    A position set by hand stays unless the file gives coordinates and ``overwrite_positions``.
    Rows without coordinates or a known place are given to the ``geocoder``, if any.
    """
    kind = KINDS[kind_name]
    step = progress or (lambda _stage: None)
    report = ImportReport(kind_name, str(path), dry_run=dry_run)
    try:
        step("read")
        raw = read_table(Path(path), sheet=sheet, encoding=encoding, max_bytes=max_bytes)
        step("validate")
        checked = validate(kind, raw, crs, load_context(store, kind, geocoder), fix_swapped=fix_swapped)
    except (IntakeError, ValueError, pyproj.exceptions.CRSError) as exc:
        issue = exc.issue if isinstance(exc, IntakeError) else Issue(None, "--crs", crs, str(exc), str(exc))
        report.issues = [issue]
        return _finish(report, report_dir)
    report.rows = len(checked.frame)
    report.issues = checked.issues
    if "located_by" in checked.frame:  # placed (a file missing a required column is not)
        report.located = _located(checked.frame["located_by"])
    if report.ok:
        step("write")
        try:
            # Imports queue here: SQLite would fail all but one with "database is locked".
            with store.exclusive("import", IMPORT_WAIT_SECONDS):
                _write(store, kind, checked, report, dry_run, overwrite_positions)
        except StoreBusy as exc:
            report.issues = [Issue(None, "", "", exc.zh, exc.en)]
    return _finish(report, report_dir)


def _located(located_by: pd.Series) -> dict[str, int]:
    """Rows per way of placing, in ``LOCATED_BY``'s order (ways no row took left out)."""
    counts = located_by.value_counts()
    return {k: int(counts[k]) for k in LOCATED_BY if k in counts}


def _finish(report: ImportReport, report_dir: Path | None) -> ImportReport:
    if report.issues and report_dir is not None:
        # A random part: a report names rows of the file, and its URL must not be guessable.
        stamp = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}"
        report.report_path = write_report(report.issues, report_dir / f"import-{report.kind}-{stamp}.csv")
    return report


def _write(store: Store, kind, checked, report: ImportReport, dry_run: bool, overwrite_positions: bool) -> None:
    frame = checked.frame
    key = kind.id_column
    table_columns = kind.table_columns
    spatial = kind.geometry != "none"
    update = sorted((checked.present & set(table_columns)) - {key}) + (["source_crs"] if spatial else [])
    rows = frame[[key, *(c for c in table_columns if c != key), *(["source_crs"] if spatial else [])]].copy()
    for column, value in kind.on_insert.items():
        rows[column] = value
    if checked.geometry is not None:
        rows["geometry"] = checked.geometry
    with store.connect(write=True) as conn:
        if spatial:
            existing = store.read_frame(kind.table, ["id", key, *update], conn=conn)
        else:
            existing = _read_plain(conn, kind.table, ["id", key, *update])
        stored_extras = given_extras = None
        if kind.name == "orgs" and len(existing):  # links can differ only for stored organizations
            stored_extras = _org_extras(conn, frame, checked.present)
            given_extras = frame[list(stored_extras.columns)].copy()
            if "party_org_id" in given_extras:
                given_extras["party_org_id"] = given_extras["party_org_id"].map(
                    lambda v: ";".join(sorted(v.split(";"))) if isinstance(v, str) else None
                )
        replaced = pd.DataFrame()
        if kind.name == "orgs":
            # The stored rows were read to compare with the file: they also tell its duplicates.
            report.issues = by_row([*report.issues, *stored_duplicates(checked, existing)])
            replaced = _keep_hand_placed(store, conn, rows, checked, overwrite_positions, report)
        stored = existing.set_index(key)
        new, changed = _diff(rows, stored, key, update, checked.geometry is not None, stored_extras, given_extras)
        report.inserted, report.updated = int(new.sum()), int(changed.sum())
        report.unchanged = len(rows) - report.inserted - report.updated
        if dry_run:
            return
        # New rows are plainly inserted (PostgreSQL copies them): asking SQLite to check each of
        # 100,000 for a conflict that the comparison above already ruled out cost 0.3 s. Their
        # ids are taken first, so links need not read back every organization's id.
        ids = np.zeros(len(rows), dtype=np.int64)
        ids[~new] = stored["id"].reindex(rows.loc[~new, key]).to_numpy()
        if new.any():
            ids[new] = store.backend.new_ids(conn, kind.table, int(new.sum()))
            store.insert_frame(conn, kind.table, rows[new].assign(id=ids[new]))
        if changed.any():
            store.upsert_frame(conn, kind.table, key, rows[changed], update)
        if kind.name == "instructors":
            # A row whose own columns did not change may still name other organizations.
            _write_instructor_links(store, conn, frame, ids, checked.present)
            store.data_changed(conn)
        if kind.name == "orgs":
            written = new | changed
            _write_org_extras(store, conn, frame[written], ids[written], changed[written], checked.present)
            _record_replaced(conn, replaced, rows, ids)
        report.written = True


def _keep_hand_placed(
    store: Store, conn, rows: pd.DataFrame, checked, overwrite: bool, report: ImportReport
) -> pd.DataFrame:
    """Give the rows of organizations placed by hand their stored position back, unless the
    file gives coordinates and ``overwrite`` is asked: someone stood there, a ledger seldom
    knows better. Answers the hand-set positions replaced (``org_id`` index, ``geometry``)."""
    manual = store.read_frame(
        "organizations", ["org_id", "location_precision_m"], where={"located_by": "manual"}, conn=conn
    )
    manual = manual.set_index("org_id")
    hand = rows["org_id"].isin(manual.index).to_numpy()
    if not hand.any():
        return manual.iloc[:0]
    given = (checked.frame["located_by"] == "coordinates").to_numpy()
    replace = hand & given & overwrite
    keep = hand & ~replace
    kept = rows.loc[keep, "org_id"]
    rows.loc[keep, "located_by"] = "manual"
    rows.loc[keep, "location_precision_m"] = (
        pd.to_numeric(manual["location_precision_m"]).reindex(kept).to_numpy(dtype=float)
    )
    rows.loc[keep, "source_crs"] = "wgs84"
    geometry = np.array(rows["geometry"].to_numpy(), dtype=object)
    geometry[keep] = np.asarray(manual.geometry.reindex(kept).values)
    rows["geometry"] = geometry
    # A row kept where a hand placed it is not left unplaced, whatever the file lacks.
    kept_rows = set((np.flatnonzero(keep) + checked.first_row).tolist())
    report.issues = by_row(
        [
            *(i for i in report.issues if not (i.row in kept_rows and (i.zh, i.en) == UNPLACED)),
            *warn_rows(
                checked,
                keep & given,
                "lon",
                "保留手工定位的位置，未用文件中的坐标（需要时加 --overwrite-positions）",
                "kept the position placed by hand, not the file's coordinates (--overwrite-positions takes them)",
            ),
        ]
    )
    report.located = _located(rows["located_by"])
    return manual.loc[rows.loc[replace, "org_id"]]


def _record_replaced(conn, replaced: pd.DataFrame, rows: pd.DataFrame, ids: np.ndarray) -> None:
    """Add a placement history entry for each hand-set position an import replaced."""
    if replaced.empty:
        return
    at = rows["org_id"].isin(replaced.index).to_numpy()
    before = np.asarray(replaced.geometry.reindex(rows.loc[at, "org_id"]).values)
    after = np.asarray(rows.loc[at, "geometry"].to_numpy(), dtype=object)
    entries = pd.DataFrame(
        {
            "organization_id": ids[at],
            "at": datetime.now(UTC),
            "source": "import",
            "from_located_by": "manual",
            "from_lon": shapely.get_x(before),
            "from_lat": shapely.get_y(before),
            "to_lon": shapely.get_x(after),
            "to_lat": shapely.get_y(after),
        }
    )
    conn.execute(insert(placements), entries.to_dict("records"))


def _read_plain(conn, table: str, columns: list[str]) -> pd.DataFrame:
    result = conn.execute(text(f"SELECT {', '.join(columns)} FROM {table}")).fetchall()
    return pd.DataFrame.from_records(result, columns=columns)


def _org_extras(conn, frame: pd.DataFrame, present: set[str]) -> pd.DataFrame:
    """The stored party-organization links and instructor flag of each organization, as the file spells them."""
    links = pd.DataFrame.from_records(
        conn.execute(
            text(
                "SELECT o.org_id, p.party_org_id FROM party_org_coverage c "
                "JOIN organizations o ON o.id = c.organization_id JOIN party_orgs p ON p.id = c.party_org_id"
            )
        ).fetchall(),
        columns=["org_id", "party_org_id"],
    )
    joined = links.sort_values("party_org_id").groupby("org_id")["party_org_id"].agg(";".join)
    with_instructor = {
        r[0]
        for r in conn.execute(
            text(
                "SELECT DISTINCT o.org_id FROM instructors i JOIN organizations o ON o.id = i.organization_id "
                "WHERE i.person_id IS NULL"
            )
        )
    }
    out = pd.DataFrame(index=frame["org_id"])
    out["party_org_id"] = joined.reindex(out.index)
    out["instructor"] = out.index.isin(with_instructor)
    return out[[c for c in ("party_org_id", "instructor") if c in present]]


def _diff(rows, stored, key, update, spatial: bool, stored_extras: pd.DataFrame | None, given_extras):
    """Masks of the file's rows that are new, and that differ from what is stored (``stored``:
    the stored rows indexed by ``key``)."""
    new = ~rows[key].isin(stored.index).to_numpy()
    changed = np.zeros(len(rows), dtype=bool)
    old = ~new
    if not old.any():
        return new, changed
    keys = rows.loc[old, key]
    before, after = stored.loc[keys], rows.loc[old]
    for column in update:
        changed[old] |= _differs(after[column], before[column])
    if spatial:
        a, b = np.asarray(after["geometry"].values), np.asarray(before.geometry.values)
        same = shapely.equals_exact(a, b, 1e-9) | (shapely.is_missing(a) & shapely.is_missing(b))
        changed[old] |= ~same
    if stored_extras is not None:
        for column in stored_extras.columns:
            changed[old] |= _differs(given_extras.loc[old, column], stored_extras.loc[keys, column])
    return new, changed


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    pairs = zip(a.to_numpy(dtype=object), b.to_numpy(dtype=object), strict=True)
    return ~np.array([x == y or (pd.isna(x) and pd.isna(y)) for x, y in pairs], dtype=bool)


def _write_org_extras(
    store: Store, conn, frame: pd.DataFrame, internal: np.ndarray, stored: np.ndarray, present: set[str]
) -> None:
    """Replace the party links and instructor flags of ``frame``'s organizations (``internal``:
    their ids; ``stored``: rows that existed before, the only ones with links to remove)."""
    if frame.empty or not ({"party_org_id", "instructor"} & present):
        return
    if "party_org_id" in present:
        _delete_links(conn, "party_org_coverage", internal[stored])
        party = pd.Series(dict(conn.execute(text("SELECT party_org_id, id FROM party_orgs")).fetchall()))
        given = split_list(frame["party_org_id"])
        rows = zip(given.map(party).tolist(), internal[given.index].tolist(), strict=True)
        store.backend.insert_rows(conn, "party_org_coverage", ["party_org_id", "organization_id"], rows, None)
    if "instructor" in present:
        # The ledger's yes/no is the anonymous assignment; named instructors come from their own file.
        _delete_links(conn, "instructors", internal[stored], "person_id IS NULL")
        assigned = internal[frame["instructor"].to_numpy(dtype=bool)].tolist()
        rows = ((i, "instructor") for i in assigned)
        store.backend.insert_rows(conn, "instructors", ["organization_id", "role"], rows, None)


def _delete_links(conn, table: str, ids: np.ndarray, also: str = "", column: str = "organization_id") -> None:
    # Integers from the database itself, inlined in chunks: one statement per thousand rather
    # than one per organization. ``also``: a fixed condition of the caller's.
    for start in range(0, len(ids), 1000):
        chunk = ", ".join(str(int(i)) for i in ids[start : start + 1000])
        conn.exec_driver_sql(f"DELETE FROM {table} WHERE {column} IN ({chunk})" + (f" AND {also}" if also else ""))


def _write_instructor_links(store: Store, conn, frame: pd.DataFrame, people: np.ndarray, present: set[str]) -> None:
    """Replace the assignments of the instructors of ``frame`` (``people``: their ids) with the
    organizations each row names."""
    if "org_ids" not in present or frame.empty:
        return
    _delete_links(conn, "instructors", people, column="person_id")
    internal = pd.Series(dict(conn.execute(text("SELECT org_id, id FROM organizations")).fetchall()))
    given = split_list(frame["org_ids"])
    rows = zip(given.map(internal).tolist(), people[given.index].tolist(), strict=True)
    store.backend.insert_rows(
        conn, "instructors", ["organization_id", "person_id", "role"], ((o, p, "instructor") for o, p in rows), None
    )
