"""Problems found in an input file, in the user's terms: row, column, value, reason (中文 / English)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from ..spreadsheets import to_csv


@dataclass(frozen=True)
class Issue:
    """One problem. ``row`` is as the user sees it (spreadsheet row or feature number);
    ``None`` for the file as a whole. ``severity`` is "error" (nothing is written) or
    "warning" (written, but worth a look, e.g. a repaired polygon)."""

    row: int | None
    column: str
    value: str
    zh: str
    en: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"第 {self.row} 行 row {self.row}" if self.row is not None else "文件 file"
        column = f"，列 column {self.column}" if self.column else ""
        value = f"，值 value {self.value!r}" if self.value else ""
        label = "错误 error" if self.severity == "error" else "提示 warning"
        return f"{label}：{where}{column}{value}：{self.zh} / {self.en}"


class IntakeError(Exception):
    """A problem with the file as a whole (empty, damaged, unsupported…)."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.issue = Issue(None, "", "", zh, en)


REPORT_COLUMNS = {
    "row": "行号 row",
    "column": "列 column",
    "value": "值 value",
    "severity": "级别 severity",
    "zh": "原因",
    "en": "reason",
}


def write_report(issues: list[Issue], path: Path) -> Path:
    """Write issues as a CSV that Excel opens with Chinese intact (UTF-8 with BOM)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([asdict(i) for i in issues], columns=list(REPORT_COLUMNS))
    to_csv(frame.rename(columns=REPORT_COLUMNS), path, encoding="utf-8-sig")
    return path
