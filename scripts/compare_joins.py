"""The analysis with its spatial joins in memory and inside PostGIS, on the same data: times and
whether the answers agree (area codes exactly; distances to 0.1 m).

    .venv/bin/python scripts/compare_joins.py [--orgs 1000000] [--url postgresql+psycopg://…] [--json FILE]

Loads the demo city into a PostGIS database of its own (default ``hongtu_joins`` on
127.0.0.1), runs the analysis once to store its generated grids, then once per engine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.analysis import Parameters, run_analysis  # noqa: E402
from app.services.demo import load_demo  # noqa: E402
from app.store import Store  # noqa: E402
from app.store.admin import ensure_postgis_database  # noqa: E402

CODES = ["org_id", "district_code", "street_code", "community_code", "grid_code", "snapped", "unassigned", "center_id"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orgs", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_joins")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    ensure_postgis_database(args.url)
    store = Store(args.url)
    store.init_schema()
    started = time.perf_counter()
    load_demo(store, n_orgs=args.orgs, seed=1, replace=True)
    print(f"demo of {args.orgs:,} organizations loaded in {time.perf_counter() - started:.0f} s", flush=True)
    run_analysis(store, Parameters())  # stores the generated grids: both runs below start alike
    runs = {}
    for joins in ("memory", "database"):
        started = time.perf_counter()
        _, results = run_analysis(store, Parameters(joins=joins))
        runs[joins] = (time.perf_counter() - started, results)
        print(f"{joins}: whole run {runs[joins][0]:.1f} s, stages {results.timings}", flush=True)
    memory, database = runs["memory"][1].organizations, runs["database"][1].organizations
    same_codes = bool(memory[CODES].fillna("").astype(str).equals(database[CODES].fillna("").astype(str)))
    distances = {
        column: float(np.nanmax(np.abs(memory[column] - database[column])))
        for column in ("pair_distance_m", "reach_distance_m")
    }
    report = {
        "organizations": args.orgs,
        "same_codes_and_centers": same_codes,
        "largest_distance_difference_m": distances,
        "memory": {"run_s": round(runs["memory"][0], 1), "stages": runs["memory"][1].timings},
        "database": {"run_s": round(runs["database"][0], 1), "stages": runs["database"][1].timings},
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    store.engine.dispose()
    if not same_codes or max(distances.values()) > 0.1:
        sys.exit(1)


if __name__ == "__main__":
    main()
