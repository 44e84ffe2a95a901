"""Placing a ledger without coordinates: how long do 100,000 address-only rows take?

    .venv/bin/python scripts/bench_locate.py [--rows 100000] [--places 5000] [--geocoded]

Generates ``--places`` stored buildings (small squares with distinct names) in a grid of
communities, and a ledger of ``--rows`` organizations without coordinates: nine in ten give an
address naming one of the buildings (with province, city and district before it, as
registries write them), one in ten only its community's code. Times the whole check of the
file (:func:`app.intake.validate.validate`, the placing included) three times and prints the
median, and how the rows were placed, as JSON.

With ``--geocoded`` the one in ten without a building give a street address instead (and no
community), which a geocoder has answered before: the answers are in a SpatiaLite store's cache, as after a first
import, and the run counts the requests a second import makes of the provider (none).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.intake.geocode import Geocoder, ProviderError  # noqa: E402
from app.intake.locate import Gazetteer  # noqa: E402
from app.intake.normalize import normalized  # noqa: E402
from app.intake.readers import RawTable  # noqa: E402
from app.intake.schema import KINDS  # noqa: E402
from app.intake.validate import Context, validate  # noqa: E402
from app.store import Store  # noqa: E402
from app.store.models import geocodes  # noqa: E402


def _city(places: int) -> Gazetteer:
    side = 10
    codes = [f"530102{s:03d}{c:03d}" for s in range(1, side + 1) for c in range(1, side + 1)]
    boxes = [
        shapely.box(
            102.6 + 0.01 * (i % side), 25.0 + 0.01 * (i // side), 102.61 + 0.01 * (i % side), 25.01 + 0.01 * (i // side)
        )
        for i in range(len(codes))
    ]
    areas = gpd.GeoDataFrame(
        {"code": codes, "name": [f"第{i}社区" for i in range(len(codes))], "level": "community"},
        geometry=boxes,
        crs=4326,
    )
    rng = np.random.default_rng(7)
    x, y = rng.uniform(102.6, 102.7, places), rng.uniform(25.0, 25.1, places)
    frame = gpd.GeoDataFrame(
        {"place_id": [f"B{i}" for i in range(places)], "name": [f"星辰{i}号商务楼" for i in range(places)]},
        geometry=shapely.box(x, y, x + 0.0005, y + 0.0005),
        crs=4326,
    )
    return Gazetteer.of(frame, areas)


class _Counted(Geocoder):
    """A geocoder whose provider is never there: every request it would make is counted."""

    requests = 0

    def _ask(self, address: str):
        type(self).requests += 1
        raise ProviderError("bench: no provider")


def _cached_store(folder: Path, addresses: list[str], gazetteer: Gazetteer) -> Store:
    """A store whose geocoder cache answers ``addresses`` with points inside the city."""
    store = Store(f"sqlite:///{folder / 'bench.sqlite'}")
    store.init_schema()
    keys = normalized(pd.Series(addresses, dtype=object)).drop_duplicates()
    rng = np.random.default_rng(3)
    with store.connect() as conn:
        conn.execute(
            insert(geocodes),
            [
                {
                    "provider": "tianditu",
                    "address_key": k,
                    "lon": float(rng.uniform(102.6, 102.7)),
                    "lat": float(rng.uniform(25.0, 25.1)),
                    "level": "门址",
                    "answered_at": datetime.now(UTC),
                }
                for k in keys
            ],
        )
    return store


def _street_addresses(rows: int) -> list[str]:
    return [f"云南省昆明市五华区无名路{i}号" for i in range(rows)]


def _ledger(rows: int, places: int, geocoded: bool = False) -> RawTable:
    rng = np.random.default_rng(11)
    building = rng.integers(0, places, rows)
    by_address = rng.random(rows) < 0.9
    plain = _street_addresses(rows) if geocoded else "某路"
    address = np.where(by_address, [f"云南省昆明市五华区星辰{b}号商务楼{b % 30 + 1}层" for b in building], plain)
    # A geocoded row states no community: its answer need only lie in the city.
    stated = [f"530102{1 + b % 10:03d}{1 + b // 10 % 10:03d}" for b in building]
    community = np.where(by_address | geocoded, "", stated)
    frame = pd.DataFrame(
        {
            "组织编号": [f"O{i}" for i in range(rows)],
            "组织名称": [f"单位{i}" for i in range(rows)],
            "组织类型": "企业",
            "地址": address,
            "所属社区": community,
        }
    )
    return RawTable(frame, None, first_row=2, file_crs=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--places", type=int, default=5_000)
    parser.add_argument("--geocoded", action="store_true", help="addresses a geocoder answered before")
    args = parser.parse_args()
    gazetteer = _city(args.places)
    raw = _ledger(args.rows, args.places, args.geocoded)
    context = Context(gazetteer=lambda: gazetteer)
    with tempfile.TemporaryDirectory() as folder:
        if args.geocoded:
            store = _cached_store(Path(folder), _street_addresses(args.rows), gazetteer)
            geocoder = _Counted("tianditu", "bench")
            context.geocode = lambda a: geocoder.answers(store, a, normalized(a))
        times = []
        for _ in range(3):
            started = time.perf_counter()
            checked = validate(KINDS["orgs"], raw, context=context)
            times.append(time.perf_counter() - started)
    print(
        json.dumps(
            {
                "rows": args.rows,
                "places": args.places,
                "validate_and_place_s": round(statistics.median(times), 2),
                "located_by": checked.frame["located_by"].value_counts().to_dict(),
                "errors": len(checked.errors),
                **({"provider_requests": _Counted.requests} if args.geocoded else {}),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
