#!/usr/bin/env bash
# One command from a fresh Debian machine to the Kunming demo map at http://127.0.0.1:5000
# (SpatiaLite database in instance/hongtu.sqlite). Extra arguments go to `hongtu serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/hongtu init-db
if .venv/bin/hongtu demo --orgs "${HONGTU_DEMO_ORGS:-5000}"; then
    # Coverage colours, area pages, the dashboard and the reports show an analysis run.
    .venv/bin/hongtu analyze
else
    echo "（已有数据，直接启动 / data already loaded: serving it）"
fi
exec .venv/bin/hongtu serve "$@"
