"""Several stateless app instances (gunicorn processes) against one database: what one computes
or writes, the other sees — no state lives in a process."""

import json
import urllib.request

import shapely
from sqlalchemy import text

from app.services.demo import load_demo
from app.store import Store

from .conftest import Gunicorn, api_token

URL = "/map/data/orgs?bbox=102.60,24.90,102.90,25.15&zoom=10"
PAGE = "/api/collections/organizations/items?bbox=102.60,24.90,102.90,25.15&limit=2000"


def get(base: str, path: str, token: str) -> dict:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def cached_tiles(store: Store) -> int:
    with store.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM map_cache")).scalar()


def test_two_instances_share_the_cache_and_see_each_others_writes(store: Store):
    load_demo(store, n_orgs=800, seed=5)
    token = api_token(store)
    # A low point limit so the view is answered by (cached) clusters.
    one = Gunicorn(store.url, workers=1, HONGTU_POINT_LIMIT="50")
    two = Gunicorn(store.url, workers=1, HONGTU_POINT_LIMIT="50")
    try:
        first = get(one.url, URL, token)
        assert first["mode"] == "clusters" and first["total"] > 50
        # Both keep the API page in memory as well as in the database.
        page = get(one.url, PAGE, token)
        assert get(two.url, PAGE, token)["features"] == page["features"]
        tiles = cached_tiles(store)
        assert tiles > 0
        # The second instance answers the same from the tiles the first stored, adding none.
        assert get(two.url, URL, token) == first and cached_tiles(store) == tiles
        # A write is seen by both instances at once: the cache is dropped by its commit.
        org = store.read_frame("organizations").head(1)
        new = org.drop(columns="id").assign(org_id="NEW-1", name="新增单位（演示）", credit_code=None)
        new.geometry = [shapely.Point(102.70, 25.03)]
        with store.connect() as conn:
            store.insert_frame(conn, "organizations", new)
        for base in (one.url, two.url):
            assert get(base, URL, token)["total"] == first["total"] + 1
            assert get(base, PAGE, token)["numberReturned"] == page["numberReturned"] + 1
            item = get(base, "/api/collections/organizations/items/NEW-1", token)
            assert item["properties"]["name"] == "新增单位（演示）"
    finally:
        one.close()
        two.close()
