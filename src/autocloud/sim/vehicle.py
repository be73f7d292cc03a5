"""One simulated car: it parks, drives routed trips, charges or refuels, and reports.

Each tick (one second of simulated time) the car moves along its trip, its physics advance,
its DTC monitor looks for faults, and it sends telemetry (every second while driving or
charging, every minute while parked, as telematics units save power) and DTC events. When its
fault plan takes it offline it keeps what it measures and sends it, oldest first, after
reconnecting (store-and-forward); it may also duplicate, reorder or corrupt messages.
"""

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import msgspec

from autocloud.domain.protocol import Reason, Topic
from autocloud.sim.driving import TripFollower
from autocloud.sim.dtc import DtcMonitor
from autocloud.sim.energy import Powertrain, VehicleSpec
from autocloud.sim.faults import FaultPlan
from autocloud.sim.forward import Outbound, SeqCounter, StoreAndForward, numbered_sample_body
from autocloud.sim.model import VehicleModel
from autocloud.sim.places import Places
from autocloud.sim.readout import VOLATILE_PATHS
from autocloud.sim.remote import RemoteState
from autocloud.sim.roads import Router
from autocloud.sim.rounding import decimal_rounder

PARKED_REPORT_S = 60
FULL_REPORT_S = 60  # between full reports a car sends only what changed, as real units do
CHARGER_KW = 11.0
PARK_MINUTES = (2.0, 25.0)
_SUBTOPIC = {t: t.value for t in Topic}  # as plain str (an enum's .value is slow)
_encode = msgspec.json.encode
_TELEMETRY = Topic.TELEMETRY.value
_round1, _round7 = decimal_rounder(1), decimal_rounder(7)  # round(x, 1), round(x, 7)
_NEAR_1, _NEAR_7 = 0.4999e-1, 0.4999e-7
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
    _split: "_Split | None" = field(init=False)  # how readings are compared (`_signals`)
    _last_values: list[Any] | None = None  # the reading of the latest report
    _last_fast: tuple[Any, ...] = ()  # its volatile values (`_Split.fast`)
    _last_slow: tuple[Any, ...] = ()  # and the others
    _held: Outbound | None = None  # a message held back to be sent out of order

    def __post_init__(self) -> None:
        self.model = VehicleModel(self.spec, self.rng)
        self.dtc = DtcMonitor(self.model)
        self.counter = SeqCounter(self.sid)
        self._paths = self.model.signal_paths() + DRIVER_PATHS
        self._split = _split_of(self._paths)
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
        speed = 0.0  # km/h, what the driver reports
        moving = False
        follower = self.follower
        if follower is None:
            self.park_left_s -= dt_s
            if self.park_left_s <= 0:
                self._plan_trip(router, places, now_ms)
                follower = self.follower
        model = self.model
        if follower is not None:
            done = follower.advance(dt_s)  # follower.step(dt_s), its Progress not built
            self.position, self.heading = (follower.lat, follower.lon), follower.heading
            speed = follower.speed_ms * 3.6
            # model.step(dt_s, speed, accel, moving=True, parked=False, hvac_on=True,
            # lights_on=False, distance_m=advanced), without its keywords and checks
            model.advance(
                dt_s,
                speed,
                follower.accel_ms2,
                True,
                False,
                0.0,
                True,
                False,
                follower.advanced_m,
            )
            if done:
                self._arrive()
            else:
                moving = True
        else:  # model.step(dt_s, 0.0, 0.0, moving=False, parked=True, ...), as above
            charging_kw = CHARGER_KW if self.charging else 0.0
            model.advance(
                dt_s, 0.0, 0.0, False, True, charging_kw, self.remote.climate_on, False, 0.0
            )
        ts = now_ms + self.plan.skew_ms  # self.plan.vehicle_ms(now_ms), inlined
        events = self.dtc.step()
        if events:
            for event in events:
                self.buffer.add_event(ts, str(event["type"]), dict(event["data"]))
        self._since_report_s += dt_s
        self._since_full_s += dt_s
        remote = self.remote
        if moving or self.charging or self._since_report_s >= remote.report_s or remote.report_now:
            self._since_report_s = 0.0
            remote.report_now = False
            signals = self._signals(speed)
            if signals:
                self.buffer.add_sample(ts, signals)
                self.sampled_ts.append(ts)

    def _signals(self, speed: float) -> dict[str, Any]:
        """What changed since the last report; everything once every `FULL_REPORT_S`.

        Readings are lists in the fixed order of `_paths`, so the comparison with the last
        report is one comprehension over (path, value, last value) that keeps what differs
        (inlined by Python 3.12, with its float comparison specialised: faster than
        `compress` over `map(ne, …)`, which calls `ne` per value).
        Most values do not change from one second to the next, so the values that do not
        follow a continuous quantity (`_Split`) are compared first as one tuple (mostly
        the very same objects: a pointer comparison each); only when none of them changed,
        which is most of the time, is the diff made over the volatile values alone.
        """
        current = self._measure(speed)
        last = self._last_values
        self._last_values = current
        split = self._split
        if split is not None:
            fast, slow = split.fast(current), split.slow(current)
            last_fast, last_slow = self._last_fast, self._last_slow
            self._last_fast, self._last_slow = fast, slow
        if self._since_full_s >= FULL_REPORT_S or last is None:
            self._since_full_s = 0.0
            return dict(zip(self._paths, current, strict=True))
        if split is not None and slow == last_slow:
            return {
                path: value
                for path, value, before in zip(split.fast_paths, fast, last_fast, strict=True)
                if before != value
            }
        return {
            path: value
            for path, value, before in zip(self._paths, current, last, strict=True)
            if before != value
        }

    def _measure(self, speed: float) -> list[Any]:
        """The model's reading plus the driver's `speed` (km/h) and position, rounded."""
        values: list[Any] = self.model.values()  # a fresh list each call
        lat, lon = self.position
        heading = self.heading
        # A value within 0.4999 of the last digit of its previous rounding (not zero) rounds
        # to it again (sim/readout.py, `_NEAR_1`): most seconds, for these.
        last = self._last_values
        if last is not None:
            prev_speed, _, prev_lat, prev_lon, prev_heading = last[-5:]
            near = prev_speed and -_NEAR_1 < speed - prev_speed < _NEAR_1
            speed_1 = prev_speed if near else _round1(speed)
            lat_7 = prev_lat if prev_lat and -_NEAR_7 < lat - prev_lat < _NEAR_7 else _round7(lat)
            lon_7 = prev_lon if prev_lon and -_NEAR_7 < lon - prev_lon < _NEAR_7 else _round7(lon)
            near = prev_heading and -_NEAR_1 < heading - prev_heading < _NEAR_1
            heading_1 = prev_heading if near else _round1(heading)
        else:
            speed_1, lat_7, lon_7 = _round1(speed), _round7(lat), _round7(lon)
            heading_1 = _round1(heading)
        values += (speed_1, speed > 0.5, lat_7, lon_7, heading_1)
        return values

    @property
    def last_sent(self) -> dict[str, Any]:
        """What the car measured in its latest report (every signal), by VSS path."""
        if self._last_values is None:
            return {}
        return dict(zip(self._paths, self._last_values, strict=True))

    # --- what goes on the wire -----------------------------------------------------------
    def outgoing(self, online: bool) -> list[tuple[str, bytes]]:
        """Messages to publish now: nothing while offline (the buffer keeps it all).

        The fault plan's per-message draws (`reorder`, `duplicate`, `bad_input`) are
        written out here, in the same order and with the same draws, as this runs for every
        car every second.
        """
        if not online:
            return []
        buffer, plan = self.buffer, self.plan
        # One sample buffered, nothing held, and one sample is enough to send: the usual
        # second, in short. Its payload comes from the counter's template (the bytes of
        # `single_sample_body` encoded); the rare held or corrupted one gets the body.
        if self._held is None and (self.batch_samples == 1 or self.follower is None):
            sample = buffer.take_sample()
            if sample is not None:
                counter = self.counter
                payload = counter.sample_payload(*sample)
                # plan.reorder(), then as below
                if plan.reorder_rate > 0 and plan.rng.random() < plan.reorder_rate:
                    body = numbered_sample_body(counter, counter.next_seq - 1, *sample)
                    self._held = Outbound(Topic.TELEMETRY, body)
                    return []
                if plan.duplicate_rate > 0 and plan.rng.random() < plan.duplicate_rate:
                    sent = [(_TELEMETRY, payload), (_TELEMETRY, payload)]
                else:
                    sent = [(_TELEMETRY, payload)]
                if plan.bad_input_rate > 0 and plan.rng.random() < plan.bad_input_rate:
                    body = numbered_sample_body(counter, counter.next_seq - 1, *sample)
                    sent.append(self._corrupted(Outbound(Topic.TELEMETRY, body)))
                return sent
        if len(buffer) < (self.batch_samples if self.follower else 1):
            return []
        out: list[tuple[str, bytes]] = []
        for message in buffer.flush(self.counter, self.batch_samples):
            payload = _encode(message.body)  # message.payload()
            held = self._held
            if held is not None:  # the held one goes after this: out of order
                out.append((message.kind.value, payload))
                out.append((held.kind.value, _encode(held.body)))
                self._held = None
                continue
            telemetry = message.kind is Topic.TELEMETRY
            # plan.reorder()
            if telemetry and plan.reorder_rate > 0 and plan.rng.random() < plan.reorder_rate:
                self._held = message
                continue
            subtopic = _SUBTOPIC[message.kind]
            out.append((subtopic, payload))
            # plan.duplicate()
            if plan.duplicate_rate > 0 and plan.rng.random() < plan.duplicate_rate:
                out.append((subtopic, payload))
            # plan.bad_input()
            if telemetry and plan.bad_input_rate > 0 and plan.rng.random() < plan.bad_input_rate:
                out.append(self._corrupted(message))
        return out

    def _corrupted(self, message: Outbound) -> tuple[str, bytes]:
        body = dict(message.body)
        body["seq"] = self.counter.take()  # its own seq: the good message stays valid
        payload, reason = self.plan.corrupt(body)
        self.bad_sent[Reason(reason).value] += 1
        return Topic.TELEMETRY.value, payload


@dataclass(frozen=True, slots=True)
class _Split:
    """A kind of car's readings in two parts: the volatile values (`VOLATILE_PATHS` and the
    driver's speed and position), which change most seconds, and all the others."""

    fast: Callable[[list[Any]], tuple[Any, ...]]  # the volatile values, in reading order
    slow: Callable[[list[Any]], tuple[Any, ...]]  # the others
    fast_paths: tuple[str, ...]  # the paths of `fast`, in the same order


_SPLITS: dict[tuple[str, ...], _Split | None] = {}
_VOLATILE = VOLATILE_PATHS | set(DRIVER_PATHS) - {"Vehicle.IsMoving"}


def _split_of(paths: tuple[str, ...]) -> _Split | None:
    """The split of readings with these `paths` (one per kind of car); None if either part
    would have fewer than two values (an `itemgetter` of one index returns no tuple)."""
    if paths not in _SPLITS:
        fast = [i for i, path in enumerate(paths) if path in _VOLATILE]
        slow = [i for i, path in enumerate(paths) if path not in _VOLATILE]
        _SPLITS[paths] = (
            _Split(itemgetter(*fast), itemgetter(*slow), tuple(paths[i] for i in fast))
            if len(fast) > 1 and len(slow) > 1
            else None
        )
    return _SPLITS[paths]
