"""Faults: an import killed midway, readers during an import, a read-only database, and a
PostgreSQL restart under a running app — on the real backends."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from app import create_app
from app.intake.export import export_kind
from app.services.demo import load_demo
from app.store import Store, StoreError, cache, tiles
from app.store.admin import ensure_postgis_database

from .conftest import POSTGRES_URL, Served, api_token, signed_in

HONGTU = str(Path(sys.executable).with_name("hongtu"))


def state(store: Store) -> tuple:
    """What an import may change: the organizations, their party links and instructors."""
    with store.connect() as conn:
        ids = frozenset(r[0] for r in conn.execute(text("SELECT org_id FROM organizations")))
        links = conn.execute(text("SELECT count(*) FROM party_org_coverage")).scalar()
        instructors = conn.execute(text("SELECT count(*) FROM instructors")).scalar()
    return ids, links, instructors


def big_csv(store: Store, tmp_path: Path, copies: int = 100) -> tuple[Path, set[str]]:
    """A CSV of new organizations: the stored ones copied ``copies`` times under new ids."""
    export_kind(store, "orgs", "csv", tmp_path / "orgs.csv")
    rows = pd.read_csv(tmp_path / "orgs.csv", dtype=str, encoding="utf-8-sig")
    frames = []
    for k in range(copies):
        copy = rows.copy()
        copy.iloc[:, 0] = [f"K{k:03d}-{i}" for i in range(len(rows))]
        copy[[c for c in rows.columns if "credit_code" in c]] = None
        frames.append(copy)
    big = pd.concat(frames, ignore_index=True)
    path = tmp_path / "big.csv"
    big.to_csv(path, index=False, encoding="utf-8-sig")
    return path, set(big.iloc[:, 0])


def test_import_killed_at_any_moment_leaves_all_or_nothing(store: Store, tmp_path: Path):
    load_demo(store, n_orgs=300, seed=9)
    path, new_ids = big_csv(store, tmp_path)
    before = state(store)
    env = {**os.environ, "DATABASE_URL": store.url}
    # Measure one whole import on a copy-free dry run, then kill real ones across that span.
    started = time.perf_counter()
    subprocess.run([HONGTU, "import", "orgs", str(path), "--dry-run"], env=env, check=True, capture_output=True)
    span = time.perf_counter() - started
    outcomes = []
    for fraction in (0.3, 0.6, 0.9, 1.2, 1.6):
        process = subprocess.Popen([HONGTU, "import", "orgs", str(path)], env=env, stdout=subprocess.DEVNULL)
        time.sleep(span * fraction)
        process.send_signal(signal.SIGKILL)
        process.wait()
        ids, links, instructors = state(store)
        store.engine.dispose()
        if ids == before[0]:
            assert (links, instructors) == before[1:]
            outcomes.append("nothing")
        else:
            assert ids == before[0] | new_ids and links > before[1]
            outcomes.append("all")
    assert "nothing" in outcomes, outcomes


def test_readers_keep_reading_while_an_import_writes(store: Store, tmp_path: Path):
    load_demo(store, n_orgs=300, seed=9)
    path, new_ids = big_csv(store, tmp_path, copies=60)
    client = signed_in(create_app({"DATABASE_URL": store.url, "TESTING": True, "HONGTU_POINT_LIMIT": 100_000}))
    url = "/api/collections/organizations/items?resulttype=hits"
    before = client.get(url).get_json()["numberMatched"]
    process = subprocess.Popen(
        [HONGTU, "import", "orgs", str(path)], env={**os.environ, "DATABASE_URL": store.url}, stdout=subprocess.DEVNULL
    )
    seen = []
    while process.poll() is None:
        answer = client.get(url)
        assert answer.status_code == 200
        seen.append(answer.get_json()["numberMatched"])
        time.sleep(0.05)
    assert process.returncode == 0
    # Every read saw the data before or after the import, never a part of it.
    assert set(seen) <= {before, before + len(new_ids)} and len(seen) > 3
    assert client.get(url).get_json()["numberMatched"] == before + len(new_ids)


def test_read_only_database_gives_a_clear_error_and_changes_nothing(tmp_path: Path):
    url = POSTGRES_URL + "_readonly"
    try:
        ensure_postgis_database(url)
    except StoreError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostGIS is required under CI: {exc}")
        pytest.skip(str(exc))
    store = Store(url)
    store.init_schema()
    with store.connect() as conn:
        store.clear(conn)
    load_demo(store, n_orgs=200, seed=4)
    path, _ = big_csv(store, tmp_path, copies=2)
    before = state(store)
    store.engine.dispose()
    admin = Store(POSTGRES_URL.rsplit("/", 1)[0] + "/postgres")
    name = url.rsplit("/", 1)[1]
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"ALTER DATABASE {name} SET default_transaction_read_only = on"))
    try:
        done = subprocess.run(
            [HONGTU, "import", "orgs", str(path)],
            env={**os.environ, "DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr
        assert "只读" in done.stderr and "read-only" in done.stderr
        # Reading still works: the map's clusters are answered though they cannot be kept.
        reader = Store(url)
        cell = tiles.cluster_cell(tiles.CITY_ZOOM)
        clusters, _ = cache.cluster_tiles(reader, (102.6, 24.9, 102.9, 25.2), cell)
        assert sum(c["n"] for c in clusters) > 0
        cache.warm_city_view(reader, 0)
        reader.engine.dispose()
    finally:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f"ALTER DATABASE {name} RESET default_transaction_read_only"))
        admin.engine.dispose()
    assert state(Store(url)) == before


def _cluster() -> list[str] | None:
    """The version and name of the local PostgreSQL cluster, if this machine manages one."""
    if not shutil.which("pg_lsclusters") or os.geteuid() != 0:
        return None
    lines = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True).stdout.split("\n")
    online = [line.split() for line in lines if "online" in line and " 5432 " in f" {line} "]
    return online[0][:2] if online else None


def test_app_survives_a_postgresql_restart(analyzed_store: Store):
    if analyzed_store.backend_name != "postgis":
        pytest.skip("a PostgreSQL restart concerns the PostGIS backend")
    cluster = _cluster()
    if cluster is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the restart test needs root and a local cluster (pg_ctlcluster) under CI")
        pytest.skip("no local PostgreSQL cluster to restart")
    served = Served(analyzed_store)
    auth = {"Authorization": f"Bearer {api_token(analyzed_store)}"}

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(urllib.request.Request(served.url + path, headers=auth), timeout=30) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    path = "/api/collections/districts/items?limit=1"
    try:
        assert get(path)[0] == 200
        subprocess.run(["pg_ctlcluster", *cluster, "stop", "-m", "fast"], check=True)
        try:
            started = time.perf_counter()
            status, body = get(path)
            assert status == 503 and "数据库" in body and time.perf_counter() - started < 5
            status, page = get("/")
            assert status == 503 and "DATABASE_URL" in page
        finally:
            subprocess.run(["pg_ctlcluster", *cluster, "start"], check=True)
        # Back without restarting the app: the pool checks its connections before use.
        for _ in range(100):
            if get(path)[0] == 200:
                break
            time.sleep(0.2)
        assert get(path)[0] == 200 and get("/map/data/district?bbox=102,24,104,26&zoom=9")[0] == 200
    finally:
        served.close()


def test_full_disk_gives_a_clear_error_and_changes_nothing(tmp_path: Path):
    """A SpatiaLite database on a small filesystem (a tmpfs of 8 MB) that fills up mid-import."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)], capture_output=True
        ).returncode
        == 0
    )
    if not mounted:
        if os.environ.get("CI") == "true":
            pytest.fail("the full-disk test needs root to mount a small tmpfs under CI")
        pytest.skip("cannot mount a small filesystem (needs root)")
    try:
        store = Store(f"sqlite:///{disk / 'hongtu.sqlite'}")
        store.init_schema()
        load_demo(store, n_orgs=300, seed=6)
        path, _ = big_csv(store, tmp_path, copies=60)
        before = state(store)
        # Leave the database almost no room: the import's write fails part-way.
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * max(free - 200_000, 0))
        done = subprocess.run(
            [HONGTU, "import", "orgs", str(path)],
            env={**os.environ, "DATABASE_URL": store.url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
        assert "磁盘已满" in done.stderr and "disk is full" in done.stderr
        (disk / "filler").unlink()
        store.engine.dispose()
        reopened = Store(store.url)
        assert state(reopened) == before
        with reopened.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        reopened.engine.dispose()
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
