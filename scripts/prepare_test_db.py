"""Create the PostGIS test database if it is missing and enable PostGIS in it.

Usage: python scripts/prepare_test_db.py postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_test

Under CI (CI=true) a failure ends the run; elsewhere it only warns, and the tests skip the
PostGIS half with the reason.
"""

from __future__ import annotations

import os
import sys

from app.store import StoreError
from app.store.admin import ensure_postgis_database


def main(url: str) -> int:
    try:
        ensure_postgis_database(url)
    except StoreError as exc:
        print(exc, file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    print(f"PostGIS test database ready: {url.rsplit('/', 1)[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
