"""Results never go stale silently (issue 23, part 4): after a write the pages and cards say
the analysis is behind, an analysis started from the web runs in a process of its own, one at
a time, and the pages switch to its run when it is stored."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from app import create_app
from app.intake import import_file
from app.services import analysis, analysis_jobs, editing
from app.store import Store
from app.store.models import AnalysisRun
from app.store.models import analysis_jobs as jobs_table

from .conftest import Served, signed_in
from .test_browser import browser, wait_for  # noqa: F401 (browser: a fixture)
from .test_editing import ledger  # noqa: F401 (a fixture)
from .test_intake import write
from .test_locate import city  # noqa: F401 (a fixture)

#: Long enough for a run of the test ledger in a process of its own, on a loaded CI machine.
JOB_TIMEOUT_S = 120


def _edit(store: Store, org_id: str = "E3", **fields) -> None:
    editing.edit(
        store, org_id, fields or {"employees": "40"}, "staff", "map", editing.etag(editing.record(store, org_id))
    )


def _wait_for_job(store: Store, job_id: int) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while (job := analysis_jobs.latest_job(store))["id"] != job_id or job["state"] in analysis_jobs.ACTIVE:
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']} after {JOB_TIMEOUT_S} s"
        time.sleep(0.2)
    return job


def test_a_run_is_current_until_the_ledger_changes(ledger: Store, tmp_path: Path):  # noqa: F811
    state = analysis_jobs.freshness(ledger)
    assert (state["run_id"], state["run_at"], state["stale"]) == (None, None, False)
    first, _ = analysis.run_analysis(ledger, analysis.Parameters())
    state = analysis_jobs.freshness(ledger)
    assert (state["run_id"], state["stale"]) == (first, False)
    # A correction makes it stale, with the time of the change.
    before = datetime.now(UTC)
    _edit(ledger)
    state = analysis_jobs.freshness(ledger)
    assert state["stale"] and state["changed_at"] >= before - timedelta(seconds=1)
    second, _ = analysis.run_analysis(ledger, analysis.Parameters())
    assert analysis_jobs.freshness(ledger)["stale"] is False
    # So does an import.
    assert import_file(
        ledger, "orgs", write(tmp_path / "more.csv", "组织编号,组织名称,组织类型,从业人员数\nE9,新公司,企业,12\n")
    ).ok
    state = analysis_jobs.freshness(ledger)
    assert (state["run_id"], state["stale"]) == (second, True)


def test_a_write_during_a_run_leaves_that_run_stale(ledger: Store):  # noqa: F811
    def write_midway(stage: str) -> None:
        if stage == "coverage":
            _edit(ledger, employees="41")

    analysis.run_analysis(ledger, analysis.Parameters(), progress=write_midway)
    # The run read the ledger before the edit: its results do not show it.
    assert analysis_jobs.freshness(ledger)["stale"]


def test_a_run_and_its_generated_grids_are_no_write_to_the_ledger(ledger: Store):  # noqa: F811
    with ledger.connect() as conn:
        inputs = ledger.inputs_version(conn)
    _, results = analysis.run_analysis(ledger, analysis.Parameters(grid_target=2))
    assert results.summary["generated_grids"] > 0
    with ledger.connect() as conn:
        assert ledger.inputs_version(conn) == inputs


def test_a_run_started_from_the_web_is_stored_by_its_own_process(ledger: Store):  # noqa: F811
    first, _ = analysis.run_analysis(ledger, analysis.Parameters(radius_m=700))
    _edit(ledger)
    job_id = analysis_jobs.start(ledger, "planner-city")
    job = _wait_for_job(ledger, job_id)
    assert job["state"] == "done", job["error"]
    assert job["run_id"] > first and job["step"] == 0
    with ledger.connect() as conn:
        stored = conn.execute(
            select(AnalysisRun.parameters, AnalysisRun.note).where(AnalysisRun.id == job["run_id"])
        ).one()
    # The same settings as the run it refreshes.
    assert (stored.parameters["radius_m"], stored.note) == (700, "web")
    assert analysis_jobs.freshness(ledger)["stale"] is False


def _job(store: Store, state: str, heartbeat: datetime) -> int:
    with store.connect() as conn:
        return conn.execute(
            insert(jobs_table)
            .values(state=state, created_at=heartbeat, heartbeat_at=heartbeat)
            .returning(jobs_table.c.id)
        ).scalar_one()


def test_one_analysis_at_a_time_and_a_dead_one_does_not_block(ledger: Store, monkeypatch):  # noqa: F811
    started = []
    monkeypatch.setattr(analysis_jobs.subprocess, "Popen", lambda args, **kw: started.append(args))
    running = _job(ledger, "running", datetime.now(UTC))
    with pytest.raises(analysis_jobs.AnalysisRunning):
        analysis_jobs.start(ledger, "admin-city")
    assert started == []
    # A job whose process stopped beating long ago is over.
    with ledger.connect() as conn:
        conn.execute(
            jobs_table.update()
            .where(jobs_table.c.id == running)
            .values(heartbeat_at=datetime.now(UTC) - analysis_jobs.JOB_SILENCE - timedelta(minutes=1))
        )
    job_id = analysis_jobs.start(ledger, "admin-city")
    assert len(started) == 1 and started[0][-2] == str(job_id)
    with ledger.connect() as conn:
        states = dict(conn.execute(select(jobs_table.c.id, jobs_table.c.state)).fetchall())
    assert states == {running: "failed", job_id: "queued"}


def test_only_roles_that_analyze_start_a_run_and_everyone_sees_the_state(ledger: Store, monkeypatch):  # noqa: F811
    monkeypatch.setattr(analysis_jobs.subprocess, "Popen", lambda args, **kw: None)
    analysis.run_analysis(ledger, analysis.Parameters())
    _edit(ledger)
    app = create_app({"DATABASE_URL": ledger.url})
    street = signed_in(app, "street", "530102001")
    status = street.get("/map/results")
    assert status.status_code == 200
    assert status.json["stale"] is True and "job" not in status.json
    csrf = "t"
    with street.session_transaction() as session:
        session["csrf"] = csrf
    refused = street.post("/map/results", headers={"X-CSRF-Token": csrf})
    assert refused.status_code == 403
    planner = signed_in(app, "planner")
    with planner.session_transaction() as session:
        session["csrf"] = csrf
    assert planner.post("/map/results").status_code == 400  # no CSRF token
    answer = planner.post("/map/results", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 202
    assert planner.get("/map/results").json["job"]["id"] == answer.json["job"]
    again = planner.post("/map/results", headers={"X-CSRF-Token": csrf})
    assert again.status_code == 409 and "已有一次分析正在进行" in again.json["description"]


def test_pages_and_cards_say_the_results_are_behind(ledger: Store):  # noqa: F811
    analysis.run_analysis(ledger, analysis.Parameters())
    app = create_app({"DATABASE_URL": ledger.url})
    client = signed_in(app, "street", "530102001")
    notice = 'class="ht-stale" id="ht-results"'
    fresh = client.get("/").get_data(as_text=True)
    assert notice in fresh and "hidden>" in fresh.split(notice)[1].split("</div>")[0]
    assert client.get("/map/org/E1").json["results_stale"] is False
    _edit(ledger, "E1", employees="30")
    for page in ("/", "/area/530102001"):
        shown = client.get(page).get_data(as_text=True).split(notice)[1].split("</div>")[0]
        assert "hidden>" not in shown and "数据已更新，分析结果待刷新" in shown and "上次分析" in shown
        # Street staff may not start a run: no button.
        assert "ht-stale-run" not in shown
    assert client.get("/map/org/E1").json["results_stale"] is True


def test_the_notice_goes_away_when_a_run_started_from_the_page_is_stored(ledger: Store, browser, tmp_path):  # noqa: F811
    analysis.run_analysis(ledger, analysis.Parameters())
    assert import_file(
        ledger, "orgs", write(tmp_path / "more.csv", "组织编号,组织名称,组织类型,从业人员数\nE9,新公司,企业,12\n")
    ).ok
    served = Served(ledger)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        served.sign_in(page, "admin")
        page.goto(served.url + "/")
        notice = page.locator("#ht-results")
        assert notice.is_visible() and "分析结果待刷新" in notice.inner_text()
        page.click(".ht-stale-run")
        wait_for(page, "document.getElementById('ht-results').hidden", timeout=JOB_TIMEOUT_S)
        # The map stayed (its layers redrawn), and the status endpoint knows the new run.
        assert page.url == served.url + "/"
        job = analysis_jobs.latest_job(ledger)
        assert job["state"] == "done" and analysis_jobs.freshness(ledger)["stale"] is False
        assert page.inner_text("#ht-run-id") == f"#{job['run_id']}"
    finally:
        served.close()


def test_an_automatic_run_waits_for_quiet_and_never_retries_a_failure(ledger: Store):  # noqa: F811
    quiet = timedelta(minutes=10)
    analysis.run_analysis(ledger, analysis.Parameters())
    assert not analysis_jobs.due(ledger, quiet)  # current
    _edit(ledger)
    assert not analysis_jobs.due(ledger, quiet)  # written just now
    assert analysis_jobs.due(ledger, timedelta(0))
    _job(ledger, "failed", datetime.now(UTC))
    assert not analysis_jobs.due(ledger, timedelta(0))  # failed on this data
    _edit(ledger, employees="55")
    assert analysis_jobs.due(ledger, timedelta(0))  # the data changed since
    _job(ledger, "running", datetime.now(UTC))
    assert not analysis_jobs.due(ledger, timedelta(0))
