"""What changed for each organization between two analysis runs (本期变化).

Pure and vectorised: two tables of per-organization results in, one row per organization and
kind of change out (an organization that moved and became covered is in two rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .coverage import STATUSES
from .vocabulary import CHANGE_KINDS

#: A position that moved less than this between runs has not moved (metres): converting
#: between datums and rounding coordinates shifts a point by well under a metre.
MOVED_M = 10.0
#: Mean Earth radius (IUGG, metres), for great-circle distances.
EARTH_RADIUS_M = 6_371_008.8
#: Statuses that count as covered (organisationally or by work): every status but blank.
COVERED = tuple(s for s in STATUSES if s != "blank")


def great_circle_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Haversine distance between WGS-84 positions (degrees), in metres; NaN where one is missing."""
    lon1, lat1, lon2, lat2 = (np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0, 1)))


def run_changes(before: pd.DataFrame, after: pd.DataFrame, moved_m: float = MOVED_M) -> pd.DataFrame:
    """The changes from run ``before`` to run ``after``.

    Parameters
    ----------
    before, after : pandas.DataFrame
        One row per organization: ``org_id``, ``status`` (see ``coverage.STATUSES``),
        ``operating`` (bool, or NA when the run did not record it) and ``lon``/``lat``
        (WGS-84 degrees, NaN when unplaced or not recorded). Other columns are carried along
        with ``_before``/``_after`` suffixes.
    moved_m : float
        Metres a position must move to count as moved.

    Returns
    -------
    pandas.DataFrame
        ``org_id``, ``change`` (one of ``vocabulary.CHANGE_KINDS``), ``status_before``,
        ``status_after`` (None where the organization is absent), ``moved_m`` (metres, on
        the rows of kind ``moved`` only) and the carried columns; sorted by kind in ``CHANGE_KINDS`` order,
        then ``org_id``.
    """
    merged = before.merge(after, on="org_id", how="outer", suffixes=("_before", "_after"), indicator=True)
    was, now = merged["_merge"].ne("right_only"), merged["_merge"].ne("left_only")
    status_before, status_after = merged["status_before"], merged["status_after"]
    both = was & now
    operating_before = merged["operating_before"].astype("boolean").fillna(True)
    operating_after = merged["operating_after"].astype("boolean").fillna(True)
    distance = great_circle_m(merged["lon_before"], merged["lat_before"], merged["lon_after"], merged["lat_after"])
    kinds = {
        "became_blank": both & status_before.isin(COVERED) & status_after.eq("blank"),
        "became_covered": both & status_before.eq("blank") & status_after.isin(COVERED),
        "added": ~was,
        "closed": (was & ~now) | (both & operating_before & ~operating_after),
        "moved": both & (np.nan_to_num(distance, nan=0.0) >= moved_m),
    }
    merged = merged.drop(columns="_merge")
    parts = [
        merged[mask.to_numpy(dtype=bool)].assign(
            change=kind, moved_m=np.round(distance[mask.to_numpy(dtype=bool)], 1) if kind == "moved" else np.nan
        )
        for kind, mask in kinds.items()
    ]
    changes = pd.concat(parts, ignore_index=True)
    changes["change"] = pd.Categorical(changes["change"], categories=CHANGE_KINDS, ordered=True)
    changes = changes.sort_values(["change", "org_id"], kind="stable").reset_index(drop=True)
    changes["change"] = changes["change"].astype(str)
    changes[["status_before", "status_after"]] = (
        changes[["status_before", "status_after"]]
        .astype(object)
        .where(changes[["status_before", "status_after"]].notna(), None)
    )
    first = ["org_id", "change", "status_before", "status_after", "moved_m"]
    return changes[first + [c for c in changes.columns if c not in first]]
