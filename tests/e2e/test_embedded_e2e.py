"""The embedded tier end to end: amqtt in-process, SQLite, a real MQTT vehicle."""

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.settings import load_settings
from tests.conftest import free_port
from tests.support.vehicle import TestVehicle, eventually, now_ms

VIN_A, VIN_B = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    settings = load_settings(data_dir=tmp_path, embedded_broker_port=free_port(), ingest_wait_ms=5)
    p = build(settings)
    p.start()
    p.registry.add_brand(SYSTEM, "alpha", "Alpha")
    yield p
    p.stop()


def reported(p: Platform, vin: str) -> dict[str, object]:
    return {s.path: s.value for s in p.telemetry.twin(SYSTEM, vin).reported}


def test_vehicle_publishes_and_twin_follows(platform: Platform) -> None:
    secret = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha", "ID.3").secret
    host, port = platform.settings.mqtt_host_port
    car = TestVehicle(host, port, VIN_A, secret)
    car.online()
    car.telemetry({"Vehicle.Speed": 42.5, "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": True})
    eventually(lambda: reported(platform, VIN_A).get("Vehicle.Speed") == 42.5)
    assert reported(platform, VIN_A)["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"] is True
    eventually(lambda: platform.telemetry.twin(SYSTEM, VIN_A).online)
    car.vanish()  # the last will marks it offline
    eventually(lambda: not platform.telemetry.twin(SYSTEM, VIN_A).online, timeout=20)


def test_vehicle_cannot_speak_for_another(platform: Platform) -> None:
    secret_a = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha").secret
    platform.registry.add_vehicle(SYSTEM, VIN_B, "alpha")
    host, port = platform.settings.mqtt_host_port
    car = TestVehicle(host, port, VIN_A, secret_a)
    car.publish(
        "telemetry",
        {"v": 1, "sid": "x", "seq": 1, "ts": now_ms(), "signals": {"Vehicle.Speed": 99.0}},
        vin=VIN_B,
    )
    car.telemetry({"Vehicle.Speed": 1.0})  # a marker on its own topic
    eventually(lambda: reported(platform, VIN_A).get("Vehicle.Speed") == 1.0)
    assert reported(platform, VIN_B) == {}  # the broker dropped the foreign publish
    with pytest.raises(ConnectionError):
        TestVehicle(host, port, VIN_B, secret_a)  # A's secret is not B's


def test_rotated_secret_replaces_the_old(platform: Platform) -> None:
    old = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha").secret
    new = platform.registry.rotate_secret(SYSTEM, VIN_A).secret
    host, port = platform.settings.mqtt_host_port
    with pytest.raises(ConnectionError):
        TestVehicle(host, port, VIN_A, old)
    TestVehicle(host, port, VIN_A, new).close()


def test_rotation_cuts_off_a_session_on_the_old_secret(platform: Platform) -> None:
    old = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha").secret
    host, port = platform.settings.mqtt_host_port
    car = TestVehicle(host, port, VIN_A, old)
    dropped = threading.Event()
    car.client.on_disconnect = lambda *_args: dropped.set()
    platform.registry.rotate_secret(SYSTEM, VIN_A)
    assert dropped.wait(10)
