"""A process's own copies of kept answers, least recently used dropped first."""

from __future__ import annotations

import threading
from collections import OrderedDict


class ProcessMemory:
    """Answers kept in this process, each with the data version it was computed from.

    Only ever served after the shared data version has been read and matches, so an instance
    never answers from data another instance has since changed; it only saves moving the
    answer out of the database again.

    Parameters
    ----------
    budget : int
        Bytes of answers kept; past it, the least recently used go.
    """

    def __init__(self, budget: int):
        self.budget = budget
        self.size = 0
        self.items: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: str, version: int) -> bytes | None:
        """The answer kept under ``key`` for data ``version``, or None."""
        with self.lock:
            found = self.items.get(key)
            if found is None or found[0] != version:
                return None
            self.items.move_to_end(key)
            return found[1]

    def put(self, key: str, version: int, body: bytes) -> None:
        """Keep ``body`` under ``key`` for data ``version``."""
        with self.lock:
            if key in self.items:
                self.size -= len(self.items.pop(key)[1])
            self.items[key] = (version, body)
            self.size += len(body)
            while self.size > self.budget:
                self.size -= len(self.items.popitem(last=False)[1][1])
