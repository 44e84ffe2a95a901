"""Time the analysis per stage against the bare geopandas operations it needs.

    .venv/bin/python scripts/bench_analysis.py [--orgs 1000000] [--json FILE]

In one process: generate the demo city, then time (a) geopandas' own `sjoin` (organizations
within grids) and `sjoin_nearest` (organizations to community centers) — the floor any
analysis needs — and (b) `geo`'s analysis stage by stage on the same data, without the
database. Core = assignment, places, coverage and rates, pairing; whole = every stage.
Peak memory is the process's maximum resident set (generation included).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import geopandas as gpd
import numpy as np
import pandas as pd

from app.services import analysis
from app.services.demo import DATA_DIR
from geo.democity import generate

CORE = ("assignment", "places", "coverage", "pairing")


def peak_rss_gb() -> float:
    """This process's peak resident memory (GB).

    Read from /proc (VmHWM, which starts afresh at exec) where there is one: getrusage's
    maxrss keeps the high-water mark the process had when it was forked, so run by
    scripts/bench, which holds the generated city, it reported 3.4 GB for a 1.9 GB run.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024**2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    city = generate(DATA_DIR, n_orgs=args.orgs, seed=1)
    epsg = city.metric_crs
    areas = city.areas.to_crs(epsg)
    orgs = city.organizations.to_crs(epsg)
    centers = city.service_centers.to_crs(epsg)
    links = city.coverage.merge(city.party_orgs[["id", "coverage_kind"]], left_on="party_org_id", right_on="id")
    party = city.party_orgs.assign(unit_members=np.nan)
    inputs = analysis.Inputs(
        areas[["code", "name", "level", "parent_code", "geometry"]],
        orgs[["id", "org_id", "org_type", "industry", "employees", "party_members", "operating", "geometry"]],
        links[["organization_id", "coverage_kind"]],
        city.instructors["organization_id"].to_numpy(),
        party[["party_org_id", "org_type", "coverage_kind", "members", "unit_members"]],
        city.places.to_crs(epsg)[["place_id", "name", "kind", "geometry"]],
        centers[["center_id", "name", "level", "capacity", "area_code", "geometry"]],
        epsg,
    )

    # The first run generates grids for communities without any and stores them; later runs
    # (timed here, as the steady state) find every community gridded.
    started = time.perf_counter()
    first = analysis.analyze(inputs, analysis.Parameters())
    first_s = time.perf_counter() - started
    inputs.areas = pd.concat([inputs.areas, first.new_grids], ignore_index=True)
    started = time.perf_counter()
    result = analysis.analyze(inputs, analysis.Parameters())
    whole = time.perf_counter() - started
    grids = inputs.areas[inputs.areas["level"] == "grid"]
    community_centers = centers[centers["level"] == "community"]

    started = time.perf_counter()
    gpd.sjoin(orgs[["geometry"]], grids[["code", "geometry"]], predicate="within")
    sjoin_s = time.perf_counter() - started
    started = time.perf_counter()
    gpd.sjoin_nearest(orgs[["geometry"]], community_centers[["center_id", "geometry"]], distance_col="d")
    nearest_s = time.perf_counter() - started
    bare = sjoin_s + nearest_s
    core = sum(result.timings[s] for s in CORE)
    peak_gb = peak_rss_gb()

    figures = {
        "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores, Python {platform.python_version()}",
        "organizations": args.orgs,
        "communities": int((areas["level"] == "community").sum()),
        "grids": int(len(grids)),
        "community_centers": int(len(community_centers)),
        "geopandas_sjoin_s": round(sjoin_s, 2),
        "geopandas_sjoin_nearest_s": round(nearest_s, 2),
        "stages_s": result.timings,
        "core_s": round(core, 2),
        "whole_s": round(whole, 2),
        "first_run_with_grid_generation_s": round(first_s, 2),
        "core_vs_bare": round(core / bare, 2),
        "whole_vs_bare": round(whole / bare, 2),
        "peak_rss_gb": round(peak_gb, 2),
    }
    for key, value in figures.items():
        print(f"{key:28} {value}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, ensure_ascii=False, indent=2)


if __name__ == "__main__":
    main()
