"""Hongtu's ``/api`` beside pygeoapi, QGIS Server and MapServer, on one PostGIS table.

    scripts/bench --peers [--peer-orgs 100000] [--peer-boxes 500] [--peer-rounds 3]

The demo city is loaded into a PostGIS database of its own and analysed; every server then
serves its organizations as OGC API – Features with 2 worker processes:

- Hongtu under gunicorn (``/api``, an admin's API token);
- pygeoapi (PyPI, its PostgreSQL provider) under gunicorn;
- QGIS Server (Debian's ``qgis-server``, the ``wfs3`` API of a project holding the layer) and
  MapServer (Debian's ``mapserv``, its ``ogcapi``), each as FastCGI under ``spawn-fcgi`` and
  ``multiwatch`` behind one nginx.

The peers read a view of the organizations table with the properties Hongtu serves from it
(their own answers do not join the analysis, Hongtu's do). Each round draws new street-sized
boxes (2 km) around organizations, the same for every server, and runs them against each
server in turn — the order rotating between rounds — with 1 and 8 concurrent clients, each
box asked once (so Hongtu's kept pages never answer). Reported per server and workload: p50 /
p95 latency, requests per second, errors, CPU per request of the server's processes (nginx
included for FastCGI) and of PostgreSQL's, and the ratio of the peer's figure to Hongtu's. It
also checks, on sample boxes, that every server returns the same organizations as Hongtu,
whether ``offset`` pages on, and how long Debian's GDAL (3.6) takes to count the collection.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from app.services.analysis import Parameters, run_analysis
from app.services.demo import load_demo
from app.store import Store, features
from app.store.admin import ensure_postgis_database
from tests.conftest import Gunicorn, api_token

ROOT = Path(__file__).resolve().parent.parent
#: Properties of the organizations table that Hongtu's items carry (those of the API's collection
#: read from the base table ``t``, not from the analysis), served by the peers' view.
PROPERTIES = tuple(
    name for name, (sql, _) in features.COLLECTIONS["organizations"].properties.items() if sql == f"t.{name}"
)
VIEW = "peer_organizations"
#: Half the side of a box (degrees): about 2 km × 2 km at Kunming's latitude.
HALF_BOX = 0.01
LIMIT = 1000
#: Boxes whose answers are compared between the servers.
SAMPLE_BOXES = 20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@dataclass
class Server:
    """One OGC API – Features server of the organizations: its items URL, how to authenticate,
    the processes whose CPU it spends, and how to stop it."""

    name: str
    api: str
    items: str
    headers: dict = field(default_factory=dict)
    #: Extra query parameters it needs for GeoJSON.
    extra: dict = field(default_factory=dict)
    pids: list[int] = field(default_factory=list)
    stop: list = field(default_factory=list)

    def url(self, box, limit: int = LIMIT, offset: int = 0) -> str:
        query = {"bbox": ",".join(f"{v:.5f}" for v in box), "limit": limit, "offset": offset, **self.extra}
        return f"{self.items}?{urllib.parse.urlencode(query)}"

    def get(self, url: str) -> dict:
        request = urllib.request.Request(url, headers=self.headers)
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())

    def close(self) -> None:
        for step in reversed(self.stop):
            step()


def _tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return found


def cpu_seconds(roots: list[int]) -> float:
    """CPU time (user + system, s) of the processes under ``roots``, including children they reaped."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for root in roots:
        for pid in _tree(root):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / ticks


def postmaster_pid() -> int:
    """PostgreSQL's postmaster: its tree holds every backend, and the CPU of those that ended."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if (entry / "comm").read_text().strip() == "postgres" and (
                    Path(f"/proc/{parent}/comm").read_text().strip() != "postgres"
                ):
                    return int(entry.name)
            except OSError:
                continue
    raise RuntimeError("PostgreSQL is not running on this machine")


def prepare(url: str, n: int) -> Store:
    """A fresh database holding the analysed demo city and the peers' view of its organizations."""
    ensure_postgis_database(url, fresh=True)
    store = Store(url)
    store.init_schema()
    load_demo(store, n_orgs=n, seed=1)
    run_analysis(store, Parameters())
    with store.connect() as conn:
        conn.execute(text(f"CREATE VIEW {VIEW} AS SELECT id, {', '.join(PROPERTIES)}, geom FROM organizations"))
    return store


def start_hongtu(store: Store) -> Server:
    server = Gunicorn(store.url)
    token = api_token(store)
    return Server(
        "Hongtu",
        f"{server.url}/api",
        f"{server.url}/api/collections/organizations/items",
        headers={"Authorization": f"Bearer {token}"},
        pids=[server.process.pid],
        stop=[server.close],
    )


def _database(url: str) -> dict:
    parts = urllib.parse.urlparse(url.replace("+psycopg", ""))
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "dbname": parts.path.lstrip("/"),
        "user": parts.username or "postgres",
        "password": parts.password or "",
    }


def start_pygeoapi(url: str, work: Path) -> Server:
    db, port = _database(url), free_port()
    contact = dict.fromkeys(
        ("name", "position", "address", "city", "stateorprovince", "postalcode", "country", "phone", "fax", "hours"),
        "bench",
    )
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": 10000},
            "map": {"url": "http://127.0.0.1/{z}/{x}/{y}.png", "attribution": "none"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "bench",
                "description": "bench",
                "keywords": ["bench"],
                "keywords_type": "theme",
                "terms_of_service": "http://127.0.0.1",
                "url": "http://127.0.0.1",
            },
            "license": {"name": "none", "url": "http://127.0.0.1"},
            "provider": {"name": "bench", "url": "http://127.0.0.1"},
            "contact": {**contact, "email": "bench@127.0.0.1", "url": "http://127.0.0.1", "role": "pointOfContact"},
        },
        "resources": {
            "organizations": {
                "type": "collection",
                "title": "organizations",
                "description": "organizations",
                "keywords": ["organizations"],
                "extents": {"spatial": {"bbox": [-180, -90, 180, 90]}},
                "providers": [
                    {
                        "type": "feature",
                        "name": "PostgreSQL",
                        "data": {**db, "search_path": ["public"]},
                        "id_field": "org_id",
                        "table": VIEW,
                        "geom_field": "geom",
                    }
                ],
            }
        },
    }
    # JSON is YAML: pygeoapi reads it as its configuration.
    (work / "pygeoapi.yml").write_text(json.dumps(config))
    venv = ROOT / ".venv-pygeoapi" / "bin"
    env = {
        **os.environ,
        "PYGEOAPI_CONFIG": str(work / "pygeoapi.yml"),
        "PYGEOAPI_OPENAPI": str(work / "pygeoapi-openapi.yml"),
    }
    subprocess.run(
        [
            str(venv / "pygeoapi"),
            "openapi",
            "generate",
            env["PYGEOAPI_CONFIG"],
            "--output-file",
            env["PYGEOAPI_OPENAPI"],
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    process = subprocess.Popen(
        [str(venv / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket", "pygeoapi.flask_app:APP"],
        env=env,
        # Not from the project's directory: gunicorn would read Hongtu's gunicorn.conf.py.
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=(work / "pygeoapi.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base + "/?f=json")
    except RuntimeError:
        raise RuntimeError((work / "pygeoapi.log").read_text()[-2000:]) from None
    return Server(
        "pygeoapi",
        base,
        f"{base}/collections/organizations/items",
        extra={"f": "json"},
        pids=[process.pid],
        stop=[lambda: (process.terminate(), process.wait(30))],
    )


QGIS_PROJECT = """
import sys
from qgis.core import QgsApplication, QgsProject, QgsVectorLayer
dsn, view, path = sys.argv[1:4]
app = QgsApplication([], False)
app.initQgis()
source = f"{dsn} key='id' srid=4326 type=Point table=\\"public\\".\\"{view}\\" (geom)"
layer = QgsVectorLayer(source, "organizations", "postgres")
if not layer.isValid():
    sys.exit(layer.error().summary())
project = QgsProject.instance()
project.addMapLayer(layer)
project.writeEntry("WFSLayers", "/", [layer.id()])
project.writeEntry("WFSLayersPrecision", "/" + layer.id(), 8)
sys.exit(0 if project.write(path) else "the project was not written")
"""

MAPFILE = """MAP
  NAME "orgs"
  EXTENT 97 21 106 29.5
  PROJECTION "init=epsg:4326" END
  WEB
    METADATA
      "oga_enable_request" "*"
      "ows_enable_request" "*"
      "oga_onlineresource" "{base}/orgs/ogcapi"
      "oga_html_template_directory" "/usr/share/mapserver/ogcapi/templates/html-plain/"
      "ows_title" "orgs"
      "ows_srs" "EPSG:4326"
    END
  END
  LAYER
    NAME "organizations"
    TYPE POINT
    STATUS ON
    TEMPLATE "query"
    CONNECTIONTYPE POSTGIS
    CONNECTION "host={host} port={port} dbname={dbname} user={user}"
    DATA "geom FROM {view} USING UNIQUE id USING SRID=4326"
    PROJECTION "init=epsg:4326" END
    METADATA
      "ows_title" "organizations"
      "oga_enable_request" "*"
      "gml_include_items" "all"
      "gml_exclude_items" "id"
      "gml_featureid" "org_id"
      "gml_types" "auto"
    END
  END
END
"""

NGINX = """worker_processes 2;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 256; }}
http {{
  access_log off;
  client_body_temp_path {work}/body;
  fastcgi_temp_path {work}/fastcgi;
  proxy_temp_path {work}/proxy;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  {servers}
}}
"""

NGINX_SERVER = """server {{
    listen 127.0.0.1:{port};
    server_name 127.0.0.1;
    location / {{
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_NAME "";
      fastcgi_param PATH_INFO $uri;
      fastcgi_pass unix:{socket};
    }}
  }}"""


def _spawn_fastcgi(socket_path: Path, program: str, env: dict) -> int:
    """Start ``program`` as 2 FastCGI processes on a socket; the pid of their supervisor."""
    pid_file = socket_path.with_suffix(".pid")
    subprocess.run(
        ["spawn-fcgi", "-s", str(socket_path), "-M", "0666", "-P", str(pid_file), "--"]
        + ["/usr/bin/multiwatch", "-f", "2", "--", program],
        env=env,
        check=True,
        capture_output=True,
    )
    return int(pid_file.read_text())


def _stop(pid: int) -> None:
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.1)


def start_fastcgi_peers(url: str, work: Path) -> list[Server]:
    """QGIS Server and MapServer as FastCGI behind one nginx."""
    db = _database(url)
    qgis_port, mapserver_port = free_port(), free_port()
    project = work / "organizations.qgs"
    dsn = f"dbname='{db['dbname']}' host={db['host']} port={db['port']} user='{db['user']}'"
    qt = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(work)}
    subprocess.run(["/usr/bin/python3", "-c", QGIS_PROJECT, dsn, VIEW, str(project)], env=qt, check=True)
    qgis = _spawn_fastcgi(
        work / "qgis.sock", "/usr/lib/cgi-bin/qgis_mapserv.fcgi", {**qt, "QGIS_PROJECT_FILE": str(project)}
    )
    mapfile, config = work / "orgs.map", work / "mapserver.conf"
    mapfile.write_text(MAPFILE.format(base=f"http://127.0.0.1:{mapserver_port}", view=VIEW, **db))
    config.write_text(
        f'CONFIG\n  ENV\n    MS_MAP_PATTERN "^{work}/"\n  END\n  MAPS\n    "orgs" "{mapfile}"\n  END\nEND\n'
    )
    mapserver = _spawn_fastcgi(
        work / "mapserver.sock", "/usr/lib/cgi-bin/mapserv", {**os.environ, "MAPSERVER_CONFIG_FILE": str(config)}
    )
    servers = "\n  ".join(
        NGINX_SERVER.format(port=port, socket=work / sock)
        for port, sock in ((qgis_port, "qgis.sock"), (mapserver_port, "mapserver.sock"))
    )
    (work / "nginx.conf").write_text(NGINX.format(work=work, servers=servers))
    subprocess.run(["nginx", "-c", str(work / "nginx.conf")], check=True)
    nginx = int((work / "nginx.pid").read_text())
    qgis_base, mapserver_base = f"http://127.0.0.1:{qgis_port}/wfs3", f"http://127.0.0.1:{mapserver_port}/orgs/ogcapi"
    wait_until_up(qgis_base + "/collections?f=json")
    wait_until_up(mapserver_base + "/collections?f=json")
    # nginx serves both: its CPU is counted with each (only one is asked at a time).
    return [
        Server(
            "QGIS Server",
            qgis_base,
            f"{qgis_base}/collections/organizations/items",
            extra={"f": "json"},
            pids=[qgis, nginx],
            stop=[lambda: _stop(qgis)],
        ),
        Server(
            "MapServer",
            mapserver_base,
            f"{mapserver_base}/collections/organizations/items",
            extra={"f": "json"},
            pids=[mapserver, nginx],
            stop=[lambda: _stop(nginx), lambda: _stop(mapserver)],
        ),
    ]


def boxes_around(store: Store, count: int, seed: int) -> list[tuple[float, float, float, float]]:
    """Street-sized boxes centred on organizations drawn at random: where the data is."""
    with store.connect() as conn:
        points = conn.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM organizations WHERE geom IS NOT NULL")).all()
    rnd = random.Random(seed)
    # Rounded as the URLs write them, so a box is the same on both sides of the request.
    return [
        tuple(round(v, 5) for v in (x - HALF_BOX, y - HALF_BOX, x + HALF_BOX, y + HALF_BOX))
        for x, y in rnd.sample(points, count)
    ]


def workload(server: Server, boxes, clients: int) -> dict:
    """Every box once, shared among ``clients`` concurrent clients: latencies, errors, CPU."""
    urls = [server.url(box) for box in boxes]

    def one(client: int) -> tuple[list[float], int]:
        times, errors = [], 0
        for url in urls[client::clients]:
            started = time.perf_counter()
            try:
                request = urllib.request.Request(url, headers=server.headers)
                with urllib.request.urlopen(request, timeout=120) as answer:
                    answer.read()
            except OSError:
                errors += 1
                continue
            times.append((time.perf_counter() - started) * 1000)
        return times, errors

    database = [postmaster_pid()]
    cpu_before, db_before = cpu_seconds(server.pids), cpu_seconds(database)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one, range(clients)))
    wall = time.perf_counter() - started
    return {
        "times": [t for times, _ in done for t in times],
        "errors": sum(e for _, e in done),
        "wall_s": wall,
        "cpu_s": cpu_seconds(server.pids) - cpu_before,
        "db_cpu_s": cpu_seconds(database) - db_before,
    }


def _ids(answer: dict) -> list[str]:
    """The organizations' identifiers of a page, whichever way a server writes them."""
    return [str((f.get("properties") or {}).get("org_id") or f.get("id")) for f in answer["features"]]


def agreement(servers: list[Server], boxes) -> dict:
    """For each peer, over sample boxes: features it returns that Hongtu does not and the
    reverse, with how far outside the box the extra ones lie, and whether ``offset`` pages on."""
    reference, *peers = servers
    found = {}
    for peer in peers:
        missing = extra = 0
        outside_m = 0.0
        for box in boxes:
            ours = set(_ids(reference.get(reference.url(box, limit=10000))))
            answer = peer.get(peer.url(box, limit=10000))
            theirs = set(_ids(answer))
            missing += len(ours - theirs)
            extra += len(theirs - ours)
            for feature in answer["features"]:
                x, y = feature["geometry"]["coordinates"][:2]
                beyond = max(box[0] - x, x - box[2], box[1] - y, y - box[3], 0)
                outside_m = max(outside_m, beyond * 111_000)
        first, second = (set(_ids(peer.get(peer.url(boxes[0], limit=10, offset=o)))) for o in (0, 10))
        found[peer.name] = {
            "boxes": len(boxes),
            "missing": missing,
            "extra": extra,
            "farthest_outside_m": round(outside_m, 1),
            "offset_pages_on": bool(first) and not (first & second),
        }
    return found


def gdal_count(server: Server) -> dict:
    """Debian's ogrinfo counting the collection: seconds and the count it gives."""
    env = {**os.environ}
    if "Authorization" in server.headers:
        env["GDAL_HTTP_HEADERS"] = f"Authorization: {server.headers['Authorization']}"
    started = time.perf_counter()
    done = subprocess.run(
        ["ogrinfo", "-ro", "-so", f"OAPIF:{server.api}", "organizations"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("Feature Count:")]
    return {"seconds": round(seconds, 2), "count": int(lines[0].split(":")[1]) if lines else None}


def summary(runs: list[dict]) -> dict:
    times = sorted(t for run in runs for t in run["times"])
    requests = len(times) + sum(run["errors"] for run in runs)
    wall = sum(run["wall_s"] for run in runs)
    return {
        "p50_ms": round(statistics.median(times), 1) if times else None,
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1) if times else None,
        "requests_per_s": round(requests / wall, 1),
        "errors": sum(run["errors"] for run in runs),
        "cpu_ms_per_request": round(1000 * sum(run["cpu_s"] for run in runs) / requests, 2),
        "db_cpu_ms_per_request": round(1000 * sum(run["db_cpu_s"] for run in runs) / requests, 2),
    }


def run(postgres_url: str, n: int, boxes: int, rounds: int) -> dict:
    """Start every server, measure them, stop them; the figures as a dict."""
    for program in ("spawn-fcgi", "multiwatch", "nginx", "ogrinfo", "/usr/lib/cgi-bin/mapserv"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing: scripts/setup.sh peers installs the peers")
    url = postgres_url.rsplit("/", 1)[0] + "/hongtu_bench_peers"
    print(f"== peers: {n:,} organizations in {url}", flush=True)
    store = prepare(url, n)
    servers: list[Server] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        work.chmod(0o755)  # nginx's workers reach the FastCGI sockets in it
        try:
            # One by one, so that those started before a failure are stopped too.
            servers.append(start_hongtu(store))
            servers.append(start_pygeoapi(url, work))
            servers.extend(start_fastcgi_peers(url, work))
            # Warm every server (modules, connections, Hongtu's copies) before timing.
            for server in servers:
                for box in boxes_around(store, 20, seed=99):
                    server.get(server.url(box))
            time.sleep(3)
            runs: dict = {(s.name, c): [] for s in servers for c in (1, 8)}
            for r in range(rounds):
                chosen = boxes_around(store, boxes, seed=r)
                order = servers[r % len(servers) :] + servers[: r % len(servers)]
                for clients in (1, 8):
                    for server in order:
                        runs[(server.name, clients)].append(workload(server, chosen, clients))
                print(f"   round {r + 1} of {rounds} done", flush=True)
            figures = {
                server.name: {f"bbox_{clients}": summary(runs[(server.name, clients)]) for clients in (1, 8)}
                | {"gdal_count": gdal_count(server)}
                for server in servers
            }
            checks = agreement(servers, boxes_around(store, SAMPLE_BOXES, seed=1000))
        finally:
            for server in servers:
                server.close()
            store.engine.dispose()
    return {"organizations": n, "boxes_per_round": boxes, "rounds": rounds, "servers": figures, "agreement": checks}


def table(result: dict) -> str:
    """The figures as Markdown: one row per server and workload, with the ratio to Hongtu."""
    ours = result["servers"]["Hongtu"]
    lines = [
        "| server | clients | p50 / p95 (ms) | requests/s | errors | CPU per request: server / PostgreSQL (ms) "
        "| Hongtu's lead: p50 / requests/s / server+DB CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, figures in result["servers"].items():
        for clients in (1, 8):
            f, h = figures[f"bbox_{clients}"], ours[f"bbox_{clients}"]
            cpu, our_cpu = (
                f["cpu_ms_per_request"] + f["db_cpu_ms_per_request"],
                h["cpu_ms_per_request"] + h["db_cpu_ms_per_request"],
            )
            lead = (
                "–"
                if name == "Hongtu"
                else f"{f['p50_ms'] / h['p50_ms']:.1f}× / {h['requests_per_s'] / f['requests_per_s']:.1f}× / "
                f"{cpu / our_cpu:.1f}×"
            )
            lines.append(
                f"| {name} | {clients} | {f['p50_ms']} / {f['p95_ms']} | {f['requests_per_s']} | {f['errors']} | "
                f"{f['cpu_ms_per_request']} / {f['db_cpu_ms_per_request']} | {lead} |"
            )
    lines += [
        "",
        "| server | GDAL 3.6 `ogrinfo -so` count (s) | count | features differing from Hongtu's "
        "(missing / extra) | farthest extra outside the box (m) | `offset` pages on |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in result["servers"].items():
        check = result["agreement"].get(name)
        gdal = figures["gdal_count"]
        if check is None:
            lines.append(f"| {name} | {gdal['seconds']} | {gdal['count']} | (reference) | – | yes |")
        else:
            lines.append(
                f"| {name} | {gdal['seconds']} | {gdal['count']} | {check['missing']} / {check['extra']} "
                f"in {check['boxes']} boxes | {check['farthest_outside_m']} | "
                f"{'yes' if check['offset_pages_on'] else 'no'} |"
            )
    return "\n".join(lines)
