"""Fleet gateways: one broker credential that publishes for many vehicles of one brand.

What: a gateway is a named credential of a brand (`Gateway`), granted a set of that brand's
VINs. Its broker login is `gw.{brand}.{name}` (lower case and dots: never a VIN, which is
upper case, so the two kinds of login cannot collide); it may publish only the vehicle-to-cloud
data topics `vehicles/{granted VIN}/{telemetry,events,state}` and may subscribe to and receive
nothing, so it can neither read nor forge another vehicle's commands.

Why: a load test, an OEM backend or a depot box forwards data for thousands of cars over a few
connections; giving it every vehicle's own credential would be one connection per car. The
platform still checks every message as it does a vehicle's (VIN registered, body VIN = topic).

Pure: names, the login, the topic rule. Storage, broker enforcement and the API live elsewhere.
"""

import re
from dataclasses import dataclass
from typing import Final

from autocloud.domain.protocol import TOPIC_ROOT, Topic

__all__ = [
    "GATEWAY_NAME",
    "GATEWAY_PREFIX",
    "GATEWAY_SUBTOPICS",
    "Gateway",
    "gateway_may_publish",
    "gateway_topics",
    "gateway_username",
    "is_gateway_username",
]

GATEWAY_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
GATEWAY_PREFIX: Final = "gw."
GATEWAY_SUBTOPICS: Final = (Topic.TELEMETRY.value, Topic.STATE.value, Topic.EVENTS.value)
"""What a gateway may publish for a granted VIN (telemetry first: the hot one)."""
MAX_GRANTS_PER_CALL: Final = 10_000


@dataclass(frozen=True, slots=True)
class Gateway:
    """A fleet-gateway credential of one brand and how many VINs it holds."""

    id: int
    brand: str
    name: str
    created_ms: int
    vins: int = 0

    @property
    def username(self) -> str:
        return gateway_username(self.brand, self.name)


def gateway_username(brand: str, name: str) -> str:
    """The broker login (and client id) of gateway `name` of `brand`."""
    return f"{GATEWAY_PREFIX}{brand}.{name}"


def is_gateway_username(username: str | None) -> bool:
    """Whether a broker login is a gateway's (vehicles log in with their VIN)."""
    return username is not None and username.startswith(GATEWAY_PREFIX)


def gateway_topics(vin: str) -> list[str]:
    """The topics a gateway granted `vin` may publish to, telemetry first."""
    return [f"{TOPIC_ROOT}/{vin}/{sub}" for sub in GATEWAY_SUBTOPICS]


def gateway_may_publish(topic: str | None, granted: frozenset[str]) -> bool:
    """Whether a gateway holding `granted` VINs may publish to `topic` (a name, not a filter)."""
    if not topic:
        return False
    parts = topic.split("/")
    return (
        len(parts) == 3
        and parts[0] == TOPIC_ROOT
        and parts[2] in GATEWAY_SUBTOPICS
        and parts[1] in granted
    )
