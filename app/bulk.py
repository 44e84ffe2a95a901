"""Bulk work in a process: imports and analysis runs, which make millions of Python objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the duration; usable as a decorator.

    Bulk work allocates cells, rows and arrays by the million, without reference cycles, and
    the collector ran hundreds of times over a heap holding every one of them: at 100k
    organizations 0.24 s of a 2.3 s import and 0.56 s of a 4 s analysis run. Reference
    counting still frees everything as usual; only cycles wait until the collector resumes.
    Nested or concurrent uses leave it paused until the outermost use that paused it ends.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()
