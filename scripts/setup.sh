#!/usr/bin/env bash
# Install what Hongtu needs on Debian: system packages, a virtualenv in .venv, the project.
#   scripts/setup.sh          runtime (SpatiaLite; Chromium and a CJK font render map images)
#   scripts/setup.sh test     runtime + what the tests need (PostGIS, pytest, ruff)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libsqlite3-mod-spatialite python3-venv chromium fonts-wqy-microhei)
if [ "${1:-}" = "test" ]; then
    # PostGIS must match the running PostgreSQL's major version.
    pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    packages+=("postgresql-${pg_major:-15}-postgis-3")
    # Debian's own GDAL (3.6 on Debian 12): the API's client instructions are tested with it.
    packages+=(gdal-bin)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "安装系统软件包 / installing system packages: ${missing[*]}"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
extras=""; [ "${1:-}" = "test" ] && extras="[test]"
.venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
