"""Walking distance along a street network, for the 5/10/15-minute 党群服务圈.

The planning standard's life circles (GB 50180-2018, 5/10/15-minute walks) and local
"15分钟党群服务圈" practice measure a walk along streets, not a ruler's line: near a river, a
railway or a walled compound the two differ by kilometres.

Everything here is in a metric CRS (metres) and vectorised: the graph is built once, and one
multi-source Dijkstra from all centers at once (``scipy.sparse.csgraph.dijkstra`` with
``min_only``) gives every node its distance to the nearest center.

The network
    Lines are noded (split where they cross or touch) and cut at every vertex, so nodes lie at
    line ends, vertices and intersections, and every edge is a straight segment. Duplicate
    segments keep their shortest copy; zero-length ones are dropped. One-way restrictions do
    not apply to walking: the graph is undirected.

The snapping rule
    A point off the network (an organization's door, a center) reaches it at the nearest point
    of the nearest segment, perpendicular to it or at its end; that snap distance is walked too
    and is reported, and points farther than a tolerance are flagged. A walk from an
    organization to a center is: its snap distance + the distance along the network between
    the two snapped positions + the center's snap distance. Points in a part of the network
    that no center's part joins are unreachable (NaN), which is an answer, not an error.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra

#: Walking speed by default (m/s): an adult's ordinary pace, as the planning standard assumes.
WALK_SPEED_MS = 1.2
#: Coordinates closer than this (m) are one node: digitising noise, not two places.
NODE_PRECISION_M = 0.01
#: A point farther than this (m) from every street is flagged: its walk starts off the network.
SNAP_TOLERANCE_M = 200.0
#: Fewest points a snapping thread is given: below it, one thread does all.
SNAP_CHUNK = 50_000
#: The life circles' walking times (minutes), GB 50180-2018.
REACH_MINUTES = (5, 10, 15)


@dataclass(frozen=True)
class Network:
    """A street network as an undirected graph of straight segments.

    Attributes
    ----------
    nodes : ndarray of shape (n, 2)
        Node coordinates (m).
    u, v : ndarray of int
        Each edge's end nodes.
    length : ndarray of float
        Each edge's length (m).
    segments : ndarray of shapely.LineString
        Each edge's geometry, for snapping.
    """

    nodes: np.ndarray
    u: np.ndarray
    v: np.ndarray
    length: np.ndarray
    segments: np.ndarray

    @property
    def size(self) -> int:
        """Number of edges."""
        return len(self.length)


def build_network(lines: np.ndarray) -> Network:
    """The walking graph of ``lines`` (shapely LineStrings or MultiLineStrings, metric CRS).

    Parameters
    ----------
    lines : ndarray of shapely geometries
        The walkable streets; missing and empty geometries are ignored.
    """
    lines = np.asarray(lines, dtype=object)
    lines = lines[~(shapely.is_missing(lines) | shapely.is_empty(lines))]
    if not len(lines):
        return _network(np.empty((0, 2)), np.empty(0, int), np.empty(0, int))
    single = shapely.get_type_id(lines) == 1
    parts = lines if single.all() else shapely.get_parts(lines)
    noded = shapely.get_parts(shapely.node(shapely.multilinestrings(parts)))
    coords, part = shapely.get_coordinates(noded, return_index=True)
    same = part[1:] == part[:-1]
    start, end = coords[:-1][same], coords[1:][same]
    grid = np.round(np.vstack([start, end]) / NODE_PRECISION_M).astype(np.int64)
    grid -= grid.min(axis=0)
    # One integer per position (x and y in 32 bits each: 40,000 km at 1 cm), sorted far faster
    # than pairs of coordinates.
    _, first, index = np.unique((grid[:, 0] << 32) | grid[:, 1], return_index=True, return_inverse=True)
    nodes = np.vstack([start, end])[first]
    index = index.ravel()
    u, v = index[: len(start)], index[len(start) :]
    return _network(nodes, u, v)


def _network(nodes: np.ndarray, u: np.ndarray, v: np.ndarray) -> Network:
    keep = u != v
    u, v = u[keep], v[keep]
    a, b = np.minimum(u, v), np.maximum(u, v)
    length = np.hypot(*(nodes[b] - nodes[a]).T) if len(a) else np.empty(0)
    # The shortest of duplicate segments (the same pair of nodes) is the one walked.
    order = np.lexsort((length, b, a))
    a, b, length = a[order], b[order], length[order]
    first = np.ones(len(a), bool)
    first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    a, b, length = a[first], b[first], length[first]
    segments = shapely.linestrings(np.stack([nodes[a], nodes[b]], axis=1)) if len(a) else np.empty(0, object)
    return Network(nodes, a, b, length, segments)


@dataclass(frozen=True)
class Snapped:
    """Points placed on the network: their edge, the share of the edge from its ``u`` end
    (0–1), and how far they are from it (m)."""

    edge: np.ndarray
    along: np.ndarray
    distance_m: np.ndarray


def snap(network: Network, xy: np.ndarray) -> Snapped:
    """Each point of ``xy`` (n × 2, metres) snapped to the nearest segment of ``network``."""
    xy = np.asarray(xy, float).reshape(-1, 2)
    if not network.size or not len(xy):
        nan = np.full(len(xy), np.nan)
        return Snapped(np.full(len(xy), -1), nan, nan)
    tree = shapely.STRtree(network.segments)
    points = shapely.points(xy)
    # GEOS releases the GIL while it searches: a thread per core, each on its share of the points.
    chunks = np.array_split(np.arange(len(xy)), max(1, min(os.cpu_count() or 1, len(xy) // SNAP_CHUNK)))
    found = np.full(len(xy), -1)

    def nearest(rows: np.ndarray) -> None:
        point, edge = tree.query_nearest(points[rows], all_matches=False)
        found[rows[point]] = edge

    with ThreadPoolExecutor(len(chunks)) as pool:
        list(pool.map(nearest, chunks))
    a, b = network.nodes[network.u[found]], network.nodes[network.v[found]]
    d = b - a
    along = np.clip(np.einsum("ij,ij->i", xy - a, d) / np.maximum(np.einsum("ij,ij->i", d, d), 1e-12), 0.0, 1.0)
    on = a + d * along[:, None]
    return Snapped(found, along, np.hypot(*(xy - on).T))


@dataclass(frozen=True)
class Reach:
    """The walk from each point to its nearest center.

    Attributes
    ----------
    walk_m : ndarray of float
        Walking distance (m): snap + along the network + the center's snap; NaN when no
        center can be reached.
    center : ndarray of int
        Index of that center (-1 when unreachable).
    snap_m : ndarray of float
        The point's own snap distance (m).
    far : ndarray of bool
        Whether the point lies farther than the tolerance from every street.
    """

    walk_m: np.ndarray
    center: np.ndarray
    snap_m: np.ndarray
    far: np.ndarray


def nearest_center(
    network: Network, points_xy: np.ndarray, centers_xy: np.ndarray, tolerance_m: float = SNAP_TOLERANCE_M
) -> Reach:
    """Walking distance from every point to the nearest of ``centers_xy`` (all metres), with
    one multi-source shortest-path search from all centers at once."""
    points_xy = np.asarray(points_xy, float).reshape(-1, 2)
    n = len(points_xy)
    if not network.size or not len(centers_xy):
        return Reach(np.full(n, np.nan), np.full(n, -1), np.full(n, np.nan), np.ones(n, bool))
    at = snap(network, points_xy)
    seat = snap(network, centers_xy)
    search = _from_centers(network, seat)
    # The nearest graph nodes on the point's edge on either side: its ends, or the points where
    # centers sit on it (each center's point is a node of the graph).
    left_node, left_at, right_node, right_at = search.sides(network, at)
    length = network.length[at.edge]
    via_left = search.distance[left_node] + (at.along - left_at) * length
    via_right = search.distance[right_node] + (right_at - at.along) * length
    walk = np.minimum(via_left, via_right) + at.distance_m
    center = np.where(via_left <= via_right, search.center[left_node], search.center[right_node])
    reached = np.isfinite(walk)
    return Reach(
        np.where(reached, walk, np.nan), np.where(reached, center, -1), at.distance_m, at.distance_m > tolerance_m
    )


@dataclass(frozen=True)
class _Search:
    """One multi-source search from all centers over the network with each center's point on its
    edge as a node of its own (numbered after the network's nodes, in the order of
    ``on_edge``): the distance of every node to its nearest center, and which."""

    distance: np.ndarray
    center: np.ndarray
    #: The centers sorted by edge, then by position along it: their edge, position, and node.
    on_edge: np.ndarray
    on_along: np.ndarray
    on_node: np.ndarray

    def sides(self, network: Network, at: Snapped) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """For points placed on edges: the graph node before and after each along its edge, and
        their positions (0–1 from the edge's ``u`` end)."""
        # Edges are spaced two apart in the key so that positions (0–1) never mix edges.
        keys = self.on_edge * 2.0 + self.on_along
        after = np.searchsorted(keys, at.edge * 2.0 + at.along, side="right")
        before = after - 1
        # There is at least one center (callers return earlier without any).
        b, f = np.clip(before, 0, len(keys) - 1), np.clip(after, 0, len(keys) - 1)
        has_before = (before >= 0) & (self.on_edge[b] == at.edge)
        has_after = (after < len(keys)) & (self.on_edge[f] == at.edge)
        left_node = np.where(has_before, self.on_node[b], network.u[at.edge])
        left_at = np.where(has_before, self.on_along[b], 0.0)
        right_node = np.where(has_after, self.on_node[f], network.v[at.edge])
        right_at = np.where(has_after, self.on_along[f], 1.0)
        return left_node, left_at, right_node, right_at


def _from_centers(network: Network, seat: Snapped) -> _Search:
    """Every node's walking distance to the nearest center (its snap included) and that center.

    Each center's point on its edge splits the edge, so that walks along an edge holding centers
    are exact; a hub per center, joined to its point by the center's snap distance, is where the
    search starts."""
    nodes, k = len(network.nodes), len(seat.edge)
    order = np.lexsort((seat.along, seat.edge))
    on_edge, on_along = seat.edge[order], seat.along[order]
    on_node = nodes + np.arange(k)
    # Each edge holding centers becomes a chain: u, its centers' points in order, v.
    first = np.ones(k, bool)
    first[1:] = on_edge[1:] != on_edge[:-1]
    last = np.ones(k, bool)
    last[:-1] = on_edge[1:] != on_edge[:-1]
    previous = np.where(first, network.u[on_edge], np.roll(on_node, 1))
    previous_at = np.where(first, 0.0, np.roll(on_along, 1))
    length = network.length[on_edge]
    split = np.zeros(network.size, bool)
    split[on_edge] = True
    kept = ~split
    rows = [network.u[kept], previous, on_node[last]]
    cols = [network.v[kept], on_node, network.v[on_edge[last]]]
    weight = [network.length[kept], (on_along - previous_at) * length, (1 - on_along[last]) * length[last]]
    hub = nodes + k + np.arange(k)
    both = (np.concatenate(rows), np.concatenate(cols), np.concatenate(weight))
    # Undirected streets, and a one-way step from each hub to its center's point.
    r = np.concatenate([both[0], both[1], hub])
    c = np.concatenate([both[1], both[0], on_node])
    w = np.concatenate([both[2], both[2], seat.distance_m[order]])
    size = nodes + 2 * k
    # A zero weight would read as "no edge" in a sparse matrix.
    graph = coo_matrix((np.maximum(w, 1e-9), (r, c)), shape=(size, size)).tocsr()
    dist, _, source = dijkstra(graph, directed=True, indices=hub, min_only=True, return_predecessors=True)
    # Hubs are numbered by the sorted order: back to the caller's center numbers.
    center = np.where(source >= 0, order[np.clip(source - nodes - k, 0, k - 1)], -1)
    return _Search(dist[: nodes + k], center[: nodes + k], on_edge, on_along, on_node)


def minutes(walk_m: np.ndarray, speed_ms: float = WALK_SPEED_MS) -> np.ndarray:
    """Walking time (minutes) of distances in metres at ``speed_ms``."""
    return np.asarray(walk_m, float) / speed_ms / 60.0


#: Half the width (m) of a catchment drawn around the streets it reaches: the buildings on
#: either side of a street are reached with it.
CATCHMENT_HALF_WIDTH_M = 50.0


def catchments(
    network: Network, centers_xy: np.ndarray, reach_m: float, half_width_m: float = CATCHMENT_HALF_WIDTH_M
) -> np.ndarray:
    """Each center's walking catchment within ``reach_m`` (metres): the parts of streets nearer to
    it than to any other center and within ``reach_m`` of it, widened by ``half_width_m`` on
    either side (a polygon per center; None for a center that reaches no street).

    Parts of edges are cut where two centers' walks meet, so the catchments tile the streets
    the centers reach; all of it is one Dijkstra and one buffer per center.
    """
    k = len(centers_xy)
    out = np.full(k, None, dtype=object)
    if not network.size or not k:
        return out
    seat = snap(network, np.asarray(centers_xy, float).reshape(-1, 2))
    search = _from_centers(network, seat)
    node_m, node_center = search.distance[: len(network.nodes)], search.center[: len(network.nodes)]
    u, v, length = network.u, network.v, network.length
    du, dv, cu, cv = node_m[u], node_m[v], node_center[u], node_center[v]
    # Unreached ends are infinitely far: their pieces come out empty (NaN compares false).
    with np.errstate(invalid="ignore"):
        # Where along each edge (from u) the walks from its two ends meet.
        meet = np.clip((dv + length - du) / 2, 0, length)
        shared = cu == cv
        u_end = np.minimum(np.where(shared, length, meet), reach_m - du)
        v_start = np.maximum(np.where(shared, 0, meet), length - (reach_m - dv))
    a, b = network.nodes[u], network.nodes[v]
    step = (b - a) / np.maximum(length, 1e-12)[:, None]
    pieces = [
        (a, a + step * u_end[:, None], cu, u_end > 0),
        (a + step * v_start[:, None], b, cv, v_start < length),
    ]
    # The centers' own edges, walked straight from the center both ways.
    own = seat.edge
    here = network.nodes[u[own]] + step[own] * (seat.along * length[own])[:, None]
    left = np.maximum(reach_m - seat.distance_m, 0)
    to_u = np.minimum(left, seat.along * length[own])
    to_v = np.minimum(left, (1 - seat.along) * length[own])
    centers = np.arange(k)
    pieces += [
        (here, here - step[own] * to_u[:, None], centers, to_u > 0),
        (here, here + step[own] * to_v[:, None], centers, to_v > 0),
    ]
    starts = np.concatenate([p[0][p[3]] for p in pieces])
    ends = np.concatenate([p[1][p[3]] for p in pieces])
    owner = np.concatenate([p[2][p[3]] for p in pieces])
    if not len(owner):
        return out
    order = np.argsort(owner, kind="stable")
    lines = shapely.linestrings(np.stack([starts[order], ends[order]], axis=1))
    owners, index = np.unique(owner[order], return_inverse=True)
    # Pieces in line merged first: a buffer of a few long lines is far cheaper than of many short.
    grouped = shapely.line_merge(shapely.multilinestrings(lines, indices=index))
    out[owners] = _in_threads(lambda part: shapely.buffer(part, half_width_m, quad_segs=1), grouped)
    return out


def _in_threads(function, items: np.ndarray) -> np.ndarray:
    """``function`` over ``items`` in shares, a thread per core: GEOS releases the GIL."""
    shares = np.array_split(np.arange(len(items)), max(1, min(os.cpu_count() or 1, len(items))))
    out = np.empty(len(items), dtype=object)

    def run(rows: np.ndarray) -> None:
        out[rows] = function(items[rows])

    with ThreadPoolExecutor(len(shares)) as pool:
        list(pool.map(run, shares))
    return out
