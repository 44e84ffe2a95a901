"""The child process that parses one uploaded Excel workbook.

Run by :func:`app.intake.readers.read_table` as ``python -I _xlsx_worker.py PATH SHEET OUT
MEMORY_BYTES`` (SHEET empty: the first sheet). A few hundred kilobytes of zipped XML can
declare millions of cells, and parsing them costs minutes of CPU: here that costs this
process, under the parent's time limit and its own address-space cap, never a web worker.
It writes the sheet as a pickle of its text columns to ``OUT``; when the sheet is missing
it prints the workbook's sheet names as JSON and exits 5.
"""

from __future__ import annotations

import json
import pickle
import resource
import sys

MISSING_SHEET = 5


def main(path: str, sheet: str, out: str, memory: int) -> int:
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import pandas as pd

    # Calamine's XML reader knows no DTD entities: "billion laughs" and external entities
    # are errors, never expanded or fetched.
    with pd.ExcelFile(path, engine="calamine") as book:
        if sheet and sheet not in book.sheet_names:
            print(json.dumps(book.sheet_names, ensure_ascii=False))
            return MISSING_SHEET
        frame = pd.read_excel(book, sheet_name=sheet or 0, dtype=str, keep_default_na=False)
    with open(out, "wb") as handle:
        pickle.dump(frame, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    path, sheet, out, memory = sys.argv[1:5]
    try:
        sys.exit(main(path, sheet, out, int(memory)))
    except MemoryError:
        print("MemoryError", file=sys.stderr)
        sys.exit(4)
    except Exception as exc:  # calamine raises zip, XML and entity errors for damaged files
        print(type(exc).__name__, file=sys.stderr)
        sys.exit(2)
