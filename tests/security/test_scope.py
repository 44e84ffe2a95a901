"""What a jurisdiction-bound user reads keeps to the jurisdiction as it is now: report
workbooks name no outside unit, a moved organization leaves the old community at once, and
the map's header counts are the jurisdiction's (issue 19, findings 3, 11 and 12)."""

from __future__ import annotations

import io

import openpyxl
from sqlalchemy import text

from app import create_app
from app.intake import import_file
from app.services.analysis import Parameters, run_analysis
from app.store import Store, queries

from ..conftest import signed_in
from ..test_intake import GOOD_ROWS, HEADER, write

CUIHU = "530102001001"


def _split_proposal(store: Store) -> tuple[str, set[str], set[str]]:
    """A community of a joint-branch proposal with members elsewhere, its members, and theirs elsewhere."""
    with store.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT j.proposal_id, r.community_code, o.name FROM run_joint_branches j "
                "JOIN run_organizations r ON r.run_id = j.run_id AND r.org_id = j.org_id "
                "JOIN organizations o ON o.org_id = j.org_id WHERE j.run_id = (SELECT max(id) FROM analysis_runs)"
            )
        ).fetchall()
    by_proposal: dict[str, list[tuple[str, str]]] = {}
    for proposal, community, name in rows:
        by_proposal.setdefault(proposal, []).append((community, name))
    for members in by_proposal.values():
        communities = {c for c, _ in members}
        if len(communities) > 1:
            mine = sorted(communities)[0]
            return mine, {n for c, n in members if c == mine}, {n for c, n in members if c != mine}
    raise AssertionError("the demo city has no proposal across communities")


def test_a_report_workbook_names_no_member_outside_the_callers_jurisdiction(analyzed_store):
    community, inside, outside = _split_proposal(analyzed_store)
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})
    answer = signed_in(app, "community", community).get(f"/area/{community}/report.xlsx")
    assert answer.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(answer.data))
    sheet = book.worksheets[-1]
    names = {str(c.value) for row in sheet.iter_rows() for c in row if c.value is not None}
    assert inside <= names and not (outside & names)
    header = [c.value for c in next(sheet.iter_rows())]
    assert "辖区外成员数" in header


def _moved_out(loaded: Store, tmp_path) -> Store:
    square = "POLYGON((102.61 24.96,102.63 24.96,102.63 24.98,102.61 24.96))"
    centers = [
        "C1,华山街道党群服务中心,street,102.66,25.02",
        "C2,翠湖社区党群服务中心,community,102.62,24.97",
        "C3,另一社区党群服务中心,community,102.68,25.04",
    ]
    extras = {
        "places": f'place_id,name,kind,wkt\nPL1,翠湖大厦,building,"{square}"\n',
        "centers": "center_id,name,level,lon,lat\n" + "\n".join(centers) + "\n",
    }
    for kind, content in extras.items():
        assert import_file(loaded, kind, write(tmp_path / f"{kind}.csv", content)).ok
    run_analysis(loaded, Parameters())
    # A3 lay in 翠湖社区; the admin moves it to the street's other half. No run since.
    moved = GOOD_ROWS[2].replace("102.62,24.98", "102.68,25.05")
    report = import_file(loaded, "orgs", write(tmp_path / "move.csv", f"{HEADER}\n{moved}\n"))
    assert report.ok and report.updated == 1
    return loaded.scoped(CUIHU)


def test_a_moved_organization_leaves_its_old_communitys_card_map_and_nearby_at_once(loaded, tmp_path):
    scoped = _moved_out(loaded, tmp_path)
    run = queries.latest_run_id(scoped)
    assert queries.organization_card(scoped, "A3", run) is None
    everywhere = (102.0, 24.0, 104.0, 26.0)
    assert all(p["org_id"] != "A3" for p in queries.organization_points(scoped, everywhere, 100, run))
    assert queries.organization_card(loaded.scoped("530102001"), "A3", run) is not None


def test_a_scoped_map_page_shows_the_jurisdictions_counts_not_the_citys(loaded, tmp_path):
    assert loaded.counts()["organizations"] == 3
    scoped = loaded.scoped(CUIHU)
    assert scoped.counts()["organizations"] == 1 and scoped.counts()["areas"] == 1
    assert queries.data_facts(scoped)["counts"]["organizations"] == 1
    assert queries.data_facts(loaded)["counts"]["organizations"] == 3
