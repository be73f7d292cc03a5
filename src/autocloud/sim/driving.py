"""Following a routed trip: position, heading and speed along the route's geometry.

The driver accelerates towards a cruise speed under each segment's limit, brakes ahead of a
lower limit, a sharp turn and the destination (using the distance needed to slow down at a
comfortable deceleration), and stops at the end. Position is interpolated on the geometry,
so the trace lies on the road and the distance travelled equals the routed distance.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

EARTH_RADIUS_M = 6_371_008.8
ACCEL_MS2 = 1.8  # comfortable acceleration
DECEL_MS2 = 2.5  # comfortable braking
TURN_SPEED_KMH = 25.0  # speed through a sharp turn
SHARP_TURN_DEG = 50.0


class Segment(Protocol):
    lat1: float
    lon1: float
    lat2: float
    lon2: float
    length_m: float
    speed_limit_kmh: float


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360


def _turn(a: float, b: float) -> float:
    return abs((b - a + 180) % 360 - 180)


@dataclass(frozen=True, slots=True)
class _Leg:
    """A segment with what the driver needs: where it starts along the route, how fast."""

    start_m: float
    length_m: float
    lat1: float
    lon1: float
    lat2: float
    lon2: float
    heading: float
    cap_ms: float  # the speed the driver allows itself here
    exit_ms: float  # the speed to leave it at (next limit, turn, or stop)


@dataclass(slots=True)
class Progress:
    """Where the vehicle is on its trip after a step."""

    lat: float
    lon: float
    heading: float
    speed_kmh: float
    accel_ms2: float
    advanced_m: float
    done: bool


@dataclass(slots=True)
class TripFollower:
    """Moves one vehicle along one route, a time step at a time."""

    segments: Sequence[Segment]
    cruise_factor: float = 0.95  # drivers keep a little under the limit
    speed_ms: float = 0.0
    travelled_m: float = 0.0
    _legs: list[_Leg] = field(init=False)
    _index: int = field(default=0, init=False)
    total_m: float = field(init=False)
    # Per leg index: the look-ahead window of `_target_ms` with its constants precomputed.
    _windows: dict[int, tuple[tuple[float, float, float, float, bool], ...]] = field(
        default_factory=dict, init=False
    )
    # The braking terms of every leg, (v², where) at its start (cap) and end (exit), and their
    # v² + k·where (`_candidates`); the candidates of the current leg.
    _terms: list[tuple[float, float]] = field(default_factory=list, init=False)
    _keys: list[float] = field(default_factory=list, init=False)
    _nearest: tuple[int, tuple[tuple[float, float], ...]] = field(default=(-1, ()), init=False)
    # Where the last `advance` left the car (what `step` returns as a `Progress`; the speed
    # is `speed_ms`).
    lat: float = field(default=0.0, init=False)
    lon: float = field(default=0.0, init=False)
    heading: float = field(default=0.0, init=False)
    accel_ms2: float = field(default=0.0, init=False)
    advanced_m: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        legs: list[_Leg] = []
        start = 0.0
        usable = [s for s in self.segments if s.length_m > 0]
        for i, s in enumerate(usable):
            heading = bearing_deg(s.lat1, s.lon1, s.lat2, s.lon2)
            cap = max(2.0, s.speed_limit_kmh * self.cruise_factor / 3.6)
            if i + 1 < len(usable):
                nxt = usable[i + 1]
                nxt_cap = max(2.0, nxt.speed_limit_kmh * self.cruise_factor / 3.6)
                turn = _turn(heading, bearing_deg(nxt.lat1, nxt.lon1, nxt.lat2, nxt.lon2))
                exit_ms = min(cap, nxt_cap, TURN_SPEED_KMH / 3.6 if turn > SHARP_TURN_DEG else cap)
            else:
                exit_ms = 0.0
            legs.append(
                _Leg(start, s.length_m, s.lat1, s.lon1, s.lat2, s.lon2, heading, cap, exit_ms)
            )
            start += s.length_m
        self._legs = legs
        self.total_m = start
        k = 2 * DECEL_MS2
        for leg in legs:
            start, end = leg.start_m, leg.start_m + leg.length_m
            cap2, exit2 = leg.cap_ms**2, leg.exit_ms**2
            self._terms += ((cap2, start), (exit2, end))
            self._keys += (cap2 + k * start, exit2 + k * end)

    @property
    def done(self) -> bool:
        return self.travelled_m >= self.total_m - 0.01

    def _window(self, index: int) -> tuple[tuple[float, float, float, float, bool], ...]:
        """(start, cap², end, exit², is a later leg) of the legs `_target_ms` looks at."""
        found = self._windows.get(index)
        if found is None:
            leg = self._legs[index]
            found = tuple(
                (n.start_m, n.cap_ms**2, n.start_m + n.length_m, n.exit_ms**2, n is not leg)
                for n in self._legs[index : index + 8]
            )
            self._windows[index] = found
        return found

    def _candidates(self, index: int) -> tuple[tuple[float, float], ...]:
        """The (v², where) terms of leg `index`'s window that can be the smallest.

        While the car is inside leg `index` (x below its end), every term of `_target_ms`
        is v² + k·(where - x) with where > x: all fall at the same rate as x grows, so
        their order never changes and the smallest is the one with the smallest v² + k·where.
        Terms within a rounding error of that one are kept too and all are computed as
        `_target_ms` would, so the minimum is the very float the full scan finds. The
        window is leg `index`'s exit and both terms of the next 7 legs (`_window`).
        """
        cached, found = self._nearest
        if cached != index:
            first = 2 * index + 1  # the exit term of leg `index`
            window = self._keys[first : first + 15]
            lowest = min(window)
            limit = lowest + 1e-6 * (abs(lowest) + 1.0)  # rounding errors are ~1e-16 of these
            terms = self._terms
            if sum(map(limit.__ge__, window)) == 1:  # the usual case: one clear minimum
                found = (terms[first + window.index(lowest)],)
            else:
                found = tuple(terms[first + i] for i, key in enumerate(window) if key <= limit)
            self._nearest = (index, found)
        return found

    def _target_ms(self) -> float:
        """The fastest speed allowed now: the cap here and the braking curve to what is ahead.

        Looks ahead over a few legs: v^2 = v_exit^2 + 2 a d. The per-leg constants come from
        `_window` (computed once per leg). The smallest v^2 is found first and its root taken
        once: a square root is monotonic and correctly rounded, so this is the same value as
        the smallest of the roots. Inside a leg only its `_candidates` are computed (the
        same minimum); at the very end of the route, where distances clamp at zero, all.
        """
        x = self.travelled_m
        index = self._index
        leg = self._legs[index]
        k = 2 * DECEL_MS2
        lowest = math.inf
        if x < leg.start_m + leg.length_m:
            cached, candidates = self._nearest
            if cached != index:
                candidates = self._candidates(index)
            for v2_at, where in candidates:
                v2 = v2_at + k * (where - x)
                if v2 < lowest:
                    lowest = v2
        else:
            for start, cap2, end, exit2, later in self._window(index):
                if later:
                    ahead = start - x
                    v2 = cap2 + k * (ahead if ahead > 0.0 else 0.0)
                    if v2 < lowest:
                        lowest = v2
                left = end - x
                v2 = exit2 + k * (left if left > 0.0 else 0.0)
                if v2 < lowest:
                    lowest = v2
        target = leg.cap_ms
        v = math.sqrt(lowest)
        return v if v < target else target

    def step(self, dt_s: float) -> Progress:
        """Advance `dt_s` seconds along the trip."""
        done = self.advance(dt_s)
        return Progress(
            self.lat,
            self.lon,
            self.heading,
            self.speed_ms * 3.6,
            self.accel_ms2,
            self.advanced_m,
            done,
        )

    def advance(self, dt_s: float) -> bool:
        """:meth:`step` without building a `Progress`: the result is left in `lat`, `lon`,
        `heading`, `speed_ms`, `accel_ms2` and `advanced_m` (the simulator reads them for
        every car every second); True when the trip is done."""
        legs, total, travelled = self._legs, self.total_m, self.travelled_m
        if not legs or travelled >= total - 0.01:  # `done`, inlined (every car, every second)
            self._where(0.0, 0.0)
            return True
        target = self._target_ms()
        before = self.speed_ms
        # min/max written out as comparisons (same values, a fraction of the cost per tick)
        if target > before:
            faster = before + ACCEL_MS2 * dt_s
            speed = faster if faster < target else target
        else:
            slower = before - DECEL_MS2 * 2 * dt_s  # harder braking if needed
            speed = slower if slower > target else target
        left = total - travelled
        advance = (before + speed) / 2 * dt_s
        advance = left if left < advance else advance
        if advance <= 0.0 and speed < 0.5:  # crawling to the very end
            advance = min(1.0 * dt_s, total - travelled)
            speed = 1.0
        x = self.travelled_m = travelled + advance
        done = x >= total - 0.01
        self.speed_ms = 0.0 if done else speed
        index = self._index
        while index + 1 < len(legs) and x >= legs[index].start_m + legs[index].length_m:
            index += 1
        self._index = index
        self.accel_ms2 = (self.speed_ms - before) / dt_s if dt_s else 0.0
        self.advanced_m = advance
        # self._where(advance, accel), written out (every car, every second)
        leg = legs[index]
        f = 0.0 if leg.length_m == 0 else (x - leg.start_m) / leg.length_m
        f = f if f < 1.0 else 1.0  # min(1.0, f)
        self.lat = leg.lat1 + (leg.lat2 - leg.lat1) * f
        self.lon = leg.lon1 + (leg.lon2 - leg.lon1) * f
        self.heading = leg.heading
        return done

    def _where(self, advanced: float, accel: float) -> None:
        self.advanced_m, self.accel_ms2 = advanced, accel
        if not self._legs:
            self.lat = self.lon = self.heading = 0.0
            self.speed_ms = 0.0
            return
        leg = self._legs[self._index]
        f = 0.0 if leg.length_m == 0 else (self.travelled_m - leg.start_m) / leg.length_m
        f = f if f < 1.0 else 1.0  # min(1.0, f)
        self.lat = leg.lat1 + (leg.lat2 - leg.lat1) * f
        self.lon = leg.lon1 + (leg.lon2 - leg.lon1) * f
        self.heading = leg.heading


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
