"""Excel sheets and CSV files of Hongtu's tables: translated headers, widths, frozen header,
% formats, and text that a spreadsheet can never take for a formula (:mod:`app.spreadsheets`)."""

from __future__ import annotations

import io

import pandas as pd
from flask import Response, send_file

from ..i18n import gettext
from ..spreadsheets import inert, to_csv
from .labels import HEADERS, RATE_NAMES


def write_sheet(writer: pd.ExcelWriter, frame: pd.DataFrame, name: str) -> None:
    """One sheet with translated headers, a frozen header row, sensible widths and % formats."""
    rates = {gettext(HEADERS[c]) for c in RATE_NAMES if c in frame.columns}
    frame = inert(frame).rename(columns={c: gettext(h) for c, h in HEADERS.items()})
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


def download(frame: pd.DataFrame, name: str, fmt: str, sheet: str) -> Response:
    """``frame`` as an attachment: CSV (UTF-8 with BOM, opens in Excel) or an xlsx workbook."""
    if fmt == "csv":
        frame = frame.rename(columns={c: gettext(h) for c, h in HEADERS.items()})
        return Response(
            to_csv(frame).encode("utf-8-sig"),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        write_sheet(writer, frame, sheet)
    return send_workbook(buffer, f"{name}.xlsx")


def send_workbook(buffer: io.BytesIO, filename: str) -> Response:
    """An xlsx workbook written to ``buffer`` as an attachment."""
    buffer.seek(0)
    return send_file(
        buffer,
        download_name=filename,
        as_attachment=True,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
