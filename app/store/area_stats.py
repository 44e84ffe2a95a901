"""Read queries of the area pages and the dashboard: an area, its ancestors and children, its
figures across runs, its industries and its blank-organization ledger.

An area is named by its code; the whole city by ``None`` (level ``city`` in ``run_areas``).
Organizations are matched to an area through the run's assignment (``run_organizations``),
so every figure here is the one the analysis computed.
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

from geo import changes
from geo.branches import BOUND_COLUMNS
from geo.coverage import RATE_COLUMNS, TALLY_COLUMNS

from . import Store, result_frame
from .models import ACTIVE_ASSIGNMENT_SQL, AREA_CODE_LENGTHS, AREA_LEVELS
from .queries import LEVEL_BY_CODE_LENGTH

#: Columns of the blank-organization ledger (台账), in order.
LEDGER_COLUMNS = (
    "org_id",
    "name",
    "org_type",
    "industry",
    "credit_code",
    "employees",
    "party_members",
    "address",
    "street_code",
    "street_name",
    "community_code",
    "community_name",
    "grid_code",
    "place_name",
    "center_name",
    "pair_distance_m",
    "reach_distance_m",
    "walk_m",
    "located_by",
)


def level_of(code: str | None) -> str:
    """The level of an area code (``city`` for None); ValueError for a code of no level."""
    if code is None:
        return "city"
    if not code.isdigit() or len(code) not in LEVEL_BY_CODE_LENGTH:
        raise ValueError(code)
    return LEVEL_BY_CODE_LENGTH[len(code)]


def child_level(level: str) -> str | None:
    """The level below ``level`` (``None`` below grids)."""
    order = ("city", *AREA_LEVELS)
    i = order.index(level)
    return order[i + 1] if i + 1 < len(order) else None


def _frame(store: Store, sql: str, params: dict) -> pd.DataFrame:
    with store.connect() as conn:
        result = conn.execute(text(sql), params)
        return result_frame(result)


def trail(store: Store, code: str) -> list[dict]:
    """The area and its ancestors, district first; empty when no area has ``code``."""
    prefixes = [code[:n] for n in sorted(AREA_CODE_LENGTHS.values()) if n <= len(code)]
    names = ", ".join(f":c{i}" for i in range(len(prefixes)))
    frame = _frame(
        store,
        f"SELECT code, name, level FROM areas WHERE code IN ({names}) ORDER BY length(code)",
        {f"c{i}": p for i, p in enumerate(prefixes)},
    )
    records = frame.to_dict("records")
    return records if records and records[-1]["code"] == code else []


def _run_columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in (*TALLY_COLUMNS, *BOUND_COLUMNS, *RATE_COLUMNS))


def children(store: Store, code: str | None, run_id: int) -> pd.DataFrame:
    """The areas one level below ``code`` with the run's counts and rates (NaN without a run)."""
    where = "a.level = 'district'" if code is None else "a.parent_code = :code"
    return _frame(
        store,
        f"SELECT a.code, a.name, a.level, {_run_columns('r')} FROM areas a LEFT JOIN run_areas r "
        f"ON r.run_id = :run AND r.level = a.level AND r.code = a.code WHERE {where} ORDER BY a.code",
        {"code": code, "run": run_id},
    )


def figures(store: Store, code: str | None, run_id: int) -> dict | None:
    """The run's counts and rates of one area (or the city); None if the run has none."""
    frame = _frame(
        store,
        f"SELECT {_run_columns('r')} FROM run_areas r WHERE r.run_id = :run AND r.level = :level AND r.code = :code",
        {"run": run_id, "level": level_of(code), "code": code or "city"},
    )
    if frame.empty:
        return None
    row = frame.iloc[0]
    return {
        **{c: int(row[c]) for c in (*TALLY_COLUMNS, *BOUND_COLUMNS)},
        **{c: None if pd.isna(row[c]) else float(row[c]) for c in RATE_COLUMNS},
    }


def trend(store: Store, code: str | None) -> pd.DataFrame:
    """The area's figures in every run, oldest first, with each run's date."""
    return _frame(
        store,
        f"SELECT r.run_id, ar.created_at, {_run_columns('r')} FROM run_areas r "
        "JOIN analysis_runs ar ON ar.id = r.run_id WHERE r.level = :level AND r.code = :code ORDER BY r.run_id",
        {"level": level_of(code), "code": code or "city"},
    )


def _area_condition(code: str | None) -> str:
    """SQL restricting ``r`` (run_organizations) to an area; the level comes from a closed set."""
    return "" if code is None else f" AND r.{level_of(code)}_code = :code"


def _now_inside(store: Store, sql: str, params: dict) -> tuple[str, dict]:
    """``sql`` over organizations ``o`` (ending in a WHERE condition) kept, for a scoped store,
    to those inside its jurisdiction now: one moved away since the run is no longer listed."""
    sql, scope = store.restrict(sql, "organizations", "o")
    return sql, {**params, **scope}


def industries(store: Store, code: str | None, run_id: int) -> pd.DataFrame:
    """Organizations of the area per industry: total, in scope, and in scope by coverage."""
    return _frame(
        store,
        "SELECT coalesce(o.industry, '未填') AS industry, count(*) AS orgs, "
        "sum(CASE WHEN r.in_scope THEN 1 ELSE 0 END) AS in_scope, "
        "sum(CASE WHEN r.in_scope AND r.status IN ('own', 'joint', 'area', 'industry') THEN 1 ELSE 0 END) AS covered, "
        "sum(CASE WHEN r.in_scope AND r.status = 'work' THEN 1 ELSE 0 END) AS work, "
        "sum(CASE WHEN r.in_scope AND r.status = 'blank' THEN 1 ELSE 0 END) AS blank "
        "FROM run_organizations r JOIN organizations o ON o.id = r.organization_id "
        f"WHERE r.run_id = :run{_area_condition(code)} GROUP BY coalesce(o.industry, '未填') ORDER BY orgs DESC",
        {"run": run_id, "code": code},
    )


def blank_ledger(store: Store, code: str | None, run_id: int, limit: int | None = None) -> pd.DataFrame:
    """The in-scope organizations with neither coverage, largest first (the 空白台账)."""
    sql = (
        "SELECT o.org_id, o.name, o.org_type, o.industry, o.credit_code, o.employees, o.party_members, o.address, "
        "r.street_code, sa.name AS street_name, r.community_code, ca.name AS community_name, r.grid_code, "
        "p.name AS place_name, c.name AS center_name, "
        "r.pair_distance_m, r.reach_distance_m, r.walk_m, o.located_by "
        "FROM run_organizations r JOIN organizations o ON o.id = r.organization_id "
        "LEFT JOIN areas sa ON sa.code = r.street_code LEFT JOIN areas ca ON ca.code = r.community_code "
        "LEFT JOIN places p ON p.place_id = r.place_id LEFT JOIN service_centers c ON c.center_id = r.center_id "
        f"WHERE r.run_id = :run AND r.in_scope AND r.status = 'blank'{_area_condition(code)}"
    )
    sql, params = _now_inside(store, sql, {"run": run_id, "code": code})
    sql += " ORDER BY o.employees DESC, o.org_id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return _frame(store, sql, params)


#: Columns of the 本期变化 list, in order.
CHANGE_COLUMNS = (
    "change",
    "org_id",
    "name",
    "community_code",
    "community_name",
    "status_before",
    "status_after",
    "moved_m",
)


def previous_run_id(store: Store, run_id: int) -> int:
    """The run stored before ``run_id`` (0 when it is the first)."""
    frame = _frame(store, "SELECT coalesce(max(id), 0) AS id FROM analysis_runs WHERE id < :run", {"run": run_id})
    return int(frame["id"].iloc[0])


def run_changes(store: Store, code: str | None, run_a: int, run_b: int) -> pd.DataFrame:
    """本期变化: what changed from run ``run_a`` to run ``run_b`` for the organizations the
    area held in either run (see ``geo.changes.run_changes``), with each one's name and
    community (its latest known), newest kinds of change first."""
    area = "" if code is None else f" AND s.{level_of(code)}_code = :code"
    frame = _frame(
        store,
        "SELECT r.run_id, r.org_id, r.status, r.operating, r.lon, r.lat, r.community_code, o.name, "
        "ca.name AS community_name FROM run_organizations r LEFT JOIN organizations o ON o.org_id = r.org_id "
        "LEFT JOIN areas ca ON ca.code = r.community_code WHERE r.run_id IN (:a, :b) AND r.org_id IN "
        f"(SELECT s.org_id FROM run_organizations s WHERE s.run_id IN (:a, :b){area})",
        {"a": run_a, "b": run_b, "code": code},
    )
    keep = ["org_id", "status", "operating", "lon", "lat", "community_code", "community_name", "name"]
    found = changes.run_changes(frame.loc[frame["run_id"] == run_a, keep], frame.loc[frame["run_id"] == run_b, keep])
    for column in ("name", "community_code", "community_name"):
        found[column] = found[f"{column}_after"].combine_first(found[f"{column}_before"])
    return found[
        ["change", "org_id", "name", "community_code", "community_name", "status_before", "status_after", "moved_m"]
    ]


#: Columns of the visits export, in order.
VISIT_COLUMNS = (
    "instructor_name",
    "visited_on",
    "org_id",
    "name",
    "community_name",
    "kind",
    "username",
    "notes",
    "distance_m",
    "far",
)


def _assigned(alias: str) -> str:
    return f"EXISTS (SELECT 1 FROM instructors i WHERE i.organization_id = {alias}.id AND {ACTIVE_ASSIGNMENT_SQL})"


def visit_figures(store: Store, code: str | None, run_id: int, since: str) -> dict:
    """Of the area's organizations with an active instructor: how many (``assigned``), how
    many were visited on or after ``since`` (ISO date; ``visited``), and their share."""
    frame = _frame(
        store,
        f"SELECT count(*) AS assigned, sum(CASE WHEN EXISTS (SELECT 1 FROM visits v WHERE v.organization_id = o.id "
        f"AND v.visited_on >= :since) THEN 1 ELSE 0 END) AS visited FROM run_organizations r JOIN organizations o "
        f"ON o.id = r.organization_id WHERE r.run_id = :run AND {_assigned('o')}{_area_condition(code)}",
        {"run": run_id, "code": code, "since": since},
    )
    assigned, visited = int(frame["assigned"].iloc[0]), int(frame["visited"].fillna(0).iloc[0])
    return {"assigned": assigned, "visited": visited, "rate": visited / assigned if assigned else None}


def reach_figures(store: Store, code: str | None, run_id: int, radius_m: float, walk_m: float) -> dict:
    """Of the area's placed organizations in scope: how many a center reaches within
    ``radius_m`` in a straight line (``line``), how many within ``walk_m`` along the streets
    (``walk``; None when the run did not walk), and how many only in a straight line."""
    frame = _frame(
        store,
        "SELECT sum(CASE WHEN r.reach_distance_m <= :radius THEN 1 ELSE 0 END) AS line, "
        "sum(CASE WHEN r.walk_m <= :walk THEN 1 ELSE 0 END) AS walk, "
        "sum(CASE WHEN r.reach_distance_m <= :radius AND (r.walk_m IS NULL OR r.walk_m > :walk) THEN 1 ELSE 0 END) "
        "AS line_only, "
        "count(r.walk_m) AS walked, count(r.reach_distance_m) AS placed "
        f"FROM run_organizations r WHERE r.run_id = :run AND r.in_scope{_area_condition(code)}",
        {"run": run_id, "code": code, "radius": radius_m, "walk": walk_m},
    )
    row = frame.fillna(0).iloc[0]
    walked = int(row["walked"]) > 0
    return {
        "placed": int(row["placed"]),
        "line": int(row["line"]),
        "walk": int(row["walk"]) if walked else None,
        "line_only": int(row["line_only"]) if walked else None,
    }


def visit_list(store: Store, code: str | None, run_id: int) -> pd.DataFrame:
    """Every visit to the area's organizations, by instructor (the organization's first active
    named instructor), then newest first."""
    first = (
        "SELECT p.name FROM instructors i JOIN instructor_people p ON p.id = i.person_id "
        f"WHERE i.organization_id = o.id AND {ACTIVE_ASSIGNMENT_SQL} ORDER BY p.name LIMIT 1"
    )
    sql, params = _now_inside(
        store,
        f"SELECT o.id, v.visited_on, o.org_id, o.name, ca.name AS community_name, v.kind, v.username, v.notes, "
        "v.distance_m, v.far FROM visits v JOIN organizations o ON o.id = v.organization_id "
        "JOIN run_organizations r ON r.run_id = :run AND r.organization_id = o.id "
        f"LEFT JOIN areas ca ON ca.code = r.community_code WHERE 1 = 1{_area_condition(code)}",
        {"run": run_id, "code": code},
    )
    frame = _frame(store, sql, params)
    people = _frame(
        store,
        f"SELECT o.id, ({first}) AS first FROM organizations o WHERE o.id IN (SELECT organization_id FROM visits)",
        {},
    )
    frame["instructor_name"] = frame["id"].map(people.set_index("id")["first"]) if len(people) else None
    frame = frame.sort_values(["instructor_name", "visited_on"], ascending=[True, False], na_position="last")
    return frame[list(VISIT_COLUMNS)].reset_index(drop=True)


def joint_branch_count(store: Store, code: str | None, run_id: int) -> int:
    """Joint-branch proposals with at least one member unit in the area."""
    return int(
        _frame(
            store,
            "SELECT count(DISTINCT j.proposal_id) AS n FROM run_joint_branches j "
            "JOIN run_organizations r ON r.run_id = j.run_id AND r.org_id = j.org_id "
            f"WHERE j.run_id = :run{_area_condition(code)}",
            {"run": run_id, "code": code},
        )["n"].iloc[0]
    )


def pairings(store: Store, code: str | None, run_id: int) -> pd.DataFrame:
    """The area's organizations with the service center each is paired with (共驻共建)."""
    sql, params = _now_inside(
        store,
        "SELECT o.org_id, o.name, r.community_code, c.center_id, c.name AS center_name, r.pair_distance_m "
        "FROM run_organizations r JOIN organizations o ON o.id = r.organization_id "
        "LEFT JOIN service_centers c ON c.center_id = r.center_id "
        f"WHERE r.run_id = :run{_area_condition(code)}",
        {"run": run_id, "code": code},
    )
    return _frame(store, f"{sql} ORDER BY r.community_code, o.org_id", params)


def joint_branches(store: Store, code: str | None, run_id: int) -> pd.DataFrame:
    """The joint-branch proposals with a member unit in the area, every member listed; for a
    scoped store, members outside its jurisdiction are only counted (``members_elsewhere``)."""
    inside = store.scope_condition("organizations", "o") or "1 = 1"
    frame = _frame(
        store,
        "SELECT j.proposal_id, j.org_id, o.name, o.industry, j.party_members, j.spread_m, "
        f"CASE WHEN {inside} THEN 1 ELSE 0 END AS inside FROM run_joint_branches j "
        "JOIN organizations o ON o.org_id = j.org_id WHERE j.run_id = :run AND j.proposal_id IN ("
        "SELECT k.proposal_id FROM run_joint_branches k JOIN run_organizations r ON r.run_id = k.run_id "
        f"AND r.org_id = k.org_id WHERE k.run_id = :run{_area_condition(code)}) ORDER BY j.proposal_id, j.org_id",
        {"run": run_id, "code": code, **store.scope_params()},
    )
    mine = frame["inside"].astype(int).to_numpy() == 1
    elsewhere = pd.Series(~mine, index=frame.index).groupby(frame["proposal_id"]).sum()
    frame = frame[mine].drop(columns="inside")
    return frame.assign(members_elsewhere=frame["proposal_id"].map(elsewhere).astype(int))
