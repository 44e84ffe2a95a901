"""Data intake: read the files users have, validate every row, write all of it or nothing."""

from .issues import IntakeError, Issue
from .load import ImportReport, import_file
from .schema import KINDS

__all__ = ["KINDS", "ImportReport", "IntakeError", "Issue", "import_file"]
