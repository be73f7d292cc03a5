"""Road geometry of an OpenStreetMap file as GeoJSON, for the dashboard's base map.

The dashboard draws the same extract the simulator routes on (the generated town or a
`--map` file), so vehicles sit on the roads the operator sees. pyosmium reads `.osm` XML
and `.osm.pbf` alike; each drivable or walkable `highway` way becomes a LineString with
its class (for styling), name and ref (for labels) and whether it is one-way or a tunnel.
Coordinates are rounded to 6 decimals (~0.1 m), which keeps the file small.
"""

import json
from pathlib import Path
from typing import Any

import osmium

from autocloud.domain.errors import ConfigurationError

# OSM highway tag -> the class the map style knows. Unlisted highways (construction,
# proposed, bridleway, bus_guideway, ...) are not drawn.
ROAD_CLASS: dict[str, str] = {
    "motorway": "motorway",
    "motorway_link": "motorway",
    "trunk": "trunk",
    "trunk_link": "trunk",
    "primary": "primary",
    "primary_link": "primary",
    "secondary": "secondary",
    "secondary_link": "secondary",
    "tertiary": "tertiary",
    "tertiary_link": "tertiary",
    "unclassified": "minor",
    "residential": "minor",
    "living_street": "minor",
    "road": "minor",
    "service": "service",
    "track": "service",
    "pedestrian": "path",
    "footway": "path",
    "cycleway": "path",
    "path": "path",
    "steps": "path",
}
_PRECISION = 6


def roads_geojson(osm_path: Path) -> dict[str, Any]:
    """A FeatureCollection of the roads of `osm_path`, with its bounding box as `bbox`.

    Raises ConfigurationError when the file is missing, unreadable or has no roads.
    """
    if not osm_path.is_file():
        raise ConfigurationError(f"map file not found: {osm_path}")
    features: list[dict[str, Any]] = []
    west, south, east, north = 180.0, 90.0, -180.0, -90.0
    try:
        processor = (
            osmium.FileProcessor(str(osm_path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        for way in processor:
            if not isinstance(way, osmium.osm.Way):
                continue
            tags = way.tags
            road_class = ROAD_CLASS.get(tags.get("highway") or "")
            if road_class is None or tags.get("area") == "yes":
                continue
            coords = [
                [round(n.location.lon, _PRECISION), round(n.location.lat, _PRECISION)]
                for n in way.nodes
                if n.location.valid()
            ]
            if len(coords) < 2:
                continue
            for lon, lat in coords:
                west, east = min(west, lon), max(east, lon)
                south, north = min(south, lat), max(north, lat)
            features.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "LineString", "coordinates": coords},
                    "properties": _properties(road_class, tags),
                }
            )
    except RuntimeError as e:
        raise ConfigurationError(f"cannot read map {osm_path}: {e}") from e
    if not features:
        raise ConfigurationError(f"map {osm_path} has no roads to draw")
    return {"type": "FeatureCollection", "bbox": [west, south, east, north], "features": features}


def _properties(road_class: str, tags: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"class": road_class}
    for key in ("name", "ref"):
        value = tags.get(key)
        if value:
            props[key] = value
    if tags.get("oneway") in ("yes", "1", "true"):
        props["oneway"] = True
    if tags.get("tunnel") not in (None, "no"):
        props["tunnel"] = True
    return props


def encode(collection: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a FeatureCollection (no spaces: it is served as is)."""
    return json.dumps(collection, ensure_ascii=False, separators=(",", ":")).encode()
