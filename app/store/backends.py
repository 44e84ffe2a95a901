"""The two storage backends, SpatiaLite and PostGIS, and everything in which they differ.

Nothing outside ``app/store/`` knows which backend is in use: the rest of Hongtu speaks to
:class:`app.store.Store`, which delegates the differences to one of the classes here.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Connection, Engine

from .errors import StoreBusy, StoreError
from .models import SRID, Base


def bbox_params(bbox: tuple[float, float, float, float]) -> dict[str, float]:
    """The bound parameters ``:minx, :miny, :maxx, :maxy`` that ``bbox_clause`` reads."""
    return dict(zip(("minx", "miny", "maxx", "maxy"), map(float, bbox), strict=True))


class Backend:
    """What differs between backends: connecting, checking, spatial filters and bulk writes."""

    name = ""

    def create_engine(self, url: str) -> Engine:
        raise NotImplementedError

    def check(self, conn: Connection) -> None:
        """Raise :class:`StoreError` naming the fix if the spatial extension is unusable."""
        raise NotImplementedError

    def prepare(self, conn: Connection) -> None:
        """Make an empty database ready for the migrations (spatial metadata, extension)."""
        raise NotImplementedError

    def index_clause(self, table: str, alias: str) -> str:
        """SQL condition selecting, from the spatial index alone, the rows of ``alias`` (table
        ``table``) whose bounding box meets the box bound to ``:minx, :miny, :maxx, :maxy``.
        A candidate filter: combine it with an exact predicate."""
        raise NotImplementedError

    def envelope(self) -> str:
        """SQL for the box bound to ``:minx, :miny, :maxx, :maxy`` as a polygon."""
        raise NotImplementedError

    def extent_sql(self, table: str, where: str = "") -> str:
        """SQL answering one row (minx, miny, maxx, maxy) of the geometries of ``table``
        (of its rows meeting the SQL condition ``where``)."""
        raise NotImplementedError

    def is_true(self, predicate: str) -> str:
        """A spatial predicate as a condition (SpatiaLite answers 1, 0 or -1 for bad input)."""
        return predicate

    def point_sql(self, x: str, y: str) -> str:
        """SQL of a WGS-84 point from two SQL expressions (bound parameters, say)."""
        return f"ST_SetSRID(ST_MakePoint({x}, {y}), {SRID})"

    @contextmanager
    def time_limit(self, conn: Connection, seconds: float) -> Iterator[None]:
        """Statements of ``conn``'s transaction in the block fail after ``seconds``."""
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(seconds * 1000))}")
        yield

    def bbox_clause(self, table: str, alias: str) -> str:
        """SQL condition selecting rows whose geometry meets the (non-degenerate) bound box."""
        return f"{self.index_clause(table, alias)} AND ST_Intersects({alias}.geom, {self.envelope()})"

    def json_object(self, members: Sequence[tuple[str, str]]) -> str:
        """SQL building a JSON object from (key, SQL value) pairs; keys are Hongtu's own names."""
        raise NotImplementedError

    def json_value(self, sql: str, kind: str) -> str:
        """SQL giving a JSON object member of type ``kind`` (string, integer, number, boolean).
        Numbers keep 10 decimals, as the pandas writer of exports does."""
        raise NotImplementedError

    def geojson(self, sql: str) -> str:
        """SQL giving a geometry as a GeoJSON member, to 7 decimals of a degree (about 1 cm)."""
        raise NotImplementedError

    def make_line(self, start: str, end: str) -> str:
        """SQL of the line between two points."""
        raise NotImplementedError

    def repeat(self, char: str, count: str) -> str:
        """SQL of ``char`` repeated ``count`` (SQL) times."""
        raise NotImplementedError

    def insert_rows(
        self,
        conn: Connection,
        table: str,
        columns: Sequence[str],
        rows: Iterable[tuple],
        geoms: np.ndarray | None,
    ) -> None:
        """Append rows to ``table``; ``geoms`` (shapely, WGS-84), if given, to its ``geom`` column."""
        raise NotImplementedError

    def upsert_rows(
        self,
        conn: Connection,
        table: str,
        key: str,
        columns: Sequence[str],
        rows: Iterable[tuple],
        geoms: np.ndarray | None,
        update: Sequence[str],
    ) -> None:
        """Insert rows, or where ``key`` already exists update the ``update`` columns (and ``geom``)."""
        raise NotImplementedError

    def after_bulk_insert(self, conn: Connection, table: str) -> None:
        """Bring id generators past ids written explicitly by a bulk insert."""

    def new_ids(self, conn: Connection, table: str, count: int) -> np.ndarray:
        """``count`` ids for rows about to be inserted into ``table`` (by the caller's write transaction)."""
        raise NotImplementedError

    def delete_all(self, conn: Connection, table: str, spatial: bool) -> None:
        """Delete every row of ``table`` inside the caller's transaction."""
        conn.exec_driver_sql(f"DELETE FROM {table}")

    def row_upkeep(self, conn: Connection, table: str) -> list[tuple[str, str]]:
        """(drop, create) DDL of what ``table`` maintains row by row and a bulk write may build
        once afterwards: indexes no constraint depends on (PostgreSQL: foreign keys too)."""
        raise NotImplementedError

    @contextmanager
    def built_once(self, conn: Connection, table: str) -> Iterator[None]:
        """Drop ``table``'s row-by-row upkeep for a bulk write and build each piece once afterwards.

        Maintaining a B-tree of random keys or checking a foreign key row by row costs more than
        the rows themselves; building the index once from sorted data, or validating the key with
        one join, is several times cheaper. DDL is transactional on both backends, so a failed
        write leaves everything as it was.
        """
        upkeep = self.row_upkeep(conn, table)
        for drop, _ in upkeep:
            conn.exec_driver_sql(drop)
        yield
        for _, create in upkeep:
            conn.exec_driver_sql(create)

    def exclusive(self, store, name: str, wait: float) -> Iterator[None]:
        """A context holding the lock ``name`` across processes (see ``Store.exclusive``)."""
        raise NotImplementedError

    def adapt_datetimes(self, values: pd.Series) -> pd.Series:
        """Timezone-aware timestamps as the driver wants them."""
        return pd.Series(values.dt.to_pydatetime(), index=values.index, dtype=object)

    def adapt_booleans(self, values: pd.Series) -> pd.Series:
        """Booleans as the driver binds them fastest."""
        return values


#: How often a waiting ``exclusive`` tries the lock again, in seconds.
_LOCK_POLL = 0.1


#: What each lock of ``exclusive`` guards, as a busy message names it.
_LOCK_NAMES = {"import": "导入", "analysis": "分析"}


def _busy(name: str, wait: float) -> StoreBusy:
    return StoreBusy(
        f"另一个{_LOCK_NAMES.get(name, '写入')}正在进行，已等待 {wait:.0f} 秒，请稍后重试",
        f"another {name} is running (waited {wait:.0f} s): retry in a minute",
    )


def _assignments(update: Sequence[str], spatial: bool) -> str:
    """The SET list of an ``ON CONFLICT … DO UPDATE`` (same syntax on SQLite and PostgreSQL)."""
    return ", ".join(f"{c} = excluded.{c}" for c in [*update, *(["geom"] if spatial else [])])


def _sqlite_module():
    """The DB-API module to use for SQLite: one that can load SpatiaLite.

    pyenv and some distributions build Python without ``enable_load_extension``; pysqlite3
    (with its own SQLite) is the documented way around that.
    """
    if hasattr(sqlite3.Connection, "enable_load_extension"):
        return sqlite3
    try:
        import pysqlite3.dbapi2 as pysqlite3
    except ImportError as exc:
        raise StoreError(
            "此 Python 的 sqlite3 不能加载扩展，请安装 pysqlite3-binary / "
            "this Python's sqlite3 cannot load extensions: pip install pysqlite3-binary"
        ) from exc
    return pysqlite3


#: Writing at least this many rows in one go rebuilds the table's indexes once instead of
#: updating them row by row; each backend adds a condition of its own. (At 20,000, 10,000
#: organizations went into SpatiaLite row by row: 0.6 s instead of 0.39.)
BULK_REBUILD_ROWS = 2_000
#: PostgreSQL's statistics target for the ANALYZE after such a write (300 × it rows sampled).
ANALYZE_TARGET = 30
#: Page cache (KiB) a SQLite connection may use during such a write.
BULK_CACHE_KIB = 256 * 1024


class SpatiaLiteBackend(Backend):
    """SQLite with the SpatiaLite extension: the embedded default."""

    name = "spatialite"

    def create_engine(self, url: str) -> Engine:
        module = _sqlite_module()
        library = os.environ.get("SPATIALITE_LIBRARY_PATH", "mod_spatialite")
        # SQLite loads mod_spatialite with RTLD_GLOBAL; GDAL (pyogrio's wheel) then mixes that
        # SpatiaLite with its own and crashes closing a GeoPackage. GDAL's GeoPackage driver
        # does not need SpatiaLite, so tell GDAL (which reads this from the environment) not to load it.
        os.environ.setdefault("SPATIALITE_LOAD", "FALSE")
        engine = create_engine(url, module=module, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_conn, _record):
            # Transactions are issued by SQLAlchemy ('begin' below), not by the driver's
            # legacy implicit mode, so DDL and multi-statement imports are atomic too.
            dbapi_conn.isolation_level = None
            dbapi_conn.enable_load_extension(True)
            try:
                dbapi_conn.load_extension(library)
            except Exception as exc:
                raise StoreError(
                    "找不到 SpatiaLite 扩展，请安装 libsqlite3-mod-spatialite / SpatiaLite not "
                    f"found ({exc}): apt-get install libsqlite3-mod-spatialite"
                ) from exc
            finally:
                dbapi_conn.enable_load_extension(False)
            cursor = dbapi_conn.cursor()
            # WAL lets readers keep reading while an import writes.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("hongtu_write") else "BEGIN")

        return engine

    def check(self, conn: Connection) -> None:
        conn.execute(text("SELECT spatialite_version()"))

    def is_true(self, predicate: str) -> str:
        return f"{predicate} = 1"

    def point_sql(self, x: str, y: str) -> str:
        return f"MakePoint({x}, {y}, {SRID})"

    @contextmanager
    def time_limit(self, conn: Connection, seconds: float) -> Iterator[None]:
        # SQLite has no statement time-out: a progress handler interrupts the statement.
        raw = conn.connection.driver_connection
        deadline = time.monotonic() + seconds
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)

    def adapt_datetimes(self, values: pd.Series) -> pd.Series:
        # SQLAlchemy's SQLite DateTime reads back naive UTC in this exact format.
        return values.dt.tz_convert("UTC").dt.strftime("%Y-%m-%d %H:%M:%S.%f")

    def adapt_booleans(self, values: pd.Series) -> pd.Series:
        # SQLite stores them as 0 and 1 anyway. Its Python drivers bind an int at once but look
        # for an adapter for every bool (a subclass of int), and pysqlite3 raises and catches
        # an error each time: two flag columns took inserting 100,000 organizations from 0.21
        # to 0.43 s.
        return values.astype("Int64")

    def prepare(self, conn: Connection) -> None:
        if conn.execute(text("SELECT CheckSpatialMetaData()")).scalar() < 1:
            conn.execute(text("SELECT InitSpatialMetaData(0, 'WGS84')"))

    def bbox_clause(self, table: str, alias: str) -> str:
        geom = Base.metadata.tables[table].c.get("geom") if table in Base.metadata.tables else None
        if geom is not None and geom.type.geometry_type == "POINT":
            # A point meets a box exactly when its bounding box does: GEOS asked 100,000 times
            # was a quarter of a city-wide cluster view's 0.8 s.
            return f"{self.index_clause(table, alias)} AND MbrIntersects({alias}.geom, {self.envelope()})"
        return super().bbox_clause(table, alias)

    def index_clause(self, table: str, alias: str) -> str:
        # SpatiaLite's R*Tree is only consulted through the SpatialIndex virtual table.
        return (
            f"{alias}.id IN (SELECT rowid FROM SpatialIndex WHERE f_table_name = '{table}' "
            f"AND f_geometry_column = 'geom' AND search_frame = {self.envelope()})"
        )

    def envelope(self) -> str:
        return f"BuildMbr(:minx, :miny, :maxx, :maxy, {SRID})"

    def extent_sql(self, table: str, where: str = "") -> str:
        condition = f" WHERE {where}" if where else ""
        return (
            "SELECT MbrMinX(e), MbrMinY(e), MbrMaxX(e), MbrMaxY(e) "
            f"FROM (SELECT Extent(geom) AS e FROM {table}{condition})"
        )

    def json_object(self, members) -> str:
        return "json_object(" + ", ".join(f"'{key}', {value}" for key, value in members) + ")"

    def json_value(self, sql, kind) -> str:
        if kind == "boolean":
            # SQLite keeps booleans as 0/1; json() marks the text as JSON, not as a string.
            return f"json(CASE WHEN {sql} IS NULL THEN NULL WHEN {sql} THEN 'true' ELSE 'false' END)"
        return f"round({sql}, 10)" if kind == "number" else sql

    def geojson(self, sql) -> str:
        return f"json(AsGeoJSON({sql}, 7))"

    def make_line(self, start, end) -> str:
        return f"MakeLine({start}, {end})"

    def repeat(self, char, count) -> str:
        return f"replace(hex(zeroblob({count})), '00', '{char}')"

    def insert_rows(self, conn, table, columns, rows, geoms) -> None:
        self._write(conn, table, columns, rows, geoms, "")

    def new_ids(self, conn, table, count) -> np.ndarray:
        # A write transaction holds SQLite's one write lock (BEGIN IMMEDIATE): nobody else can
        # take these ids before it commits.
        start = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table}").scalar() + 1
        return np.arange(start, start + count, dtype=np.int64)

    def upsert_rows(self, conn, table, key, columns, rows, geoms, update) -> None:
        assignments = _assignments(update, geoms is not None)
        self._write(conn, table, columns, rows, geoms, f" ON CONFLICT ({key}) DO UPDATE SET {assignments}")

    def _write(self, conn, table, columns, rows, geoms, conflict: str) -> None:
        marks = ", ".join(["?"] * len(columns))
        names = ", ".join(columns)
        if geoms is None:
            sql = f"INSERT INTO {table} ({names}) VALUES ({marks}){conflict}"
            params = list(rows)
            if not params:  # an empty list would run the statement once, without parameters
                return
        elif len(geoms) and (shapely.get_type_id(geoms) == 0).all() and not shapely.is_empty(geoms).any():
            # Points (organizations, centers) by their coordinates: writing and parsing WKB for
            # each cost 0.1 s more per 100,000.
            sql = f"INSERT INTO {table} ({names}, geom) VALUES ({marks}, MakePoint(?, ?, {SRID})){conflict}"
            xy = shapely.get_coordinates(geoms).tolist()
            params = [(*row, x, y) for row, (x, y) in zip(rows, xy, strict=True)]
        else:
            sql = f"INSERT INTO {table} ({names}, geom) VALUES ({marks}, GeomFromWKB(?, {SRID})){conflict}"
            params = [(*row, g) for row, g in zip(rows, shapely.to_wkb(geoms), strict=True)]
        bulk = len(params) >= BULK_REBUILD_ROWS
        # A spatial load large next to what the table holds: readers keep their WAL snapshot meanwhile.
        rebuild = (
            bulk and geoms is not None and len(params) > conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
        )
        with ExitStack() as upkeep:
            if bulk:
                upkeep.enter_context(self._roomy_cache(conn))
            if rebuild:
                upkeep.enter_context(self.built_once(conn, table))
                upkeep.enter_context(self._geometry_upkeep_once(conn, table))
            conn.exec_driver_sql(sql, params)

    @staticmethod
    @contextmanager
    def _roomy_cache(conn: Connection) -> Iterator[None]:
        """A page cache of up to 256 MB for one bulk write, back to what it was after it.

        With SQLite's 2 MB, inserting 1M organizations and building their R*Tree, unique keys and
        links kept evicting the pages about to be changed (25.6 s of SQL, 14.8 s with room);
        pooled connections otherwise keep the small default.
        """
        before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
        try:
            yield
        finally:
            conn.exec_driver_sql(f"PRAGMA cache_size = {int(before)}")

    @contextmanager
    def _geometry_upkeep_once(self, conn: Connection, table: str) -> Iterator[None]:
        """SpatiaLite's own row-by-row upkeep of ``table.geom`` done once for a bulk insert.

        For each inserted row SpatiaLite updates the R*Tree, checks the geometry's type and SRID
        against ``geometry_columns`` with a subquery, and stamps ``geometry_columns_time`` with an
        UPDATE (its triggers ``gii_``, ``ggi_``, ``tmi_``); the last two alone were half the time
        of inserting 100,000 organizations. Here the R*Tree is built once, the new rows are
        checked in one statement, and the stamp is written once.
        """
        triggers = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name IN (?, ?)",
            (f"ggi_{table}_geom", f"tmi_{table}_geom"),
        ).fetchall()
        before = conn.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {table}").scalar()
        self._drop_spatial_index(conn, table)
        for name, _ in triggers:
            conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
        yield
        wrong = conn.exec_driver_sql(
            f"SELECT count(*) FROM {table} t JOIN geometry_columns g ON g.f_table_name = '{table}' "
            "AND g.f_geometry_column = 'geom' "
            "WHERE t.rowid > ? AND GeometryConstraints(t.geom, g.geometry_type, g.srid) <> 1",
            (before,),
        ).scalar()
        if wrong:
            raise StoreError(
                f"{wrong} 个几何的类型或坐标系不符合 {table}.geom / "
                f"{wrong} geometries violate the type or SRID of {table}.geom"
            )
        conn.exec_driver_sql(
            "UPDATE geometry_columns_time SET last_insert = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
            "WHERE f_table_name = ? AND f_geometry_column = 'geom'",
            (table,),
        )
        for _, create in triggers:
            conn.exec_driver_sql(create)
        conn.execute(text(f"SELECT CreateSpatialIndex('{table}', 'geom')"))

    def row_upkeep(self, conn, table) -> list[tuple[str, str]]:
        # Indexes SQLite made for UNIQUE/PRIMARY KEY have no SQL of their own.
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", (table,)
        )
        return [(f'DROP INDEX "{name}"', create) for name, create in indexes]

    def delete_all(self, conn, table, spatial) -> None:
        # With the index triggers gone SQLite truncates the table instead of deleting row by row.
        if spatial:
            self._drop_spatial_index(conn, table)
        conn.exec_driver_sql(f"DELETE FROM {table}")
        if spatial:
            conn.execute(text(f"SELECT CreateSpatialIndex('{table}', 'geom')"))

    @staticmethod
    def _drop_spatial_index(conn: Connection, table: str) -> None:
        conn.execute(text(f"SELECT DisableSpatialIndex('{table}', 'geom')"))
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS idx_{table}_geom")

    @contextmanager
    def exclusive(self, store, name: str, wait: float) -> Iterator[None]:
        # A lock file beside the database: SQLite serves processes on one host only.
        import fcntl
        import time

        path = store.url[len("sqlite:///") :]
        fd = os.open(f"{path}.{name}.lock" if path != ":memory:" else os.devnull, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise _busy(name, wait) from None
                    time.sleep(_LOCK_POLL)
            yield
        finally:
            os.close(fd)


class PostGISBackend(Backend):
    """PostgreSQL with PostGIS: the production backend."""

    name = "postgis"

    def create_engine(self, url: str) -> Engine:
        # pre_ping: after a database restart the pool replaces dead connections by itself.
        # JIT off: the planner's cost estimates for a map's clusters or an API page (with the
        # status subqueries) pass PostgreSQL's JIT threshold, and compiling took 0.5-0.7 s of a
        # 0.8 s cold cluster query at 100k organizations that runs in 0.19 s without it.
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5, "options": "-c jit=off"})

    def check(self, conn: Connection) -> None:
        found = conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'postgis'")).scalar()
        if not found:
            raise StoreError(
                "数据库未启用 PostGIS / PostGIS is not enabled in this database: "
                "run CREATE EXTENSION postgis (Debian package postgresql-15-postgis-3)"
            )

    def prepare(self, conn: Connection) -> None:
        available = conn.execute(text("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'")).scalar()
        if not available:
            raise StoreError(
                "服务器未安装 PostGIS / PostGIS is not installed on the server: apt-get install postgresql-15-postgis-3"
            )
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))

    def index_clause(self, table: str, alias: str) -> str:
        return f"{alias}.geom && {self.envelope()}"

    def envelope(self) -> str:
        return f"ST_MakeEnvelope(:minx, :miny, :maxx, :maxy, {SRID})"

    def extent_sql(self, table: str, where: str = "") -> str:
        condition = f" WHERE {where}" if where else ""
        return (
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
            f"FROM (SELECT ST_Extent(geom) AS e FROM {table}{condition}) s"
        )

    def json_object(self, members) -> str:
        return "json_build_object(" + ", ".join(f"'{key}', {value}" for key, value in members) + ")"

    def json_value(self, sql, kind) -> str:
        return f"trim_scale(round(({sql})::numeric, 10))" if kind == "number" else sql

    def geojson(self, sql) -> str:
        return f"ST_AsGeoJSON({sql}, 7)::json"

    def make_line(self, start, end) -> str:
        return f"ST_MakeLine({start}, {end})"

    def repeat(self, char, count) -> str:
        return f"repeat('{char}', {count})"

    def insert_rows(self, conn, table, columns, rows, geoms) -> None:
        rows = list(rows)
        with self._first_load(conn, table, len(rows)):
            self._copy(conn, table, columns, rows, geoms)
        self._restat(conn, table, len(rows))

    def upsert_rows(self, conn, table, key, columns, rows, geoms, update) -> None:
        # COPY cannot resolve conflicts: stage the rows, then one INSERT … ON CONFLICT.
        names = ", ".join([*columns, "geom"] if geoms is not None else columns)
        conn.exec_driver_sql("DROP TABLE IF EXISTS _hongtu_load")
        conn.exec_driver_sql(f"CREATE TEMP TABLE _hongtu_load AS SELECT {names} FROM {table} WITH NO DATA")
        count = self._copy(conn, "_hongtu_load", columns, rows, geoms)
        assignments = _assignments(update, geoms is not None)
        with self._first_load(conn, table, count):
            conn.exec_driver_sql(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM _hongtu_load "
                f"ON CONFLICT ({key}) DO UPDATE SET {assignments}"
            )
        conn.exec_driver_sql("DROP TABLE _hongtu_load")
        self._restat(conn, table, count)

    @staticmethod
    def _restat(conn, table: str, count: int) -> None:
        # Until autovacuum gets to it (a minute or more) the planner keeps the table's old
        # statistics: after reloading 100k organizations and storing a run, a street's API page
        # took 12 s (a nested loop over the whole run), 75 ms once analyzed. A sample of 9,000
        # rows (statistics target 30, not 100) gives the planner what these tables' queries ask
        # of it — row counts, a few categories, the points' extent — at a third of the cost
        # (0.1 s instead of 0.3 for 100k organizations).
        if count >= BULK_REBUILD_ROWS:
            conn.exec_driver_sql(f"SET LOCAL default_statistics_target = {ANALYZE_TARGET}")
            conn.exec_driver_sql(f"ANALYZE {table}")

    def _first_load(self, conn, table: str, count: int):
        # Dropping an index or a key locks the table against readers until commit: only when
        # the table is empty, so there is nothing to read yet.
        if count < BULK_REBUILD_ROWS or conn.exec_driver_sql(f"SELECT EXISTS (SELECT 1 FROM {table})").scalar():
            return nullcontext()
        return self.built_once(conn, table)

    def row_upkeep(self, conn, table) -> list[tuple[str, str]]:
        indexes = conn.exec_driver_sql(
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisunique AND NOT x.indisprimary",
            (table,),
        )
        keys = conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            (table,),
        )
        alter = f"ALTER TABLE {table}"
        return [(f'DROP INDEX "{name}"', create) for name, create in indexes] + [
            (f'{alter} DROP CONSTRAINT "{name}"', f'{alter} ADD CONSTRAINT "{name}" {definition}')
            for name, definition in keys
        ]

    @staticmethod
    def _copy(conn, table, columns, rows, geoms) -> int:
        """COPY the rows into ``table``; answer how many."""
        names = ", ".join([*columns, "geom"] if geoms is not None else columns)
        cursor = conn.connection.driver_connection.cursor()
        # COPY is PostgreSQL's bulk path: several times faster than batched INSERTs.
        count = 0
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            if geoms is None:
                for row in rows:
                    copy.write_row(row)
                    count += 1
                return count
            # PostGIS reads "SRID=n;" before hex WKB: setting the SRID on every geometry to
            # have shapely write it cost more than writing the WKB.
            srid = f"SRID={SRID};"
            for row, g in zip(rows, shapely.to_wkb(geoms, hex=True), strict=True):
                copy.write_row((*row, None if g is None else srid + g))
                count += 1
        return count

    def after_bulk_insert(self, conn, table) -> None:
        # Never backwards: another transaction may hold ids it took from the sequence but has
        # not committed yet.
        sequence = _sequence(table)
        conn.execute(
            text(
                f"SELECT setval({sequence}, GREATEST(COALESCE((SELECT max(id) FROM {table}), 0), "
                f"COALESCE(pg_sequence_last_value({sequence}::regclass), 0)) + 1, false)"
            )
        )

    def new_ids(self, conn, table, count) -> np.ndarray:
        # One block of the sequence. Every other taker of these ids inserts into the table, and
        # this lock (held to commit; readers pass) keeps them waiting until the block is taken:
        # asking nextval once per row cost 0.3 s per 100,000.
        sequence = _sequence(table)
        conn.exec_driver_sql(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        start = conn.execute(text(f"SELECT nextval({sequence})")).scalar()
        conn.execute(text(f"SELECT setval({sequence}, :last)"), {"last": start + count - 1})
        return np.arange(start, start + count, dtype=np.int64)

    @contextmanager
    def exclusive(self, store, name: str, wait: float) -> Iterator[None]:
        # A session-level advisory lock on a connection of its own, held for the block.
        import time
        import zlib

        key = zlib.crc32(f"hongtu:{name}".encode())
        with store.engine.connect() as conn:
            deadline = time.monotonic() + wait
            while not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                conn.commit()
                if time.monotonic() >= deadline:
                    raise _busy(name, wait)
                time.sleep(_LOCK_POLL)
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()


def _sequence(table: str) -> str:
    """SQL naming the sequence that gives ``table`` its ids (PostgreSQL)."""
    return f"pg_get_serial_sequence('{table}', 'id')"


def backend_for(url: str) -> Backend:
    """The backend serving a database URL."""
    if url.startswith("sqlite"):
        return SpatiaLiteBackend()
    if url.startswith("postgresql"):
        return PostGISBackend()
    raise StoreError(
        f"不支持的数据库 / unsupported DATABASE_URL {url.split(':', 1)[0]!r}: "
        "use sqlite:///path.sqlite or postgresql+psycopg://user@host/db"
    )
