"""Walking distance along streets (geo/walking.py) against an independent shortest-path
computation (networkx) on lattices with streets removed, and the snapping rule off the network."""

import networkx as nx
import numpy as np
import pytest
import shapely

from geo import walking

SPACING = 100.0


def lattice(size: int, removed: float, seed: int):
    """A size × size street lattice (100 m blocks) with a share of its streets removed, as lines
    and as a networkx graph."""
    rng = np.random.default_rng(seed)
    graph = nx.Graph()
    for i in range(size):
        for j in range(size):
            if i + 1 < size:
                graph.add_edge((i, j), (i + 1, j), weight=SPACING)
            if j + 1 < size:
                graph.add_edge((i, j), (i, j + 1), weight=SPACING)
    edges = list(graph.edges)
    for k in rng.choice(len(edges), int(removed * len(edges)), replace=False):
        graph.remove_edge(*edges[k])
    lines = [shapely.LineString([np.array(a) * SPACING, np.array(b) * SPACING]) for a, b in graph.edges]
    return graph, np.array(lines, dtype=object)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_distances_on_nodes_equal_an_independent_shortest_path(seed):
    graph, lines = lattice(25, removed=0.3, seed=seed)
    rng = np.random.default_rng(seed)
    # Organizations and centers on the streets' nodes (a node left with no street is off the
    # network: the snapping rule's case, tested below).
    nodes = [n for n in graph.nodes if graph.degree(n)]
    centers = [nodes[k] for k in rng.choice(len(nodes), 6, replace=False)]
    points = [nodes[k] for k in rng.choice(len(nodes), 200, replace=False)]
    expected = nx.multi_source_dijkstra_path_length(graph, set(centers), weight="weight")
    reach = walking.nearest_center(
        walking.build_network(lines), np.array(points) * SPACING, np.array(centers) * SPACING
    )
    for k, p in enumerate(points):
        if p in expected:
            assert reach.walk_m[k] == pytest.approx(expected[p], abs=0.1)
            # The center named is one at that distance.
            c = centers[reach.center[k]]
            assert nx.shortest_path_length(graph, p, c, weight="weight") == pytest.approx(expected[p], abs=0.1)
        else:  # a piece of the network no center reaches
            assert np.isnan(reach.walk_m[k]) and reach.center[k] == -1
    assert np.isnan(reach.walk_m).any() or len(expected) == graph.number_of_nodes()


def test_a_river_with_one_bridge_makes_the_walk_longer_than_the_line():
    # Two banks of streets 200 m apart, joined by one bridge at x = 0.
    west = [shapely.LineString([(x, 0), (x + 100, 0)]) for x in range(-1000, 1000, 100)]
    east = [shapely.LineString([(x, 200), (x + 100, 200)]) for x in range(-1000, 1000, 100)]
    bridge = [shapely.LineString([(0, 0), (0, 200)])]
    network = walking.build_network(np.array(west + east + bridge, dtype=object))
    reach = walking.nearest_center(network, np.array([[800.0, 200.0]]), np.array([[800.0, 0.0]]))
    assert reach.walk_m[0] == pytest.approx(800 + 200 + 800)  # across at the bridge only


def test_points_off_the_network_walk_their_snap_and_are_flagged_far_away():
    network = walking.build_network(np.array([shapely.LineString([(0, 0), (1000, 0)])], dtype=object))
    # Both beside the street: 30 m and 40 m off it, 600 m apart along it.
    reach = walking.nearest_center(network, np.array([[100.0, 30.0], [100.0, 500.0]]), np.array([[700.0, -40.0]]))
    assert reach.walk_m[0] == pytest.approx(30 + 600 + 40)
    assert reach.snap_m.tolist() == pytest.approx([30, 500]) and reach.far.tolist() == [False, True]
    # Beyond the end of the street, the walk starts at its end.
    end = walking.nearest_center(network, np.array([[1100.0, 0.0]]), np.array([[700.0, 0.0]]))
    assert end.walk_m[0] == pytest.approx(100 + 300)


def test_crossing_lines_meet_and_overlapping_or_zero_length_ones_do_no_harm():
    cross = [shapely.LineString([(-500, 0), (500, 0)]), shapely.LineString([(0, -500), (0, 500)])]
    doubled = [shapely.LineString([(-500, 0), (500, 0)]), shapely.LineString([(0, 0), (0, 0)])]
    network = walking.build_network(np.array(cross + doubled, dtype=object))
    reach = walking.nearest_center(network, np.array([[0.0, 400.0]]), np.array([[-300.0, 0.0]]))
    assert reach.walk_m[0] == pytest.approx(300 + 400)  # through the crossing, no node given there
    assert (network.length > 0).all() and network.size == 4


def test_no_network_or_no_center_reaches_nothing():
    empty = walking.build_network(np.array([], dtype=object))
    assert np.isnan(walking.nearest_center(empty, np.zeros((3, 2)), np.zeros((1, 2))).walk_m).all()
    line = walking.build_network(np.array([shapely.LineString([(0, 0), (10, 0)])], dtype=object))
    assert np.isnan(walking.nearest_center(line, np.zeros((2, 2)), np.empty((0, 2))).walk_m).all()
    assert walking.minutes(np.array([72.0 * 15])) == pytest.approx([15])


def test_a_catchment_follows_the_streets_and_stops_at_the_river():
    west = [shapely.LineString([(x, 0), (x + 100, 0)]) for x in range(-1000, 1000, 100)]
    east = [shapely.LineString([(x, 200), (x + 100, 200)]) for x in range(-1000, 1000, 100)]
    bridge = [shapely.LineString([(0, 0), (0, 200)])]
    network = walking.build_network(np.array(west + east + bridge, dtype=object))
    (area,) = walking.catchments(network, np.array([[800.0, 0.0]]), reach_m=1000, half_width_m=20)
    # Along its own bank 1000 m either way (to the street's end at 1000 m east)...
    assert area.contains(shapely.Point(-150, 0)) and not area.contains(shapely.Point(-250, 0))
    # ...but across the river, 200 m away as the crow flies, only what the bridge reaches.
    assert not area.contains(shapely.Point(800, 200))
    assert area.contains(shapely.Point(0, 150)) and not area.contains(shapely.Point(0, 250))


def test_catchments_hold_the_points_their_center_reaches_and_no_other():
    graph, lines = lattice(20, removed=0.2, seed=5)
    network = walking.build_network(lines)
    rng = np.random.default_rng(5)
    centers = network.nodes[rng.choice(len(network.nodes), 4, replace=False)]
    reach = walking.nearest_center(network, network.nodes, centers)
    areas = walking.catchments(network, centers, reach_m=600, half_width_m=1)
    for k, area in enumerate(areas):
        inside = shapely.contains_xy(area, *network.nodes.T) if area is not None else np.zeros(len(network.nodes), bool)
        mine = (reach.center == k) & (reach.walk_m < 600 - 1)
        assert inside[mine].all()  # every node the center reaches first lies in its catchment
        assert (reach.walk_m[inside] <= 600 + 1).all()  # and nothing beyond the reach


def test_centers_on_a_point_s_own_street_are_reached_along_it():
    network = walking.build_network(np.array([shapely.LineString([(0, 0), (1000, 0)])], dtype=object))
    centers = np.array([[200.0, 0.0], [900.0, 100.0]])  # the second 100 m off the street
    points = np.array([[150.0, 0.0], [300.0, 0.0], [800.0, 0.0], [1000.0, 0.0]])
    reach = walking.nearest_center(network, points, centers)
    assert reach.walk_m.tolist() == pytest.approx([50, 100, 200, 200])
    assert reach.center.tolist() == [0, 0, 1, 1]
