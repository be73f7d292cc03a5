"""A synthetic town as an OpenStreetMap XML file, so the demo drives real roads without a download.

The town is a grid of named residential streets (30 or 50 km/h, some one-way) inside an
arterial ring road ("Ringstraße", primary, 70 km/h). Two tertiary axes (50 km/h) cross the
centre and meet the ring, and every other residential street runs out to it, so short
trips stay in the grid while long ones are fastest on the ring, as in a real town. The file
is deterministic for a seed (same bytes, so the OSRM graph cache is reused) and is the same
kind of input as a downloaded extract: `build_graph` and `Places` read it unchanged.
"""

import itertools
import math
import random
from pathlib import Path
from xml.sax.saxutils import quoteattr

from autocloud.domain.errors import InvalidInput

Point = tuple[float, float]  # (x east, y north) in metres from the town centre

BLOCK_M = 200.0  # distance between parallel streets
NODE_STEP_M = 50.0  # at most this far between consecutive nodes of a way
MARGIN_M = 150.0  # between the outermost streets and the ring road
_TIMESTAMP = "2024-01-01T00:00:00Z"  # fixed, so the file is reproducible

_PREFIXES = (
    "Linden", "Ahorn", "Birken", "Eichen", "Buchen", "Kastanien", "Erlen", "Eschen", "Ulmen",
    "Weiden", "Pappel", "Tannen", "Fichten", "Kiefern", "Lärchen", "Holunder", "Rosen",
    "Tulpen", "Nelken", "Lilien", "Veilchen", "Flieder", "Narzissen", "Astern", "Dahlien",
    "Amsel", "Drossel", "Finken", "Lerchen", "Meisen", "Schwalben", "Falken", "Kranich",
    "Goethe", "Schiller", "Lessing", "Herder", "Mozart", "Beethoven", "Brahms", "Kepler",
    "Gutenberg", "Humboldt", "Leibniz", "Röntgen", "Planck", "Diesel", "Benz", "Bosch",
    "Mühlen", "Brunnen", "Garten", "Wiesen", "Feld", "Berg", "Wald", "Sonnen", "Quellen",
    "Kirch", "Schul", "Markt", "Burg", "Tal", "Brücken",
)  # fmt: skip
_SUFFIXES = ("straße", "weg", "gasse", "allee", "steig")
RING = "Ringstraße"
AXES = ("Hauptstraße", "Bahnhofstraße")  # the tertiary north-south and east-west axes


def generate_town(
    path: Path,
    *,
    seed: int = 0,
    size_km: float = 2.0,
    origin: tuple[float, float] = (49.0, 8.4),
) -> Path:
    """Write a town of `size_km` x `size_km` centred on `origin` (lat, lon) to `path` (.osm XML).

    `seed` chooses street names, one-way streets and their directions, and speed limits.
    """
    if not 0.8 <= size_km <= 10:
        raise InvalidInput(f"town size must be between 0.8 and 10 km, not {size_km}")
    rng = random.Random(seed)
    half = size_km * 500
    chamfer = min(MARGIN_M, half / 4)
    inner = half - MARGIN_M
    count = max(3, round(2 * inner / BLOCK_M) + 1) | 1  # odd: a street through the centre
    lines = [-inner + 2 * inner * i / (count - 1) for i in range(count)]
    centre = count // 2
    names = _street_names(rng, 2 * count)

    ways: list[tuple[list[Point], dict[str, str]]] = []
    junctions: list[Point] = []  # where streets meet the ring
    for vertical in (True, False):
        candidates = [i for i in range(1, count, 2) if i != centre]  # not running to the ring
        oneway = set(rng.sample(candidates, min(len(candidates), max(1, len(candidates) // 3))))
        for i, c in enumerate(lines):
            to_ring = i == centre or i % 2 == 0
            ends = [-half] if to_ring else []
            run = [*ends, *lines, *(half for _ in ends)]
            keys = [(c, v) if vertical else (v, c) for v in run]
            if i == centre:
                tags = {"highway": "tertiary", "name": AXES[not vertical], "maxspeed": "50"}
            else:
                limit = "50" if to_ring and rng.random() < 0.5 else "30"
                tags = {"highway": "residential", "name": names.pop(), "maxspeed": limit}
            if i in oneway:
                tags["oneway"] = "yes"
                if rng.random() < 0.5:
                    keys.reverse()
            if to_ring:
                junctions += [keys[0], keys[-1]]
            ways.append((_densify(keys), tags))
    ring = _ring(half, chamfer, junctions)
    ways.append((ring, {"highway": "primary", "name": RING, "maxspeed": "70", "lanes": "2"}))
    signals = {(0.0, 0.0), *(j for j in junctions if 0 in j)}  # where the axes cross and end
    path.write_text(_xml(ways, signals, origin), encoding="utf-8")
    return path


def _street_names(rng: random.Random, count: int) -> list[str]:
    """`count` distinct German street names; distinct stems first, then other suffixes."""
    prefixes = rng.sample(_PREFIXES, len(_PREFIXES))
    suffixes = rng.sample(_SUFFIXES, len(_SUFFIXES))
    names = [
        p + suffixes[(i + r) % len(suffixes)]
        for r in range(len(suffixes))
        for i, p in enumerate(prefixes)
    ]
    return names[:count][::-1]  # popped from the end: first names first


def _densify(keys: list[Point]) -> list[Point]:
    """The polyline through `keys` with extra points so no step exceeds NODE_STEP_M."""
    out = [keys[0]]
    for (x1, y1), (x2, y2) in itertools.pairwise(keys):
        n = max(1, math.ceil(math.hypot(x2 - x1, y2 - y1) / NODE_STEP_M))
        out += [(x1 + (x2 - x1) * k / n, y1 + (y2 - y1) * k / n) for k in range(1, n + 1)]
    return out


def _ring(half: float, chamfer: float, junctions: list[Point]) -> list[Point]:
    """The closed ring road: a square with cut corners, passing through every junction."""
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]  # counter-clockwise from south-west
    keys: list[Point] = []
    for k, (sx, sy) in enumerate(corners):
        nx, ny = corners[(k + 1) % 4]
        # the edge from this corner to the next, each end pulled in by the chamfer
        ax = sx * half + (nx - sx) / 2 * chamfer
        ay = sy * half + (ny - sy) / 2 * chamfer
        bx = nx * half - (nx - sx) / 2 * chamfer
        by = ny * half - (ny - sy) / 2 * chamfer
        on_edge = [j for j in junctions if _between(j, (ax, ay), (bx, by))]
        on_edge.sort(key=lambda j: math.hypot(j[0] - ax, j[1] - ay))
        keys += [(ax, ay), *on_edge, (bx, by)]
    return _densify([*keys, keys[0]])


def _between(p: Point, a: Point, b: Point) -> bool:
    """Whether `p` lies on the axis-parallel segment from `a` to `b`."""
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def _xml(
    ways: list[tuple[list[Point], dict[str, str]]], signals: set[Point], origin: tuple[float, float]
) -> str:
    """OSM XML 0.6: nodes (shared where ways meet), then ways, with versions and timestamps."""
    lat0, lon0 = origin
    m_per_deg_lat = 111_132.954
    m_per_deg_lon = 111_319.488 * math.cos(math.radians(lat0))
    ids: dict[Point, int] = {}  # one node where ways meet: points equal to the centimetre

    def key(p: Point) -> Point:
        return (round(p[0], 2), round(p[1], 2))

    way_refs = [[ids.setdefault(key(p), len(ids) + 1) for p in points] for points, _ in ways]

    def latlon(p: Point) -> tuple[float, float]:
        return lat0 + p[1] / m_per_deg_lat, lon0 + p[0] / m_per_deg_lon

    coords = {node_id: latlon(p) for p, node_id in ids.items()}
    lats = [c[0] for c in coords.values()]
    lons = [c[1] for c in coords.values()]
    attrs = f'version="1" timestamp="{_TIMESTAMP}"'
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        '<osm version="0.6" generator="autocloud town">',
        f'  <bounds minlat="{min(lats):.7f}" minlon="{min(lons):.7f}" '
        f'maxlat="{max(lats):.7f}" maxlon="{max(lons):.7f}"/>',
    ]
    signal_ids = {ids[key(p)] for p in signals if key(p) in ids}
    for node_id, (lat, lon) in coords.items():
        head = f'  <node id="{node_id}" {attrs} lat="{lat:.7f}" lon="{lon:.7f}"'
        if node_id in signal_ids:
            out += [head + ">", '    <tag k="highway" v="traffic_signals"/>', "  </node>"]
        else:
            out.append(head + "/>")
    for way_id, ((_, tags), refs) in enumerate(zip(ways, way_refs, strict=True), start=1):
        out.append(f'  <way id="{way_id}" {attrs}>')
        out += [f'    <nd ref="{r}"/>' for r in refs]
        out += [f"    <tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in sorted(tags.items())]
        out.append("  </way>")
    out.append("</osm>")
    return "\n".join(out) + "\n"
