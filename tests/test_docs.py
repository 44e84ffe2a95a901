"""The column documentation matches the schema the importers use."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "document_columns.py"


def test_columns_doc_is_current():
    spec = importlib.util.spec_from_file_location("document_columns", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.OUT.read_text(encoding="utf-8") == module.render(), "run scripts/document_columns.py"
