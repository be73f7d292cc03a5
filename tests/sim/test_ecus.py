"""Simulated ECUs answer UDS requests as real ones would, from the car's own model."""

import random

import msgspec
import pytest

from autocloud.domain import uds
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.inbound import HANDLERS, receive
from autocloud.sim.vehicle import SimVehicle

NOW = 1_767_225_600_000
VIN = "WVWZZZ1JZXW000001"


def car(powertrain: Powertrain, seed: int = 1) -> SimVehicle:
    rng = random.Random(seed)
    plan = FaultPlan(random.Random(seed), clock_skew_s=0.0)
    return SimVehicle(VIN, "alpha", PRESET_FOR[powertrain], rng, (43.7, 7.4), plan, "sid1")


def raise_low_voltage(vehicle: SimVehicle) -> None:
    """P0562 by a weak start; it stays set (only a good start clears it)."""
    state = vehicle.model.state
    state.start_reading, state.start_dip_v = True, vehicle.spec.low_start_v - 0.8
    events = vehicle.dtc.step()
    assert [e["data"]["code"] for e in events] == ["P0562"]
    state.start_reading = False


def ask(vehicle: SimVehicle, ecu: str, data: bytes, *, expires: int = NOW + 30_000) -> bytes | None:
    """Send one request through the vehicle's handler table; the ECU's answer bytes."""
    message = uds.DiagRequest(
        id="ds1.0",
        ecu=ecu,
        addr=uds.ECUS[ecu].address,
        request=data.hex(),
        issued=NOW,
        expires=expires,
    )
    out = receive(vehicle, "diag/request", uds.encode_request(message), NOW)
    if not out:
        return None
    ((topic, payload),) = out
    assert topic == "diag/response"
    body = msgspec.json.decode(payload)
    assert (body["v"], body["id"], body["ecu"], body["sid"]) == (1, "ds1.0", ecu, "sid1")
    return bytes.fromhex(body["response"])


def test_the_handler_is_registered() -> None:
    assert "diag/request" in HANDLERS


def test_every_ecu_reports_the_vin_and_its_software() -> None:
    vehicle = car(Powertrain.ICE)
    for ecu in ("ECM", "TCM", "ABS", "BCM"):
        answer = ask(vehicle, ecu, uds.READS["vin"].request())
        assert answer is not None
        assert uds.decode("vin", answer) == {"status": "positive", "vin": VIN}
        software = uds.decode("software", ask(vehicle, ecu, uds.READS["software"].request()) or b"")
        assert software["status"] == "positive"
        assert software["software_version"]


def test_odometer_comes_from_the_model() -> None:
    vehicle = car(Powertrain.ICE)
    answer = ask(vehicle, "ECM", uds.READS["odometer"].request())
    km = round(vehicle.model.state.odometer_m / 1000, 1)
    assert uds.decode("odometer", answer or b"") == {"status": "positive", "odometer_km": km}


def test_a_did_the_ecu_does_not_hold_is_request_out_of_range() -> None:
    vehicle = car(Powertrain.ICE)
    answer = ask(vehicle, "ABS", uds.READS["odometer"].request())
    assert answer == bytes([0x7F, 0x22, 0x31])
    # Some held, some not: the held ones are answered (ISO 14229-1 10.2.3).
    mixed = ask(vehicle, "ABS", bytes([0x22, 0xF4, 0xA6, 0xF1, 0x90]))
    assert mixed == bytes([0x62, 0xF1, 0x90]) + VIN.encode()


def test_unknown_service_subfunction_and_length_are_refused() -> None:
    vehicle = car(Powertrain.ICE)
    assert ask(vehicle, "ECM", bytes([0x31, 0x01, 0xFF, 0x00])) == bytes([0x7F, 0x31, 0x11])
    assert ask(vehicle, "ECM", bytes([0x19, 0x0A])) == bytes([0x7F, 0x19, 0x12])
    assert ask(vehicle, "ECM", bytes([0x19, 0x02])) == bytes([0x7F, 0x19, 0x13])
    assert ask(vehicle, "ECM", bytes([0x22, 0xF1])) == bytes([0x7F, 0x22, 0x13])
    assert ask(vehicle, "ECM", bytes([0x14, 0xFF])) == bytes([0x7F, 0x14, 0x13])
    assert ask(vehicle, "ECM", bytes([0x14, 0x00, 0x01, 0x00])) == bytes([0x7F, 0x14, 0x31])


def test_active_dtcs_are_reported_by_the_ecu_that_owns_them() -> None:
    ice, bev = car(Powertrain.ICE), car(Powertrain.BEV)
    raise_low_voltage(ice)
    raise_low_voltage(bev)
    ecm = uds.decode("dtcs", ask(ice, "ECM", uds.READS["dtcs"].request()) or b"")
    assert [(d["code"], d["status"]) for d in ecm["dtcs"]] == [("P0562", 0xAF)]
    assert uds.decode("dtcs", ask(ice, "BCM", uds.READS["dtcs"].request()) or b"")["dtcs"] == []
    # An electric car has no engine: its body controller keeps the 12 V code.
    bcm = uds.decode("dtcs", ask(bev, "BCM", uds.READS["dtcs"].request()) or b"")
    assert [(d["code"], d["status"]) for d in bcm["dtcs"]] == [("P0562", 0x2F)]


def test_a_status_mask_filters_codes() -> None:
    vehicle = car(Powertrain.ICE)
    raise_low_voltage(vehicle)
    answer = ask(vehicle, "ECM", bytes([0x19, 0x02, 0x40]))  # testNotCompletedThisCycle only
    assert answer == bytes([0x59, 0x02, 0xFF])


def test_clear_erases_the_codes_and_reports_them_cleared() -> None:
    vehicle = car(Powertrain.ICE)
    raise_low_voltage(vehicle)
    assert ask(vehicle, "ECM", uds.READS["clear_dtcs"].request()) == bytes([0x54])
    assert vehicle.dtc.active == ()
    assert vehicle.model.state.dtcs == []
    assert uds.decode("dtcs", ask(vehicle, "ECM", uds.READS["dtcs"].request()) or b"")["dtcs"] == []
    sent = vehicle.outgoing(True)
    events = [msgspec.json.decode(p) for t, p in sent if t == "events"]
    assert [(e["type"], e["data"]["code"]) for e in events][-1] == ("dtc.cleared", "P0562")


def test_clear_while_driving_is_conditions_not_correct() -> None:
    vehicle = car(Powertrain.ICE)
    raise_low_voltage(vehicle)
    vehicle.model.state.speed_kmh, vehicle.model.state.moving = 42.0, True
    assert ask(vehicle, "ECM", uds.READS["clear_dtcs"].request()) == bytes([0x7F, 0x14, 0x22])
    assert [d.code for d in vehicle.dtc.active] == ["P0562"]


@pytest.mark.parametrize(
    ("powertrain", "silent"), [(Powertrain.BEV, "ECM"), (Powertrain.ICE, "BMS")]
)
def test_an_ecu_the_car_does_not_have_never_answers(powertrain: Powertrain, silent: str) -> None:
    assert ask(car(powertrain), silent, uds.READS["vin"].request()) is None


def test_expired_and_malformed_requests_get_no_answer() -> None:
    vehicle = car(Powertrain.ICE)
    assert ask(vehicle, "ECM", uds.READS["vin"].request(), expires=NOW - 1) is None
    for bad in (b"{", b"[]", b'{"id":"x"}'):
        assert receive(vehicle, "diag/request", bad, NOW) == []
