"""The embedded tier's `VehicleLink`: vehicle messages taken straight off the amqtt broker.

amqtt acknowledges a QoS 1 PUBLISH as soon as it has read it. For telemetry and events of a
vehicle, this link holds that PUBACK back instead: the broker's handler hands the message to
ingest and sends PUBACK only when ingest calls `ack()` after its commit (or dead letter). A
vehicle whose PUBACK never comes (the platform died) resends the message after reconnecting,
as MQTT requires, so a crash of the embedded platform loses no acknowledged message.

The message is still routed as usual to other subscribers. QoS 0 and 2 messages are passed to
ingest without holding anything back (QoS 0 asks for no guarantee; QoS 2 keeps amqtt's own
flow). State messages and last wills are not tapped: the platform's MQTT client receives those
(they are retained and idempotent). Relies on amqtt 0.12 handler internals, pinned by
`tests/e2e/test_embedded_durability.py`.
"""

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from amqtt.mqtt.constants import QOS_1
from amqtt.mqtt.puback import PubackPacket
from amqtt.session import INCOMING, Session

from autocloud.domain.protocol import TOPIC_ROOT, Topic
from autocloud.ports.link import Inbound

log = logging.getLogger(__name__)

Sink = Callable[[Inbound], None]


class IngestTap:
    """Installed in the broker; wraps each vehicle session's message flow."""

    def __init__(
        self,
        sink: Sink,
        subtopics: Iterable[Topic],
        may_publish_for: Callable[[str | None, str], bool] | None = None,
    ) -> None:
        self.sink = sink
        self.subtopics = frozenset(t.value for t in subtopics)
        # Who may publish for a VIN besides the vehicle itself (fleet gateways); None: nobody.
        self.may_publish_for = may_publish_for
        self.active = True  # cleared when the link stops; wrapped sessions fall back

    def wants(self, username: str | None, topic: str) -> bool:
        """A vehicle's own ingest topics, or those of a VIN granted to the fleet gateway
        `username`; anything else takes amqtt's normal path (and its topic check)."""
        parts = topic.split("/", 2)
        if username is None or len(parts) != 3 or parts[0] != TOPIC_ROOT:
            return False
        if parts[2] not in self.subtopics:
            return False
        if parts[1] == username:
            return True
        return self.may_publish_for is not None and self.may_publish_for(username, parts[1])

    def attach(self, handler: Any, session: Session) -> None:
        """Wrap `handler`'s message flow so tapped QoS 1 messages wait for ingest's ack."""
        original = handler._handle_message_flow

        async def flow(app_message: Any) -> None:
            if (
                not self.active
                or app_message.direction != INCOMING
                or not self.wants(session.username, app_message.topic)
            ):
                await original(app_message)
            elif app_message.qos == QOS_1:
                await self._held(handler, app_message)
            else:
                await original(app_message)
                self.sink(self._inbound(app_message, token=None))

        handler._handle_message_flow = flow

    def _inbound(self, app_message: Any, token: object) -> Inbound:
        return Inbound(
            topic=app_message.topic,
            payload=bytes(app_message.data),
            received_ms=time.time_ns() // 1_000_000,
            qos=app_message.qos,
            retain=bool(app_message.retain),
            token=token,
        )

    async def _held(self, handler: Any, app_message: Any) -> None:
        durable: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await handler.session.delivered_message_queue.put(app_message)  # route to subscribers
        self.sink(self._inbound(app_message, token=durable))
        # No timeout: ingest retries until the commit lands, and the vehicle's unacknowledged
        # window is the back-pressure that a stalled database should cause.
        await durable
        puback = PubackPacket.build(app_message.packet_id)
        try:
            await handler._send_packet(puback)
        except Exception:  # the vehicle left meanwhile; it resends after reconnecting
            log.debug("PUBACK for %s not sent: connection gone", app_message.topic)
            return
        app_message.puback_packet = puback


def _resolve_all(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


# Everything a vehicle sends except its retained state, which the platform reads as a subscriber.
TAPPED = tuple(topic for topic in Topic if topic is not Topic.STATE)


class EmbeddedLink:
    """`VehicleLink` on an `EmbeddedBroker`: ingest of telemetry and events, held PUBACKs."""

    def __init__(
        self,
        broker: Any,  # EmbeddedBroker; typed loosely to keep the import graph acyclic
        *,
        subtopics: Iterable[Topic] = TAPPED,
    ) -> None:
        self._broker = broker
        self._subtopics = tuple(subtopics)
        self._tap: IngestTap | None = None

    def start(self, sink: Sink) -> None:
        self._tap = IngestTap(sink, self._subtopics, getattr(self._broker, "may_publish_for", None))
        self._broker.install_tap(self._tap)

    def ack(self, messages: Sequence[Inbound]) -> None:
        # One wake-up of the broker's loop per batch, not one per message.
        held = [m.token for m in messages if isinstance(m.token, asyncio.Future)]
        if held:
            held[0].get_loop().call_soon_threadsafe(_resolve_all, held)

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        self._broker.publish(f"{TOPIC_ROOT}/{vin}/{subtopic}", payload, retain=retain)

    def stop(self) -> None:
        if self._tap is not None:
            self._tap.active = False
        self._broker.install_tap(None)
