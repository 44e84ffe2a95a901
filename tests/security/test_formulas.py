"""No CSV or Excel file Hongtu writes holds a live formula, and an exported ledger still
imports unchanged (issue 19, finding 9)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from app import create_app
from app.intake import import_file
from app.intake.export import export_kind
from app.spreadsheets import FORMULA_START

from ..conftest import signed_in
from ..test_intake import GOOD_ROWS, HEADER, snapshot, write

ATTACKS = ['=HYPERLINK("http://evil.example","点击")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1)"]


@pytest.fixture
def poisoned(loaded, tmp_path):
    rows = [GOOD_ROWS[0].replace("云锦网络科技有限公司", f'"{ATTACKS[0].replace(chr(34), chr(34) * 2)}"')]
    rows += [GOOD_ROWS[1].replace("金汇行业协会", ATTACKS[1]), GOOD_ROWS[2].replace("翠湖路1号", ATTACKS[2])]
    report = import_file(loaded, "orgs", write(tmp_path / "orgs.csv", "\n".join([HEADER, *rows]) + "\n"))
    assert report.ok, [str(i) for i in report.issues]
    return loaded


def _live(cells) -> list[str]:
    return [c for c in cells if isinstance(c, str) and c.startswith(FORMULA_START)]


def test_the_api_csv_holds_no_formula(poisoned):
    app = create_app({"DATABASE_URL": poisoned.url, "TESTING": True})
    answer = signed_in(app).get("/api/collections/organizations/items?f=csv&limit=100")
    assert answer.status_code == 200
    cells = [c for row in csv.reader(io.StringIO(answer.get_data(as_text=True).lstrip("\ufeff"))) for c in row]
    assert "'" + ATTACKS[0] in cells and not _live(cells)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_an_exported_ledger_holds_no_formula_and_imports_unchanged(poisoned, tmp_path, fmt):
    out = tmp_path / f"orgs.{fmt}"
    export_kind(poisoned, "orgs", fmt, out)
    if fmt == "csv":
        cells = [c for row in csv.reader(io.StringIO(out.read_text("utf-8-sig"))) for c in row]
    else:
        sheet = openpyxl.load_workbook(out).active
        assert not [c for row in sheet.iter_rows() for c in row if c.data_type == "f"]
        cells = [c.value for row in sheet.iter_rows() for c in row]
    assert not _live(cells)
    before = snapshot(poisoned)
    report = import_file(poisoned, "orgs", out)
    assert report.ok and report.unchanged == 3 and snapshot(poisoned) == before


def test_the_import_report_quotes_the_bad_value_inertly(loaded, tmp_path):
    bad = GOOD_ROWS[0].replace(",25,2,", ",=1+1,2,")
    report = import_file(
        loaded, "orgs", write(tmp_path / "orgs.csv", f"{HEADER}\n{bad}\n"), report_dir=tmp_path / "reports"
    )
    assert not report.ok and report.report_path is not None
    cells = [c for row in csv.reader(io.StringIO(report.report_path.read_text("utf-8-sig"))) for c in row]
    assert "'=1+1" in cells and not _live(cells)
