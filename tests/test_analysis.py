"""The analysis: a small city worked out by hand, and properties of the generated demo city."""

from __future__ import annotations

import itertools

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import text

from app.services import analysis
from app.store import Store
from geo import branches, coverage, pairing, siting
from geo.assign import assign_areas
from geo.grid import generate_grids

EPSG = 4543
X0, Y0 = 570_000.0, 2_770_000.0  # a point in Kunming, CGCS2000 / GK CM 102E


def box(x0, y0, x1, y1):
    return shapely.box(X0 + x0, Y0 + y0, X0 + x1, Y0 + y1)


def pt(x, y):
    return shapely.Point(X0 + x, Y0 + y)


def small_city() -> analysis.Inputs:
    """District 530102 → street 530102001 → communities …001 (x 0–1000, two grids) and …002
    (x 1000–2000, no grids). Organizations with known status, scope and place."""
    areas = gpd.GeoDataFrame(
        {
            "code": ["530102", "530102001", "530102001001", "530102001002", "530102001001001", "530102001001002"],
            "name": ["五华区", "华山街道", "甲社区", "乙社区", "甲社区第1网格", "甲社区第2网格"],
            "level": ["district", "street", "community", "community", "grid", "grid"],
            "parent_code": [None, "530102", "530102001", "530102001", "530102001001", "530102001001"],
        },
        geometry=[
            box(0, 0, 2000, 1000),
            box(0, 0, 2000, 1000),
            box(0, 0, 1000, 1000),
            box(1000, 0, 2000, 1000),
            box(0, 500, 1000, 1000),
            box(0, 0, 1000, 500),
        ],
        crs=EPSG,
    )
    rows = [
        # id, org_id, type, employees, members, operating, x, y, expected status
        (1, "own", "enterprise", 50, 5, True, 100, 900),
        (2, "joint1", "enterprise", 20, 1, True, 200, 900),
        (3, "joint2", "enterprise", 20, 2, True, 220, 900),
        (4, "area", "enterprise", 20, 0, True, 300, 100),
        (5, "industry", "enterprise", 20, 0, True, 400, 100),
        (6, "work", "enterprise", 20, 1, True, 1500, 500),
        (7, "blank1", "enterprise", 20, 1, True, 1600, 500),
        (8, "blank2", "social_org", 40, 2, True, 1610, 510),
        (9, "small", "enterprise", 3, 0, True, 1700, 500),  # out of scope: < 10 employees
        (10, "closed", "enterprise", 30, 0, False, 1800, 500),  # out of scope: not operating
        (11, "outside", "enterprise", 30, 0, True, 2030, 500),  # 30 m outside: snapped
        (12, "faraway", "enterprise", 30, 0, True, 9000, 500),  # unassigned
    ]
    orgs = gpd.GeoDataFrame(
        pd.DataFrame(
            rows, columns=["id", "org_id", "org_type", "employees", "party_members", "operating", "x", "y"]
        ).assign(industry="互联网"),
        geometry=[pt(r[6], r[7]) for r in rows],
        crs=EPSG,
    ).drop(columns=["x", "y"])
    links = pd.DataFrame(
        {"organization_id": [1, 2, 3, 4, 5, 1], "coverage_kind": ["own", "joint", "joint", "area", "industry", "area"]}
    )
    party_orgs = pd.DataFrame(
        {
            "party_org_id": ["P-own", "P-joint", "P-big", "P-fallen"],
            "org_type": ["党支部", "联合党支部", "党支部", "党支部"],
            "coverage_kind": ["own", "joint", "own", "own"],
            "members": [5, 3, 120, 2],
            "unit_members": [5, 1, 120, 2],
        }
    )
    places = gpd.GeoDataFrame(
        {"place_id": ["B1"], "name": ["甲大厦"], "kind": ["building"]}, geometry=[box(50, 850, 250, 950)], crs=EPSG
    )
    centers = gpd.GeoDataFrame(
        {
            "center_id": ["C1", "C2", "S1"],
            "name": ["甲", "乙", "街道"],
            "level": ["community", "community", "street"],
            "capacity": [2, 50, 100],
            "area_code": ["530102001001", "530102001002", "530102001"],
        },
        geometry=[pt(150, 900), pt(1500, 500), pt(1000, 500)],
        crs=EPSG,
    )
    return analysis.Inputs(areas, orgs, links, np.array([6]), party_orgs, places, centers, EPSG)


def test_small_city_by_hand():
    result = analysis.analyze(
        small_city(), analysis.Parameters(radius_m=1000, extra_radius_m=500, hotspot_min=2, hotspot_cell_m=200, sites=1)
    )
    orgs = result.organizations.set_index("org_id")
    assert orgs.loc[["own", "joint1", "joint2", "area", "industry", "work", "blank1", "blank2"], "status"].tolist() == [
        "own",
        "joint",
        "joint",
        "area",
        "industry",
        "work",
        "blank",
        "blank",
    ]
    assert orgs.loc[["small", "closed"], "in_scope"].tolist() == [False, False]
    assert orgs.loc["own", "grid_code"] == "530102001001001" and orgs.loc["area", "grid_code"] == "530102001001002"
    assert orgs.loc["work", "community_code"] == "530102001002"
    assert orgs.loc["work", "grid_code"].startswith("530102001002")
    assert orgs.loc["outside", "snapped"] and orgs.loc["outside", "community_code"] == "530102001002"
    assert orgs.loc["faraway", "unassigned"] and pd.isna(orgs.loc["faraway", "district_code"])
    assert orgs.loc["own", "place_id"] == "B1" and pd.isna(orgs.loc["work", "place_id"])

    areas = result.areas.set_index(["level", "code"])
    a = areas.loc[("community", "530102001001")]
    # 5 in scope: own, joint ×2, area, industry — all organizationally covered.
    assert (a["in_scope"], a["own"], a["joint"], a["area_based"], a["industry_based"]) == (5, 1, 2, 1, 1)
    assert a["org_coverage_rate"] == 1.0 and a["own_rate"] == pytest.approx(0.2) and np.isnan(a["work_rate"])
    b = areas.loc[("community", "530102001002")]
    # In scope: work, blank1, blank2 and the snapped 'outside'; small and closed are not.
    assert (b["orgs"], b["in_scope"], b["work"], b["blank"]) == (6, 4, 1, 3)
    assert b["org_coverage_rate"] == 0 and b["work_rate"] == pytest.approx(0.25) and b["both_rate"] == 0.25
    city = areas.loc[("city", "city")]
    assert (city["orgs"], city["in_scope"]) == (12, 10)
    assert city["both_rate"] == pytest.approx(6 / 10)
    # Community …002 had no grids: generated, coded, inside it and covering it exactly.
    grids = result.new_grids
    assert len(grids) >= 1 and grids["code"].str.startswith("530102001002").all()
    assert shapely.union_all(grids.geometry.values).symmetric_difference(box(1000, 0, 2000, 1000)).area < 1e-6

    # Nearest community centers; the street center is not a co-building partner.
    assert orgs.loc["own", "center_id"] == "C1" and orgs.loc["blank1", "center_id"] == "C2"
    assert orgs.loc["own", "pair_distance_m"] == pytest.approx(50.0)
    # Reach counts every center: 'faraway' is beyond both radii.
    assert orgs.loc["faraway", "reach_distance_m"] > 1000 and orgs.loc["work", "reach_distance_m"] == 0
    # The two blank organizations 14 m apart form one hot spot.
    assert len(result.hotspots) == 1 and result.hotspots["count"].iloc[0] == 2
    # One joint-branch proposal: the three small uncovered units of community 乙, same industry.
    assert sorted(result.proposals["org_id"]) == ["blank1", "blank2", "work"]
    assert result.proposals["proposal_id"].nunique() == 1 and result.proposals["round"].eq(1).all()
    flags = result.flags.set_index("party_org_id")["suggestion"]
    assert flags["P-big"] == "党委" and flags["P-fallen"].startswith("联合党支部")
    assert "P-own" not in flags


def test_capacity_and_jurisdiction():
    xy = np.array([[0, 0], [10, 0], [20, 0], [1000, 0]], dtype=float)
    centers = np.array([[5, 0], [500, 0]], dtype=float)
    index, distance = pairing.pair_with_capacity(xy, centers, np.array([2, 5]))
    assert np.bincount(index, minlength=2).tolist() == [2, 2]
    # The two nearest stay with center 0; the third goes to center 1.
    assert index.tolist() == [0, 0, 1, 1]
    # Jurisdiction: the point at 1000 belongs to street B, whose only center is far away.
    idx, _ = pairing.pair_nearest(
        xy,
        np.array([[5, 0], [500, 0], [5000, 0]], dtype=float),
        np.array(["A", "A", "A", "B"]),
        np.array(["A", "A", "B"]),
    )
    assert idx.tolist() == [0, 0, 0, 2]


def test_greedy_siting_close_to_exact_on_a_small_case():
    rng = np.random.default_rng(5)
    points = np.vstack([rng.normal(c, 300, (60, 2)) for c in ([0, 0], [2000, 0], [0, 2500], [3000, 3000])])
    candidates = rng.uniform(-500, 3500, (80, 2))
    greedy = siting.site_greedy(points, candidates, 3, 600)
    exact = siting.site_exact(points, candidates, 3, 600)
    assert greedy["total"].iloc[-1] <= exact
    assert greedy["total"].iloc[-1] >= (1 - 1 / np.e) * exact
    assert (greedy["reached"].diff().dropna() <= 0).all()


def test_lattice_clusters_join_touching_cells():
    x = np.array([10, 20, 110, 120, 130, 1000, 1010, 5000.0])
    y = np.array([10, 20, 10, 20, 30, 1000, 1000, 5000.0])
    clusters = coverage.lattice_clusters(x, y, 100, min_count=2)
    assert clusters["count"].tolist() == [5, 2]
    assert clusters.attrs["point_cluster"].tolist() == [0, 0, 0, 0, 0, 1, 1, -1]


def test_generated_grids_are_numbered_north_to_south_west_to_east():
    community = gpd.GeoDataFrame(
        {"code": ["530102001001"], "name": ["甲社区"]}, geometry=[box(0, 0, 300, 200)], crs=EPSG
    )
    grids = generate_grids(community, pd.Series({"530102001001": 6}), target=1)
    reps = shapely.get_coordinates(shapely.point_on_surface(grids.geometry.values))
    order = np.lexsort((reps[:, 0], -reps[:, 1]))
    assert grids["code"].iloc[order].tolist() == sorted(grids["code"])
    assert grids["code"].str.len().eq(15).all() and len(grids) == 6


@pytest.fixture(scope="module")
def demo_run(demo_store: Store):
    inputs = analysis.load_inputs(demo_store)
    return inputs, analysis.analyze(inputs, analysis.Parameters())


def test_every_pairing_is_the_brute_force_nearest(demo_store: Store):
    inputs = analysis.load_inputs(demo_store)
    result = analysis.analyze(inputs, analysis.Parameters(pairing="nearest"))
    community = inputs.centers[inputs.centers["level"] == "community"]
    cxy = shapely.get_coordinates(community.geometry.values)
    oxy = shapely.get_coordinates(inputs.orgs.geometry.values)
    brute = np.sqrt(((oxy[:, None, :] - cxy[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
    assert np.allclose(result.organizations["pair_distance_m"], brute, atol=0.06)


def test_capacities_are_never_exceeded(demo_store: Store):
    inputs = analysis.load_inputs(demo_store)
    result = analysis.analyze(inputs, analysis.Parameters(capacity=True, pairing="street"))
    capacity = inputs.centers.set_index("center_id")["capacity"]
    used = result.organizations["center_id"].value_counts()
    assert (used <= capacity.reindex(used.index)).all()
    paired = result.organizations.dropna(subset=["center_id"])
    streets = inputs.centers.set_index("center_id")["area_code"].str[:9]
    assert (streets.reindex(paired["center_id"]).to_numpy() == paired["street_code"].to_numpy()).all()


def test_every_proposal_satisfies_the_rules(demo_run):
    inputs, result = demo_run
    proposals = result.proposals
    assert len(proposals) > 50 and proposals["org_id"].is_unique
    orgs = result.organizations.set_index("org_id")
    chosen = orgs.loc[proposals["org_id"]]
    assert chosen["party_members"].between(1, 2).all() and chosen["status"].isin(["work", "blank"]).all()
    xy = pd.DataFrame(shapely.get_coordinates(inputs.orgs.geometry.values), index=inputs.orgs["org_id"])
    for _, group in proposals.groupby("proposal_id"):
        assert 2 <= len(group) <= branches.MAX_UNITS and group["party_members"].sum() >= branches.MIN_MEMBERS
        pts = xy.loc[group["org_id"]].to_numpy()
        widest = max(np.hypot(*(a - b)) for a, b in itertools.combinations(pts, 2))
        assert widest <= 1000.0 + 1e-6 and widest == pytest.approx(group["spread_m"].iloc[0], abs=0.1)


def test_rates_are_fractions_and_levels_add_up(demo_run):
    _, result = demo_run
    areas = result.areas
    for rate in ("org_coverage_rate", "own_rate", "work_rate", "both_rate"):
        values = areas[rate].dropna()
        assert values.between(0, 1).all(), rate
    counts = ["orgs", "in_scope", "own", "joint", "area_based", "industry_based", "work", "blank"]
    orgs = result.organizations
    assigned = orgs[~orgs["unassigned"]]
    for child, parent, width in (("grid", "community", 12), ("community", "street", 9), ("street", "district", 6)):
        rows = areas[areas["level"] == child]
        summed = rows.groupby(rows["code"].str[:width])[counts].sum()
        parents = areas[areas["level"] == parent].set_index("code")[counts]
        assert (summed.reindex(parents.index, fill_value=0) == parents).all().all(), child
    districts = areas[areas["level"] == "district"][counts].sum()
    city = areas[areas["level"] == "city"].iloc[0]
    assert districts["orgs"] == len(assigned) and city["orgs"] == len(orgs)
    assert (assigned["grid_code"].str[:12] == assigned["community_code"]).all()


def test_assignment_matches_geopandas_sjoin(demo_run):
    inputs, result = demo_run
    communities = inputs.areas[inputs.areas["level"] == "community"]
    joined = gpd.sjoin(inputs.orgs[["org_id", "geometry"]], communities[["code", "geometry"]], predicate="within")
    joined = joined[~joined.index.duplicated()]
    mine = result.organizations.set_index("org_id")["community_code"]
    assert (mine.loc[joined["org_id"]].to_numpy() == joined["code"].to_numpy()).all()


def test_run_is_stored_written_and_compared(store: Store, tmp_path):
    from app.services.demo import load_demo

    load_demo(store, n_orgs=400, seed=3)
    first, _ = analysis.run_analysis(store, analysis.Parameters())
    out = analysis.write_outputs(store, first, tmp_path / "run")
    names = {p.name for p in out}
    assert {
        "coverage.csv",
        "organizations.csv",
        "joint_branches.csv",
        "blank_areas.geojson",
        "service_gaps.geojson",
        "siting.csv",
    } <= names
    cov = pd.read_csv(tmp_path / "run" / "coverage.csv", dtype={"area_code": str})
    streets = cov[cov["area_level"] == "street"].sort_values("blank_rank")
    assert streets["blank"].is_monotonic_decreasing and streets["blank_rank"].iloc[0] == 1
    zero = cov[cov["zero_coverage"]]
    assert (zero["in_scope"] > 0).all() and (zero["blank"] == zero["in_scope"]).all()
    assert "suggestion" in pd.read_csv(tmp_path / "run" / "branch_flags.csv").columns
    assert list(cov.columns[:15]) == [
        "area_level",
        "area_code",
        "area_name",
        "orgs",
        "in_scope",
        "own",
        "joint",
        "area_based",
        "industry_based",
        "work",
        "blank",
        "org_coverage_rate",
        "own_rate",
        "work_rate",
        "both_rate",
    ]
    orgs = pd.read_csv(tmp_path / "run" / "organizations.csv", dtype=str)
    assert list(orgs.columns[:10]) == [
        "org_id",
        "district_code",
        "street_code",
        "community_code",
        "grid_code",
        "place_id",
        "status",
        "in_scope",
        "center_id",
        "pair_distance_m",
    ]
    assert list(pd.read_csv(tmp_path / "run" / "joint_branches.csv").columns[:4]) == [
        "proposal_id",
        "org_id",
        "party_members",
        "spread_m",
    ]
    assert gpd.read_file(tmp_path / "run" / "service_gaps.geojson")["radius_m"].isin([500, 1000]).all()
    # Give one blank organization an instructor: the next run sees it become covered.
    blank = orgs.loc[orgs["status"] == "blank", "org_id"].iloc[0]
    with store.connect() as conn:
        conn.execute(
            text(
                "INSERT INTO instructors (organization_id, role) "
                "SELECT id, 'instructor' FROM organizations WHERE org_id = :o"
            ),
            {"o": blank},
        )
    second, _ = analysis.run_analysis(store, analysis.Parameters())
    changes, rates = analysis.compare_runs(store, first, second)
    assert changes[["org_id", "change"]].values.tolist() == [[blank, "became_covered"]]
    city = rates[rates["level"] == "city"].iloc[0]
    assert city["blank_after"] <= city["blank_before"]
    with store.connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM analysis_runs")).scalar()
        grids_generated = conn.execute(text("SELECT count(*) FROM areas WHERE level = 'grid' AND generated")).scalar()
    assert runs == 2 and grids_generated > 0
    # Grids generated by the first run are stored, so the second generates none and codes stay put.
    assert analysis.analyze(analysis.load_inputs(store), analysis.Parameters()).new_grids.empty


def test_assign_areas_derives_every_level_from_the_grid():
    grids = gpd.GeoDataFrame({"code": ["530102001001001"]}, geometry=[box(0, 0, 100, 100)], crs=EPSG)
    out = assign_areas(np.array([pt(50, 50), pt(120, 50), pt(500, 50)]), grids, tolerance_m=30)
    assert out["community_code"].iloc[:2].tolist() == ["530102001001", "530102001001"]
    assert pd.isna(out["community_code"].iloc[2])
    assert out["snapped"].tolist() == [False, True, False] and out["unassigned"].tolist() == [False, False, True]


def compare_joins(store: Store, params: analysis.Parameters) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The organizations of one run with the joins in memory and one with them in PostGIS."""
    _, memory = analysis.run_analysis(store, params)
    _, database = analysis.run_analysis(store, analysis.Parameters(**{**params.__dict__, "joins": "database"}))
    return memory.organizations, database.organizations


def test_joins_in_postgis_give_the_same_run_as_in_memory(store: Store):
    from app.services.demo import load_demo

    load_demo(store, n_orgs=4000, seed=13)
    if store.backend_name != "postgis":
        with pytest.raises(ValueError, match="PostGIS"):
            analysis.run_analysis(store, analysis.Parameters(joins="database"))
        return
    analysis.run_analysis(store, analysis.Parameters())  # stores the generated grids
    # Some organizations far outside every area (unassigned), some 20 m east of the city's
    # easternmost corner (snapped to the nearest area).
    east = store.read_frame("areas", [], where={"level": "district"}).union_all()
    x, y = max(shapely.get_coordinates(east), key=lambda c: c[0])
    with store.connect() as conn:
        conn.execute(text("UPDATE organizations SET geom = ST_Translate(geom, 0.4, 0) WHERE id % 97 = 0"))
        conn.execute(
            text(
                "UPDATE organizations SET geom = ST_SetSRID(ST_MakePoint(:x, :y + (id % 5) * 0.00001), 4326) "
                "WHERE id % 89 = 0"
            ),
            {"x": float(x) + 0.0002, "y": float(y)},
        )
    memory, database = compare_joins(store, analysis.Parameters())
    columns = ["org_id", "district_code", "street_code", "community_code", "grid_code", "snapped", "unassigned"]
    pd.testing.assert_frame_equal(memory[columns], database[columns])
    assert memory["unassigned"].sum() > 0 and memory["snapped"].sum() > 0
    assert (memory["center_id"] == database["center_id"]).all()
    for column in ("pair_distance_m", "reach_distance_m"):
        assert np.allclose(memory[column], database[column], atol=0.1, equal_nan=True), column
