#!/usr/bin/env bash
# Install what Hongtu needs on Debian: system packages, a virtualenv in .venv, the project.
#   scripts/setup.sh          runtime (SpatiaLite; Chromium and a CJK font render map images)
#   scripts/setup.sh test     runtime + what the tests need (PostGIS, pytest, ruff)
#   scripts/setup.sh interop  test + QGIS (Debian's python3-qgis) for scripts/interop
#   scripts/setup.sh peers    interop + QGIS Server, MapServer and nginx for scripts/bench --peers
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-}"
packages=(libsqlite3-mod-spatialite python3-venv chromium fonts-wqy-microhei)
if [ -n "$mode" ]; then
    # PostGIS must match the running PostgreSQL's major version.
    pg_major=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1)
    packages+=("postgresql-${pg_major:-15}-postgis-3")
    # Debian's own GDAL (3.6 on Debian 12): the API's client instructions are tested with it.
    packages+=(gdal-bin)
fi
if [ "$mode" = "interop" ] || [ "$mode" = "peers" ]; then
    packages+=(python3-qgis qgis-providers)
fi
if [ "$mode" = "peers" ]; then
    packages+=(qgis-server-bin qgis-server-wfs3 cgi-mapserver mapserver-bin nginx-light spawn-fcgi multiwatch)
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
extras=""; [ -n "$mode" ] && extras="[test]"
.venv/bin/pip install -q --disable-pip-version-check -e ".${extras}"
if [ "$mode" = "peers" ]; then
    # pygeoapi in a virtualenv of its own: its pins are not Hongtu's.
    [ -x .venv-pygeoapi/bin/python ] || python3 -m venv .venv-pygeoapi
    .venv-pygeoapi/bin/pip install -q --disable-pip-version-check pygeoapi psycopg2-binary geoalchemy2 pygeofilter gunicorn
fi
