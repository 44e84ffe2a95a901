"""The optional geocoder (issue 21, 1c), against a local server answering in each provider's
documented format: an answer is taken only inside the stated area (or the city), AMap's GCJ-02
is converted, answers are cached so that a re-import asks nothing, and a provider that is down,
slow, over quota or talking nonsense leaves those rows to their stated area with the reason."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse

import numpy as np
import pytest
import shapely
from werkzeug.serving import make_server

from app.config import from_env
from app.intake import import_file
from app.intake.geocode import Geocoder, from_config
from app.store import Store
from geo.crs import wgs84_to_gcj02

from .test_intake import snapshot
from .test_locate import JINDING, NORTH, city, stored_positions, write_ledger  # noqa: F401 (city: a fixture)

#: What the fake provider knows: address → (lon, lat, level) in WGS-84, or a misbehaviour.
KNOWN = {
    "五华区圆通路1号": (102.65, 25.05, "门址"),
    "圆通路2号": (102.65, 24.95, "门址"),
    "北京市东城区东华门大街1号": (116.40, 39.90, "门址"),
    "翠湖路4号": (102.65, 24.95, "区县"),
}


class FakeProvider:
    """天地图 and AMap geocoders on the loopback: their paths, parameters and answer shapes."""

    def __init__(self):
        self.asked: list[str] = []
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __call__(self, environ, start_response):
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        tianditu = environ["PATH_INFO"] == "/geocoder"
        address = json.loads(query["ds"][0])["keyWord"] if tianditu else query["address"][0]
        assert query["tk" if tianditu else "key"] == ["test-key"]
        self.asked.append(address)
        status, body = self._answer(address, tianditu)
        start_response(status, [("Content-Type", "application/json; charset=utf-8")])
        return [body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()]

    def _answer(self, address: str, tianditu: bool):
        if address == "超限路":
            if tianditu:
                return "200 OK", {"msg": "日访问量超过限制", "status": "1"}
            return "200 OK", {"status": "0", "info": "DAILY_QUERY_OVER_LIMIT", "infocode": "10003"}
        if address == "慢路":
            time.sleep(1.0)
        if address == "乱码路":
            return "200 OK", b"<html>502 Bad Gateway</html>"
        if address == "巨大路":
            return "200 OK", b"[" + b"1," * 100_000 + b"1]"
        if address == "坏点路":
            return "200 OK", _found(tianditu, "NaN", "25.05", "门址")
        if address == "故障路":
            return "500 Internal Server Error", {"status": "0"}
        if address not in KNOWN:
            if tianditu:
                return "200 OK", {"msg": "无结果", "searchVersion": "6.4.9V", "status": "101"}
            return "200 OK", {"status": "1", "info": "OK", "infocode": "10000", "count": "0", "geocodes": []}
        lon, lat, level = KNOWN[address]
        if not tianditu:
            # AMap answers in GCJ-02.
            gx, gy = wgs84_to_gcj02(np.array([lon]), np.array([lat]))
            lon, lat = float(gx[0]), float(gy[0])
        return "200 OK", _found(tianditu, lon, lat, level)

    def close(self):
        self.server.shutdown()


def _found(tianditu: bool, lon, lat, level: str) -> dict:
    if tianditu:
        location = {"score": 100, "level": level, "lon": str(lon), "lat": str(lat), "keyWord": ""}
        return {"msg": "ok", "location": location, "searchVersion": "6.4.9V", "status": "0"}
    return {
        "status": "1",
        "info": "OK",
        "infocode": "10000",
        "count": "1",
        "geocodes": [{"formatted_address": "", "adcode": "530102", "location": f"{lon},{lat}", "level": level}],
    }


@pytest.fixture
def provider():
    fake = FakeProvider()
    yield fake
    fake.close()


def _geocoder(provider: FakeProvider, name: str, **limits) -> Geocoder:
    path = "/geocoder" if name == "tianditu" else "/v3/geocode/geo"
    return Geocoder(name, "test-key", url=provider.url + path, rate=1000.0, **limits)


ROWS = (
    "G1,圆通公司,企业,五华区圆通路1号,,,530102001002,,",
    # Answered inside 翠湖社区, but the ledger says 圆通社区: not taken.
    "G2,错位公司,企业,圆通路2号,,,530102001002,,",
    # An address in another city, no area stated.
    "G3,外地公司,企业,北京市东城区东华门大街1号,,,,,",
    # Answered only as exactly as a district.
    "G4,粗略公司,企业,翠湖路4号,,,530102001001,,",
    # A stored place's name: placed by it, the geocoder is not asked.
    "G5,楼宇公司,企业,金鼎大厦5楼,,,,,",
    "G6,无果公司,企业,无名路6号,,,,,",
)


def test_answers_are_taken_inside_the_stated_area_and_a_reimport_asks_nothing(city: Store, tmp_path, provider):  # noqa: F811
    geocoder = _geocoder(provider, "tianditu")
    report = import_file(city, "orgs", write_ledger(tmp_path, *ROWS), geocoder=geocoder)
    assert report.ok, report.issues
    placed = stored_positions(city)
    assert placed["located_by"].to_dict() == {
        "G1": "geocoder",
        "G2": "community",
        "G3": "unplaced",
        "G4": "community",
        "G5": "address",
        "G6": "unplaced",
    }
    assert placed.geometry["G1"].equals(shapely.Point(102.65, 25.05)) and placed.loc["G1", "location_precision_m"] == 30
    assert NORTH.contains(placed.geometry["G2"]) and JINDING.contains(placed.geometry["G5"])
    warned = {(i.row, i.en.split(":")[0]) for i in report.issues if i.column == "address" and "geocoder" in i.en}
    assert warned == {
        (3, "the geocoder's answer lies outside the stated community or street"),
        (4, "the geocoder's answer lies outside the city's areas (an address elsewhere?)"),
        (5, "the geocoder's answer is no finer than a district or city"),
    }
    assert sorted(provider.asked) == sorted(r.split(",")[3] for r in ROWS if not r.startswith("G5"))
    # The same ledger again, spelt a little differently: the cache answers every address.
    asked = len(provider.asked)
    respelt = [r.replace("圆通路1号", "圆通路１号") for r in ROWS]
    again = import_file(city, "orgs", write_ledger(tmp_path, *respelt), geocoder=geocoder)
    assert again.ok and len(provider.asked) == asked and again.unchanged == len(ROWS) - 1
    assert stored_positions(city)["located_by"].to_dict() == placed["located_by"].to_dict()


def test_amap_answers_in_gcj02_are_stored_in_wgs84(city: Store, tmp_path, provider):  # noqa: F811
    report = import_file(city, "orgs", write_ledger(tmp_path, ROWS[0]), geocoder=_geocoder(provider, "amap"))
    assert report.ok, report.issues
    point = stored_positions(city).geometry["G1"]
    assert (point.x, point.y) == pytest.approx((102.65, 25.05), abs=1e-6)


@pytest.mark.parametrize("name", ["tianditu", "amap"])
def test_a_provider_down_slow_over_quota_or_talking_nonsense_costs_only_those_rows(
    city: Store,  # noqa: F811
    tmp_path,
    provider,
    name,
):
    assert import_file(city, "orgs", write_ledger(tmp_path, "K1,已有公司,企业,,102.61,24.91,,,")).ok
    kept = snapshot(city)["organizations"]
    bad = ("超限路", "慢路", "乱码路", "巨大路", "坏点路", "故障路")
    rows = [f"B{i},问题公司{i},企业,{a},,,530102001002,," for i, a in enumerate(bad)]
    geocoder = _geocoder(provider, name, timeout_s=0.3)
    report = import_file(
        city, "orgs", write_ledger(tmp_path, "K1,已有公司,企业,,102.61,24.91,,,", *rows), geocoder=geocoder
    )
    assert report.ok and report.inserted == len(bad) and report.unchanged == 1
    reasons = {i.row: i.en for i in report.issues if i.column == "address"}
    assert set(reasons) == set(range(3, 3 + len(bad)))
    assert "DAILY_QUERY_OVER_LIMIT" in reasons[3] or "日访问量" in reasons[3]
    assert "timed out" in reasons[4] and "not JSON" in reasons[5] and "too large" in reasons[6]
    assert "outside China" in reasons[7] and "HTTP 500" in reasons[8]
    assert set(stored_positions(city)["located_by"][[f"B{i}" for i in range(len(bad))]]) == {"community"}
    assert snapshot(city)["organizations"] != kept  # written, and K1 is where it was:
    assert stored_positions(city).geometry["K1"].equals(shapely.Point(102.61, 24.91))
    # Failures are not remembered: the next import asks again.
    asked = len(provider.asked)
    import_file(city, "orgs", write_ledger(tmp_path, *rows), geocoder=geocoder)
    assert len(provider.asked) == asked + len(bad)


def test_requests_are_spaced_by_the_rate_and_capped_per_import(city: Store, tmp_path, provider):  # noqa: F811
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    geocoder = Geocoder(
        "tianditu", "test-key", url=provider.url + "/geocoder", rate=2.0, max_requests=3,
        clock=lambda: now[0], sleep=sleep,
    )  # fmt: skip
    rows = [f"R{i},公司{i},企业,无名路{i}号,,,530102001002,," for i in range(4)]
    report = import_file(city, "orgs", write_ledger(tmp_path, *rows), geocoder=geocoder)
    assert report.ok and len(provider.asked) == 3
    assert slept == pytest.approx([0.5, 0.5])
    capped = [i for i in report.issues if "over 3 requests" in i.en]
    assert [i.row for i in capped] == [5]


def test_the_settings_are_checked_at_start(monkeypatch, tmp_path):
    monkeypatch.setenv("HONGTU_GEOCODER", "baidu")
    with pytest.raises(ValueError, match="HONGTU_GEOCODER"):
        from_env(str(tmp_path))
    monkeypatch.setenv("HONGTU_GEOCODER", "amap")
    with pytest.raises(ValueError, match="HONGTU_GEOCODER_KEY"):
        from_env(str(tmp_path))
    monkeypatch.setenv("HONGTU_GEOCODER", "tianditu")
    monkeypatch.setenv("HONGTU_TIANDITU_KEY", "tk")
    geocoder = from_config(from_env(str(tmp_path)))
    assert geocoder.provider == "tianditu" and geocoder.key == "tk" and geocoder.url.startswith("http://api.tianditu")
    monkeypatch.setenv("HONGTU_GEOCODER", "none")
    assert from_config(from_env(str(tmp_path))) is None
