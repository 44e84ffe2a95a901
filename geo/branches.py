"""Joint-branch proposals (联合党支部, 撤一建一) and branch-size flags.

Units with 1–2 full members and no party organization are grouped into proposals of 2–5
units holding at least 3 full members together, every two units at most ``max_distance_m``
apart. Grouping runs in rounds from the most to the least preferred neighbourhood:

1. same community and same industry,
2. same community,
3. same lattice cell of ``max_distance_m / √2`` (any community; the cell's diagonal bounds
   the spread, so every group formed there is valid by construction).

Within a bucket, units are ordered along a Z-order curve (so neighbours in the list are
neighbours on the ground) and cut into consecutive groups as soon as they hold 3 members; a
short tail joins the group before it when that stays within 5 units. Groups whose spread
exceeds the limit are dissolved and their units try again in the next round. Every step is a
whole-array operation (sort, cumulative sum, group-by).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_MEMBERS = 3
MAX_UNITS = 5


def _zorder(x: np.ndarray, y: np.ndarray, cell: float) -> np.ndarray:
    """Morton code of each point on a lattice of ``cell`` metres (interleaved bits)."""
    ix = np.floor((x - x.min()) / cell).astype(np.uint64) if len(x) else np.array([], np.uint64)
    iy = np.floor((y - y.min()) / cell).astype(np.uint64) if len(y) else np.array([], np.uint64)
    code = np.zeros(len(x), dtype=np.uint64)
    for bit in range(24):
        code |= ((ix >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit)
        code |= ((iy >> np.uint64(bit)) & np.uint64(1)) << np.uint64(2 * bit + 1)
    return code


def _group(frame: pd.DataFrame, bucket: list[str]) -> np.ndarray:
    """Group ids (-1: none) cutting each bucket, in Z-order, into runs of three units.

    Three units always hold at least 3 full members (each has 1–2). A bucket's last one or two
    units form their own group when they already hold 3 members, else join the run before
    them (4–5 units); a bucket too small for either stays ungrouped.
    """
    ordered = frame.sort_values([*bucket, "z"], kind="stable")
    bucket_id = ordered.groupby(bucket, sort=True).ngroup().to_numpy()
    position = np.arange(len(ordered))
    first = np.searchsorted(bucket_id, bucket_id)
    size = np.bincount(bucket_id)[bucket_id]
    rank = position - first
    chunk = rank // 3
    full = size // 3
    in_tail = chunk == full
    members = ordered["members"].to_numpy()
    tail_sum = pd.Series(np.where(in_tail, members, 0)).groupby(bucket_id).transform("sum").to_numpy()
    tail_alone = (size % 3 == 2) & (tail_sum >= MIN_MEMBERS)
    chunk = np.where(in_tail & ~tail_alone, chunk - 1, chunk)
    valid = chunk >= 0
    group = np.where(valid, bucket_id.astype(np.int64) * 1000 + chunk, -1)
    out = pd.Series(-1, index=frame.index, dtype=np.int64)
    out.loc[ordered.index] = group
    return out.to_numpy()


def _spread(x: np.ndarray, y: np.ndarray, group: np.ndarray) -> pd.Series:
    """Largest distance between two units of each group (metres)."""
    frame = pd.DataFrame({"g": group, "x": x, "y": y, "i": np.arange(len(group))})
    frame = frame[frame["g"] >= 0]
    pairs = frame.merge(frame, on="g")
    pairs = pairs[pairs["i_x"] < pairs["i_y"]]
    d = np.hypot(pairs["x_x"] - pairs["x_y"], pairs["y_x"] - pairs["y_y"])
    return d.groupby(pairs["g"]).max().reindex(np.unique(frame["g"]), fill_value=0.0)


def propose_joint_branches(units: pd.DataFrame, max_distance_m: float = 1000.0) -> pd.DataFrame:
    """Joint-branch proposals for eligible units.

    Parameters
    ----------
    units : DataFrame
        One row per eligible unit (1–2 full members, no party organization) with ``org_id``,
        ``members``, ``x``, ``y`` (metric CRS), ``community_code`` and ``industry``.
    max_distance_m : float
        Largest distance allowed between two units of one proposal.

    Returns
    -------
    DataFrame with ``proposal_id``, ``org_id``, ``party_members``, ``spread_m``, ``round``
    (1 same community and industry, 2 same community, 3 neighbourhood), one row per unit proposed.
    """
    frame = units.reset_index(drop=True).copy()
    frame["community_code"] = frame["community_code"].fillna("")
    frame["industry"] = frame["industry"].fillna("")
    frame["z"] = _zorder(frame["x"].to_numpy(), frame["y"].to_numpy(), max_distance_m / 20)
    cell = max_distance_m / np.sqrt(2)
    frame["cell"] = np.floor(frame["x"] / cell).astype(np.int64) * (1 << 32) + np.floor(frame["y"] / cell).astype(
        np.int64
    )
    proposal = np.full(len(frame), -1, dtype=np.int64)
    round_of = np.zeros(len(frame), dtype=np.int64)
    spread = np.full(len(frame), np.nan)
    next_id = 0
    for number, bucket in enumerate((["community_code", "industry"], ["community_code"], ["cell"]), start=1):
        left = np.flatnonzero(proposal < 0)
        if len(left) < 2:
            break
        group = _group(frame.iloc[left], bucket)
        x, y = frame["x"].to_numpy()[left], frame["y"].to_numpy()[left]
        widths = _spread(x, y, group)
        ok = widths[widths <= max_distance_m]
        keep = np.isin(group, ok.index.to_numpy())
        ids = pd.factorize(group[keep])[0] + next_id
        proposal[left[keep]] = ids
        round_of[left[keep]] = number
        spread[left[keep]] = ok.reindex(group[keep]).to_numpy()
        next_id = ids.max() + 1 if len(ids) else next_id
    chosen = proposal >= 0
    result = pd.DataFrame(
        {
            "proposal_id": proposal[chosen] + 1,
            "org_id": frame["org_id"].to_numpy()[chosen],
            "party_members": frame["members"].to_numpy()[chosen],
            "spread_m": np.round(spread[chosen], 1),
            "round": round_of[chosen],
        }
    )
    return result.sort_values(["proposal_id", "org_id"], ignore_index=True)


def branch_flags(party_orgs: pd.DataFrame, own_members: pd.Series) -> pd.DataFrame:
    """Existing party organizations whose form no longer fits their size.

    ``party_orgs`` has ``party_org_id``, ``org_type``, ``coverage_kind``, ``members``;
    ``own_members`` maps an own branch's ``party_org_id`` to its unit's full members now.
    A branch over 50 members should become a 党总支, at 100 a 党委; an own branch whose unit
    has fallen below 3 full members should merge into a joint branch (撤一建一).
    """
    members = party_orgs["members"]
    suggestion = pd.Series(None, index=party_orgs.index, dtype=object)
    branch = party_orgs["org_type"].isin(["党支部", "联合党支部"])
    suggestion[branch & (members > 50)] = "党总支"
    suggestion[party_orgs["org_type"].isin(["党支部", "联合党支部", "党总支"]) & (members >= 100)] = "党委"
    below = (party_orgs["coverage_kind"] == "own") & (
        party_orgs["party_org_id"].map(own_members).fillna(MIN_MEMBERS) < MIN_MEMBERS
    )
    suggestion[below & suggestion.isna()] = "联合党支部（撤一建一）"
    reason = np.select(
        [suggestion == "党总支", suggestion == "党委", suggestion == "联合党支部（撤一建一）"],
        [
            "党员超过 50 人 / over 50 members",
            "党员 100 人以上 / 100 members or more",
            "单位正式党员不足 3 人 / unit below 3 full members",
        ],
        default="",
    )
    flagged = party_orgs.assign(suggestion=suggestion, reason=reason)
    return flagged[flagged["suggestion"].notna()].reset_index(drop=True)
