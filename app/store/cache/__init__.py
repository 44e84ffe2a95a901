"""What Hongtu keeps between requests so that maps and API pages are not computed again.

Three kinds of things are kept, each valid only for the data version it was computed from
(every store write increments it in its own transaction), so no process or instance ever
serves what another has since changed:

- **answers** (:func:`answer`): whole responses — API pages, page facts, statistics — under a
  hash of everything they depend on besides the data. Each process keeps the ones it served
  last in memory (:class:`~.memory.ProcessMemory`); small ones that were slow to compute are
  also shared through the table ``map_cache`` (:mod:`.shared`).
- **cluster tiles** (:func:`cluster_tiles`): organization clusters of the low zooms by whole
  tiles (``app/store/tiles.py``), shared through ``map_cache``; :func:`warm_city_view`
  computes the ones the city map opens with after each analysis run.
- **point copies** (:func:`page_features`): each process's copy of a point layer — positions
  and Feature texts — from which new boxes of the API are sliced by ``numpy`` instead of asked
  of the database (:mod:`.point_copies`).

Writes to ``map_cache`` never fail a request: when the database is busy or read-only, the
answer is given and simply not kept.
"""

from .answers import answer
from .clusters import cluster_tiles, warm_city_view
from .point_copies import answers_from_copy, drop_copies, page_features, wait_for_loads

__all__ = [
    "answer",
    "answers_from_copy",
    "cluster_tiles",
    "drop_copies",
    "page_features",
    "wait_for_loads",
    "warm_city_view",
]
