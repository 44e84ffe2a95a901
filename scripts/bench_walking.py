"""The walking stage alone, in a process of its own: a street lattice of about ``--edges`` segments,
``--centers`` centers and ``--orgs`` organizations, against the straight-line stage (a KD-tree's
nearest center) on the same points.

    .venv/bin/python scripts/bench_walking.py --orgs 1000000 [--edges 300000] [--centers 1300] [--json FILE]

Prints (and writes) the seconds of building the graph, of snapping and the multi-source search,
of the centers' 15-minute catchments, the added peak memory (VmHWM after less before, GB) and
the ratio to the straight line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo import walking  # noqa: E402

BLOCK_M = 100.0


def peak_gb() -> float:
    """The process's peak resident memory so far (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def lattice(edges: int, rng: np.random.Generator) -> np.ndarray:
    """Straight streets on a square lattice with about ``edges`` segments, 5 % of them left out."""
    side = int(np.sqrt(edges / 2)) + 1
    ticks = np.arange(side) * BLOCK_M
    i, j = np.meshgrid(np.arange(side - 1), np.arange(side), indexing="ij")
    x, y = ticks[i.ravel()], ticks[j.ravel()]
    ew = np.stack([np.column_stack([x, y]), np.column_stack([x + BLOCK_M, y])], axis=1)
    ns = ew[:, :, ::-1]
    segments = np.concatenate([ew, ns])
    segments = segments[rng.random(len(segments)) >= 0.05]
    return shapely.linestrings(segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=300_000)
    parser.add_argument("--centers", type=int, default=1300)
    parser.add_argument("--json")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    lines = lattice(args.edges, rng)
    extent = shapely.total_bounds(lines)
    orgs = rng.uniform(extent[:2], extent[2:], (args.orgs, 2))
    centers = rng.uniform(extent[:2], extent[2:], (args.centers, 2))
    before = peak_gb()
    started = time.perf_counter()
    network = walking.build_network(lines)
    built = time.perf_counter()
    reach = walking.nearest_center(network, orgs, centers)
    walked = time.perf_counter()
    walking.catchments(network, centers, 15 * 60 * walking.WALK_SPEED_MS)
    catchments_s = time.perf_counter() - walked
    added = peak_gb() - before
    line_started = time.perf_counter()
    cKDTree(centers).query(orgs)
    line_s = time.perf_counter() - line_started
    figures = {
        "organizations": args.orgs,
        "edges": int(network.size),
        "centers": args.centers,
        "build_s": round(built - started, 2),
        "walk_s": round(walked - built, 2),
        "stage_s": round(walked - started, 2),
        "catchments_s": round(catchments_s, 2),
        "added_peak_gb": round(added, 2),
        "line_s": round(line_s, 3),
        "ratio": round((walked - started) / max(line_s, 1e-9), 1),
        "reached_share": round(float(np.isfinite(reach.walk_m).mean()), 4),
    }
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures))


if __name__ == "__main__":
    main()
