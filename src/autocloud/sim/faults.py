"""Faults of the connection and of the data: what a real fleet does to a platform.

What: :class:`FaultPlan` decides, per vehicle and tick, when the car loses its connection
(a tunnel or a parking garage, 30 s to 15 min), when a message is sent twice or swapped with
the next one, the car's constant clock skew, and when to send a bad message; :func:`corrupt`
builds such a message — malformed, off-schema or with bad values — together with the
dead-letter reason the platform must give it.

Why: the platform's duplicate check, ordering, store-and-forward handling and dead-letter
path are only tested if the simulated fleet misbehaves like a real one. Each corrupt variant
is checked by ``tests/sim/test_faults.py`` against the platform's own decoder and catalog, so
a claimed reason is the reason the platform gives.

Pure: all randomness comes from the ``random.Random`` given. The DTC and store-and-forward
parts of the fault story live in :mod:`autocloud.sim.dtc` and :mod:`autocloud.sim.forward`
and are re-exported here.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

import msgspec

from autocloud.domain.protocol import Reason
from autocloud.sim.dtc import Dtc, DtcEvent, DtcMonitor
from autocloud.sim.forward import Outbound, SeqCounter, StoreAndForward

__all__ = [
    "BAD_INPUT_REASONS",
    "MAX_CLOCK_SKEW_S",
    "Dtc",
    "DtcEvent",
    "DtcMonitor",
    "FaultPlan",
    "Outbound",
    "SeqCounter",
    "StoreAndForward",
    "corrupt",
]

PLATFORM_FUTURE_TOLERANCE_S: Final = 300.0  # settings.max_future_skew_s
MAX_CLOCK_SKEW_S: Final = 240.0  # a skewed clock stays well inside the platform's tolerance
OFFLINE_S: Final = (30.0, 900.0)  # a tunnel to a long stay in a parking garage
FUTURE_JUMP_MS: Final = 86_400_000  # a clock that jumped a day ahead
RTC_RESET_MS: Final = 86_400_000  # a clock reset to 1970-01-02 after losing power

_encode = msgspec.json.encode
Body = Mapping[str, Any]


class FaultPlan:
    """The connection and data faults of one vehicle, drawn from ``rng``.

    Rates: ``offline_rate_per_h`` outages per hour online (Poisson), durations log-uniform
    in 30 s-15 min; ``duplicate_rate``, ``reorder_rate`` and ``bad_input_rate`` per message.
    ``clock_skew_s`` bounds the car's constant clock offset, drawn once, uniform in
    ±``clock_skew_s``; it may not exceed :data:`MAX_CLOCK_SKEW_S`, so a car never looks more
    than 300 s in the future to the platform by skew alone. ``bad_reasons`` restricts which
    kinds of bad input :meth:`corrupt` makes.
    """

    __slots__ = (
        "_chance",
        "_chance_dt",
        "_chance_rate",
        "bad_input_rate",
        "bad_reasons",
        "duplicate_rate",
        "offline_left_s",
        "offline_rate_per_h",
        "outages",
        "reorder_rate",
        "rng",
        "skew_ms",
    )

    def __init__(
        self,
        rng: random.Random,
        *,
        offline_rate_per_h: float = 0.5,
        duplicate_rate: float = 0.002,
        reorder_rate: float = 0.002,
        clock_skew_s: float = 30.0,
        bad_input_rate: float = 0.0,
        bad_reasons: tuple[Reason, ...] | None = None,
    ) -> None:
        for name, rate in (
            ("duplicate_rate", duplicate_rate),
            ("reorder_rate", reorder_rate),
            ("bad_input_rate", bad_input_rate),
        ):
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if offline_rate_per_h < 0:
            raise ValueError("offline_rate_per_h must not be negative")
        if not 0.0 <= clock_skew_s <= MAX_CLOCK_SKEW_S:
            raise ValueError(f"clock_skew_s must be between 0 and {MAX_CLOCK_SKEW_S:.0f} s")
        self.rng = rng
        self.offline_rate_per_h = offline_rate_per_h
        self.duplicate_rate = duplicate_rate
        self.reorder_rate = reorder_rate
        self.bad_input_rate = bad_input_rate
        self.bad_reasons = bad_reasons or BAD_INPUT_REASONS
        unknown = set(self.bad_reasons) - set(_CORRUPTERS)
        if unknown:
            raise ValueError(f"cannot make bad input for: {', '.join(sorted(unknown))}")
        self.skew_ms = round(rng.uniform(-clock_skew_s, clock_skew_s) * 1000.0)
        self.offline_left_s = 0.0
        self.outages = 0
        # `online`'s chance of an outage in a tick, for the tick length and rate it was for
        self._chance_dt, self._chance_rate, self._chance = math.nan, math.nan, 0.0

    def vehicle_ms(self, true_ms: int) -> int:
        """What the car's clock says at ``true_ms``: the timestamps it puts in messages."""
        return true_ms + self.skew_ms

    @property
    def offline(self) -> bool:
        """True during an outage."""
        return self.offline_left_s > 0

    def online(self, dt_s: float) -> bool:
        """Advance the connection by a tick of ``dt_s``: True if the car is online in it.

        An outage in progress runs down first (the car is back in the tick it ends); an
        online car loses its connection with probability ``1 - exp(-rate·dt)``.
        """
        if self.offline_left_s > 0:
            self.offline_left_s -= dt_s
            if self.offline_left_s > 0:
                return False
            self.offline_left_s = 0.0
            return True
        rate = self.offline_rate_per_h
        if dt_s != self._chance_dt or rate != self._chance_rate:  # once per tick length
            self._chance_dt, self._chance_rate = dt_s, rate
            self._chance = 1.0 - math.exp(-rate * dt_s / 3600.0)
        if rate > 0 and self.rng.random() < self._chance:
            low, high = OFFLINE_S
            self.offline_left_s = math.exp(self.rng.uniform(math.log(low), math.log(high)))
            self.outages += 1
            return False
        return True

    def duplicate(self) -> bool:
        """Send this message twice (a QoS 1 redelivery)."""
        return self.duplicate_rate > 0 and self.rng.random() < self.duplicate_rate

    def reorder(self) -> bool:
        """Hold this message back and send it after the next one."""
        return self.reorder_rate > 0 and self.rng.random() < self.reorder_rate

    def bad_input(self) -> bool:
        """Send a bad message besides this tick's good ones."""
        return self.bad_input_rate > 0 and self.rng.random() < self.bad_input_rate

    def corrupt(self, body: Body) -> tuple[bytes, Reason]:
        """:func:`corrupt` with this plan's generator and reasons."""
        return corrupt(body, self.rng, self.bad_reasons)


# --- bad input -------------------------------------------------------------------------------

# Values the catalog refuses, per reason: (VSS path, value) as a faulty unit would send them.
_BAD_VALUES: Final[Mapping[Reason, tuple[tuple[str, Any], ...]]] = {
    Reason.UNKNOWN_SIGNAL: (
        ("Vehicle.Sped", 42.0),  # a typo
        ("Vehicle.Cabin.Teleporter.IsActive", True),  # not VSS at all
        ("Vehicle.Powertrain.TractionBattery.StateOfCharge", 55.0),  # a branch, not a leaf
        ("Vehicle.OBD.EngineLoad", 35.0),  # VSS 4 path, gone in VSS 6.0
    ),
    Reason.WRONG_TYPE: (
        ("Vehicle.Speed", "fast"),
        ("Vehicle.IsMoving", 1),  # 0/1 for a boolean
        ("Vehicle.TraveledDistance", 12345.6),  # a float for uint32
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", "yes"),
        ("Vehicle.Diagnostics.DTCList", "P0301"),  # a string for string[]
    ),
    Reason.OUT_OF_RANGE: (
        ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 104.5),
        ("Vehicle.CurrentLocation.Latitude", 91.2),
        ("Vehicle.TraveledDistance", -1),
        ("Vehicle.Powertrain.FuelSystem.RelativeLevel", 255),
        ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 70_000),
    ),
    Reason.NOT_ALLOWED: (
        ("Vehicle.Powertrain.Type", "STEAM"),
        ("Vehicle.LowVoltageSystemState", "IGNITION"),
        ("Vehicle.Body.Lights.LightSwitch", "ON"),
    ),
}


def _first_ts(body: Body) -> int:
    if "ts" in body:
        return int(body["ts"])
    return int(body["samples"][0]["ts"])


def _with_signal(body: Body, rng: random.Random, reason: Reason) -> bytes:
    """The body's envelope carrying just one bad value (so the outcome is one dead letter)."""
    path, value = rng.choice(_BAD_VALUES[reason])
    keep = {key: body[key] for key in ("v", "sid", "seq", "vin") if key in body}
    return _encode({**keep, "ts": _first_ts(body), "signals": {path: value}})


def _malformed(body: Body, rng: random.Random) -> bytes:
    raw = _encode(body)
    variants: tuple[Callable[[], bytes], ...] = (
        lambda: raw[: rng.randrange(1, len(raw) - 1)],  # cut off in transit
        lambda: raw[:-1] + b",}",  # trailing comma
        lambda: raw + b"}",  # trailing garbage
        lambda: b"\x00" + raw,  # a stray byte in front
        lambda: raw.replace(b'"sid"', b"'sid'", 1),  # single quotes
    )
    return rng.choice(variants)()


def _schema(body: Body, rng: random.Random) -> bytes:
    variants: tuple[Callable[[dict[str, Any]], None], ...] = (
        lambda b: b.update(speed_kmh=50),  # a field v1 does not have
        lambda b: b.update(seq=-1),
        lambda b: b.pop("sid"),
        lambda b: b.update(v="1"),
        lambda b: b.update(seq=str(b["seq"])),
        lambda b: b.update(samples=[]),  # both forms, or an empty batch
    )
    changed = dict(body)
    rng.choice(variants)(changed)
    return _encode(changed)


def _shift_ts(body: Body, ts: Callable[[int], int]) -> bytes:
    changed = dict(body)
    if "samples" in changed:
        changed["samples"] = [{**s, "ts": ts(int(s["ts"]))} for s in changed["samples"]]
    else:
        changed["ts"] = ts(int(changed["ts"]))
    return _encode(changed)


_CORRUPTERS: Final[Mapping[Reason, Callable[[Body, random.Random], bytes]]] = {
    Reason.MALFORMED: _malformed,
    Reason.SCHEMA: _schema,
    Reason.UNSUPPORTED_VERSION: lambda body, _rng: _encode({**body, "v": 2}),
    Reason.UNKNOWN_SIGNAL: lambda body, rng: _with_signal(body, rng, Reason.UNKNOWN_SIGNAL),
    Reason.WRONG_TYPE: lambda body, rng: _with_signal(body, rng, Reason.WRONG_TYPE),
    Reason.OUT_OF_RANGE: lambda body, rng: _with_signal(body, rng, Reason.OUT_OF_RANGE),
    Reason.NOT_ALLOWED: lambda body, rng: _with_signal(body, rng, Reason.NOT_ALLOWED),
    Reason.FUTURE_TIMESTAMP: lambda body, _rng: _shift_ts(body, lambda t: t + FUTURE_JUMP_MS),
    Reason.INVALID_TIMESTAMP: lambda body, _rng: _shift_ts(body, lambda t: RTC_RESET_MS),
}

BAD_INPUT_REASONS: Final[tuple[Reason, ...]] = tuple(_CORRUPTERS)
"""Every kind of bad telemetry the simulator can send."""


def corrupt(
    body: Body, rng: random.Random, reasons: tuple[Reason, ...] = BAD_INPUT_REASONS
) -> tuple[bytes, Reason]:
    """A bad variant of telemetry ``body`` and the dead-letter reason it must get.

    Send it *in addition to* the good messages, never instead: the platform refuses it
    whole (one dead letter), so nothing valid is lost. It keeps ``body``'s ``sid`` and
    ``seq``; give it a fresh ``seq`` (the platform's duplicate check runs before value
    validation, so a bad copy sharing a good message's ``seq`` would turn one of the two
    into a ``duplicate``).
    """
    reason = rng.choice(reasons)
    return _CORRUPTERS[reason](body, rng), reason
