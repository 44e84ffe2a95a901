"""Database administration that happens outside a Hongtu schema: creating a PostGIS database."""

from __future__ import annotations

import psycopg
from sqlalchemy.engine import make_url

from .errors import StoreError


def ensure_postgis_database(url: str, extension: bool = True, fresh: bool = False) -> None:
    """Create the database named in ``url`` if missing, and (by default) enable PostGIS in it;
    ``fresh``: drop it first, with whatever it holds (a benchmark's clean start).

    Needs a role allowed to create databases; connects to the server's ``postgres`` database.
    """
    u = make_url(url)
    dsn = {
        "host": u.host or "127.0.0.1",
        "port": u.port or 5432,
        "user": u.username or "postgres",
        "password": u.password or None,
        "connect_timeout": 5,
        "autocommit": True,
    }
    try:
        with psycopg.connect(dbname="postgres", **dsn) as conn:
            if fresh:
                conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone():
                conn.execute(f'CREATE DATABASE "{u.database}"')
        if extension:
            with psycopg.connect(dbname=u.database, **dsn) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        raise StoreError(f"无法准备 PostGIS 数据库 / cannot prepare PostGIS database {u.database}: {exc}") from exc
