"""Load the generated Kunming demo city into a store."""

from __future__ import annotations

import time
from pathlib import Path

from geo.democity import generate

from ..store import Store, StoreError

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "kunming"


class DemoExists(StoreError):
    """The database already holds data and ``replace`` was not asked for."""


def load_demo(store: Store, n_orgs: int = 5000, seed: int = 42, replace: bool = False) -> dict:
    """Generate the demo city and write it in one transaction.

    Returns the row counts written and the seconds spent generating and writing.
    Raises :class:`DemoExists` when the database holds data and ``replace`` is false,
    so a demo is never mixed into real data.
    """
    if not store.is_empty() and not replace:
        raise DemoExists(
            "数据库已有数据，使用 --replace 覆盖 / the database already holds data: "
            "use --replace to delete it and load the demo"
        )
    started = time.perf_counter()
    city = generate(DATA_DIR, n_orgs=n_orgs, seed=seed)
    generated = time.perf_counter()
    with store.connect() as conn:
        store.clear(conn)
        for table, frame in city.tables().items():
            store.insert_frame(conn, table, frame)
    written = time.perf_counter()
    counts = {table: len(frame) for table, frame in city.tables().items()}
    counts["generate_s"] = round(generated - started, 2)
    counts["write_s"] = round(written - generated, 2)
    return counts
