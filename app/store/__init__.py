"""Storage: one small interface over SpatiaLite (embedded default) and PostGIS (production).

>>> store = Store("sqlite:///hongtu.sqlite")
>>> store.init_schema()
>>> store.read_frame("organizations", bbox=(102.6, 24.9, 102.8, 25.1))
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import JSON, Boolean, Connection, func, select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from .backends import Backend, backend_for
from .errors import StoreError
from .models import SRID, Base, data_version

__all__ = ["Store", "StoreError", "normalize_url"]

_MIGRATIONS = Path(__file__).with_name("migrations")

#: Tables in an order in which deleting them one by one never breaks a foreign key.
_DELETE_ORDER = (
    "org_changes",
    "visits",
    "run_organizations",
    "run_areas",
    "run_features",
    "run_joint_branches",
    "run_place_pairings",
    "party_org_coverage",
    "instructors",
    "instructor_people",
    "party_orgs",
    "organizations",
    "places",
    "service_centers",
    "stations",
    "roads",
    "areas",
    "analysis_jobs",
    "analysis_runs",
)
#: Tables that hold the data a user loads (the demo or imports), for emptiness checks and counts.
DATA_TABLES = (
    "areas",
    "places",
    "organizations",
    "party_orgs",
    "instructors",
    "instructor_people",
    "service_centers",
    "stations",
    "roads",
)


def normalize_url(url: str) -> str:
    """Accept the URL spellings users paste (``postgres://``, ``postgresql://``) and pick psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _describe(url: str) -> str:
    """The URL without its password, for messages."""
    head, _, tail = url.rpartition("@")
    if not head:
        return url
    scheme, _, userinfo = head.partition("://")
    return f"{scheme}://{userinfo.split(':', 1)[0]}@{tail}"


def _write_failure(exc: DBAPIError) -> str | None:
    """A bilingual reason for a failure the user must fix on the database's side (read-only,
    disk full, connection lost), or None for any other error."""
    code = getattr(exc.orig, "sqlstate", None)
    text_ = str(exc.orig).lower()
    if code == "25006" or "readonly database" in text_ or "read-only" in text_:
        return "数据库只读，未写入任何数据 / the database is read-only: nothing was written"
    if code in ("53100", "53200") or "disk is full" in text_ or "no space left" in text_:
        return "磁盘已满，未写入任何数据 / the disk is full: nothing was written"
    if exc.connection_invalidated or (code or "").startswith("08") or "server closed the connection" in text_:
        return "数据库连接中断，未写入任何数据 / the database connection was lost: nothing was written"
    return None


def result_frame(result) -> pd.DataFrame:
    """The rows of an executed SQLAlchemy ``result`` as a DataFrame named by its columns.

    The rows go in as plain tuples: given SQLAlchemy's Row objects, pandas probes each one for
    attributes it lacks, which took seven times as long as the frame itself.
    """
    return pd.DataFrame([tuple(row) for row in result.fetchall()], columns=list(result.keys()))


def _equal_to(table: str, alias: str, where: dict[str, object]) -> tuple[list[str], dict[str, object]]:
    """SQL conditions (and parameters) that columns of ``table`` (as ``alias``) equal ``where``'s values."""
    conditions, params = [], {}
    for column, value in where.items():
        if column not in Base.metadata.tables[table].c:
            raise KeyError(f"{table} has no column {column!r}")
        conditions.append(f"{alias}.{column} = :w_{column}")
        params[f"w_{column}"] = value
    return conditions, params


@functools.cache
def migration_head() -> str:
    """The revision of the newest migration, read from the migration scripts once per process."""
    # Imported here: alembic takes 0.25 s to import, which commands that never migrate skip.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


class Store:
    """A Hongtu database.

    Parameters
    ----------
    url : str
        SQLAlchemy URL: ``sqlite:///file.sqlite`` (SpatiaLite) or
        ``postgresql+psycopg://user@host/db`` (PostGIS).
    """

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.backend: Backend = backend_for(self.url)
        if self.url.startswith("sqlite:///") and self.url != "sqlite:///:memory:":
            Path(self.url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
        self.engine = self.backend.create_engine(self.url)
        #: The area code every read is restricted to (see ``scoped``); None for all data.
        self.scope: str | None = None
        #: Whether reads show personal contact data (secretaries' names and phones) unmasked.
        self.contacts = True

    def scoped(self, area_code: str | None, contacts: bool = True) -> Store:
        """This store seen by one user: every read through the returned store (map layers,
        cards, searches, API collections) keeps to the area ``area_code`` and what lies inside
        it (``None``: everything), and masks contact data unless ``contacts``. It shares the
        connection pool."""
        view = copy.copy(self)
        view.scope = area_code or None
        view.contacts = contacts
        return view

    def scope_condition(self, table: str, alias: str) -> str:
        """SQL keeping the rows of ``alias`` (table ``table``) inside the scope, bound to
        ``:scope`` (see ``scope_params``); an empty string for an unrestricted store.

        Areas are inside when their code starts with the scope's (codes nest); anything else
        when its geometry meets the scope area's polygon."""
        if self.scope is None:
            return ""
        if table == "areas":
            return f"substr({alias}.code, 1, {len(self.scope)}) = :scope"
        return self.backend.is_true(
            f"ST_Intersects({alias}.geom, (SELECT s_a.geom FROM areas s_a WHERE s_a.code = :scope))"
        )

    def scope_params(self) -> dict[str, str]:
        """The bound parameters of ``scope_condition``."""
        return {} if self.scope is None else {"scope": self.scope}

    def restrict(self, sql: str, table: str, alias: str) -> tuple[str, dict[str, str]]:
        """``sql`` (ending in a WHERE condition) kept inside the scope, and the parameters to bind."""
        condition = self.scope_condition(table, alias)
        return (f"{sql} AND {condition}" if condition else sql), self.scope_params()

    @property
    def backend_name(self) -> str:
        """'spatialite' or 'postgis'."""
        return self.backend.name

    @contextmanager
    def exclusive(self, name: str, wait: float) -> Iterator[None]:
        """Hold the lock ``name`` while the block runs: one holder at a time over every process
        using this database (imports queue here rather than fail on SQLite's write lock).

        Raises
        ------
        StoreBusy
            When the lock stayed taken for ``wait`` seconds.
        """
        with self.backend.exclusive(self, name, wait):
            yield

    @contextmanager
    def connect(self, transaction: bool = True, write: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction: committed on success, rolled back on error.

        ``write=True``: the transaction reads before it writes; it takes the write lock at
        once (SQLite ``BEGIN IMMEDIATE``), since SQLite cannot let a transaction that has read
        wait for another writer and fails it instead. ``transaction=False``: every statement
        commits by itself — for reads of a single statement, which then skip the BEGIN and
        COMMIT round trips that on PostgreSQL cost as much as a small query. Connection
        failures become a one-line :class:`StoreError` naming the fix.
        """
        try:
            conn = self.engine.connect()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise StoreError(
                f"无法连接数据库 / cannot reach the database {_describe(self.url)}: {reason} "
                "— check DATABASE_URL and that the server is running"
            ) from exc
        try:
            if not transaction:
                with conn.execution_options(isolation_level="AUTOCOMMIT"):
                    yield conn
                return
            with conn.execution_options(hongtu_write=write), conn.begin():
                yield conn
        except DBAPIError as exc:
            # The transaction is rolled back by now; say why in one line.
            reason = _write_failure(exc)
            if reason is None:
                raise
            raise StoreError(f"{reason} — {_describe(self.url)}: {str(exc.orig).strip().splitlines()[0]}") from exc

    def session(self) -> Session:
        """An ORM session bound to this store (use as a context manager)."""
        return Session(self.engine)

    def check(self) -> None:
        """Raise :class:`StoreError` if the database is unreachable or lacks its spatial extension."""
        with self.connect() as conn:
            self.backend.check(conn)

    def init_schema(self) -> None:
        """Create or upgrade the schema to the latest migration, and drop every kept answer
        (``app.store.cache``). Safe to run again."""
        from alembic import command
        from alembic.config import Config

        with self.connect() as conn:
            self.backend.prepare(conn)
            self.backend.check(conn)
            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            # Answers kept by an older version of Hongtu may be shaped differently; a deploy
            # runs this, so nothing it kept outlives it.
            conn.execute(text("DELETE FROM map_cache"))

    def schema_ready(self) -> bool:
        """True when the migrations have run (the tables exist)."""
        with self.connect() as conn:
            self.backend.check(conn)
            return self.engine.dialect.has_table(conn, "alembic_version")

    def schema_outdated(self) -> bool:
        """True when the schema exists but an older Hongtu made it (``hongtu init-db`` upgrades it)."""
        with self.connect() as conn:
            if not self.engine.dialect.has_table(conn, "alembic_version"):
                return False
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar() != migration_head()

    def counts(self) -> dict[str, int]:
        """Row counts of the data tables; for a scoped store, of the rows inside the scope (party
        organizations and instructors: those of organizations inside it)."""
        if self.scope is None:
            with self.connect() as conn:
                return {
                    name: conn.execute(select(func.count()).select_from(Base.metadata.tables[name])).scalar()
                    for name in DATA_TABLES
                }
        inside = f"SELECT o.id FROM organizations o WHERE {self.scope_condition('organizations', 'o')}"
        linked = {
            "party_orgs": (
                f"SELECT count(DISTINCT party_org_id) FROM party_org_coverage WHERE organization_id IN ({inside})"
            ),
            "instructors": f"SELECT count(*) FROM instructors WHERE organization_id IN ({inside})",
            "instructor_people": (
                f"SELECT count(DISTINCT person_id) FROM instructors WHERE organization_id IN ({inside})"
            ),
        }
        with self.connect() as conn:
            return {
                name: conn.execute(
                    text(linked.get(name) or f"SELECT count(*) FROM {name} t WHERE {self.scope_condition(name, 't')}"),
                    self.scope_params(),
                ).scalar()
                for name in DATA_TABLES
            }

    def is_empty(self) -> bool:
        """True when no data table holds a row."""
        return not any(self.counts().values())

    def extent(self, table: str, where: dict[str, object] | None = None) -> tuple[float, float, float, float] | None:
        """Bounding box (WGS-84) of a table's geometries (of the rows whose columns equal
        ``where``'s values), or None when it has none."""
        conditions, params = _equal_to(table, table, where or {})
        with self.connect() as conn:
            box = conn.execute(text(self.backend.extent_sql(table, " AND ".join(conditions))), params).one()
        return None if box[0] is None else tuple(float(v) for v in box)

    def clear(self, conn: Connection) -> None:
        """Delete every row of every table (inside the caller's transaction)."""
        for name in _DELETE_ORDER:
            self.backend.delete_all(conn, name, "geom" in Base.metadata.tables[name].c)
        self.data_changed(conn)

    def data_changed(self, conn: Connection, inputs: bool = True) -> None:
        """Record a write in the caller's transaction: the data version moves on, and cached
        answers computed from earlier versions are dropped. Committed or undone with the write.

        ``inputs``: the write changed the data users load (an import, a correction), which
        every analysis run stored before it no longer describes; False for a run's own rows.
        """
        conn.execute(text("UPDATE data_version SET version = version + 1 WHERE id = 1"))
        if inputs:
            conn.execute(
                data_version.update()
                .where(data_version.c.id == 1)
                .values(inputs_version=data_version.c.inputs_version + 1, inputs_changed_at=datetime.now(UTC))
            )
        conn.execute(text("DELETE FROM map_cache"))

    def data_version(self, conn: Connection) -> int:
        """The current data version (see ``data_changed``)."""
        return conn.execute(text("SELECT version FROM data_version WHERE id = 1")).scalar() or 0

    def inputs_version(self, conn: Connection) -> int:
        """The current inputs version: moved by writes to the loaded data only (see ``data_changed``)."""
        return conn.execute(text("SELECT inputs_version FROM data_version WHERE id = 1")).scalar() or 0

    def insert_frame(
        self, conn: Connection, table: str, frame: pd.DataFrame, geometry: str = "geometry", derived: bool = False
    ) -> None:
        """Append a (Geo)DataFrame to ``table``, fast; its columns must be the table's columns.

        The geometry column (WGS-84) is written to ``geom``; every other column as is. An
        empty frame writes nothing (a city without hot spots, say). ``derived``: the rows are
        computed from the inputs (a run's generated grids), not new inputs themselves.
        """
        if frame.empty:
            return
        columns, rows, geoms = self._rows(table, frame, geometry)
        self.backend.insert_rows(conn, table, columns, rows, geoms)
        if "id" in columns:
            self.backend.after_bulk_insert(conn, table)
        self.data_changed(conn, inputs=table in DATA_TABLES and not derived)

    def upsert_frame(
        self,
        conn: Connection,
        table: str,
        key: str,
        frame: pd.DataFrame,
        update: Sequence[str],
        geometry: str = "geometry",
    ) -> None:
        """Insert the rows of ``frame``; where ``key`` exists already, update only ``update``
        (and the geometry). Columns not in ``update`` keep their stored values on update."""
        columns, rows, geoms = self._rows(table, frame, geometry)
        self.backend.upsert_rows(conn, table, key, columns, rows, geoms, list(update))
        self.data_changed(conn)

    def _rows(self, table: str, frame: pd.DataFrame, geometry: str):
        columns = [c for c in frame.columns if c != geometry]
        types = Base.metadata.tables[table].c
        data = []
        for c in columns:
            values = frame[c]
            if isinstance(values.dtype, pd.DatetimeTZDtype):
                values = self.backend.adapt_datetimes(values)
            elif pd.api.types.is_bool_dtype(values.dtype):
                values = self.backend.adapt_booleans(values)
            elif isinstance(types[c].type, JSON):
                values = values.map(lambda v: None if v is None else json.dumps(v, ensure_ascii=False))
            # Column by column as Python objects, missing as None: converting the whole frame
            # to objects and masking it took three times as long.
            values = values.to_numpy(dtype=object, copy=True)
            values[pd.isna(values)] = None
            data.append(values)
        rows = zip(*data, strict=True)
        geoms = np.asarray(frame[geometry].values) if geometry in frame else None
        return columns, rows, geoms

    def read_frame(
        self,
        table: str,
        columns: Sequence[str] | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        where: dict[str, object] | None = None,
        conn: Connection | None = None,
    ) -> gpd.GeoDataFrame:
        """Read a table (optionally only the rows meeting ``bbox``) into a GeoDataFrame.

        Parameters
        ----------
        table : str
            Table name; it must have a ``geom`` column.
        columns : sequence of str, optional
            Attribute columns to read; all of them by default.
        bbox : (minx, miny, maxx, maxy), optional
            Box in WGS-84 degrees; answered from the spatial index. A scoped store
            (see ``scoped``) reads only the rows inside its scope.
        where : dict, optional
            Equality filters on attribute columns, e.g. ``{"level": "street"}``.
        """
        cols = (
            list(columns)
            if columns is not None
            else [c.name for c in Base.metadata.tables[table].columns if c.name != "geom"]
        )
        sql = f"SELECT {', '.join([*('t.' + c for c in cols), 'ST_AsBinary(t.geom) AS geom_wkb'])} FROM {table} t"
        conditions, params = [], {}
        if bbox is not None:
            conditions.append(self.backend.bbox_clause(table, "t"))
            params.update(zip(("minx", "miny", "maxx", "maxy"), map(float, bbox), strict=True))
        if self.scope is not None:
            conditions.append(self.scope_condition(table, "t"))
            params.update(self.scope_params())
        equal, equal_params = _equal_to(table, "t", where or {})
        conditions += equal
        params.update(equal_params)
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        sql += " ORDER BY t.id"
        if conn is None:
            with self.connect() as own:
                result = own.execute(text(sql), params).fetchall()
        else:
            result = conn.execute(text(sql), params).fetchall()
        frame = pd.DataFrame.from_records(result, columns=[*cols, "geom_wkb"])
        # SQLite has no boolean type; give both backends' frames the same dtypes.
        for c in cols:
            kind = Base.metadata.tables[table].c[c].type
            if isinstance(kind, Boolean):
                frame[c] = frame[c].astype(bool)
            elif isinstance(kind, JSON):
                frame[c] = frame[c].map(lambda v: json.loads(v) if isinstance(v, str) else v)
        wkb = np.array([bytes(b) if b is not None else None for b in frame.pop("geom_wkb")], dtype=object)
        return gpd.GeoDataFrame(frame, geometry=shapely.from_wkb(wkb), crs=SRID)
