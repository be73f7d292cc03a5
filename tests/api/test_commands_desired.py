"""Desired state of commands that end without being carried out: the twin takes it back.

A command that implies a state (lock: all doors locked) writes it into the twin's desired
signals; the twin lists them as `pending` until the car reports the same values. When the
command fails, is rejected or expires, those values must go (else the twin shows "pending"
for ever); values another command or an operator set since are left alone.
"""

from typing import Any

import pytest

from autocloud.domain.clock import FixedClock
from tests.api.conftest import NOW, Env, state
from tests.api.test_commands_api import ALL_LOCKS, result, send

LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"


def twin(env: Env, vin: str) -> Any:
    return env.client.get(f"/v1/vehicles/{vin}/twin", headers=env.g).json()


@pytest.mark.parametrize("status", ["rejected", "failed"])
def test_a_refused_or_failed_command_takes_its_desired_state_back(env: Env, status: str) -> None:
    a = env.alpha
    env.ingest(state(a.vin, True, NOW - 1000))
    c = send(env, a.vin, "lock", a.h("operator")).json()
    assert set(twin(env, a.vin)["pending"]) == set(ALL_LOCKS)
    result(env, a.vin, 1, c["id"], status, reason="bad_signature")
    got = twin(env, a.vin)
    assert (got["desired"], got["pending"]) == ({}, [])
    log = env.client.get("/v1/audit", params={"command_id": c["id"]}, headers=a.h("operator"))
    assert [e["action"] for e in log.json()["items"]][-1] == status


def test_an_expired_command_takes_its_desired_state_back(env: Env) -> None:
    a = env.alpha
    c = send(env, a.vin, "charge_limit", a.h("operator"), params={"percent": 80}).json()
    assert twin(env, a.vin)["desired"][LIMIT]["value"] == 80
    clock = env.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(121_000)
    assert env.platform.commands is not None
    assert env.platform.commands.delivery.expire_due() == 1
    assert env.client.get(f"/v1/commands/{c['id']}", headers=env.g).json()["state"] == "expired"
    assert twin(env, a.vin)["desired"] == {}


def test_values_set_since_by_others_stay(env: Env) -> None:
    a = env.alpha
    env.ingest(state(a.vin, True, NOW - 1000))
    lock = send(env, a.vin, "lock", a.h("operator")).json()
    unlock = send(env, a.vin, "unlock", a.h("operator")).json()  # sets the same four doors
    r = env.client.patch(
        f"/v1/vehicles/{a.vin}/twin/desired", json={LIMIT: 90}, headers=a.h("operator")
    )
    assert r.status_code == 200
    result(env, a.vin, 1, lock["id"], "rejected", reason="replayed_counter")
    desired = twin(env, a.vin)["desired"]
    assert {p: (d["value"], d["set_by"]) for p, d in desired.items()} == {
        **{p: (False, f"command {unlock['id']}") for p in ALL_LOCKS},
        LIMIT: (90, "alpha-operator"),
    }


def test_a_rejection_that_comes_at_once_still_clears_it(env: Env) -> None:
    """A vehicle that rejects the command the moment it is published (before the API call
    has even returned) must not leave its desired values behind: they are stored with the
    command, before the publish, so the rejection always finds them."""
    a = env.alpha
    env.ingest(state(a.vin, True, NOW - 1000))
    service = env.platform.commands
    assert service is not None
    real_send = service.delivery.send_new

    def send_and_reject_at_once(command: Any, *rest: Any) -> Any:
        sent = real_send(command, *rest)
        result(env, a.vin, 1, command.id, "rejected", reason="bad_signature")
        return sent

    service.delivery.send_new = send_and_reject_at_once  # type: ignore[method-assign,assignment]
    c = send(env, a.vin, "lock", a.h("operator")).json()
    assert env.client.get(f"/v1/commands/{c['id']}", headers=env.g).json()["state"] == "rejected"
    got = twin(env, a.vin)
    assert (got["desired"], got["pending"]) == ({}, [])
