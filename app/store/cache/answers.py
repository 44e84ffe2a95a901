"""Whole answers (API pages, page facts, statistics) kept per data version."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import text

from .. import Store
from . import shared
from .memory import ProcessMemory

#: Largest answer kept in a process's memory (bytes).
MAX_MEMORY_ANSWER = 4_000_000
#: Largest answer also kept in ``map_cache`` for other processes (bytes): sharing a large API
#: page costs a sizeable part of computing it again, on every page of a client panning
#: through new boxes; clusters, facts and statistics are far smaller.
MAX_SHARED_BYTES = 256_000
#: Least time computing an answer must have taken for it to be shared (s): sharing is a
#: write, and one commit more for concurrent clients to queue on, dearer than computing an
#: empty or small page again.
MIN_SHARED_SECONDS = 0.02
#: Bytes of answers each process keeps in memory.
MEMORY_BUDGET = 64 * 1024**2

_memory = ProcessMemory(MEMORY_BUDGET)


def answer(store: Store, key: str, compute: Callable[[int], str | bytes]) -> bytes:
    """``compute(version)`` as UTF-8 (it may answer UTF-8 itself), or its copy kept from the
    current data version: in this process's memory, else in the shared ``map_cache``.

    ``key`` must name everything the answer depends on besides the data (the request, the
    caller's scope); it is hashed. An answer computed while a write commits is kept under the
    version read before it, so it is never served as current.
    """
    digest = "answer:" + hashlib.sha256(key.encode()).hexdigest()
    # Data versions are counted per database: a process's copies are kept per database too.
    local = f"{store.url} {digest}"
    with store.connect(transaction=False) as conn:
        version = store.data_version(conn)
        body = _memory.get(local, version)
        if body is not None:
            return body
        kept = conn.execute(
            text("SELECT body FROM map_cache WHERE key = :k AND version = :v"), {"k": digest, "v": version}
        ).scalar()
    if kept is not None:
        body = kept.encode()
        _memory.put(local, version, body)
        return body
    started = time.perf_counter()
    computed = compute(version)
    took = time.perf_counter() - started
    body = computed if isinstance(computed, bytes) else computed.encode()
    if len(body) <= MAX_MEMORY_ANSWER:
        _memory.put(local, version, body)
    if len(body) <= MAX_SHARED_BYTES and took >= MIN_SHARED_SECONDS:
        shared.put_answer(store, digest, version, body.decode())
    return body
