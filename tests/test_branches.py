"""Joint-branch proposals against exact answers (issue 26): cases where the old greedy pass was
provably short, generated cities whose optimum HiGHS finds when given the time, the rules
re-checked on every proposal, the bound, determinism, and settings outside the rules."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

import geo.branches as branches
from geo.branches import Rules, propose_joint_branches


def _units(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["org_id", "members", "x", "y", "community_code", "industry"])


def _check_rules(result: branches.JointBranches, units: pd.DataFrame, rules: Rules | None = None) -> None:
    rules = rules or Rules()
    proposals = result.proposals
    assert proposals["org_id"].is_unique
    xy = units.set_index("org_id")[["x", "y"]]
    for _, group in proposals.groupby("proposal_id"):
        assert 2 <= len(group) <= rules.max_units
        assert group["party_members"].sum() >= rules.min_members
        pts = xy.loc[group["org_id"]].to_numpy()
        widest = max(np.hypot(*(a - b)) for a, b in itertools.combinations(pts, 2))
        assert widest <= rules.max_distance_m + 1e-6
        assert widest == pytest.approx(group["spread_m"].iloc[0], abs=0.1)


def _city(n: int, seed: int, spread: float = 30_000, clusters: int = 200, sd: float = 1_500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, spread, (clusters, 2))
    k = rng.integers(0, clusters, n)
    xy = centres[k] + rng.normal(0, sd, (n, 2))
    return pd.DataFrame(
        {
            "org_id": [f"U{i:05d}" for i in range(n)],
            "members": rng.integers(1, 3, n),
            "x": xy[:, 0],
            "y": xy[:, 1],
            "community_code": [f"530102{c % 20:03d}{c:03d}" for c in k],
            "industry": rng.choice(["物流", "餐饮", "互联网", "商贸"], n),
        }
    )


def test_three_close_units_in_two_cells_and_communities_form_one_branch():
    # 70 m apart, but on both sides of a lattice line and in two communities: the greedy
    # pass grouped by community, then by cell, and left all three out.
    units = _units(
        [
            ("A", 1, 650, 10, "530102001001", "物流"),
            ("B", 1, 700, 10, "530102001002", "餐饮"),
            ("C", 1, 720, 10, "530102001003", "商贸"),
        ]
    )
    result = propose_joint_branches(units)
    assert sorted(result.proposals["org_id"]) == ["A", "B", "C"]
    assert result.components["bound"].sum() == 3 and result.components["exact"].all()


def test_a_chain_is_cut_where_every_unit_fits():
    # Six one-member units 400 m apart in one community: only {1,2,3} and {4,5,6} cover all
    # six; cutting from the other end, or a pair first, leaves units out.
    units = _units([(f"L{i}", 1, 400.0 * i, 0, "530102001001", "物流") for i in range(6)])
    result = propose_joint_branches(units)
    groups = result.proposals.groupby("proposal_id")["org_id"].apply(sorted).tolist()
    assert sorted(groups) == [["L0", "L1", "L2"], ["L3", "L4", "L5"]]


def test_a_two_member_unit_pairs_where_two_one_member_units_cannot():
    units = _units(
        [
            ("P", 2, 0, 0, "530102001001", "物流"),
            ("Q", 1, 300, 0, "530102001001", "物流"),
            ("R", 1, 5000, 0, "530102001001", "物流"),
            ("S", 1, 5300, 0, "530102001001", "物流"),
        ]
    )
    result = propose_joint_branches(units)
    assert sorted(result.proposals["org_id"]) == ["P", "Q"]
    assert result.components["bound"].sum() == 2


def test_the_lower_aims_choose_among_equally_large_solutions():
    # Three units of community X and three of Y, all within 1000 m: two branches either way;
    # one per community is preferred, then one industry within it.
    rows = [(f"X{i}", 1, 100.0 * i, 0, "530102001001", "物流") for i in range(3)]
    rows += [(f"Y{i}", 1, 100.0 * i + 50, 80, "530102001002", "餐饮") for i in range(3)]
    result = propose_joint_branches(_units(rows))
    groups = sorted(result.proposals.groupby("proposal_id")["org_id"].apply(sorted).tolist())
    assert groups == [["X0", "X1", "X2"], ["Y0", "Y1", "Y2"]]
    assert set(result.proposals["round"]) == {1}


@pytest.mark.parametrize("n, clusters, sd, seed", [(400, 30, 600, 2), (400, 40, 500, 3), (500, 50, 600, 4)])
def test_generated_cities_reach_98_percent_of_the_optimum(monkeypatch, n, clusters, sd, seed):
    # Clustered enough that some components are too crowded to enumerate by default.
    units = _city(n, seed, clusters=clusters, sd=sd)
    result = propose_joint_branches(units)
    _check_rules(result, units)
    assert not result.components["exact"].all()
    covered = len(result.proposals)
    # The optimum: every component enumerated and solved without the limits.
    monkeypatch.setattr(branches, "MAX_GROUPS_PER_COMPONENT", 10**7)
    monkeypatch.setattr(branches, "MAX_GROUPS_PER_SOLVE", 10**7)
    monkeypatch.setattr(branches, "SOLVE_SECONDS", 120.0)
    best = propose_joint_branches(units)
    assert best.components["exact"].all()
    optimum = len(best.proposals)
    assert covered >= 0.98 * optimum
    # The bound holds, per component and per area.
    assert result.components["bound"].sum() >= optimum
    bounds = result.area_bounds(units["community_code"])
    assert (bounds["covered"] <= bounds["bound"]).all() and (bounds["bound"] <= bounds["eligible"]).all()
    assert bounds["eligible"].sum() == len(units) and bounds["covered"].sum() == covered


def test_a_market_hall_is_packed_by_cells_within_the_time_limit():
    # Two thousand units inside 100 m: C(2000, 5) groups cannot be enumerated.
    rng = np.random.default_rng(5)
    n = 2000
    units = _units(
        [(f"M{i:04d}", int(rng.integers(1, 3)), *rng.uniform(0, 100, 2), "530102001001", "商贸") for i in range(n)]
    )
    result = propose_joint_branches(units)
    _check_rules(result, units)
    assert len(result.proposals) >= n - 2
    assert result.components["bound"].sum() == n


def test_proposals_are_the_same_for_the_same_input():
    units = _city(400, 9)
    first, second = propose_joint_branches(units), propose_joint_branches(units)
    pd.testing.assert_frame_equal(first.proposals, second.proposals)


def test_no_eligible_unit_means_no_proposal_and_a_distance_of_zero_groups_only_one_point():
    empty = propose_joint_branches(_units([]))
    assert empty.proposals.empty and empty.components.empty
    units = _units(
        [("A", 1, 0, 0, "c", "i"), ("B", 2, 0, 0, "c", "i"), ("C", 1, 1, 0, "c", "i"), ("D", 2, 1, 0.5, "c", "i")]
    )
    result = propose_joint_branches(units, Rules(max_distance_m=0))
    assert sorted(result.proposals["org_id"]) == ["A", "B"]


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"max_units": 6}, "2–5"),
        ({"max_units": 1}, "2–5"),
        ({"min_members": 2}, "党章"),
        ({"max_distance_m": -1}, "负"),
    ],
)
def test_settings_outside_the_rules_are_refused_naming_the_rule(settings, words):
    with pytest.raises(ValueError, match=words):
        Rules(**settings)
