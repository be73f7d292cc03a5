"""Where simulated vehicles go: points on the named streets of an OpenStreetMap file.

Trips should end where people live and shop, not on motorway ramps or parking aisles, so
destinations are the nodes of named, publicly drivable streets. The file is read once with
pyosmium; `.osm.pbf` extracts and `.osm` XML (the generated town) both work.
"""

import random
from pathlib import Path

import osmium

from autocloud.domain.errors import ConfigurationError

LatLon = tuple[float, float]

# Street classes a trip may start or end on: where addresses are. Motorways, trunks, links,
# service roads and tracks are drivable but not destinations.
HIGHWAYS = frozenset(
    {
        "primary",
        "secondary",
        "tertiary",
        "unclassified",
        "residential",
        "living_street",
    }
)
_NO_ACCESS = frozenset({"no", "private", "agricultural", "forestry", "delivery", "emergency"})


class Places:
    """Destinations on the named streets of one OpenStreetMap file, with its extent."""

    def __init__(self, osm_path: Path) -> None:
        if not osm_path.is_file():
            raise ConfigurationError(f"map file not found: {osm_path}")
        found: dict[int, LatLon] = {}  # node id -> (lat, lon), in file order: deterministic
        try:
            processor = (
                osmium.FileProcessor(str(osm_path), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations()
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.KeyFilter("name"))
                .with_filter(osmium.filter.TagFilter(*(("highway", h) for h in sorted(HIGHWAYS))))
            )
            for way in processor:
                if not isinstance(way, osmium.osm.Way):
                    continue
                tags = way.tags
                if tags.get("access") in _NO_ACCESS or tags.get("motor_vehicle") in _NO_ACCESS:
                    continue
                if tags.get("area") == "yes":
                    continue
                for node in way.nodes:
                    if node.location.valid():
                        found[node.ref] = (node.location.lat, node.location.lon)
        except RuntimeError as e:
            raise ConfigurationError(f"cannot read map {osm_path}: {e}") from e
        if not found:
            raise ConfigurationError(f"map {osm_path} has no named streets to drive to")
        self.points: list[LatLon] = list(found.values())
        lats = [p[0] for p in self.points]
        lons = [p[1] for p in self.points]
        self._bbox = (min(lats), min(lons), max(lats), max(lons))

    def __len__(self) -> int:
        return len(self.points)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """(min_lat, min_lon, max_lat, max_lon) of the destinations.

        Computed from the streets: extracts' headers often carry no box or the whole world.
        """
        return self._bbox

    @property
    def centre(self) -> LatLon:
        """The middle of `bbox`, (lat, lon): where a map view of the fleet should start."""
        s, w, n, e = self._bbox
        return ((s + n) / 2, (w + e) / 2)

    def random_destination(self, rng: random.Random) -> LatLon:
        """A node of a named street, (lat, lon), drawn from `rng` so a seed replays a fleet."""
        return rng.choice(self.points)
