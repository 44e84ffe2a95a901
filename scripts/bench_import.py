"""Time one import of an organizations CSV in a process of its own, as a user would run it.

    .venv/bin/python scripts/bench_import.py hongtu DATABASE_URL CSV
    .venv/bin/python scripts/bench_import.py geopandas DATABASE_URL_OR_FILE CSV

``hongtu`` runs Hongtu's importer (read, validate, diff against stored rows, upsert, write
party links and instructors, one transaction). ``geopandas`` is what a user would otherwise
write: ``pandas.read_csv``, ``points_from_xy`` and ``to_file`` (SpatiaLite, given a file
path) or ``to_postgis`` (given a PostgreSQL URL) — no checks, no upsert, no links.
Prints the seconds from the CSV on disk to the committed table; interpreter start and
module imports are excluded for both.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import pandas as pd
import sqlalchemy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.intake import import_file  # noqa: E402
from app.intake.export import header  # noqa: E402
from app.intake.schema import KINDS  # noqa: E402
from app.store import Store  # noqa: E402


def hongtu(url: str, csv: Path) -> float:
    store = Store(url)
    started = time.perf_counter()
    report = import_file(store, "orgs", csv)
    seconds = time.perf_counter() - started
    if not report.ok:
        raise SystemExit(report.summary())
    return seconds


def geopandas(target: str, csv: Path) -> float:
    kind = KINDS["orgs"]
    lon, lat = header(kind, "lon"), header(kind, "lat")
    engine = sqlalchemy.create_engine(target) if target.startswith("postgresql") else None
    started = time.perf_counter()
    table = pd.read_csv(csv, encoding="utf-8-sig")
    frame = gpd.GeoDataFrame(
        table.drop(columns=[lon, lat]), geometry=gpd.points_from_xy(table[lon], table[lat]), crs=4326
    )
    if engine is None:
        frame.to_file(target, driver="SQLite", spatialite=True, engine="pyogrio")
    else:
        frame.to_postgis("bench_reference", engine, if_exists="replace", index=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("importer", choices=["hongtu", "geopandas"])
    parser.add_argument("target", help="database URL, or for geopandas a SpatiaLite file to write")
    parser.add_argument("csv", type=Path)
    args = parser.parse_args()
    seconds = (hongtu if args.importer == "hongtu" else geopandas)(args.target, args.csv)
    print(f"{seconds:.3f}")


if __name__ == "__main__":
    main()
