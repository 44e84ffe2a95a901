#!/usr/bin/env bash
# Refresh the vendored ECharts (static/vendor/echarts/) from its npm package: the dashboard
# runs offline, so the file is committed and served by Hongtu itself, never from a CDN.
# Usage: scripts/vendor_echarts.sh [VERSION] — check the integrity npm prints against the registry's.
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-6.1.0}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack "echarts@$version" --silent >/dev/null && tar xzf "echarts-$version.tgz")
expected=$(npm view "echarts@$version" dist.integrity)
actual="sha512-$(openssl dgst -sha512 -binary "$work/echarts-$version.tgz" | base64 -w0)"
[ "$expected" = "$actual" ] || { echo "integrity mismatch: $actual != $expected" >&2; exit 1; }
cp "$work/package/dist/echarts.min.js" "$work/package/LICENSE" "$work/package/NOTICE" static/vendor/echarts/
echo "$version" > static/vendor/echarts/VERSION
echo "ECharts $version vendored ($expected)"
