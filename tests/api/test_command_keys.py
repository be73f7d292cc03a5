"""Key lifecycle through the API: enrolment, revocation, the owner leaving, roles.

An owner's app key goes with the ownership: detaching the owner (the car is sold) or
`DELETE /v1/vehicles/{vin}/keys/{kid}` revokes it, ends the open commands it signed, and
publishes a new signed key list to the car, which then refuses a command signed with the
revoked key itself (`unknown_key`). A key's role bounds what it may sign, on the platform
(409 `not_permitted`) and on the car.
"""

from pathlib import Path
from typing import Any

import msgspec
import pytest

from autocloud.domain.command_keyset import KeyList
from autocloud.sim import inbound
from autocloud.sim.vehicle import SimVehicle
from tests.api.conftest import NOW, Env, state
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
    assert inbound_keys(car, payload) == []
    assert app.signer.kid not in car.remote.keys
    env.ingest(state(a.vin, True, NOW - 1000))
    direct = msgspec.json.encode(app.sign("unlock"))
    assert [(x["status"], x["reason"]) for x in deliver(env, car, direct)] == [
        ("rejected", "unknown_key")
    ]
    log = env.client.get("/v1/audit", params={"vin": a.vin}, headers=a.h("operator")).json()
    assert "key_removed" in {e["action"] for e in log["items"]}


def inbound_keys(car: SimVehicle, payload: bytes) -> Any:
    return inbound.receive(car, "keys", payload, NOW + 500)


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
