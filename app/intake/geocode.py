"""An optional online geocoder for ledger rows that name no place Hongtu knows.

Two providers, each through its documented web API:

- ``tianditu`` — 天地图 地理编码: ``GET /geocoder?ds={"keyWord": address}&tk=KEY``, answering
  ``{"status": "0", "location": {"lon", "lat", "level", "score"}}`` in CGCS2000 (taken as
  WGS-84, as everywhere in Hongtu); status ``101`` is "no result" (lbs.tianditu.gov.cn,
  地理编码 API).
- ``amap`` — 高德 Web 服务 地理编码: ``GET /v3/geocode/geo?address=…&key=KEY[&city=…]``,
  answering ``{"status": "1", "geocodes": [{"location": "lon,lat", "level"}]}`` in GCJ-02,
  converted here; ``status "0"`` carries the reason in ``info`` (e.g.
  ``DAILY_QUERY_OVER_LIMIT``) (lbs.amap.com, Web 服务 API 地理/逆地理编码).

Answers are cached in the database by provider and normalised address, found or not, so that
a re-import asks nothing again; failures (time-outs, quota, bad answers) are not cached and
are reported per row. Requests are spaced by the configured rate and capped per import. Every
answer is hostile input: a bounded body, finite coordinates inside China's range, short text.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import insert, select

from geo.crs import gcj02_to_wgs84

from ..store import Store
from ..store.models import geocodes

PROVIDERS = {
    "tianditu": "http://api.tianditu.gov.cn/geocoder",
    "amap": "https://restapi.amap.com/v3/geocode/geo",
}
#: How far (m) a provider's answer may be from the true position, by its word for the match;
#: words absent here (区县, 城市, 省…) say no more than the stated area, and are not taken.
LEVEL_PRECISION_M = {
    "门牌号": 30.0,
    "门址": 30.0,
    "单元号": 20.0,
    "楼栋": 20.0,
    "兴趣点": 50.0,
    "道路交叉路口": 100.0,
    "热点商圈": 300.0,
    "道路": 300.0,
    "村庄": 500.0,
}
#: Largest answer body read (bytes): a geocoder answers one address in well under 4 KB.
MAX_ANSWER_BYTES = 64 * 1024
#: China's extent (degrees), beyond which no answer is believed.
CHINA = (73.0, 3.0, 136.0, 54.0)


class ProviderError(RuntimeError):
    """The provider did not answer usefully: down, too slow, over quota, or nonsense."""


@dataclass
class Geocoder:
    """A configured provider, its limits and the clock that spaces its requests."""

    provider: str
    key: str
    url: str = ""
    #: Requests per second at most.
    rate: float = 3.0
    #: Requests per import at most; rows beyond are reported and left to their stated area.
    max_requests: int = 300
    timeout_s: float = 5.0
    #: AMap's ``city`` (a name or adcode), narrowing its search to the city.
    city: str = ""
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float = field(default=-math.inf, repr=False)

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"HONGTU_GEOCODER must be one of none, {', '.join(PROVIDERS)}, not {self.provider!r}")
        self.url = self.url or PROVIDERS[self.provider]

    def answers(self, store: Store, addresses: pd.Series, keys: pd.Series) -> pd.DataFrame:
        """Positions for ``addresses`` (as written; ``keys`` their normalised forms, aligned).

        Answers one row per address: ``lon``, ``lat`` (WGS-84, NaN when not found), the
        provider's ``level`` and an ``error`` ('' unless the provider failed for it).
        """
        frame = pd.DataFrame({"address": addresses.to_numpy(dtype=object), "key": keys.to_numpy(dtype=object)})
        wanted = frame.drop_duplicates("key").set_index("key")["address"]
        known = self._cached(store, list(wanted.index))
        fresh, errors = [], {}
        for key, address in wanted[~wanted.index.isin(known.index)].items():
            if len(fresh) + len(errors) >= self.max_requests:
                errors[key] = f"本次导入已达地理编码上限 {self.max_requests} 次 / over {self.max_requests} requests"
                continue
            try:
                fresh.append((key, *self._ask(address)))
            except ProviderError as exc:
                errors[key] = str(exc)
        new = pd.DataFrame(fresh, columns=["key", "lon", "lat", "level"]).set_index("key")
        self._remember(store, new)
        table = pd.concat([known, new]).astype({"lon": float, "lat": float})
        out = table.reindex(frame["key"])
        out["error"] = frame["key"].map(pd.Series(errors, dtype=object)).fillna("").to_numpy()
        return out.reset_index(drop=True)

    def _cached(self, store: Store, keys: list[str]) -> pd.DataFrame:
        rows = []
        with store.connect() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                query = select(geocodes.c.address_key, geocodes.c.lon, geocodes.c.lat, geocodes.c.level).where(
                    geocodes.c.provider == self.provider, geocodes.c.address_key.in_(chunk)
                )
                rows.extend(conn.execute(query).all())
        frame = pd.DataFrame(rows, columns=["key", "lon", "lat", "level"]).set_index("key")
        return frame.astype({"lon": float, "lat": float})

    def _remember(self, store: Store, new: pd.DataFrame) -> None:
        if new.empty:
            return
        now = datetime.now(UTC)
        entries = [
            {
                "provider": self.provider,
                "address_key": key,
                "lon": None if math.isnan(lon) else lon,
                "lat": None if math.isnan(lat) else lat,
                "level": level,
                "answered_at": now,
            }
            for key, lon, lat, level in new.itertuples()
        ]
        with store.connect() as conn:
            conn.execute(insert(geocodes), entries)

    def _ask(self, address: str) -> tuple[float, float, str | None]:
        """One request: (lon, lat) in WGS-84 and the level, NaN when the provider found nothing."""
        wait = self._last + 1.0 / self.rate - self.clock()
        if wait > 0:
            self.sleep(wait)
        self._last = self.clock()
        if self.provider == "tianditu":
            query = {"ds": json.dumps({"keyWord": address}, ensure_ascii=False), "tk": self.key}
        else:
            query = {
                "address": address,
                "key": self.key,
                "output": "JSON",
                **({"city": self.city} if self.city else {}),
            }
        body = self._get(f"{self.url}?{urllib.parse.urlencode(query)}")
        return _read_tianditu(body) if self.provider == "tianditu" else _read_amap(body)

    def _get(self, url: str) -> dict:
        request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "Hongtu"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:  # noqa: S310 (configured URL)
                raw = answer.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as exc:
            raise ProviderError(f"地理编码服务返回 HTTP {exc.code} / the geocoder answered HTTP {exc.code}") from exc
        except TimeoutError as exc:
            raise ProviderError("地理编码服务超时 / the geocoder timed out") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise ProviderError("地理编码服务超时 / the geocoder timed out") from exc
            raise ProviderError(f"无法连接地理编码服务 / the geocoder cannot be reached: {reason}") from exc
        if len(raw) > MAX_ANSWER_BYTES:
            raise ProviderError("地理编码服务的应答过大 / the geocoder's answer is too large")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ProviderError("地理编码服务的应答不是 JSON / the geocoder's answer is not JSON") from exc
        if not isinstance(body, dict):
            raise ProviderError("地理编码服务的应答格式不对 / the geocoder's answer has the wrong shape")
        return body


def _text(value, limit: int = 32) -> str:
    return str(value)[:limit] if value is not None else ""


def _point(lon, lat) -> tuple[float, float]:
    try:
        x, y = float(lon), float(lat)
    except (TypeError, ValueError) as exc:
        raise ProviderError("地理编码服务的坐标不是数字 / the geocoder's coordinates are not numbers") from exc
    if not (math.isfinite(x) and math.isfinite(y) and CHINA[0] <= x <= CHINA[2] and CHINA[1] <= y <= CHINA[3]):
        raise ProviderError("地理编码服务的坐标不在中国境内 / the geocoder's coordinates are outside China")
    return x, y


def _read_tianditu(body: dict) -> tuple[float, float, str | None]:
    status = _text(body.get("status"))
    if status == "101":
        return math.nan, math.nan, None
    location = body.get("location")
    if status != "0" or not isinstance(location, dict):
        reason = _text(body.get("msg") or body.get("message") or status, 80)
        raise ProviderError(f"天地图地理编码失败：{reason} / Tianditu geocoding failed: {reason}")
    x, y = _point(location.get("lon"), location.get("lat"))
    return x, y, _text(location.get("level")) or None


def _read_amap(body: dict) -> tuple[float, float, str | None]:
    if _text(body.get("status")) != "1":
        reason = _text(body.get("info") or body.get("infocode"), 80)
        raise ProviderError(f"高德地理编码失败：{reason} / AMap geocoding failed: {reason}")
    found = body.get("geocodes")
    if not isinstance(found, list) or not found:
        return math.nan, math.nan, None
    first = found[0] if isinstance(found[0], dict) else {}
    parts = _text(first.get("location"), 64).split(",")
    if len(parts) != 2:
        raise ProviderError("高德地理编码的坐标格式不对 / AMap's location has the wrong shape")
    gx, gy = _point(*parts)
    # AMap answers in GCJ-02; Hongtu stores WGS-84.
    x, y = gcj02_to_wgs84(np.array([gx]), np.array([gy]))
    return float(x[0]), float(y[0]), _text(first.get("level")) or None


def from_config(config) -> Geocoder | None:
    """The geocoder the settings ask for (``HONGTU_GEOCODER`` and its kin), or None."""
    provider = config.get("HONGTU_GEOCODER", "none")
    if provider in ("", "none"):
        return None
    # The settings were checked at start-up (app.config): a key is there.
    key = config.get("HONGTU_GEOCODER_KEY") or config.get("HONGTU_TIANDITU_KEY", "")
    return Geocoder(
        provider,
        key,
        url=config.get("HONGTU_GEOCODER_URL", ""),
        rate=float(config.get("HONGTU_GEOCODER_RATE", 3.0)),
        max_requests=int(config.get("HONGTU_GEOCODER_MAX", 300)),
        timeout_s=float(config.get("HONGTU_GEOCODER_TIMEOUT_S", 5.0)),
        city=config.get("HONGTU_GEOCODER_CITY", ""),
    )
