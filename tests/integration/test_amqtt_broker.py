"""The embedded amqtt broker enforces vehicle identity and topic rules, and starts/stops cleanly.

Real paho-mqtt 2.x clients talk to a real `EmbeddedBroker` on a free loopback port; no external
service is needed. "Not delivered" is shown with a marker sent afterwards on a permitted topic:
if only the marker arrives, the refused message was dropped (no sleeps, all waits bounded).
"""

import queue
import threading
import uuid
from collections.abc import Iterator
from typing import TypedDict, Unpack

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from autocloud.adapters.amqtt_broker import AccessPolicy, EmbeddedAccess, EmbeddedBroker
from autocloud.domain.errors import ConfigurationError

VIN_A = "WVWZZZ1JZXW000001"
VIN_B = "WVWZZZ1JZXW000002"
SECRET_A = "s3cret-A"
SECRET_B = "s3cret-B"
PLATFORM_USER = "autocloud-platform"
PLATFORM_PASSWORD = "platform-pw"
PLATFORM_CLIENT_ID = "autocloud-platform-1"
WAIT_S = 5.0
SUBACK_FAILURE = 0x80

pytestmark = pytest.mark.timeout(60)


class Registry:
    """Stands in for the platform's vehicle table; records every question and its thread."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = dict(secrets)
        self.calls: list[tuple[str, str]] = []
        self.threads: list[str] = []

    def verify(self, vin: str, secret: str) -> bool:
        self.calls.append((vin, secret))
        self.threads.append(threading.current_thread().name)
        if vin == "BROKEN":
            raise RuntimeError("database unavailable")
        return self.secrets.get(vin) == secret


class Peer:
    """A paho client with its callbacks turned into queues, so tests can wait with timeouts."""

    def __init__(
        self,
        broker: EmbeddedBroker,
        username: str | None,
        password: str | None,
        *,
        client_id: str | None = None,
        clean_session: bool = True,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self._broker = broker
        if client_id is None:  # a vehicle connects with client id = its VIN
            vehicle = username is not None and len(username) == 17
            client_id = username if vehicle else f"test-{uuid.uuid4().hex[:10]}"
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if protocol == MQTTProtocolVersion.MQTTv5 else clean_session,
        )
        self.client.reconnect_delay_set(min_delay=30, max_delay=30)  # no retry storms
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self.connacks: queue.Queue[ReasonCode] = queue.Queue()
        self.subacks: queue.Queue[tuple[int, list[ReasonCode]]] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.disconnected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        if reason_code.is_failure:
            client.disconnect()  # stop paho's loop from retrying (and from sleeping in close())
        self.connacks.put(reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: object,
    ) -> None:
        self.subacks.put((mid, reason_codes))

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.messages.put(message)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: object,
    ) -> None:
        self.disconnected.set()

    def connect(self, timeout_s: float = WAIT_S) -> ReasonCode | None:
        """Connect and return the CONNACK's code, or None if none came within `timeout_s`."""
        self.disconnected.clear()
        self.client.connect(self._broker.host, self._broker.port, keepalive=30)
        self.client.loop_start()
        try:
            return self.connacks.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def connect_ok(self) -> "Peer":
        code = self.connect()
        assert code is not None and not code.is_failure, f"CONNACK: {code}"
        return self

    def subscribe(self, topic_filter: str) -> int:
        """Subscribe at QoS 1; return the SUBACK code (granted QoS, or 0x80 for refused)."""
        _result, mid = self.client.subscribe(topic_filter, qos=1)
        acked_mid, codes = self.subacks.get(timeout=WAIT_S)
        assert acked_mid == mid
        return int(codes[0].value)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's PUBACK."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def next_message(self) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=WAIT_S)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class PeerOptions(TypedDict, total=False):
    """Keyword options of `Peer`, for the `peers` factory."""

    client_id: str | None
    clean_session: bool
    protocol: MQTTProtocolVersion
    will: tuple[str, bytes] | None


class PeerFactory:
    """Makes `Peer`s and disconnects every one of them at the end of a test."""

    def __init__(self) -> None:
        self._made: list[Peer] = []

    def __call__(
        self,
        broker: EmbeddedBroker,
        username: str | None,
        password: str | None,
        **options: Unpack[PeerOptions],
    ) -> Peer:
        peer = Peer(broker, username, password, **options)
        self._made.append(peer)
        return peer

    def close_all(self) -> None:
        for peer in self._made:
            peer.close()


def _embedded(registry: Registry, port: int = 0) -> EmbeddedBroker:
    return EmbeddedBroker(
        host="127.0.0.1",
        port=port,
        verify_vehicle=registry.verify,
        platform_user=PLATFORM_USER,
        platform_password=PLATFORM_PASSWORD,
        connect_timeout_s=1.0,
    )


@pytest.fixture
def registry() -> Registry:
    return Registry({VIN_A: SECRET_A, VIN_B: SECRET_B})


@pytest.fixture
def broker(registry: Registry) -> Iterator[EmbeddedBroker]:
    with _embedded(registry) as running:
        yield running


@pytest.fixture
def peers() -> Iterator[PeerFactory]:
    factory = PeerFactory()
    yield factory
    factory.close_all()


@pytest.fixture
def platform(broker: EmbeddedBroker, peers: PeerFactory) -> Peer:
    """The platform's client, subscribed to every vehicle topic."""
    peer = peers(broker, PLATFORM_USER, PLATFORM_PASSWORD, client_id=PLATFORM_CLIENT_ID)
    peer.connect_ok()
    assert peer.subscribe("vehicles/#") == 1
    return peer


def test_platform_receives_a_vehicles_qos1_telemetry(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory, registry: Registry
) -> None:
    vehicle = peers(broker, VIN_A, SECRET_A).connect_ok()

    vehicle.publish(f"vehicles/{VIN_A}/telemetry", b'{"v":1,"seq":1}')

    message = platform.next_message()
    assert (message.topic, message.payload, message.qos) == (
        f"vehicles/{VIN_A}/telemetry",
        b'{"v":1,"seq":1}',
        1,
    )
    assert registry.calls == [(VIN_A, SECRET_A)]
    assert not any(name.startswith("amqtt-broker") for name in registry.threads), (
        "verify_vehicle ran on the broker's event loop thread"
    )


def test_messages_acknowledged_before_a_disconnect_still_reach_the_platform(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory
) -> None:
    """amqtt PUBACKs on queueing; a burst then DISCONNECT must not lose the queued rest."""
    vehicle = peers(broker, VIN_A, SECRET_A).connect_ok()
    sent = [str(seq).encode() for seq in range(300)]

    infos = [vehicle.client.publish(f"vehicles/{VIN_A}/telemetry", p, qos=1) for p in sent]
    for info in infos:
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published()
    vehicle.close()

    received = [platform.next_message().payload for _ in sent]
    assert sorted(received) == sorted(sent)


def test_a_vehicles_publish_on_another_vins_topic_is_not_delivered(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory
) -> None:
    vehicle_a = peers(broker, VIN_A, SECRET_A).connect_ok()
    vehicle_b = peers(broker, VIN_B, SECRET_B).connect_ok()
    assert vehicle_b.subscribe(f"vehicles/{VIN_B}/#") == 1

    vehicle_a.publish(f"vehicles/{VIN_B}/telemetry", b"forged")
    vehicle_a.publish(f"vehicles/{VIN_B}/commands", b"forged command")
    vehicle_a.publish(f"vehicles/{VIN_A}/telemetry", b"marker")
    platform.publish(f"vehicles/{VIN_B}/commands", b"marker for B")

    # A's forged messages precede its marker, so they would be among the first two received.
    received = {platform.next_message().payload, platform.next_message().payload}
    assert received == {b"marker", b"marker for B"}
    assert vehicle_b.next_message().payload == b"marker for B"


def test_a_vehicle_may_subscribe_only_inside_its_own_tree(
    broker: EmbeddedBroker, peers: PeerFactory
) -> None:
    vehicle = peers(broker, VIN_A, SECRET_A).connect_ok()
    expected = {
        f"vehicles/{VIN_B}/#": SUBACK_FAILURE,
        f"vehicles/{VIN_B}/commands": SUBACK_FAILURE,
        "#": SUBACK_FAILURE,
        "+/#": SUBACK_FAILURE,
        "vehicles/#": SUBACK_FAILURE,
        "vehicles/+/#": SUBACK_FAILURE,
        "vehicles/+/commands": SUBACK_FAILURE,
        f"vehicles/{VIN_A}": SUBACK_FAILURE,
        f"vehicles/{VIN_A}1/#": SUBACK_FAILURE,  # a VIN that merely starts with A's
        f"vehicles/{VIN_A}/#": 1,
        f"vehicles/{VIN_A}/commands": 1,
        f"vehicles/{VIN_A}/+/result": 1,
    }

    granted = {topic_filter: vehicle.subscribe(topic_filter) for topic_filter in expected}

    assert granted == expected


def test_a_vehicle_receives_the_commands_the_platform_sends_it(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory
) -> None:
    vehicle = peers(broker, VIN_A, SECRET_A).connect_ok()
    assert vehicle.subscribe(f"vehicles/{VIN_A}/commands") == 1

    platform.publish(f"vehicles/{VIN_A}/commands", b'{"id":"c1","name":"lock"}')

    message = vehicle.next_message()
    assert (message.topic, message.payload) == (
        f"vehicles/{VIN_A}/commands",
        b'{"id":"c1","name":"lock"}',
    )


@pytest.mark.parametrize(
    ("username", "password"),
    [
        pytest.param(VIN_A, "wrong", id="wrong-secret"),
        pytest.param(VIN_A, SECRET_B, id="another-vehicles-secret"),
        pytest.param(VIN_A, "", id="empty-secret"),
        pytest.param("WVWZZZ1JZXW000009", "whatever", id="unknown-vin"),
        pytest.param(PLATFORM_USER, "wrong", id="platform-wrong-password"),
        pytest.param(None, None, id="anonymous"),
        pytest.param("BROKEN", "x", id="registry-raises"),
    ],
)
def test_bad_logins_are_refused(
    broker: EmbeddedBroker, peers: PeerFactory, username: str | None, password: str | None
) -> None:
    code = peers(broker, username, password).connect()

    assert code is not None and code.is_failure, f"CONNACK: {code}"


def test_a_username_that_would_widen_the_topic_prefix_is_refused(peers: PeerFactory) -> None:
    lenient = Registry({})
    lenient.verify = lambda vin, secret: True  # type: ignore[method-assign]
    with _embedded(lenient) as broker:
        for username in ("+", "#", "vehicles/#", f"{VIN_A}/x"):
            code = peers(broker, username, "anything").connect()
            assert code is not None and code.is_failure, f"{username!r}: {code}"


def test_a_will_outside_the_vehicles_own_tree_refuses_the_connection(
    broker: EmbeddedBroker, peers: PeerFactory
) -> None:
    foreign = peers(broker, VIN_A, SECRET_A, will=(f"vehicles/{VIN_B}/commands", b"evil"))
    own = peers(broker, VIN_A, SECRET_A, will=(f"vehicles/{VIN_A}/state", b'{"online":false}'))

    foreign_code = foreign.connect()
    assert foreign_code is not None and foreign_code.is_failure
    own.connect_ok()


def test_a_vehicle_must_use_its_vin_as_client_id(
    broker: EmbeddedBroker, peers: PeerFactory
) -> None:
    for client_id in (VIN_B, "anything", f"{VIN_A}-2"):
        code = peers(broker, VIN_A, SECRET_A, client_id=client_id).connect()
        assert code is not None and code.is_failure, client_id
    peers(broker, VIN_A, SECRET_A, client_id=VIN_A).connect_ok()


def test_another_identity_cannot_take_the_platforms_client_id(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory
) -> None:
    for username, password in ((None, None), (VIN_A, "wrong"), (VIN_A, SECRET_A)):
        code = peers(broker, username, password, client_id=PLATFORM_CLIENT_ID).connect()
        assert code is not None and code.is_failure, f"{username!r}: {code}"

    peers(broker, VIN_A, SECRET_A).connect_ok().publish(f"vehicles/{VIN_A}/telemetry", b"still")

    assert platform.next_message().payload == b"still"
    assert not platform.disconnected.is_set()


def test_a_resumed_session_gets_no_retained_message_of_another_vehicle(
    broker: EmbeddedBroker, platform: Peer, peers: PeerFactory
) -> None:
    client_id = VIN_A
    first = peers(broker, VIN_A, SECRET_A, client_id=client_id, clean_session=False).connect_ok()
    assert first.subscribe(f"vehicles/{VIN_A}/commands") == 1
    first.close()
    peers(broker, VIN_B, SECRET_B).connect_ok().publish(
        f"vehicles/{VIN_B}/state", b"B's retained state", retain=True
    )

    resumed = peers(broker, VIN_A, SECRET_A, client_id=client_id, clean_session=False)
    resumed.connect_ok()
    platform.publish(f"vehicles/{VIN_A}/commands", b"marker")

    assert resumed.next_message().payload == b"marker"


def test_two_brokers_in_one_process_keep_their_own_vehicles(peers: PeerFactory) -> None:
    first_registry = Registry({VIN_A: SECRET_A})
    second_registry = Registry({VIN_A: "second-secret", VIN_B: SECRET_B})
    with _embedded(first_registry) as first, _embedded(second_registry) as second:
        assert first.port != second.port
        peers(first, VIN_A, SECRET_A).connect_ok()
        peers(second, VIN_A, "second-secret").connect_ok()
        peers(second, VIN_B, SECRET_B).connect_ok()
        refused_first = peers(first, VIN_A, "second-secret").connect()
        refused_second = peers(second, VIN_A, SECRET_A).connect()
        refused_b = peers(first, VIN_B, SECRET_B).connect()

    for code in (refused_first, refused_second, refused_b):
        assert code is not None and code.is_failure
    assert first_registry.calls == [
        (VIN_A, SECRET_A),
        (VIN_A, "second-secret"),
        (VIN_B, SECRET_B),
    ]
    assert second_registry.calls == [
        (VIN_A, "second-secret"),
        (VIN_B, SECRET_B),
        (VIN_A, SECRET_A),
    ]


def test_stop_releases_the_port(registry: Registry, peers: PeerFactory) -> None:
    first = _embedded(registry)
    first.start()
    port = first.port
    vehicle = peers(first, VIN_A, SECRET_A).connect_ok()

    first.stop()

    assert not first.running
    assert vehicle.disconnected.wait(WAIT_S)
    with _embedded(registry, port=port) as second:
        assert second.url == f"mqtt://127.0.0.1:{port}"
        peers(second, VIN_A, SECRET_A).connect_ok()


def test_a_port_in_use_is_a_configuration_error_naming_it(
    broker: EmbeddedBroker, registry: Registry
) -> None:
    with pytest.raises(ConfigurationError, match=rf"Port {broker.port} .* in use"):
        _embedded(registry, port=broker.port).start()


def test_revoke_disconnects_the_vehicle_and_the_registry_refuses_it_again(
    broker: EmbeddedBroker, peers: PeerFactory, registry: Registry
) -> None:
    access = EmbeddedAccess(broker)
    access.grant(VIN_A, SECRET_A)  # nothing to store: the registry is the source of truth
    vehicle = peers(broker, VIN_A, SECRET_A).connect_ok()
    other = peers(broker, VIN_B, SECRET_B).connect_ok()

    del registry.secrets[VIN_A]
    access.revoke(VIN_A)

    assert vehicle.disconnected.wait(WAIT_S)
    assert not other.disconnected.is_set()
    again = peers(broker, VIN_A, SECRET_A).connect()
    assert again is not None and again.is_failure
    access.revoke("WVWZZZ1JZXW000009")  # nobody connected: a no-op


def test_an_mqtt5_client_is_not_served(broker: EmbeddedBroker, peers: PeerFactory) -> None:
    """amqtt 0.12 speaks MQTT 3.1.1 only; a v5 CONNECT is closed after `connect_timeout_s`."""
    code = peers(broker, VIN_A, SECRET_A, protocol=MQTTProtocolVersion.MQTTv5).connect(
        timeout_s=2.0
    )

    assert code is None or code.is_failure


@pytest.mark.parametrize(
    ("username", "topic", "allowed"),
    [
        (PLATFORM_USER, "vehicles/#", True),
        (PLATFORM_USER, f"vehicles/{VIN_B}/commands", True),
        (VIN_A, f"vehicles/{VIN_A}/telemetry", True),
        (VIN_A, f"vehicles/{VIN_A}/#", True),
        (VIN_A, f"vehicles/{VIN_B}/telemetry", False),
        (VIN_A, "vehicles/+/telemetry", False),
        (VIN_A, "#", False),
        (VIN_A, f"vehicles/{VIN_A}", False),
        ("+", "vehicles/+/telemetry", False),
        ("#", "vehicles/#/x", False),
        (None, f"vehicles/{VIN_A}/telemetry", False),
        (VIN_A, None, False),
    ],
)
def test_access_policy_topic_rule(username: str | None, topic: str | None, allowed: bool) -> None:
    policy = AccessPolicy(lambda vin, secret: True, PLATFORM_USER, PLATFORM_PASSWORD)

    assert policy.may_use(username, topic) is allowed


def test_the_running_broker_walks_its_subscriptions_over_a_snapshot(
    broker: EmbeddedBroker, platform: Peer
) -> None:
    from autocloud.adapters.amqtt_broker import _Subscriptions

    table = broker._broker._subscriptions  # type: ignore[union-attr]
    assert isinstance(table, _Subscriptions)
    assert "vehicles/#" in table  # the platform's subscription landed in it
