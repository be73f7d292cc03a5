"""Load mode: the same simulated fleet, published through a few fleet-gateway connections.

Realistic mode (`sim/fleet.py`) gives every car its own MQTT login and connection, as real
telematics units have. To push far more vehicle-updates per second than a machine can hold
connections for, load mode provisions the same vehicles (same seed, same physics, same
faults) plus a few gateway credentials per brand (`services/gateways.py`), grants each
gateway its share of the brand's VINs, and publishes every car's messages through its
gateway's connection, on `vehicles/{VIN}/…` exactly as the car would. The broker lets a
gateway publish only for the VINs it was granted.

What differs from realistic mode, and why:
- A gateway has no last will per car: when a car goes offline (a tunnel), its gateway
  publishes the car's `state` offline itself, and online again when it is back.
- Gateways may not subscribe: cars in load mode receive no cloud-to-vehicle messages.
- Gateways publish through a lean QoS 1 publisher (`sim/gateway_session.py`) instead of
  paho, whose per-message costs would cap load mode at a few thousand updates a second;
  the fleet's backlog limit (`BACKLOG_HIGH`) bounds what is outstanding.
"""

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import msgspec

from autocloud.domain.protocol import Topic
from autocloud.sim.fleet import BRANDS, Fleet, FleetConfig, FleetStats, Provisioner
from autocloud.sim.gateway_session import GatewaySession
from autocloud.sim.places import Places
from autocloud.sim.roads import Router
from autocloud.sim.transport import Session
from autocloud.sim.vehicle import SimVehicle

_encode = msgspec.json.encode
_TELEMETRY = Topic.TELEMETRY.value


class GatewayProvisioner(Protocol):
    def gateway(self, brand: str, name: str) -> tuple[str, str]:
        """Create (or re-create) gateway `name` of `brand`; return its (login, secret)."""
        ...

    def grant(self, login: str, vins: list[str]) -> None:
        """Let the gateway publish for `vins`."""
        ...


def gateway_count(requested: int) -> int:
    """At least one gateway per brand of the fleet, rounded up to a multiple of the brands."""
    brands = len(BRANDS)
    return max(brands, -(-requested // brands) * brands)


class LoadFleet(Fleet):
    """`Fleet` whose cars publish through `gateways` fleet-gateway connections."""

    def __init__(
        self,
        config: FleetConfig,
        router: Router,
        places: Places,
        provisioner: Provisioner,
        gateways: GatewayProvisioner,
        *,
        gateway_connections: int = 3,
    ) -> None:
        super().__init__(config, router, places, provisioner)
        self._gateway_provisioner = gateways
        self.gateway_connections = gateway_count(gateway_connections)
        self._logins: dict[str, tuple[str, str]] = {}  # login -> (brand, secret)
        self.gateways: dict[str, GatewaySession] = {}  # login -> its session
        self._via: dict[str, GatewaySession] = {}  # VIN -> its gateway's session
        self._lanes: list[tuple[SimVehicle, GatewaySession, bytes]] = []  # see `connect`

    def provision(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Register the cars (as realistic mode does), then the gateways and their grants."""
        super().provision(progress)
        per_brand: dict[str, list[str]] = {b[0]: [] for b in BRANDS}
        for i in range(self.gateway_connections):
            brand = BRANDS[i % len(BRANDS)][0]
            login, secret = self._gateway_provisioner.gateway(brand, f"sim-{i // len(BRANDS) + 1}")
            self._logins[login] = (brand, secret)
            per_brand[brand].append(login)
        shares: dict[str, list[str]] = {login: [] for login in self._logins}
        counts: dict[str, int] = dict.fromkeys(per_brand, 0)
        for vehicle in self.vehicles:  # round robin over the brand's gateways
            logins = per_brand[vehicle.brand]
            shares[logins[counts[vehicle.brand] % len(logins)]].append(vehicle.vin)
            counts[vehicle.brand] += 1
        for login, vins in shares.items():
            if vins:
                self._gateway_provisioner.grant(login, vins)
        self._shares = shares

    def connect(self, host: str, port: int, timeout_s: float = 60.0) -> None:
        """Open the gateways' sessions and announce every car online through its gateway."""
        self._host, self._port = host, port
        for login, (_brand, secret) in self._logins.items():
            conn = GatewaySession(login, secret, host, port, vehicles=self._shares[login])
            self.gateways[login] = conn
            for vin in conn.vehicles:
                self._via[vin] = conn
        # per car, in fleet order: its gateway and its telemetry topic as a PUBLISH has it
        self._lanes = [
            (vehicle, self._via[vehicle.vin], self._via[vehicle.vin].topic(vehicle.vin, _TELEMETRY))
            for vehicle in self.vehicles
        ]
        self.pool.connect_all(list(self.gateways.values()), timeout_s, "gateways")
        for vehicle in self.vehicles:
            self._state(vehicle, online=True)

    def _state(self, vehicle: SimVehicle, *, online: bool) -> None:
        state = {"online": online, "ts": int(time.time() * 1000)}
        self._via[vehicle.vin].publish_for(vehicle.vin, "state", _encode(state), retain=True)

    def _tick_all(self, sim_ms: int, was_online: dict[str, bool]) -> None:
        """`_tick` of every car, written out in one loop (the load benchmark's hot loop:
        the same steps in the same order, without a method call and lookups per car)."""
        router, places = self._router, self._places
        sent = 0
        for vehicle, conn, telemetry in self._lanes:
            online = vehicle.plan.online(1.0)
            vin = vehicle.vin
            if online != was_online[vin]:
                was_online[vin] = online
                self._state(vehicle, online=online)  # the gateway speaks for the car
                sent += 1
            vehicle.tick(1.0, sim_ms, router, places)
            messages = vehicle.outgoing(online and conn.connected)
            if messages:
                for subtopic, payload in messages:
                    if subtopic == _TELEMETRY:  # the topic at hand: nearly every message
                        conn.publish_on(telemetry, payload)
                    else:
                        conn.publish_for(vin, subtopic, payload)
                sent += len(messages)
        self.stats.sent += sent

    def _tick(self, vehicle: SimVehicle, sim_ms: int, was_online: dict[str, bool]) -> None:
        conn = self._via[vehicle.vin]
        online = vehicle.plan.online(1.0)
        if online != was_online[vehicle.vin]:
            was_online[vehicle.vin] = online
            self._state(vehicle, online=online)  # the gateway speaks for the car
            self.stats.sent += 1
        vehicle.tick(1.0, sim_ms, self._router, self._places)
        for subtopic, payload in vehicle.outgoing(online and conn.connected):
            conn.publish_for(vehicle.vin, subtopic, payload)
            self.stats.sent += 1

    def _finish(self, timeout_s: float = 120.0) -> None:
        """Send what the cars buffered, wait for every acknowledgement."""
        for conn in self.gateways.values():
            if not conn.connected:
                self.pool.reconnect(conn)
        self.pool.until(lambda: all(c.connected for c in self.gateways.values()), 30)
        for vehicle in self.vehicles:
            conn = self._via[vehicle.vin]
            vehicle.batch_samples = 1
            for subtopic, payload in vehicle.outgoing(True):
                conn.publish_for(vehicle.vin, subtopic, payload)
                self.stats.sent += 1
        self.pool.until(lambda: self.backlog == 0, timeout_s)

    def close(self) -> None:
        """Announce every car offline through its gateway, then disconnect the gateways."""
        for vehicle in self.vehicles:
            if self._via[vehicle.vin].connected:
                self._state(vehicle, online=False)
        self.pool.until(lambda: self.backlog == 0, 30)
        for conn in self.gateways.values():
            self.pool.close(conn, graceful=True)

    def _sessions(self) -> Iterable[Session]:
        return self.gateways.values()

    def _measure(self, wall0: float) -> FleetStats:
        stats = super()._measure(wall0)
        stats.connected = sum(self._via[v.vin].connected for v in self.vehicles)
        return stats
