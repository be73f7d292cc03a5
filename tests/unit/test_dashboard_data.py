"""The dashboard's server side: base-map extraction and cache, and the fleet pulse."""

import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from autocloud.adapters import osm_map
from autocloud.domain.clock import FixedClock
from autocloud.domain.errors import ConfigurationError, NotFound
from autocloud.services.mapdata import MapData
from autocloud.services.pulse import FleetPulse
from autocloud.sim.town import AXES, RING, generate_town


def test_roads_of_the_town_with_names_classes_and_bbox(tmp_path: Path) -> None:
    roads = osm_map.roads_geojson(generate_town(tmp_path / "town.osm", seed=7))
    names = {f["properties"].get("name") for f in roads["features"]}
    assert RING in names and set(AXES) <= names
    classes = {f["properties"]["class"] for f in roads["features"]}
    assert {"primary", "tertiary", "minor"} <= classes
    west, south, east, north = roads["bbox"]
    assert west < 8.4 < east and south < 49.0 < north


def test_a_file_that_is_not_a_map_is_a_clear_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.osm"
    broken.write_text("<osm><way id='1'></osm")
    with pytest.raises(ConfigurationError, match=r"broken\.osm"):
        osm_map.roads_geojson(broken)


def test_map_data_is_extracted_once_and_cached_on_disk(tmp_path: Path) -> None:
    town = generate_town(tmp_path / "town.osm", seed=7)
    calls = []

    def extract(path: Path) -> dict[str, object]:
        calls.append(path)
        return osm_map.roads_geojson(path)

    first = MapData(town, tmp_path / "map", extract, osm_map.encode).roads()
    again = MapData(town, tmp_path / "map", extract, osm_map.encode).roads()  # a new process
    assert len(calls) == 1 and first == again
    assert json.loads(gzip.decompress(first.gzip))["type"] == "FeatureCollection"


def test_no_map_configured_is_not_found_with_the_setting_named(tmp_path: Path) -> None:
    data = MapData(None, tmp_path, osm_map.roads_geojson, osm_map.encode)
    with pytest.raises(NotFound, match="map_path"):
        data.roads()


def _batch(*brands: str | None) -> SimpleNamespace:
    items = [
        SimpleNamespace(alive=True, vehicle=SimpleNamespace(brand=b) if b else None) for b in brands
    ]
    return SimpleNamespace(items=items)


def test_pulse_counts_messages_per_brand_and_scopes_the_series() -> None:
    clock = FixedClock(1_000_000)
    counts = {"alpha": (10, 7), "beta": (5, 5)}
    pulse = FleetPulse(lambda: counts, clock, interval_ms=10_000)
    pulse.start = lambda: None  # type: ignore[method-assign]  # no thread: sampled by hand
    pulse.on_commit(_batch("alpha", "alpha", "beta", None))  # type: ignore[arg-type]
    clock.advance(10_000)
    pulse.sample()
    (alpha,) = pulse.series("alpha")
    assert (alpha.vehicles, alpha.online, alpha.messages_per_s) == (10, 7, 0.2)
    (group,) = pulse.series(None)
    assert (group.vehicles, group.online, group.messages_per_s) == (15, 12, 0.3)
    assert pulse.series("gamma")[0].vehicles == 0
