"""The child process that repairs invalid polygons with GEOS, bounded in time and memory.

Run by :func:`app.intake.repair.repaired` as ``python -I _repair_worker.py MEMORY_BYTES``: it reads
a pickle of WKB polygons on stdin and writes a pickle of the repaired WKB on stdout. A polygon
of a few hundred self-crossing edges can take GEOS minutes and gigabytes to node, so this work
never runs inside a web worker. It imports nothing of Hongtu's.
"""

from __future__ import annotations

import pickle
import resource
import sys


def main(memory: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import shapely

    polygons = shapely.from_wkb(pickle.load(sys.stdin.buffer))
    pickle.dump(shapely.to_wkb(shapely.make_valid(polygons)), sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(int(sys.argv[1])))
    except MemoryError:
        sys.exit(4)
