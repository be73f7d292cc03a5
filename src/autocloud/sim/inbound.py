"""What a simulated vehicle does with the messages the cloud sends it.

The vehicle subscribes to its own cloud-to-vehicle topics (commands, diagnostic requests);
each sub-topic has one handler in `HANDLERS`, which gets the vehicle, the raw payload and
the simulated time, and returns the messages the vehicle publishes in answer. A handler
must never raise on a bad payload: a real telematics unit ignores or refuses what it cannot
read, it does not reboot. Features add their handler to the table, one line each.
"""

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from autocloud.domain.protocol import PROTOCOL_VERSION, CloudTopic, Topic
from autocloud.sim import command_agent, ecus, key_agent

if TYPE_CHECKING:
    from autocloud.sim.vehicle import SimVehicle

log = logging.getLogger(__name__)

Outgoing = list[tuple[str, bytes]]
Handler = Callable[["SimVehicle", bytes, int], Outgoing]

# Cloud-to-vehicle sub-topic -> handler. Empty until a feature's vehicle side registers.
HANDLERS: dict[str, Handler] = {}
HANDLERS[CloudTopic.DIAG_REQUEST.value] = ecus.handle
HANDLERS[CloudTopic.COMMANDS.value] = command_agent.handle
HANDLERS[CloudTopic.KEYS.value] = key_agent.handle

SUBSCRIBED = tuple(t.value for t in (CloudTopic.COMMANDS, CloudTopic.DIAG_REQUEST, CloudTopic.KEYS))


def reply(vehicle: "SimVehicle", kind: Topic, now_ms: int, **fields: Any) -> tuple[str, bytes]:
    """A vehicle-to-cloud message of `kind` with the vehicle's envelope (v, sid, seq, ts)."""
    body = {
        "v": PROTOCOL_VERSION,
        "sid": vehicle.counter.sid,
        "seq": vehicle.counter.take(),
        "ts": now_ms,
        **fields,
    }
    return kind.value, msgspec.json.encode(body)


def receive(vehicle: "SimVehicle", subtopic: str, payload: bytes, now_ms: int) -> Outgoing:
    """Run the handler of `subtopic`; an unhandled sub-topic or a failing handler is logged."""
    handler = HANDLERS.get(subtopic)
    if handler is None:
        log.debug("%s ignores a message on %s: nothing handles it", vehicle.vin, subtopic)
        return []
    try:
        return handler(vehicle, payload, now_ms)
    except Exception:
        log.exception("%s: the handler of %s failed", vehicle.vin, subtopic)
        return []
