"""共驻共建 within the jurisdiction (issue 23, part 5): a unit pairs with its own community's
center, then with another center of its street, and only then across the border."""

from __future__ import annotations

import numpy as np
import shapely

from app.services import analysis
from app.store import Store
from geo.pairing import pair_by_jurisdiction
from geo.vocabulary import PAIR_TIERS

#: Two streets side by side (x < 1000 m and x ≥ 1000 m); communities 01 and 02 in street 001.
STREET_A, STREET_B = "530102001", "530102002"
COMMUNITY_1, COMMUNITY_2 = STREET_A + "001", STREET_A + "002"
CENTERS = np.array([[900.0, 0.0], [100.0, 0.0], [500.0, 500.0], [1050.0, 0.0]])
CENTER_AREAS = np.array([COMMUNITY_1, COMMUNITY_2, STREET_A, STREET_B + "001"], dtype=object)


def test_own_community_first_then_the_street_then_across():
    points = np.array([[150.0, 0.0], [120.0, 0.0], [990.0, 0.0], [3000.0, 0.0]])
    communities = np.array([COMMUNITY_1, None, STREET_A + "009", None], dtype=object)
    streets = np.array([STREET_A, STREET_A, STREET_A, "530102009"], dtype=object)
    index, distance, tier = pair_by_jurisdiction(points, communities, streets, CENTERS, CENTER_AREAS)
    # Point 0 is 50 m from community 2's center but in community 1: its own, 750 m away.
    # Point 1 knows only its street: the nearest center of the street, community 2's (20 m).
    # Point 2's community has no center: the street's, though street B's is 60 m away.
    # Point 3's street has none: the nearest anywhere.
    assert index.tolist() == [0, 1, 0, 3]
    assert [PAIR_TIERS[t] for t in tier] == ["community", "street", "street", "elsewhere"]
    assert np.allclose(distance, [750, 20, 90, 1950])


def test_capacity_moves_a_unit_out_one_tier_at_a_time():
    points = np.array([[850.0, 0.0], [800.0, 0.0], [950.0, 0.0]])
    communities = np.array([COMMUNITY_1] * 3, dtype=object)
    streets = np.array([STREET_A] * 3, dtype=object)
    capacity = np.array([1, 0, 1, 5])
    index, distance, tier = pair_by_jurisdiction(points, communities, streets, CENTERS, CENTER_AREAS, capacity)
    # One seat at home, none at community 2's, one at the street's, the rest across: of the six
    # ways to seat them, this one is the shortest (50 + 583.1 + 100 m).
    assert index.tolist() == [0, 2, 3] and tier.tolist() == [0, 1, 2]
    assert np.allclose(distance, [50, np.hypot(300, 500), 100])


def test_the_demo_pairs_within_each_street_that_has_a_center(demo_store: Store):
    inputs = analysis.load_inputs(demo_store)
    orgs = analysis.analyze(inputs, analysis.Parameters()).organizations
    centers = inputs.centers[inputs.centers["level"].isin(["community", "street"])].set_index("center_id")
    placed = orgs.dropna(subset=["center_id"])
    street_of_center = centers["area_code"].str[:9].reindex(placed["center_id"]).to_numpy()
    has_center = placed["street_code"].isin(set(centers["area_code"].str[:9]))
    within = street_of_center == placed["street_code"].to_numpy()
    assert has_center.mean() > 0.9
    assert within[has_center.to_numpy()].all()
    # Against brute force: the nearest center of the tier each organization was given.
    xy = shapely.get_coordinates(inputs.orgs.set_index("org_id").loc[placed["org_id"]].geometry.values)
    cxy = shapely.get_coordinates(centers.geometry.values)
    d = np.sqrt(((xy[:, None, :] - cxy[None, :, :]) ** 2).sum(axis=2))
    area = centers["area_code"].to_numpy(dtype=object)
    own = area[None, :] == placed["community_code"].to_numpy(dtype=object)[:, None]
    streets = np.array([a[:9] if isinstance(a, str) else None for a in area], dtype=object)
    same_street = streets[None, :] == placed["street_code"].to_numpy(dtype=object)[:, None]
    tier = placed["pair_tier"].to_numpy(dtype=int)
    allowed = np.where(tier[:, None] == 0, own, np.where(tier[:, None] == 1, same_street & ~own, True))
    best = np.where(allowed, d, np.inf).min(axis=1)
    assert np.allclose(placed["pair_distance_m"], best, atol=0.06)
    # No organization was given a worse tier than one it could have had.
    assert not (own.any(axis=1) & (tier > 0)).any()
    assert not (same_street.any(axis=1) & (tier > 1)).any()
