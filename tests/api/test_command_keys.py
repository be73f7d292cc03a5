"""Key lifecycle through the API: enrolment, revocation, the owner leaving, roles.

An owner's app key goes with the ownership: detaching the owner (the car is sold) or
`DELETE /v1/vehicles/{vin}/keys/{kid}` revokes it, ends the open commands it signed, and
publishes a new signed key list to the car, which then refuses a command signed with the
revoked key itself (`unknown_key`). A key's role bounds what it may sign, on the platform
(409 `not_permitted`) and on the car. The car answers every list (`keys/result`, through
real ingest here); `GET /v1/vehicles/{vin}/key-list` and `autocloud keys` show the serial it
applied, `pending` while it lags, and a refusal with the car's reason.
"""

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from autocloud.domain.command_keyset import KeyEntry, KeyList, encode_key_list, sign_key_list
from autocloud.domain.command_signing import Signer, new_private_key
from autocloud.sim import inbound
from autocloud.sim.vehicle import SimVehicle
from tests.api.conftest import NOW, Env, raw, state
from tests.api.test_commands_api import owner_token
from tests.api.test_commands_signed import App, car_of, deliver

Published = list[tuple[str, str, bytes, bool]]


@pytest.fixture
def published(env: Env) -> Published:
    """Everything the platform publishes to vehicles (the API tests have no broker)."""
    out: Published = []

    def send(vin: str, sub: str, body: bytes, retain: bool = False) -> None:
        out.append((vin, sub, body, retain))

    assert env.platform.commands is not None
    env.platform.commands.delivery._send = send
    return out


def key_lists(published: Published) -> list[KeyList]:
    return [
        msgspec.json.decode(body, type=KeyList)
        for _, sub, body, retain in published
        if sub == "keys" and body and retain
    ]


def kids(env: Env, vin: str) -> list[str]:
    return [k["kid"] for k in env.client.get(f"/v1/vehicles/{vin}/keys", headers=env.g).json()]


def test_a_sold_car_stops_trusting_the_former_owners_key(env: Env, published: Published) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    app = App(env, a.vin, owner)  # the owner enrols the phone: the car is told at once
    [enrolled] = key_lists(published)
    assert {(k.kid, k.role) for k in enrolled.keys} >= {(app.signer.kid, "owner")}
    car = car_of(env, a.vin)  # provisioned with the platform key and the app key
    assert car.remote.roles[app.signer.kid] == "owner"
    waiting = app.send(app.sign("lock"))  # offline: it waits, signed by the app
    assert (waiting.status_code, waiting.json()["state"]) == (201, "queued")

    r = env.client.delete(f"/v1/vehicles/{a.vin}/owners/{a.owner_id}", headers=a.h("operator"))
    assert r.status_code == 200, r.text

    assert kids(env, a.vin) == [enrolled.kid]  # the platform's key only
    ended = env.client.get(f"/v1/commands/{waiting.json()['id']}", headers=env.g).json()
    assert ended["state"] == "expired" and "revoked" in ended["reason"]
    latest = key_lists(published)[-1]
    assert latest.serial > enrolled.serial
    assert [k.kid for k in latest.keys] == [enrolled.kid]
    # The car applies the new list; the former owner's app, talking to the car by any
    # other path, is refused by the car itself.
    payload = next(b for _, s, b, _r in reversed(published) if s == "keys")
    assert answer(env, car, payload)["status"] == "applied"
    assert app.signer.kid not in car.remote.keys
    assert key_list_state(env, a.vin)["applied_serial"] == latest.serial
    env.ingest(state(a.vin, True, NOW - 1000))
    direct = msgspec.json.encode(app.sign("unlock"))
    assert [(x["status"], x["reason"]) for x in deliver(env, car, direct)] == [
        ("rejected", "unknown_key")
    ]
    log = env.client.get("/v1/audit", params={"vin": a.vin}, headers=a.h("operator")).json()
    assert "key_removed" in {e["action"] for e in log["items"]}


def inbound_keys(car: SimVehicle, payload: bytes) -> Any:
    return inbound.receive(car, "keys", payload, NOW + 500)


def answer(env: Env, car: SimVehicle, payload: bytes) -> dict[str, Any]:
    """The car handles a key list; its answer goes through real ingest."""
    [(topic, body)] = inbound_keys(car, payload)
    assert topic == "keys/result"
    batch = env.ingest(raw(car.vin, body, topic))
    assert batch.out.dead_letters == []
    return dict(json.loads(body))


def key_list_state(env: Env, vin: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    r = env.client.get(f"/v1/vehicles/{vin}/key-list", headers=headers or env.g)
    assert r.status_code == 200, r.text
    return dict(r.json())


def newest_list(published: Published) -> bytes:
    return next(b for _, s, b, _r in reversed(published) if s == "keys" and b)


def audit_actions(env: Env, vin: str) -> list[str]:
    log = env.client.get("/v1/audit", params={"vin": vin}, headers=env.g).json()["items"]
    return [e["action"] for e in log if e["action"].startswith("key_list")]  # oldest first


def test_the_car_confirms_each_key_list_and_the_api_shows_it(
    env: Env, published: Published
) -> None:
    a = env.alpha
    assert key_list_state(env, a.vin) | {"vin": None} == {
        "vin": None,
        "serial": None,
        "status": "none",
        "behind": None,
        "applied_serial": None,
        "applied_ts": None,
        "applied_ms": None,
        "refused_serial": None,
        "refused_reason": None,
        "refused_ts": None,
        "refused_ms": None,
    }
    App(env, a.vin, a.h("operator"))  # list 1 is published
    first = key_list_state(env, a.vin)
    assert (first["serial"], first["status"], first["behind"]) == (1, "pending", 1)
    car = car_of(env, a.vin)
    assert body_of(answer(env, car, newest_list(published))) == {
        "v": 1,
        "ts": NOW + 500,
        "status": "applied",
        "serial": 1,
    }
    done = key_list_state(env, a.vin)
    assert (done["status"], done["applied_serial"], done["behind"]) == ("applied", 1, 0)
    assert done["applied_ms"] == NOW and done["applied_ts"] == NOW + 500

    App(env, a.vin, a.h("operator"))  # list 2: the car lags until it answers
    lagging = key_list_state(env, a.vin)
    assert (lagging["serial"], lagging["status"], lagging["applied_serial"]) == (2, "pending", 1)
    assert answer(env, car, newest_list(published))["serial"] == 2
    assert key_list_state(env, a.vin)["status"] == "applied"
    # The retained list again (a reconnect): confirmed again, recorded once.
    assert answer(env, car, newest_list(published))["status"] == "applied"
    assert audit_actions(env, a.vin) == ["key_list_applied", "key_list_applied"]


def body_of(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its session and sequence number (the car's own counters)."""
    assert isinstance(answer.pop("sid"), str) and isinstance(answer.pop("seq"), int)
    return answer


def test_odd_answers_change_nothing_but_the_audit_log(env: Env, published: Published) -> None:
    """A late answer about an older list does not lower the confirmed serial; a claim to
    have applied a list never sent is audited and ignored."""
    a = env.alpha
    App(env, a.vin, a.h("operator"))
    App(env, a.vin, a.h("operator"))
    car = car_of(env, a.vin)
    assert answer(env, car, newest_list(published))["serial"] == 2
    for seq, serial in ((900, 1), (901, 99)):
        body = {"v": 1, "sid": "x", "seq": seq, "ts": NOW, "status": "applied", "serial": serial}
        batch = env.ingest(raw(a.vin, json.dumps(body).encode(), "keys/result"))
        assert batch.out.dead_letters == []
    assert key_list_state(env, a.vin)["applied_serial"] == 2
    assert audit_actions(env, a.vin) == ["key_list_applied", "key_list_unknown"]
    log = env.client.get("/v1/audit", params={"vin": a.vin}, headers=env.g).json()["items"]
    assert "applied key list 99; the newest sent is 2" in log[-1]["detail"]
    # Not a valid answer at all: a dead letter with the reason, like any bad message.
    body = {"v": 1, "sid": "x", "seq": 902, "ts": NOW, "status": "applied"}
    batch = env.ingest(raw(a.vin, json.dumps(body).encode(), "keys/result"))
    assert [(d.reason, "serial" in d.detail) for d in batch.out.dead_letters] == [("schema", True)]


def test_a_refused_key_list_shows_with_the_cars_reason(
    env: Env, published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = env.alpha
    ops = App(env, a.vin, a.h("operator"))
    car = car_of(env, a.vin)
    assert answer(env, car, newest_list(published))["serial"] == 1

    # A forged list (not the platform's key) with a serial the platform never sent: refused
    # and recorded, but the newest real list stays applied.
    forger = Signer(new_private_key())
    fake = sign_key_list(
        forger,
        vin=a.vin,
        serial=9,
        issued=NOW,
        keys=[KeyEntry(forger.kid, forger.public.hex(), "platform")],  # type: ignore[arg-type]
    )
    assert answer(env, car, encode_key_list(fake))["reason"] == "unknown_key"
    forged = key_list_state(env, a.vin)
    assert (forged["status"], forged["refused_serial"], forged["refused_reason"]) == (
        "applied",
        9,
        "unknown_key",
    )

    # The car holds a newer list than the platform remembers (its database was restored
    # from a backup): it refuses the next real list as a replay. Refused, and it shows.
    car.remote.key_serial = 100
    r = env.client.delete(f"/v1/vehicles/{a.vin}/keys/{ops.signer.kid}", headers=a.h("admin"))
    assert r.status_code == 204
    assert body_of(answer(env, car, newest_list(published))) == {
        "v": 1,
        "ts": NOW + 500,
        "status": "refused",
        "serial": 2,
        "reason": "replayed_counter",
    }
    assert ops.signer.kid in car.remote.keys  # the car still trusts the revoked key
    refused = key_list_state(env, a.vin)
    assert (refused["status"], refused["serial"], refused["applied_serial"]) == ("refused", 2, 1)
    assert (refused["refused_serial"], refused["refused_reason"]) == (2, "replayed_counter")
    assert audit_actions(env, a.vin) == ["key_list_applied", "key_list_refused", "key_list_refused"]

    # The CLI shows it too.
    from typer.testing import CliRunner

    from autocloud.entrypoints.cli import client
    from autocloud.entrypoints.cli.main import app as cli_app

    def connect(self: client.Api, base_url: str | None = None, data_dir: object = None) -> None:
        self.base_url = "http://testserver"
        self._client = env.client
        env.client.headers["Authorization"] = f"Bearer {a.tokens['viewer']}"

    monkeypatch.setattr(client.Api, "__init__", connect)
    monkeypatch.setenv("COLUMNS", "200")
    shown = CliRunner().invoke(cli_app, ["keys", a.vin])
    assert shown.exit_code == 0, shown.output
    assert "key list 2: refused, the car applied 1" in shown.output
    assert "last refused: 2 (replayed_counter)" in shown.output
    assert "platform" in shown.output  # the keys table


def test_owners_read_their_own_cars_key_list_only(env: Env, published: Published) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    App(env, a.vin, owner)
    assert key_list_state(env, a.vin, owner)["serial"] == 1
    foreign = env.client.get(f"/v1/vehicles/{env.beta.vin}/key-list", headers=owner)
    assert foreign.status_code == 404 and env.beta.vin not in foreign.text
    other_brand = env.client.get(f"/v1/vehicles/{a.vin}/key-list", headers=env.beta.h("admin"))
    assert other_brand.status_code == 404


def test_revoking_a_key_through_the_api(env: Env, published: Published) -> None:
    a = env.alpha
    owner = owner_token(env, a.owner_id, "alpha")
    mine, ops = App(env, a.vin, owner), App(env, a.vin, a.h("operator"))
    platform_kid = kids(env, a.vin)[0]
    url = f"/v1/vehicles/{a.vin}/keys/"
    # An owner may not revoke a key they did not enrol (not found, as one that does not
    # exist), nor may a viewer; nobody removes the platform's key.
    assert env.client.delete(url + ops.signer.kid, headers=owner).status_code == 404
    assert env.client.delete(url + mine.signer.kid, headers=a.h("viewer")).status_code == 403
    assert env.client.delete(url + platform_kid, headers=a.h("admin")).status_code == 409
    assert env.client.delete(url + "0" * 16, headers=a.h("admin")).status_code == 404
    lists = len(key_lists(published))
    assert env.client.delete(url + mine.signer.kid, headers=owner).status_code == 204
    assert env.client.delete(url + ops.signer.kid, headers=a.h("operator")).status_code == 204
    assert kids(env, a.vin) == [platform_kid]
    assert len(key_lists(published)) == lists + 2
    # A revoked key signs nothing the platform forwards.
    r = mine.send(mine.sign("lock"))
    assert r.status_code == 422 and "not enrolled" in r.json()["detail"]


def test_a_key_may_sign_only_what_its_role_allows(env: Env, published: Published) -> None:
    a = env.alpha
    app = App(env, a.vin, owner_token(env, a.owner_id, "alpha"))
    keys = env.client.get(f"/v1/vehicles/{a.vin}/keys", headers=env.g).json()
    roles = {k["kid"]: (k["role"], set(k["commands"])) for k in keys}
    assert roles[app.signer.kid][0] == "owner"
    assert "immobiliser_enable" not in roles[app.signer.kid][1]
    assert "immobiliser_enable" in roles[keys[0]["kid"]][1]  # the platform's key
    # An admin may immobilise, but not with a command signed by the owner's phone.
    r = app.send(app.sign("immobiliser_enable"), headers=a.h("admin"))
    assert (r.status_code, r.json()["reason"]) == (409, "not_permitted")
    assert env.client.get("/v1/commands", headers=env.g).json()["items"] == []


def test_parameters_are_compared_as_signed_bytes(env: Env, published: Published) -> None:
    """80.0 equals 80 in Python, but it is other bytes: forwarded, the car would find the
    signature broken (the platform stores the table's 80). Refused up front."""
    a = env.alpha
    app = App(env, a.vin, owner_token(env, a.owner_id, "alpha"))
    r = app.send(app.sign("charge_limit", params={"percent": 80.0}))
    assert r.status_code == 422 and "sign the parameters in full" in r.json()["detail"]
    r = app.send(app.sign("charge_limit", params={"percent": 80}))
    assert r.status_code == 201, r.text


def test_deleting_a_vehicle_clears_its_retained_key_list(env: Env, published: Published) -> None:
    a = env.alpha
    App(env, a.vin, a.h("operator"))
    assert env.client.delete(f"/v1/vehicles/{a.vin}", headers=a.h("admin")).status_code == 204
    assert published[-1] == (a.vin, "keys", b"", True)


def test_cli_forwards_a_signed_command_from_a_file(
    env: Env, published: Published, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from autocloud.entrypoints.cli import client
    from autocloud.entrypoints.cli.main import app as cli_app

    def connect(self: client.Api, base_url: str | None = None, data_dir: object = None) -> None:
        self.base_url = "http://testserver"
        self._client = env.client
        env.client.headers["Authorization"] = f"Bearer {env.alpha.tokens['operator']}"

    monkeypatch.setattr(client.Api, "__init__", connect)
    monkeypatch.setenv("COLUMNS", "200")
    a = env.alpha
    phone = App(env, a.vin, a.h("operator"))
    signed = phone.sign("horn_and_lights", params={"lights_only": True})
    path = tmp_path / "signed.json"
    path.write_bytes(msgspec.json.encode(signed))
    runner = CliRunner()
    done = runner.invoke(cli_app, ["command", "send-signed", a.vin, str(path)])
    assert done.exit_code == 0, done.output
    assert signed.id in done.output and f"counter {signed.counter}" in done.output
    got = env.client.get(f"/v1/commands/{signed.id}").json()
    assert (got["kid"], got["state"]) == (phone.signer.kid, "queued")
    path.write_text("[1, 2]")
    refused = runner.invoke(cli_app, ["command", "send-signed", a.vin, str(path)])
    assert isinstance(refused.exception, client.CliError)
    assert "one signed command" in str(refused.exception)
