"""Repair invalid polygons (``make_valid``) in a child process bounded in time and memory.

Repair cost grows with the number of places a boundary crosses itself, not with its size: five
hundred random vertices took GEOS two minutes. So an import repairs in
:mod:`app.intake._repair_worker`, and polygons it cannot repair within ``REPAIR_SECONDS`` (or
``REPAIR_MEMORY``) are refused rather than tying up the server.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import shapely

from .children import run_child

#: Seconds and bytes of address space the repairs of one import may take.
REPAIR_SECONDS = 30
REPAIR_MEMORY = 2 * 1024**3
WORKER = Path(__file__).with_name("_repair_worker.py")


def repaired(polygons: np.ndarray) -> np.ndarray | None:
    """``make_valid`` of every polygon, or None when the repairs took too long or too much memory."""
    stdin = pickle.dumps(shapely.to_wkb(polygons), protocol=pickle.HIGHEST_PROTOCOL)
    done = run_child(WORKER, [str(REPAIR_MEMORY)], REPAIR_SECONDS, stdin=stdin)
    if done is None or done.returncode != 0:
        return None
    # Written by our own worker, as this user.
    return shapely.from_wkb(pickle.loads(done.stdout))  # noqa: S301
