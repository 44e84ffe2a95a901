"""The child process that lets GDAL read one uploaded file, and nothing else.

Run by :func:`app.intake.spatial_file.read_spatial` as ``python -I _gdal_worker.py PATH DRIVER
ENCODING OUT MEMORY_BYTES``. The parent sets the environment (``GDAL_SKIP`` for
every driver but the file's, network access pointed at a closed port); this process caps its
own address space before GDAL loads, then writes what it read to ``OUT`` as a pickle of plain
numpy arrays and strings. It imports nothing of Hongtu's, so a file GDAL chokes on costs this
process, never the web worker.
"""

from __future__ import annotations

import pickle
import resource
import sys


def main(path: str, driver: str, encoding: str, out: str, memory: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import pyogrio
    from pyogrio.raw import read

    registered = set(pyogrio.list_drivers())
    if registered != {driver}:
        print(f"GDAL drivers not restricted: {sorted(registered)}", file=sys.stderr)
        return 3
    meta, _fids, geometry, fields = read(path, encoding=encoding or None)
    result = {
        "columns": [str(name) for name in meta["fields"]],
        "fields": list(fields),
        "geometry": geometry,
        "crs": meta["crs"],
    }
    with open(out, "wb") as handle:
        pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    path, driver, encoding, out, memory = sys.argv[1:6]
    try:
        sys.exit(main(path, driver, encoding, out, int(memory)))
    except MemoryError:
        print("MemoryError: the file needs more memory than an import may use", file=sys.stderr)
        sys.exit(4)
    except Exception as exc:  # GDAL reports damage in many ways; the parent phrases it
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(2)
