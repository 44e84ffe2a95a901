"""本期变化 (issue 23, part 6): what changed between two runs, within the caller's jurisdiction,
on the area page, in its export and through /api/runs and /api/stats/compare."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from app import create_app
from app.services import analysis, editing
from app.store import Store, area_stats
from geo.changes import great_circle_m, run_changes

from .conftest import signed_in
from .test_editing import STREET_A, STREET_B, ledger  # noqa: F401 (ledger: a fixture)
from .test_locate import city  # noqa: F401 (a fixture)

#: What the two-run fixture changes, as (org_id, kind), in the order the list shows them.
CITY_CHANGES = [
    ("E1", "became_blank"),
    ("E3", "became_covered"),
    ("E8", "added"),
    ("E6", "closed"),
    ("E7", "closed"),
    ("E2", "moved"),
]
#: Of those, the ones in each street (E3 and E8 lie east of 102.70°, in 护国街道).
IN_STREET = {STREET_A: ["E1", "E6", "E7", "E2"], STREET_B: ["E3", "E8"]}


def _edit(store: Store, org_id: str, changes: dict, position: editing.Position | None = None) -> None:
    etag = editing.etag(editing.record(store, org_id))
    editing.edit(store, org_id, changes, "staff", "map", etag, position)


@pytest.fixture
def two_runs(ledger: Store) -> tuple[Store, int, int]:  # noqa: F811
    first, _ = analysis.run_analysis(ledger, analysis.Parameters())
    _edit(ledger, "E1", {"party_org_id": "", "instructor": False})
    _edit(ledger, "E3", {"instructor": True})
    _edit(ledger, "E2", {}, editing.Position(102.655, 25.05))
    _edit(ledger, "E7", {"operating": False})
    editing.create(
        ledger,
        {"org_id": "E8", "name": "新发现公司", "org_type": "enterprise"},
        editing.Position(102.75, 24.96),
        "s",
        "map",
    )
    editing.delete(ledger, "E6", "staff", "map")
    second, _ = analysis.run_analysis(ledger, analysis.Parameters())
    return ledger, first, second


def test_the_changes_between_two_runs_are_exactly_what_was_done(two_runs):
    store, first, second = two_runs
    found = area_stats.run_changes(store, None, first, second)
    assert list(zip(found["org_id"], found["change"], strict=True)) == CITY_CHANGES
    by_id = found.set_index(["org_id", "change"])
    assert by_id.loc[("E1", "became_blank"), ["status_before", "status_after"]].tolist() == ["joint", "blank"]
    assert by_id.loc[("E3", "became_covered"), "status_after"] == "work"
    assert by_id.loc[("E8", "added"), "status_before"] is None
    # 0.005° of longitude at 25.05° N.
    assert by_id.loc[("E2", "moved"), "moved_m"] == pytest.approx(504.2, abs=1)
    assert by_id.loc[("E2", "moved"), "community_name"] == "圆通社区"
    # A deleted organization has no record left to name it: the list shows its id.
    assert pd.isna(by_id.loc[("E6", "closed"), "name"])


@pytest.mark.parametrize("street", [STREET_A, STREET_B])
def test_a_street_sees_the_changes_of_its_own_organizations(two_runs, street):
    store, first, second = two_runs
    found = area_stats.run_changes(store.scoped(street), street, first, second)
    assert sorted(found["org_id"]) == sorted(IN_STREET[street])


def test_the_area_page_lists_and_exports_the_changes(two_runs):
    store, first, second = two_runs
    app = create_app({"DATABASE_URL": store.url})
    client = signed_in(app, "street", STREET_A)
    page = client.get(f"/area/{STREET_A}").get_data(as_text=True)
    section = page.split('id="ht-changes"')[1].split("</section>")[0]
    assert f"#{first} → #{second} (4)" in section
    assert "新增空白 <b>1</b>" in section and "停业或注销 <b>2</b>" in section and "新增组织 <b>0</b>" in section
    exported = client.get(f"/area/{STREET_A}/export/changes.xlsx?a={first}&b={second}")
    assert exported.status_code == 200
    sheet = pd.read_excel(io.BytesIO(exported.data), engine="openpyxl", header=1)
    assert "新增空白" in set(sheet.iloc[:, 0]) and "位置变动" in set(sheet.iloc[:, 0])
    assert client.get(f"/area/{STREET_A}/export/changes.csv?a=999999").status_code == 400


def test_scoped_roles_read_runs_and_compare_within_their_jurisdiction(two_runs):
    store, first, second = two_runs
    app = create_app({"DATABASE_URL": store.url})
    client = signed_in(app, "street", STREET_B)
    runs = client.get("/api/runs")
    assert runs.status_code == 200
    newest = runs.json["runs"][0]
    # The city's figures stay hidden; the street's own are there.
    assert newest["summary"] is None and "input_counts" not in newest
    assert newest["area"]["code"] == STREET_B and newest["area"]["orgs"] == 2
    compared = client.get(f"/api/stats/compare?a={first}&b={second}").json
    assert sorted(t["org_id"] for t in compared["transitions"]) == IN_STREET[STREET_B]
    assert {r["code"] for r in compared["rates"]} <= {STREET_B, "530102002001"}
    admin = signed_in(app, "admin").get(f"/api/stats/compare?a={first}&b={second}").json
    assert [(t["org_id"], t["change"]) for t in admin["transitions"]] == CITY_CHANGES


def test_change_kinds_on_generated_tables():
    before = pd.DataFrame(
        {
            "org_id": ["A", "B", "C", "D", "E"],
            "status": ["blank", "own", "work", "blank", "blank"],
            "operating": [True, True, True, True, None],
            "lon": [102.7, 102.7, 102.7, 102.7, np.nan],
            "lat": [25.0, 25.0, 25.0, 25.0, np.nan],
        }
    )
    after = pd.DataFrame(
        {
            "org_id": ["A", "B", "C", "F", "E"],
            "status": ["joint", "blank", "work", "blank", "blank"],
            "operating": [True, True, False, True, True],
            "lon": [102.7, 102.70005, 102.7, 102.8, 102.7],
            "lat": [25.0, 25.0, 25.0, 25.0, 25.0],
        }
    )
    found = run_changes(before, after)
    # B moved 5 m (under the threshold); E gained a position (not a move); D left the ledger.
    assert list(zip(found["org_id"], found["change"], strict=True)) == [
        ("B", "became_blank"),
        ("A", "became_covered"),
        ("F", "added"),
        ("C", "closed"),
        ("D", "closed"),
    ]
    # One degree of latitude is 111.2 km on the IUGG mean sphere.
    assert great_circle_m(0, 0, 0, 1) == pytest.approx(111_195, abs=1)
    assert found.loc[found["change"] != "moved", "moved_m"].isna().all()
