#!/usr/bin/env bash
# One command from a fresh Debian machine to the whole test suite on SpatiaLite and PostGIS
# and in headless Chromium. CI (.ci/run) calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test

# The PostGIS test database: PostgreSQL on 127.0.0.1:5432 with trust auth (see README).
export HONGTU_TEST_POSTGRES_URL="${HONGTU_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/hongtu_test}"
.venv/bin/python scripts/prepare_test_db.py "$HONGTU_TEST_POSTGRES_URL"

.venv/bin/ruff check .
.venv/bin/pytest -q "$@"
