"""Where to open new service centers: maximal covering of organizations no center reaches.

Greedy: repeatedly take the candidate that reaches the most still-unreached organizations
within the radius. The greedy answer is within (1 − 1/e) of the optimum in theory and usually
much closer; :func:`site_exact` solves small cases exactly (MILP) to measure the gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree


def coverage_matrix(points_xy: np.ndarray, candidates_xy: np.ndarray, radius_m: float) -> sparse.csr_matrix:
    """Candidates × points incidence: 1 where a point lies within ``radius_m`` of a candidate."""
    if len(points_xy) == 0 or len(candidates_xy) == 0:
        return sparse.csr_matrix((len(candidates_xy), len(points_xy)))
    reach = cKDTree(points_xy).query_ball_point(candidates_xy, r=radius_m, return_sorted=False)
    lengths = np.fromiter((len(r) for r in reach), dtype=np.int64, count=len(reach))
    cols = np.concatenate([np.asarray(r, dtype=np.int64) for r in reach]) if lengths.sum() else np.array([], int)
    rows = np.repeat(np.arange(len(candidates_xy)), lengths)
    return sparse.csr_matrix((np.ones(len(cols)), (rows, cols)), shape=(len(candidates_xy), len(points_xy)))


def site_greedy(points_xy: np.ndarray, candidates_xy: np.ndarray, k: int, radius_m: float) -> pd.DataFrame:
    """Up to ``k`` candidates chosen greedily; ``reached`` is what each adds, ``total`` the running sum."""
    a = coverage_matrix(points_xy, candidates_xy, radius_m)
    a_csc = a.tocsc()
    gain = np.asarray(a.sum(axis=1)).ravel()
    covered = np.zeros(a.shape[1], dtype=bool)
    chosen, reached = [], []
    for _ in range(min(k, a.shape[0])):
        best = int(np.argmax(gain))
        if gain[best] <= 0:
            break
        new = a.indices[a.indptr[best] : a.indptr[best + 1]]
        new = new[~covered[new]]
        covered[new] = True
        # Every candidate reaching the newly covered points loses them from its gain.
        gain -= np.asarray(a_csc[:, new].sum(axis=1)).ravel().astype(gain.dtype)
        chosen.append(best)
        reached.append(len(new))
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(chosen) + 1),
            "candidate": chosen,
            "reached": reached,
            "total": np.cumsum(reached, dtype=np.int64),
        }
    )


def site_exact(points_xy: np.ndarray, candidates_xy: np.ndarray, k: int, radius_m: float) -> int:
    """The most points ``k`` candidates can reach (maximal covering MILP); for small cases."""
    a = coverage_matrix(points_xy, candidates_xy, radius_m)
    n_c, n_p = a.shape
    # Variables: x (open candidate), then y (point reached); maximize Σy.
    c = np.concatenate([np.zeros(n_c), -np.ones(n_p)])
    reach = sparse.hstack([-a.T, sparse.identity(n_p)])  # y_j − Σ_i a_ij x_i ≤ 0
    budget = sparse.hstack([sparse.csr_matrix(np.ones((1, n_c))), sparse.csr_matrix((1, n_p))])
    result = milp(
        c,
        constraints=[LinearConstraint(reach, -np.inf, 0), LinearConstraint(budget, 0, k)],
        integrality=np.ones(n_c + n_p),
        bounds=Bounds(0, 1),
    )
    return int(round(-result.fun))
