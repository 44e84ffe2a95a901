"""Uploads cannot read server files, reach the network, run a file's SQL, or exhaust the
server; a damaged or hostile file gets the bilingual message and changes nothing (issue 19,
findings 1, 13 and 14)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.intake import import_file, readers, spatial_file
from app.intake.issues import IntakeError
from app.store import Store

from ..test_intake import snapshot

ATTACKS = Path(__file__).resolve().parent.parent / "data" / "attacks"


def _refused(store: Store, kind: str, path: Path, *words: str) -> str:
    before = snapshot(store)
    report = import_file(store, kind, path)
    assert not report.ok and not report.written
    assert snapshot(store) == before
    message = " ".join(str(i) for i in report.errors)
    assert all(w in message for w in words), message
    return message


@pytest.mark.parametrize("name", ["vrt_reads_passwd.geojson", "vrt_reads_passwd.gpkg"])
def test_an_ogr_vrt_named_as_geojson_or_geopackage_reads_no_server_file(loaded, tmp_path, name):
    upload = shutil.copy(ATTACKS / name, tmp_path / f"ledger{Path(name).suffix}")
    message = _refused(loaded, "orgs", Path(upload), "文件内容不是")
    assert "root:" not in message and "/bin/" not in message


def test_gdal_in_the_worker_has_only_the_files_driver_and_no_network(tmp_path):
    # Past the content check (a VRT saved as .vrt is handed straight to the worker): GDAL
    # there knows no VRT driver, so it cannot open the file, let alone what it names.
    target = tmp_path / "x.vrt"
    shutil.copy(ATTACKS / "vrt_reads_passwd.geojson", target)
    out = tmp_path / "out.pickle"
    done = subprocess.run(
        [sys.executable, "-I", str(spatial_file.WORKER), str(target), "GeoJSON", "", str(out), str(2 * 1024**3)],
        env=spatial_file._worker_env("GeoJSON"),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0 and not out.exists()
    assert b"root:" not in done.stdout + done.stderr


class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self):  # noqa: N802
        _Recorder.hits.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563]]]')

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Recorder.hits.clear()
    yield server.server_port
    server.shutdown()


def test_an_upload_makes_the_server_request_no_url(loaded, tmp_path, listener):
    vrt = (ATTACKS / "vrt_fetches_url.geojson").read_text().replace("127.0.0.1:9", f"127.0.0.1:{listener}")
    (tmp_path / "a.geojson").write_text(vrt)
    _refused(loaded, "orgs", tmp_path / "a.geojson")
    link = (ATTACKS / "geojson_crs_link.geojson").read_text().replace("127.0.0.1:9", f"127.0.0.1:{listener}")
    (tmp_path / "b.geojson").write_text(link)
    import_file(loaded, "orgs", tmp_path / "b.geojson", dry_run=True)
    assert _Recorder.hits == []


@pytest.mark.parametrize(("name", "words"), [("trigger.gpkg", "触发器"), ("view.gpkg", "视图")])
def test_a_geopackage_with_a_trigger_or_view_is_refused_unread(loaded, tmp_path, name, words):
    _refused(loaded, "areas", Path(shutil.copy(ATTACKS / name, tmp_path / "areas.gpkg")), words)


def test_a_spatial_file_with_attributes_only_is_refused_with_the_reason(loaded, tmp_path):
    upload = Path(shutil.copy(ATTACKS / "attributes_only.gpkg", tmp_path / "areas.gpkg"))
    _refused(loaded, "areas", upload, "没有几何")


def test_a_zip_with_a_bad_crc_is_refused_not_a_server_error(loaded, tmp_path):
    _refused(loaded, "orgs", Path(shutil.copy(ATTACKS / "bad_crc.zip", tmp_path / "orgs.zip")), "已损坏")


@pytest.mark.parametrize("name", ["billion_laughs.xlsx", "external_entity.xlsx"])
def test_an_xlsx_with_entities_is_refused_without_expanding_them(loaded, tmp_path, name):
    message = _refused(loaded, "orgs", Path(shutil.copy(ATTACKS / name, tmp_path / "orgs.xlsx")), "不安全的 XML")
    assert "lollol" not in message and "root:" not in message


def test_a_prj_is_read_as_text_never_as_a_path(tmp_path):
    shp = tmp_path / "a.shp"
    shp.write_bytes((9994).to_bytes(4, "big") + b"\0" * 96)
    (tmp_path / "a.prj").write_text("/etc/passwd")
    with pytest.raises(IntakeError, match=r"\.prj"):
        spatial_file.read_spatial(shp)
    (tmp_path / "a.prj").unlink()
    (tmp_path / "a.cpg").write_text("/etc/passwd")
    with pytest.raises(IntakeError, match=r"\.cpg"):
        spatial_file.read_spatial(shp)


def test_a_zip_expanding_past_the_limit_is_refused_before_unpacking(loaded, tmp_path, monkeypatch):
    import zipfile

    monkeypatch.setattr(readers, "ZIP_MAX_BYTES", 1_000_000)
    path = tmp_path / "orgs.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        # Each part under the ratio limit, all of them over the total.
        for n in range(8):
            archive.writestr(f"part{n}.dbf", bytes(range(256)) * 700)
        archive.writestr("orgs.shp", b"x")
    _refused(loaded, "orgs", path, "解压后过大")


def test_concurrent_unpacking_is_bounded_and_the_next_is_told_to_retry(loaded, tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "EXTRACT_WAIT_SECONDS", 0.1)
    taken = [readers._EXTRACTIONS.acquire(timeout=1) for _ in range(readers.MAX_EXTRACTIONS)]
    try:
        assert all(taken)
        _refused(loaded, "orgs", Path(shutil.copy(ATTACKS / "bad_crc.zip", tmp_path / "orgs.zip")), "请稍后重试")
    finally:
        for _ in taken:
            readers._EXTRACTIONS.release()


def _building(tmp_path: Path, place_id: str, name: str, ring: list) -> Path:
    """A places GeoJSON of one building whose outline is ``ring``."""
    feature = {
        "type": "Feature",
        "properties": {"place_id": place_id, "name": name, "kind": "building"},
        "geometry": {"type": "Polygon", "coordinates": [ring]},
    }
    path = tmp_path / "places.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))
    return path


def test_a_million_vertex_polygon_is_refused_quickly_by_its_row(loaded, tmp_path):
    import time

    import numpy as np

    angles = np.linspace(0, 2 * np.pi, 1_000_000)
    ring = np.column_stack([102.62 + 0.01 * np.cos(angles), 24.97 + 0.01 * np.sin(angles)]).round(7).tolist()
    ring[-1] = ring[0]
    path = _building(tmp_path, "H1", "巨型楼宇", ring)
    started = time.perf_counter()
    _refused(loaded, "places", path, "顶点过多")
    assert time.perf_counter() - started < 20


def test_a_small_polygon_that_crosses_itself_everywhere_is_refused_in_bounded_time(loaded, tmp_path, monkeypatch):
    import time

    import numpy as np

    from app.intake import repair

    monkeypatch.setattr(repair, "REPAIR_SECONDS", 3)
    # 600 random vertices: GEOS's make_valid nodes ~10^5 crossings (minutes, gigabytes).
    ring = (np.random.default_rng(1).random((600, 2)) * 0.02 + [102.61, 24.96]).round(7).tolist()
    ring.append(ring[0])
    path = _building(tmp_path, "X1", "乱麻", ring)
    started = time.perf_counter()
    _refused(loaded, "places", path, "无法自动修复")
    assert time.perf_counter() - started < 15


def test_a_workbook_is_parsed_outside_the_web_worker(loaded, tmp_path, monkeypatch):
    import pandas as pd

    def refuse(*args, **kwargs):
        raise AssertionError("an upload's workbook was parsed inside the web worker")

    monkeypatch.setattr(pd, "read_excel", refuse)
    monkeypatch.setattr(pd, "ExcelFile", refuse)
    pd.DataFrame({"org_id": ["X1", "X2"], "name": ["甲", "乙"]}).to_excel(tmp_path / "orgs.xlsx", index=False)
    raw = readers.read_table(tmp_path / "orgs.xlsx")
    assert raw.frame.to_dict("list") == {"org_id": ["X1", "X2"], "name": ["甲", "乙"]}


def test_a_workbook_slower_to_parse_than_the_limit_is_stopped_and_changes_nothing(loaded, tmp_path, monkeypatch):
    # A million cells in 120 KB of zip: the child is stopped at the limit, the upload refused.
    monkeypatch.setattr(readers, "XLSX_SECONDS", 1)
    upload = Path(shutil.copy(ATTACKS / "million_cells.xlsx", tmp_path / "orgs.xlsx"))
    _refused(loaded, "orgs", upload, "超过 1 秒", "longer than 1 s")


def test_a_workbook_expanding_past_the_limit_is_refused_before_parsing(loaded, tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "ZIP_MAX_BYTES", 1_000_000)
    upload = Path(shutil.copy(ATTACKS / "million_cells.xlsx", tmp_path / "orgs.xlsx"))
    _refused(loaded, "orgs", upload, "解压后过大")


def test_a_missing_sheet_is_named_with_the_sheets_there_are(tmp_path):
    import pandas as pd

    pd.DataFrame({"org_id": ["X1"]}).to_excel(tmp_path / "orgs.xlsx", index=False, sheet_name="台账")
    with pytest.raises(IntakeError, match="找不到工作表 '汇总'，现有：台账"):
        readers.read_table(tmp_path / "orgs.xlsx", sheet="汇总")
