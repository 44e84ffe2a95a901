"""Create the PostGIS test database if it is missing and enable PostGIS in it.

Usage: python scripts/prepare_test_db.py postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_test

Under CI (CI=true) any failure ends the run; elsewhere it only warns, and the PostGIS half of
the tests is skipped with the reason.
"""

from __future__ import annotations

import os
import sys

import psycopg
from sqlalchemy.engine import make_url


def main(url: str) -> int:
    u = make_url(url)
    dsn = dict(
        host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres", password=u.password or None
    )
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **dsn) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{u.database}"')
        with psycopg.connect(dbname=u.database, autocommit=True, connect_timeout=5, **dsn) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    except psycopg.Error as exc:
        print(f"PostGIS test database unavailable: {exc}".strip(), file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    print(f"PostGIS test database ready: {u.database}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
