"""Corrections of the 台账: one organization's record edited, added or removed, with its history.

Street and community staff correct what they find in the field from the card on the map;
another system (a city's 综治 grid platform, say) does the same through OGC API – Features
Part 4. Both end here, so both meet the same checks:

* the organization must be one the caller's store can see, and a new or moved position must lie
  inside the caller's jurisdiction (:mod:`app.services.placing` owns that check);
* every value passes the importer's own checks (:func:`app.intake.validate.validate` on a
  one-row table), so a correction can never store what an import would refuse;
* a joint branch (联合党支部, coverage kind ``joint``) covers at most
  :data:`geo.branches.MAX_UNITS` units;
* the write is one transaction: the record, its links, its history and the data version move
  together or not at all.

A record's :func:`etag` is a digest of what is stored for it. A write that names the version it
was read at (``if_match``) is refused with 412 when the record has changed since, so two people
correcting one organization never lose each other's work.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
import shapely
from sqlalchemy import bindparam, insert, text

from geo.branches import MAX_UNITS

from ..errors import HongtuError
from ..intake.readers import RawTable
from ..intake.schema import KINDS
from ..intake.validate import Context, validate
from ..store import Store, result_frame
from ..store.models import CHANGE_VIAS, Organization, org_changes
from . import placing

ORGS = KINDS["orgs"]
#: The fields a correction may change, in the order the card's form shows them.
EDITABLE = (
    "name",
    "org_type",
    "industry",
    "credit_code",
    "employees",
    "party_members",
    "address",
    "operating",
    "party_org_id",
    "instructor",
)
#: Fields kept in the organization's own row (the rest are its links).
OWN = tuple(f for f in EDITABLE if ORGS.column(f).stored)
#: Columns of an organization's history, newest first.
HISTORY_COLUMNS = ("at", "username", "via", "field", "old", "new")
#: The history's word for a record added or removed as a whole.
WHOLE_RECORD = "*"
#: A list of ids bound to ``IN :ids`` (never empty: no id is the empty string).
_IDS = bindparam("ids", expanding=True)
#: What separates the ids of a list as people type them (as the importer reads them).
_LIST = re.compile(r"[;；,，、]")


class EditError(HongtuError):
    """A correction refused. ``current`` holds the record as stored (for a 412: what the
    caller must merge its change into), ``issues`` the rejected fields."""

    def __init__(self, status: int, zh: str, en: str, current: dict | None = None, issues: list | None = None):
        super().__init__(zh, en)
        self.status, self.current, self.issues = status, current, issues or []
        if current is not None:
            self.details = {"etag": etag(current), "current": {k: v for k, v in current.items() if k != "id"}}
        elif issues:
            self.details = {"issues": issues}


def not_yours(store: Store, org_id: str) -> EditError:
    """The refusal of a write to an organization ``store`` cannot see: 403 when it exists
    outside the caller's jurisdiction (as the staff's rules say: outside, refused), 404 when
    there is no such organization at all."""
    with store.connect(transaction=False) as conn:
        exists = conn.execute(text("SELECT 1 FROM organizations WHERE org_id = :o"), {"o": org_id}).first()
    if exists is not None and store.scope is not None:
        return EditError(403, "该组织不在您的管辖范围内", "that organization is outside your jurisdiction")
    return EditError(404, "没有这个组织", "no such organization")


@dataclass(frozen=True)
class Position:
    """A new position for the record: WGS-84 degrees, and how it was found (a placing source)."""

    lon: float
    lat: float
    source: str = "map"


def etag(record: dict) -> str:
    """The entity tag of a stored ``record`` (RFC 9110, strong): changes exactly when it does."""
    shown = {k: v for k, v in record.items() if k != "id"}
    digest = hashlib.sha256(json.dumps(shown, sort_keys=True, ensure_ascii=False, default=str).encode())
    return f'"{digest.hexdigest()[:32]}"'


def record(store: Store, org_id: str) -> dict | None:
    """The stored record of an organization the store can see (fields of :data:`EDITABLE`,
    ``lon``/``lat``, ``located_by``), or None."""
    with store.connect() as conn:
        return _record(store, conn, org_id)


def _record(store: Store, conn, org_id: str, lock: bool = False) -> dict | None:
    columns = ", ".join(f"t.{c}" for c in OWN)
    sql, scope = store.restrict(
        f"SELECT t.id, t.org_id, {columns}, ST_X(t.geom) AS lon, ST_Y(t.geom) AS lat, t.located_by "
        "FROM organizations t WHERE t.org_id = :org",
        "organizations",
        "t",
    )
    if lock and store.backend_name == "postgis":
        # SQLite's write transaction already holds the whole database; PostgreSQL must hold
        # the row, or two writers could both pass the version check.
        sql += " FOR UPDATE OF t"
    row = conn.execute(text(sql), {**scope, "org": org_id}).mappings().first()
    if row is None:
        return None
    found = dict(row)
    links = conn.execute(
        text(
            "SELECT p.party_org_id FROM party_org_coverage c JOIN party_orgs p ON p.id = c.party_org_id "
            "WHERE c.organization_id = :id ORDER BY p.party_org_id"
        ),
        {"id": found["id"]},
    ).scalars()
    found["party_org_id"] = ";".join(links) or None
    # The record's yes/no is the anonymous assignment; named instructors have their own file.
    instructor = "SELECT 1 FROM instructors WHERE organization_id = :id AND person_id IS NULL LIMIT 1"
    found["instructor"] = conn.execute(text(instructor), {"id": found["id"]}).first() is not None
    found["operating"] = bool(found["operating"])
    for axis in ("lon", "lat"):
        found[axis] = None if found[axis] is None else round(float(found[axis]), 7)
    return found


def edit(
    store: Store,
    org_id: str,
    changes: dict,
    username: str | None,
    via: str,
    if_match: str | None = None,
    position: Position | None = None,
) -> dict:
    """Change the fields ``changes`` (of :data:`EDITABLE`; the rest are kept) and, given a
    ``position``, move the organization there. Answers the record as stored after.

    Raises :class:`EditError`: 404 for an organization the store cannot see, 412 (with the
    current record) when ``if_match`` is not its :func:`etag`, 400 naming every bad field,
    403 for a position outside the jurisdiction.
    """
    with store.connect(write=True) as conn:
        current = _record(store, conn, org_id, lock=True)
        if current is None:
            raise not_yours(store, org_id)
        if if_match is not None and if_match.strip() not in (etag(current), "*"):
            raise EditError(412, "该组织已被他人修改，请按当前内容重新更正", "changed since you read it", current)
        wanted = _checked(store, conn, {**_fields(current), **_known(changes)}, org_id, position or _kept(current))
        changed = [f for f in EDITABLE if wanted[f] != current[f]]
        if changed:
            _write(store, conn, current["id"], wanted, changed)
        if position is not None and (position.lon, position.lat) != (current["lon"], current["lat"]):
            # The placing rules check the point and record the move, in its history and ours.
            with _placing_refusals():
                point = shapely.Point(position.lon, position.lat)
                placing.move(store, conn, current, point, position.source, username, via)
        after = _record(store, conn, org_id)
        if changed:
            _history(conn, org_id, username, via, [(f, current, after) for f in changed])
            store.data_changed(conn)
    return after


def create(store: Store, values: dict, position: Position, username: str | None, via: str) -> dict:
    """Add an organization found in the field at ``position`` (inside the jurisdiction). An
    ``org_id`` not given is made up (``XC`` + date + random); one in use anywhere is a 409."""
    org_id = str(values.get("org_id") or f"XC{date.today():%Y%m%d}{secrets.token_hex(3).upper()}")
    with store.connect(write=True) as conn:
        taken = conn.execute(text("SELECT 1 FROM organizations WHERE org_id = :org"), {"org": org_id}).first()
        if taken is not None:
            raise EditError(409, f"组织编号 {org_id} 已存在", f"organization {org_id} already exists")
        wanted = _checked(store, conn, {**defaults(), **_known(values)}, org_id, position)
        point = shapely.Point(position.lon, position.lat)
        with _placing_refusals():
            placing.check_inside(store, conn, point)
        own = {f: wanted[f] for f in OWN}
        internal = conn.execute(
            insert(Organization.__table__).values(
                org_id=org_id, located_by="manual", source_crs="wgs84", demonstration=False, **own
            )
        ).inserted_primary_key[0]
        conn.execute(
            text(f"UPDATE organizations SET geom = {store.backend.point_sql(':x', ':y')} WHERE id = :id"),
            {"x": point.x, "y": point.y, "id": internal},
        )
        _write_links(store, conn, internal, wanted)
        after = _record(store, conn, org_id)
        _history(conn, org_id, username, via, [(WHOLE_RECORD, None, after)])
        store.data_changed(conn)
    return after


def delete(store: Store, org_id: str, username: str | None, via: str, if_match: str | None = None) -> dict:
    """Remove an organization (a record entered by mistake or twice; one that closed is kept,
    with ``operating`` false). Its last history entry holds the whole record as it was."""
    with store.connect(write=True) as conn:
        current = _record(store, conn, org_id, lock=True)
        if current is None:
            raise not_yours(store, org_id)
        if if_match is not None and if_match.strip() not in (etag(current), "*"):
            raise EditError(412, "该组织已被他人修改，请核对后再删除", "changed since you read it", current)
        conn.execute(text("DELETE FROM organizations WHERE id = :id"), {"id": current["id"]})
        _history(conn, org_id, username, via, [(WHOLE_RECORD, current, None)])
        store.data_changed(conn)
    return current


def history(store: Store, org_id: str) -> pd.DataFrame:
    """The corrections of an organization the store can see, newest first (404 otherwise)."""
    if record(store, org_id) is None:
        raise not_yours(store, org_id)
    columns = ", ".join(HISTORY_COLUMNS)
    with store.connect() as conn:
        found = conn.execute(
            text(f"SELECT {columns} FROM org_changes WHERE org_id = :org ORDER BY id DESC"), {"org": org_id}
        )
        return result_frame(found)


@contextmanager
def _placing_refusals() -> Iterator[None]:
    """A position the placing rules refuse, as this module's error."""
    try:
        yield
    except placing.PlacementError as exc:
        raise EditError(exc.status, exc.zh, exc.en) from None


def _known(values: dict) -> dict:
    """``values`` limited to :data:`EDITABLE`; any other name is refused, naming it."""
    unknown = sorted(set(values) - set(EDITABLE) - {"org_id"})
    if unknown:
        names = ", ".join(unknown)
        raise EditError(400, f"不能更正的字段：{names}", f"fields that cannot be corrected: {names}")
    return {k: v for k, v in values.items() if k != "org_id"}


def _fields(found: dict) -> dict:
    return {f: found[f] for f in EDITABLE}


def defaults() -> dict:
    """The fields of a new record before anything is filled in."""
    return {f: ORGS.column(f).default for f in EDITABLE}


def _kept(current: dict) -> Position | None:
    if current["lon"] is None:
        return None
    return Position(current["lon"], current["lat"])


def spelled(value) -> str:
    """A value as a ledger cell spells it, for the importer's checks."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, list | tuple):
        return ";".join(str(v) for v in value)
    return str(value).strip()


def _checked(store: Store, conn, values: dict, org_id: str, position: Position | None) -> dict:
    """``values`` typed as the importer types them; :class:`EditError` (400) naming every field
    it would refuse, and every text longer than its column holds."""
    row = {"org_id": org_id, **{f: spelled(v) for f, v in values.items()}}
    if position is not None:
        row |= {"lon": repr(position.lon), "lat": repr(position.lat)}
    table = RawTable(pd.DataFrame([row], dtype=object).astype(str), None, 1, None)
    given = [v.strip() for v in _LIST.split(row["party_org_id"]) if v.strip()]
    sql = text("SELECT party_org_id FROM party_orgs WHERE party_org_id IN :ids").bindparams(_IDS)
    known = conn.execute(sql, {"ids": given or [""]}).scalars()
    checked = validate(ORGS, table, "wgs84", Context(party_org_ids=set(known)))
    problems = [
        {"field": i.column, "value": i.value, "zh": i.zh, "en": i.en}
        for i in checked.issues
        if i.severity == "error" and i.column in (*EDITABLE, "lon", "lat")
    ]
    out = checked.frame.iloc[0]
    wanted = {f: _plain(out[f]) for f in EDITABLE}
    # Stored as the record reads them back: each link once, in order.
    wanted["party_org_id"] = ";".join(sorted({v for v in (wanted["party_org_id"] or "").split(";") if v})) or None
    for field in OWN:
        limit = getattr(Organization.__table__.c[field].type, "length", None)
        if isinstance(wanted[field], str) and limit and len(wanted[field]) > limit:
            problems.append(
                {
                    "field": field,
                    "value": wanted[field][:20],
                    "zh": f"超过 {limit} 个字",
                    "en": f"over {limit} characters",
                }
            )
    problems += _branch_limits(conn, org_id, wanted["party_org_id"])
    if problems:
        fields = ", ".join(dict.fromkeys(p["field"] for p in problems))
        first = problems[0]
        raise EditError(
            400,
            f"{ORGS.column(first['field']).zh if first['field'] in EDITABLE else first['field']}：{first['zh']}",
            f"{fields}: {first['en']}",
            issues=problems,
        )
    return wanted


def _plain(value):
    """A pandas cell as a plain Python value (None for missing)."""
    if value is None or (not isinstance(value, str | bool) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    return value


def _branch_limits(conn, org_id: str, links: str | None) -> list[dict]:
    """A problem for each joint branch the record would join beyond its :data:`MAX_UNITS` units."""
    wanted = [v for v in (links or "").split(";") if v]
    if not wanted:
        return []
    sql = text(
        "SELECT p.party_org_id, count(o.id) FROM party_orgs p "
        "LEFT JOIN party_org_coverage c ON c.party_org_id = p.id "
        "LEFT JOIN organizations o ON o.id = c.organization_id AND o.org_id <> :org "
        "WHERE p.coverage_kind = 'joint' AND p.party_org_id IN :ids GROUP BY p.party_org_id"
    ).bindparams(_IDS)
    full = [(p, n) for p, n in conn.execute(sql, {"org": org_id, "ids": wanted}) if n + 1 > MAX_UNITS]
    return [
        {
            "field": "party_org_id",
            "value": p,
            "zh": f"联合党支部 {p} 已覆盖 {n} 个单位，至多 {MAX_UNITS} 个",
            "en": f"joint branch {p} already covers {n} units; at most {MAX_UNITS}",
        }
        for p, n in full
    ]


def _write(store: Store, conn, internal: int, wanted: dict, changed: list[str]) -> None:
    own = [f for f in changed if f in OWN]
    if own:
        assignments = ", ".join(f"{f} = :{f}" for f in own)
        conn.execute(
            text(f"UPDATE organizations SET {assignments} WHERE id = :id"),
            {**{f: wanted[f] for f in own}, "id": internal},
        )
    if {"party_org_id", "instructor"} & set(changed):
        conn.execute(text("DELETE FROM party_org_coverage WHERE organization_id = :id"), {"id": internal})
        conn.execute(
            text("DELETE FROM instructors WHERE organization_id = :id AND person_id IS NULL"), {"id": internal}
        )
        _write_links(store, conn, internal, wanted)


def _write_links(store: Store, conn, internal: int, wanted: dict) -> None:
    for party in [v for v in (wanted["party_org_id"] or "").split(";") if v]:
        conn.execute(
            text(
                "INSERT INTO party_org_coverage (party_org_id, organization_id) "
                "SELECT id, :org FROM party_orgs WHERE party_org_id = :party"
            ),
            {"org": internal, "party": party},
        )
    if wanted["instructor"]:
        conn.execute(
            text("INSERT INTO instructors (organization_id, role) VALUES (:org, 'instructor')"), {"org": internal}
        )


def _history(conn, org_id: str, username: str | None, via: str, entries: list) -> None:
    if via not in CHANGE_VIAS:
        raise ValueError(f"via must be one of {CHANGE_VIAS}")
    at = datetime.now(UTC)
    rows = []
    for field, before, after in entries:
        if field == WHOLE_RECORD:
            old, new = _whole(before), _whole(after)
        else:
            old, new = spelled(before[field]) or None, spelled(after[field]) or None
        rows.append(
            {"org_id": org_id, "at": at, "username": username, "via": via, "field": field, "old": old, "new": new}
        )
    conn.execute(insert(org_changes), rows)


def _whole(found: dict | None) -> str | None:
    if found is None:
        return None
    return json.dumps({k: v for k, v in found.items() if k != "id"}, ensure_ascii=False, sort_keys=True)
