"""Starting a consumer must not disconnect the others (Mosquitto dynamic security).

Every consumer process runs `ensure_platform_client` at start. In Mosquitto 2.0 a dynsec
`modifyClient` disconnects every session of that user, even when nothing changes; so the
adapter changes the platform client only when its roles or its password differ.

"Still connected" is checked without sleeping: after the second start, the first session makes
a SUBSCRIBE round trip. A kick happens while the broker handles `modifyClient`, before it
answers it, so a kicked session gets no SUBACK (the probe waits at most `WAIT_S` and fails).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autocloud.adapters.mosquitto import PLATFORM_ROLE, MosquittoDynsec
from autocloud.bootstrap import build
from autocloud.settings import Settings, load_settings
from tests.support.mosquitto import WAIT_S, MosquittoInstance, MqttProbe, connack, probe

pytestmark = [pytest.mark.mosquitto, pytest.mark.timeout(90)]

USER = "autocloud-platform"
PASSWORD = "platform-secret-1"
SUBSCRIBED = [1]  # SUBACK: granted QoS 1


def _dynsec(broker: MosquittoInstance) -> MosquittoDynsec:
    return MosquittoDynsec(broker.host, broker.port, broker.admin_user, broker.admin_password)


@pytest.fixture
def first(mosquitto_broker: MosquittoInstance) -> Iterator[MqttProbe]:
    """A running consumer: the platform client set up, one session of it connected."""
    with _dynsec(mosquitto_broker) as dynsec:
        dynsec.ensure_platform_client(USER, PASSWORD)
    with probe(mosquitto_broker, USER, PASSWORD, client_id="autocloud-ingest-0") as session:
        assert session.connect() == 0
        yield session


def _roles(dynsec: MosquittoDynsec, username: str) -> list[str]:
    (reply,) = dynsec._run([{"command": "getClient", "username": username}])
    return [r["rolename"] for r in reply["data"]["client"]["roles"]]


def test_second_start_keeps_the_first_session(
    mosquitto_broker: MosquittoInstance, first: MqttProbe
) -> None:
    with _dynsec(mosquitto_broker) as dynsec:
        dynsec.ensure_platform_client(USER, PASSWORD)
        dynsec.ensure_platform_client(USER, PASSWORD)
    assert first.subscribe("vehicles/+/telemetry") == SUBSCRIBED
    assert not first.disconnected.is_set()


def test_a_changed_password_is_applied(
    mosquitto_broker: MosquittoInstance, first: MqttProbe
) -> None:
    with _dynsec(mosquitto_broker) as dynsec:
        dynsec.ensure_platform_client(USER, "platform-secret-2")
    # The old password is gone, so the sessions that used it are ended, as they must be.
    assert first.disconnected.wait(WAIT_S)
    assert connack(mosquitto_broker, USER, "platform-secret-2") == 0
    assert connack(mosquitto_broker, USER, PASSWORD) != 0


def test_changed_roles_are_restored(mosquitto_broker: MosquittoInstance, first: MqttProbe) -> None:
    with _dynsec(mosquitto_broker) as dynsec:
        dynsec._run([{"command": "createRole", "rolename": "extra"}])
        dynsec._run([{"command": "addClientRole", "username": USER, "rolename": "extra"}])
        assert sorted(_roles(dynsec, USER)) == sorted([PLATFORM_ROLE, "extra"])
        dynsec.ensure_platform_client(USER, PASSWORD)
        assert _roles(dynsec, USER) == [PLATFORM_ROLE]
    assert connack(mosquitto_broker, USER, PASSWORD) == 0


def test_a_missing_client_is_created(mosquitto_broker: MosquittoInstance) -> None:
    with _dynsec(mosquitto_broker) as dynsec:
        dynsec.ensure_platform_client(USER, PASSWORD)
        dynsec._run([{"command": "deleteClient", "username": USER}])
        assert connack(mosquitto_broker, USER, PASSWORD) != 0
        dynsec.ensure_platform_client(USER, PASSWORD)
        assert _roles(dynsec, USER) == [PLATFORM_ROLE]
    assert connack(mosquitto_broker, USER, PASSWORD) == 0


def test_building_a_second_consumer_keeps_the_first_connected(
    tmp_path: Path, mosquitto_broker: MosquittoInstance, sqlite_url: str
) -> None:
    """The path of `autocloud up`: two consumers of one data directory, started one by one."""

    def settings(consumer: str) -> Settings:
        return load_settings(
            data_dir=tmp_path / "data",
            broker=f"mqtt://{mosquitto_broker.host}:{mosquitto_broker.port}",
            broker_admin_user=mosquitto_broker.admin_user,
            broker_admin_password=mosquitto_broker.admin_password,
            db=sqlite_url,
            consumer_id=consumer,
        )

    one = build(settings("0"))
    try:
        with probe(mosquitto_broker, USER, one.platform_password, client_id="c0") as session:
            assert session.connect() == 0
            two = build(settings("1"))
            two.stop()
            assert session.subscribe("vehicles/+/telemetry") == SUBSCRIBED
            assert not session.disconnected.is_set()
    finally:
        one.stop()
