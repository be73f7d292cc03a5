"""Load mode: 200 cars published through fleet gateways into the embedded platform.

Cars and gateways are provisioned through the platform's services (as the API does), the run
is a simulated minute at speed-up 0, and afterwards every car's twin holds what the car
measured last: the gateways' messages went through the broker's gateway check, the ingest tap
(PUBACK after commit) and the platform's usual checks, for every VIN.
"""

import contextlib
from collections.abc import Iterator

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.errors import Conflict
from autocloud.settings import load_settings
from autocloud.sim.fleet import FleetConfig
from autocloud.sim.load import LoadFleet, gateway_count
from autocloud.sim.places import Places
from autocloud.sim.roads import Router, build_graph
from autocloud.sim.town import generate_town
from tests.conftest import free_port

pytestmark = pytest.mark.slow
ODOMETER = "Vehicle.TraveledDistance"


class Provisioner:
    """Cars and gateways through the platform's services (what the API calls)."""

    def __init__(self, platform: Platform) -> None:
        self._platform = platform
        self._ids: dict[str, int] = {}

    def brand(self, brand_id: str, name: str) -> None:
        with contextlib.suppress(Conflict):
            self._platform.registry.add_brand(SYSTEM, brand_id, name)

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        return self._platform.registry.add_vehicle(SYSTEM, vin, brand, model).secret

    def gateway(self, brand: str, name: str) -> tuple[str, str]:
        assert self._platform.gateways is not None
        made = self._platform.gateways.create(SYSTEM, brand, name)
        self._ids[made.gateway.username] = made.gateway.id
        return made.gateway.username, made.secret

    def grant(self, login: str, vins: list[str]) -> None:
        assert self._platform.gateways is not None
        self._platform.gateways.grant(SYSTEM, self._ids[login], vins)


@pytest.fixture(scope="module")
def minute(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, LoadFleet]]:
    data = tmp_path_factory.mktemp("platform")
    town = generate_town(data / "town.osm", seed=5)
    router, places = Router(build_graph(town, data / "osrm")), Places(town)
    platform = build(load_settings(data_dir=data, embedded_broker_port=free_port()))
    platform.start()
    provisioner = Provisioner(platform)
    config = FleetConfig(vehicles=200, seed=11, duration_s=60, speedup=0, offline_rate_per_h=0)
    fleet = LoadFleet(config, router, places, provisioner, provisioner, gateway_connections=2)
    fleet.provision()
    for car in fleet.vehicles:
        car.park_left_s = 0.0  # every car drives: 1 Hz telemetry through the gateways
    fleet.connect(*platform.settings.mqtt_host_port)
    fleet.run()
    platform.ingest.stop()  # drain: every acknowledged message is committed
    yield platform, fleet
    fleet.close()
    platform.stop()


def test_gateways_carry_the_whole_fleet(minute: tuple[Platform, LoadFleet]) -> None:
    platform, fleet = minute
    assert len(fleet.gateways) == gateway_count(2) == 3  # one per brand at least
    assert fleet.stats.ticks == 60
    assert fleet.backlog == 0
    assert platform.gateways is not None
    grants = [g.vins for g in platform.gateways.gateways(SYSTEM)]
    assert sorted(grants) == sorted([67, 67, 66])


def test_every_twin_is_current(minute: tuple[Platform, LoadFleet]) -> None:
    platform, fleet = minute
    for vehicle in fleet.vehicles:
        twin = {s.path: s for s in platform.telemetry.twin(SYSTEM, vehicle.vin).reported}
        assert twin[ODOMETER].value == vehicle.last_sent[ODOMETER], vehicle.vin
        assert max(s.ts for s in twin.values()) == max(vehicle.sampled_ts), vehicle.vin
        assert platform.telemetry.twin(SYSTEM, vehicle.vin).online is True


def test_nothing_was_dead_lettered_but_injected_duplicates(
    minute: tuple[Platform, LoadFleet],
) -> None:
    platform, _fleet = minute
    counts = platform.telemetry.dead_letter_counts(SYSTEM)
    assert set(counts) <= {"duplicate"}, counts
