"""The Kunming demo city: deterministic, plausible, consistent codes, loaded as generated."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from app.services.demo import DATA_DIR, DemoExists, load_demo
from app.store import Store
from geo.codes import code_consistent, valid_credit_codes
from geo.democity import generate

from .conftest import DEMO_ORGS, DEMO_SEED, demo_city


def frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if list(a.columns) != list(b.columns) or len(a) != len(b):
        return False
    for column in a.columns:
        if isinstance(a[column].dtype, gpd.array.GeometryDtype):
            if not shapely.equals_exact(a[column].values, b[column].values, 0).all():
                return False
        elif not a[column].equals(b[column]):
            return False
    return True


def test_same_seed_same_city_other_seed_other_city():
    city = demo_city()
    again = generate(DATA_DIR, n_orgs=DEMO_ORGS, seed=DEMO_SEED)
    for name, frame in city.tables().items():
        assert frames_equal(frame, again.tables()[name]), name
    other = generate(DATA_DIR, n_orgs=DEMO_ORGS, seed=DEMO_SEED + 1)
    assert not frames_equal(city.organizations, other.organizations)


def test_counts_as_asked_and_all_real_divisions_present():
    city = demo_city()
    assert len(city.organizations) == DEMO_ORGS
    levels = city.areas["level"].value_counts()
    assert levels["district"] == 14
    assert levels["street"] == 150
    assert levels["community"] == 1738
    assert levels["grid"] > 1000
    real = pd.read_csv(DATA_DIR / "kunming_communities_villages_nbs2023.csv", dtype=str)
    assert set(city.areas.loc[city.areas.level == "community", "code"]) == set(real["village_code"])


def test_area_codes_well_formed_and_consistent_with_parents():
    areas = demo_city().areas
    assert areas["code"].is_unique
    codes = dict(zip(areas["code"], areas["level"], strict=True))
    above = {"street": "district", "community": "street", "grid": "community"}
    for level, frame in areas.groupby("level"):
        parents = frame["parent_code"].fillna("").to_numpy()
        assert code_consistent(frame["code"].to_numpy(), parents, level).all(), level
        if level != "district":
            assert all(codes.get(p) == above[level] for p in parents), level
    assert not areas.loc[areas.level == "district", "generated"].any()
    assert areas.loc[areas.level != "district", "generated"].all()


def test_children_lie_inside_their_parents():
    city = demo_city()
    areas = city.areas.to_crs(city.metric_crs).set_index("code")
    children = areas[areas.level != "district"]
    parents = areas.geometry.reindex(children["parent_code"]).values
    outside = shapely.area(shapely.difference(children.geometry.values, parents))
    # Within floating-point noise of the clipping (square metres).
    assert outside.max() < 1.0
    assert shapely.is_valid(areas.geometry.values).all()


def test_each_organization_lies_in_its_district():
    city = demo_city()
    orgs = city.organizations
    assert valid_credit_codes(orgs["credit_code"].to_numpy()).all()
    districts = city.areas[city.areas.level == "district"].set_index("code").geometry
    own = districts.reindex(orgs["credit_code"].str[2:8]).values
    assert shapely.covers(own, orgs.geometry.values).all()
    assert orgs["org_id"].is_unique
    assert orgs["name"].str.endswith("（演示）").all()


def test_party_work_follows_the_rules():
    city = demo_city()
    orgs = city.organizations.set_index("id")
    po = city.party_orgs.set_index("id")
    links = city.coverage.join(po[["coverage_kind"]], on="party_org_id")
    members = orgs["party_members"]
    own = links[links.coverage_kind == "own"]
    assert (members.loc[own["organization_id"]] >= 3).all()
    joint = links[links.coverage_kind == "joint"].groupby("party_org_id")["organization_id"]
    assert joint.size().between(2, 5).all()
    assert (joint.apply(lambda ids: members.loc[ids].sum()) >= 3).all()
    assert (po.loc[po.coverage_kind == "joint", "org_type"] == "联合党支部").all()
    expected_type = np.where(po["members"] >= 100, "党委", np.where(po["members"] >= 50, "党总支", "党支部"))
    not_joint = po.coverage_kind != "joint"
    assert (po.loc[not_joint, "org_type"].to_numpy() == expected_type[not_joint.to_numpy()]).all()
    # Instructors go only to organizations without a party organization.
    assert not set(city.instructors["organization_id"]) & set(links["organization_id"])


def test_realistic_share_of_blank_organizations_and_blank_places():
    city = demo_city()
    covered = set(city.coverage["organization_id"]) | set(city.instructors["organization_id"])
    blank = ~city.organizations["id"].isin(covered)
    assert 0.15 < blank.mean() < 0.45
    # At least one place whose organizations are all blank.
    places = city.places.to_crs(city.metric_crs)
    joined = gpd.sjoin(
        city.organizations.to_crs(city.metric_crs).assign(blank=blank.values), places, predicate="within"
    )
    per_place = joined.groupby("index_right")["blank"].agg(["size", "all"])
    assert (per_place["all"] & (per_place["size"] >= 3)).any()


def test_centers_lie_in_their_area():
    city = demo_city()
    areas = city.areas.set_index("code").geometry
    centers = city.service_centers
    assert shapely.covers(areas.reindex(centers["area_code"]).values, centers.geometry.values).all()
    assert set(centers["level"]) == {"street", "community"}


def test_demo_store_holds_what_was_generated(demo_store: Store):
    counts = demo_store.counts()
    city = demo_city()
    for table in ("areas", "places", "organizations", "party_orgs", "instructors", "service_centers", "stations"):
        assert counts[table] == len(city.tables()[table]), table


def test_demo_refuses_to_mix_with_existing_data(store: Store):
    first = load_demo(store, n_orgs=100, seed=1)
    assert first["organizations"] == 100
    before = store.counts()
    with pytest.raises(DemoExists, match="--replace"):
        load_demo(store, n_orgs=200, seed=2)
    assert store.counts() == before
    load_demo(store, n_orgs=200, seed=2, replace=True)
    assert store.counts()["organizations"] == 200
