"""Remote commands end to end: the embedded platform (amqtt, SQLite) and simulated cars.

Three cars of the simulator, provisioned and enrolled (platform key) the way `autocloud demo`
does it, drive nowhere (parked) in real time. Commands go through the command service, the
broker, each car's command agent and back through ingest.
"""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.command_keyset import KeyRole
from autocloud.domain.command_records import Command
from autocloud.domain.command_signing import Signer, new_private_key
from autocloud.entrypoints.cli.demo import InProcessProvisioner
from autocloud.services.commands import CommandService
from autocloud.settings import load_settings
from autocloud.sim.fleet import Fleet, FleetConfig
from autocloud.sim.places import Places
from autocloud.sim.roads import Router, build_graph
from autocloud.sim.town import generate_town
from autocloud.sim.vehicle import SimVehicle
from tests.conftest import free_port
from tests.support.vehicle import eventually

LOCKS = [
    f"Vehicle.Cabin.Door.{d}.IsLocked"
    for d in ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide")
]


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> tuple[Router, Places]:
    folder = tmp_path_factory.mktemp("town")
    path = generate_town(folder / "town.osm", seed=3, size_km=1.0)
    return Router(build_graph(path, folder / "osrm")), Places(path)


@pytest.fixture
def world(tmp_path: Path, town: tuple[Router, Places]) -> Iterator[tuple[Platform, Fleet]]:
    settings = load_settings(data_dir=tmp_path, embedded_broker_port=free_port(), ingest_wait_ms=5)
    platform = build(settings)
    platform.start()
    config = FleetConfig(
        vehicles=3, seed=4, offline_rate_per_h=0, duplicate_rate=0, reorder_rate=0, clock_skew_s=0
    )
    fleet = Fleet(config, *town, InProcessProvisioner(platform))
    fleet.provision()
    for vehicle in fleet.vehicles:
        vehicle.park_left_s = 1e9  # parked for the whole test
    fleet.connect(*platform.settings.mqtt_host_port)
    stop = threading.Event()
    runner = threading.Thread(target=fleet.run, kwargs={"should_stop": stop.is_set})
    runner.start()
    for vehicle in fleet.vehicles:
        eventually(lambda v=vehicle: platform.telemetry.twin(SYSTEM, v.vin).online)
    yield platform, fleet
    stop.set()
    runner.join(timeout=60)
    fleet.close()
    platform.stop()


def service(platform: Platform) -> CommandService:
    assert platform.commands is not None
    return platform.commands


def finished(platform: Platform, command: Command, timeout_s: float = 20) -> Command:
    return service(platform).wait(SYSTEM, command.id, timeout_s)


def reported(platform: Platform, vin: str) -> dict[str, object]:
    return {s.path: s.value for s in platform.telemetry.twin(SYSTEM, vin).reported}


def test_the_vehicles_were_enrolled_with_the_platform_key(world: tuple[Platform, Fleet]) -> None:
    platform, fleet = world
    key = service(platform).platform_key()
    assert all(v.remote.keys == {key.kid: key.public_key} for v in fleet.vehicles)
    assert all(v.remote.roles == {key.kid: KeyRole.PLATFORM} for v in fleet.vehicles)


def test_unlock_then_lock_succeed_and_the_twin_follows(world: tuple[Platform, Fleet]) -> None:
    platform, fleet = world
    car = fleet.vehicles[0]
    eventually(lambda: reported(platform, car.vin).get(LOCKS[0]) is True)
    unlock, _ = service(platform).submit(SYSTEM, car.vin, "unlock")
    done = finished(platform, unlock)
    assert (done.state, done.reason) == ("succeeded", None)
    assert done.sent_ms and done.delivered_ms and done.finished_ms
    eventually(lambda: all(reported(platform, car.vin).get(p) is False for p in LOCKS))
    assert platform.telemetry.twin(SYSTEM, car.vin).desired  # what the command asked for
    lock, _ = service(platform).submit(SYSTEM, car.vin, "lock")
    assert finished(platform, lock).state == "succeeded"
    eventually(lambda: all(reported(platform, car.vin).get(p) is True for p in LOCKS))
    assert car.remote.executed == 2


def go_offline(platform: Platform, car: SimVehicle) -> None:
    car.plan.offline_left_s = 3600.0  # the car drives into a long tunnel at its next tick
    eventually(lambda: not platform.telemetry.twin(SYSTEM, car.vin).online, timeout=20)


def test_a_command_to_an_offline_car_waits_and_is_delivered_when_it_returns(
    world: tuple[Platform, Fleet],
) -> None:
    platform, fleet = world
    car = fleet.vehicles[1]
    go_offline(platform, car)
    command, _ = service(platform).submit(SYSTEM, car.vin, "charge_limit", {"percent": 60})
    assert command.state == "queued"
    assert service(platform).wait(SYSTEM, command.id, 2).state == "queued"  # it waits
    car.plan.offline_left_s = 0.5  # out of the tunnel
    done = finished(platform, command, 30)
    assert done.state in ("succeeded", "failed"), done  # failed: a combustion car
    expected = "succeeded" if car.spec.electric else "failed"
    assert done.state == expected
    assert done.sent_ms is not None and done.sent_ms > command.queued_ms


def test_a_command_that_outlives_its_expiry_expires(world: tuple[Platform, Fleet]) -> None:
    platform, fleet = world
    car = fleet.vehicles[2]
    go_offline(platform, car)
    command, _ = service(platform).submit(SYSTEM, car.vin, "unlock", expires_in_s=2)
    done = finished(platform, command, 15)
    assert done.state == "expired" and "never delivered" in (done.reason or "")
    car.plan.offline_left_s = 0.5
    eventually(lambda: platform.telemetry.twin(SYSTEM, car.vin).online, timeout=20)
    assert car.remote.executed == 0  # nothing was sent to it after the expiry
    assert reported(platform, car.vin).get(LOCKS[0]) is True


def test_key_changes_reach_the_car_over_the_broker(world: tuple[Platform, Fleet]) -> None:
    """Enrolling and revoking an app key publishes a signed key list (retained) that the
    simulated car applies: it trusts the key with its role, then drops it."""
    platform, fleet = world
    car = fleet.vehicles[0]
    app = Signer(new_private_key())
    service(platform).add_key(SYSTEM, car.vin, app.public.hex(), "depot tablet")
    eventually(lambda: car.remote.roles.get(app.kid) == KeyRole.OPERATOR)
    assert car.remote.keys[app.kid] == app.public
    serial = car.remote.key_serial
    service(platform).remove_key(SYSTEM, car.vin, app.kid)
    eventually(lambda: app.kid not in car.remote.keys)
    assert car.remote.key_serial > serial
    assert service(platform).platform_key().kid in car.remote.keys
