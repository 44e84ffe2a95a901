"""The store on both backends: schema, round trips, spatial queries, clear errors."""

import threading
import time
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.store import Store, StoreError, queries
from app.store.backends import BULK_CACHE_KIB
from app.store.cache import answers
from app.store.models import Instructor, Organization, PartyOrg, Place

from .conftest import BACKENDS, POSTGRES_URL, _fresh_store


def orgs_frame(lon, lat, start=1) -> gpd.GeoDataFrame:
    n = len(lon)
    return gpd.GeoDataFrame(
        {
            "org_id": [f"T{i:05d}" for i in range(start, start + n)],
            "name": [f"测试组织{i}<b>&'\"" for i in range(start, start + n)],
            "org_type": "enterprise",
            "industry": "互联网",
            "employees": np.arange(n) + 5,
            "party_members": np.arange(n) % 4,
            "operating": True,
            "demonstration": False,
            "source_crs": "gcj02",
        },
        geometry=shapely.points(np.column_stack([lon, lat])),
        crs=4326,
    )


def test_init_schema_is_idempotent(store: Store):
    store.init_schema()
    store.init_schema()
    assert store.schema_ready()
    assert set(store.counts().values()) == {0}


def test_orm_round_trip_with_party_org_and_instructor(store: Store):
    with store.session() as s:
        org = Organization(
            org_id="A1",
            name="云锦网络科技有限公司（演示）",
            org_type="enterprise",
            industry="互联网",
            employees=40,
            party_members=2,
            address="翠湖路1号",
            operating=True,
            demonstration=False,
            source_crs="wgs84",
            geom="SRID=4326;POINT(102.70 25.04)",
        )
        other = Organization(
            org_id="A2",
            name="金汇商贸有限公司（演示）",
            org_type="enterprise",
            employees=8,
            party_members=1,
            operating=True,
            demonstration=False,
            source_crs="bd09",
            geom="SRID=4326;POINT(102.71 25.05)",
        )
        joint = PartyOrg(
            party_org_id="P1",
            name="联合党支部",
            org_type="联合党支部",
            coverage_kind="joint",
            members=3,
            organizations=[org, other],
        )
        s.add_all(
            [
                org,
                other,
                joint,
                Instructor(organization=other, role="instructor", assigned_on=datetime(2026, 3, 1, tzinfo=UTC)),
            ]
        )
        s.commit()
    with store.session() as s:
        po = s.scalars(select(PartyOrg).where(PartyOrg.party_org_id == "P1")).one()
        assert sorted(o.org_id for o in po.organizations) == ["A1", "A2"]
        a2 = s.scalars(select(Organization).where(Organization.org_id == "A2")).one()
        assert [i.role for i in a2.instructors] == ["instructor"]
        assert a2.source_crs == "bd09"
    frame = store.read_frame("organizations", ["org_id", "name", "operating"])
    assert frame.loc[frame.org_id == "A1", "geometry"].iloc[0].equals_exact(shapely.Point(102.70, 25.04), 1e-12)
    assert frame["operating"].dtype == bool


def test_bulk_insert_and_read_back_exactly(store: Store):
    rng = np.random.default_rng(1)
    frame = orgs_frame(rng.uniform(102.5, 103.0, 500), rng.uniform(24.8, 25.3, 500))
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", frame)
    back = store.read_frame("organizations", [*frame.columns.drop("geometry")])
    assert back["org_id"].tolist() == frame["org_id"].tolist()
    assert back["name"].tolist() == frame["name"].tolist()
    assert back["employees"].tolist() == frame["employees"].tolist()
    assert np.abs(back.get_coordinates().values - frame.get_coordinates().values).max() < 1e-9
    # Rows added later by the ORM get fresh ids after the bulk load (sequences follow).
    with store.session() as s:
        s.add(
            Organization(
                org_id="LATE",
                name="x",
                org_type="enterprise",
                employees=1,
                party_members=0,
                operating=True,
                demonstration=False,
                source_crs="wgs84",
                geom="SRID=4326;POINT(102.6 25.0)",
            )
        )
        s.commit()
    assert store.counts()["organizations"] == 501
    # A row without a location is written without one.
    unplaced = orgs_frame([102.6], [25.0], start=900)
    unplaced.loc[0, "geometry"] = None
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", unplaced)
        assert conn.execute(text("SELECT geom IS NULL FROM organizations WHERE org_id = 'T00900'")).scalar()


@pytest.fixture(params=["row_by_row", "rebuilt_index"])
def index_mode(request, monkeypatch):
    """Exercise both ways a bulk load maintains SpatiaLite's spatial index."""
    if request.param == "rebuilt_index":
        monkeypatch.setattr("app.store.backends.BULK_REBUILD_ROWS", 100)
    return request.param


def test_bbox_query_matches_brute_force(store: Store, index_mode):
    rng = np.random.default_rng(2)
    frame = orgs_frame(rng.uniform(102.5, 103.0, 2000), rng.uniform(24.8, 25.3, 2000))
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", frame)
    bbox = (102.61, 24.93, 102.77, 25.11)
    got = set(store.read_frame("organizations", ["org_id"], bbox=bbox)["org_id"])
    xy = frame.get_coordinates()
    inside = (xy.x >= bbox[0]) & (xy.x <= bbox[2]) & (xy.y >= bbox[1]) & (xy.y <= bbox[3])
    assert got == set(frame.loc[inside, "org_id"])
    assert 100 < len(got) < 2000
    assert queries.organization_count(store, bbox, 50, 0, {}) == 51
    assert queries.organization_count(store, bbox, 5000, 0, {}) == len(got)


def test_failed_bulk_load_keeps_indexes_and_keys(store: Store, monkeypatch):
    """A bulk write drops indexes (and on PostGIS foreign keys) to build them once; when the
    write fails, they are all back and still enforced."""
    monkeypatch.setattr("app.store.backends.BULK_REBUILD_ROWS", 100)
    with store.connect() as conn:
        before = {t: sorted(store.backend.row_upkeep(conn, t)) for t in ("organizations", "party_org_coverage")}
    assert any("industry" in create for _, create in before["organizations"])
    frame = orgs_frame(np.linspace(102.6, 102.8, 300), np.full(300, 25.0))
    frame.loc[299, "org_id"] = frame.loc[0, "org_id"]
    with pytest.raises(Exception, match="(?i)unique"), store.connect() as conn:
        store.insert_frame(conn, "organizations", frame)
    links = pd.DataFrame({"party_org_id": [999_999] * 200, "organization_id": range(1, 201)})
    with pytest.raises(Exception, match="(?i)foreign key"), store.connect() as conn:
        store.insert_frame(conn, "party_org_coverage", links)
    with store.connect() as conn:
        after = {t: sorted(store.backend.row_upkeep(conn, t)) for t in before}
    assert after == before
    assert store.counts()["organizations"] == 0
    with pytest.raises(Exception, match="(?i)foreign key"), store.connect() as conn:
        store.insert_frame(conn, "party_org_coverage", links.iloc[:1])


def test_geometries_of_the_wrong_type_are_refused_in_bulk_as_row_by_row(store: Store, index_mode):
    """The bulk path checks the new rows' geometry type at the end instead of row by row (on
    SpatiaLite, its triggers are off meanwhile): the same refusal, nothing written, and every
    trigger back."""

    def triggers() -> list:
        if store.backend_name != "spatialite":
            return []
        with store.connect() as conn:
            return sorted(conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all())

    before = triggers()
    frame = orgs_frame(np.linspace(102.6, 102.8, 300), np.full(300, 25.0))
    frame.loc[150, "geometry"] = shapely.box(102.6, 25.0, 102.61, 25.01)
    with pytest.raises(Exception, match="(?i)geom"), store.connect() as conn:
        store.insert_frame(conn, "organizations", frame)
    assert store.counts()["organizations"] == 0 and triggers() == before
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", frame.drop(index=150))
    got = store.read_frame("organizations", ["org_id"], bbox=(102.6, 24.9, 102.7, 25.1))
    assert len(got) == 150 and triggers() == before


def test_a_bulk_write_gives_back_its_page_cache(store: Store, monkeypatch):
    """SQLite gets a large page cache for a bulk write only: every pooled connection keeping
    256 MB would add up in each worker."""
    if store.backend_name != "spatialite":
        pytest.skip("PostgreSQL's buffers are the server's")
    monkeypatch.setattr("app.store.backends.BULK_REBUILD_ROWS", 100)
    with store.connect() as conn:
        default = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        store.insert_frame(conn, "organizations", orgs_frame(np.full(150, 102.7), np.full(150, 25.0)))
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == default != -BULK_CACHE_KIB


def test_kept_answers_are_compressed_with_lz4_on_postgis(store: Store):
    if store.backend_name != "postgis":
        pytest.skip("SQLite keeps answers uncompressed")
    with store.connect() as conn:
        method = conn.execute(
            text("SELECT attcompression FROM pg_attribute WHERE attrelid = 'map_cache'::regclass AND attname = 'body'")
        ).scalar()
    assert method == "l"


def test_ids_taken_for_new_rows_are_never_taken_twice(store: Store):
    """An import takes its new rows' ids as one block; a second writer taking ids meanwhile
    (an import, or a plain insert using the sequence) waits for it and gets ids after them."""
    with store.connect(write=True) as conn:
        first = store.backend.new_ids(conn, "organizations", 1000)
        conn.execute(
            Organization.__table__.insert(),
            [{"id": int(i), "org_id": f"B{i}", "name": "批量", "org_type": "enterprise"} for i in first],
        )
        got: dict[str, np.ndarray] = {}
        other = threading.Thread(target=lambda: got.update(ids=_new_ids_in_own_transaction(store, 10)))
        other.start()
        other.join(timeout=1.0)
        assert other.is_alive(), "the second writer did not wait for the first"
    other.join(timeout=30)
    # The thread left a second pooled connection: on SpatiaLite its first insert after the next
    # test's clear() (which rebuilds every spatial index) fails once with "no such table".
    store.engine.dispose()
    assert len(np.unique(first)) == 1000 and got["ids"].min() > first.max()


def _new_ids_in_own_transaction(store: Store, count: int) -> np.ndarray:
    with store.connect(write=True) as conn:
        return store.backend.new_ids(conn, "organizations", count)


def test_only_small_answers_slow_to_compute_are_shared_between_processes(store: Store):
    def slow(body: str):
        def compute(_version: int) -> str:
            time.sleep(answers.MIN_SHARED_SECONDS)
            return body

        return compute

    small = answers.answer(store, "small", slow("s" * 1000))
    large = answers.answer(store, "large", slow("l" * (answers.MAX_SHARED_BYTES + 1)))
    quick = answers.answer(store, "quick", lambda _: "q" * 1000)
    with store.connect() as conn:
        shared = conn.execute(text("SELECT body FROM map_cache WHERE key LIKE 'answer:%'")).scalars().all()
    assert shared == [small.decode()] and len(large) == answers.MAX_SHARED_BYTES + 1 and quick == b"q" * 1000


def test_postgis_connections_do_not_jit_compile(store: Store):
    """JIT compiling a cold map query cost more than running it (0.6 of 0.8 s at 100k)."""
    if store.backend_name != "postgis":
        pytest.skip("SQLite has no JIT")
    with store.connect() as conn:
        assert conn.execute(text("SHOW jit")).scalar() == "off"


def test_a_bulk_write_refreshes_the_planner_statistics(store: Store, monkeypatch):
    if store.backend_name != "postgis":
        pytest.skip("SQLite plans from its indexes alone until ANALYZE is run")
    monkeypatch.setattr("app.store.backends.BULK_REBUILD_ROWS", 100)
    frame = orgs_frame(np.linspace(102.6, 102.8, 300), np.full(300, 25.0)).assign(industry="统计行业")
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", frame)
    with store.connect() as conn:
        common = conn.execute(
            text(
                "SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'organizations' AND attname = 'industry'"
            )
        ).scalar()
    assert common == "{统计行业}"


def test_polygon_bbox_and_contains(store: Store):
    square = shapely.box(102.70, 25.00, 102.72, 25.02)
    areas = gpd.GeoDataFrame(
        {
            "code": ["530102", "530102001"],
            "level": ["district", "street"],
            "name": ["五华区", "华山街道"],
            "parent_code": [None, "530102"],
            "generated": [False, True],
        },
        geometry=[shapely.MultiPolygon([shapely.box(102.6, 24.9, 102.8, 25.1)]), shapely.MultiPolygon([square])],
        crs=4326,
    )
    place = gpd.GeoDataFrame(
        {
            "place_id": ["B1", "B2"],
            "name": ["甲大厦", "乙大厦"],
            "kind": "building",
            "demonstration": False,
            "source_crs": "wgs84",
        },
        geometry=[shapely.box(102.701, 25.001, 102.702, 25.002), shapely.Point(102.75, 25.05)],
        crs=4326,
    )
    with store.connect() as conn:
        store.insert_frame(conn, "areas", areas)
        store.insert_frame(conn, "places", place)
    inside = queries.areas_containing(store, 102.71, 25.01)
    assert [a["code"] for a in inside] == ["530102", "530102001"]
    assert [a["code"] for a in queries.areas_containing(store, 102.75, 25.05)] == ["530102"]
    assert queries.areas_containing(store, 100.0, 20.0) == []
    # A box touching only the polygon's corner region still finds it; one beside it does not.
    corner = store.read_frame("places", ["place_id"], bbox=(102.7015, 25.0015, 102.71, 25.01))
    assert corner["place_id"].tolist() == ["B1"]
    assert store.read_frame("places", ["place_id"], bbox=(102.703, 25.003, 102.71, 25.01)).empty
    mixed = store.read_frame("places", ["place_id"])
    assert mixed.geom_type.tolist() == ["Polygon", "Point"]
    assert store.read_frame("areas", ["code"], where={"level": "street"})["code"].tolist() == ["530102001"]


def test_clear_empties_every_table(store: Store):
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", orgs_frame([102.7], [25.0]))
    assert not store.is_empty()
    with store.connect() as conn:
        store.clear(conn)
    assert store.is_empty()


def test_failed_transaction_leaves_store_and_index_unchanged(store: Store, index_mode):
    with store.connect() as conn:
        store.insert_frame(conn, "organizations", orgs_frame([102.7], [25.0]))
    rng = np.random.default_rng(4)
    with pytest.raises(Exception), store.connect() as conn:  # noqa: B017 - any database error
        store.insert_frame(conn, "organizations", orgs_frame(rng.uniform(102.6, 102.8, 300), np.full(300, 25.0), 2))
        store.insert_frame(conn, "organizations", orgs_frame([102.9], [25.2], start=2))  # duplicate org_id
    assert store.read_frame("organizations", ["org_id"])["org_id"].tolist() == ["T00001"]
    assert store.read_frame("organizations", ["org_id"], bbox=(102.69, 24.99, 102.71, 25.01))["org_id"].tolist() == [
        "T00001"
    ]


def test_unreachable_database_gives_one_line_error():
    store = Store("postgresql://postgres@127.0.0.1:1/hongtu")
    with pytest.raises(StoreError) as info:
        store.check()
    message = str(info.value)
    assert "\n" not in message and "DATABASE_URL" in message


def test_database_without_postgis_names_the_fix():
    url = POSTGRES_URL + "_noext"
    from app.store.admin import ensure_postgis_database

    try:
        ensure_postgis_database(url, extension=False)
    except StoreError as exc:
        pytest.skip(str(exc))
    store = Store(url)
    with store.connect() as conn:
        conn.exec_driver_sql("DROP EXTENSION IF EXISTS postgis CASCADE")
    with pytest.raises(StoreError, match="CREATE EXTENSION postgis"):
        store.check()
    store.engine.dispose()


def test_unsupported_url_is_rejected():
    with pytest.raises(StoreError, match="unsupported DATABASE_URL"):
        Store("mysql://root@localhost/x")


def test_place_model_matches_table(store: Store):
    with store.session() as s:
        s.add(
            Place(
                place_id="X",
                name="园",
                kind="park",
                demonstration=False,
                source_crs="wgs84",
                geom="SRID=4326;POLYGON((102.7 25,102.71 25,102.71 25.01,102.7 25))",
            )
        )
        s.commit()
    assert store.counts()["places"] == 1


@pytest.mark.parametrize("write", [True, False])
def test_a_transaction_that_reads_first_waits_for_another_writer(store: Store, write):
    """An import reads the stored rows before it writes. A writer committing in between (a
    kept map page, another import) must make it wait when it says it will write — on SQLite a
    plain transaction that has read cannot wait and fails at once."""
    with store.connect() as conn:
        before = store.data_version(conn)
    reading = threading.Event()

    def other_writer():
        reading.wait()
        with store.connect() as conn:
            store.data_changed(conn)

    def reads_then_writes():
        with store.connect(write=write) as conn:
            conn.execute(text("SELECT count(*) FROM organizations")).scalar()
            reading.set()
            time.sleep(0.5)  # the other writer commits now, if it may
            store.data_changed(conn)

    other = threading.Thread(target=other_writer)
    other.start()
    try:
        if write or store.backend_name == "postgis":
            reads_then_writes()
            expected = before + 2
        else:
            with pytest.raises((StoreError, OperationalError), match="locked"):
                reads_then_writes()
            expected = before + 1
    finally:
        other.join(timeout=60)
    with store.connect() as conn:
        assert store.data_version(conn) == expected


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_database_made_anew_does_not_repeat_a_data_version(backend: str, tmp_path_factory):
    """Processes keep answers per data version: a database created again (on PostGIS under the
    same URL) must not count from where the last one did."""
    versions = []
    for _ in range(2):
        store = _fresh_store(backend, tmp_path_factory, "anew")
        with store.connect() as conn:
            versions.append(store.data_version(conn))
        store.engine.dispose()
    assert versions[0] != versions[1]


def test_the_migrations_build_what_the_models_describe(store: Store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.store.models import Base

    # Only Hongtu's tables: SpatiaLite and PostGIS keep tables of their own (spatial_ref_sys,
    # SpatiaLite's R*Tree shadow tables) that no model describes. SpatiaLite keeps a spatial
    # index as such an R*Tree, which SQLite does not report as an index.
    def ours(_object, name, kind, _reflected, _compare_to) -> bool:
        if kind == "index" and store.backend_name == "spatialite" and name.startswith("idx_"):
            return not name.endswith("_geom")
        return kind != "table" or name in Base.metadata.tables

    with store.engine.connect() as conn:
        # SQLite's column types are affinities: its INTEGER holds what BigInteger does.
        compare_type = store.backend_name == "postgis"
        context = MigrationContext.configure(conn, opts={"include_object": ours, "compare_type": compare_type})
        assert compare_metadata(context, Base.metadata) == []
