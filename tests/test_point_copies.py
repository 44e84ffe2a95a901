"""API pages of point layers answered from a process's copy: the same answers as the database
gives, without touching it once the copy and the texts are kept, and never older than the data."""

import json
import random
import sys

import pytest
from sqlalchemy import event, text

from app import create_app
from app.store import Store, features, queries
from app.store.cache import point_copies

from .conftest import demo_city, signed_in

ORGS = features.COLLECTIONS["organizations"]


def _pages(store: Store, run_id: int, count: int = 40, coll: features.Collection = ORGS) -> list[features.Page]:
    """Boxes of every size over the collection, with small and large pages and offsets."""
    minx, miny, maxx, maxy = features.extent(store, coll)
    rnd = random.Random(7)
    # The whole layer first, then boxes here and there.
    pages = [features.Page(bbox=(minx - 0.01, miny - 0.01, maxx + 0.01, maxy + 0.01), limit=2000, run_id=run_id)]
    for _ in range(count):
        w = rnd.choice([0.002, 0.01, 0.05, 0.3])
        x, y = rnd.uniform(minx - w / 2, maxx), rnd.uniform(miny - w / 2, maxy)
        limit, offset = rnd.choice([1, 10, 100, 2000]), rnd.choice([0, 0, 3, 120])
        pages.append(features.Page(bbox=(x, y, x + w, y + w), limit=limit, offset=offset, run_id=run_id))
    return pages


def _statements(store: Store, call):
    seen = []

    def count(*_args):
        seen.append(1)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        result = call()
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    return result, len(seen)


def _database_page(store: Store, coll: features.Collection, page: features.Page) -> tuple[list[bytes], bool, int]:
    """The page as the database writes it, in UTF-8 as the copy keeps it, with its count."""
    texts, more = features.geojson_features(store, coll, page)
    return [t.encode() for t in texts], more, features.count(store, coll, page)


def _version(store: Store) -> int:
    with store.connect() as conn:
        return store.data_version(conn)


@pytest.mark.parametrize("collection", ["organizations", "service-centers", "stations", "joint-branches", "siting"])
def test_kept_pages_are_the_database_pages(analyzed_store: Store, collection: str):
    coll = features.COLLECTIONS[collection]
    run_id, version = queries.latest_run_id(analyzed_store), _version(analyzed_store)
    pages = _pages(analyzed_store, run_id if coll.run else 0, coll=coll)
    point_copies.page_features(analyzed_store, coll, pages[0], version)
    point_copies.wait_for_loads()
    filled = 0
    for page in pages:
        assert point_copies.answers_from_copy(analyzed_store, coll, page)
        expected = _database_page(analyzed_store, coll, page)
        first = point_copies.page_features(analyzed_store, coll, page, version)
        # Asked again, the page comes from the copy alone: not one statement.
        again, statements = _statements(
            analyzed_store, lambda p=page: point_copies.page_features(analyzed_store, coll, p, version)
        )
        assert first == again == expected and statements == 0
        filled += len(expected[0])
    assert filled > 0


def test_a_layer_that_fits_the_budget_is_read_whole(analyzed_store: Store, monkeypatch):
    """Once the copy has loaded, a page of ground never asked for before needs no statement:
    every text was read with the positions. A layer larger than the budget keeps none ahead."""
    run_id, version = queries.latest_run_id(analyzed_store), _version(analyzed_store)
    pages = _pages(analyzed_store, run_id, count=10)[1:]
    for budget, whole in ((point_copies.MAX_TEXT_BYTES, True), (50_000, False)):
        monkeypatch.setattr(point_copies, "MAX_TEXT_BYTES", budget)
        monkeypatch.setattr(point_copies, "_layers", {})
        point_copies.page_features(analyzed_store, ORGS, pages[0], version)
        point_copies.wait_for_loads()
        layer = point_copies._layers[(analyzed_store.url, ORGS.id, run_id)]
        assert len(layer.texts) == (len(layer.ids) if whole else 0)
        for page in pages:
            found, statements = _statements(
                analyzed_store, lambda p=page: point_copies.page_features(analyzed_store, ORGS, p, version)
            )
            assert found == _database_page(analyzed_store, ORGS, page)
            if found[0]:
                assert (statements == 0) == whole
                break


def test_pages_that_need_the_database_go_there(analyzed_store: Store):
    run_id = queries.latest_run_id(analyzed_store)
    box = features.extent(analyzed_store, ORGS)
    for page in (
        features.Page(bbox=box, run_id=run_id),
        features.Page(run_id=run_id),
        features.Page(bbox=box, filters={"org_type": "enterprise"}, sortby=[("employees", True)], run_id=run_id),
    ):
        assert point_copies.answers_from_copy(analyzed_store, ORGS, page)
    for page in (
        features.Page(bbox=box, filters={"name": "某公司"}, run_id=run_id),
        features.Page(bbox=box, sortby=[("name", False)], run_id=run_id),
        features.Page(bbox=(box[0], box[1], box[0], box[3]), run_id=run_id),
    ):
        assert not point_copies.answers_from_copy(analyzed_store, ORGS, page)
    for collection in ("pairings", "party-orgs", "communities"):
        assert not point_copies.answers_from_copy(
            analyzed_store, features.COLLECTIONS[collection], features.Page(bbox=box)
        )


def test_a_jurisdiction_is_served_from_the_copy_with_the_databases_answers(analyzed_store: Store):
    """Street and community staff, the main users, get the copy's speed: the same pages as the
    database's scoped SQL, counts included, and no statement once the copy and the mask exist."""
    run_id, version = queries.latest_run_id(analyzed_store), _version(analyzed_store)
    streets = analyzed_store.read_frame("areas", ["code"], where={"level": "street"})["code"].tolist()
    communities = analyzed_store.read_frame("areas", ["code"], where={"level": "community"})["code"].tolist()
    for code in (streets[0], streets[-1], communities[len(communities) // 2]):
        scoped = analyzed_store.scoped(code)
        pages = _pages(scoped, run_id, count=12)
        point_copies.page_features(scoped, ORGS, pages[0], version)
        point_copies.wait_for_loads()
        point_copies.page_features(scoped, ORGS, pages[0], version)  # the mask, once
        seen = 0
        for page in pages:
            assert point_copies.answers_from_copy(scoped, ORGS, page)
            expected = _database_page(scoped, ORGS, page)
            got, statements = _statements(
                scoped, lambda p=page, s=scoped: point_copies.page_features(s, ORGS, p, version)
            )
            assert got == expected
            if point_copies._layers[(analyzed_store.url, ORGS.id, run_id)].texts:
                assert statements == 0
            seen += len(got[0])
        assert seen > 0


def test_a_small_text_budget_still_answers_every_page(analyzed_store: Store, monkeypatch):
    budget = 2_000  # two or three texts
    monkeypatch.setattr(point_copies, "MAX_TEXT_BYTES", budget)
    monkeypatch.setattr(point_copies, "_layers", {})  # nothing kept by earlier tests
    run_id, version = queries.latest_run_id(analyzed_store), _version(analyzed_store)
    pages = _pages(analyzed_store, run_id, count=15)[1:]  # not the whole layer at once
    point_copies.page_features(analyzed_store, ORGS, pages[0], version)
    point_copies.wait_for_loads()
    largest = returned = 0
    for page in pages:
        found = point_copies.page_features(analyzed_store, ORGS, page, version)
        assert found == _database_page(analyzed_store, ORGS, page)
        # Past the budget everything kept is dropped: what is kept fits, or is one page alone.
        size = sum(sys.getsizeof(t) + 100 for t in found[0])
        largest, returned = max(largest, size), returned + size
        assert sum(layer.text_bytes for layer in point_copies._layers.values()) <= max(budget, largest)
    assert returned > 2 * budget  # so the budget was passed


def test_a_write_is_seen_at_once_and_by_the_kept_copy(store: Store):
    """After a write the next page shows it (the database answers while the copy reloads), and
    so does every page after the copy has reloaded."""
    city = demo_city()
    with store.connect() as conn:
        # A read first: on SpatiaLite, a pooled connection whose first statement after clear()
        # (which rebuilt the spatial indexes on another connection) is an insert fails once.
        store.data_version(conn)
        for table, frame in city.tables().items():
            store.insert_frame(conn, table, frame)
    client = signed_in(create_app({"DATABASE_URL": store.url, "TESTING": True}))
    org = city.organizations.iloc[0]
    x, y = org.geometry.x, org.geometry.y
    asked = []

    def names() -> dict:
        # A box of its own each time: a box asked before is answered from the kept answer.
        d = 0.001 + len(asked) * 1e-5
        asked.append(d)
        answer = client.get(f"/api/collections/organizations/items?bbox={x - d},{y - d},{x + d},{y + d}&limit=2000")
        assert answer.status_code == 200
        return {f["id"]: f["properties"]["name"] for f in answer.get_json()["features"]}

    assert names()[org.org_id] == org["name"]
    point_copies.wait_for_loads()
    assert names()[org.org_id] == org["name"]
    key = (store.url, "organizations", 0)
    assert point_copies._layers[key].version == _version(store)
    with store.connect() as conn:
        conn.execute(text("UPDATE organizations SET name = '改名后' WHERE org_id = :o"), {"o": org.org_id})
        store.data_changed(conn)
    assert names()[org.org_id] == "改名后"
    point_copies.wait_for_loads()
    assert point_copies._layers[key].version == _version(store)
    assert names()[org.org_id] == "改名后"


def _filtered_pages(store: Store, run_id: int) -> list[features.Page]:
    """Pages with and without a box, with every kind of filter the copy answers (one of them
    on a value no point has) and sorts on categories with empty values, numbers and the id."""
    minx, miny, maxx, maxy = features.extent(store, ORGS)
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    boxes = [None, (minx, miny, midx, midy), (midx - 0.03, midy - 0.03, midx + 0.03, midy + 0.03)]
    filters = [
        {},
        {"status": "blank"},
        {"in_scope": True},
        {"org_type": "social_org", "operating": True},
        {"industry": "没有这个行业"},
        {"employees": 20},
    ]
    sorts = [
        [],
        [("employees", True)],
        [("party_members", False), ("status", True)],
        [("industry", False)],
        [("org_id", True)],
        [("street_code", True), ("in_scope", False), ("employees", False)],
    ]
    rnd = random.Random(3)
    return [
        features.Page(
            bbox=box, filters=f, sortby=s, limit=rnd.choice([5, 100, 2000]), offset=rnd.choice([0, 7]), run_id=run_id
        )
        for box in boxes
        for f in filters
        for s in sorts
    ]


def test_filtered_and_sorted_pages_are_the_databases(store: Store):
    """Filters and sorts on the copied properties, pages without a box, and organizations with
    no position (so no street either) or no industry: the copy's pages, counts included, are the database's, for an
    unrestricted and for a scoped caller — and need no statement once the copy is loaded."""
    from app.services.analysis import Parameters, run_analysis
    from app.services.demo import load_demo

    load_demo(store, n_orgs=600, seed=5)
    with store.connect() as conn:
        conn.execute(text("UPDATE organizations SET geom = NULL WHERE id % 17 = 0"))
        conn.execute(text("UPDATE organizations SET industry = NULL WHERE id % 7 = 0"))
        store.data_changed(conn)
    run_analysis(store, Parameters())
    run_id, version = queries.latest_run_id(store), _version(store)
    street = store.read_frame("areas", ["code"], where={"level": "street"})["code"].iloc[0]
    unplaced = 0
    for caller in (store, store.scoped(street)):
        pages = _filtered_pages(caller, run_id)
        point_copies.page_features(caller, ORGS, pages[0], version)
        point_copies.wait_for_loads()
        point_copies.page_features(caller, ORGS, pages[0], version)  # a scoped caller's mask, once
        matched = 0
        for page in pages:
            assert point_copies.answers_from_copy(caller, ORGS, page)
            expected = _database_page(caller, ORGS, page)
            got, statements = _statements(
                caller, lambda p=page, c=caller: point_copies.page_features(c, ORGS, p, version)
            )
            assert got == expected, page
            assert statements == 0
            matched += got[2]
            unplaced += sum(json.loads(t)["geometry"] is None for t in got[0])
        assert matched > 0
    assert unplaced > 0  # pages without a box hold the organizations with no position
