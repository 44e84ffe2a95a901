"""Whether the analysis results on a page are current, and a run started from the web.

Every page that shows run results includes ``_results_notice.html``: after a write it says
"数据已更新，分析结果待刷新" with the time of the last run, and offers the roles that may
analyze to start one. ``static/hongtu-results.js`` asks ``/map/results`` how the run is going
and, once it is stored, switches the page to it.
"""

from __future__ import annotations

import threading
from datetime import timedelta

from flask import Blueprint, Flask, Response, g, jsonify, request, url_for

from ..db import base_store
from ..services import analysis_jobs
from ..store import accounts
from .access import may

bp = Blueprint("results", __name__, url_prefix="/map/results")


def results_state() -> dict:
    """For templates: the results' freshness (see ``analysis_jobs.freshness``), with the
    status URL and, for roles that may analyze, the URL that starts a run."""
    # Freshness is the city's: a run covers every jurisdiction, so the unscoped store answers.
    state = analysis_jobs.freshness(base_store())
    # A published embed link shows the notice but asks nothing more.
    state["status_url"] = url_for("results.status") if may("results.status") else None
    state["start_url"] = url_for("results.start") if may("results.start") else None
    return state


def _job_json(job: dict | None) -> dict | None:
    if job is None:
        return None
    keep = ("id", "state", "stage", "step", "steps", "run_id", "error", "created_at", "finished_at")
    return {k: job[k].isoformat() if hasattr(job[k], "isoformat") else job[k] for k in keep}


@bp.get("")
def status() -> Response:
    """The latest run, whether it is stale, and the latest job (for roles that may analyze)."""
    store = base_store()
    state = analysis_jobs.freshness(store)
    body = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in state.items()}
    if may("results.start"):
        body["job"] = _job_json(analysis_jobs.latest_job(store))
    return jsonify(body)


@bp.post("")
def start() -> Response:
    """Start an analysis with the latest run's settings (409 while one is running)."""
    store = base_store()
    job_id = analysis_jobs.start(store, g.user["username"])
    accounts.audit(store, g.user["username"], "analysis", target=f"job {job_id} started", address=request.remote_addr)
    response = jsonify({"job": job_id})
    response.status_code = 202
    return response


def start_watch(app: Flask) -> None:
    """Run the analysis by itself ``HONGTU_AUTO_ANALYZE_MIN`` minutes after the last write
    (0: never), from a thread of this process (see ``analysis_jobs.watch``)."""
    minutes = app.config["HONGTU_AUTO_ANALYZE_MIN"]
    if minutes <= 0:
        return
    with app.app_context():
        store = base_store()
    threading.Thread(
        target=analysis_jobs.watch, args=(store, timedelta(minutes=minutes)), name="hongtu-auto-analysis", daemon=True
    ).start()
