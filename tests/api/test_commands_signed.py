"""Commands an owner's app signed itself (`POST /v1/vehicles/{vin}/commands/signed`).

The owner enrols the app's Ed25519 key with the car; the app signs its command (its own id,
counter and expiry); the platform checks the signature against the enrolled key, applies
the same authorisation, rate limits and interlocks as to its own commands, and forwards the
app's signature and counter unchanged. The simulated car (enrolled from
`GET /v1/vehicles/{vin}/keys`, as provisioning does) verifies it against the app's key and
carries it out; its answers go back through real ingest.
"""

import json
import random
from typing import Any

import msgspec
import pytest

from autocloud.domain import command_signing as signing
from autocloud.domain.command_keyset import key_entries
from autocloud.domain.command_signing import SignedCommand, Signer, new_private_key
from autocloud.sim import inbound
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.vehicle import SimVehicle
from tests.api.conftest import NOW, SPEED, Env, raw, state
from tests.api.test_commands_api import ALL_LOCKS, owner_token

Sent = list[tuple[str, str, bytes]]


class App:
    """An owner's phone app: its key, enrolled with the owner's car, and its counter."""

    def __init__(self, env: Env, vin: str, headers: dict[str, str]) -> None:
        self.env, self.vin, self.h = env, vin, headers
        self.signer = Signer(new_private_key())
        self.counter = 0
        r = env.client.post(
            f"/v1/vehicles/{vin}/keys",
            json={"public_key": self.signer.public.hex(), "label": "phone"},
            headers=headers,
        )
        assert r.status_code == 201, r.text

    def sign(self, name: str = "lock", **overrides: Any) -> SignedCommand:
        self.counter += 1
        fields: dict[str, Any] = {
            "id": f"app-{self.counter:04d}-{random.getrandbits(32):08x}",
            "vin": self.vin,
            "name": name,
            "params": {},
            "issued": NOW,
            "expires": NOW + 60_000,
            "counter": self.counter,
        }
        fields.update(overrides)
        return self.signer.sign(**fields)

    def send(self, command: SignedCommand | dict[str, Any], headers: Any = None) -> Any:
        body = command if isinstance(command, dict) else msgspec.structs.asdict(command)
        return self.env.client.post(
            f"/v1/vehicles/{self.vin}/commands/signed", json=body, headers=headers or self.h
        )


@pytest.fixture
def sent(env: Env) -> Sent:
    """What the platform publishes to vehicles (the API tests have no broker)."""
    out: Sent = []
    assert env.platform.commands is not None

    def send(vin: str, sub: str, body: bytes, retain: bool = False) -> None:
        if sub == "commands":  # key lists: tests/api/test_command_keys.py
            out.append((vin, sub, body))

    env.platform.commands.delivery._send = send
    return out


def car_of(env: Env, vin: str) -> SimVehicle:
    """A simulated car enrolled with the keys the platform lists for it."""
    plan = FaultPlan(random.Random(6), offline_rate_per_h=0, clock_skew_s=0)
    car = SimVehicle(vin, "alpha", PRESET_FOR[Powertrain.BEV], random.Random(5), (49, 8), plan, "s")
    keys = env.client.get(f"/v1/vehicles/{vin}/keys", headers=env.g).json()
    car.remote.trust(key_entries(keys))
    return car


def deliver(env: Env, car: SimVehicle, payload: bytes) -> list[dict[str, Any]]:
    """The car handles the command; its answers go through real ingest."""
    answers = inbound.receive(car, "commands", payload, NOW + 500)
    for topic, body in answers:
        batch = env.ingest(raw(car.vin, body, topic))
        assert batch.out.dead_letters == []
    return [json.loads(body) for _, body in answers]


def test_an_app_signed_command_reaches_the_car_unchanged_and_runs(env: Env, sent: Sent) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    app = App(env, a.vin, owner)
    env.ingest(state(a.vin, True, NOW - 1000))
    car = car_of(env, a.vin)
    signed = app.sign("lock")
    r = app.send(signed)
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["id"], c["state"], c["counter"], c["kid"]) == (signed.id, "sent", 1, app.signer.kid)
    assert c["caller"] == f"owner-{a.owner_id}"
    [(vin, subtopic, payload)] = sent
    assert (vin, subtopic) == (a.vin, "commands")
    assert signing.decode(payload) == signed  # the app's fields and signature, unchanged
    replies = deliver(env, car, payload)
    assert [x["status"] for x in replies] == ["accepted", "succeeded"]
    done = env.client.get(f"/v1/commands/{signed.id}", headers=owner).json()
    assert done["state"] == "succeeded"
    twin = env.client.get(f"/v1/vehicles/{a.vin}/twin", headers=owner).json()
    assert set(twin["pending"]) == set(ALL_LOCKS)  # desired until the car reports it
    log = env.client.get("/v1/audit", params={"command_id": signed.id}, headers=a.h("operator"))
    details = {e["action"]: e["detail"] for e in log.json()["items"]}
    assert f"app key {app.signer.kid}, counter 1" in details["sent"]
    # Sent again (the app retries): the first command, not a second one.
    again = app.send(signed)
    assert (again.status_code, again.json()["id"]) == (200, signed.id)
    assert len(sent) == 1


def test_the_car_refuses_a_replay_the_platform_did_not_see(env: Env, sent: Sent) -> None:
    """The car's counter check holds for app keys: an older counter is rejected by the car."""
    a = env.alpha
    app = App(env, a.vin, owner_token(env, a.owner_id, "alpha"))
    env.ingest(state(a.vin, True, NOW - 1000))
    car = car_of(env, a.vin)
    first, second = app.sign("lock"), app.sign("unlock")
    assert app.send(second).status_code == 201
    assert app.send(first).status_code == 201  # a new id: the platform forwards it
    assert [x["status"] for x in deliver(env, car, sent[0][2])] == ["accepted", "succeeded"]
    assert [(x["status"], x["reason"]) for x in deliver(env, car, sent[1][2])] == [
        ("rejected", "replayed_counter")
    ]
    got = env.client.get(f"/v1/commands/{first.id}", headers=env.g).json()
    assert (got["state"], got["reason"]) == ("rejected", "replayed_counter")


def test_bad_signatures_and_envelopes_are_refused_before_anything_is_stored(
    env: Env, sent: Sent
) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    app = App(env, a.vin, owner)
    good = msgspec.structs.asdict(app.sign("charge_limit", params={"percent": 80}))
    cases: dict[str, tuple[dict[str, Any], str]] = {
        "altered parameter": ({**good, "params": {"percent": 100}}, "signature does not hold"),
        "another car": ({**good, "vin": env.beta.vin}, "another VIN"),
        "expired": (
            msgspec.structs.asdict(app.sign(issued=NOW - 9000, expires=NOW - 1)),
            "expires must be in the future",
        ),
        "unknown key": (
            msgspec.structs.asdict(
                Signer(new_private_key()).sign(
                    id="stranger-01",
                    vin=a.vin,
                    name="lock",
                    params={},
                    issued=NOW,
                    expires=NOW + 60_000,
                    counter=1,
                )
            ),
            "is not enrolled",
        ),
        "defaults left out": (
            msgspec.structs.asdict(app.sign("climate_start")),
            "sign the parameters in full",
        ),
        "extra field": ({**good, "note": "hi"}, ""),
        "string counter": ({**good, "counter": "1"}, ""),
    }
    for label, (body, why) in cases.items():
        r = app.send(body)
        assert r.status_code == 422, (label, r.text)
        assert why in r.text, (label, r.text)
    # The platform's own key cannot be used to smuggle a command past its signing.
    platform_kid = env.client.get(f"/v1/vehicles/{a.vin}/keys", headers=owner).json()[0]["kid"]
    r = app.send({**good, "kid": platform_kid})
    assert r.status_code == 422 and "platform signs its own" in r.json()["detail"]
    assert env.client.get("/v1/commands", headers=env.g).json()["items"] == []
    assert sent == []


def test_authorisation_interlocks_and_keys_apply_to_app_commands(env: Env, sent: Sent) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    app = App(env, a.vin, owner)
    # An owner may not immobilise, even with a valid signature.
    r = app.send(app.sign("immobiliser_enable"))
    assert r.status_code == 403
    # Interlock: no unlock while moving (409 with the reason), and it is audited.
    env.send(a.vin, NOW - 1000, {SPEED: 40.0})
    r = app.send(app.sign("unlock"))
    assert (r.status_code, r.json()["reason"]) == (409, "vehicle_moving")
    # Another owner of the brand cannot use this owner's key, nor see the car.
    other = env.platform.registry.add_owner(
        env.platform.registry.authenticate(env.group_token), "alpha", "Eve", "eve@alpha.example"
    )
    eve = owner_token(env, other.id, "alpha")
    assert app.send(app.sign("lock"), headers=eve).status_code == 404
    # An operator may forward a command signed with an app key enrolled for the car.
    r = app.send(app.sign("lock"), headers=a.h("operator"))
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "queued"  # offline: it waits, with the app's signature
    assert sent == []


def test_rate_limit_per_vehicle_counts_app_commands(env: Env, sent: Sent) -> None:
    a = env.alpha
    app = App(env, a.vin, owner_token(env, a.owner_id, "alpha"))
    codes = [app.send(app.sign("horn_and_lights", params={"lights_only": True})).status_code]
    codes += [app.send(app.sign("horn_and_lights", params={"lights_only": True})).status_code]
    limit = 30  # command_rate_per_vehicle default
    codes += [
        app.send(app.sign("horn_and_lights", params={"lights_only": True})).status_code
        for _ in range(limit)
    ]
    assert codes.count(201) == limit and codes[-1] == 429
