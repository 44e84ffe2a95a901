"""Instructors as people (issue 23, part 1): imported with their unit, phone, organizations and
dates; an active assignment is work coverage; the card, the API and the exports name them, and
the phone is masked for roles without need."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from app import create_app
from app.intake import import_file
from app.intake.export import export_kind
from app.services import analysis
from app.store import Store

from .conftest import signed_in
from .test_editing import STREET_A, STREET_B, ledger  # noqa: F401 (ledger: a fixture)
from .test_intake import write
from .test_locate import city  # noqa: F401 (a fixture)

HEADER = "指导员编号,姓名,派出单位,联系电话,负责组织编号,开始日期,结束日期\n"
#: 张三丰 serves E3 (东, 护国街道) and E7 from 2026; 李四 served E2 until 2021.
PEOPLE = HEADER + (
    "I1,张三丰,市市场监管局,13812345678,E3；E7,2026/1/5,\nI2,李四,区工商联,13900001111,E2,2020-01-01,2021-12-31\n"
)


def _statuses(store: Store) -> dict[str, str]:
    run_id, results = analysis.run_analysis(store, analysis.Parameters())
    return dict(zip(results.organizations["org_id"], results.organizations["status"], strict=True))


def _count(store: Store, sql: str) -> int:
    with store.connect() as conn:
        return conn.execute(text(sql)).scalar()


def test_an_active_assignment_is_work_coverage_and_an_ended_one_is_not(ledger: Store, tmp_path: Path):  # noqa: F811
    before = _statuses(ledger)
    assert (before["E3"], before["E7"]) == ("blank", "blank")
    report = import_file(ledger, "instructors", write(tmp_path / "people.csv", PEOPLE))
    assert report.ok, report.issues
    assert report.inserted == 2
    after = _statuses(ledger)
    assert (after["E3"], after["E7"]) == ("work", "work")
    # E2 keeps its party organization's coverage; 李四's ended term adds nothing.
    assert after["E2"] == before["E2"]
    with ledger.connect() as conn:
        stored = conn.execute(text("SELECT instructor_id, starts_on, ends_on FROM instructor_people ORDER BY 1")).all()
    assert [tuple(r) for r in stored] == [("I1", "2026-01-05", None), ("I2", "2020-01-01", "2021-12-31")]
    # Named again with fewer organizations: the assignments follow the file.
    again = HEADER + "I1,张三丰,市市场监管局,13812345678,E3,2026-01-05,\n"
    assert import_file(ledger, "instructors", write(tmp_path / "again.csv", again)).ok
    assert _statuses(ledger)["E7"] == "blank"


def test_a_ledger_saying_no_leaves_named_instructors_alone(ledger: Store, tmp_path: Path):  # noqa: F811
    assert import_file(ledger, "instructors", write(tmp_path / "people.csv", PEOPLE)).ok
    no = (
        "组织编号,组织名称,组织类型,从业人员数,经度,纬度,是否选派党建指导员\n"
        "E3,护国商贸有限公司,企业,5,102.75,24.95,否\n"
    )
    assert import_file(ledger, "orgs", write(tmp_path / "no.csv", no)).ok
    assert _statuses(ledger)["E3"] == "work"


def test_bad_rows_are_named_and_nothing_is_written(ledger: Store, tmp_path: Path):  # noqa: F811
    bad = HEADER + (
        "I1,张三丰,市市场监管局,13812345678,E3;E99,2026-01-05,\n"
        "I2,李四,区工商联,13900001111,E2,2026-13-01,\n"
        "I3,王五,区工商联,,E2,2026-05-01,2026-04-01\n"
        ",赵六,区工商联,,E2,,\n"
    )
    report = import_file(ledger, "instructors", write(tmp_path / "bad.csv", bad))
    assert not report.ok
    found = {(i.row, i.column) for i in report.errors}
    assert {(2, "org_ids"), (3, "starts_on"), (4, "ends_on"), (5, "instructor_id")} <= found
    assert any("E99" in i.zh and "E99" in i.en for i in report.errors)
    assert _count(ledger, "SELECT count(*) FROM instructor_people") == 0
    assert _count(ledger, "SELECT count(*) FROM instructors WHERE person_id IS NOT NULL") == 0


def test_the_card_and_the_api_name_the_instructor_and_mask_the_phone(ledger: Store, tmp_path: Path):  # noqa: F811
    assert import_file(ledger, "instructors", write(tmp_path / "people.csv", PEOPLE)).ok
    analysis.run_analysis(ledger, analysis.Parameters())
    app = create_app({"DATABASE_URL": ledger.url})
    staff = signed_in(app, "street", STREET_B).get("/map/org/E3").json
    assert staff["instructors"] == [
        {"name": "张三丰", "unit": "市市场监管局", "phone": "13812345678", "starts_on": "2026-01-05", "ends_on": None}
    ]
    viewer = signed_in(app, "viewer", STREET_B).get("/map/org/E3").json
    assert viewer["instructors"][0]["phone"] == "138****5678"
    item = signed_in(app, "viewer").get("/api/collections/organizations/items/E3").json
    assert (item["properties"]["instructor_name"], item["properties"]["instructor_unit"]) == ("张三丰", "市市场监管局")
    # 李四's term is over: E2's card names nobody.
    assert signed_in(app, "street", STREET_A).get("/map/org/E2").json["instructors"] == []


def test_an_export_imports_back_unchanged(ledger: Store, tmp_path: Path):  # noqa: F811
    assert import_file(ledger, "instructors", write(tmp_path / "people.csv", PEOPLE)).ok
    out = tmp_path / "instructors.csv"
    assert export_kind(ledger, "instructors", "csv", out) == 2
    report = import_file(ledger, "instructors", out)
    assert report.ok and (report.inserted, report.updated, report.unchanged) == (0, 0, 2)
    assert _count(ledger, "SELECT count(*) FROM instructors WHERE person_id IS NOT NULL") == 3
