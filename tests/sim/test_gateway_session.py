"""Load mode's lean gateway publisher (`sim/gateway_session.py`) against real brokers.

Against a private Mosquitto with dynamic security (the single-node tier) and the embedded
amqtt broker: every message a gateway publishes reaches a subscriber byte for byte and in
order, retained where asked, each acknowledged once; a refused login is reported and not
retried; a session the broker ends (Mosquitto does so when a gateway's grants change)
connects again by itself and sends what was unacknowledged. A scripted broker on a plain
socket checks the bytes on the wire: CONNECT, PUBLISH with the DUP flag on a resend only,
PUBACKs split across reads.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from autocloud.adapters.amqtt_broker import EmbeddedBroker
from autocloud.adapters.mosquitto import MosquittoDynsec
from autocloud.sim.gateway_session import GatewaySession, connect_packet
from autocloud.sim.transport import Pool
from tests.support.mosquitto import (
    MosquittoInstance,
    MqttProbe,
    mosquitto_broker,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.timeout(90)

VINS = ("WVWZZZ1JZXW000001", "WVWZZZ1JZXW000002")
GATEWAY, SECRET = "gw.vw.sim-1", "gateway-secret-1"
PLATFORM_USER, PLATFORM_PASSWORD = "autocloud-platform", "platform-secret"
V311 = MQTTProtocolVersion.MQTTv311


def payloads(count: int) -> list[bytes]:
    """Bodies of every size class of MQTT's remaining length: 1, 2 and 3 bytes."""
    sizes = (10, 115, 126, 127, 500, 16_360, 16_400, 70_000)
    return [f"{i:06d}".encode() + b"x" * sizes[i % len(sizes)] for i in range(count)]


@pytest.fixture(params=["mosquitto", "embedded"])
def broker(request: pytest.FixtureRequest) -> Iterator[MosquittoInstance]:
    """A broker where GATEWAY may publish for VINS and the platform may subscribe."""
    if request.param == "mosquitto":
        b: MosquittoInstance = request.getfixturevalue("mosquitto_broker")
        with MosquittoDynsec(b.host, b.port, b.admin_user, b.admin_password) as dynsec:
            dynsec.ensure_platform_client(PLATFORM_USER, PLATFORM_PASSWORD)
            dynsec.set_gateway(GATEWAY, SECRET, frozenset(VINS))
            yield b
        return
    embedded = EmbeddedBroker(
        host="127.0.0.1",
        port=0,
        verify_vehicle=lambda _vin, _secret: False,
        platform_user=PLATFORM_USER,
        platform_password=PLATFORM_PASSWORD,
        verify_gateway=lambda login, secret: (
            frozenset(VINS) if (login, secret) == (GATEWAY, SECRET) else None
        ),
    )
    with embedded:
        yield MosquittoInstance("127.0.0.1", embedded.port, "", "", Path("."))


@pytest.fixture
def platform(broker: MosquittoInstance) -> Iterator[MqttProbe]:
    client = MqttProbe(
        broker,
        PLATFORM_USER,
        PLATFORM_PASSWORD,
        protocol=V311,
        client_id="platform-probe",
    )
    assert client.connect() == 0
    assert client.subscribe("vehicles/#") == [1]
    yield client
    client.close()


def received(platform: MqttProbe, count: int) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []
    for _ in range(count):
        message = platform.next_message(timeout=10)
        assert message is not None, f"only {len(got)} of {count} messages arrived"
        got.append(message)
    return got


def test_every_message_arrives_in_order_and_is_acknowledged(
    broker: MosquittoInstance, platform: MqttProbe
) -> None:
    pool = Pool()
    session = GatewaySession(GATEWAY, SECRET, broker.host, broker.port)
    pool.connect_all([session], 10, "gateways")
    sent = [(VINS[i % 2], "telemetry", body) for i, body in enumerate(payloads(600))]
    for vin, subtopic, body in sent:
        session.publish_for(vin, subtopic, body)
    session.publish_for(VINS[0], "state", b'{"online":true}', retain=True)
    assert pool.until(lambda: session.pending == 0, 30)
    assert session.sent == session.acked == 601
    expected = [(f"vehicles/{vin}/{sub}", body) for vin, sub, body in sent]
    assert received(platform, 600) == expected
    assert received(platform, 1) == [(f"vehicles/{VINS[0]}/state", b'{"online":true}')]
    late = MqttProbe(
        broker, PLATFORM_USER, PLATFORM_PASSWORD, protocol=V311, client_id="late-probe"
    )
    try:
        assert late.connect() == 0
        late.subscribe(f"vehicles/{VINS[0]}/state")
        assert late.next_message() == (f"vehicles/{VINS[0]}/state", b'{"online":true}')
    finally:
        late.close()
    pool.close(session)


def test_a_refused_login_is_reported_and_not_retried(broker: MosquittoInstance) -> None:
    pool = Pool()
    session = GatewaySession(GATEWAY, "wrong-secret", broker.host, broker.port)
    with pytest.raises(ConnectionError, match="connection refused"):
        pool.connect_all([session], 5, "gateways")
    assert session.refused is not None and not session.connected
    pool.pump(1.5)  # no new attempt: it would be refused again
    assert session.socket() is None and session.refused is not None


def test_a_session_ended_by_mosquitto_comes_back_and_resends(
    mosquitto_broker: MosquittoInstance,  # noqa: F811
) -> None:
    b = mosquitto_broker
    with MosquittoDynsec(b.host, b.port, b.admin_user, b.admin_password) as dynsec:
        dynsec.ensure_platform_client(PLATFORM_USER, PLATFORM_PASSWORD)
        dynsec.set_gateway(GATEWAY, SECRET, frozenset(VINS))
        pool = Pool()
        session = GatewaySession(GATEWAY, SECRET, b.host, b.port)
        pool.connect_all([session], 10, "gateways")
        dynsec.set_gateway(GATEWAY, None, frozenset(VINS))  # new roles: Mosquitto ends it
        assert pool.until(lambda: not session.connected, 10)
        for body in payloads(20):  # published while the session is down
            session.publish_for(VINS[1], "telemetry", body)
        assert pool.until(lambda: session.connected and session.pending == 0, 15)
        assert session.acked == 20


class ScriptedBroker(threading.Thread):
    """A one-connection MQTT broker that records the bytes it receives. It acknowledges
    CONNECT; drops the first connection after `drop_after` PUBLISHes without acknowledging
    them; on the second one it acknowledges each PUBLISH, its PUBACKs written a byte at
    a time."""

    def __init__(self, drop_after: int) -> None:
        super().__init__(daemon=True)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.drop_after = drop_after
        self.connections: list[list[bytes]] = []  # packets received, per connection

    def _packet(self, conn: socket.socket) -> bytes:
        head = self._exactly(conn, 1)
        length, shift, raw = 0, 0, b""
        while True:
            digit = self._exactly(conn, 1)
            raw += digit
            length |= (digit[0] & 0x7F) << shift
            shift += 7
            if not digit[0] & 0x80:
                break
        return head + raw + self._exactly(conn, length)

    @staticmethod
    def _exactly(conn: socket.socket, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def run(self) -> None:
        for attempt in range(2):
            conn, _ = self.listener.accept()
            packets: list[bytes] = []
            self.connections.append(packets)
            with conn:
                packets.append(self._packet(conn))  # CONNECT
                conn.sendall(b"\x20\x02\x00\x00")
                while True:
                    try:
                        packet = self._packet(conn)
                    except (ConnectionError, OSError):
                        break
                    packets.append(packet)
                    if attempt == 0 and len(packets) > self.drop_after:
                        break  # drop the connection, nothing acknowledged
                    if attempt == 1 and packet[0] & 0xF0 == 0x30:
                        topic_len = int.from_bytes(packet[2:4], "big")  # 1-byte length here
                        mid = packet[4 + topic_len : 6 + topic_len]
                        for byte in b"\x40\x02" + mid:
                            conn.sendall(bytes((byte,)))


def test_bytes_on_the_wire_and_dup_only_on_a_resend() -> None:
    fake = ScriptedBroker(drop_after=2)
    fake.start()
    pool = Pool()
    session = GatewaySession(GATEWAY, SECRET, "127.0.0.1", fake.port, keepalive=30)
    pool.connect_all([session], 5, "gateways")
    session.publish_for(VINS[0], "telemetry", b"one")
    session.publish_for(VINS[0], "events", b"two", retain=True)
    assert pool.until(lambda: not session.connected, 5)  # the broker dropped it
    session.publish_for(VINS[1], "telemetry", b"three")  # never written before
    assert pool.until(lambda: session.connected and session.pending == 0, 10)
    first, second = fake.connections
    assert first[0] == connect_packet(GATEWAY, GATEWAY, SECRET, 30)
    assert first[0][9] == 0xC0  # user name and password, clean session off, no will
    topic = f"vehicles/{VINS[0]}/telemetry".encode()
    assert first[1] == bytes((0x32, 2 + len(topic) + 2 + 3, 0, len(topic))) + topic + b"\x00\x01one"
    assert first[2][0] == 0x33  # QoS 1, retained
    resent = [packet[0] for packet in second[1:]]
    assert resent == [0x3A, 0x3B, 0x32]  # DUP on the two written before, not on the new one
    assert session.acked == 3
    pool.close(session)
    fake.listener.close()
