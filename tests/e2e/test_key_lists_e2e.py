"""Key lists end to end: the embedded platform (amqtt, SQLite) and simulated cars.

The platform publishes a signed key list (retained) after each key change; each car applies
it or refuses it and says so on `keys/result`, through the broker and real ingest; the API
shows the serial the car applied, `pending` while it lags (offline), and a refusal with the
car's reason. The world (three parked cars) is the one of `test_commands_e2e.py`.
"""

from typing import Any

from autocloud.bootstrap import SYSTEM, Platform
from autocloud.domain.access import Role
from autocloud.domain.command_keyset import KeyListState, KeyListSync, KeyRole
from autocloud.domain.command_signing import Signer, new_private_key
from autocloud.entrypoints.api.app import create_app
from autocloud.sim.fleet import Fleet
from tests.api.conftest import TestClient, auth
from tests.e2e.test_commands_e2e import go_offline, service, town, world
from tests.support.vehicle import eventually

__all__ = ["town", "world"]  # the fixtures, shared with the commands' end-to-end tests


def key_list(platform: Platform, vin: str) -> KeyListState:
    assert platform.key_lists is not None
    return platform.key_lists.state(SYSTEM, vin)[1]


def api_key_list(platform: Platform, vin: str) -> dict[str, Any]:
    _, token = platform.registry.issue_token(f"e2e-{vin}", Role.VIEWER, None)
    client = TestClient(create_app(platform))
    try:
        r = client.get(f"/v1/vehicles/{vin}/key-list", headers=auth(token))
    finally:
        client.close()
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_the_car_confirms_each_key_list_it_applies(world: tuple[Platform, Fleet]) -> None:
    platform, fleet = world
    car = fleet.vehicles[0]
    assert key_list(platform, car.vin).status is KeyListSync.NONE
    app = Signer(new_private_key())
    service(platform).add_key(SYSTEM, car.vin, app.public.hex(), "depot tablet")
    eventually(lambda: key_list(platform, car.vin).status is KeyListSync.APPLIED)
    applied = key_list(platform, car.vin)
    assert applied.applied_serial == applied.serial == car.remote.key_serial
    assert car.remote.roles.get(app.kid) == KeyRole.OPERATOR
    shown = api_key_list(platform, car.vin)
    assert (shown["status"], shown["applied_serial"], shown["behind"]) == (
        "applied",
        applied.serial,
        0,
    )

    service(platform).remove_key(SYSTEM, car.vin, app.kid)
    eventually(lambda: key_list(platform, car.vin).applied_serial == applied.serial + 1)
    assert app.kid not in car.remote.keys
    assert key_list(platform, car.vin).status is KeyListSync.APPLIED


def test_an_offline_car_is_pending_until_it_returns(world: tuple[Platform, Fleet]) -> None:
    platform, fleet = world
    car = fleet.vehicles[1]
    go_offline(platform, car)
    app = Signer(new_private_key())
    service(platform).add_key(SYSTEM, car.vin, app.public.hex(), "phone")
    waiting = key_list(platform, car.vin)
    assert (waiting.status, waiting.serial, waiting.applied_serial) == (
        KeyListSync.PENDING,
        1,
        None,
    )
    assert api_key_list(platform, car.vin)["status"] == "pending"
    car.plan.offline_left_s = 0.5  # back: the retained list reaches it
    eventually(lambda: key_list(platform, car.vin).status is KeyListSync.APPLIED, timeout=30)
    assert app.kid in car.remote.keys


def test_a_refused_key_list_shows_with_the_cars_reason(world: tuple[Platform, Fleet]) -> None:
    """The car holds a newer list than the platform remembers (a database restored from a
    backup): it refuses the platform's next list as a replay and keeps its keys."""
    platform, fleet = world
    car = fleet.vehicles[2]
    car.remote.key_serial = 1000
    app = Signer(new_private_key())
    service(platform).add_key(SYSTEM, car.vin, app.public.hex(), "phone")
    eventually(lambda: key_list(platform, car.vin).status is KeyListSync.REFUSED)
    refused = key_list(platform, car.vin)
    assert (refused.serial, refused.refused_serial, refused.refused_reason) == (
        1,
        1,
        "replayed_counter",
    )
    assert refused.applied_serial is None and app.kid not in car.remote.keys
    shown = api_key_list(platform, car.vin)
    assert (shown["status"], shown["refused_reason"]) == ("refused", "replayed_counter")
    log = service(platform).audit_log(SYSTEM, vin=car.vin).items
    assert [e.action for e in log if e.action.startswith("key_list")] == ["key_list_refused"]
