"""One simulated car: it parks, drives routed trips, charges or refuels, and reports.

Each tick (one second of simulated time) the car moves along its trip, its physics advance,
its DTC monitor looks for faults, and it sends telemetry (every second while driving or
charging, every minute while parked, as telematics units save power) and DTC events. When its
fault plan takes it offline it keeps what it measures and sends it, oldest first, after
reconnecting (store-and-forward); it may also duplicate, reorder or corrupt messages.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from itertools import compress
from operator import ne
from typing import Any

from autocloud.domain.protocol import Reason, Topic
from autocloud.sim.driving import Progress, TripFollower
from autocloud.sim.dtc import DtcMonitor
from autocloud.sim.energy import Powertrain, VehicleSpec
from autocloud.sim.faults import FaultPlan
from autocloud.sim.forward import Outbound, SeqCounter, StoreAndForward
from autocloud.sim.model import VehicleModel
from autocloud.sim.places import Places
from autocloud.sim.remote import RemoteState
from autocloud.sim.roads import Router

PARKED_REPORT_S = 60
FULL_REPORT_S = 60  # between full reports a car sends only what changed, as real units do
CHARGER_KW = 11.0
PARK_MINUTES = (2.0, 25.0)
_SUBTOPIC = {t: t.value for t in Topic}  # as plain str (an enum's .value is slow)
DRIVER_PATHS = (  # what the driver adds to the model's readings, in this order
    "Vehicle.Speed",
    "Vehicle.IsMoving",
    "Vehicle.CurrentLocation.Latitude",
    "Vehicle.CurrentLocation.Longitude",
    "Vehicle.CurrentLocation.Heading",
)


@dataclass
class Trip:
    """A trip the car drove: its routed distance, for checking the odometer against."""

    routed_m: float
    started_ms: int


@dataclass(slots=True)  # slots: one object per car, fewer cache misses in the tick loop
class SimVehicle:
    vin: str
    brand: str
    spec: VehicleSpec
    rng: random.Random
    position: tuple[float, float]
    plan: FaultPlan
    sid: str
    batch_samples: int = 1  # samples per telemetry message (1: one a second)
    model: VehicleModel = field(init=False)
    dtc: DtcMonitor = field(init=False)
    counter: SeqCounter = field(init=False)
    buffer: StoreAndForward = field(default_factory=StoreAndForward)
    follower: TripFollower | None = None
    heading: float = 0.0
    park_left_s: float = 0.0
    charging: bool = False
    trips: list[Trip] = field(default_factory=list)
    bad_sent: Counter[str] = field(default_factory=Counter)
    remote: RemoteState = field(default_factory=RemoteState)  # remote commands' state
    sampled_ts: list[int] = field(default_factory=list)  # every sample taken, for checks
    _since_report_s: float = 0.0
    _since_full_s: float = 0.0
    _paths: tuple[str, ...] = field(init=False)  # of the readings, in order
    _last_values: list[Any] | None = None  # the reading of the latest report
    _held: Outbound | None = None  # a message held back to be sent out of order

    def __post_init__(self) -> None:
        self.model = VehicleModel(self.spec, self.rng)
        self.dtc = DtcMonitor(self.model)
        self.counter = SeqCounter(self.sid)
        self._paths = self.model.signal_paths() + DRIVER_PATHS
        self.park_left_s = self.rng.uniform(0, 120)
        self._since_report_s = PARKED_REPORT_S  # report at once when the simulation starts
        self.model.lock()

    # --- behaviour ---------------------------------------------------------------------
    def _plan_trip(self, router: Router, places: Places, now_ms: int) -> None:
        if self.remote.immobilised:  # the immobiliser stops the driver: try again later
            self.park_left_s = 60.0
            return
        for _ in range(5):
            route = router.route(self.position, places.random_destination(self.rng))
            if route is not None and route.distance_m > 200:
                self.follower = TripFollower(route.segments, self.rng.uniform(0.85, 1.0))
                self.trips.append(Trip(self.follower.total_m, now_ms))
                if self.charging:
                    self.model.unplug()
                    self.charging = False
                self.model.unlock()
                self.model.state.trunk_open = False  # the driver closes it, and takes over
                self.remote.climate_on = False  # the climate from the remote pre-conditioning
                self.model.start_engine()
                return
        self.park_left_s = 60.0  # nowhere to go from here: try again in a minute

    def _arrive(self) -> None:
        self.follower = None
        self.model.stop_engine()
        self.model.lock()
        self.park_left_s = self.rng.uniform(*PARK_MINUTES) * 60
        low = self.model.state.soc_pct < 30 if self.spec.powertrain is Powertrain.BEV else False
        if low:
            self.model.plug_in()
            self.charging = True
            self.park_left_s = max(self.park_left_s, 3600.0)
        if self.spec.powertrain is not Powertrain.BEV and self.model.state.fuel_l < 0.12 * (
            self.spec.tank_l or 1
        ):
            self.model.refuel()

    def tick(self, dt_s: float, now_ms: int, router: Router, places: Places) -> None:
        """Advance one tick of simulated time and queue what the car would send."""
        progress: Progress | None = None
        if self.follower is None:
            self.park_left_s -= dt_s
            if self.park_left_s <= 0:
                self._plan_trip(router, places, now_ms)
        if self.follower is not None:
            progress = self.follower.step(dt_s)
            self.position, self.heading = (progress.lat, progress.lon), progress.heading
            self.model.step(
                dt_s,
                progress.speed_kmh,
                progress.accel_ms2,
                moving=True,
                parked=False,
                hvac_on=True,
                lights_on=False,
                distance_m=progress.advanced_m,
            )
            if progress.done:
                self._arrive()
        else:
            self.model.step(
                dt_s,
                0.0,
                0.0,
                moving=False,
                parked=True,
                charging_kw=CHARGER_KW if self.charging else 0.0,
                hvac_on=self.remote.climate_on,
                lights_on=False,
            )
        ts = self.plan.vehicle_ms(now_ms)
        for event in self.dtc.step():
            self.buffer.add_event(ts, str(event["type"]), dict(event["data"]))
        self._since_report_s += dt_s
        self._since_full_s += dt_s
        moving = progress is not None and not progress.done
        report_s = self.remote.report_s
        if moving or self.charging or self._since_report_s >= report_s or self.remote.report_now:
            self._since_report_s = 0.0
            self.remote.report_now = False
            signals = self._signals(progress)
            if signals:
                self.buffer.add_sample(ts, signals)
                self.sampled_ts.append(ts)

    def _signals(self, progress: Progress | None) -> dict[str, Any]:
        """What changed since the last report; everything once every `FULL_REPORT_S`.

        Readings are lists in the fixed order of `_paths`, so the comparison with the last
        report and the building of the message's dict run in C (`map`, `compress`, `zip`).
        """
        current = self._measure(progress)
        last = self._last_values
        self._last_values = current
        if self._since_full_s >= FULL_REPORT_S or last is None:
            self._since_full_s = 0.0
            return dict(zip(self._paths, current, strict=True))
        changed = list(map(ne, last, current))
        return dict(zip(compress(self._paths, changed), compress(current, changed), strict=True))

    def _measure(self, progress: Progress | None) -> list[Any]:
        values: list[Any] = self.model.values()  # a fresh list each call
        speed = progress.speed_kmh if progress is not None else 0.0
        values += (
            round(speed, 1),
            speed > 0.5,
            round(self.position[0], 7),
            round(self.position[1], 7),
            round(self.heading, 1),
        )
        return values

    @property
    def last_sent(self) -> dict[str, Any]:
        """What the car measured in its latest report (every signal), by VSS path."""
        if self._last_values is None:
            return {}
        return dict(zip(self._paths, self._last_values, strict=True))

    # --- what goes on the wire -----------------------------------------------------------
    def outgoing(self, online: bool) -> list[tuple[str, bytes]]:
        """Messages to publish now: nothing while offline (the buffer keeps it all)."""
        if not online or len(self.buffer) < (self.batch_samples if self.follower else 1):
            return []
        out: list[tuple[str, bytes]] = []
        for message in self.buffer.flush(self.counter, self.batch_samples):
            payload = message.payload()
            if self._held is not None:  # the held one goes after this: out of order
                out.append((message.kind.value, payload))
                out.append((self._held.kind.value, self._held.payload()))
                self._held = None
                continue
            if message.kind is Topic.TELEMETRY and self.plan.reorder():
                self._held = message
                continue
            subtopic = _SUBTOPIC[message.kind]
            out.append((subtopic, payload))
            if self.plan.duplicate():
                out.append((subtopic, payload))
            if message.kind is Topic.TELEMETRY and self.plan.bad_input():
                out.append(self._corrupted(message))
        return out

    def _corrupted(self, message: Outbound) -> tuple[str, bytes]:
        body = dict(message.body)
        body["seq"] = self.counter.take()  # its own seq: the good message stays valid
        payload, reason = self.plan.corrupt(body)
        self.bad_sent[Reason(reason).value] += 1
        return Topic.TELEMETRY.value, payload
