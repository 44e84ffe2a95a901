"""Fixtures: real stores on both backends (SpatiaLite file, PostGIS database) and a demo city.

The PostGIS URL comes from HONGTU_TEST_POSTGRES_URL (scripts/test.sh sets it). When PostGIS
cannot be reached the PostGIS half is skipped with the reason — except under CI=true, where it
fails: CI must never pass without having tested PostGIS.
"""

from __future__ import annotations

import os
import threading
from functools import cache

import pytest
from sqlalchemy import text
from werkzeug.serving import make_server

from app import create_app
from app.services.demo import DATA_DIR
from app.store import Store, StoreError, accounts
from app.store.admin import ensure_postgis_database
from app.store.models import Base
from app.web.auth import session_fields
from geo.democity import DemoCity, generate

POSTGRES_URL = os.environ.get("HONGTU_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_test")
BACKENDS = ("spatialite", "postgis")
DEMO_ORGS = 3000
DEMO_SEED = 7


def _postgres_url(suffix: str) -> str:
    return POSTGRES_URL + suffix


def _fresh_store(backend: str, tmp_path_factory, name: str) -> Store:
    """A store with an empty, freshly migrated schema."""
    if backend == "spatialite":
        return _migrated(Store(f"sqlite:///{tmp_path_factory.mktemp(name) / 'hongtu.sqlite'}"))
    url = _postgres_url("" if name == "store" else f"_{name}")
    try:
        ensure_postgis_database(url)
        store = Store(url)
        with store.connect() as conn:
            Base.metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    except StoreError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostGIS is required under CI: {exc}")
        pytest.skip(f"PostGIS unavailable: {exc}")
    return _migrated(store)


def _migrated(store: Store) -> Store:
    store.init_schema()
    return store


@pytest.fixture(scope="session", params=BACKENDS)
def session_store(request, tmp_path_factory) -> Store:
    store = _fresh_store(request.param, tmp_path_factory, "store")
    yield store
    store.engine.dispose()


@pytest.fixture
def store(session_store: Store) -> Store:
    """An empty store, on each backend in turn."""
    with session_store.connect() as conn:
        session_store.clear(conn)
    return session_store


@cache
def demo_city() -> DemoCity:
    """The demo city the demo stores hold (generated once per test session)."""
    return generate(DATA_DIR, n_orgs=DEMO_ORGS, seed=DEMO_SEED)


@pytest.fixture(scope="session", params=BACKENDS)
def demo_store(request, tmp_path_factory) -> Store:
    """A store holding the demo city; tests must not modify it."""
    store = _fresh_store(request.param, tmp_path_factory, "demo")
    with store.connect() as conn:
        for table, frame in demo_city().tables().items():
            store.insert_frame(conn, table, frame)
    yield store
    store.engine.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def analyzed_store(request, tmp_path_factory) -> Store:
    """A small demo city analysed twice (1000 m, then 800 m service radius); read-only for tests."""
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo

    store = _fresh_store(request.param, tmp_path_factory, "analyzed")
    load_demo(store, n_orgs=1500, seed=11)
    run_analysis(store, Parameters())
    run_analysis(store, Parameters(radius_m=800))
    yield store
    store.engine.dispose()


#: The password of every account the tests make.
PASSWORD = "Hongtu-test-pw1"


def ensure_user(store: Store, role: str = "admin", area: str | None = None) -> dict:
    """An account of ``role`` (over ``area``) in ``store``, made on first use; named role-area."""
    name = f"{role}-{area or 'city'}"
    if not any(u["username"] == name for u in accounts.list_users(store)):
        accounts.add_user(store, name, PASSWORD, role, area)
    return next(u for u in accounts.list_users(store) if u["username"] == name)


def signed_in(app, role: str = "admin", area: str | None = None):
    """A test client of ``app`` whose session belongs to an account of ``role`` (over ``area``)."""
    user = ensure_user(Store(app.config["DATABASE_URL"]), role, area)
    client = app.test_client()
    with client.session_transaction() as session:
        session.update(session_fields(user))
    return client


def api_token(store: Store, role: str = "admin", area: str | None = None) -> str:
    """A fresh API token of an account of ``role`` (over ``area``)."""
    user = ensure_user(store, role, area)
    return accounts.issue_token(store, "api", user["username"])


class Served:
    """The app on a real HTTP port on the loopback, in a background thread."""

    def __init__(self, store: Store, **config):
        app = create_app({"DATABASE_URL": store.url, **config})
        self.store = store
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sign_in(self, page, role: str = "admin", area: str | None = None) -> None:
        """Sign a Playwright page in through the login form, as a user would."""
        user = ensure_user(self.store, role, area)
        page.goto(self.url + "/login")
        page.fill("input[name=username]", user["username"])
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button[type=submit]")

    def close(self):
        self.server.shutdown()


class Gunicorn:
    """The app under gunicorn on a free loopback port, as production runs it."""

    def __init__(self, url: str, workers: int = 2, **settings: str):
        import socket
        import subprocess
        import sys
        import time
        import urllib.request
        from pathlib import Path

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, **settings, "DATABASE_URL": url, "SECRET_KEY": "shared-by-every-instance"}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
            + ["app:create_app()"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        self.close()
        raise RuntimeError("gunicorn did not start")

    def close(self):
        self.process.terminate()
        self.process.wait(timeout=30)
