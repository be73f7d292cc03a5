"""Ports of the fleet-gateway feature: where gateways are stored, and the broker's side.

Adapters: `adapters/sql/gateways.py` (store, SQLite and PostgreSQL), `adapters/mosquitto.py`
(dynamic security) and `adapters/amqtt_broker.py` (embedded broker) for the access.
"""

from collections.abc import Iterable
from typing import Protocol

from autocloud.domain.gateway import Gateway


class GatewayStore(Protocol):
    """Gateways, their credential digest and the VINs granted to each."""

    def add_gateway(self, brand: str, name: str, secret_digest: str, now_ms: int) -> Gateway: ...
    def gateway(self, gateway_id: int) -> Gateway | None: ...
    def gateway_by_name(self, brand: str, name: str) -> Gateway | None: ...
    def gateways(self, scope: str | None) -> list[Gateway]: ...
    def secret_digest(self, brand: str, name: str) -> str | None: ...
    def vehicles_of(self, vins: Iterable[str]) -> dict[str, tuple[int, str]]:
        """(vehicle id, brand) of each registered VIN among `vins`."""
        ...

    def grant(self, gateway_id: int, vehicle_ids: Iterable[int]) -> int:
        """Grant the vehicles (already checked to be of the gateway's brand); new grants."""
        ...

    def revoke(self, gateway_id: int, vins: Iterable[str]) -> int:
        """Take the VINs back; how many were granted."""
        ...

    def granted(self, gateway_id: int) -> frozenset[str]: ...
    def holding(self, vehicle_id: int) -> list[Gateway]:
        """The gateways granted vehicle `vehicle_id`."""
        ...

    def delete_gateway(self, gateway_id: int) -> None: ...


class GatewayAccess(Protocol):
    """The broker's view of a gateway: its login and the VINs it may publish for."""

    def set_gateway(self, username: str, secret: str | None, vins: frozenset[str]) -> None:
        """Create (with `secret`) or update a gateway login; `vins` replaces its grants.

        `secret` None keeps the current password (the login must exist).
        """

    def remove_gateway(self, username: str) -> None:
        """Delete the login; its connected session is dropped. Unknown logins are fine."""
