"""No request can exhaust the server: map images share one browser and a few pages, a busy
renderer answers 503 with Retry-After, oversize images and too many exports are refused
(issue 19, finding 14; zips and vertices are in test_uploads)."""

from __future__ import annotations

import os
import threading

import pytest

from app import create_app
from app.processes import Process, descendants, thread_ids, thread_nice
from app.store import Store
from app.web import renderer as rendering

from ..conftest import signed_in
from ..test_reports import need_chromium


def _chromium() -> list[Process]:
    """Chromium processes descended from this one."""
    return [p for p in descendants(os.getpid()) if "chrom" in p.name.lower()]


def _chromium_processes() -> tuple[int, int]:
    """Chromium processes descended from this one, and how many of them are browsers (not a
    browser's own helpers)."""
    chromium = _chromium()
    pids = {p.pid for p in chromium}
    return len(chromium), sum(1 for p in chromium if p.parent not in pids)


def test_many_map_images_share_one_browser_and_a_bounded_set_of_pages(analyzed_store: Store, street):
    need_chromium()
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_EXPORTS_PER_MIN": 1000})
    client = signed_in(app)
    answers, counts = [], []

    def ask():
        answers.append(client.get(f"/area/{street}/map.png?width=400&height=300").status_code)
        counts.append(_chromium_processes())

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Two pages draw and two requests wait; any more asked at the same moment are refused.
    assert set(answers) <= {200, 503} and answers.count(200) >= 4, answers
    # One browser whatever the number of images: its own helpers (zygotes, GPU, network,
    # storage) and a renderer per page drawing, never a browser per image (8+ processes each).
    assert all(browsers <= 1 for _, browsers in counts) and max(n for n, _ in counts) <= 24, counts
    for _ in range(3):
        assert client.get(f"/area/{street}/map.pdf?width=400&height=300").status_code == 200
    assert _chromium_processes()[1] == 1


def test_the_browser_stays_at_the_lowest_priority_even_when_run_as_root(analyzed_store: Store, street):
    need_chromium()
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_EXPORTS_PER_MIN": 1000})
    assert signed_in(app).get(f"/area/{street}/map.png?width=400&height=300").status_code == 200
    # Chromium raises its main and compositing threads to nice 0 and -8 whenever it may.
    nice = {thread_nice(tid) for p in _chromium() for tid in thread_ids(p.pid)} - {None}
    assert nice == {rendering.BROWSER_NICE}, nice


def test_a_busy_renderer_answers_503_with_retry_after(analyzed_store: Store, street):
    need_chromium()
    app = create_app(
        {"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_RENDER_PAGES": 1, "HONGTU_RENDER_WAIT_S": 0.2}
    )
    busy = rendering.renderer(app.config)
    assert busy._slots.acquire(timeout=1)
    try:
        answer = signed_in(app).get(f"/area/{street}/map.png?width=400&height=300")
    finally:
        busy._slots.release()
    assert answer.status_code == 503 and int(answer.headers["Retry-After"]) > 0


def test_an_image_over_the_pixel_cap_is_refused_before_drawing(analyzed_store: Store, street):
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})
    answer = signed_in(app).get(f"/area/{street}/map.png?width=4000&height=4000")
    assert answer.status_code == 400 and "像素" in answer.get_data(as_text=True)


def test_exports_past_the_per_user_limit_get_429_and_are_audited_once(analyzed_store: Store, street):
    from app.store import accounts

    before = len(accounts.audit_entries(analyzed_store, "refused", limit=None))
    app = create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True, "HONGTU_EXPORTS_PER_MIN": 2})
    client = signed_in(app, "street", street)
    answers = [client.get(f"/area/{street}/export/ledger.csv") for _ in range(6)]
    assert [a.status_code for a in answers] == [200, 200, 429, 429, 429, 429]
    assert answers[-1].headers["Retry-After"] == "60"
    # A client asking in a loop leaves one entry for the minute, not one per refusal.
    refused = accounts.audit_entries(analyzed_store, "refused", limit=None)
    assert len(refused) == before + 1
    assert refused.iloc[0]["username"] == f"street-{street}" and "too many exports" in refused.iloc[0]["detail"]


@pytest.fixture(autouse=True)
def _no_export_history(analyzed_store: Store):
    # Exports earlier in the session count towards the per-minute limit of the same accounts.
    from sqlalchemy import text

    with analyzed_store.connect() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE action = 'export'"))


def test_beyond_a_short_queue_a_render_is_refused_at_once():
    import time

    busy = rendering.Renderer("/usr/bin/chromium", pages=1, wait=5)
    assert busy._slots.acquire(timeout=1)
    busy._waiting = busy.queue
    started = time.perf_counter()
    with pytest.raises(rendering.RenderBusy), busy.page():
        pass
    assert time.perf_counter() - started < 0.5
