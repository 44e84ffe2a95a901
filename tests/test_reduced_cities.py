"""A city that lacks what the demo has: every optional layer may be empty (issue 21, part 4).

Each case removes layers from a small generated city, runs the analysis, then asks every page,
export and API collection an admin would: none may fail, and the run must say what it found."""

from __future__ import annotations

from functools import cache

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from app import create_app
from app.services.analysis import Parameters, run_analysis
from app.services.demo import DATA_DIR
from app.store import Store, queries
from geo.democity import generate

from .conftest import signed_in

PEOPLE = ("organizations", "party_orgs", "party_org_coverage", "instructors")
LAYERS = ("places", "service_centers", "stations", "party_orgs", "party_org_coverage", "instructors")


@cache
def _city() -> dict[str, pd.DataFrame]:
    return generate(DATA_DIR, n_orgs=400, seed=13).tables()


def _reduced(case: str) -> dict[str, pd.DataFrame]:
    tables = dict(_city())
    areas = tables["areas"]
    if case == "no organizations":
        return {k: v for k, v in tables.items() if k not in PEOPLE}
    if case == "no grids":
        tables["areas"] = areas[areas["level"] != "grid"]
    elif case == "one district":
        first = areas.loc[areas["level"] == "district", "code"].iloc[0]
        tables["areas"] = areas[areas["code"].str.startswith(first)]
    elif case == "every organization unassigned":
        orgs = tables["organizations"]
        far = [shapely.Point(90.0 + i * 1e-4, 40.0) for i in range(len(orgs))]
        tables["organizations"] = gpd.GeoDataFrame(orgs.drop(columns="geometry"), geometry=far, crs=4326)
    else:
        dropped = LAYERS if case == "areas and organizations only" else tuple(case.removeprefix("no ").split("+"))
        tables = {k: v for k, v in tables.items() if k not in dropped}
    if "places" not in tables:
        tables = {k: v.assign(place_id=None) if "place_id" in v else v for k, v in tables.items()}
    return tables


CASES = (
    "no places",
    "no service_centers",
    "no stations",
    "no party_orgs+party_org_coverage",
    "no instructors",
    "no grids",
    "one district",
    "every organization unassigned",
    "no organizations",
    "areas and organizations only",
)


@pytest.mark.parametrize("case", CASES)
def test_a_reduced_city_is_analysed_and_served(store: Store, case: str):
    with store.connect() as conn:
        for table, frame in _reduced(case).items():
            store.insert_frame(conn, table, frame)
    run_id, results = run_analysis(store, Parameters())
    assert run_id and results.summary["organizations"] == store.counts()["organizations"]
    if "service_centers" in case or case == "areas and organizations only":
        assert results.summary["unpaired"] == results.summary["organizations"]
    app = create_app({"DATABASE_URL": store.url, "TESTING": True, "HONGTU_EXPORTS_PER_MIN": 10_000})
    client = signed_in(app)
    district = store.read_frame("areas", ["code"], where={"level": "district"})["code"].iloc[0]
    street = next(iter(store.read_frame("areas", ["code"], where={"level": "street"})["code"]), district)
    box = ",".join(f"{v:.4f}" for v in store.extent("areas"))
    urls = [
        "/",
        "/dashboard",
        "/dashboard/data.json",
        f"/dashboard/data.json?area={district}",
        f"/dashboard/data.json?area={street}",
        "/area/",
        f"/area/{district}",
        f"/area/{street}",
        f"/area/{street}/export/ledger.csv",
        f"/area/{street}/report.xlsx",
        f"/area/{street}/map.html",
        "/map/search?q=华",
        "/map/nearby?lon=102.71&lat=25.04&r=1000",
        "/api/collections",
        "/api/stats",
        *(f"/map/data/{layer}?bbox={box}&zoom={zoom}" for layer in ("orgs", "centers", "places") for zoom in (11, 16)),
    ]
    collections = client.get("/api/collections").get_json()["collections"]
    urls += [f"/api/collections/{c['id']}/items?limit=5" for c in collections]
    for url in urls:
        answer = client.get(url)
        assert answer.status_code in (200, 302, 404), (url, answer.status_code, answer.get_data(as_text=True)[:300])
    assert queries.latest_run_id(store) == run_id
