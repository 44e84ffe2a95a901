"""API pages of point collections answered from each process's own copy of the layer.

At 100,000 organizations a street-sized box in the city centre holds 5,000 of them; for a page
of 2,000 the database finds them all through its spatial index, sorts them and writes each
chosen one's Feature as JSON, most of the time going to writing JSON, and a panning client
asks for a new box every time (figures in docs/performance.md). So each process keeps, per
collection, analysis run and data version:

- every point's coordinates, sorted by x, with its rank in the database's own order of
  identifiers: a page's points are then found by ``numpy`` (a binary search on x, a mask on y)
  and put in order by rank;
- the Feature text of every point, read by the same thread right after the positions when
  the layer's texts fit the process's budget (100,000 organizations do, a million do not);
  otherwise of every point it has served. Points without a kept text are written by the
  database, in one query and by the same SQL as every other page.

Pages of a point collection qualify when they filter and sort only on the properties the
collection's copy holds (``Collection.copied``: status, type, industry, size, area codes) or
its identifier, with or without a box, and show no personal properties; the rest are answered
by the database as before. Those properties are kept per point as numbers — categories by
their rank in the database's own order of them, so that a sort agrees with its collation — and
a filter is one more mask, a sort one ``lexsort`` of the box's points. A caller bound to a
jurisdiction is served from the same copy: which points lie inside their area is worked out
once per copy, by the database's own rule (the point meets the stored polygon), and is one more
mask on the box. Copies belong to the data version they were read from: after a write
anywhere, the next page loads afresh, so an instance never serves data another instance has
since changed.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from sqlalchemy import text

from .. import Store, features
from ..features import Collection, Page
from ..personal import PERSONAL

#: Memory (bytes) of the Feature texts each process keeps over all layers; past it, they are
#: read again. It holds the texts of a city of 100,000 organizations, not of a million.
MAX_TEXT_BYTES = 128 * 1024**2
#: Texts read per statement when a layer's texts are read whole, and in the first statement.
FILL_BATCH = 20_000
FIRST_FILL_BATCH = 2_000
#: Jurisdictions whose masks each copy keeps (a byte per point each).
MAX_JURISDICTIONS = 64
#: Longest a database page waits for its count (s) before leaving ``numberMatched`` out.
COUNT_SECONDS = 0.3
#: Layers (collection and run) each process keeps.
MAX_LAYERS = 4


@dataclass
class _Layer:
    """One point layer of one data version and run: positions sorted by x, and kept texts."""

    version: int
    xs: np.ndarray
    ys: np.ndarray
    #: Rank of each point (in ``xs`` order) in the database's order of identifiers.
    ranks: np.ndarray
    #: Internal id of the point of each rank.
    ids: np.ndarray
    #: Feature texts as UTF-8: 40% less memory than str for Chinese names, and a page is
    #: joined into the answer without encoding the page again.
    texts: dict[int, bytes] = field(default_factory=dict)
    text_bytes: int = 0
    #: Per jurisdiction (area code), which points (in ``xs`` order) lie inside it.
    inside: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per copied property, its value at each point (in ``xs`` order) as a number: a category's
    #: rank among the property's values in the database's order, NaN where there is none.
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    #: Per copied category property, the rank of each of its values.
    categories: dict[str, dict] = field(default_factory=dict)


#: Loaded copies and the threads loading them, by (store URL, collection, run).
_layers: dict[tuple[str, str, int], _Layer] = {}
_loading: dict[tuple[str, str, int], threading.Thread] = {}
_lock = threading.Lock()


def answers_from_copy(store: Store, coll: Collection, page: Page) -> bool:
    """Whether ``page`` can be answered from the process's copy (otherwise: the database)."""
    box = page.bbox
    known = {*coll.copied, coll.fid}
    return (
        coll.geometry_type == "Point"
        and coll.geom_alias == "t"
        and coll.line_to is None
        and not (PERSONAL.keys() & coll.properties.keys())
        and (box is None or (box[0] < box[2] and box[1] < box[3]))
        and set(page.filters) <= set(coll.copied)
        and {name for name, _ in page.sortby} <= known
    )


def page_features(store: Store, coll: Collection, page: Page, version: int) -> tuple[list[bytes], bool, int | None]:
    """One page of a collection as GeoJSON Feature texts (UTF-8), whether more follow, and how
    many items the page's box and filters match (None when counting took too long), as
    :func:`features.geojson_features` answers it; the pages that :func:`answers_from_copy` passes
    come from the process's copy of data version ``version`` once it is loaded.

    The copy loads in a thread of its own, so the first pages after a write are answered by
    the database meanwhile; its texts follow.
    """
    layer = _ready(store, coll, page.run_id, version) if answers_from_copy(store, coll, page) else None
    if layer is None:
        found, more = features.geojson_features(store, coll, page)
        # A page that holds the rest tells the count without asking.
        if page.offset == 0 and not more:
            matched = len(found)
        else:
            matched = features.count(store, coll, page, COUNT_SECONDS)
        return [t.encode() for t in found], more, matched
    ranks = _ordered(coll, page, layer, _chosen(store, page, layer))
    chosen = layer.ids[ranks[page.offset : page.offset + page.limit]].tolist()
    with _lock:
        kept = [layer.texts.get(i) for i in chosen]
    missing = [i for i, t in zip(chosen, kept, strict=True) if t is None]
    if missing:
        found = _encoded(features.feature_texts(store, coll, page.run_id, missing))
        with _lock:
            _hold_texts(layer, found)
        kept = [found[i] if t is None else t for i, t in zip(chosen, kept, strict=True)]
    return kept, len(ranks) > page.offset + page.limit, len(ranks)


def _chosen(store: Store, page: Page, layer: _Layer) -> np.ndarray:
    """Positions (in ``xs`` order) of the points in the page's box, jurisdiction and filters."""
    if page.bbox is None:
        lo, hi = 0, len(layer.xs)
        mask = np.ones(hi, dtype=bool)
    else:
        minx, miny, maxx, maxy = page.bbox
        lo, hi = np.searchsorted(layer.xs, minx, "left"), np.searchsorted(layer.xs, maxx, "right")
        ys = layer.ys[lo:hi]
        mask = (ys >= miny) & (ys <= maxy)
    if store.scope is not None:
        mask &= _inside(store, layer)[lo:hi]
    for name, value in page.filters.items():
        if name in layer.categories:
            value = layer.categories[name].get(value, np.nan)  # a value no point has matches none
        mask &= layer.columns[name][lo:hi] == value
    return np.flatnonzero(mask) + lo


def _ordered(coll: Collection, page: Page, layer: _Layer, chosen: np.ndarray) -> np.ndarray:
    """Ranks of the ``chosen`` points in the page's order, as the database sorts them: by each
    key, empty values last either way, then by identifier."""
    ranks = layer.ranks[chosen]
    keys = []
    for name, desc in page.sortby:
        if name == coll.fid:
            keys.append(-ranks if desc else ranks)
            break
        values = layer.columns[name][chosen]
        keys.append(np.where(np.isnan(values), np.inf, -values if desc else values))
    if not keys:
        return np.sort(ranks)
    # lexsort's last key is its first.
    return ranks[np.lexsort([ranks, *reversed(keys)])]


def _inside(store: Store, layer: _Layer) -> np.ndarray:
    """Which points of the layer lie in the store's jurisdiction, by the same rule as the
    database's (the point meets the area's polygon as stored), worked out once per copy."""
    with _lock:
        found = layer.inside.get(store.scope)
    if found is not None:
        return found
    area = store.read_frame("areas", [], where={"code": store.scope})
    polygon = area.geometry.iloc[0] if len(area) else None
    if polygon is None:
        found = np.zeros(len(layer.xs), dtype=bool)
    else:
        shapely.prepare(polygon)
        found = shapely.intersects_xy(polygon, layer.xs, layer.ys)
    with _lock:
        if len(layer.inside) >= MAX_JURISDICTIONS:
            layer.inside.clear()
        layer.inside[store.scope] = found
    return found


def wait_for_loads(timeout: float = 60) -> None:
    """Wait until the copies being loaded are ready (for tests and benchmarks)."""
    for thread in list(_loading.values()):
        thread.join(timeout)


def drop_copies() -> None:
    """Forget every kept copy, as a new worker starts (for benchmarks)."""
    with _lock:
        _layers.clear()


def _ready(store: Store, coll: Collection, run_id: int, version: int) -> _Layer | None:
    """The loaded copy of the layer, or None while it loads (a load is started if none is)."""
    key = (store.url, coll.id, run_id)
    with _lock:
        layer = _layers.get(key)
        if layer is not None and layer.version == version:
            return layer
        loading = _loading.get(key)
        if loading is not None and loading.is_alive():
            return None
        _loading[key] = thread = threading.Thread(
            target=_load, args=(store, coll, run_id, version), name=f"hongtu-points-{coll.id}", daemon=True
        )
    thread.start()
    return None


def _load(store: Store, coll: Collection, run_id: int, version: int) -> None:
    # Points without a position too (with NaN coordinates, after every other point in x):
    # no box or jurisdiction holds them, but pages without a box do.
    where = coll.where or "1 = 1"
    # Lookups (a LEFT JOIN on a unique key) add no rows and no conditions: needed only for
    # the properties they hold.
    joins = "" if coll.lookups and not coll.copied else coll.joins
    fid = coll.properties[coll.fid][0]
    copied = [coll.properties[name][0] for name in coll.copied]
    columns = ", ".join(["t.id", "ST_X(t.geom)", "ST_Y(t.geom)", *copied])
    source = f"FROM {coll.table} t {joins} WHERE {where}"
    categories = {}
    with store.connect(transaction=False) as conn:
        for name, sql in zip(coll.copied, copied, strict=True):
            if coll.properties[name][1] in ("string", "boolean"):
                # The database's own order of the values, so a sort on their ranks is its sort.
                ordered = conn.execute(text(f"SELECT DISTINCT {sql} AS v {source} ORDER BY v"), {"run": run_id})
                categories[name] = [v for (v,) in ordered if v is not None]
        # The driver's plain tuples: building SQLAlchemy's rows was most of the load at a million points.
        rows = conn.execute(text(f"SELECT {columns} {source} ORDER BY {fid}"), {"run": run_id}).cursor.fetchall()
    frame = pd.DataFrame(rows, columns=["id", "x", "y", *coll.copied])
    xs, ys = (pd.to_numeric(frame[c]).to_numpy(dtype=float) for c in ("x", "y"))
    by_x = np.argsort(xs, kind="stable")
    # Sorted by identifier, each point's row number is its rank.
    layer = _Layer(version, xs[by_x], ys[by_x], by_x, frame["id"].to_numpy(np.int64))
    for name in coll.copied:
        values = frame[name]
        if name in categories:
            codes = pd.Categorical(values, categories=categories[name]).codes.astype(float)
            codes[codes < 0] = np.nan
            layer.columns[name] = codes[by_x]
            layer.categories[name] = {v: i for i, v in enumerate(categories[name])}
        else:
            layer.columns[name] = pd.to_numeric(values).to_numpy(dtype=float)[by_x]
    with _lock:
        # Copies of other data versions of this database are of no further use (a version
        # read later, if this one is already old, loads again).
        for key in [k for k, other in _layers.items() if k[0] == store.url and other.version != version]:
            del _layers[key]
        key = (store.url, coll.id, run_id)
        _layers.pop(key, None)
        _layers[key] = layer
        while len(_layers) > MAX_LAYERS:  # the one loaded longest ago goes first
            del _layers[next(iter(_layers))]
    _fill(store, coll, run_id, layer)


def _fill(store: Store, coll: Collection, run_id: int, layer: _Layer) -> None:
    """Read every point's text into ``layer`` when they all fit the budget.

    A map panning over new ground otherwise asks the database for most of each page, which
    costs several times the page's other work; read in ranges of ids, the whole layer costs
    about as much as a few such pages. A small first range tells the size of all, so a layer
    too large for the budget (a million organizations) costs one small query.
    """
    key = (store.url, coll.id, run_id)
    ids = np.sort(layer.ids)
    starts = [0, *range(min(FIRST_FILL_BATCH, len(ids)), len(ids), FILL_BATCH)]
    for start, end in zip(starts, [*starts[1:], len(ids)], strict=True):
        if start == end:
            continue
        texts = _encoded(features.feature_texts(store, coll, run_id, between=(int(ids[start]), int(ids[end - 1]))))
        with _lock:
            if _layers.get(key) is not layer:  # replaced by a newer version meanwhile
                return
            kept = _held_bytes()
            if start == 0:
                # The first range's texts, scaled to the whole layer, in place of what it holds now.
                whole = _size(texts.values()) / max(len(texts), 1) * len(ids)
                if kept - layer.text_bytes + whole > MAX_TEXT_BYTES:
                    return
            fresh = {i: t for i, t in texts.items() if i not in layer.texts}
            added = _size(fresh.values())
            if kept + added > MAX_TEXT_BYTES:
                return
            layer.texts.update(fresh)
            layer.text_bytes += added


def _held_bytes() -> int:
    """Bytes the process spends on texts over all layers (the caller holds ``_lock``)."""
    return sum(layer.text_bytes for layer in _layers.values())


def _encoded(texts: dict[int, str]) -> dict[int, bytes]:
    return {i: t.encode() for i, t in texts.items()}


def _size(texts) -> int:
    """Bytes a process spends keeping ``texts``: each one's own size and about as much again
    for its place in the dict."""
    return sum(sys.getsizeof(t) + 100 for t in texts)


def _hold_texts(layer: _Layer, found: dict[int, bytes]) -> None:
    """Add texts to a layer, starting every layer over when the process's budget is spent."""
    added = _size(found.values())
    if _held_bytes() + added > MAX_TEXT_BYTES:
        for other in _layers.values():
            other.texts, other.text_bytes = {}, 0
    layer.texts.update(found)
    layer.text_bytes += added
