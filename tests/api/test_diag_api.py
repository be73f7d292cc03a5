"""Remote diagnostic sessions through the API: requests go out, simulated ECUs answer
through real ingest, the report comes back; roles, silence and tenancy."""

import json
import random
from collections.abc import Iterator

import pytest

from autocloud.domain.clock import FixedClock
from autocloud.sim.ecus import handle
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.vehicle import SimVehicle
from tests.api.conftest import NOW, Env, raw

POWERTRAIN = "Vehicle.Powertrain.Type"


class Outbox:
    """Stands in for the broker: keeps what the platform sends to vehicles."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bytes]] = []

    def __call__(self, vin: str, subtopic: str, payload: bytes) -> None:
        self.sent.append((vin, subtopic, payload))

    def take(self) -> list[tuple[str, str, bytes]]:
        out, self.sent = self.sent, []
        return out


@pytest.fixture
def outbox(env: Env) -> Iterator[Outbox]:
    box = Outbox()
    assert env.platform.diagnostics is not None
    env.platform.diagnostics._send = box  # no broker in API tests
    yield box


def simulated(vin: str, powertrain: Powertrain) -> SimVehicle:
    rng = random.Random(5)
    return SimVehicle(
        vin, "alpha", PRESET_FOR[powertrain], rng, (43.7, 7.4),
        FaultPlan(random.Random(5), clock_skew_s=0.0), "diag-sid",
    )  # fmt: skip


def deliver(env: Env, car: SimVehicle, outbox: Outbox) -> int:
    """Let the simulated car answer what was sent to it, through real ingest."""
    answered = 0
    for vin, subtopic, payload in outbox.take():
        assert (vin, subtopic) == (car.vin, "diag/request")
        for reply_topic, reply in handle(car, payload, NOW - 1000):
            batch = env.ingest(raw(vin, reply, reply_topic))
            assert batch.out.dead_letters == []
            answered += 1
    assert env.platform.diagnostics is not None
    env.platform.diagnostics.sweep()
    return answered


def weak_start(car: SimVehicle) -> None:
    car.model.state.start_reading = True
    car.model.state.start_dip_v = car.spec.low_start_v - 1
    car.dtc.step()
    car.model.state.start_reading = False


def test_readout_reports_vin_software_odometer_and_dtcs(env: Env, outbox: Outbox) -> None:
    car = simulated(env.alpha.vin, Powertrain.ICE)
    weak_start(car)
    env.send(env.alpha.vin, NOW - 5000, {POWERTRAIN: "COMBUSTION"})
    r = env.client.post(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics", json={}, headers=env.alpha.h("operator")
    )
    assert r.status_code == 202, r.text
    session = r.json()
    assert session["status"] == "pending"
    assert session["ecus"] == ["ECM", "TCM", "ABS", "BCM"]  # from the twin's powertrain
    assert session["reads"] == ["dtcs", "vin", "software", "odometer"]
    sent = [json.loads(p) for _, _, p in outbox.sent]
    assert len(sent) == 16
    assert {(m["ecu"], m["addr"], m["request"]) for m in sent} >= {
        ("ECM", 0x7E0, "190209"),
        ("BCM", 0x726, "22f190"),
        ("ECM", 0x7E0, "22f4a6"),
    }
    assert all(m["expires"] == NOW + 30_000 for m in sent)
    assert deliver(env, car, outbox) == 16

    got = env.client.get(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics/{session['id']}", headers=env.alpha.h("viewer")
    ).json()
    assert got["status"] == "complete"
    report = got["report"]
    assert report["summary"]["active_dtcs"] == ["P0562"]
    assert report["summary"]["vin_matches"] is True
    ecm = next(e for e in report["ecus"] if e["ecu"] == "ECM")
    results = {r["read"]: r for r in ecm["results"]}
    assert results["vin"]["vin"] == env.alpha.vin
    assert results["odometer"]["odometer_km"] == round(car.model.state.odometer_m / 1000, 1)
    assert results["software"]["software_version"] == "EC 0412.03"
    abs_unit = next(e for e in report["ecus"] if e["ecu"] == "ABS")
    odometer = next(r for r in abs_unit["results"] if r["read"] == "odometer")
    assert (odometer["status"], odometer["nrc_name"]) == ("negative", "RequestOutOfRange")
    listed = env.client.get(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics", headers=env.alpha.h("viewer")
    ).json()
    assert [s["id"] for s in listed["items"]] == [session["id"]]


def test_clearing_needs_admin_and_an_explicit_flag(env: Env, outbox: Outbox) -> None:
    car = simulated(env.alpha.vin, Powertrain.ICE)
    weak_start(car)
    url = f"/v1/vehicles/{env.alpha.vin}/diagnostics"
    body = {"ecus": ["ECM"], "reads": ["dtcs"], "clear_dtcs": True}
    refused = env.client.post(url, json=body, headers=env.alpha.h("operator"))
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]
    assert outbox.sent == [] and [d.code for d in car.dtc.active] == ["P0562"]
    viewer = env.client.post(url, json={}, headers=env.alpha.h("viewer"))
    assert viewer.status_code == 403

    r = env.client.post(url, json=body, headers=env.alpha.h("admin"))
    assert r.status_code == 202
    assert [json.loads(p)["request"] for _, _, p in outbox.sent] == ["190209", "14ffffff"]
    deliver(env, car, outbox)
    assert car.dtc.active == ()
    report = env.client.get(f"{url}/{r.json()['id']}", headers=env.alpha.h("viewer")).json()
    results = report["report"]["ecus"][0]["results"]
    assert [x["read"] for x in results] == ["dtcs", "clear_dtcs"]
    assert [d["code"] for d in results[0]["dtcs"]] == ["P0562"]  # read before the clear
    assert results[1] == {**results[1], "status": "positive", "cleared": True}


def test_silent_ecus_are_no_response_after_the_timeout(env: Env, outbox: Outbox) -> None:
    car = simulated(env.alpha.vin, Powertrain.BEV)
    r = env.client.post(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics",
        json={"ecus": ["BMS", "ECM"], "reads": ["vin"]},
        headers=env.alpha.h("operator"),
    )
    sid = r.json()["id"]
    deliver(env, car, outbox)  # the electric car has no ECM: it stays silent
    url = f"/v1/vehicles/{env.alpha.vin}/diagnostics/{sid}"
    assert env.client.get(url, headers=env.g).json()["status"] == "pending"
    clock = env.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(30_001)
    assert env.platform.diagnostics is not None
    env.platform.diagnostics.sweep()
    got = env.client.get(url, headers=env.g).json()
    assert got["status"] == "incomplete"
    by_ecu = {e["ecu"]: e["results"][0]["status"] for e in got["report"]["ecus"]}
    assert by_ecu == {"BMS": "positive", "ECM": "no_response"}
    assert got["report"]["summary"]["no_response"] == 1


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"ecus": ["FOO"]}, "unknown ECU"),
        ({"reads": ["coolant"]}, "unknown read"),
        ({"reads": []}, "nothing to do"),
        ({"ecus": "ECM"}, "ecus"),
    ],
)
def test_bad_requests_are_422(
    env: Env, outbox: Outbox, body: dict[str, object], detail: str
) -> None:
    r = env.client.post(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics", json=body, headers=env.alpha.h("admin")
    )
    assert r.status_code == 422, r.text
    assert detail in r.json()["detail"]
    assert outbox.sent == []


def test_another_tenants_session_is_not_found(env: Env, outbox: Outbox) -> None:
    r = env.client.post(
        f"/v1/vehicles/{env.beta.vin}/diagnostics", json={}, headers=env.beta.h("operator")
    )
    sid = r.json()["id"]
    for url in (
        f"/v1/vehicles/{env.beta.vin}/diagnostics/{sid}",
        f"/v1/vehicles/{env.alpha.vin}/diagnostics/{sid}",  # own VIN, foreign session
    ):
        got = env.client.get(url, headers=env.alpha.h("admin"))
        assert got.status_code == 404
        assert env.beta.vin not in got.text or env.beta.vin in url


def test_without_a_broker_the_session_fails_with_503(env: Env) -> None:
    r = env.client.post(
        f"/v1/vehicles/{env.alpha.vin}/diagnostics", json={}, headers=env.alpha.h("operator")
    )
    assert r.status_code == 503
    listed = env.client.get(f"/v1/vehicles/{env.alpha.vin}/diagnostics", headers=env.g).json()
    assert [(s["status"], "sending failed" in s["error"]) for s in listed["items"]] == [
        ("failed", True)
    ]
