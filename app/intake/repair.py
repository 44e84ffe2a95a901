"""Repair invalid polygons (``make_valid``) in a child process bounded in time and memory.

Repair cost grows with the number of places a boundary crosses itself, not with its size: five
hundred random vertices took GEOS two minutes. So an import repairs in
:mod:`app.intake._repair_worker`, and polygons it cannot repair within ``REPAIR_SECONDS`` (or
``REPAIR_MEMORY``) are refused rather than tying up the server.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import shapely

#: Seconds and bytes of address space the repairs of one import may take.
REPAIR_SECONDS = 30
REPAIR_MEMORY = 2 * 1024**3
WORKER = Path(__file__).with_name("_repair_worker.py")


def repaired(polygons: np.ndarray) -> np.ndarray | None:
    """``make_valid`` of every polygon, or None when the repairs took too long or too much memory."""
    try:
        done = subprocess.run(
            [sys.executable, "-I", str(WORKER), str(REPAIR_MEMORY)],
            input=pickle.dumps(shapely.to_wkb(polygons), protocol=pickle.HIGHEST_PROTOCOL),
            capture_output=True,
            timeout=REPAIR_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        return None
    # Written by our own worker, as this user.
    return shapely.from_wkb(pickle.loads(done.stdout))  # noqa: S301
