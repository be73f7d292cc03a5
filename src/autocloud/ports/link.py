"""Port to the vehicle edge: the MQTT broker the vehicles connect to.

The platform receives vehicle messages through a `VehicleLink` and acknowledges each one only
after it is durable or dead-lettered (`ack`). Adapters: the platform's own MQTT session against
Mosquitto or the embedded amqtt broker (`adapters/mqtt_link.py`), and the embedded broker's
in-process tap (`adapters/amqtt_link.py`).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class Inbound:
    """One message from a vehicle, as the broker delivered it."""

    topic: str
    payload: bytes
    received_ms: int
    qos: int = 1
    retain: bool = False
    content_type: str | None = None
    token: object = field(default=None, repr=False)  # adapter's handle used by `ack`


class VehicleLink(Protocol):
    """Receives vehicle messages and sends messages to vehicles."""

    def start(self, sink: Callable[[Inbound], None]) -> None:
        """Connect and deliver every received message to `sink` (called from the link's thread)."""

    def ack(self, messages: Sequence[Inbound]) -> None:
        """Acknowledge `messages` (received through this link) to the broker; call only once
        they are durable or dead-lettered. One call per batch: acks go out together."""

    def send(self, vin: str, subtopic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish `payload` at QoS 1 to `vehicles/{vin}/{subtopic}`."""

    def stop(self) -> None:
        """Disconnect; unacknowledged messages stay with the broker for redelivery."""


class VehicleAccess(Protocol):
    """Grants a vehicle the right to connect under its VIN and to use only its own topics."""

    def grant(self, vin: str, secret: str) -> None:
        """Create or replace the vehicle's broker credential and its topic ACL."""

    def revoke(self, vin: str) -> None:
        """Remove the vehicle's broker credential; a connected session is dropped."""
