"""Vehicle credentials and topic isolation on a real Mosquitto with the dynamic-security plugin.

Each test gets its own broker (tests/support/mosquitto.py). "Not delivered" is checked without
sleeping: after the forbidden message, a marker is published behind it on the same path; the
broker handles one client's messages in order, so once the marker arrived, the forbidden message
would have arrived before it.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from autocloud.adapters.mosquitto import (
    DYNSEC_FILE_NAME,
    RESPONSE_TOPIC,
    MosquittoDynsec,
    write_mosquitto_config,
)
from autocloud.domain.errors import ConfigurationError, InvalidVin, StoreUnavailable
from tests.support.mosquitto import (
    MosquittoInstance,
    MqttProbe,
    connack,
    free_port,
    mosquitto_binary,
    mosquitto_broker,  # noqa: F401  (fixture)
    probe,
)

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(60)]

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
SECRET_A = "secret-a-1"
SECRET_B = "secret-b-1"
PLATFORM_USER = "autocloud-platform"
PLATFORM_PASSWORD = "platform-secret"
V5, V311 = MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311
REFUSED = 0x80  # SUBACK/CONNACK reason codes from here on are failures


@pytest.fixture
def broker(mosquitto_broker: MosquittoInstance) -> MosquittoInstance:  # noqa: F811
    """The private broker of this test."""
    return mosquitto_broker


@pytest.fixture
def access(broker: MosquittoInstance) -> Iterator[MosquittoDynsec]:
    """The adapter, with the platform client set up and vehicles A and B granted."""
    with MosquittoDynsec(
        broker.host, broker.port, broker.admin_user, broker.admin_password
    ) as adapter:
        adapter.ensure_platform_client(PLATFORM_USER, PLATFORM_PASSWORD)
        adapter.grant(VIN_A, SECRET_A)
        adapter.grant(VIN_B, SECRET_B)
        yield adapter


@pytest.fixture
def platform(broker: MosquittoInstance, access: MosquittoDynsec) -> Iterator[MqttProbe]:
    """The platform's client, subscribed to every vehicle topic."""
    with probe(broker, PLATFORM_USER, PLATFORM_PASSWORD) as client:
        assert client.connect() == 0
        assert client.subscribe("vehicles/#") == [1]
        yield client


def _connected(
    broker: MosquittoInstance, user: str, secret: str, protocol: MQTTProtocolVersion
) -> MqttProbe:
    client = MqttProbe(broker, user, secret, protocol=protocol)
    assert client.connect() == 0
    return client


# -- isolation between vehicles ------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_vehicle_telemetry_reaches_the_platform(
    broker: MosquittoInstance, platform: MqttProbe, protocol: MQTTProtocolVersion
) -> None:
    vehicle = _connected(broker, VIN_A, SECRET_A, protocol)
    try:
        vehicle.publish(f"vehicles/{VIN_A}/telemetry", b'{"seq": 1}')
        assert platform.next_message() == (f"vehicles/{VIN_A}/telemetry", b'{"seq": 1}')
    finally:
        vehicle.close()


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_vehicle_cannot_publish_under_another_vin(
    broker: MosquittoInstance, platform: MqttProbe, protocol: MQTTProtocolVersion
) -> None:
    vehicle = _connected(broker, VIN_A, SECRET_A, protocol)
    try:
        vehicle.publish(f"vehicles/{VIN_B}/telemetry", b"forged")
        vehicle.publish("elsewhere/telemetry", b"forged")
        vehicle.publish(f"vehicles/{VIN_A}/telemetry", b"marker")
        assert platform.next_message() == (f"vehicles/{VIN_A}/telemetry", b"marker")
        assert platform.next_message(timeout=0.2) is None
    finally:
        vehicle.close()


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
@pytest.mark.parametrize("topic", [f"vehicles/{VIN_B}/#", "vehicles/#", "#", "vehicles/+/state"])
def test_vehicle_cannot_subscribe_to_other_vehicles(
    broker: MosquittoInstance, access: MosquittoDynsec, protocol: MQTTProtocolVersion, topic: str
) -> None:
    vehicle = _connected(broker, VIN_A, SECRET_A, protocol)
    try:
        [code] = vehicle.subscribe(topic)
        assert code >= REFUSED
    finally:
        vehicle.close()


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_vehicle_receives_only_its_own_commands(
    broker: MosquittoInstance, platform: MqttProbe, protocol: MQTTProtocolVersion
) -> None:
    vehicle = _connected(broker, VIN_A, SECRET_A, protocol)
    try:
        assert vehicle.subscribe(f"vehicles/{VIN_A}/commands") == [1]
        platform.publish(f"vehicles/{VIN_B}/commands", b"for B")
        platform.publish(f"vehicles/{VIN_A}/commands", b"for A")
        assert vehicle.next_message() == (f"vehicles/{VIN_A}/commands", b"for A")
        assert vehicle.next_message(timeout=0.2) is None
    finally:
        vehicle.close()


def test_platform_consumes_through_a_shared_subscription(
    broker: MosquittoInstance, access: MosquittoDynsec
) -> None:
    with probe(broker, PLATFORM_USER, PLATFORM_PASSWORD) as consumer:
        assert consumer.connect() == 0
        assert consumer.subscribe("$share/autocloud/vehicles/+/telemetry") == [1]
        vehicle = _connected(broker, VIN_B, SECRET_B, V5)
        try:
            vehicle.publish(f"vehicles/{VIN_B}/telemetry", b"shared")
            assert consumer.next_message() == (f"vehicles/{VIN_B}/telemetry", b"shared")
        finally:
            vehicle.close()


# -- credentials ----------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", [V5, V311], ids=["mqtt5", "mqtt311"])
def test_wrong_secret_and_anonymous_clients_are_refused(
    broker: MosquittoInstance, access: MosquittoDynsec, protocol: MQTTProtocolVersion
) -> None:
    assert connack(broker, VIN_A, SECRET_A, protocol=protocol) == 0
    assert connack(broker, VIN_A, "wrong", protocol=protocol) >= REFUSED
    assert connack(broker, VIN_A, SECRET_B, protocol=protocol) >= REFUSED
    assert connack(broker, None, None, protocol=protocol) >= REFUSED


@pytest.mark.parametrize("protocol", [V5, V311], ids=["v5", "v311"])
def test_a_vehicle_login_works_only_with_its_own_client_id(
    broker: MosquittoInstance, access: MosquittoDynsec, protocol: MQTTProtocolVersion
) -> None:
    """So a vehicle cannot take over the platform's or another vehicle's session."""
    assert connack(broker, VIN_A, SECRET_A, protocol=protocol, client_id=VIN_A) == 0
    for foreign in ("autocloud-ingest-0", VIN_B, "anything"):
        assert connack(broker, VIN_A, SECRET_A, protocol=protocol, client_id=foreign) >= REFUSED


def test_revoke_drops_the_session_and_refuses_the_vehicle(
    broker: MosquittoInstance, access: MosquittoDynsec
) -> None:
    vehicle = _connected(broker, VIN_A, SECRET_A, V5)
    try:
        access.revoke(VIN_A)
        assert vehicle.disconnected.wait(5)
    finally:
        vehicle.close()
    assert connack(broker, VIN_A, SECRET_A, protocol=V311) >= REFUSED
    assert connack(broker, VIN_B, SECRET_B) == 0


def test_revoke_is_idempotent(access: MosquittoDynsec) -> None:
    access.revoke(VIN_A)
    access.revoke(VIN_A)
    access.revoke("WVWZZZ1JZXW999999")  # never granted


def test_grant_again_replaces_the_secret(
    broker: MosquittoInstance, access: MosquittoDynsec, platform: MqttProbe
) -> None:
    access.grant(VIN_A, "secret-a-2")
    assert connack(broker, VIN_A, SECRET_A) >= REFUSED
    vehicle = _connected(broker, VIN_A, "secret-a-2", V311)
    try:
        assert vehicle.subscribe(f"vehicles/{VIN_A}/config") == [1]
        assert vehicle.subscribe(f"vehicles/{VIN_B}/config")[0] >= REFUSED
        vehicle.publish(f"vehicles/{VIN_A}/events", b"still mine")
        assert platform.next_message() == (f"vehicles/{VIN_A}/events", b"still mine")
    finally:
        vehicle.close()


def test_grant_many_provisions_every_vehicle(broker: MosquittoInstance) -> None:
    vins = [f"WVWZZZ1JZXW{100000 + i}" for i in range(50)]
    fleet = [(vin, f"secret-{vin}") for vin in vins] + [(VIN_A, "bulk-secret")]
    with MosquittoDynsec(
        broker.host, broker.port, broker.admin_user, broker.admin_password, batch_size=16
    ) as adapter:
        adapter.grant(VIN_A, SECRET_A)  # exists already: the bulk grant must replace it
        adapter.grant_many(fleet)
    for vin in (vins[0], vins[17], vins[49]):
        vehicle = _connected(broker, vin, f"secret-{vin}", V5)
        try:
            assert vehicle.subscribe(f"vehicles/{vin}/commands") == [1]
            assert vehicle.subscribe(f"vehicles/{vins[1]}/commands")[0] >= REFUSED
        finally:
            vehicle.close()
    assert connack(broker, VIN_A, "bulk-secret") == 0
    assert connack(broker, VIN_A, SECRET_A) >= REFUSED


# -- errors ---------------------------------------------------------------------------------------


def test_malformed_vins_are_rejected_before_reaching_the_broker(access: MosquittoDynsec) -> None:
    for vin in ("vehicles/#", "WVWZZZ1JZXW00000+", "WVWZZZ1JZXW0000", "WVWZZZ1JZXW00000O"):
        with pytest.raises(InvalidVin):
            access.grant(vin, "secret")
        with pytest.raises(InvalidVin):
            access.revoke(vin)


def test_unreachable_broker_raises_store_unavailable() -> None:
    port = free_port()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{port}"):
        MosquittoDynsec("127.0.0.1", port, "admin", "secret", timeout=1.0)


def test_wrong_admin_password_is_a_configuration_error(broker: MosquittoInstance) -> None:
    with pytest.raises(ConfigurationError, match="admin user and password"):
        MosquittoDynsec(broker.host, broker.port, broker.admin_user, "wrong", timeout=2.0)


def test_no_answer_from_dynsec_raises_store_unavailable(broker: MosquittoInstance) -> None:
    """A user that may read the replies but not send commands never gets an answer."""
    _dynsec_raw(
        broker,
        [
            {
                "command": "createRole",
                "rolename": "listener",
                "acls": [
                    {"acltype": kind, "topic": "$CONTROL/dynamic-security/#", "allow": True}
                    for kind in ("subscribePattern", "publishClientReceive")
                ],
            },
            {
                "command": "createClient",
                "username": "mute",
                "password": "mute-secret",
                "roles": [{"rolename": "listener"}],
            },
        ],
    )
    with (
        MosquittoDynsec(broker.host, broker.port, "mute", "mute-secret", timeout=0.5) as adapter,
        pytest.raises(StoreUnavailable, match=r"no answer .* 127\.0\.0\.1:\d+ .*mute"),
    ):
        adapter.grant(VIN_A, SECRET_A)


# -- why one role per vehicle ---------------------------------------------------------------------


def test_dynsec_of_mosquitto_2_0_does_not_substitute_the_username_in_acls(
    broker: MosquittoInstance, platform: MqttProbe
) -> None:
    """Documents the choice in adapters/mosquitto.py: a shared `vehicles/%u/#` role grants nothing.

    If this fails after a Mosquitto upgrade, the broker substitutes `%u`: one shared role
    `vehicle` would then replace the per-vehicle roles.
    """
    version = subprocess.run(
        [mosquitto_binary(), "-h"], capture_output=True, text=True, check=False
    ).stdout.split()
    if "2.0.11" not in version:
        pytest.skip(f"checked on Mosquitto 2.0.11, this is {' '.join(version[:3])}")
    vin = "WVWZZZ1JZXW000009"
    acls = [
        {"acltype": kind, "topic": "vehicles/%u/#", "allow": True}
        for kind in ("publishClientSend", "subscribePattern", "publishClientReceive")
    ]
    _dynsec_raw(
        broker,
        [
            {"command": "createRole", "rolename": "vehicle", "acls": acls},
            {
                "command": "createClient",
                "username": vin,
                "password": "pattern",
                "roles": [{"rolename": "vehicle"}],
            },
        ],
    )
    vehicle = _connected(broker, vin, "pattern", V5)
    try:
        assert vehicle.subscribe(f"vehicles/{vin}/commands")[0] >= REFUSED
        vehicle.publish(f"vehicles/{vin}/telemetry", b"pattern")  # PUBACK: handled by the broker
        platform.publish(f"vehicles/{VIN_A}/commands", b"marker")  # queued behind it, if any
        assert platform.next_message() == (f"vehicles/{VIN_A}/commands", b"marker")
    finally:
        vehicle.close()


def _dynsec_raw(broker: MosquittoInstance, commands: list[dict[str, Any]]) -> None:
    """Send dynsec commands as the admin, bypassing the adapter, and check they succeeded."""
    with probe(broker, broker.admin_user, broker.admin_password) as admin:
        assert admin.connect() == 0
        assert admin.subscribe(RESPONSE_TOPIC) == [1]
        admin.publish("$CONTROL/dynamic-security/v1", json.dumps({"commands": commands}).encode())
        reply = admin.next_message()
    assert reply is not None
    assert all("error" not in r for r in json.loads(reply[1])["responses"]), reply


# -- broker configuration -------------------------------------------------------------------------


def test_config_keeps_an_existing_dynsec_file(tmp_path: Path) -> None:
    mosquitto_binary()  # skips where Mosquitto is not installed

    def write() -> Path:
        return write_mosquitto_config(
            tmp_path, port=free_port(), admin_user="admin", admin_password="pw"
        )

    config = write()
    state = (tmp_path / DYNSEC_FILE_NAME).read_text()
    assert write() == config
    assert (tmp_path / DYNSEC_FILE_NAME).read_text() == state
    text = config.read_text()
    assert "allow_anonymous false" in text
    assert f"plugin_opt_config_file {tmp_path.resolve() / DYNSEC_FILE_NAME}" in text


def test_config_without_the_plugin_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="apt-get install mosquitto"):
        write_mosquitto_config(
            tmp_path,
            port=1883,
            admin_user="admin",
            admin_password="pw",
            plugin=tmp_path / "missing.so",
        )
