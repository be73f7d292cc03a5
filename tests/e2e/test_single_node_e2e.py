"""The single-node tier end to end: Mosquitto with dynamic security, PostgreSQL, real vehicles."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.settings import load_settings
from tests.support.mosquitto import MosquittoInstance
from tests.support.vehicle import TestVehicle, eventually, now_ms

pytestmark = pytest.mark.mosquitto
VIN_A, VIN_B = "WVWZZZ1JZXW000001", "1M8GDM9AXKP042788"


@pytest.fixture
def platform(
    tmp_path: Path, mosquitto_broker: MosquittoInstance, pg_url: str
) -> Iterator[Platform]:
    settings = load_settings(
        data_dir=tmp_path,
        broker=f"mqtt://{mosquitto_broker.host}:{mosquitto_broker.port}",
        broker_admin_user=mosquitto_broker.admin_user,
        broker_admin_password=mosquitto_broker.admin_password,
        db=pg_url,
        ingest_wait_ms=5,
    )
    p = build(settings)
    p.start()
    p.registry.add_brand(SYSTEM, "alpha", "Alpha")
    p.registry.add_brand(SYSTEM, "beta", "Beta")
    yield p
    p.stop()


def reported(p: Platform, vin: str) -> dict[str, object]:
    return {s.path: s.value for s in p.telemetry.twin(SYSTEM, vin).reported}


@pytest.mark.parametrize("mqtt5", [False, True], ids=["mqtt311", "mqtt5"])
def test_vehicle_to_twin_and_history(platform: Platform, mqtt5: bool) -> None:
    secret = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha", "ID.3").secret
    host, port = platform.settings.mqtt_host_port
    car = TestVehicle(host, port, VIN_A, secret, mqtt5=mqtt5)
    car.online()
    start = now_ms() - 1000
    for i, speed in enumerate((10.0, 20.0, 30.0)):
        car.telemetry({"Vehicle.Speed": speed}, ts=start + 10 * i)
    eventually(lambda: reported(platform, VIN_A).get("Vehicle.Speed") == 30.0)
    rows, _ = platform.telemetry.history(
        SYSTEM, VIN_A, ["Vehicle.Speed"], start, now_ms() + 1000, cursor=None, limit=100
    )
    assert [r.value for r in rows] == [10.0, 20.0, 30.0]
    eventually(lambda: platform.telemetry.twin(SYSTEM, VIN_A).online)
    car.vanish()
    eventually(lambda: not platform.telemetry.twin(SYSTEM, VIN_A).online, timeout=20)


def test_broker_confines_each_vehicle_to_its_vin(platform: Platform) -> None:
    secret_a = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha").secret
    platform.registry.add_vehicle(SYSTEM, VIN_B, "beta")
    host, port = platform.settings.mqtt_host_port
    car = TestVehicle(host, port, VIN_A, secret_a)
    car.publish(
        "telemetry",
        {"v": 1, "sid": "x", "seq": 1, "ts": now_ms(), "signals": {"Vehicle.Speed": 99.0}},
        vin=VIN_B,
    )
    car.telemetry({"Vehicle.Speed": 1.0})
    eventually(lambda: reported(platform, VIN_A).get("Vehicle.Speed") == 1.0)
    assert reported(platform, VIN_B) == {}


def test_removed_vehicle_loses_its_login(platform: Platform) -> None:
    secret = platform.registry.add_vehicle(SYSTEM, VIN_A, "alpha").secret
    host, port = platform.settings.mqtt_host_port
    TestVehicle(host, port, VIN_A, secret).close()
    platform.registry.remove_vehicle(SYSTEM, VIN_A)
    with pytest.raises(ConnectionError):
        TestVehicle(host, port, VIN_A, secret)
