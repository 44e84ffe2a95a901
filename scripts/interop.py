"""Read a running Hongtu's ``/api`` with the clients people use, and check what each one got.

    scripts/interop --url http://127.0.0.1:8000 --user NAME --token TOKEN --database URL

Each client copies the whole ``organizations`` collection, the way its documentation
(``docs/api.md``) tells a user to:

- Debian's GDAL (3.6 on Debian 12): ``ogrinfo -so`` for the count, ``ogr2ogr`` into a
  GeoPackage, with the bearer token in ``GDAL_HTTP_HEADERS``;
- pyogrio's own GDAL (a current release), with ``GDAL_HTTP_AUTH=BEARER``;
- OWSLib, following ``offset`` pages;
- QGIS's OAPIF provider (Debian's ``python3-qgis``, headless), with an authentication
  configuration of type Basic holding the account and the token.

The count each reports and the set of identifiers it copied are compared with the database's
(``--database``, read directly, within the account's jurisdiction), and each is timed. It
prints a table, writes the figures as JSON (``--json``) and exits 1 if any client differs.
It reads a live service, so it is run beside the benchmark, not in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.store import Store  # noqa: E402
from app.store.accounts import list_users  # noqa: E402

COLLECTION = "organizations"
#: Features per request for the clients that let one choose (the API's largest page).
PAGE_SIZE = 10_000

#: Run by Debian's own Python, which has QGIS: prints the count and the identifiers as JSON.
QGIS_SCRIPT = """
import json, sys
from qgis.core import QgsApplication, QgsAuthMethodConfig, QgsVectorLayer
api, user, token, collection, page_size = sys.argv[1:6]
app = QgsApplication([], False)
app.initQgis()
auth = QgsApplication.authManager()
auth.setMasterPassword("interop-only", True)
config = QgsAuthMethodConfig("Basic")
config.setName("hongtu")
config.setConfig("username", user)
config.setConfig("password", token)
auth.storeAuthenticationConfig(config)
uri = f"url='{api}' typename='{collection}' authcfg={config.id()} pageSize='{page_size}' restrictToRequestBBOX='0'"
layer = QgsVectorLayer(uri, "orgs", "OAPIF")
if not layer.isValid():
    sys.exit("QGIS could not open the layer: " + layer.error().summary())
ids = [feature["org_id"] for feature in layer.getFeatures()]
print(json.dumps({"count": layer.featureCount(), "ids": ids}))
"""


def expected_ids(database: str, user: str) -> set[str]:
    """The identifiers of the collection that the account may see, read from the database."""
    store = Store(database)
    account = next((u for u in list_users(store) if u["username"] == user), None)
    if account is None:
        sys.exit(f"no account {user!r} in {database}")
    scoped = store.scoped(account["area_code"]) if account["area_code"] else store
    return set(scoped.read_frame("organizations", ["org_id"])["org_id"])


def debian_gdal(api: str, token: str, work: Path) -> dict:
    """ogrinfo's count, then ogr2ogr's copy into a GeoPackage, with Debian's GDAL."""
    env = {**os.environ, "GDAL_HTTP_HEADERS": f"Authorization: Bearer {token}"}
    source = f"OAPIF:{api}"
    started = time.perf_counter()
    info = subprocess.run(
        ["ogrinfo", "-ro", "-so", source, COLLECTION], env=env, capture_output=True, text=True, check=True
    ).stdout
    count_s = time.perf_counter() - started
    count = int(next(line for line in info.splitlines() if line.startswith("Feature Count:")).split(":")[1])
    out = work / "debian.gpkg"
    started = time.perf_counter()
    subprocess.run(
        ["ogr2ogr", "-f", "GPKG", str(out), source, COLLECTION, "-oo", f"PAGE_SIZE={PAGE_SIZE}"],
        env=env,
        check=True,
        capture_output=True,
    )
    copy_s = time.perf_counter() - started
    version = subprocess.run(["ogrinfo", "--version"], capture_output=True, text=True).stdout.strip()
    return {"client": version, "count": count, "count_s": count_s, "copy_s": copy_s, "ids": _gpkg_ids(out)}


def _gpkg_ids(path: Path) -> list[str]:
    import pyogrio

    return pyogrio.read_dataframe(path, columns=["org_id"], read_geometry=False)["org_id"].tolist()


def pyogrio_gdal(api: str, token: str) -> dict:
    """The count and a copy with pyogrio's own GDAL."""
    import pyogrio

    pyogrio.set_gdal_config_options({"GDAL_HTTP_AUTH": "BEARER", "GDAL_HTTP_BEARER": token})
    source = f"OAPIF:{api}"
    started = time.perf_counter()
    count = pyogrio.read_info(source, layer=COLLECTION, force_feature_count=True)["features"]
    count_s = time.perf_counter() - started
    started = time.perf_counter()
    frame = pyogrio.read_dataframe(source, layer=COLLECTION, columns=["org_id"], PAGE_SIZE=str(PAGE_SIZE))
    copy_s = time.perf_counter() - started
    return {
        "client": f"pyogrio {pyogrio.__version__}, GDAL {pyogrio.__gdal_version_string__}",
        "count": count,
        "count_s": count_s,
        "copy_s": copy_s,
        "ids": frame["org_id"].tolist(),
    }


def owslib(api: str, token: str) -> dict:
    """The count from the first page, then every page by ``offset``, with OWSLib."""
    import owslib
    from owslib.ogcapi.features import Features

    service = Features(api, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    count = service.collection_items(COLLECTION, limit=1)["numberMatched"]
    count_s = time.perf_counter() - started
    started = time.perf_counter()
    ids: list[str] = []
    while True:
        page = service.collection_items(COLLECTION, limit=PAGE_SIZE, offset=len(ids))
        ids += [feature["id"] for feature in page["features"]]
        if not any(link["rel"] == "next" for link in page["links"]):
            break
    copy_s = time.perf_counter() - started
    return {"client": f"OWSLib {owslib.__version__}", "count": count, "count_s": count_s, "copy_s": copy_s, "ids": ids}


def qgis(api: str, user: str, token: str, work: Path) -> dict:
    """The count and a copy with QGIS's OAPIF provider, in Debian's Python."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_AUTH_DB_DIR_PATH": str(work), "HOME": str(work)}
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/python3", "-c", QGIS_SCRIPT, api, user, token, COLLECTION, str(PAGE_SIZE)],
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "QGIS failed")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    version = subprocess.run(
        ["/usr/bin/python3", "-c", "from qgis.core import Qgis; print(Qgis.version())"],
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # QGIS reads while it counts: one figure for both.
    return {"client": f"QGIS {version}", "count_s": None, "copy_s": seconds, **found}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the service, e.g. http://127.0.0.1:8000")
    parser.add_argument("--user", required=True, help="the account the token belongs to")
    parser.add_argument("--token", required=True, help="an API token (hongtu token api NAME)")
    parser.add_argument("--database", default=os.environ.get("DATABASE_URL"), help="the service's database")
    parser.add_argument("--json", default=str(ROOT / "bench-results" / "interop.json"))
    args = parser.parse_args()
    if not args.database:
        sys.exit("--database (or DATABASE_URL) is needed to check the answers")
    api = args.url.rstrip("/") + "/api"
    expected = expected_ids(args.database, args.user)
    clients = {
        "debian_gdal": lambda work: debian_gdal(api, args.token, work),
        "pyogrio_gdal": lambda _work: pyogrio_gdal(api, args.token),
        "owslib": lambda _work: owslib(api, args.token),
        "qgis": lambda work: qgis(api, args.user, args.token, work),
    }
    results, failed = {}, False
    for name, run in clients.items():
        with tempfile.TemporaryDirectory() as work:
            try:
                found = run(Path(work))
            except Exception as exc:  # a client that fails is a finding, not the end of the run
                results[name] = {"error": str(exc)}
                failed = True
                continue
        ids = found.pop("ids")
        found.update(
            copied=len(ids),
            duplicates=len(ids) - len(set(ids)),
            missing=len(expected - set(ids)),
            extra=len(set(ids) - expected),
        )
        found["agrees"] = found["count"] == len(expected) and set(ids) == expected and not found["duplicates"]
        failed |= not found["agrees"]
        results[name] = found
    print(f"\n{len(expected):,} organizations in the database for {args.user}\n")
    print("| client | count | count (s) | copy (s) | copied | missing / extra / twice | agrees |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        if "error" in r:
            print(f"| {name} | – | – | – | – | – | error: {r['error']} |")
            continue
        count_s = "–" if r["count_s"] is None else f"{r['count_s']:.2f}"
        print(
            f"| {r['client']} | {r['count']:,} | {count_s} | {r['copy_s']:.1f} | {r['copied']:,} | "
            f"{r['missing']} / {r['extra']} / {r['duplicates']} | {'yes' if r['agrees'] else 'NO'} |"
        )
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"expected": len(expected), "results": results}, ensure_ascii=False, indent=2))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
