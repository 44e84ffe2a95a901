"""Joint-branch proposals (联合党支部, 撤一建一) that cover as many small units as the rules allow,
and branch-size flags.

**The rules.** Units with 1–2 full members and no party organization may be grouped into a
proposal of 2 to ``max_units`` (5) units holding at least ``min_members`` (3) full members
together, every two units at most ``max_distance_m`` apart. A proposal is thus a clique of the
"within distance" graph; any clique of three or more units qualifies, a pair only when one of
them has two members.

**The objective**, in lexicographic order (the seed's 地域相邻、行业相近、规模适当、便于管理):

1. the number of units covered;
2. then groups within one community, then within one street;
3. then groups of one industry;
4. then groups of 3–5 units before pairs, and compact groups (small largest distance).

**The method.** The units are split into the connected components of the within-distance
graph; no proposal crosses two. In each component every feasible group (a clique of 2–5 units
meeting the member rule) is enumerated, whole-array, size by size, and the component is solved
exactly as a set-packing problem with HiGHS (``scipy.optimize.milp``), several components per
call, within a time limit. A component with too many feasible groups (a market hall of
hundreds of units within 100 m) is not enumerated: it is cut into lattice cells of
``max_distance_m / √2``, inside which every two units are close enough, each cell's units are
cut into runs of three (community, then street, then industry first, along a Z-order curve),
and the units left over are solved exactly among themselves, then inserted into neighbouring
groups that stay within the rules. Every step is a whole-array operation or one solver call
per batch of components, never a loop per unit.

**The bound.** For an exactly solved component the optimum is its bound; otherwise (a cut
component, or a solve stopped by the time limit) the bound is the number of its units that
belong to some feasible group — no solution can cover more. Per area, the bound is the number
of the area's units that could be covered, capped by their component's bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

#: The Party Constitution's floor: a branch needs three full members (党章第三十条).
MIN_MEMBERS = 3
#: Most units one joint branch should serve, by local practice (规模适当、便于管理).
MAX_UNITS = 5
#: Units in one lattice cell from which the cell is packed by runs before anything is listed.
CROWDED_CELL = 12
#: Most feasible groups enumerated in one component before it is cut into cells instead.
MAX_GROUPS_PER_COMPONENT = 300
#: Most feasible groups in one solver call (components are batched up to this).
MAX_GROUPS_PER_SOLVE = 1_000
#: Branch-and-bound nodes one solver call may explore, and its time limit (s).
SOLVE_NODES = 500
SOLVE_SECONDS = 5.0
#: Per area: units that could join a joint branch, those in a proposal, and at most how many
#: any proposals could hold.
BOUND_COLUMNS = ("branch_eligible", "branch_covered", "branch_bound")


@dataclass(frozen=True)
class Rules:
    """The hard rules of a proposal; refused when outside what the rules allow."""

    max_distance_m: float = 1000.0
    max_units: int = MAX_UNITS
    min_members: int = MIN_MEMBERS

    def __post_init__(self) -> None:
        if not 2 <= self.max_units <= MAX_UNITS:
            raise ValueError(f"联合党支部的单位数应为 2–{MAX_UNITS} 个 / a joint branch serves 2 to {MAX_UNITS} units")
        if self.min_members < MIN_MEMBERS:
            raise ValueError(
                f"成立党支部需正式党员 {MIN_MEMBERS} 人以上（党章第三十条） / "
                f"a branch needs at least {MIN_MEMBERS} full members (Party Constitution, art. 30)"
            )
        if not self.max_distance_m >= 0:
            raise ValueError("单位间最大距离不能为负 / the largest distance cannot be negative")


@dataclass
class JointBranches:
    """Proposals and how far they are from the best the rules allow."""

    #: ``proposal_id``, ``org_id``, ``party_members``, ``spread_m``, ``round`` (1 one
    #: community and industry, 2 one community, 3 one street, 4 neighbours), one row per unit.
    proposals: pd.DataFrame
    #: Per eligible unit: ``org_id``, ``component``, ``coverable`` (in some feasible group) and
    #: ``covered``.
    units: pd.DataFrame
    #: Per component: ``units``, ``covered``, ``bound`` and ``exact`` (solved to optimality).
    components: pd.DataFrame

    def area_bounds(self, area_codes: pd.Series) -> pd.DataFrame:
        """Per area (``area_codes`` aligned with ``units``): units ``eligible``, ``covered``, and
        an upper ``bound`` on the units any proposals could cover there."""
        frame = self.units.assign(area=area_codes.to_numpy())
        per = frame.groupby(["area", "component"]).agg(
            eligible=("org_id", "size"), covered=("covered", "sum"), coverable=("coverable", "sum")
        )
        cap = self.components["bound"].reindex(per.index.get_level_values("component")).to_numpy()
        per["bound"] = np.minimum(per["coverable"].to_numpy(), cap)
        return per.groupby(level="area")[["eligible", "covered", "bound"]].sum().astype(int)


def propose_joint_branches(units: pd.DataFrame, rules: Rules | None = None) -> JointBranches:
    """Joint-branch proposals for eligible units.

    Parameters
    ----------
    units : DataFrame
        One row per eligible unit (1–2 full members, no party organization) with ``org_id``,
        ``members``, ``x``, ``y`` (metric CRS, metres), ``community_code`` and ``industry``.
    rules : Rules, optional
        The hard rules (largest distance in metres, most units, fewest members).
    """
    rules = rules or Rules()
    frame = units.reset_index(drop=True)
    n = len(frame)
    xy = frame[["x", "y"]].to_numpy(dtype=float).reshape(n, 2)
    members = frame["members"].to_numpy(dtype=np.int64)
    keys = _Keys(
        frame["community_code"].fillna("").astype(str).to_numpy(dtype=object),
        frame["industry"].fillna("").astype(str).to_numpy(dtype=object),
        xy,
        rules.max_distance_m,
    )
    # Crowded lattice cells are packed first, by runs: listing the pairs within distance there
    # would cost memory by the square of the crowd, and a crowd is covered whole anyway.
    cx, cy = _cells(xy, rules)
    cell = pd.factorize(pd.Series(cx) * (1 << 32) + pd.Series(cy))[0]
    crowded = np.bincount(cell, minlength=1)[cell] >= CROWDED_CELL if n else np.zeros(0, dtype=bool)
    packed_units = np.flatnonzero(crowded)
    packed_group = _cell_groups(packed_units, xy, members, keys, rules)
    packed = _as_rows(packed_units, packed_group, rules.max_units)
    rest = np.sort(np.r_[np.flatnonzero(~crowded), packed_units[packed_group < 0]])
    rows, component, coverable, bound, cut = _optimise(rest, xy, members, keys, rules)
    # Units within reach of a crowded cell may belong with its units: their bound stays loose.
    near = _near(cx[rest], cy[rest], cx[crowded], cy[crowded])
    coverable[near] = True
    chosen = _insert_leftovers(np.vstack([packed, rows]), np.arange(n), xy, rules)
    proposals, covered = _proposals(chosen, frame, members, keys)
    # Every packed group is a component of its own for the bound: all of it is covered.
    unit_component = np.full(n, -1, dtype=np.int64)
    unit_component[rest] = component
    offset = component.max() + 1 if len(component) else 0
    packed_units_all = packed[packed >= 0]
    unit_component[packed_units_all] = offset + np.repeat(np.arange(len(packed)), (packed >= 0).sum(axis=1))
    unit_coverable = np.ones(n, dtype=bool)
    unit_coverable[rest] = coverable
    per_unit = pd.DataFrame({"org_id": frame["org_id"].to_numpy(), "component": unit_component})
    per_unit["coverable"], per_unit["covered"] = unit_coverable, covered
    summary = per_unit.groupby("component").agg(
        units=("org_id", "size"), covered=("covered", "sum"), coverable=("coverable", "sum")
    )
    loose = np.zeros(len(summary), dtype=bool)
    solved = summary.index < offset
    loose[solved] = cut[summary.index[solved]]
    loose[solved] |= pd.Series(near).groupby(component).any().reindex(summary.index[solved]).to_numpy()
    tight = bound.reindex(summary.index).fillna(0).to_numpy(dtype=float, copy=True)
    tight[~solved] = summary["units"].to_numpy()[~solved]
    summary["bound"] = np.where(loose, summary["coverable"], np.minimum(tight, summary["coverable"]))
    summary["bound"] = np.maximum(summary["bound"], summary["covered"]).astype(int)
    summary["exact"] = ~loose & (summary["covered"] == summary["bound"])
    return JointBranches(proposals, per_unit, summary[["units", "covered", "bound", "exact"]])


def _optimise(units: np.ndarray, xy: np.ndarray, members: np.ndarray, keys: _Keys, rules: Rules):
    """Proposals for ``units`` (indices) by components: answers the chosen groups (rows of unit
    indices), each unit's component and whether it is coverable, the bound per component, and
    which components were too crowded to enumerate."""
    sub_xy, sub_members, sub_keys = xy[units], members[units], keys.subset(units)
    pairs, component, groups, cut, chosen, bound = _listed(sub_xy, sub_members, sub_keys, rules)
    coverable = np.zeros(len(units), dtype=bool)
    coverable[np.unique(groups[groups >= 0])] = True
    if cut.any():
        cut_units = np.flatnonzero(cut[component])
        coverable[cut_units] = _maybe_coverable(cut_units, pairs, sub_members, rules)
        chosen.append(_pack_cut(cut_units, sub_xy, sub_members, sub_keys, rules))
    return _of(units, _stacked(chosen, rules.max_units)), component, coverable, bound, cut


def _listed(xy: np.ndarray, members: np.ndarray, keys: _Keys, rules: Rules):
    """The pairs within distance, their components, every feasible group of the components not
    too crowded to list, which components were, and the groups set packing chooses with the
    bound per component."""
    n = len(xy)
    pairs = cKDTree(xy).query_pairs(rules.max_distance_m, output_type="ndarray") if n > 1 else np.empty((0, 2), int)
    component = _components(n, pairs)
    groups, cut = _feasible_groups(n, pairs, members, component, rules)
    chosen, bound = _solve(groups, component, keys)
    return pairs, component, groups, cut, chosen, bound


def _stacked(chosen: list[np.ndarray], width: int) -> np.ndarray:
    """Lists of groups (rows of unit indices) as one array of ``width`` columns."""
    picked = [c for c in chosen if len(c)]
    return np.vstack(picked) if picked else np.empty((0, width), dtype=np.int64)


def _of(units: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Rows of indices into ``units`` as rows of ``units``' own indices (-1 stays padding)."""
    return np.where(rows >= 0, units[np.maximum(rows, 0)], -1)


def _near(x: np.ndarray, y: np.ndarray, crowded_x: np.ndarray, crowded_y: np.ndarray) -> np.ndarray:
    """Whether each cell (``x``, ``y``) lies within two cells of a crowded one: the reach of the
    distance, since a cell's diagonal is the distance itself."""
    taken = set()
    if len(crowded_x):
        taken = np.unique(crowded_x * (1 << 32) + crowded_y)
    out = np.zeros(len(x), dtype=bool)
    if not len(taken):
        return out
    for dx in range(-2, 3):
        for dy in range(-2, 3):
            out |= np.isin((x + dx) * (1 << 32) + (y + dy), taken)
    return out


def _components(n: int, pairs: np.ndarray) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1] if n else np.empty(0, dtype=np.int32)


def _pair_codes(pairs: np.ndarray, n: int) -> np.ndarray:
    """Sorted codes ``i * n + j`` (i < j) of the pairs within distance, for membership tests."""
    return np.sort(pairs[:, 0].astype(np.int64) * n + pairs[:, 1])


def _adjacent(codes: np.ndarray, n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Whether units ``a`` and ``b`` (arrays, ``a < b``) are within distance."""
    wanted = a.astype(np.int64) * n + b
    at = np.searchsorted(codes, wanted)
    return (at < len(codes)) & (codes[np.minimum(at, len(codes) - 1)] == wanted)


def _feasible_groups(
    n: int, pairs: np.ndarray, members: np.ndarray, component: np.ndarray, rules: Rules
) -> tuple[np.ndarray, np.ndarray]:
    """Every feasible group of the components that are not too crowded: an array of unit
    indices, one row per group, -1 padded to ``max_units``; and which components were too
    crowded to enumerate (by component number)."""
    codes = _pair_codes(pairs, n)
    size = np.bincount(component, minlength=1)
    cut = np.zeros(len(size), dtype=bool)
    # Neighbours after each unit, as CSR: extending a clique by a unit after its last one.
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    starts = np.searchsorted(pairs[order, 0], np.arange(n + 1))
    after = pairs[order, 1]
    # A component's number of cliques is at most the sum over its units of C(degree, k-1):
    # a cheap refusal of the crowded ones before any enumeration.
    degree = np.diff(starts)
    estimate = np.zeros(len(size))
    for k in range(2, rules.max_units + 1):
        estimate += np.bincount(component, weights=_choose(degree, k - 1), minlength=len(size))
    cut |= estimate > 50 * MAX_GROUPS_PER_COMPONENT
    cliques = [pairs[~cut[component[pairs[:, 0]]]]]
    for _ in range(3, rules.max_units + 1):
        last = cliques[-1]
        if not len(last):
            break
        # Each clique × each neighbour after its last unit, kept when adjacent to all others.
        counts = starts[last[:, -1] + 1] - starts[last[:, -1]]
        base = np.repeat(last, counts, axis=0)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        extra = after[np.repeat(starts[last[:, -1]], counts) + offsets]
        keep = np.ones(len(base), dtype=bool)
        for column in range(base.shape[1] - 1):
            keep &= _adjacent(codes, n, base[:, column], extra)
        grown = np.column_stack([base[keep], extra[keep]])
        per_component = np.bincount(component[grown[:, 0]], minlength=len(size)) if len(grown) else 0
        crowded = per_component > MAX_GROUPS_PER_COMPONENT
        cut |= crowded
        cliques = [c[~cut[component[c[:, 0]]]] for c in cliques]
        cliques.append(grown[~cut[component[grown[:, 0]]]] if len(grown) else grown.reshape(0, base.shape[1] + 1))
    padded = [np.pad(c, ((0, 0), (0, rules.max_units - c.shape[1])), constant_values=-1) for c in cliques if len(c)]
    groups = np.vstack(padded) if padded else np.empty((0, rules.max_units), dtype=np.int64)
    total = np.where(groups >= 0, members[np.maximum(groups, 0)], 0).sum(axis=1)
    groups = groups[total >= rules.min_members]
    return groups, cut


def _choose(values: np.ndarray, k: int) -> np.ndarray:
    out = np.ones(len(values))
    for i in range(k):
        out *= np.maximum(values - i, 0) / (i + 1)
    return out


@dataclass
class _Keys:
    """What the objective's lower levels compare: communities, streets, industries, places."""

    community: np.ndarray
    industry: np.ndarray
    xy: np.ndarray
    max_distance_m: float

    def __post_init__(self) -> None:
        self.community_id = pd.factorize(self.community)[0]
        self.street_id = pd.factorize(pd.Series(self.community).str[:9].to_numpy(dtype=object))[0]
        self.industry_id = pd.factorize(self.industry)[0]

    def subset(self, units: np.ndarray) -> _Keys:
        """The keys of ``units`` (indices) alone."""
        return _Keys(self.community[units], self.industry[units], self.xy[units], self.max_distance_m)

    def round_of(self, groups: np.ndarray) -> np.ndarray:
        """1 one community and industry, 2 one community, 3 one street, 4 neighbours."""
        same_community = _same(self.community_id, groups) & (self.community[groups[:, 0]] != "")
        same_street = _same(self.street_id, groups) & (self.community[groups[:, 0]] != "")
        same_industry = _same(self.industry_id, groups)
        return np.select([same_community & same_industry, same_community, same_street], [1, 2, 3], 4)

    def spread(self, groups: np.ndarray) -> np.ndarray:
        """Largest distance between two units of each group (m)."""
        widest = np.zeros(len(groups))
        for a in range(groups.shape[1]):
            for b in range(a + 1, groups.shape[1]):
                both = (groups[:, a] >= 0) & (groups[:, b] >= 0)
                d = np.hypot(*(self.xy[np.maximum(groups[:, a], 0)] - self.xy[np.maximum(groups[:, b], 0)]).T)
                widest = np.where(both, np.maximum(widest, d), widest)
        return widest


def _same(ids: np.ndarray, groups: np.ndarray) -> np.ndarray:
    first = ids[groups[:, 0]]
    return np.all((groups < 0) | (ids[np.maximum(groups, 0)] == first[:, None]), axis=1)


def _solve(groups: np.ndarray, component: np.ndarray, keys: _Keys) -> tuple[list[np.ndarray], pd.Series]:
    """The groups chosen by set packing, batch by batch of whole components, and per component
    an upper bound on the units it can have covered (its optimum when proved)."""
    if not len(groups):
        return [], pd.Series(dtype=float)
    owner = component[groups[:, 0]]
    order = np.argsort(owner, kind="stable")
    groups, owner = groups[order], owner[order]
    # A component that is one feasible group as a whole needs no solver: that group covers all
    # of it (so does a component's only feasible group, whatever it covers).
    size = (groups >= 0).sum(axis=1)
    whole = size == np.bincount(component)[owner]
    settled = np.zeros(component.max() + 1, dtype=bool)
    settled[owner[whole]] = True
    alone = whole | (np.bincount(owner)[owner] == 1)
    chosen = [groups[alone]]
    bounds = [pd.Series(size[alone].astype(float), index=owner[alone])]
    rest_mask = ~alone & ~settled[owner]
    rest, rest_owner = groups[rest_mask], owner[rest_mask]
    if len(rest):
        firsts = np.flatnonzero(np.r_[True, rest_owner[1:] != rest_owner[:-1]])
        sizes = np.diff(np.r_[firsts, len(rest)])
        batch_of = np.repeat(np.cumsum(sizes) // MAX_GROUPS_PER_SOLVE, sizes)
        for batch in np.unique(batch_of):
            mine = batch_of == batch
            picked, bound = _set_packing(rest[mine], rest_owner[mine], keys)
            chosen.append(rest[mine][picked])
            bounds.append(bound)
    return chosen, pd.concat(bounds)


def _secondary(groups: np.ndarray, keys: _Keys) -> np.ndarray:
    """Each group's value at the objective's lower levels, in [0, 1]: one community, then one
    street, then one industry, then size and compactness, each weighed ten times the next."""
    size = (groups >= 0).sum(axis=1)
    level = keys.round_of(groups)
    compact = np.clip(1.0 - keys.spread(groups) / max(keys.max_distance_m, 1.0), 0, 1)
    fine = ((size >= 3) + compact) / 2
    community, street, industry = (level <= 2), (level <= 3), (level == 1)
    return (1000 * community + 100 * street + 10 * industry + fine) / 1111


def _set_packing(groups: np.ndarray, owner: np.ndarray, keys: _Keys) -> tuple[np.ndarray, pd.Series]:
    """Which groups to take (no unit twice), and per component (``owner`` of each group) an
    upper bound on the units covered.

    One objective: the units a group covers, plus its lower-level value scaled so that all of a
    component's groups together add less than one unit — so no unit is ever traded for a
    better-placed group. The LP relaxation comes first: when it is integral it is the answer;
    otherwise its value per component, rounded down, is the bound, and HiGHS searches for the
    integer optimum within the time limit (the optimum, when proved, is the bound).
    """
    size = (groups >= 0).sum(axis=1).astype(float)
    rows = groups[groups >= 0]
    columns = np.repeat(np.arange(len(groups)), (groups >= 0).sum(axis=1))
    units, row = np.unique(rows, return_inverse=True)
    matrix = sparse.csr_matrix((np.ones(len(rows)), (row, columns)), shape=(len(units), len(groups)))
    # A solution holds at most half a component's units as groups: the lower levels of all of
    # them together stay below one unit.
    unit_owner = np.unique(np.column_stack([owner[columns], rows]), axis=0)[:, 0]
    epsilon = 1.0 / (np.bincount(unit_owner).max() / 2 + 1)
    value = size + epsilon * _secondary(groups, keys)
    packing = LinearConstraint(matrix, 0, 1)
    relaxed = milp(-value, constraints=packing, integrality=np.zeros(len(groups)), bounds=Bounds(0, 1))
    x = relaxed.x if relaxed.x is not None else np.zeros(len(groups))
    bound = pd.Series(value * x).groupby(owner).sum()
    if np.all((x < 1e-7) | (x > 1 - 1e-7)):
        picked = x > 0.5
    else:
        answer = milp(
            -value,
            constraints=packing,
            integrality=np.ones(len(groups)),
            bounds=Bounds(0, 1),
            # A node limit, not only a time limit: the same input gives the same proposals
            # on any machine; the time limit is a guard for a pathological batch.
            options={"node_limit": SOLVE_NODES, "time_limit": SOLVE_SECONDS, "disp": False},
        )
        picked = answer.x > 0.5 if answer.x is not None else np.zeros(len(groups), dtype=bool)
        if answer.status == 0:
            bound = pd.Series(value * picked).groupby(owner).sum()
    return picked, np.floor(bound + 1e-6)


def _maybe_coverable(cut_units: np.ndarray, pairs: np.ndarray, members: np.ndarray, rules: Rules) -> np.ndarray:
    """An upper bound for units of crowded components: those with two neighbours or more, or one
    neighbour that completes the member count."""
    degree = np.bincount(pairs.ravel(), minlength=len(members))
    partner = np.zeros(len(members), dtype=np.int64)
    np.maximum.at(partner, pairs[:, 0], members[pairs[:, 1]])
    np.maximum.at(partner, pairs[:, 1], members[pairs[:, 0]])
    ok = (degree >= 2) | ((degree == 1) & (members + partner >= rules.min_members))
    return ok[cut_units]


def _pack_cut(cut_units: np.ndarray, xy: np.ndarray, members: np.ndarray, keys: _Keys, rules: Rules) -> np.ndarray:
    """Groups for the units of crowded components: runs of three inside lattice cells (every two
    units of a cell are within distance), the leftovers solved among themselves, then inserted
    into groups they fit."""
    group = _cell_groups(cut_units, xy, members, keys, rules)
    out = _as_rows(cut_units, group, rules.max_units)
    leftover = cut_units[group < 0]
    if len(leftover) > 1:
        picked = _listed(xy[leftover], members[leftover], keys.subset(leftover), rules)[4]
        out = np.vstack([out, _of(leftover, _stacked(picked, rules.max_units))])
    return _insert_leftovers(out, cut_units, xy, rules)


def _cell_side(rules: Rules) -> float:
    """The lattice cell inside which every two units are within distance (m)."""
    return rules.max_distance_m / np.sqrt(2) if rules.max_distance_m > 0 else 1e-9


def _cells(xy: np.ndarray, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Each point's lattice cell, as integer column and row."""
    side = _cell_side(rules)
    return np.floor(xy[:, 0] / side).astype(np.int64), np.floor(xy[:, 1] / side).astype(np.int64)


def _cell_groups(units: np.ndarray, xy: np.ndarray, members: np.ndarray, keys: _Keys, rules: Rules) -> np.ndarray:
    """Group labels (-1: left over) for ``units``: runs of three inside each lattice cell, the
    same community and industry first, then community, then street, then the cell alone."""
    cx, cy = _cells(xy[units], rules)
    cell = pd.factorize(pd.Series(cx) * (1 << 32) + pd.Series(cy))[0]
    z = _zorder(xy[units, 0], xy[units, 1], max(_cell_side(rules) / 20, 1e-9))
    group = np.full(len(units), -1, dtype=np.int64)
    next_id = 0
    buckets = (
        (cell, keys.community_id[units], keys.industry_id[units]),
        (cell, keys.community_id[units]),
        (cell, keys.street_id[units]),
        (cell,),
    )
    for bucket in buckets:
        left = np.flatnonzero(group < 0)
        if len(left) < 2:
            break
        runs = _runs(tuple(b[left] for b in bucket), z[left], members[units[left]], rules)
        taken = runs >= 0
        group[left[taken]] = pd.factorize(runs[taken])[0] + next_id
        next_id = group.max() + 1
    return group


def _runs(bucket: tuple[np.ndarray, ...], z: np.ndarray, members: np.ndarray, rules: Rules) -> np.ndarray:
    """Group numbers (-1: none) cutting each bucket, along the Z-order, into runs of three units
    (always enough members); a bucket's last one or two units form their own group when they
    hold enough members, else join the run before them, within ``max_units``."""
    order = np.lexsort((z, *reversed(bucket)))
    keys = np.column_stack([b[order] for b in bucket])
    new_bucket = np.r_[True, np.any(keys[1:] != keys[:-1], axis=1)] if len(order) else np.array([], bool)
    bucket_id = np.cumsum(new_bucket) - 1
    position = np.arange(len(order))
    first = np.flatnonzero(new_bucket)[bucket_id]
    size = np.bincount(bucket_id)[bucket_id]
    rank = position - first
    chunk = rank // 3
    in_tail = chunk == size // 3
    tail_members = np.bincount(bucket_id, weights=np.where(in_tail, members[order], 0))[bucket_id]
    tail_alone = (size % 3 == 2) & (tail_members >= rules.min_members)
    joins = in_tail & ~tail_alone & (3 + size % 3 <= rules.max_units)
    chunk = np.where(joins, chunk - 1, np.where(in_tail & ~tail_alone, -1, chunk))
    out = np.full(len(order), -1, dtype=np.int64)
    out[order] = np.where(chunk >= 0, bucket_id * 1000 + chunk, -1)
    return out


def _as_rows(units: np.ndarray, group: np.ndarray, width: int) -> np.ndarray:
    """Group labels as rows of unit indices, -1 padded to ``width``."""
    taken = group >= 0
    if not taken.any():
        return np.empty((0, width), dtype=np.int64)
    label, unit = group[taken], units[taken]
    order = np.argsort(label, kind="stable")
    label, unit = label[order], unit[order]
    ids, first = np.unique(label, return_index=True)
    column = np.arange(len(label)) - first[np.searchsorted(ids, label)]
    rows = np.full((len(ids), width), -1, dtype=np.int64)
    rows[np.searchsorted(ids, label), column] = unit
    return rows


def _insert_leftovers(rows: np.ndarray, units: np.ndarray, xy: np.ndarray, rules: Rules) -> np.ndarray:
    """Add each unit of ``units`` left out of ``rows`` to a group with room that it is close
    enough to in whole, one unit per group per pass; two passes."""
    for _ in range(2):
        placed = rows[rows >= 0]
        left = np.setdiff1d(units, placed)
        room = np.flatnonzero((rows >= 0).sum(axis=1) < rules.max_units)
        if not len(left) or not len(room):
            break
        member_rows = rows[room]
        flat = member_rows[member_rows >= 0]
        owner = np.repeat(room, (member_rows >= 0).sum(axis=1))
        tree = cKDTree(xy[flat])
        near = tree.query_ball_point(xy[left], rules.max_distance_m)
        unit_of = np.repeat(left, [len(v) for v in near])
        hit = np.concatenate([np.asarray(v, dtype=np.int64) for v in near]) if len(near) else np.empty(0, int)
        if not len(hit):
            break
        counts = pd.DataFrame({"unit": unit_of, "row": owner[hit]}).value_counts().reset_index(name="close")
        counts["size"] = (rows[counts["row"].to_numpy()] >= 0).sum(axis=1)
        fits = counts[counts["close"] == counts["size"]].sort_values(["row", "unit"])
        fits = fits.drop_duplicates("unit").drop_duplicates("row")
        if fits.empty:
            break
        target = fits["row"].to_numpy()
        rows[target, (rows[target] >= 0).sum(axis=1)] = fits["unit"].to_numpy()
    return rows


def _zorder(x: np.ndarray, y: np.ndarray, cell: float) -> np.ndarray:
    """Morton code of each point on a lattice of ``cell`` metres (interleaved bits)."""
    ix = np.floor((x - x.min()) / cell).astype(np.uint64) if len(x) else np.array([], np.uint64)
    iy = np.floor((y - y.min()) / cell).astype(np.uint64) if len(y) else np.array([], np.uint64)
    code = np.zeros(len(x), dtype=np.uint64)
    for bit in range(24):
        code |= ((ix >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        code |= ((iy >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    return code


def _proposals(
    rows: np.ndarray, frame: pd.DataFrame, members: np.ndarray, keys: _Keys
) -> tuple[pd.DataFrame, np.ndarray]:
    """The proposal table of the groups ``rows`` (unit indices, -1 padded), numbered in a fixed
    order (by their first unit's id), and which units it covers."""
    covered = np.zeros(len(frame), dtype=bool)
    if not len(rows):
        columns = ["proposal_id", "org_id", "party_members", "spread_m", "round"]
        return pd.DataFrame(columns=columns).astype({"proposal_id": int, "party_members": int, "round": int}), covered
    ids = frame["org_id"].to_numpy(dtype=object)
    # Numbered by the smallest id among each proposal's units: the same input, the same numbers.
    rank = np.empty(len(ids), dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
    first = np.where(rows >= 0, rank[np.maximum(rows, 0)], len(ids)).min(axis=1)
    rows = rows[np.argsort(first, kind="stable")]
    spread = keys.spread(rows)
    level = keys.round_of(rows)
    size = (rows >= 0).sum(axis=1)
    unit = rows[rows >= 0]
    covered[unit] = True
    result = pd.DataFrame(
        {
            "proposal_id": np.repeat(np.arange(1, len(rows) + 1), size),
            "org_id": ids[unit],
            "party_members": members[unit],
            "spread_m": np.round(np.repeat(spread, size), 1),
            "round": np.repeat(level, size),
        }
    )
    return result.sort_values(["proposal_id", "org_id"], ignore_index=True), covered


def branch_flags(party_orgs: pd.DataFrame, own_members: pd.Series) -> pd.DataFrame:
    """Existing party organizations whose form no longer fits their size.

    ``party_orgs`` has ``party_org_id``, ``org_type``, ``coverage_kind``, ``members``;
    ``own_members`` maps an own branch's ``party_org_id`` to its unit's full members now.
    A branch over 50 members should become a 党总支, at 100 a 党委; an own branch whose unit
    has fallen below 3 full members should merge into a joint branch (撤一建一).
    """
    members = party_orgs["members"]
    suggestion = pd.Series(None, index=party_orgs.index, dtype=object)
    branch = party_orgs["org_type"].isin(["党支部", "联合党支部"])
    suggestion[branch & (members > 50)] = "党总支"
    suggestion[party_orgs["org_type"].isin(["党支部", "联合党支部", "党总支"]) & (members >= 100)] = "党委"
    below = (party_orgs["coverage_kind"] == "own") & (
        party_orgs["party_org_id"].map(own_members).fillna(MIN_MEMBERS) < MIN_MEMBERS
    )
    suggestion[below & suggestion.isna()] = "联合党支部（撤一建一）"
    reason = np.select(
        [suggestion == "党总支", suggestion == "党委", suggestion == "联合党支部（撤一建一）"],
        [
            "党员超过 50 人 / over 50 members",
            "党员 100 人以上 / 100 members or more",
            "单位正式党员不足 3 人 / unit below 3 full members",
        ],
        default="",
    )
    flagged = party_orgs.assign(suggestion=suggestion, reason=reason)
    return flagged[flagged["suggestion"].notna()].reset_index(drop=True)
