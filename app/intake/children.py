"""The bounded child processes of an import (GDAL reads, polygon repairs): one way to run them.

Each child gets its time limit here and caps its own memory; at most ``MAX_CHILDREN`` run at
once per process, so that many uploads at a time cannot add up their memory limits past the
machine's. An upload that waits ``WAIT_SECONDS`` for its turn is told to retry.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from .issues import IntakeError

MAX_CHILDREN = 2
WAIT_SECONDS = 30
_TURNS = threading.BoundedSemaphore(MAX_CHILDREN)


def run_child(
    worker: Path, args: list[str], timeout: float, env: dict | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess | None:
    """Run ``worker`` (isolated: ``python -I``) with ``args``; None when it took over ``timeout`` s.

    Raises
    ------
    IntakeError
        When other imports' children kept every turn for ``WAIT_SECONDS``.
    """
    if not _TURNS.acquire(timeout=WAIT_SECONDS):
        raise IntakeError(
            "其他导入正在处理文件，请稍后重试", "other imports are processing files right now: retry in a minute"
        )
    try:
        return subprocess.run(
            [sys.executable, "-I", str(worker), *args],
            input=stdin,
            env=env,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
    finally:
        _TURNS.release()
