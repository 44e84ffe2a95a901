"""Excel sheets of Hongtu's tables: translated headers, widths, frozen header, % formats."""

from __future__ import annotations

import pandas as pd

from ..i18n import gettext
from .labels import HEADERS, RATE_NAMES


def write_sheet(writer: pd.ExcelWriter, frame: pd.DataFrame, name: str) -> None:
    """One sheet with translated headers, a frozen header row, sensible widths and % formats."""
    rates = {gettext(HEADERS[c]) for c in RATE_NAMES if c in frame.columns}
    frame = frame.rename(columns={c: gettext(h) for c, h in HEADERS.items()})
    frame.to_excel(writer, index=False, sheet_name=name)
    sheet = writer.sheets[name]
    sheet.freeze_panes = "A2"
    for i, column in enumerate(frame.columns, start=1):
        # Chinese characters are about two Latin ones wide.
        longest = max([len(str(column)) * 2, *(len(str(v)) * 2 for v in frame[column].head(200))])
        sheet.column_dimensions[sheet.cell(1, i).column_letter].width = min(max(longest + 2, 8), 48)
        if column in rates:
            for (cell,) in sheet.iter_rows(min_col=i, max_col=i, min_row=2):
                cell.number_format = "0.0%"
