"""Fleet gateways on both brokers: a gateway publishes only for the VINs it was granted.

Embedded amqtt (`EmbeddedBroker` with `verify_gateway`, `EmbeddedGatewayAccess`) and a private
Mosquitto with dynamic security (`MosquittoDynsec.set_gateway`). "Not delivered" is checked as
in test_mosquitto_access.py: a marker published behind the forbidden message on the same
connection arrives first, so the forbidden one would have arrived before it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from autocloud.adapters.amqtt_broker import EmbeddedBroker, EmbeddedGatewayAccess
from autocloud.adapters.mosquitto import MosquittoDynsec
from autocloud.domain.errors import InvalidInput
from tests.support.mosquitto import (
    MosquittoInstance,
    MqttProbe,
    mosquitto_broker,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.timeout(60)

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
GATEWAY = "gw.vw.depot-1"
SECRET = "gateway-secret-1"
PLATFORM_USER, PLATFORM_PASSWORD = "autocloud-platform", "platform-secret"
V311 = MQTTProtocolVersion.MQTTv311
REFUSED = 0x80


@dataclass
class Side:
    """One broker with a gateway granted VIN_A, and how to change its grants."""

    broker: MosquittoInstance
    set_vins: Callable[[frozenset[str]], None]
    kicks_on_change: bool  # Mosquitto 2.0 ends the session when a client changes

    def client(self, user: str, password: str, client_id: str | None = None) -> MqttProbe:
        return MqttProbe(self.broker, user, password, protocol=V311, client_id=client_id or user)


def _embedded(tmp_path: Path) -> Iterator[Side]:
    grants: dict[str, frozenset[str]] = {GATEWAY: frozenset({VIN_A})}

    def verify(login: str, secret: str) -> frozenset[str] | None:
        return grants.get(login) if secret == SECRET else None

    broker = EmbeddedBroker(
        host="127.0.0.1",
        port=0,
        verify_vehicle=lambda _vin, _secret: False,
        platform_user=PLATFORM_USER,
        platform_password=PLATFORM_PASSWORD,
        verify_gateway=verify,
    )
    with broker:
        access = EmbeddedGatewayAccess(broker)

        def set_vins(vins: frozenset[str]) -> None:
            grants[GATEWAY] = vins
            access.set_gateway(GATEWAY, None, vins)

        where = MosquittoInstance("127.0.0.1", broker.port, "", "", tmp_path)
        yield Side(where, set_vins, kicks_on_change=False)


def _mosquitto(broker: MosquittoInstance) -> Iterator[Side]:
    with MosquittoDynsec(
        broker.host, broker.port, broker.admin_user, broker.admin_password
    ) as dynsec:
        dynsec.ensure_platform_client(PLATFORM_USER, PLATFORM_PASSWORD)
        dynsec.grant(VIN_A, "vehicle-secret-a")
        dynsec.set_gateway(GATEWAY, SECRET, frozenset({VIN_A}))
        yield Side(broker, lambda v: dynsec.set_gateway(GATEWAY, None, v), kicks_on_change=True)


@pytest.fixture(params=["embedded", "mosquitto"])
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    if request.param == "embedded":
        yield from _embedded(tmp_path)
    else:
        yield from _mosquitto(request.getfixturevalue("mosquitto_broker"))


@pytest.fixture
def platform(side: Side) -> Iterator[MqttProbe]:
    client = side.client(PLATFORM_USER, PLATFORM_PASSWORD, client_id="platform-probe")
    assert client.connect() == 0
    assert client.subscribe("vehicles/#") == [1]
    yield client
    client.close()


@pytest.fixture
def gateway(side: Side) -> Iterator[MqttProbe]:
    client = side.client(GATEWAY, SECRET)
    assert client.connect() == 0
    yield client
    client.close()


def test_gateway_publishes_for_its_granted_vin(platform: MqttProbe, gateway: MqttProbe) -> None:
    for sub in ("telemetry", "state", "events"):
        gateway.publish(f"vehicles/{VIN_A}/{sub}", sub.encode())
        assert platform.next_message() == (f"vehicles/{VIN_A}/{sub}", sub.encode())


@pytest.mark.parametrize(
    "topic",
    [
        f"vehicles/{VIN_B}/telemetry",  # not granted
        f"vehicles/{VIN_A}/commands",  # a cloud-to-vehicle topic: forging a command
        f"vehicles/{VIN_A}/config",
        f"vehicles/{VIN_A}/diag/request",
        f"vehicles/{VIN_A}/telemetry/x",
        "elsewhere",
    ],
)
def test_gateway_is_refused_outside_its_grants(
    platform: MqttProbe, gateway: MqttProbe, topic: str
) -> None:
    gateway.publish(topic, b"forged")
    gateway.publish(f"vehicles/{VIN_A}/telemetry", b"marker")
    assert platform.next_message() == (f"vehicles/{VIN_A}/telemetry", b"marker")
    assert platform.next_message(timeout=0.2) is None


@pytest.mark.parametrize("topic", [f"vehicles/{VIN_A}/commands", f"vehicles/{VIN_A}/#", "#"])
def test_gateway_cannot_subscribe(side: Side, gateway: MqttProbe, topic: str) -> None:
    assert gateway.subscribe(topic)[0] >= REFUSED


def test_wrong_secret_or_client_id_is_refused(side: Side) -> None:
    for user, password, client_id in (
        (GATEWAY, "wrong", GATEWAY),
        (GATEWAY, SECRET, "another-id"),
        ("gw.vw.nosuch", SECRET, "gw.vw.nosuch"),
    ):
        client = side.client(user, password, client_id)
        try:
            assert client.connect() != 0, (user, client_id)
        finally:
            client.close()


def test_grants_follow_changes(side: Side, platform: MqttProbe) -> None:
    side.set_vins(frozenset({VIN_B}))
    client = side.client(GATEWAY, SECRET)
    try:
        assert client.connect() == 0
        client.publish(f"vehicles/{VIN_A}/telemetry", b"revoked")
        client.publish(f"vehicles/{VIN_B}/telemetry", b"granted")
        assert platform.next_message() == (f"vehicles/{VIN_B}/telemetry", b"granted")
        assert platform.next_message(timeout=0.2) is None
    finally:
        client.close()


# Embedded only: Mosquitto 2.0 ends a client's session when its ACLs change, which
# test_grants_follow_changes covers.
@pytest.mark.parametrize("side", ["embedded"], indirect=True)
def test_embedded_grant_change_applies_to_a_connected_gateway(
    side: Side, platform: MqttProbe, gateway: MqttProbe
) -> None:
    assert not side.kicks_on_change
    side.set_vins(frozenset({VIN_B}))  # same session, no reconnect
    gateway.publish(f"vehicles/{VIN_A}/telemetry", b"revoked")
    gateway.publish(f"vehicles/{VIN_B}/telemetry", b"marker")
    assert platform.next_message() == (f"vehicles/{VIN_B}/telemetry", b"marker")
    assert platform.next_message(timeout=0.2) is None


def test_dynsec_refuses_bad_logins_and_vins(mosquitto_broker: MosquittoInstance) -> None:  # noqa: F811
    b = mosquitto_broker
    with MosquittoDynsec(b.host, b.port, b.admin_user, b.admin_password) as dynsec:
        with pytest.raises(InvalidInput):
            dynsec.set_gateway(VIN_A, SECRET, frozenset())  # a VIN is no gateway login
        with pytest.raises(InvalidInput):
            dynsec.set_gateway(GATEWAY, SECRET, frozenset({"vehicles/#"}))
        dynsec.remove_gateway("gw.vw.never-made")  # unknown: fine
