"""The `VehicleLink` on paho-mqtt: the platform's own client of Mosquitto or embedded amqtt.

It keeps a persistent session (clean start off) and acknowledges QoS 1 messages by hand
(`manual_ack`), so a message the platform has not made durable stays with the broker and
is redelivered after a crash. With Mosquitto it speaks MQTT 5 with a large receive maximum
and a shared subscription, so several consumer processes can split the load; amqtt speaks
MQTT 3.1.1 only.
"""

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.protocol import TOPIC_ROOT, Topic
from autocloud.ports.link import Inbound

log = logging.getLogger(__name__)

SHARE_GROUP = "autocloud"
RECEIVE_MAXIMUM = 65535
SESSION_NEVER_EXPIRES = 0xFFFFFFFF  # MQTT 5: the broker keeps the session until told otherwise


def subscriptions(shared: bool, topics: Iterable[Topic] = tuple(Topic)) -> list[tuple[str, int]]:
    """Topic filters of the given vehicle-to-cloud sub-topics (all by default)."""
    filters = [f"{TOPIC_ROOT}/+/{t.value}" for t in topics]
    if shared:
        filters = [f"$share/{SHARE_GROUP}/{f}" for f in filters]
    return [(f, 1) for f in filters]


def _no_delay(_c: mqtt.Client, _u: object, sock: object) -> None:
    """TCP_NODELAY on every (re)connect: a command published right after a PUBACK must not
    wait for the broker's delayed ACK (Nagle; about 40 ms on Linux)."""
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # not a TCP socket: nothing to do
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttLink:
    """Receives vehicle messages through a broker and publishes to vehicles."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        client_id: str = "autocloud-ingest-0",
        mqtt5: bool = True,
        topics: Iterable[Topic] = tuple(Topic),
        manual_ack: bool = True,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port = host, port
        self._mqtt5 = mqtt5
        self._topics = tuple(topics)
        self._manual_ack = manual_ack
        self._timeout = connect_timeout_s
        protocol = mqtt.MQTTv5 if mqtt5 else mqtt.MQTTv311
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=protocol,
            clean_session=None if mqtt5 else False,
            manual_ack=manual_ack,
        )
        self._client.username_pw_set(username, password)
        self._client.max_inflight_messages_set(1000)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(1, 5)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._client.on_socket_open = _no_delay
        self._sink: Callable[[Inbound], None] | None = None
        self._connected = threading.Event()
        self._refused: str | None = None

    def start(self, sink: Callable[[Inbound], None]) -> None:
        self._sink = sink
        properties = None
        if self._mqtt5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
            properties.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            self._client.connect(
                self._host,
                self._port,
                keepalive=30,
                clean_start=False if self._mqtt5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=properties,
            )
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot reach the MQTT broker at {self._host}:{self._port}: {exc}"
            ) from None
        self._client.loop_start()
        if not self._connected.wait(self._timeout):
            self._client.loop_stop()
            why = self._refused or "no CONNACK"
            raise StoreUnavailable(
                f"MQTT broker at {self._host}:{self._port} did not accept the platform: {why}"
            )

    def ack(self, message: Inbound) -> None:
        if self._manual_ack and message.qos > 0 and message.token is not None:
            token: tuple[int, int] = message.token  # type: ignore[assignment]
            self._client.ack(token[0], token[1])

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self._client.publish(f"{TOPIC_ROOT}/{vin}/{subtopic}", payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise StoreUnavailable(
                f"could not queue a message to {vin}: {mqtt.error_string(info.rc)}"
            )

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # --- paho callbacks (network thread) -----------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self._refused = str(reason)
            log.error("broker refused the platform: %s", reason)
            return
        client.subscribe(subscriptions(self._mqtt5, self._topics))
        self._connected.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        self._connected.clear()
        if getattr(reason, "is_failure", False):
            log.warning("platform lost the broker (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        assert self._sink is not None
        self._sink(inbound_of(msg, (msg.mid, msg.qos)))


def inbound_of(msg: mqtt.MQTTMessage, token: object) -> Inbound:
    """A paho message as the platform's `Inbound`, stamped with its arrival time."""
    content_type = getattr(msg.properties, "ContentType", None) if msg.properties else None
    return Inbound(
        topic=msg.topic,
        payload=bytes(msg.payload),
        received_ms=time.time_ns() // 1_000_000,
        qos=msg.qos,
        retain=bool(msg.retain),
        content_type=content_type,
        token=token,
    )
