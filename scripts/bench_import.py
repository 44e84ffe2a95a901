"""Time `hongtu import orgs` of a generated CSV into a fresh database.

    .venv/bin/python scripts/bench_import.py [--orgs 100000] [--database-url URL]

The demo generator makes the rows (with the Kunming areas and party organizations loaded
first, as a user would); the CSV has the canonical columns with Chinese headers. For scale,
the same rows are also written by geopandas to a GeoPackage (no validation, no upsert).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from app.intake import import_file
from app.intake.export import header
from app.intake.schema import KINDS
from app.services.demo import DATA_DIR
from app.store import Store
from geo.democity import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a new SpatiaLite file in a temporary folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        city = generate(DATA_DIR, n_orgs=args.orgs, seed=1)
        store = Store(args.database_url or f"sqlite:///{tmp / 'bench.sqlite'}")
        store.init_schema()
        with store.connect() as conn:
            store.clear(conn)
            store.insert_frame(conn, "areas", city.areas)
            store.insert_frame(conn, "places", city.places)
            store.insert_frame(conn, "party_orgs", city.party_orgs)

        orgs = city.organizations
        links = city.coverage.merge(city.party_orgs[["id", "party_org_id"]], left_on="party_org_id", right_on="id")
        party = orgs["id"].map(links.groupby("organization_id")["party_org_id_y"].agg(";".join))
        kind = KINDS["orgs"]
        table = pd.DataFrame(
            {
                **{c: orgs[c] for c in kind.table_columns},
                "lon": shapely.get_x(orgs.geometry.values),
                "lat": shapely.get_y(orgs.geometry.values),
                "party_org_id": party,
                "instructor": orgs["id"].isin(city.instructors["organization_id"]).map({True: "是", False: "否"}),
            }
        ).rename(columns=lambda c: header(kind, c))
        csv = tmp / "orgs.csv"
        table.to_csv(csv, index=False, encoding="utf-8-sig")

        started = time.perf_counter()
        report = import_file(store, "orgs", csv)
        hongtu_s = time.perf_counter() - started
        assert report.ok and report.inserted == args.orgs, report.summary()

        started = time.perf_counter()
        gpd.GeoDataFrame(orgs.drop(columns="id"), crs=4326).to_file(tmp / "orgs.gpkg", engine="pyogrio")
        geopandas_s = time.perf_counter() - started

    print(f"organizations                      {args.orgs:>10,}")
    print(
        f"hongtu import orgs ({store.backend_name})    {hongtu_s:>9.1f} s   "
        f"(read, validate, upsert, links, instructors)"
    )
    print(f"geopandas to_file GPKG (reference) {geopandas_s:>9.1f} s")


if __name__ == "__main__":
    main()
