"""Excel sheets and CSV files of Hongtu's tables: translated headers, widths, frozen header,
% formats, and text that a spreadsheet can never take for a formula (:mod:`app.spreadsheets`)."""

from __future__ import annotations

import io
from urllib.parse import quote

import pandas as pd
from flask import Response, send_file
from openpyxl.styles import Font

from ..i18n import gettext
from ..spreadsheets import inert, to_csv
from .labels import HEADERS, RATE_NAMES


def write_sheet(writer: pd.ExcelWriter, frame: pd.DataFrame, name: str, title: str | None = None) -> None:
    """One sheet with translated headers, a frozen header row, sensible widths and % formats,
    set up to print on A4 landscape, fitted to the width, the header row on every page; with a
    ``title`` (area, run, date) in a row above the header."""
    rates = {gettext(HEADERS[c]) for c in RATE_NAMES if c in frame.columns}
    frame = inert(frame).rename(columns={c: gettext(h) for c, h in HEADERS.items()})
    header = 2 if title else 1
    frame.to_excel(writer, index=False, sheet_name=name, startrow=header - 1)
    sheet = writer.sheets[name]
    if title:
        sheet.cell(1, 1).value = title
        sheet.cell(1, 1).font = Font(bold=True, size=14)
        sheet.row_dimensions[1].height = 24
    sheet.freeze_panes = f"A{header + 1}"
    sheet.print_title_rows = f"{header}:{header}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.fitToWidth, sheet.page_setup.fitToHeight = 1, 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    for i, column in enumerate(frame.columns, start=1):
        # Chinese characters are about two Latin ones wide.
        longest = max([len(str(column)) * 2, *(len(str(v)) * 2 for v in frame[column].head(200))])
        sheet.column_dimensions[sheet.cell(header, i).column_letter].width = min(max(longest + 2, 8), 48)
        if column in rates:
            for (cell,) in sheet.iter_rows(min_col=i, max_col=i, min_row=header + 1):
                cell.number_format = "0.0%"


def download(frame: pd.DataFrame, name: str, fmt: str, sheet: str, title: str | None = None) -> Response:
    """``frame`` as an attachment named ``name`` (Chinese is fine): CSV (UTF-8 with BOM, opens
    in Excel; one header line, for programs to read back) or an xlsx workbook with ``title``."""
    if fmt == "csv":
        frame = frame.rename(columns={c: gettext(h) for c, h in HEADERS.items()})
        return Response(
            to_csv(frame).encode("utf-8-sig"),
            mimetype="text/csv",
            headers={"Content-Disposition": attachment(f"{name}.csv")},
        )
    buffer = io.BytesIO()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        write_sheet(writer, frame, sheet, title)
    return send_workbook(buffer, f"{name}.xlsx")


def attachment(filename: str) -> str:
    """A Content-Disposition for ``filename``: its UTF-8 spelling (RFC 6266 ``filename*``) and
    an ASCII one for clients that read only ``filename``."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


def send_workbook(buffer: io.BytesIO, filename: str) -> Response:
    """An xlsx workbook written to ``buffer`` as an attachment."""
    buffer.seek(0)
    return send_file(
        buffer,
        download_name=filename,
        as_attachment=True,
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
