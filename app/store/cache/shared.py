"""The table ``map_cache``, shared by every process and instance of one database.

Each entry carries the data version it was computed from; every store write increments that
version in its own transaction, so a commit (and only a commit) makes older entries unread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from .. import Store, StoreError

#: Most answers (not cluster tiles) kept before starting over.
MAX_SHARED_ANSWERS = 1000


def read(conn: Connection, keys: list[str], version: int) -> dict[str, str]:
    """The entries of ``keys`` computed from data ``version``, by key."""
    if not keys:
        return {}
    names = ", ".join(f":k{n}" for n in range(len(keys)))
    rows = conn.execute(
        text(f"SELECT key, body FROM map_cache WHERE version = :v AND key IN ({names})"),
        {"v": version, **{f"k{n}": key for n, key in enumerate(keys)}},
    ).fetchall()
    return dict(rows)


@contextmanager
def writing(store: Store) -> Iterator[Connection]:
    """A transaction that writes ``map_cache``. When it cannot be written (the database busy
    with an import, or read-only) the write is dropped: the caller still gives its answer."""
    try:
        with store.connect() as conn:
            yield conn
    except (StoreError, OperationalError):
        pass


def add_tiles(store: Store, bodies: dict[str, str], version: int) -> None:
    """Keep cluster tiles; a tile another process kept meanwhile is the same and stays."""
    with writing(store) as conn:
        conn.execute(
            text("INSERT INTO map_cache (key, version, body) VALUES (:k, :v, :b) ON CONFLICT (key) DO NOTHING"),
            [{"k": key, "v": version, "b": body} for key, body in bodies.items()],
        )


def put_answer(store: Store, key: str, version: int, body: str) -> None:
    """Keep one answer for every instance, replacing an older one under ``key``."""
    with writing(store) as conn:
        # A write first: a SQLite transaction that read before writing cannot wait for
        # another writer and fails at once.
        conn.execute(
            text(
                "DELETE FROM map_cache WHERE key LIKE 'answer:%' "
                "AND (SELECT count(*) FROM map_cache WHERE key LIKE 'answer:%') >= :most"
            ),
            {"most": MAX_SHARED_ANSWERS},
        )
        conn.execute(
            text(
                "INSERT INTO map_cache (key, version, body) VALUES (:k, :v, :b) "
                "ON CONFLICT (key) DO UPDATE SET version = excluded.version, body = excluded.body"
            ),
            {"k": key, "v": version, "b": body},
        )
