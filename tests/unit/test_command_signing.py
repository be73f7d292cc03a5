"""Signed commands: the pure verify, and the attacks refused by the vehicle side code.

The four attacks of issue 4 run against `sim/command_agent.handle`, the code a simulated
car runs on every message of its `commands` topic: replaying a captured command, altering a
parameter, sending one VIN's command to another, and sending an expired one.
"""

import random

import msgspec
import pytest

from autocloud.domain import command_signing as signing
from autocloud.domain.command_keyset import KeyEntry, KeyRole
from autocloud.domain.command_signing import Rejection, Signer, new_private_key, verify
from autocloud.sim import inbound
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.vehicle import SimVehicle

VIN, OTHER_VIN = "WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002"
NOW = 1_767_225_600_000
LOCKED = "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"


def car(vin: str, signer: Signer, powertrain: Powertrain = Powertrain.BEV) -> SimVehicle:
    rng = random.Random(5)
    plan = FaultPlan(random.Random(6), offline_rate_per_h=0, clock_skew_s=0)
    vehicle = SimVehicle(vin, "vw", PRESET_FOR[powertrain], rng, (49.0, 8.4), plan, "sid1")
    vehicle.remote.trust([KeyEntry(signer.kid, signer.public.hex(), KeyRole.PLATFORM)])
    return vehicle


def command(
    signer: Signer, name: str = "unlock", *, vin: str = VIN, counter: int = 1, **overrides: object
) -> signing.SignedCommand:
    fields: dict[str, object] = {
        "id": f"c{counter}",
        "vin": vin,
        "name": name,
        "params": {},
        "issued": NOW,
        "expires": NOW + 60_000,
        "counter": counter,
    }
    fields.update(overrides)
    return signer.sign(**fields)  # type: ignore[arg-type]


def answers(vehicle: SimVehicle, payload: bytes, now: int = NOW + 1000) -> list[dict[str, object]]:
    """What the car publishes in answer: decoded `commands/result` bodies."""
    out = inbound.receive(vehicle, "commands", payload, now)
    assert all(topic == "commands/result" for topic, _ in out)
    return [msgspec.json.decode(body) for _, body in out]


@pytest.fixture
def signer() -> Signer:
    return Signer(new_private_key())


# --- the pure function -------------------------------------------------------------------


def test_a_good_command_verifies(signer: Signer) -> None:
    payload = signing.encode(command(signer))
    verdict = verify(
        payload, vin=VIN, keys={signer.kid: signer.public}, last_counters={}, now_ms=NOW
    )
    assert verdict.ok and verdict.command is not None and verdict.command.name == "unlock"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", Rejection.MALFORMED),
        (b'{"v": 1, "id": "x"}', Rejection.MALFORMED),
        (b"[]", Rejection.MALFORMED),
    ],
)
def test_unreadable_commands_are_malformed(signer: Signer, payload: bytes, reason: str) -> None:
    keys = {signer.kid: signer.public}
    assert verify(payload, vin=VIN, keys=keys, last_counters={}, now_ms=NOW).reason == reason


def test_a_key_the_vehicle_does_not_know_is_refused(signer: Signer) -> None:
    stranger = Signer(new_private_key())
    payload = signing.encode(command(stranger))
    keys = {signer.kid: signer.public}
    verdict = verify(payload, vin=VIN, keys=keys, last_counters={}, now_ms=NOW)
    assert verdict.reason == Rejection.UNKNOWN_KEY


def test_a_signature_by_another_key_under_a_known_kid_is_refused(signer: Signer) -> None:
    forger = Signer(new_private_key())
    forged = msgspec.structs.replace(command(forger), kid=signer.kid)
    keys = {signer.kid: signer.public}
    verdict = verify(signing.encode(forged), vin=VIN, keys=keys, last_counters={}, now_ms=NOW)
    assert verdict.reason == Rejection.BAD_SIGNATURE


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    a = {k: 1 for k in signing.SIGNED_FIELDS}
    b = dict(reversed(list(a.items())))
    assert signing.canonical(a) == signing.canonical(b)


def test_public_keys_parse_from_hex_and_base64(signer: Signer) -> None:
    import base64

    assert signing.parse_public_key(signer.public.hex()) == signer.public
    assert signing.parse_public_key(base64.b64encode(signer.public).decode()) == signer.public
    with pytest.raises(ValueError, match="32 raw Ed25519 bytes"):
        signing.parse_public_key("abcd")


# --- the attacks, refused by the vehicle ---------------------------------------------------


def test_the_vehicle_executes_a_good_command_and_answers(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    assert vehicle.model.signals()[LOCKED] is True
    got = answers(vehicle, signing.encode(command(signer)))
    assert [a["status"] for a in got] == ["accepted", "succeeded"]
    assert {a["id"] for a in got} == {"c1"}
    assert vehicle.model.signals()[LOCKED] is False
    assert vehicle.remote.report_now  # the next tick reports the change


def test_attack_replaying_a_captured_command_is_refused(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    first = signing.encode(command(signer, "unlock", counter=5))
    answers(vehicle, first)
    answers(vehicle, signing.encode(command(signer, "lock", counter=6)))
    assert vehicle.model.signals()[LOCKED] is True
    # The captured unlock again, under a fresh id so the resend memory does not answer it:
    # its signature no longer holds (the id is signed)...
    captured = signing.decode(first)
    assert captured is not None
    renamed = msgspec.structs.replace(captured, id="c99")
    assert answers(vehicle, signing.encode(renamed))[0]["reason"] == Rejection.BAD_SIGNATURE
    # The exact bytes again, once the car no longer remembers its answer: an old counter.
    vehicle.remote.answers.clear()
    replayed = answers(vehicle, first)
    assert [(a["status"], a["reason"]) for a in replayed] == [
        ("rejected", Rejection.REPLAYED_COUNTER)
    ]
    # ...and a validly signed command with an old counter is a replay.
    old = signing.encode(command(signer, "unlock", counter=4, id="c4"))
    got = answers(vehicle, old)
    assert got == [{**got[0], "status": "rejected", "reason": Rejection.REPLAYED_COUNTER}]
    assert vehicle.model.signals()[LOCKED] is True  # still locked: nothing ran


def test_attack_a_resent_command_is_answered_not_run_twice(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    payload = signing.encode(command(signer, "unlock"))
    first = answers(vehicle, payload)
    vehicle.model.lock()  # the driver locked it meanwhile
    again = answers(vehicle, payload)  # the platform resends after a reconnect
    assert [a["status"] for a in again] == ["succeeded"]  # the stored answer
    assert first[-1]["status"] == "succeeded"
    assert vehicle.remote.executed == 1
    assert vehicle.model.signals()[LOCKED] is True  # not unlocked a second time


def test_attack_altering_a_parameter_is_refused(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    signed = command(signer, "charge_limit", params={"percent": 80})
    altered = msgspec.structs.replace(signed, params={"percent": 50})
    got = answers(vehicle, signing.encode(altered))
    assert [(a["status"], a["reason"]) for a in got] == [("rejected", Rejection.BAD_SIGNATURE)]
    assert vehicle.remote.executed == 0


def test_attack_one_vins_command_sent_to_another_is_refused(signer: Signer) -> None:
    victim = car(OTHER_VIN, signer)
    got = answers(victim, signing.encode(command(signer, "unlock", vin=VIN)))
    assert [(a["status"], a["reason"]) for a in got] == [("rejected", Rejection.WRONG_VIN)]
    assert victim.model.signals()[LOCKED] is True


def test_attack_an_expired_command_is_refused(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    stale = signing.encode(command(signer, "unlock", expires=NOW + 60_000))
    got = answers(vehicle, stale, now=NOW + 61_000)
    assert [(a["status"], a["reason"]) for a in got] == [("rejected", Rejection.EXPIRED)]
    assert vehicle.model.signals()[LOCKED] is True


def test_the_vehicle_rechecks_interlocks_against_its_own_speed(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    vehicle.model.state.speed_kmh = 50.0
    got = answers(vehicle, signing.encode(command(signer, "unlock")))
    assert [(a["status"], a["reason"]) for a in got] == [("rejected", "vehicle_moving")]
    assert vehicle.model.signals()[LOCKED] is True


def test_electric_only_commands_fail_on_a_combustion_car(signer: Signer) -> None:
    vehicle = car(VIN, signer, Powertrain.ICE)
    got = answers(vehicle, signing.encode(command(signer, "charge_limit", params={"percent": 70})))
    assert [(a["status"], a.get("reason")) for a in got] == [
        ("accepted", None),
        ("failed", "not_supported"),
    ]


def test_effects_show_in_the_next_telemetry(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    vehicle.model.state.plugged_in = True
    for n, (name, params) in enumerate(
        [
            ("charge_limit", {"percent": 70}),
            ("trunk_open", {}),
            ("climate_start", {"target_temp_c": 23.5}),
            ("telemetry_rate", {"seconds": 5}),
            ("immobiliser_enable", {}),
            ("charge_start", {}),
        ],
        start=1,
    ):
        got = answers(vehicle, signing.encode(command(signer, name, counter=n, params=params)))
        assert got[-1]["status"] == "succeeded", (name, got)
    signals = vehicle.model.signals()
    assert signals["Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"] == 70
    assert signals["Vehicle.Body.Trunk.Rear.IsOpen"] is True
    assert signals["Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"] == 23.5
    assert vehicle.remote.report_s == 5 and vehicle.remote.immobilised and vehicle.charging


def test_garbage_on_the_commands_topic_is_dropped_without_an_answer(signer: Signer) -> None:
    vehicle = car(VIN, signer)
    assert inbound.receive(vehicle, "commands", b"\xff\x00", NOW) == []
    assert inbound.receive(vehicle, "commands", b'{"v":1}', NOW) == []
