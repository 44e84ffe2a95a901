"""Positions for organizations whose ledger row has no coordinates.

Real ledgers give a name, an address and the community a unit belongs to, seldom a point. In
order of evidence a row is placed (``located_by``, see ``LOCATED_BY``):

1. inside the place its ``place`` column names (by id, else by name);
2. inside the place whose name its address contains: the longest stored place name found in
   the normalised address, preferring places in the row's stated community or street;
3. at the point an online geocoder answers for its address, when one is configured
   (:mod:`app.intake.geocode`) and the point is exact enough and inside the stated area (or,
   with none stated, inside the city);
4. somewhere inside its stated community (``community``: a 12-digit code or a name unique in
   the city), else its stated street, marked approximate; a user bound to a community or
   street states their own;
5. nowhere: kept without a position and listed for placing.

Points inside a place or an area are spread by the organization's id (:mod:`geo.spread`), so
that fifty units of one building do not sit on one pixel, and a re-import puts each where it
was. Every step works on whole columns; the address step runs one Aho–Corasick automaton of
every place name over each address.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ahocorasick_rs
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo import assign
from geo.crs import METRES_PER_DEGREE_LAT, METRES_PER_DEGREE_LON
from geo.spread import spread_inside

from ..store.models import AREA_CODE_LENGTHS
from .geocode import LEVEL_PRECISION_M
from .normalize import normalized

#: Radius (degrees, ≈ 15 m) of the spiral on which units of a point-only place are set.
POINT_PLACE_RADIUS = 0.00015
#: Shortest normalised place name looked for in addresses: one or two characters (``大厦``)
#: are part of too many addresses to tell a place.
MIN_PLACE_NAME = 3
#: The warning for a row left without a position.
UNPLACED = ("未能定位：已列入待定位清单", "could not be placed: listed for placing by hand")


@dataclass
class Located:
    """How each row was placed: its point (None: unplaced), ``located_by`` and the precision
    in metres (NaN when unplaced)."""

    geometry: np.ndarray
    located_by: np.ndarray
    precision_m: np.ndarray


@dataclass
class Gazetteer:
    """What places can be found by: the stored places and the areas a ledger may name."""

    #: place_id, name, geometry (WGS-84) and the community code the place lies in.
    places: gpd.GeoDataFrame
    #: code, name, level, geometry (WGS-84) of the districts, streets and communities.
    areas: gpd.GeoDataFrame

    @classmethod
    def of(cls, places: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> Gazetteer:
        areas = areas[areas["level"].isin(("district", "street", "community"))].reset_index(drop=True)
        places = places.reset_index(drop=True).copy()
        communities = areas[areas["level"] == "community"]
        # A place lies in the community holding its interior point (on a shared border, the
        # community stored first, as the analysis assigns).
        index, _ = assign.locate(
            shapely.point_on_surface(np.asarray(places.geometry.values)), np.asarray(communities.geometry.values)
        )
        places["community_code"] = np.append(communities["code"].to_numpy(dtype=object), None)[index]
        places["key"] = normalized(places["name"])
        areas["key"] = normalized(areas["name"])
        return cls(places, areas)

    @classmethod
    def empty(cls) -> Gazetteer:
        """No place and no area to go by: every row without coordinates stays unplaced."""
        return cls.of(
            gpd.GeoDataFrame({"place_id": [], "name": []}, geometry=[], crs=4326),
            gpd.GeoDataFrame({"code": [], "name": [], "level": []}, geometry=[], crs=4326),
        )


def resolve_areas(values: pd.Series, level: str, gazetteer: Gazetteer, report) -> pd.Series:
    """The area code of ``level`` each value names (a code, or a name unique in the city);
    None where empty or not resolved, and ``report(mask, zh, en)`` told why (an error)."""
    digits = AREA_CODE_LENGTHS[level]
    areas = gazetteer.areas[gazetteer.areas["level"] == level]
    text = values.fillna("").astype(str).str.strip()
    out = pd.Series(None, index=values.index, dtype=object)
    is_code = text.str.fullmatch(rf"\d{{{digits}}}").to_numpy()
    known = set(areas["code"])
    code_ok = is_code & text.isin(known).to_numpy()
    out[code_ok] = text[code_ok]
    level_zh = {"community": "社区", "street": "街道"}[level]
    plural = {"community": "communities", "street": "streets"}[level]
    report(is_code & ~code_ok, f"{level_zh}代码不在本市区划中", f"no {level} with this code in the city")
    named = (text != "").to_numpy() & ~is_code
    if named.any():
        keys = normalized(text[named])
        counts = areas["key"].value_counts()
        first = areas.drop_duplicates("key").set_index("key")["code"]
        n = keys.map(counts).fillna(0).to_numpy()
        rows = np.flatnonzero(named)
        out.iloc[rows[n == 1]] = keys[n == 1].map(first).to_numpy()
        twice = np.zeros(len(text), dtype=bool)
        twice[rows[n > 1]] = True
        missing = np.zeros(len(text), dtype=bool)
        missing[rows[n == 0]] = True
        report(
            twice, f"本市有多个同名{level_zh}，请填写{digits}位代码", f"several {plural} have this name: give the code"
        )
        report(missing, f"本市没有这个{level_zh}", f"no {level} of this name in the city")
    return out


def locate(
    ids: pd.Series,
    addresses: pd.Series,
    place_names: pd.Series,
    stated: pd.Series,
    gazetteer: Gazetteer,
    report,
    geocode: Callable[[pd.Series], pd.DataFrame] | None = None,
) -> Located:
    """Place every row (see the module's description).

    Parameters
    ----------
    ids : Series of str
        The organizations' ids (what spreads them).
    addresses, place_names : Series of str
        The row's address and the place it names ('' when not given).
    stated : Series of str or None
        The community (else street) code stated for the row.
    gazetteer : Gazetteer
        The stored places and areas.
    report : callable
        ``report(mask, column, zh, en)`` records a warning for the rows of ``mask``.
    geocode : callable, optional
        Asks an online geocoder for a Series of addresses (``app.intake.geocode``): a frame
        of ``lon``, ``lat`` (WGS-84), ``level`` and ``error`` per address. Asked only for the
        rows no place was found for.
    """
    n = len(ids)
    stated = stated.reset_index(drop=True)
    place = np.full(n, -1)
    by = np.full(n, "unplaced", dtype=object)
    places = gazetteer.places
    if len(places):
        named = _named_place(place_names.reset_index(drop=True), stated, places, report)
        place[named >= 0] = named[named >= 0]
        by[named >= 0] = "place"
        todo = place < 0
        rows = np.flatnonzero(todo)

        def report_rows(mask, column, zh, en):
            full = np.zeros(n, dtype=bool)
            full[rows[np.asarray(mask, dtype=bool)]] = True
            report(full, column, zh, en)

        found = _place_in_address(addresses.reset_index(drop=True)[todo], stated[todo], places, report_rows)
        place[rows[found >= 0]] = found[found >= 0]
        by[rows[found >= 0]] = "address"
    geometry = np.full(n, None, dtype=object)
    precision = np.full(n, np.nan)
    text = addresses.reset_index(drop=True).fillna("").astype(str).str.strip()
    ask = (place < 0) & (text != "").to_numpy()
    if geocode is not None and ask.any():
        rows = np.flatnonzero(ask)
        points, metres = _geocoded(text.iloc[rows], stated.iloc[rows], gazetteer, geocode, rows, n, report)
        taken = rows[~shapely.is_missing(points)]
        geometry[taken], precision[taken] = points[~shapely.is_missing(points)], metres[~shapely.is_missing(points)]
        by[taken] = "geocoder"
    in_place = place >= 0
    in_area = ~in_place & (by != "geocoder") & stated.notna().to_numpy()
    by[in_area] = np.where(stated[in_area].str.len() == AREA_CODE_LENGTHS["community"], "community", "street")
    # Each row's shape to be put in: its place, else its stated area, else none.
    shapes = np.full(n, None, dtype=object)
    shapes[in_place] = np.asarray(places.geometry.values)[place[in_place]]
    shapes[in_area] = np.asarray(gazetteer.areas.set_index("code").geometry.reindex(stated[in_area]).values)
    where = in_place | in_area
    if where.any():
        geometry[where] = spread_inside(ids.to_numpy()[where], shapes[where], POINT_PLACE_RADIUS)
        precision[where] = place_radius_m(shapes[where], POINT_PLACE_RADIUS)
    report(by == "unplaced", "address", *UNPLACED)
    return Located(geometry, by, precision)


def _geocoded(
    addresses: pd.Series, stated: pd.Series, gazetteer: Gazetteer, geocode, rows: np.ndarray, n: int, report
) -> tuple[np.ndarray, np.ndarray]:
    """The geocoder's points for ``addresses`` (rows ``rows`` of ``n``) that may be taken, else
    None, with their precision (m): an answer must be exact enough, and lie inside the row's
    stated area, or inside the city when none is stated."""

    def warn(mask, zh, en):
        full = np.zeros(n, dtype=bool)
        full[rows[np.asarray(mask, dtype=bool)]] = True
        report(full, "address", zh, en)

    answers = geocode(addresses.reset_index(drop=True))
    error = answers["error"].to_numpy(dtype=object)
    for reason in pd.unique(error[error != ""]):
        zh, _, en = str(reason).partition(" / ")
        warn(error == reason, zh, en or zh)
    found = answers["lon"].notna().to_numpy() & (error == "")
    points = np.full(len(answers), None, dtype=object)
    points[found] = shapely.points(
        answers.loc[found, "lon"].to_numpy(dtype=float), answers.loc[found, "lat"].to_numpy(dtype=float)
    )
    metres = answers["level"].map(LEVEL_PRECISION_M).to_numpy(dtype=float)
    coarse = found & np.isnan(metres)
    warn(
        coarse,
        "地理编码结果只精确到区县或城市，未采用",
        "the geocoder's answer is no finer than a district or city: not taken",
    )
    shapes = gazetteer.areas.set_index("code").geometry
    has_stated = stated.notna().to_numpy()
    inside = np.zeros(len(answers), dtype=bool)
    check = found & ~coarse & has_stated
    inside[check] = shapely.covers(np.asarray(shapes.reindex(stated[check]).values), points[check])
    city = found & ~coarse & ~has_stated
    if city.any():
        inside[city] = assign.locate(points[city], np.asarray(gazetteer.areas.geometry.values))[0] >= 0
    warn(
        found & ~coarse & has_stated & ~inside,
        "地理编码结果不在所属社区或街道内，未采用",
        "the geocoder's answer lies outside the stated community or street: not taken",
    )
    warn(
        city & ~inside,
        "地理编码结果不在本市区划内（地址可能在外地），未采用",
        "the geocoder's answer lies outside the city's areas (an address elsewhere?): not taken",
    )
    points[~inside] = None
    return points, np.where(inside, metres, np.nan)


def _named_place(names: pd.Series, stated: pd.Series, places: gpd.GeoDataFrame, report) -> np.ndarray:
    """The place each row's ``place`` column names, by id or else by name (-1: none)."""
    out = np.full(len(names), -1)
    text = names.fillna("").astype(str).str.strip()
    given = (text != "").to_numpy()
    if not given.any():
        return out
    by_id = pd.Series(np.arange(len(places)), index=places["place_id"].to_numpy())
    hit = text.map(by_id[~by_id.index.duplicated()]).fillna(-1).to_numpy(dtype=int)
    out[given & (hit >= 0)] = hit[given & (hit >= 0)]
    rest = np.flatnonzero(given & (hit < 0))
    if not len(rest):
        return out
    # Each row's candidates: the places whose normalised name is the one given.
    rows, candidates = _places_named(rest, normalized(text.iloc[rest]).to_numpy(), places)
    chosen, ambiguous = _choose(len(names), rows, candidates, stated, places)
    out[rest] = chosen[rest]
    unknown = np.zeros(len(names), dtype=bool)
    unknown[rest] = (chosen[rest] < 0) & ~ambiguous[rest]
    report(
        ambiguous,
        "place",
        "多个场所同名且都不在所属社区内，请填写场所编号",
        "several places have this name: give its id",
    )
    report(unknown, "place", "没有这个场所，改按地址定位", "no place of this name: placed by the address instead")
    return out


def _places_named(rows: np.ndarray, keys: np.ndarray, places: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row, place) of every place whose normalised name is a row's key (``rows`` and
    ``keys`` are pairs too: a row may have several keys)."""
    wanted = pd.DataFrame({"row": rows, "key": keys})
    named = pd.DataFrame({"place": np.arange(len(places)), "key": places["key"].to_numpy()})
    pairs = wanted.merge(named, on="key")
    return pairs["row"].to_numpy(), pairs["place"].to_numpy()


def _choose(
    n: int, rows: np.ndarray, candidates: np.ndarray, stated: pd.Series, places: gpd.GeoDataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """One place per row among its candidates (pairs ``rows``, ``candidates``): those in the
    row's stated area first, then the longest name. Answers the chosen place (-1: none) and
    whether a row had several equally good ones."""
    chosen = np.full(n, -1)
    ambiguous = np.zeros(n, dtype=bool)
    if not len(rows):
        return chosen, ambiguous
    area = stated.to_numpy(dtype=object)[rows]
    community = pd.Series(places["community_code"].to_numpy(dtype=object)[candidates]).fillna("")
    stated_length = pd.Series(area).fillna("").str.len().to_numpy()
    inside = (stated_length > 0) & (
        np.where(stated_length == 9, community.str[:9], community.str[:12]).astype(object) == area
    )
    pairs = pd.DataFrame(
        {"row": rows, "place": candidates, "inside": inside, "length": places["key"].str.len().to_numpy()[candidates]}
    ).drop_duplicates(["row", "place"])
    # Inside the stated area beats outside it; then the longer name beats the shorter.
    pairs = pairs[pairs["inside"] >= pairs.groupby("row")["inside"].transform("max")]
    pairs = pairs[pairs["length"] == pairs.groupby("row")["length"].transform("max")]
    count = pairs.groupby("row")["place"].transform("size").to_numpy()
    one = pairs[count == 1]
    chosen[one["row"].to_numpy()] = one["place"].to_numpy()
    ambiguous[pairs.loc[count > 1, "row"].to_numpy()] = True
    return chosen, ambiguous


def _place_in_address(addresses: pd.Series, stated: pd.Series, places: gpd.GeoDataFrame, report) -> np.ndarray:
    """The place whose name each address contains (-1: none)."""
    text = normalized(addresses.fillna("")).to_numpy()
    patterns = places["key"][places["key"].str.len() >= MIN_PLACE_NAME].drop_duplicates().to_numpy()
    if not len(patterns) or not (text != "").any():
        return np.full(len(text), -1)
    automaton = ahocorasick_rs.AhoCorasick(patterns.tolist())
    # One call of the automaton per address (its work is in Rust); the rest on whole columns.
    found = [[m[0] for m in automaton.find_matches_as_indexes(a, overlapping=True)] if a else [] for a in text]
    counts = np.fromiter((len(f) for f in found), dtype=int, count=len(found))
    keys = patterns[np.concatenate([[], *found]).astype(int)]
    rows, candidates = _places_named(np.repeat(np.arange(len(text)), counts), keys, places)
    chosen, ambiguous = _choose(len(text), rows, candidates, stated, places)
    report(
        ambiguous,
        "address",
        "地址中的场所名对应多个场所，未按地址定位",
        "the place named in the address matches several places: not placed by it",
    )
    return chosen


def place_radius_m(shapes: np.ndarray, point_radius: float) -> np.ndarray:
    """Radius (m) of the circle as large as each shape; a point's spiral radius for points."""
    lat = shapely.get_y(shapely.centroid(shapes))
    scale = METRES_PER_DEGREE_LAT * METRES_PER_DEGREE_LON * np.cos(np.radians(lat))
    radius = np.sqrt(shapely.area(shapes) * scale / np.pi)
    return np.round(np.where(shapely.get_type_id(shapes) == 0, point_radius * METRES_PER_DEGREE_LAT, radius), 1)
