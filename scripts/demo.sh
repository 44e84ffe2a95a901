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
# Nobody gets in without an account: the first run makes two and prints their password once
# (forgotten? .venv/bin/hongtu user password admin).
if [ -z "$(.venv/bin/hongtu user list)" ]; then
    # "Ht-" gives the upper case, lower case and symbol the password rule asks for.
    password=$(.venv/bin/python -c 'import secrets, string; a = string.ascii_letters + string.digits; print("Ht-" + "".join(secrets.choice(a) for _ in range(12)))')
    .venv/bin/hongtu user add admin --role admin --password "$password"
    .venv/bin/hongtu user add huashan --role street --area 530102001 --password "$password"
    echo "登录 / sign in at /login — admin（管理员，全市 / whole city）或 huashan（华山街道工作人员 / street staff），密码 / password: $password"
fi
# The demo city has a name in headings and exports (see docs/operations.md for the settings).
export HONGTU_CITY_NAME="${HONGTU_CITY_NAME:-昆明市}"
exec .venv/bin/hongtu serve "$@"
