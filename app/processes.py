"""This machine's processes as Linux's /proc shows them: who started whom, and what they use.

The renderer finds the browser it started here; tests and ``scripts/bench_render.py`` count
and weigh Chromium's processes with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    """One process: its id, command name, parent's id and resident memory (bytes)."""

    pid: int
    name: str
    parent: int
    rss: int


def processes() -> dict[int, Process]:
    """Every process there is now, by id (those that end while being read are left out)."""
    found = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        pid = int(stat.parent.name)
        # After the name: state, ppid, … and the resident set in pages at 24th position.
        found[pid] = Process(pid, head.split("(", 1)[1], int(fields[1]), int(fields[21]) * 4096)
    return found


def descendants(root: int, table: dict[int, Process] | None = None) -> list[Process]:
    """The processes started by ``root``, by its children, and so on."""
    table = processes() if table is None else table

    def under(pid: int) -> bool:
        seen = 0
        while pid > 1 and seen < len(table):
            pid = table[pid].parent if pid in table else 0
            if pid == root:
                return True
            seen += 1
        return False

    return [p for p in table.values() if under(p.pid)]


def thread_ids(pid: int) -> list[int]:
    """The threads of process ``pid`` (empty when it has ended)."""
    try:
        return [int(task.name) for task in (PROC / str(pid) / "task").iterdir()]
    except OSError:
        return []


def thread_nice(tid: int) -> int | None:
    """The nice value of thread ``tid`` (None when it has ended)."""
    try:
        return int((PROC / str(tid) / "stat").read_text().rsplit(")", 1)[1].split()[16])
    except (OSError, IndexError, ValueError):
        return None
