"""A reproducible demo city: Kunming's real districts and codes, generated everything else.

What is real: the 14 district boundaries (AMap origin, GCJ-02, converted here to WGS-84) and the
names and 2023 codes of all 150 streets/towns and 1,738 communities/villages (国家统计局
统计用区划代码). What is generated: street, community and grid polygons (Voronoi cells inside
the real districts — there are no free street-level polygons), places, organizations (fictional
names ending in "（演示）"), party organizations, instructors, service centers and stations.

The generator is vectorized (numpy/shapely over whole arrays); its only loops run over streets
and communities (hundreds to thousands), never over organizations, so 1,000,000 organizations
take about a minute. The same seed gives the same city.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from .codes import grid_sequence, make_credit_codes
from .crs import metric_epsg, to_wgs84
from .shapes import as_multipolygons

#: Kunming's historic centre (翠湖, WGS-84); urban density falls off with distance from it.
CITY_CENTRE = (102.7040, 25.0460)

INDUSTRIES = (
    "物业",
    "物流快递",
    "外卖配送",
    "互联网",
    "电子商务",
    "专业服务",
    "制造业",
    "批发零售",
    "餐饮住宿",
    "建筑业",
    "金融服务",
    "文化传媒",
)
SOCIAL_INDUSTRIES = ("民办学校", "社会服务机构", "行业协会商会", "社会团体")

# Relative weight of each enterprise industry by where the unit sits (scattered = in no place).
_INDUSTRY_WEIGHTS = {
    "park": (1, 8, 2, 14, 10, 4, 22, 6, 2, 5, 2, 4),
    "business_circle": (6, 5, 14, 6, 8, 6, 1, 22, 22, 1, 5, 4),
    "market": (3, 6, 6, 2, 8, 1, 2, 50, 18, 1, 1, 2),
    "building": (5, 3, 4, 22, 12, 20, 1, 6, 3, 5, 12, 7),
    "scattered": (10, 8, 8, 5, 6, 8, 10, 18, 14, 8, 2, 3),
}
_PLACE_KINDS = ("park", "business_circle", "market", "building")
_PLACE_SUFFIX = {
    "park": ("科技产业园", "创新园", "物流园", "智造园"),
    "business_circle": ("商圈", "步行街", "商业中心"),
    "market": ("农贸市场", "综合市场", "建材市场", "花卉市场"),
    "building": ("大厦", "商务中心", "国际广场", "写字楼"),
}
_SYLLABLES = tuple("云 锦 翠 星 金 汇 联 瑞 博 恒 达 睿 宏 安 嘉 信 鼎 华 泰 润 弘 源 盛 景 和 峰 禾 彩 岳 澜".split())
_FORM = {"enterprise": "有限公司", "social_org": ""}
_INDUSTRY_WORD = {
    "物业": "物业服务",
    "物流快递": "快递物流",
    "外卖配送": "配送服务",
    "互联网": "网络科技",
    "电子商务": "电子商务",
    "专业服务": "企业管理咨询",
    "制造业": "机械制造",
    "批发零售": "商贸",
    "餐饮住宿": "餐饮管理",
    "建筑业": "建筑工程",
    "金融服务": "投资咨询",
    "文化传媒": "文化传媒",
    "民办学校": "培训学校",
    "社会服务机构": "社会工作服务中心",
    "行业协会商会": "行业协会",
    "社会团体": "志愿者协会",
}
FACILITIES = ("饮水", "充电", "休息", "卫生间", "微波炉", "药箱", "阅读角")


@dataclass
class DemoCity:
    """The generated tables, as (Geo)DataFrames in WGS-84 with explicit integer ``id`` columns.

    ``coverage`` links ``party_orgs.id`` to ``organizations.id`` (many-to-many).
    """

    areas: gpd.GeoDataFrame
    places: gpd.GeoDataFrame
    organizations: gpd.GeoDataFrame
    party_orgs: pd.DataFrame
    coverage: pd.DataFrame
    instructors: pd.DataFrame
    service_centers: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    metric_crs: int = field(default=4543)

    def tables(self) -> dict[str, pd.DataFrame]:
        """Tables in the order they can be written (parents before children)."""
        return {
            "areas": self.areas,
            "places": self.places,
            "organizations": self.organizations,
            "party_orgs": self.party_orgs,
            "party_org_coverage": self.coverage,
            "instructors": self.instructors,
            "service_centers": self.service_centers,
            "stations": self.stations,
            "roads": self.roads,
        }


def sample_points(
    rng: np.random.Generator,
    polygons: np.ndarray,
    counts: np.ndarray,
    centres: np.ndarray | None = None,
    sigmas: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Random points inside polygons, ``counts[i]`` of them in ``polygons[i]`` (metric CRS).

    Uniform by default; with ``centres``/``sigmas`` (metres) normally distributed around the
    centre and still inside the polygon. Rejection sampling over all polygons at once.

    Returns
    -------
    xy : (sum(counts), 2) array
    owner : index into ``polygons`` of each point
    """
    polygons = np.asarray(polygons, dtype=object)
    counts = np.asarray(counts, dtype=int)
    owner = np.repeat(np.arange(len(polygons)), counts)
    xy = np.full((len(owner), 2), np.nan)
    bounds = shapely.bounds(polygons)
    shapely.prepare(polygons)
    todo = np.arange(len(owner))
    for attempt in range(200):
        if len(todo) == 0:
            break
        own = owner[todo]
        # A centre far outside its polygon would reject forever: after 40 rounds go uniform.
        if centres is None or attempt >= 40:
            b = bounds[own]
            x = rng.uniform(b[:, 0], b[:, 2])
            y = rng.uniform(b[:, 1], b[:, 3])
        else:
            x = rng.normal(centres[own, 0], sigmas[own])
            y = rng.normal(centres[own, 1], sigmas[own])
        inside = shapely.contains_xy(polygons[own], x, y)
        xy[todo[inside]] = np.column_stack([x[inside], y[inside]])
        todo = todo[~inside]
    if len(todo):
        # Slivers: fall back to a point certainly inside, spread along the polygon's edge so
        # that several points in one sliver stay distinct (Voronoi seeds must be).
        fallback = shapely.line_interpolate_point(
            shapely.boundary(polygons[owner[todo]]), rng.uniform(0.05, 0.95, len(todo)), normalized=True
        )
        xy[todo] = shapely.get_coordinates(fallback)
    return xy, owner


def _split(polygon, seeds: np.ndarray) -> np.ndarray:
    """Voronoi cells of ``seeds`` clipped to ``polygon``, one per seed, in seed order."""
    if len(seeds) == 1:
        return np.array([polygon], dtype=object)
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=polygon, ordered=True)
    parts = shapely.get_parts(cells)
    return shapely.intersection(parts, polygon)


def _names(rng: np.random.Generator, n: int, middle: np.ndarray, suffix: np.ndarray | str) -> np.ndarray:
    syl = np.array(_SYLLABLES)
    first = syl[rng.integers(0, len(syl), n)]
    second = syl[rng.integers(0, len(syl), n)]
    out = np.char.add(np.char.add(first, second), middle)
    return np.char.add(out, suffix)


def _load_real(data_dir: Path) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    boundaries = gpd.read_file(data_dir / "kunming_boundaries_gcj02.geojson")
    districts = boundaries[boundaries["level"] == "district"].reset_index(drop=True)
    districts["geometry"] = to_wgs84(districts.geometry.values, "gcj02")
    districts = districts.set_crs(4326, allow_override=True)
    towns = pd.read_csv(data_dir / "kunming_towns_streets_nbs2023.csv", dtype=str)
    villages = pd.read_csv(data_dir / "kunming_communities_villages_nbs2023.csv", dtype=str)
    return districts, towns, villages


def _short(name: pd.Series) -> pd.Series:
    """Short names: "翠湖西路社区居民委员会" → "翠湖西路社区", "大村村村民委员会" → "大村村"."""
    return (
        name.str.replace("社区居民委员会$", "社区", regex=True)
        .str.replace("居民委员会$", "社区", regex=True)
        .str.replace("村村民委员会$", "村", regex=True)
        .str.replace("村民委员会$", "村", regex=True)
    )


def generate(data_dir: Path, n_orgs: int = 5000, seed: int = 42) -> DemoCity:
    """Generate the Kunming demo city.

    Parameters
    ----------
    data_dir : Path
        Folder with the real Kunming files (boundaries, street and community codes).
    n_orgs : int
        Number of organizations (两新组织).
    seed : int
        Random seed; the same seed gives the same city.
    """
    rng = np.random.default_rng(seed)
    districts, towns, villages = _load_real(data_dir)
    epsg = metric_epsg(CITY_CENTRE[0])
    dist_m = districts.to_crs(epsg)
    centre = gpd.GeoSeries(shapely.points([CITY_CENTRE]), crs=4326).to_crs(epsg).iloc[0]

    streets, communities, grids = _areas(rng, dist_m, towns, villages, centre)
    area_frames = [
        pd.DataFrame(
            {
                "code": districts["adcode"].astype(str),
                "level": "district",
                "name": districts["name"],
                "parent_code": None,
                "generated": False,
                "geometry": dist_m.geometry.values,
            }
        ),
        streets,
        communities,
        grids,
    ]
    areas = gpd.GeoDataFrame(pd.concat(area_frames, ignore_index=True), geometry="geometry", crs=epsg)
    areas["geometry"] = as_multipolygons(areas.geometry.values)
    # The real district boundaries came in GCJ-02 (AMap); everything generated was made in WGS-84.
    areas["source_crs"] = np.where(areas["level"] == "district", "gcj02", "wgs84")

    comm = communities.reset_index(drop=True)
    urban = comm["kind"].str.startswith("community").to_numpy()
    reps = shapely.get_coordinates(shapely.point_on_surface(comm.geometry.values))
    d_centre = np.hypot(reps[:, 0] - centre.x, reps[:, 1] - centre.y)
    weight = np.where(urban, 1.0, 0.04) * (np.exp(-d_centre / 9000.0) + 0.03)
    weight /= weight.sum()

    places = _places(rng, comm, weight, n_orgs, dist_m.set_index("adcode").geometry)
    orgs = _organizations(rng, comm, weight, places, n_orgs)
    party_orgs, coverage, instructors = _party_work(rng, orgs, places)
    centers = _centers(rng, streets, comm)
    stations = _stations(rng, places, comm, weight, n_orgs)
    # A generator of its own: the rest of the city stays what the seed always gave.
    roads = _roads(np.random.default_rng(seed + 1), centre)

    def wgs(frame: pd.DataFrame) -> gpd.GeoDataFrame:
        gdf = gpd.GeoDataFrame(frame, geometry="geometry", crs=epsg).to_crs(4326)
        gdf.insert(0, "id", np.arange(1, len(gdf) + 1))
        return gdf

    areas = wgs(areas.drop(columns=["kind", "seed_x", "seed_y"], errors="ignore"))
    return DemoCity(
        areas=areas,
        places=wgs(places.drop(columns=["weight", "host_code"])),
        organizations=wgs(orgs.drop(columns=["place_index", "community_index", "blank_place"])),
        party_orgs=party_orgs,
        coverage=coverage,
        instructors=instructors,
        service_centers=wgs(centers),
        stations=wgs(stations),
        roads=wgs(roads),
        metric_crs=epsg,
    )


#: The generated street lattice: half its side (m), the block (m), and the share of streets left out.
ROAD_HALF_SIDE_M = 9000.0
ROAD_BLOCK_M = 250.0
ROAD_GAPS = 0.08
#: Bridges over the river and crossings of the railway, every this many blocks.
BRIDGE_EVERY, LEVEL_CROSSING_EVERY = 8, 12


def _roads(rng, centre) -> pd.DataFrame:
    """A plausible street lattice around the centre, marked generated, with two barriers that
    make walking and a ruler differ: a river running north–south east of the centre, crossed
    by a bridge every ``BRIDGE_EVERY`` blocks, and a railway east–west to the south, crossed
    every ``LEVEL_CROSSING_EVERY`` blocks."""
    ticks = np.arange(-ROAD_HALF_SIDE_M, ROAD_HALF_SIDE_M + 1, ROAD_BLOCK_M)
    n = len(ticks)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n), indexing="ij")
    # East–west segments from (i, j) to (i + 1, j); north–south ones the same with x and y swapped.
    x0, y0 = centre.x + ticks[i.ravel()], centre.y + ticks[j.ravel()]
    ew = np.stack([np.column_stack([x0, y0]), np.column_stack([x0 + ROAD_BLOCK_M, y0])], axis=1)
    ns = np.stack([np.column_stack([y0 - centre.y + centre.x, x0 - centre.x + centre.y])] * 2, axis=1)
    ns[:, 1, 1] += ROAD_BLOCK_M
    # Which east–west street (or, swapped, north–south street) each segment lies on.
    line = j.ravel()
    river_x = centre.x + 600 + 400 * np.sin((ew[:, 0, 1] - centre.y) / 3000)
    crosses_river = (ew[:, 0, 0] < river_x) & (ew[:, 1, 0] >= river_x) & (line % BRIDGE_EVERY != 0)
    rail_y = centre.y - 3000
    crosses_rail = (ns[:, 0, 1] < rail_y) & (ns[:, 1, 1] >= rail_y) & (line % LEVEL_CROSSING_EVERY != 0)
    segments = np.concatenate([ew[~crosses_river], ns[~crosses_rail]])
    segments = segments[rng.random(len(segments)) >= ROAD_GAPS]
    return pd.DataFrame(
        {
            "road_id": [f"G{k:06d}" for k in range(1, len(segments) + 1)],
            "name": None,
            "kind": "生成路网",
            "walkable": True,
            "generated": True,
            "source_crs": "wgs84",
            "geometry": shapely.multilinestrings(shapely.linestrings(segments), indices=np.arange(len(segments))),
        }
    )


def _seeds(rng, polygon, near: np.ndarray, core: tuple[float, float], sigma: float) -> np.ndarray:
    """Voronoi seeds in ``polygon``: those marked ``near`` (urban units) gathered around
    ``core`` with spread ``sigma`` metres, the others (towns, villages) spread uniformly."""
    seeds = np.empty((len(near), 2))
    if near.any():
        seeds[near], _ = sample_points(
            rng, np.array([polygon]), np.array([near.sum()]), np.array([core]), np.array([sigma])
        )
    if (~near).any():
        seeds[~near], _ = sample_points(rng, np.array([polygon]), np.array([(~near).sum()]))
    return seeds


def _areas(rng, dist_m: gpd.GeoDataFrame, towns: pd.DataFrame, villages: pd.DataFrame, centre):
    """Streets, communities and grids as Voronoi cells inside their real parents."""
    street_rows, community_rows, grid_rows = [], [], []
    for d in dist_m.itertuples():
        polygon = d.geometry
        t = towns[towns["county_code"] == d.adcode].sort_values("town_code")
        is_street = t["town_code"].str[6:9].astype(int).to_numpy() < 100
        # Streets (街道) cluster around the part of the district nearest the city, towns spread out.
        near = shapely.ops.nearest_points(polygon, centre)[0] if polygon.distance(centre) < 20000 else None
        core = near if near is not None else polygon.point_on_surface()
        n_street = int(is_street.sum())
        sigma = 1500.0 + 900.0 * np.sqrt(max(n_street, 1))
        seeds = _seeds(rng, polygon, is_street, (core.x, core.y), sigma)
        cells = _split(polygon, seeds)
        street_rows.append(
            pd.DataFrame(
                {
                    "code": t["town_code"].to_numpy(),
                    "level": "street",
                    "name": t["town_name"].to_numpy(),
                    "parent_code": d.adcode,
                    "generated": True,
                    "geometry": cells,
                    "seed_x": seeds[:, 0],
                    "seed_y": seeds[:, 1],
                }
            )
        )
    streets = pd.concat(street_rows, ignore_index=True)

    for s in streets.itertuples():
        v = villages[villages["town_code"] == s.code].sort_values("village_code")
        if v.empty:
            continue
        urban = v["kind"].str.startswith("community").to_numpy()
        seeds = _seeds(rng, s.geometry, urban, (s.seed_x, s.seed_y), 600.0 + 500.0 * np.sqrt(urban.sum()))
        cells = _split(s.geometry, seeds)
        community_rows.append(
            pd.DataFrame(
                {
                    "code": v["village_code"].to_numpy(),
                    "level": "community",
                    "name": v["village_name"].to_numpy(),
                    "parent_code": s.code,
                    "generated": True,
                    "geometry": cells,
                    "kind": v["kind"].to_numpy(),
                    "seed_x": seeds[:, 0],
                    "seed_y": seeds[:, 1],
                }
            )
        )
    communities = pd.concat(community_rows, ignore_index=True)

    # Urban communities (居委会) are gridded; villages are left for the analysis to grid.
    urban = communities[communities["kind"].str.startswith("community")]
    n_cells = rng.integers(2, 7, len(urban))
    short = _short(urban["name"]).to_numpy()
    for c, k, label in zip(urban.itertuples(), n_cells, short, strict=True):
        seeds, _ = sample_points(rng, np.array([c.geometry]), np.array([k]))
        cells = _split(c.geometry, seeds)
        reps = shapely.get_coordinates(shapely.point_on_surface(cells))
        height = np.sqrt(max(c.geometry.area, 1.0) / k)
        seq = grid_sequence(reps[:, 0], reps[:, 1], height)
        grid_rows.append(
            pd.DataFrame(
                {
                    "code": [f"{c.code}{i:03d}" for i in seq],
                    "level": "grid",
                    "name": [f"{label}第{i}网格" for i in seq],
                    "parent_code": c.code,
                    "generated": True,
                    "geometry": cells,
                }
            )
        )
    grids = pd.concat(grid_rows, ignore_index=True).sort_values("code", ignore_index=True)
    return streets, communities, grids


def _places(rng, comm: pd.DataFrame, weight: np.ndarray, n_orgs: int, districts: gpd.GeoSeries) -> gpd.GeoDataFrame:
    """Parks, business circles, markets and buildings, placed in urban communities.

    Each place is clipped to its host's district, as a place is registered in one district
    and the organizations inside it are registered there too."""
    counts = {
        "park": max(5, n_orgs // 2000),
        "business_circle": max(5, n_orgs // 1500),
        "market": max(5, n_orgs // 1500),
        "building": max(20, n_orgs // 120),
    }
    kind = np.concatenate([np.full(n, k, dtype=object) for k, n in counts.items()])
    n = len(kind)
    # Parks and business circles get a community each (they do not pile onto one another as
    # they would if drawn independently in a dense centre); markets and buildings may share.
    big = (kind == "park") | (kind == "business_circle")
    host = rng.choice(len(comm), size=n, p=weight)
    host[big] = rng.choice(len(comm), size=int(big.sum()), replace=False, p=weight)
    xy, _ = sample_points(rng, comm.geometry.values[host], np.ones(n, dtype=int))
    half = np.select(
        [kind == "park", kind == "business_circle", kind == "market"],
        [rng.uniform(350, 800, n), rng.uniform(200, 450, n), rng.uniform(70, 150, n)],
        rng.uniform(15, 35, n),
    )
    aspect = rng.uniform(0.6, 1.0, n)
    angle = rng.uniform(0, np.pi, n)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float)
    local = corners[None, :, :] * np.stack([half, half * aspect], axis=1)[:, None, :]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    ring = np.stack(
        [
            xy[:, 0:1] + local[..., 0] * cos - local[..., 1] * sin,
            xy[:, 1:2] + local[..., 0] * sin + local[..., 1] * cos,
        ],
        axis=2,
    )
    geoms = shapely.polygons(ring)
    circles = kind == "business_circle"
    geoms[circles] = shapely.buffer(shapely.points(xy[circles]), half[circles], quad_segs=8)
    # A tenth of the buildings are known only by their address point (no footprint).
    pointish = (kind == "building") & (rng.random(n) < 0.1)
    geoms[pointish] = shapely.points(xy[pointish])
    host_district = districts.reindex(comm["code"].str[:6].to_numpy()[host]).values
    geoms[~pointish] = shapely.intersection(geoms[~pointish], host_district[~pointish])

    suffix = np.array([_PLACE_SUFFIX[k][i % len(_PLACE_SUFFIX[k])] for i, k in enumerate(kind)])
    prefix = np.array(_SYLLABLES)
    name = np.char.add(
        np.char.add(prefix[rng.integers(0, len(prefix), n)], prefix[rng.integers(0, len(prefix), n)]),
        suffix,
    )
    capacity = {"park": 40.0, "business_circle": 25.0, "market": 15.0, "building": 8.0}
    return gpd.GeoDataFrame(
        {
            "place_id": [f"P{i + 1:06d}" for i in range(n)],
            "name": np.char.add(name, "（演示）"),
            "kind": kind.astype(str),
            "address": np.char.add(_short(comm["name"].iloc[host]).to_numpy().astype(str), "辖区"),
            "demonstration": rng.random(n) < 0.02,
            "source_crs": "wgs84",
            "weight": np.array([capacity[k] for k in kind]) * rng.lognormal(0, 0.5, n),
            "host_code": comm["code"].to_numpy()[host],
            "geometry": geoms,
        }
    )


def _organizations(rng, comm, weight, places, n_orgs: int) -> pd.DataFrame:
    """Organizations: most inside places, the rest scattered over urban communities."""
    n_in = int(round(n_orgs * 0.62))
    n_out = n_orgs - n_in
    p = places["weight"].to_numpy() / places["weight"].sum()
    place_index = np.concatenate([rng.choice(len(places), n_in, p=p), np.full(n_out, -1)])
    host_comm = rng.choice(len(comm), n_out, p=weight)

    xy = np.empty((n_orgs, 2))
    place_geoms = places.geometry.values
    areal = shapely.get_type_id(place_geoms) != 0
    counts_in = np.bincount(place_index[:n_in], minlength=len(places))
    # Organizations in a point-only building share its point, as tenants of one address do.
    in_xy, _ = sample_points(rng, np.where(areal, place_geoms, shapely.buffer(place_geoms, 1.0)), counts_in)
    order = np.argsort(place_index[:n_in], kind="stable")
    xy[order] = in_xy
    pt_only = ~areal[place_index[:n_in]]
    xy[:n_in][pt_only] = shapely.get_coordinates(place_geoms[place_index[:n_in][pt_only]])
    out_xy, out_owner = sample_points(rng, comm.geometry.values, np.bincount(host_comm, minlength=len(comm)))
    xy[n_in:] = out_xy
    community_index = np.concatenate([np.full(n_in, -1), out_owner])

    social = rng.random(n_orgs) < 0.12
    kinds = np.where(place_index >= 0, places["kind"].to_numpy()[np.maximum(place_index, 0)], "scattered")
    industry = np.empty(n_orgs, dtype=object)
    for context, w in _INDUSTRY_WEIGHTS.items():
        mask = (kinds == context) & ~social
        w = np.asarray(w, dtype=float)
        industry[mask] = np.array(INDUSTRIES)[rng.choice(len(INDUSTRIES), mask.sum(), p=w / w.sum())]
    industry[social] = np.array(SOCIAL_INDUSTRIES)[
        rng.choice(len(SOCIAL_INDUSTRIES), social.sum(), p=[0.35, 0.3, 0.2, 0.15])
    ]

    employees = np.clip(np.round(rng.lognormal(np.log(14), 1.15, n_orgs)), 1, 8000).astype(int)
    rate = np.clip(rng.lognormal(np.log(0.07), 0.6, n_orgs), 0, 0.5)
    members = rng.binomial(employees, rate)

    host_code = np.concatenate(
        [places["host_code"].to_numpy()[place_index[:n_in]], comm["code"].to_numpy()[out_owner]]
    ).astype("U12")
    district = np.char.ljust(host_code, 6).astype("U6")
    word = np.array([_INDUSTRY_WORD[i] for i in industry])
    form = np.where(social, "", "有限公司")
    name = np.char.add(_names(rng, n_orgs, word, form), "（演示）")
    road = np.char.add(
        np.char.add(
            np.array(_SYLLABLES)[rng.integers(0, 30, n_orgs)], np.array(_SYLLABLES)[rng.integers(0, 30, n_orgs)]
        ),
        "路",
    )
    address = np.char.add(np.char.add(road, rng.integers(1, 999, n_orgs).astype(str)), "号")

    return pd.DataFrame(
        {
            "org_id": [f"O{i + 1:07d}" for i in range(n_orgs)],
            "name": name,
            "org_type": np.where(social, "social_org", "enterprise"),
            "industry": industry.astype(str),
            "credit_code": make_credit_codes(rng, district, social),
            "employees": employees,
            "party_members": members,
            "address": address,
            "operating": rng.random(n_orgs) > 0.03,
            "demonstration": False,
            "source_crs": "wgs84",
            "geometry": shapely.points(xy),
            "place_index": place_index,
            "community_index": community_index,
            "blank_place": False,
        }
    )


def _party_work(rng, orgs: pd.DataFrame, places: pd.DataFrame):
    """Party organizations (own, joint, area-based, industry-based) and instructors.

    A few places get no party work at all, so the analysis has real blank spots to find.
    """
    n = len(orgs)
    place_index = orgs["place_index"].to_numpy()
    members = orgs["party_members"].to_numpy()
    blank_places = rng.choice(len(places), size=max(2, len(places) // 60), replace=False)
    in_blank = np.isin(place_index, blank_places) & (place_index >= 0)
    orgs["blank_place"] = in_blank
    covered = np.zeros(n, dtype=bool)
    rows, links = [], []

    def add(
        kind: str,
        member_orgs: list[np.ndarray],
        total: np.ndarray,
        label: np.ndarray,
        place: np.ndarray | None = None,
        industry: np.ndarray | None = None,
    ) -> None:
        base = sum(len(r["party_org_id"]) for r in rows)
        k = len(total)
        org_type = np.where(total >= 100, "党委", np.where(total >= 50, "党总支", "党支部"))
        if kind == "joint":
            org_type = np.full(k, "联合党支部")
        rows.append(
            {
                "party_org_id": [f"PO{base + i + 1:07d}" for i in range(k)],
                "name": np.char.add(np.asarray(label, dtype=str), org_type),
                "org_type": org_type,
                "coverage_kind": np.full(k, kind),
                "members": total,
                "place_id": place if place is not None else np.full(k, None),
                "industry": industry if industry is not None else np.full(k, None),
            }
        )
        for i, m in enumerate(member_orgs):
            links.append(np.column_stack([np.full(len(m), base + i + 1), m + 1]))

    # Own branches: most units with 3+ full members have one.
    own = (members >= 3) & ~in_blank & (rng.random(n) < 0.85)
    own_idx = np.flatnonzero(own)
    add("own", [np.array([i]) for i in own_idx], members[own_idx], orgs["name"].to_numpy()[own_idx])
    covered[own_idx] = True
    orgs.loc[own_idx[rng.random(len(own_idx)) < 0.03], "demonstration"] = True

    # Joint branches: small units (1–2 members) of one place, in runs of up to four.
    small = (members >= 1) & (members <= 2) & (place_index >= 0) & ~in_blank & ~covered
    idx = np.flatnonzero(small)
    idx = idx[np.argsort(place_index[idx], kind="stable")]
    if len(idx):
        rank = np.arange(len(idx)) - np.searchsorted(place_index[idx], place_index[idx])
        group = place_index[idx].astype(np.int64) * 100000 + rank // 4
        frame = pd.DataFrame({"org": idx, "group": group, "m": members[idx]})
        stats = frame.groupby("group")["m"].agg(["size", "sum"])
        ok = stats[(stats["size"] >= 2) & (stats["sum"] >= 3)].index.to_numpy()
        ok = ok[rng.random(len(ok)) < 0.55]
        chosen = frame[frame["group"].isin(ok)]
        groups = [g["org"].to_numpy() for _, g in chosen.groupby("group")]
        place_of = np.array([place_index[g[0]] for g in groups], dtype=int)
        add(
            "joint",
            groups,
            np.array([members[g].sum() for g in groups], dtype=int),
            places["name"].to_numpy()[place_of],
        )
        covered[chosen["org"].to_numpy()] = True

    # Area-based organizations on some places cover the units still uncovered there.
    hosts = np.flatnonzero(rng.random(len(places)) < 0.35)
    hosts = hosts[~np.isin(hosts, blank_places)]
    target = np.flatnonzero(np.isin(place_index, hosts) & ~covered)
    by_place = pd.Series(target).groupby(place_index[target])
    groups = [g.to_numpy() for _, g in by_place]
    host_ids = np.array(list(by_place.groups.keys()), dtype=int)
    if groups:
        add(
            "area",
            groups,
            np.array([members[g].sum() + 3 for g in groups], dtype=int),
            places["name"].to_numpy()[host_ids],
            place=host_ids + 1,
        )
        covered[target] = True

    # Industry-based committees for couriers and delivery, one per industry city-wide.
    industry = orgs["industry"].to_numpy()
    for ind in ("物流快递", "外卖配送"):
        target = np.flatnonzero((industry == ind) & ~covered & ~in_blank & (rng.random(n) < 0.3))
        if len(target):
            add(
                "industry",
                [target],
                np.array([members[target].sum() + 5]),
                np.array([f"昆明市{ind}行业（演示）"]),
                industry=np.array([ind]),
            )
            covered[target] = True

    party_orgs = pd.DataFrame({k: np.concatenate([r[k] for r in rows]) for k in rows[0]})
    party_orgs.insert(0, "id", np.arange(1, len(party_orgs) + 1))
    party_orgs["members"] = party_orgs["members"].astype(int)
    coverage = pd.DataFrame(np.concatenate(links), columns=["party_org_id", "organization_id"])

    # Work coverage: instructors for part of the units with no party organization.
    work = np.flatnonzero(~covered & ~in_blank & (rng.random(n) < 0.45))
    instructors = pd.DataFrame(
        {
            "id": np.arange(1, len(work) + 1),
            "organization_id": work + 1,
            "role": np.where(rng.random(len(work)) < 0.8, "instructor", "liaison"),
            "assigned_on": pd.Timestamp("2025-03-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 600, len(work)), unit="D"),
        }
    )
    return party_orgs, coverage, instructors


def _centers(rng, streets: pd.DataFrame, comm: pd.DataFrame) -> pd.DataFrame:
    """Street-level centers at each street's seat; community centers in most communities."""
    urban = comm["kind"].str.startswith("community").to_numpy()
    has = urban | (rng.random(len(comm)) < 0.5)
    c = comm[has]
    street_pts = shapely.points(streets[["seed_x", "seed_y"]].to_numpy())
    comm_pts = shapely.points(c[["seed_x", "seed_y"]].to_numpy())
    return pd.DataFrame(
        {
            "center_id": [f"S{code}" for code in streets["code"]] + [f"C{code}" for code in c["code"]],
            "name": [f"{n}党群服务中心" for n in streets["name"]] + [f"{n}党群服务中心" for n in _short(c["name"])],
            "level": ["street"] * len(streets) + ["community"] * len(c),
            "capacity": np.concatenate([rng.integers(80, 200, len(streets)), rng.integers(20, 60, len(c))]),
            "area_code": list(streets["code"]) + list(c["code"]),
            "source_crs": "wgs84",
            "geometry": np.concatenate([street_pts, comm_pts]),
        }
    )


def _stations(rng, places, comm, weight, n_orgs: int) -> pd.DataFrame:
    """New-employment stations (驿站), mostly at business circles and markets."""
    n = max(10, n_orgs // 400)
    busy = np.flatnonzero(places["kind"].isin(["business_circle", "market"]).to_numpy())
    at_place = rng.random(n) < 0.7
    pts = np.empty(n, dtype=object)
    pts[at_place] = shapely.point_on_surface(places.geometry.values[rng.choice(busy, at_place.sum())])
    host = rng.choice(len(comm), (~at_place).sum(), p=weight)
    xy, _ = sample_points(rng, comm.geometry.values[host], np.ones(len(host), dtype=int))
    pts[~at_place] = shapely.points(xy)
    kinds = np.array(["delivery", "courier", "ride_hailing", "mixed"])[rng.choice(4, n, p=[0.35, 0.25, 0.1, 0.3])]
    label = {"delivery": "外卖骑手", "courier": "快递小哥", "ride_hailing": "网约车司机", "mixed": "新就业群体"}
    facilities = rng.random((n, len(FACILITIES))) < 0.6
    return pd.DataFrame(
        {
            "station_id": [f"Z{i + 1:05d}" for i in range(n)],
            "name": [f"{label[k]}爱心驿站{i + 1}号（演示）" for i, k in enumerate(kinds)],
            "kind": kinds,
            "facilities": [",".join(np.array(FACILITIES)[row]) for row in facilities],
            "source_crs": "wgs84",
            "geometry": pts,
        }
    )
