"""The remote-command API: catalog, sending, owners, idempotency, rate limits, interlocks,
results through real ingest, expiry, the audit log and vehicles' keys.

The platform is not started (no broker): commands to an online vehicle are marked `sent`
and their publish fails quietly (a real platform resends when the vehicle comes back).
"""

import csv
import io
import json
import threading
from typing import Any

from autocloud.bootstrap import SYSTEM
from autocloud.domain.access import Role
from autocloud.domain.clock import FixedClock
from autocloud.domain.command_signing import Signer, new_private_key
from autocloud.services.fanout import Change
from tests.api.conftest import LOCKED, NOW, SOC, SPEED, Env, auth, raw, state

ALL_LOCKS = [
    LOCKED.replace("Row1.DriverSide", d)
    for d in ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide")
]


def send(env: Env, vin: str, name: str, headers: dict[str, str], **body: Any) -> Any:
    return env.client.post(
        f"/v1/vehicles/{vin}/commands", json={"name": name, **body}, headers=headers
    )


def owner_token(env: Env, owner_id: int, brand: str) -> dict[str, str]:
    _, token = env.platform.registry.issue_token(f"owner-{owner_id}", Role.VIEWER, brand, owner_id)
    return auth(token)


def result(env: Env, vin: str, seq: int, command_id: str, status: str, **extra: Any) -> None:
    body = {
        "v": 1,
        "sid": "car",
        "seq": seq,
        "ts": NOW - 100,
        "id": command_id,
        "status": status,
        **extra,
    }
    batch = env.ingest(raw(vin, json.dumps(body).encode(), "commands/result"))
    assert batch.out.dead_letters == []


def test_catalog_comes_from_the_table(env: Env) -> None:
    r = env.client.get("/v1/commands/catalog", headers=env.alpha.h("viewer"))
    assert r.status_code == 200
    by_name = {c["name"]: c for c in r.json()}
    limit = by_name["charge_limit"]["params"][0]
    assert (limit["name"], limit["min"], limit["max"], limit["required"]) == (
        "percent",
        50,
        100,
        True,
    )
    assert by_name["unlock"]["interlocks"][0]["refused_when"] == f"{SPEED} > 5"
    assert by_name["climate_start"]["interlocks"][0]["setting"] == "command_min_soc_pct"
    assert by_name["lock"]["desired"][LOCKED] is True
    assert by_name["immobiliser_enable"]["owner_may"] is False


def test_an_offline_vehicle_gets_its_command_queued_with_desired_state(env: Env) -> None:
    a = env.alpha
    r = send(env, a.vin, "lock", a.h("operator"))
    assert r.status_code == 201, r.text
    c = r.json()
    assert (c["state"], c["vin"], c["caller"]) == ("queued", a.vin, "alpha-operator")
    assert c["expires_ms"] == NOW + 60_000  # the table's default for lock
    twin = env.client.get(f"/v1/vehicles/{a.vin}/twin", headers=a.h("viewer")).json()
    assert {p: d["value"] for p, d in twin["desired"].items()} == {p: True for p in ALL_LOCKS}
    assert twin["desired"][LOCKED]["set_by"] == f"command {c['id']}"
    assert set(twin["pending"]) == set(ALL_LOCKS)
    got = env.client.get(f"/v1/commands/{c['id']}", headers=a.h("viewer")).json()
    assert got == c


def test_results_through_ingest_drive_the_lifecycle_and_the_twin(env: Env) -> None:
    a = env.alpha
    env.ingest(state(a.vin, True, NOW - 1000))
    c = send(env, a.vin, "lock", a.h("operator")).json()
    assert c["state"] == "sent" and c["counter"] == 1 and c["kid"]
    result(env, a.vin, 1, c["id"], "accepted")
    assert env.client.get(f"/v1/commands/{c['id']}", headers=a.h()).json()["state"] == "delivered"
    result(env, a.vin, 2, c["id"], "succeeded")
    env.send(a.vin, NOW - 50, {p: True for p in ALL_LOCKS})
    done = env.client.get(f"/v1/commands/{c['id']}", headers=a.h()).json()
    assert done["state"] == "succeeded"
    t = done["timings"]
    assert t["queued_ms"] <= t["sent_ms"] <= t["delivered_ms"] <= t["finished_ms"]
    twin = env.client.get(f"/v1/vehicles/{a.vin}/twin", headers=a.h()).json()
    assert twin["pending"] == []  # reported matches desired
    second = send(env, a.vin, "unlock", a.h("operator")).json()
    assert second["counter"] == 2  # one counter per (vehicle, key), increasing


def test_interlock_refusal_names_the_reason_and_is_audited(env: Env) -> None:
    a = env.alpha
    env.send(a.vin, NOW - 1000, {SPEED: 50.0, SOC: 10.0})
    r = send(env, a.vin, "unlock", a.h("operator"))
    assert r.status_code == 409
    assert r.json()["reason"] == "vehicle_moving"
    assert "50.0 km/h is above 5 km/h" in r.json()["detail"]
    r = send(env, a.vin, "climate_start", a.h("operator"), params={"target_temp_c": 22})
    assert (r.status_code, r.json()["reason"]) == (409, "battery_low")
    assert send(env, a.vin, "lock", a.h("operator")).status_code == 201  # lock is fine
    log = env.client.get("/v1/audit", headers=a.h("operator")).json()["items"]
    refused = [e for e in log if e["action"] == "refused"]
    assert [e["name"] for e in refused] == ["unlock", "climate_start"]
    assert refused[0]["detail"].startswith("vehicle_moving:")


def test_bad_params_are_422_naming_the_param(env: Env) -> None:
    r = send(env, env.alpha.vin, "charge_limit", env.alpha.h("operator"), params={"percent": 30})
    assert r.status_code == 422
    assert "'percent'" in r.json()["detail"] and "between 50 and 100" in r.json()["detail"]
    r = send(env, env.alpha.vin, "self_destruct", env.alpha.h("operator"))
    assert r.status_code == 422 and "unknown command" in r.json()["detail"]


def test_roles_viewers_cannot_and_immobiliser_needs_admin(env: Env) -> None:
    a = env.alpha
    assert send(env, a.vin, "lock", a.h("viewer")).status_code == 403
    assert send(env, a.vin, "immobiliser_enable", a.h("operator")).status_code == 403
    assert send(env, a.vin, "immobiliser_enable", a.h("admin")).status_code == 201


def test_an_owner_commands_only_their_own_vehicles(env: Env) -> None:
    a = env.alpha
    mine = owner_token(env, a.owner_id, "alpha")
    r = send(env, a.vin, "lock", mine)
    assert r.status_code == 201, r.text
    assert send(env, a.vin, "immobiliser_enable", mine).status_code == 403  # not for owners
    # Another owner of the same brand sees nothing of this car.
    olaf = env.platform.registry.add_owner(SYSTEM, "alpha", "Olaf", "olaf@alpha.example")
    theirs = owner_token(env, olaf.id, "alpha")
    r = send(env, a.vin, "lock", theirs)
    assert r.status_code == 404
    assert (
        env.client.get(f"/v1/commands/{r.json().get('id', 'x')}", headers=theirs).status_code == 404
    )
    assert env.client.get(f"/v1/vehicles/{a.vin}/twin", headers=theirs).status_code == 404
    assert env.client.get("/v1/commands", headers=theirs).json()["items"] == []
    assert [c["vin"] for c in env.client.get("/v1/commands", headers=mine).json()["items"]] == [
        a.vin
    ]
    # Nor the other brand's car.
    assert send(env, env.beta.vin, "lock", mine).status_code == 404


def test_owner_tokens_are_viewers_of_the_owners_brand(env: Env) -> None:
    r = env.client.post(
        "/v1/tokens",
        json={"name": "o", "role": "admin", "owner_id": env.alpha.owner_id},
        headers=env.g,
    )
    assert r.status_code == 422
    r = env.client.post(
        "/v1/tokens",
        json={"name": "o", "role": "viewer", "owner_id": env.alpha.owner_id},
        headers=env.g,
    )
    assert r.status_code == 201 and (r.json()["brand"], r.json()["owner_id"]) == (
        "alpha",
        env.alpha.owner_id,
    )
    r = env.client.post(
        "/v1/tokens",
        json={"name": "o", "role": "viewer", "owner_id": env.beta.owner_id},
        headers=env.alpha.h(),
    )
    assert r.status_code == 404  # another brand's owner


def test_an_idempotency_key_makes_a_retry_one_command(env: Env) -> None:
    a = env.alpha
    h = {**a.h("operator"), "Idempotency-Key": "retry-1"}
    first = send(env, a.vin, "charge_limit", h, params={"percent": 80})
    again = send(env, a.vin, "charge_limit", h, params={"percent": 80})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    clash = send(env, a.vin, "charge_limit", h, params={"percent": 90})
    assert clash.status_code == 409 and "different command" in clash.json()["detail"]
    body_key = send(env, a.vin, "lock", a.h("operator"), idempotency_key="retry-2")
    assert (
        send(env, a.vin, "lock", a.h("operator"), idempotency_key="retry-2").json()["id"]
        == body_key.json()["id"]
    )
    # Keys belong to their caller: the admin's "retry-1" is a command of its own.
    other = send(
        env,
        a.vin,
        "charge_limit",
        {**a.h("admin"), "Idempotency-Key": "retry-1"},
        params={"percent": 80},
    )
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    items = env.client.get(f"/v1/vehicles/{a.vin}/commands", headers=a.h()).json()["items"]
    assert len(items) == 3


def test_rate_limit_per_vehicle(env: Env) -> None:
    a = env.alpha
    limit = env.platform.settings.command_rate_per_vehicle
    codes = [
        send(env, a.vin, "horn_and_lights", a.h("operator")).status_code for _ in range(limit + 1)
    ]
    assert codes == [201] * limit + [429]
    r = send(env, a.vin, "horn_and_lights", a.h("admin"))
    assert r.status_code == 429 and r.json()["retry_after_s"] > 0
    assert "this vehicle" in r.json()["detail"]
    # Another vehicle is not limited by this one; a minute later this one has tokens again.
    assert send(env, env.beta.vin, "horn_and_lights", env.g).status_code == 201
    clock = env.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(60_000)
    assert send(env, a.vin, "horn_and_lights", a.h("operator")).status_code == 201


def test_expiry_and_late_results(env: Env) -> None:
    a = env.alpha
    c = send(env, a.vin, "lock", a.h("operator"), expires_in_s=5).json()
    assert c["expires_ms"] == NOW + 5000
    commands = env.platform.commands
    assert commands is not None
    assert commands.delivery.expire_due() == 0
    clock = env.platform.clock
    assert isinstance(clock, FixedClock)
    clock.advance(5000)
    assert commands.delivery.expire_due() == 1
    got = env.client.get(f"/v1/commands/{c['id']}", headers=a.h()).json()
    assert got["state"] == "expired" and "never delivered" in got["reason"]
    result(env, a.vin, 1, c["id"], "succeeded")  # too late: recorded, nothing changes
    assert env.client.get(f"/v1/commands/{c['id']}", headers=a.h()).json()["state"] == "expired"
    actions = [
        e["action"]
        for e in env.client.get("/v1/audit", params={"command_id": c["id"]}, headers=a.h()).json()[
            "items"
        ]
    ]
    assert actions == ["queued", "expired", "ignored_result"]
    assert send(env, a.vin, "lock", a.h("operator"), expires_in_s=0).status_code == 422


def test_a_long_poll_answers_with_its_own_command_once_it_has_finished(env: Env) -> None:
    """`wait_s` holds the call until the command's result is committed, and answers with that
    result; results of other commands (of the same car and of another tenant's) do not end
    it, and another tenant's command is 404 at once."""
    a, b = env.alpha, env.beta
    env.ingest(state(a.vin, True, NOW - 1000), state(b.vin, True, NOW - 1000))
    c = send(env, a.vin, "lock", a.h("operator")).json()
    other = send(env, a.vin, "horn_and_lights", a.h("operator")).json()
    theirs = send(env, b.vin, "lock", b.h("operator")).json()
    answers: list[Any] = []

    def poll() -> None:
        got = env.client.get(f"/v1/commands/{c['id']}", params={"wait_s": 60}, headers=a.h())
        answers.append(got)

    poller = threading.Thread(target=poll)
    poller.start()
    result(env, a.vin, 1, c["id"], "accepted")
    result(env, a.vin, 2, other["id"], "succeeded")
    result(env, b.vin, 1, theirs["id"], "succeeded")
    assert not answers  # none of those ended it
    result(env, a.vin, 3, c["id"], "succeeded", data={"at": 1})
    poller.join(timeout=30)
    assert not poller.is_alive()
    done = answers[0].json()
    assert answers[0].status_code == 200
    assert (done["id"], done["state"], done["result"]) == (c["id"], "succeeded", {"at": 1})
    hidden = env.client.get(f"/v1/commands/{theirs['id']}", params={"wait_s": 60}, headers=a.h())
    assert hidden.status_code == 404
    finished = env.client.get(f"/v1/commands/{c['id']}", params={"wait_s": 60}, headers=a.h())
    assert finished.json()["state"] == "succeeded"


def test_changes_go_to_the_live_stream(env: Env) -> None:
    seen: list[Change] = []
    env.platform.hub.publish = seen.extend  # type: ignore[method-assign,assignment]
    env.ingest(state(env.alpha.vin, True, NOW - 1000))
    seen.clear()
    c = send(env, env.alpha.vin, "lock", env.alpha.h("operator")).json()
    assert [(x.kind, x.data["state"]) for x in seen] == [("command", "queued"), ("command", "sent")]
    assert seen[0].brand == "alpha" and seen[0].data["id"] == c["id"]


def test_audit_csv_export(env: Env) -> None:
    a = env.alpha
    send(env, a.vin, "lock", a.h("operator"))
    r = env.client.get("/v1/audit", params={"format": "csv"}, headers=a.h("admin"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["vin"], x["name"], x["action"], x["caller"]) for x in rows] == [
        (a.vin, "lock", "queued", "alpha-operator")
    ]
    assert env.client.get("/v1/audit", headers=a.h("viewer")).status_code == 403


def test_vehicle_keys_platform_first_then_enrolled_app_keys(env: Env) -> None:
    a = env.alpha
    keys = env.client.get(f"/v1/vehicles/{a.vin}/keys", headers=a.h("viewer")).json()
    assert [k["label"] for k in keys] == ["platform"]
    app = Signer(new_private_key())
    mine = owner_token(env, a.owner_id, "alpha")
    r = env.client.post(
        f"/v1/vehicles/{a.vin}/keys",
        json={"public_key": app.public.hex(), "label": "Alice's phone"},
        headers=mine,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["kid"], r.json()["owner_id"]) == (app.kid, a.owner_id)
    keys = env.client.get(f"/v1/vehicles/{a.vin}/keys", headers=a.h("viewer")).json()
    assert [k["kid"] for k in keys] == [keys[0]["kid"], app.kid]
    bad = env.client.post(
        f"/v1/vehicles/{a.vin}/keys",
        json={"public_key": "12", "label": "x"},
        headers=a.h("operator"),
    )
    assert bad.status_code == 422
    viewer = env.client.post(
        f"/v1/vehicles/{a.vin}/keys",
        json={"public_key": app.public.hex(), "label": "x"},
        headers=a.h("viewer"),
    )
    assert viewer.status_code == 403
