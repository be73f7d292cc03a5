"""The simulator's road layer: OSRM graphs from OpenStreetMap files, routing, snapping, matching.

Graphs are built once per session into a temporary cache (Monaco takes a second or two, the
generated town a fraction of that), and every test routes on them in-process.
"""

import collections
import math
import random
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from autocloud.domain.errors import ConfigurationError, InvalidInput
from autocloud.sim.places import Places
from autocloud.sim.roads import MARKER, Route, Router, build_graph, graph_dir
from autocloud.sim.town import AXES, RING, generate_town
from tests.conftest import SHARED_DATA, need

MONACO = SHARED_DATA / "osm" / "monaco.osm.pbf"
HEIDELBERG = SHARED_DATA / "osm" / "heidelberg.osm.pbf"
TOWN_ORIGIN = (49.0, 8.4)


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (lat, lon) points."""
    p1, p2 = math.radians(a[0]), math.radians(b[0])
    dp, dl = p2 - p1, math.radians(b[1] - a[1])
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(h))


def offset(origin: tuple[float, float], east_m: float, north_m: float) -> tuple[float, float]:
    """The point `east_m`, `north_m` from `origin` (lat, lon)."""
    lat, lon = origin
    return (
        lat + north_m / 111_132.954,
        lon + east_m / (111_319.488 * math.cos(math.radians(lat))),
    )


# --- fixtures: graphs built once per session ---------------------------------------------------


@pytest.fixture(scope="session")
def osrm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("osrm-cache")


@pytest.fixture(scope="session")
def monaco_graph(osrm_cache: Path) -> Path:
    need(MONACO.exists(), f"Monaco extract missing at {MONACO} (../shared/data)")
    return build_graph(MONACO, osrm_cache)


@pytest.fixture(scope="session")
def monaco(monaco_graph: Path) -> Router:
    return Router(monaco_graph)


@pytest.fixture(scope="session")
def monaco_places() -> Places:
    need(MONACO.exists(), f"Monaco extract missing at {MONACO} (../shared/data)")
    return Places(MONACO)


@pytest.fixture(scope="session")
def town_osm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_town(tmp_path_factory.mktemp("town") / "town.osm", seed=7)


@pytest.fixture(scope="session")
def town(town_osm: Path, osrm_cache: Path) -> Router:
    return Router(build_graph(town_osm, osrm_cache))


def random_routes(router: Router, places: Places, n: int, seed: int) -> list[Route]:
    rng = random.Random(seed)
    routes = []
    for _ in range(n):
        route = router.route(places.random_destination(rng), places.random_destination(rng))
        assert route is not None
        routes.append(route)
    return routes


def check_route(route: Route, bbox: tuple[float, float, float, float]) -> None:
    """The invariants every route must keep, whatever the map."""
    assert route.segments, "a route between two distinct places has segments"
    total = sum(s.length_m for s in route.segments)
    assert total == pytest.approx(route.distance_m, rel=0.01, abs=0.5)
    s_lat, w_lon, n_lat, e_lon = bbox
    for seg in route.segments:
        assert 0 < seg.speed_kmh <= 130
        assert 0 < seg.speed_limit_kmh <= 130
        assert seg.length_m > 0
        # (lat, lon) order: a swap would put Monaco at latitude 7
        assert s_lat - 0.05 <= seg.lat1 <= n_lat + 0.05
        assert w_lon - 0.05 <= seg.lon1 <= e_lon + 0.05
        # the length is the piece's own, not some other piece's
        assert metres((seg.lat1, seg.lon1), (seg.lat2, seg.lon2)) == pytest.approx(
            seg.length_m, rel=0.02, abs=0.3
        )
    for a, b in zip(route.segments, route.segments[1:], strict=False):
        assert (a.lat2, a.lon2) == pytest.approx((b.lat1, b.lon1), abs=1e-6), "pieces join up"


# --- building the graph ------------------------------------------------------------------------


def test_graph_is_built_once_and_reused(monaco_graph: Path, osrm_cache: Path) -> None:
    marker = monaco_graph.parent / MARKER
    assert marker.is_file() and monaco_graph.parent == graph_dir(MONACO, osrm_cache)
    assert monaco_graph.name == "monaco.osrm"
    before = marker.stat().st_mtime_ns
    said: list[str] = []
    again = build_graph(MONACO, osrm_cache, progress=said.append)
    assert again == monaco_graph
    assert marker.stat().st_mtime_ns == before, "the cached graph was rebuilt"
    assert said == []  # no build step ran


def test_an_interrupted_build_is_redone(town_osm: Path, tmp_path: Path) -> None:
    base = build_graph(town_osm, tmp_path)
    (base.parent / MARKER).unlink()  # as if killed before the end
    said: list[str] = []
    assert build_graph(town_osm, tmp_path, progress=said.append) == base
    assert (base.parent / MARKER).is_file()
    assert any("extract" in line for line in said) and any("customize" in line for line in said)
    assert Router(base).nearest(TOWN_ORIGIN)
    assert [p.name for p in tmp_path.iterdir()] == [base.parent.name], "no work dirs left over"


def test_a_changed_map_gets_its_own_graph(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = generate_town(tmp_path / "a" / "town.osm", seed=1)
    b = generate_town(tmp_path / "b" / "town.osm", seed=2)
    assert graph_dir(a, tmp_path) != graph_dir(b, tmp_path)
    assert graph_dir(a, tmp_path).name.startswith("town-")
    assert graph_dir(a, tmp_path) == graph_dir(a, tmp_path / ".." / tmp_path.name).resolve()


def test_build_errors_name_the_file_and_quote_osrm(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(ConfigurationError, match=r"nowhere\.osm\.pbf"):
        build_graph(missing, tmp_path)
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm version='0.6'><node id='1' lat='x'")
    with pytest.raises(ConfigurationError) as caught:
        build_graph(broken, tmp_path / "cache")
    message = str(caught.value)
    assert "broken.osm" in message and "extract" in message
    assert "[error]" in message or "error" in message.lower()
    with pytest.raises(ConfigurationError, match="not an OpenStreetMap file"):
        build_graph(tmp_path / "notes.txt", tmp_path)
    with pytest.raises(ConfigurationError, match="build_graph"):
        Router(tmp_path / "absent.osrm")


# --- routing on Monaco -------------------------------------------------------------------------


def test_monaco_routes_are_consistent(monaco: Router, monaco_places: Places) -> None:
    routes = random_routes(monaco, monaco_places, 25, seed=3)
    for route in routes:
        check_route(route, monaco_places.bbox)
        assert route.duration_s > 0
    names = {s.name for r in routes for s in r.segments}
    assert len(names) > 10
    limits = {s.speed_limit_kmh for r in routes for s in r.segments}
    assert limits <= {5.0 * k for k in range(1, 27)}, "limits are in 5 km/h steps"


def test_route_is_lat_lon_and_ends_near_the_asked_points(monaco: Router) -> None:
    a, b = (43.72956, 7.41337), (43.73216, 7.41862)  # along Boulevard Charles III
    route = monaco.route(a, b)
    assert route is not None
    assert metres(route.points[0], a) < 15 and metres(route.points[-1], b) < 15
    assert 400 < route.distance_m < 800
    assert route.segments[0].name == "Boulevard Charles III"
    assert route.resample(20.0)[0] == route.points[0]


def test_limits_are_steady_along_a_road(monaco: Router) -> None:
    """OSRM's 0.1 s duration rounding must not make the limit jump on short pieces."""
    route = monaco.route((43.72956, 7.41337), (43.73216, 7.41862))
    assert route is not None
    changes = sum(
        a.speed_limit_kmh != b.speed_limit_kmh
        for a, b in zip(route.segments, route.segments[1:], strict=False)
    )
    assert changes <= 2 < len(route.segments)


def test_nearest_snaps_to_a_road(monaco: Router, monaco_places: Places) -> None:
    rng = random.Random(5)
    for _ in range(10):
        place = monaco_places.random_destination(rng)
        off_road = offset(place, 12.0, -9.0)  # 15 m off a street node
        snapped = monaco.nearest(off_road)
        assert metres(snapped, off_road) <= 15.5
        assert metres(monaco.nearest(snapped), snapped) < 0.5, "a point on a road stays put"


def test_match_finds_a_route_on_the_road(monaco: Router, monaco_places: Places) -> None:
    rng = random.Random(11)
    route: Route | None = None
    while route is None or route.distance_m < 1500:
        route = monaco.route(
            monaco_places.random_destination(rng), monaco_places.random_destination(rng)
        )
    trace = route.resample(20.0)
    timestamps = [1_700_000_000 + 2 * i for i in range(len(trace))]  # 36 km/h
    result = monaco.match(trace, timestamps)
    assert result.confidence > 0.5
    assert len(result.matched) == len(trace)
    assert sum(p is None for p in result.matched) <= len(trace) // 50
    for point, matched in zip(trace, result.matched, strict=True):
        if matched is not None:
            assert metres(point, matched) < 10
    assert result.distance_m == pytest.approx(route.distance_m, rel=0.05)


def test_match_of_points_off_the_map_is_empty_and_bad_input_is_refused(monaco: Router) -> None:
    far = monaco.match([(0.0, 0.0), (0.001, 0.001)])
    assert far.confidence == 0 and far.matched == [None, None] and far.matchings == 0
    with pytest.raises(InvalidInput):
        monaco.match([(43.73, 7.415)])
    with pytest.raises(InvalidInput):
        monaco.match([(43.73, 7.415), (43.731, 7.416)], [1])


def test_places_are_on_named_streets_within_the_map(monaco_places: Places) -> None:
    s, w, n, e = monaco_places.bbox
    assert 43.6 < s < n < 43.9 and 7.3 < w < e < 7.6
    lat, lon = monaco_places.centre
    assert s < lat < n and w < lon < e
    assert len(monaco_places) > 1000
    first = [monaco_places.random_destination(random.Random(9)) for _ in range(3)]
    assert first[0] == first[1] == first[2], "a seed gives the same destinations"
    with pytest.raises(ConfigurationError, match=r"not found"):
        Places(Path("/nonexistent/map.osm.pbf"))


def test_heidelberg_routes(osrm_cache: Path) -> None:
    """Routes across the city are sound (speed is measured in bench/, not asserted here)."""
    need(HEIDELBERG.exists(), f"Heidelberg extract missing at {HEIDELBERG} (../shared/data)")
    router = Router(build_graph(HEIDELBERG, osrm_cache))
    places = Places(HEIDELBERG)
    rng = random.Random(1)
    pairs = [(places.random_destination(rng), places.random_destination(rng)) for _ in range(50)]
    routes = [router.route(a, b) for a, b in pairs]
    found = [r for r in routes if r is not None]
    assert len(found) >= 45
    for route in found:
        check_route(route, places.bbox)


# --- the generated town ------------------------------------------------------------------------


def ways(osm: Path) -> list[tuple[list[str], dict[str, str]]]:
    root = ET.parse(osm).getroot()
    return [
        (
            [nd.attrib["ref"] for nd in w.iter("nd")],
            {t.attrib["k"]: t.attrib["v"] for t in w.iter("tag")},
        )
        for w in root.iter("way")
    ]


def test_town_is_valid_osm_with_named_streets_and_a_ring(town_osm: Path) -> None:
    root = ET.parse(town_osm).getroot()
    assert root.tag == "osm" and root.attrib["version"] == "0.6"
    nodes = {n.attrib["id"]: n for n in root.iter("node")}
    assert all("version" in n.attrib for n in nodes.values())
    found = ways(town_osm)
    for refs, _ in found:
        assert all(r in nodes for r in refs)
    names = [tags["name"] for _, tags in found]
    assert len(names) == len(set(names)), "street names are unique"
    ring = [(refs, tags) for refs, tags in found if tags["name"] == RING]
    assert len(ring) == 1
    refs, tags = ring[0]
    assert refs[0] == refs[-1] and tags["highway"] == "primary" and tags["maxspeed"] == "70"
    ring_nodes = set(refs)
    connected = [t for r, t in found if t["name"] != RING and ring_nodes & set(r)]
    assert {t["name"] for t in connected} >= set(AXES) and len(connected) >= 6
    assert {t["highway"] for _, t in found} == {"primary", "tertiary", "residential"}
    assert {t["maxspeed"] for _, t in found} == {"30", "50", "70"}
    assert any(t.get("oneway") == "yes" for _, t in found)
    assert any(name.endswith("straße") for name in names)


def test_town_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = generate_town(tmp_path / "a.osm", seed=3).read_bytes()
    b = generate_town(tmp_path / "b.osm", seed=3).read_bytes()
    c = generate_town(tmp_path / "c.osm", seed=4).read_bytes()
    assert a == b and a != c
    with pytest.raises(InvalidInput):
        generate_town(tmp_path / "d.osm", size_km=50)


@pytest.mark.parametrize("size_km", [0.8, 4.0])
def test_towns_of_other_sizes_build_and_route(tmp_path: Path, size_km: float) -> None:
    osm = generate_town(tmp_path / "t.osm", size_km=size_km, origin=(52.5, 13.4))
    router = Router(build_graph(osm, tmp_path / "cache"))
    places = Places(osm)
    for route in random_routes(router, places, 10, seed=1):
        if route.distance_m > 0:
            check_route(route, places.bbox)


def test_town_routes_everywhere_and_long_trips_take_the_ring(town: Router, town_osm: Path) -> None:
    places = Places(town_osm)
    rng = random.Random(2)
    for _ in range(30):
        a, b = places.random_destination(rng), places.random_destination(rng)
        route = town.route(a, b)
        assert route is not None, f"no route from {a} to {b}: the town is not connected"
        if a != b:
            check_route(route, places.bbox)
            assert {s.speed_limit_kmh for s in route.segments} <= {30.0, 50.0, 70.0}
    # from the south-west to the north-east of the grid: round the ring, not through town
    route = town.route(offset(TOWN_ORIGIN, -800, -800), offset(TOWN_ORIGIN, 800, 800))
    assert route is not None
    on_ring = [s for s in route.segments if s.name == RING]
    assert sum(s.length_m for s in on_ring) > route.distance_m / 2
    assert {s.speed_limit_kmh for s in on_ring} == {70.0}
    # a short hop stays in the grid
    short = town.route(offset(TOWN_ORIGIN, -100, 0), offset(TOWN_ORIGIN, 100, 0))
    assert short is not None and all(s.name != RING for s in short.segments)


def test_town_one_way_streets_are_respected(town: Router, town_osm: Path) -> None:
    root = ET.parse(town_osm).getroot()
    where = {
        n.attrib["id"]: (float(n.attrib["lat"]), float(n.attrib["lon"])) for n in root.iter("node")
    }
    found = ways(town_osm)
    uses = collections.Counter(ref for refs, _ in found for ref in refs)
    oneways = [(refs, t) for refs, t in found if t.get("oneway") == "yes"]
    assert oneways
    for refs, tags in oneways:
        # two nodes 100 m apart in the middle of the street, on no other way
        middle = [
            k
            for k in range(len(refs) // 2, len(refs) - 2)
            if uses[refs[k]] == uses[refs[k + 2]] == 1
        ]
        a, b = where[refs[middle[0]]], where[refs[middle[0] + 2]]
        along, against = town.route(a, b), town.route(b, a)
        assert along is not None and against is not None
        assert along.distance_m == pytest.approx(metres(a, b), rel=0.02), tags["name"]
        assert {s.name for s in along.segments} == {tags["name"]}
        # against the way: round the block instead
        assert against.distance_m > metres(a, b) + 300, f"{tags['name']} driven the wrong way"


def test_unconnected_roads_give_no_route(tmp_path: Path) -> None:
    """Two streets with no road between them: OSRM says NoRoute, the router None."""
    osm = tmp_path / "islands.osm"
    attrs = 'version="1" timestamp="2024-01-01T00:00:00Z"'
    points = [(1, 49.0, 8.40), (2, 49.0, 8.401), (3, 49.01, 8.42), (4, 49.01, 8.421)]
    nodes = [f'<node id="{i}" {attrs} lat="{lat}" lon="{lon}"/>' for i, lat, lon in points]
    streets = [
        f'<way id="{w}" {attrs}><nd ref="{a}"/><nd ref="{b}"/>'
        f'<tag k="highway" v="residential"/><tag k="name" v="Insel {w}"/></way>'
        for w, a, b in [(1, 1, 2), (2, 3, 4)]
    ]
    osm.write_text(
        "<?xml version='1.0' encoding='UTF-8'?>\n<osm version=\"0.6\">"
        + "".join(nodes + streets)
        + "</osm>"
    )
    router = Router(build_graph(osm, tmp_path / "cache"))
    assert router.route((49.0, 8.4005), (49.01, 8.4205)) is None
    assert router.route((49.0, 8.4001), (49.0, 8.4009)) is not None
