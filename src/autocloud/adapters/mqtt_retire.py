"""Retire a consumer's persistent broker session without losing what waits in it (MQTT 5).

Each consumer process (`consumer_id`) keeps a persistent session in Mosquitto and is a member
of the shared subscription `$share/autocloud/...`. Mosquitto hands shared messages out round
robin and keeps queueing a disconnected member's share in its session (checked on 2.0.11), so a
consumer id that is no longer run keeps 1/N of all vehicle messages until the session expires
(`persistent_client_expiration`, 30 days in the generated config).

`RetiringSession` is a `VehicleLink` that takes over such a session and empties it through the
normal ingest path:

1. connect with the consumer's client id, clean start off: the session resumes, Mosquitto
   resends the unacknowledged messages and starts sending the queued ones; the session expiry
   stays long for now, so if anything fails from here on the session, and what it still holds,
   stays for a later run;
2. unsubscribe from the platform's filters (shared and plain): nothing new is queued for the
   session; what was queued before stays queued and is delivered;
3. subscribe to a private marker topic and publish a marker to it. Mosquitto sends one session
   its messages in the order it queued them, so once a marker arrives every message queued
   before it has been delivered. (A marker published while the queue is full would be dropped:
   it is published again every few seconds until one arrives.)
4. `drain` waits for the marker and for the ingest service to acknowledge every delivered
   message, which it does only once the message is durable or dead-lettered;
5. `end` disconnects with session expiry 0 (MQTT 5 allows lowering it at DISCONNECT): the broker
   deletes the session, and from then on the shared group has one member less. It writes the
   DISCONNECT itself on paho's socket once paho's loop has stopped, half-closes, and reads
   until the broker closes. Through paho's own `disconnect` the session survived about one run
   in seven of the test: a packet capture of a failing run shows the client's last bytes were a
   PUBACK, then a TCP reset, with no DISCONNECT (paho's network thread stopped without writing
   it; where in paho was not found), and the broker kept the session as if the connection had
   been lost.

If the consumer is in fact still running, taking over its session disconnects it ("session
taken over"); it reconnects within seconds and takes the session back, which ends this link's
connection: `drain` (or `end`) then fails and nothing is lost (the running consumer
resubscribes on every connect, and every message not yet acknowledged here is redelivered to
it).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from autocloud.adapters import mqtt_wire as wire
from autocloud.adapters.mqtt_link import READ_BYTES, RECEIVE_MAXIMUM, SESSION_NEVER_EXPIRES
from autocloud.domain.errors import StoreUnavailable
from autocloud.domain.protocol import TOPIC_ROOT
from autocloud.ports.link import Inbound

# Under the platform's ACL (`vehicles/#`), but matching none of the platform's filters
# (`vehicles/+/telemetry`, `vehicles/+/commands/result`, …) and no vehicle's (`vehicles/{VIN}/#`).
MARKER_ROOT: Final = f"{TOPIC_ROOT}/-/retire"
MARKER_EVERY_S: Final = 5.0
_WAIT_STEP_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class Drained:
    """What a retired session held: whether it existed and how many messages were ingested."""

    client_id: str
    session_present: bool
    messages: int


class RetiringSession:
    """The `VehicleLink` that empties one consumer's session, then ends it (see module doc)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str,
        password: str,
        client_id: str,
        filters: Sequence[str],
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._host, self._port = host, port
        self._where = f"{host}:{port}"
        self.client_id = client_id
        self._filters = list(dict.fromkeys(filters))
        self._timeout = connect_timeout_s
        self._marker = f"{MARKER_ROOT}/{uuid.uuid4().hex}"
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
            reconnect_on_failure=False,  # a second connection could only confuse the count
        )
        self._client.username_pw_set(username, password)
        self._client.max_queued_messages_set(0)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_unsubscribe = self._on_unsubscribe
        self._client.on_message = self._on_message
        self._client.on_disconnect = self._on_disconnect
        self._changed = threading.Condition()
        self._connack = threading.Event()
        self._refused: str | None = None
        self._lost: str | None = None
        self._session_present = False
        self._acks_due = 0  # UNSUBACK and SUBACK still to come before the marker may go out
        self._marker_sent_at: float | None = None
        self._marker_seen = False
        self._serial = itertools.count()
        self._outstanding: set[int] = set()  # delivered to the sink, not yet acknowledged
        self._delivered = 0
        self._acked = 0
        self._started = False
        self._ended = False

    # -- VehicleLink ---------------------------------------------------------------------------

    def start(self, sink: Callable[[Inbound], None]) -> None:
        """Resume the session (clean start off) and begin emptying it into `sink`."""
        self._sink = sink
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        properties.ReceiveMaximum = RECEIVE_MAXIMUM
        try:
            self._client.connect(
                self._host, self._port, keepalive=30, clean_start=False, properties=properties
            )
        except (OSError, ValueError) as exc:
            raise StoreUnavailable(
                f"cannot reach the MQTT broker at {self._where}: {exc}"
            ) from None
        self._started = True
        self._client.loop_start()
        if not self._connack.wait(self._timeout) or self._refused is not None:
            self._client.loop_stop()
            self._started = False
            why = self._refused or "no CONNACK"
            raise StoreUnavailable(
                f"MQTT broker at {self._where} did not accept {self.client_id}: {why}"
            )

    def ack(self, messages: Sequence[Inbound]) -> None:
        """Acknowledge delivered messages (QoS 1: PUBACK) once ingest has made them durable."""
        for message in messages:
            if not isinstance(message.token, tuple):
                continue
            serial, mid, qos = message.token
            if qos > 0:
                self._client.ack(mid, qos)
            with self._changed:
                if serial in self._outstanding:
                    self._outstanding.discard(serial)
                    self._acked += 1
                    self._changed.notify_all()

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish to a vehicle at QoS 1 and wait for the broker's PUBACK."""
        info = self._client.publish(f"{TOPIC_ROOT}/{vin}/{subtopic}", payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise StoreUnavailable(
                f"could not queue a message to {vin}: {mqtt.error_string(info.rc)}"
            )
        info.wait_for_publish(self._timeout)

    def stop(self) -> None:
        """Disconnect keeping the session: what is not acknowledged stays with the broker."""
        if self._started and not self._ended:
            self._client.disconnect()
            self._client.loop_stop()
            self._started = False

    # -- retiring ------------------------------------------------------------------------------

    def drain(
        self, *, stall_s: float = 60.0, progress: Callable[[int, int], None] | None = None
    ) -> Drained:
        """Wait until every message queued for the session was delivered and acknowledged.

        Fails with `StoreUnavailable` when the connection is lost or nothing moves for
        `stall_s` seconds; the session then stays, with whatever it still holds.
        `progress(delivered, acknowledged)` is called as the counts change.
        """
        last_move = time.monotonic()
        seen = (-1, -1, False)
        while True:
            with self._changed:
                lost, pending = self._lost, len(self._outstanding)
                now = (self._delivered, self._acked, self._marker_seen)
            if lost is not None:
                raise StoreUnavailable(
                    f"lost the broker while retiring {self.client_id} ({lost}): if that "
                    "consumer is still running, stop it first; nothing was lost, run again"
                )
            if now != seen:
                seen, last_move = now, time.monotonic()
                if progress is not None:
                    progress(now[0], now[1])
            if now[2] and not pending:
                return Drained(self.client_id, self._session_present, now[0])
            if time.monotonic() - last_move > stall_s:
                raise StoreUnavailable(
                    f"retiring {self.client_id} stalled for {stall_s:g} s ({now[0]} messages "
                    f"delivered, {pending} not yet stored): the session is kept with what it "
                    "holds; run again"
                )
            self._republish_marker()
            with self._changed:
                self._changed.wait(_WAIT_STEP_S)

    def end(self) -> None:
        """End the session: DISCONNECT with session expiry 0, so the broker deletes it.

        Closed gracefully (see the module doc): the DISCONNECT is read by the broker whatever
        it was still sending. Fails with `StoreUnavailable`, keeping the session, when the
        session is not drained or the connection was lost (a consumer still running took it
        back): the session then stays with the running consumer, and nothing is lost.
        """
        with self._changed:
            if not self._marker_seen or self._outstanding:
                raise StoreUnavailable(f"{self.client_id} is not drained: its session is kept")
        self._ended = True  # from here on, paho closing the connection is not a loss
        self._client.loop_stop()  # after paho wrote what it queued (the last PUBACKs)
        self._started = False
        with self._changed:
            lost = self._lost
        sock = self._client.socket()
        if lost is not None or not isinstance(sock, socket.socket):
            raise StoreUnavailable(
                f"lost the broker while ending the session of {self.client_id} "
                f"({lost or 'connection closed'}): its messages were all ingested; if that "
                "consumer is still running, stop it first, then run again"
            )
        try:
            sock.settimeout(self._timeout)
            sock.sendall(wire.disconnect_ending_session())
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(READ_BYTES):  # whatever the broker still sends, until it closes
                pass
        except OSError as exc:
            raise StoreUnavailable(
                f"could not end the session of {self.client_id} at {self._where} ({exc}): its "
                "messages were all ingested; the session may remain, holding none that is "
                "not stored; running again is safe"
            ) from None
        finally:
            sock.close()

    @property
    def session_present(self) -> bool:
        """Whether the broker still had a session for this client id when we connected."""
        return self._session_present

    # -- paho callbacks (network thread) -------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, _u: object, flags: Any, reason: Any, _p: object
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
        else:
            self._session_present = bool(flags.session_present)
            with self._changed:
                self._acks_due = 2
            # One UNSUBSCRIBE for the whole group's filters; a filter the session did not
            # hold is answered "no subscription existed", which is fine.
            client.unsubscribe(self._filters)
            client.subscribe(self._marker, qos=1)
        self._connack.set()

    def _on_unsubscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: Any, _p: object
    ) -> None:
        # "No subscription existed" is fine; a refusal would leave the session subscribed, so
        # messages queued for it after the marker would go with the session at the end.
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            with self._changed:
                self._lost = f"unsubscribing the platform's filters refused: {', '.join(refused)}"
                self._changed.notify_all()
            return
        self._acked_control()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, _mid: int, reasons: Any, _p: object
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            with self._changed:
                self._lost = f"subscription to {self._marker} refused"
                self._changed.notify_all()
            return
        self._acked_control()

    def _acked_control(self) -> None:
        with self._changed:
            self._acks_due -= 1
            if self._acks_due == 0:
                self._publish_marker()
            self._changed.notify_all()

    def _publish_marker(self) -> None:
        self._marker_sent_at = time.monotonic()
        self._client.publish(self._marker, b"", qos=1)

    def _republish_marker(self) -> None:
        sent = self._marker_sent_at
        if not self._marker_seen and sent is not None and time.monotonic() - sent > MARKER_EVERY_S:
            self._publish_marker()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self._marker:
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)
            with self._changed:
                self._marker_seen = True
                self._changed.notify_all()
            return
        serial = next(self._serial)
        with self._changed:
            self._outstanding.add(serial)
            self._delivered += 1
            self._changed.notify_all()
        self._sink(inbound_of(msg, (serial, msg.mid, msg.qos)))

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        if not self._ended:
            with self._changed:
                self._lost = str(reason)
                self._changed.notify_all()


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
