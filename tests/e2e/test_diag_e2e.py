"""Remote diagnostics end to end: the embedded platform sends UDS requests over MQTT to a
few simulated cars, whose ECUs answer from their own state; reports come back through
ingest. A readout finds the VIN, software, odometer and active DTCs; a clear by an admin
erases the codes in the car; an ECU the car does not have is reported as no response."""

import contextlib
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from autocloud.bootstrap import SYSTEM, Platform, build
from autocloud.domain.access import Principal, Role
from autocloud.domain.diag_session import DiagSession
from autocloud.domain.errors import Conflict, Forbidden
from autocloud.settings import load_settings
from autocloud.sim.energy import Powertrain
from autocloud.sim.fleet import Fleet, FleetConfig
from autocloud.sim.vehicle import SimVehicle
from tests.conftest import free_port
from tests.support.vehicle import eventually

TIMEOUT_S = 6.0


class Provisioner:
    def __init__(self, platform: Platform) -> None:
        self._registry = platform.registry

    def brand(self, brand_id: str, name: str) -> None:
        with contextlib.suppress(Conflict):
            self._registry.add_brand(SYSTEM, brand_id, name)

    def vehicle(self, vin: str, brand: str, model: str) -> str:
        return self._registry.add_vehicle(SYSTEM, vin, brand, model).secret


class ParkedPlaces:
    """Cars that never leave their parking space need no map."""

    def random_destination(self, rng: random.Random) -> tuple[float, float]:
        return (43.73 + rng.random() / 100, 7.42 + rng.random() / 100)


@dataclass
class Running:
    platform: Platform
    fleet: Fleet

    def car(self, powertrain: Powertrain) -> SimVehicle:
        return next(v for v in self.fleet.vehicles if v.spec.powertrain is powertrain)

    def readout(self, vin: str, who: Principal = SYSTEM, **kwargs: Any) -> DiagSession:
        service = self.platform.diagnostics
        assert service is not None
        started = service.request(who, vin, **kwargs)

        def done() -> DiagSession | None:
            found = service.session(SYSTEM, vin, started.id)
            return found if found.status != "pending" else None

        result: DiagSession = eventually(done, timeout=TIMEOUT_S + 10)
        return result


def weak_start(car: SimVehicle) -> None:
    """A start below the car's 12 V threshold: P0562 is set and stays while parked."""
    car.model.state.start_reading = True
    car.model.state.start_dip_v = car.spec.low_start_v - 1
    car.dtc.step()
    car.model.state.start_reading = False


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("diag")
    settings = load_settings(
        data_dir=data, embedded_broker_port=free_port(), ingest_wait_ms=5, diag_timeout_s=TIMEOUT_S
    )
    platform = build(settings)
    platform.start()
    config = FleetConfig(
        vehicles=6,
        seed=11,
        speedup=1.0,
        offline_rate_per_h=0.0,
        duplicate_rate=0.0,
        reorder_rate=0.0,
        clock_skew_s=0.0,
    )
    fleet = Fleet(config, None, ParkedPlaces(), Provisioner(platform))  # type: ignore[arg-type]
    fleet.provision()
    kinds = {v.spec.powertrain for v in fleet.vehicles}
    assert {Powertrain.ICE, Powertrain.BEV} <= kinds, kinds
    for vehicle in fleet.vehicles:
        vehicle.park_left_s = 1e9  # parked for the whole test
        weak_start(vehicle)
    host, port = platform.settings.mqtt_host_port
    fleet.connect(host, port)
    stop = threading.Event()
    thread = threading.Thread(target=lambda: fleet.run(should_stop=stop.is_set), daemon=True)
    thread.start()
    yield Running(platform, fleet)
    stop.set()
    thread.join(30)
    fleet.close()
    platform.stop()


def _results(session: DiagSession, ecu: str) -> dict[str, dict[str, Any]]:
    assert session.report is not None
    unit = next(e for e in session.report["ecus"] if e["ecu"] == ecu)
    return {r["read"]: r for r in unit["results"]}


@pytest.mark.timeout(120)
def test_a_readout_returns_what_the_car_holds(running: Running) -> None:
    car = running.car(Powertrain.ICE)
    session = running.readout(car.vin, ecus=["ECM", "ABS"])
    assert session.status == "complete", session.report
    ecm = _results(session, "ECM")
    assert ecm["vin"]["vin"] == car.vin
    assert ecm["software"]["software_version"] == "EC 0412.03"
    assert ecm["odometer"]["odometer_km"] == round(car.model.state.odometer_m / 1000, 1)
    assert [d["code"] for d in ecm["dtcs"]["dtcs"]] == ["P0562"]
    assert ecm["dtcs"]["dtcs"][0]["flags"][:4] == [
        "test_failed",
        "test_failed_this_operation_cycle",
        "pending",
        "confirmed",
    ]
    assert _results(session, "ABS")["odometer"]["nrc_name"] == "RequestOutOfRange"
    assert session.report is not None
    assert session.report["summary"]["vin_matches"] is True


@pytest.mark.timeout(120)
def test_a_clear_with_the_admin_role_clears_the_car(running: Running) -> None:
    car = running.car(Powertrain.BEV)  # its 12 V code lives in the body controller
    assert [d.code for d in car.dtc.active] == ["P0562"]
    operator = Principal("ops", Role.OPERATOR, None)
    service = running.platform.diagnostics
    assert service is not None
    with pytest.raises(Forbidden):
        service.request(operator, car.vin, ecus=["BCM"], clear_dtcs=True)
    cleared = running.readout(car.vin, ecus=["BCM"], reads=["dtcs"], clear_dtcs=True)
    bcm = _results(cleared, "BCM")
    assert [d["code"] for d in bcm["dtcs"]["dtcs"]] == ["P0562"]  # read, then cleared
    assert bcm["clear_dtcs"]["status"] == "positive"
    assert car.dtc.active == ()
    after = running.readout(car.vin, ecus=["BCM"], reads=["dtcs"])
    assert _results(after, "BCM")["dtcs"]["dtcs"] == []


@pytest.mark.timeout(120)
def test_an_ecu_the_car_lacks_is_no_response(running: Running) -> None:
    car = running.car(Powertrain.BEV)
    session = running.readout(car.vin, ecus=["ECM", "BMS"], reads=["vin"])
    assert session.status == "incomplete"
    assert _results(session, "ECM")["vin"]["status"] == "no_response"
    assert _results(session, "BMS")["vin"]["vin"] == car.vin
    assert session.report is not None
    assert session.report["summary"]["no_response"] == 1
