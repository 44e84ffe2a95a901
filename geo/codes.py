"""Codes: 统一社会信用代码 (GB 32100-2015), division codes and 15-digit unit grid codes.

Credit-code checks follow GB 32100-2015 (check character over the first 17 characters, weights
3^i mod 31, alphabet without I, O, S, V, Z) and the embedded organization code follows
GB 11714-1997 (weights 3 7 9 10 5 8 4 2, modulus 11). Everything works on whole arrays.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .vocabulary import AREA_CODE_LENGTHS

CREDIT_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_WEIGHTS = np.array([pow(3, i, 31) for i in range(17)])
_ORG_WEIGHTS = np.array([3, 7, 9, 10, 5, 8, 4, 2])
_CHAR_VALUE = np.full(128, -1, dtype=np.int64)
for _i, _c in enumerate(CREDIT_ALPHABET):
    _CHAR_VALUE[ord(_c)] = _i


def _char_matrix(codes: np.ndarray, width: int) -> np.ndarray:
    """Codes as an (n, width) matrix of alphabet values; -1 for characters outside it."""
    raw = np.asarray(codes, dtype=f"U{width}")
    as_int = raw.view(np.uint32).reshape(len(raw), width).astype(np.int64)
    as_int = np.where(as_int < 128, as_int, 0)
    return _CHAR_VALUE[as_int]


def credit_check_chars(first17: np.ndarray) -> np.ndarray:
    """The 18th (check) character for each 17-character credit-code prefix."""
    values = _char_matrix(first17, 17)
    check = (31 - (values @ _CREDIT_WEIGHTS) % 31) % 31
    return np.array(list(CREDIT_ALPHABET))[check]


def org_code_check_digits(first8: np.ndarray) -> np.ndarray:
    """The 9th character of a GB 11714 organization code for each 8-digit body."""
    values = _char_matrix(first8, 8)
    check = 11 - (values @ _ORG_WEIGHTS) % 11
    digits = np.array([str(d) for d in range(10)] + ["X", "0"])
    return digits[check]


def valid_credit_codes(codes: np.ndarray) -> np.ndarray:
    """True where a code is 18 characters from the GB 32100 alphabet with a correct check character."""
    codes = np.asarray(codes, dtype=object)
    text = [c.strip().upper() for c in np.where(pd.isna(codes), "", codes).tolist()]
    # The length is taken before the fixed-width copy below, which would cut a 19th character off unseen.
    ok = np.fromiter(map(len, text), np.int64, len(text)) == 18
    values = _char_matrix(np.where(ok, np.asarray(text, dtype=object), "0" * 18), 18)
    ok &= (values >= 0).all(axis=1)
    expected = (31 - (np.where(values[:, :17] < 0, 0, values[:, :17]) @ _CREDIT_WEIGHTS) % 31) % 31
    return ok & (expected == values[:, 17])


def make_credit_codes(rng: np.random.Generator, district_codes: np.ndarray, social: np.ndarray) -> np.ndarray:
    """Well-formed, random credit codes: authority 9 (market regulation) for enterprises and
    5 (civil affairs) for social organizations, the district's division code, a random
    organization code with its own check digit, and the check character."""
    n = len(district_codes)
    authority = np.where(social, "51", "91")
    body = rng.integers(0, 10, size=(n, 8)).astype(str)
    body8 = np.array(["".join(r) for r in body]) if n else np.array([], dtype="U8")
    org_code = np.char.add(body8, org_code_check_digits(body8))
    first17 = np.char.add(np.char.add(authority, np.asarray(district_codes, dtype="U6")), org_code)
    return np.char.add(first17, credit_check_chars(first17))


def grid_sequence(x: np.ndarray, y: np.ndarray, row_height: float) -> np.ndarray:
    """1-based grid numbers in reading order: north→south by rows of ``row_height``, then west→east.

    ``x``/``y`` are representative points of the cells of one community in a metric CRS
    (y grows northwards); cells whose points lie within one row height count as one row.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) == 0:
        return np.array([], dtype=int)
    row = np.floor((y.max() - y) / row_height).astype(int)
    order = np.lexsort((x, row))
    seq = np.empty(len(x), dtype=int)
    seq[order] = np.arange(1, len(x) + 1)
    return seq


def code_consistent(codes: np.ndarray, parents: np.ndarray, level: str) -> np.ndarray:
    """True where a code has the digits of its level and starts with its parent's code."""
    codes = np.asarray(codes, dtype=str)
    parents = np.asarray(parents, dtype=str)
    length = AREA_CODE_LENGTHS[level]
    ok = (np.char.str_len(codes) == length) & np.char.isdigit(codes)
    if level == "district":
        return ok
    return (
        ok
        & (np.char.str_len(parents) < length)
        & np.array([c.startswith(p) for c, p in zip(codes, parents, strict=True)], dtype=bool)
    )
