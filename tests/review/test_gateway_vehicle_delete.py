"""Review: deleting a vehicle must take it out of every fleet gateway's broker grants too.

The database drops the grant with the vehicle (ON DELETE CASCADE), but the broker's side
(Mosquitto dynsec roles, the embedded broker's grant sets) kept the VIN: the gateway could
go on publishing for it, and, once the VIN is registered again for another brand, inject
data into that brand's vehicle."""

from autocloud.bootstrap import SYSTEM
from tests.api.conftest import Env


class RecordingAccess:
    """The broker's side of gateways, as the platform last set it."""

    def __init__(self) -> None:
        self.vins: dict[str, frozenset[str]] = {}

    def set_gateway(self, username: str, secret: str | None, vins: frozenset[str]) -> None:
        self.vins[username] = vins

    def remove_gateway(self, username: str) -> None:
        self.vins.pop(username, None)


def test_a_deleted_vehicle_leaves_the_gateways_broker_grants(env: Env) -> None:
    broker = RecordingAccess()
    gateways = env.platform.gateways
    assert gateways is not None
    gateways.connect_broker(broker)
    a = env.alpha
    made = env.client.post("/v1/gateways", json={"name": "depot"}, headers=a.h("operator"))
    assert made.status_code == 201, made.text
    gateway = made.json()["gateway"]
    r = env.client.post(
        f"/v1/gateways/{gateway['id']}/grant", json={"vins": [a.vin]}, headers=a.h("operator")
    )
    assert r.status_code == 200, r.text
    username = made.json()["credential"]["username"]
    assert broker.vins[username] == {a.vin}

    assert env.client.delete(f"/v1/vehicles/{a.vin}", headers=a.h("admin")).status_code == 204
    assert broker.vins[username] == frozenset()

    # The VIN registered again, for another brand: alpha's gateway may not publish for it.
    env.platform.registry.add_vehicle(SYSTEM, a.vin, "beta", "Bison")
    assert a.vin not in broker.vins[username]
