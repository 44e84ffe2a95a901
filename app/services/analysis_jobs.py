"""Analyses started from the web, and whether the stored results still describe the ledger.

A job is a row of ``analysis_jobs`` and a process of its own (``python -m
app.services.analysis_jobs JOB``), so a page request never waits for a run and a run outlives
the worker that started it. At most one job is queued or running over every instance: the
start checks the table under a write lock, and the run itself holds the database lock
``analysis`` (the CLI's ``hongtu analyze`` takes the same one).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select, text, update

from ..errors import HongtuError
from ..store import Store, accounts
from ..store.models import AnalysisRun, analysis_jobs, data_version
from . import analysis

#: A job whose heartbeat is this old died with its process (a run beats at every stage).
JOB_SILENCE = timedelta(minutes=20)
#: Who the audit log names for a run the watch started.
AUTO_USER = "(自动)"
log = logging.getLogger(__name__)
#: States of a job that is not over yet.
ACTIVE = ("queued", "running")
#: The stages a run reports as it ends them (``analysis.analyze``'s laps), in order: a job's
#: progress is how many are behind it.
STAGES = (
    "load",
    "assignment",
    "places",
    "coverage",
    "pairing",
    "hotspots",
    "service_reach",
    "walking",
    "siting",
    "joint_branches",
)


class AnalysisRunning(HongtuError):
    """Another analysis is queued or running: wait for it."""

    status = 409


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def freshness(store: Store) -> dict:
    """Whether the latest run's results still describe the stored data.

    Returns
    -------
    dict
        ``run_id`` (None without a run), ``run_at`` (when it was stored), ``stale`` (the
        data users load changed after the run read it) and ``changed_at`` (the last such
        change, None before the first).
    """
    newest = select(func.max(AnalysisRun.id)).scalar_subquery()
    query = select(
        data_version.c.inputs_version.label("current"),
        data_version.c.inputs_changed_at,
        AnalysisRun.id,
        AnalysisRun.created_at,
        AnalysisRun.inputs_version,
    ).select_from(data_version.outerjoin(AnalysisRun, AnalysisRun.id == newest))
    with store.connect(transaction=False) as conn:
        row = conn.execute(query).one()
    return {
        "run_id": row.id,
        "run_at": _aware(row.created_at),
        "stale": row.id is not None and row.inputs_version < row.current,
        "changed_at": _aware(row.inputs_changed_at),
    }


def latest_job(store: Store) -> dict | None:
    """The newest job: its ``id``, ``state``, ``stage`` (the last one ended, and its ``step``
    of ``steps``), who started it and when, its run once stored and its error once failed; a
    job silent for ``JOB_SILENCE`` reads as failed."""
    with store.connect(transaction=False) as conn:
        row = conn.execute(select(analysis_jobs).order_by(analysis_jobs.c.id.desc()).limit(1)).mappings().first()
    if row is None:
        return None
    job = {k: _aware(v) if isinstance(v, datetime) else v for k, v in row.items()}
    job["steps"] = len(STAGES)
    job["step"] = STAGES.index(job["stage"]) + 1 if job["stage"] in STAGES else 0
    if job["state"] in ACTIVE and job["heartbeat_at"] < _now() - JOB_SILENCE:
        job.update(state="failed", error="分析进程已退出 / the analysis process ended")
    return job


def start(store: Store, username: str | None, params: analysis.Parameters | None = None) -> int:
    """Queue a run with ``params`` (by default the latest run's settings) and start the
    process that runs it; return the job's id.

    Raises
    ------
    AnalysisRunning
        When another job is queued or running (on any instance).
    """
    now = _now()
    with store.connect(write=True) as conn:
        if store.backend_name == "postgis":
            # Two instances checking at once must not both find the table free.
            conn.execute(text("LOCK TABLE analysis_jobs IN SHARE ROW EXCLUSIVE MODE"))
        active = analysis_jobs.c.state.in_(ACTIVE)
        conn.execute(
            update(analysis_jobs)
            .where(active, analysis_jobs.c.heartbeat_at < now - JOB_SILENCE)
            .values(state="failed", error="分析进程已退出 / the analysis process ended", finished_at=now)
        )
        if conn.execute(select(analysis_jobs.c.id).where(active)).first():
            raise AnalysisRunning("已有一次分析正在进行，请等待其完成", "an analysis is already running: wait for it")
        if params is None:
            stored = conn.execute(select(AnalysisRun.parameters).order_by(AnalysisRun.id.desc()).limit(1)).scalar()
            params = analysis.Parameters.from_stored(stored) if stored else analysis.Parameters()
        job_id = conn.execute(
            insert(analysis_jobs)
            .values(state="queued", username=username, created_at=now, heartbeat_at=now)
            .returning(analysis_jobs.c.id)
        ).scalar_one()
    subprocess.Popen(
        [sys.executable, "-m", __name__, str(job_id), json.dumps(asdict(params))],
        env={**os.environ, "DATABASE_URL": store.url},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return job_id


def _beat(store: Store, job_id: int, **values) -> None:
    with store.connect() as conn:
        conn.execute(update(analysis_jobs).where(analysis_jobs.c.id == job_id).values(heartbeat_at=_now(), **values))


def run_job(store: Store, job_id: int, params: analysis.Parameters) -> None:
    """Run job ``job_id`` in this process, recording its stages, its run or its error."""
    _beat(store, job_id, state="running", stage="wait")
    with store.connect() as conn:
        username = conn.execute(select(analysis_jobs.c.username).where(analysis_jobs.c.id == job_id)).scalar()
    try:
        run_id, results = analysis.run_analysis(
            store, params, note="web", progress=lambda stage: _beat(store, job_id, stage=stage)
        )
    except Exception as exc:
        _beat(store, job_id, state="failed", error=str(exc)[:500], finished_at=_now())
        accounts.audit(store, username, "analysis", target=f"job {job_id}", ok=False, detail=str(exc)[:500])
        raise
    _beat(store, job_id, state="done", stage=None, run_id=run_id, finished_at=_now())
    accounts.audit(store, username, "analysis", target=f"run {run_id}", rows=results.summary["organizations"])


def due(store: Store, quiet: timedelta) -> bool:
    """Whether an automatic run should start now: the results are stale, nothing was written
    for ``quiet``, no job is going, and no job failed since the last write (a run that fails
    on this data is not retried until the data changes)."""
    state = freshness(store)
    if not state["stale"] or state["changed_at"] is None or state["changed_at"] > _now() - quiet:
        return False
    job = latest_job(store)
    return job is None or not (
        job["state"] in ACTIVE or (job["state"] == "failed" and job["created_at"] > state["changed_at"])
    )


def watch(store: Store, quiet: timedelta, every: float = 60.0, stop: threading.Event | None = None) -> None:
    """Start a run ``quiet`` after the last write, checking ``every`` seconds until ``stop``
    is set; run in a thread of every app process (a second start finds the first's job)."""
    stop = stop or threading.Event()
    while not stop.wait(every):
        try:
            if due(store, quiet):
                start(store, AUTO_USER)
        except AnalysisRunning:
            pass
        except Exception:  # noqa: BLE001 — a database away for a while must not end the watch
            log.exception("automatic analysis")


def main(argv: list[str]) -> None:
    """Entry point of a job's process: ``JOB_ID PARAMETERS_JSON``; the database is ``DATABASE_URL``."""
    store = Store(os.environ["DATABASE_URL"])
    run_job(store, int(argv[1]), analysis.Parameters.from_stored(json.loads(argv[2])))


if __name__ == "__main__":
    main(sys.argv)
