"""The fleet simulator: many `SimVehicle`s on one map, each with its own MQTT session.

Simulated time advances in ticks of one second. With `speedup` 1 it follows the wall clock;
faster runs (or 0, as fast as the platform acknowledges) start `duration` in the past so that
no timestamp is ever ahead of the platform's clock. Deterministic for a given seed, apart
from the pace at which the broker answers.
"""

import contextlib
import gc
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import msgspec

from autocloud.domain.command_keyset import KeyEntry
from autocloud.domain.vin import check_digit
from autocloud.sim.energy import PRESET_FOR, Powertrain
from autocloud.sim.faults import FaultPlan
from autocloud.sim.inbound import SUBSCRIBED, receive
from autocloud.sim.places import Places
from autocloud.sim.roads import Router
from autocloud.sim.transport import Connection, Pool, Session
from autocloud.sim.vehicle import SimVehicle

# brand id, name, WMI, model per powertrain
BRANDS: tuple[tuple[str, str, str, dict[Powertrain, str]], ...] = (
    (
        "volkswagen",
        "Volkswagen",
        "WVW",
        {Powertrain.BEV: "ID.3", Powertrain.HYBRID: "Golf eHybrid", Powertrain.ICE: "Golf"},
    ),
    (
        "skoda",
        "Škoda",
        "TMB",
        {Powertrain.BEV: "Enyaq", Powertrain.HYBRID: "Octavia iV", Powertrain.ICE: "Octavia"},
    ),
    (
        "bmw",
        "BMW",
        "WBA",
        {Powertrain.BEV: "i4", Powertrain.HYBRID: "330e", Powertrain.ICE: "320i"},
    ),
)
MIX: tuple[tuple[Powertrain, float], ...] = (
    (Powertrain.BEV, 0.4),
    (Powertrain.HYBRID, 0.25),
    (Powertrain.ICE, 0.35),
)
BACKLOG_HIGH = 5000  # unacknowledged messages before the simulator waits for the broker
GC_YOUNG_THRESHOLD = 10_000  # allocations between young collections in the tick loop


class Provisioner(Protocol):
    def brand(self, brand_id: str, name: str) -> None: ...
    def vehicle(self, vin: str, brand: str, model: str) -> str:
        """Register (or re-key) the vehicle and return its MQTT secret."""
        ...


@runtime_checkable
class KeyEnrolment(Protocol):
    """A provisioner that also enrols vehicles with the keys that sign their commands."""

    def command_keys(self, vin: str) -> list[KeyEntry]:
        """Each key the vehicle is to trust, with its role (what it may sign)."""
        ...


@dataclass
class FleetConfig:
    vehicles: int = 200
    seed: int = 7
    duration_s: float | None = None
    speedup: float = 1.0
    bad_input_rate: float = 0.0
    offline_rate_per_h: float = 0.5
    duplicate_rate: float = 0.002
    reorder_rate: float = 0.002
    clock_skew_s: float = 30.0
    batch_samples: int = 1


@dataclass
class FleetStats:
    sim_ms: int = 0
    ticks: int = 0
    sent: int = 0
    acked: int = 0
    connected: int = 0
    moving: int = 0
    charging: int = 0
    offline: int = 0
    bad_sent: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0


@contextlib.contextmanager
def collector_tuned(young_threshold: int = GC_YOUNG_THRESHOLD) -> Iterator[None]:
    """Keep CPython's cyclic garbage collector out of the way of the tick loop.

    Each car update allocates a few dozen short-lived containers (readings, messages), so
    with the default threshold (700) the collector runs every few dozen updates and, as
    objects survive a tick, sweeps the whole heap (every car, route and buffered reading)
    now and then: 10-15 % of load mode's time (BENCHMARKS.md, "Simulator"). Inside this
    context what exists already (the fleet, its places and routes) is frozen out of the
    collector's sweeps (`gc.freeze`) and young collections run every `young_threshold`
    allocations; memory is still freed by reference counting as before. Both are undone
    on exit.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(young_threshold, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def fleet_vin(wmi: str, serial: int) -> str:
    """A valid VIN: WMI, descriptor, check digit, model year 2024 ('R'), plant, serial."""
    body = f"{wmi}ZZZ1K0RS{serial:06d}"
    return body[:8] + check_digit(body) + body[9:]


def _powertrain(rng: random.Random) -> Powertrain:
    return rng.choices([p for p, _ in MIX], weights=[w for _, w in MIX])[0]


class Fleet:
    def __init__(
        self,
        config: FleetConfig,
        router: Router,
        places: Places,
        provisioner: Provisioner,
    ) -> None:
        self.config = config
        self._router, self._places = router, places
        self._host, self._port = "", 0
        self._secrets: dict[str, str] = {}
        self.pool = Pool()
        self.vehicles: list[SimVehicle] = []
        self.connections: dict[str, Connection] = {}
        self._provisioner = provisioner
        self.stats = FleetStats()

    def provision(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Register brands and vehicles through the platform and build their models."""
        rng = random.Random(self.config.seed)
        for brand_id, name, _wmi, _models in BRANDS:
            self._provisioner.brand(brand_id, name)
        for i in range(self.config.vehicles):
            brand_id, _name, wmi, models = BRANDS[i % len(BRANDS)]
            powertrain = _powertrain(rng)
            vin = fleet_vin(wmi, i + 1)
            secret = self._provisioner.vehicle(vin, brand_id, models[powertrain])
            vrng = random.Random(rng.getrandbits(64))
            plan = FaultPlan(
                random.Random(vrng.getrandbits(64)),
                offline_rate_per_h=self.config.offline_rate_per_h,
                duplicate_rate=self.config.duplicate_rate,
                reorder_rate=self.config.reorder_rate,
                clock_skew_s=self.config.clock_skew_s,
                bad_input_rate=self.config.bad_input_rate,
            )
            vehicle = SimVehicle(
                vin=vin,
                brand=brand_id,
                spec=PRESET_FOR[powertrain],
                rng=vrng,
                position=self._places.random_destination(vrng),
                plan=plan,
                sid=uuid.UUID(int=vrng.getrandbits(128)).hex[:16],
                batch_samples=self.config.batch_samples,
            )
            if isinstance(self._provisioner, KeyEnrolment):
                vehicle.remote.trust(self._provisioner.command_keys(vin))
            self.vehicles.append(vehicle)
            self._secrets[vin] = secret
            if progress:
                progress(i + 1, self.config.vehicles)

    def connect(self, host: str, port: int, timeout_s: float = 60.0) -> None:
        """Open every vehicle's own MQTT session and announce it online."""
        self._host, self._port = host, port
        for vin, secret in self._secrets.items():
            self.connections[vin] = Connection(vin, secret, host, port, listen=SUBSCRIBED)
        self.pool.connect_all(list(self.connections.values()), timeout_s, "vehicles")
        for conn in self.connections.values():
            self._announce(conn, online=True)

    def _announce(self, conn: Connection, *, online: bool) -> None:
        state = {"online": online, "ts": int(time.time() * 1000)}
        conn.publish("state", msgspec.json.encode(state), retain=True)

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        on_tick: Callable[[FleetStats], None] | None = None,
    ) -> FleetStats:
        """Drive the fleet until `duration_s` of simulated time passed (or `should_stop`)."""
        cfg = self.config
        now = int(time.time() * 1000)
        backfill = cfg.duration_s is not None and cfg.speedup != 1.0
        sim_ms = now - int(cfg.duration_s * 1000) if backfill and cfg.duration_s else now
        end_ms = sim_ms + int(cfg.duration_s * 1000) if cfg.duration_s else None
        wall0, sim0 = time.monotonic(), sim_ms
        was_online = {v.vin: True for v in self.vehicles}
        with collector_tuned():
            while not should_stop() and (end_ms is None or sim_ms < end_ms):
                sim_ms += 1000
                self._tick_all(sim_ms, was_online)
                self.stats.ticks += 1
                self.stats.sim_ms = sim_ms
                self._pace(wall0, sim_ms - sim0)
                if on_tick is not None:
                    on_tick(self._measure(wall0))
            self._finish()
        return self._measure(wall0)

    def _tick_all(self, sim_ms: int, was_online: dict[str, bool]) -> None:
        """One tick of every car, in fleet order."""
        for vehicle in self.vehicles:
            self._tick(vehicle, sim_ms, was_online)

    def _tick(self, vehicle: SimVehicle, sim_ms: int, was_online: dict[str, bool]) -> None:
        conn = self.connections[vehicle.vin]
        online = vehicle.plan.online(1.0)
        if online != was_online[vehicle.vin]:
            was_online[vehicle.vin] = online
            if online:
                self.pool.reconnect(conn)
                self._announce(conn, online=True)  # sent once the session is back
            else:
                self.pool.close(conn, graceful=False)  # a tunnel: the broker sends the will
        vehicle.tick(1.0, sim_ms, self._router, self._places)
        for subtopic, payload in conn.take_inbox():
            for reply_topic, reply_payload in receive(vehicle, subtopic, payload, sim_ms):
                conn.publish(reply_topic, reply_payload)
                self.stats.sent += 1
        for subtopic, payload in vehicle.outgoing(online and conn.connected):
            conn.publish(subtopic, payload)
            self.stats.sent += 1

    def _pace(self, wall0: float, sim_elapsed_ms: int) -> None:
        speedup = self.config.speedup
        if speedup > 0:
            due = wall0 + sim_elapsed_ms / 1000 / speedup
            self.pool.pump(max(0.0, due - time.monotonic()))
        else:
            self.pool.pump(0.0)
        if self.backlog > BACKLOG_HIGH:  # let the broker catch up rather than queue forever
            self.pool.until(lambda: self.backlog < BACKLOG_HIGH // 5, 120)

    @property
    def backlog(self) -> int:
        return sum(c.pending for c in self._sessions())

    def _sessions(self) -> Iterable[Session]:
        """The MQTT sessions the fleet publishes through (one per car here)."""
        return self.connections.values()

    def _finish(self, timeout_s: float = 120.0) -> None:
        """Send what is buffered, wait for every acknowledgement, then park the fleet."""
        for vehicle in self.vehicles:
            conn = self.connections[vehicle.vin]
            if not conn.connected:
                self.pool.reconnect(conn)
        self.pool.until(lambda: all(c.connected for c in self.connections.values()), 30)
        for vehicle in self.vehicles:
            conn = self.connections[vehicle.vin]
            vehicle.batch_samples = 1
            for subtopic, payload in vehicle.outgoing(True):
                conn.publish(subtopic, payload)
                self.stats.sent += 1
        self.pool.until(lambda: self.backlog == 0, timeout_s)

    def close(self) -> None:
        for conn in self.connections.values():
            if conn.connected:
                self._announce(conn, online=False)
        self.pool.until(lambda: self.backlog == 0, 10)
        for conn in self.connections.values():
            self.pool.close(conn, graceful=True)

    def _measure(self, wall0: float) -> FleetStats:
        s = self.stats
        conns = list(self._sessions())
        s.acked = sum(c.acked for c in conns)
        s.connected = sum(c.connected for c in conns)
        moving = charging = offline = 0
        bad_sent: Counter[str] = Counter()
        for v in self.vehicles:  # one pass: this runs every tick of a live summary
            moving += v.follower is not None
            charging += v.charging
            offline += v.plan.offline_left_s > 0
            if v.bad_sent:
                bad_sent.update(v.bad_sent)
        s.moving, s.charging, s.offline, s.bad_sent = moving, charging, offline, bad_sent
        s.wall_s = time.monotonic() - wall0
        return s

    def ground_truth(self) -> dict[str, dict[str, float]]:
        """Hidden degradation per VIN, for scoring predictive maintenance later."""
        return {v.vin: v.model.ground_truth() for v in self.vehicles}
