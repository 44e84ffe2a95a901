"""Text that a spreadsheet can never take for a formula (CSV / formula injection), both ways.

Every CSV and Excel file Hongtu writes goes through :func:`to_csv` or :func:`inert`: a text cell
starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is written with a leading
apostrophe, which Excel, WPS and LibreOffice show as text. Reading a file back,
:func:`restore` removes exactly that apostrophe, so an exported ledger imports unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

#: A cell starting with one of these is a formula to Excel, WPS and LibreOffice.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARK = "'"


def _formula_like(values: np.ndarray) -> np.ndarray:
    return np.fromiter(
        (isinstance(v, str) and v.startswith(FORMULA_START) for v in values), dtype=bool, count=len(values)
    )


def inert(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell a spreadsheet would evaluate prefixed by an apostrophe."""
    out = frame.copy()
    for column in out.select_dtypes(include=["object", "string"]).columns:
        values = out[column].to_numpy(dtype=object)
        risky = _formula_like(values)
        if risky.any():
            values = values.copy()
            values[risky] = [_MARK + v for v in values[risky]]
            out[column] = values
    return out


def to_csv(frame: pd.DataFrame, target: str | Path | IO | None = None, **kwargs) -> str | None:
    """``frame.to_csv(target, index=False, **kwargs)`` with its text made inert."""
    return inert(frame).to_csv(target, index=False, **kwargs)


def restore(values: list[str]) -> list[str]:
    """Cells as read from a file, with the apostrophe :func:`inert` added removed again."""
    # One join finds whether any cell starts with the mark: a pass over each cell in Python
    # would cost every import of a million rows most of a second.
    if not values or (not values[0].startswith(_MARK) and f"\n{_MARK}" not in "\n".join(values)):
        return values
    return [v[1:] if v.startswith(_MARK) and v[1:2] and v[1] in FORMULA_START else v for v in values]
