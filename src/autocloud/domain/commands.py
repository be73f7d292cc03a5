"""The remote command table: every command the platform can send to a vehicle, described once.

What: one `CommandSpec` per command — its parameters (type, range, default), who may send it
(minimum role; whether an owner may), the safety interlocks checked against the twin on the
platform and again on the vehicle, its default expiry, and the desired state it implies in
the twin. The API (validation, `/v1/commands/catalog`), the CLI, the docs and the simulated
vehicle all read this table; nothing else lists commands.

Why a table: adding a command is one row, and a test can check that the docs, the catalog
route and the vehicle side cover every row. The lifecycle of a command is a table too
(`TRANSITIONS`): any change it does not list is refused.
"""

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from autocloud.domain.access import Role
from autocloud.domain.errors import InvalidInput

SPEED = "Vehicle.Speed"
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
POWERTRAIN = "Vehicle.Powertrain.Type"
_DOORS = ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide")
DOOR_LOCKED = tuple(f"Vehicle.Cabin.Door.{d}.IsLocked" for d in _DOORS)
WINDOW_POSITION = tuple(f"Vehicle.Cabin.Door.{d}.Window.Position" for d in _DOORS)
HVAC_TARGET = "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature"
CHARGE_LIMIT = "Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit"
IS_CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
TRUNK_OPEN = "Vehicle.Body.Trunk.Rear.IsOpen"
MOVING_LIMIT_KMH = 5.0
MIN_EXPIRY_S = 1
MAX_EXPIRY_S = 7 * 86_400


class State(enum.StrEnum):
    """Where a command is in its life; the values are stable API strings."""

    QUEUED = "queued"  # stored, waiting for the vehicle to be online
    SENT = "sent"  # signed and published to the vehicle
    DELIVERED = "delivered"  # the vehicle verified it and said `accepted`
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the vehicle tried and could not
    REJECTED = "rejected"  # the vehicle refused it (signature, expiry, interlock...)
    EXPIRED = "expired"  # no result before its expiry


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.REJECTED, State.EXPIRED})
OPEN = frozenset(State) - TERMINAL

# The lifecycle: state -> the states it may move to. Nothing else is allowed.
TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.SENT, State.EXPIRED}),
    State.SENT: frozenset(
        {State.DELIVERED, State.SUCCEEDED, State.FAILED, State.REJECTED, State.EXPIRED}
    ),
    State.DELIVERED: frozenset({State.SUCCEEDED, State.FAILED, State.REJECTED, State.EXPIRED}),
    State.SUCCEEDED: frozenset(),
    State.FAILED: frozenset(),
    State.REJECTED: frozenset(),
    State.EXPIRED: frozenset(),
}


def may_move(current: State, target: State) -> bool:
    """Whether the lifecycle allows `current` -> `target`."""
    return target in TRANSITIONS[current]


def sources_of(target: State) -> frozenset[State]:
    """The states from which `target` may be reached (for conditional updates in a store)."""
    return frozenset(s for s, targets in TRANSITIONS.items() if target in targets)


class ParamType(enum.StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a command: its JSON type, inclusive range, unit and default."""

    name: str
    type: ParamType
    description: str
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    default: int | float | bool | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    def check(self, command: str, raw: object) -> int | float | bool:
        """The value, or InvalidInput naming the parameter, its type and its range."""
        where = f"{command}: parameter {self.name!r}"
        if self.type is ParamType.BOOLEAN:
            if not isinstance(raw, bool):
                raise InvalidInput(f"{where} must be true or false, got {raw!r}")
            return raw
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise InvalidInput(f"{where} must be a {self.type.value}{self._range()}, got {raw!r}")
        if self.type is ParamType.INTEGER:
            if isinstance(raw, float) and not raw.is_integer():
                raise InvalidInput(f"{where} must be a whole number{self._range()}, got {raw!r}")
            value: int | float = int(raw)
        else:
            if not math.isfinite(raw):
                raise InvalidInput(f"{where} must be a finite number{self._range()}")
            value = float(raw)
        if (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max
        ):
            raise InvalidInput(f"{where} is {raw!r}, out of range:{self._range()}")
        return value

    def _range(self) -> str:
        unit = f" {self.unit}" if self.unit else ""
        if self.min is not None and self.max is not None:
            return f" between {_num(self.min)} and {_num(self.max)}{unit}"
        if self.min is not None:
            return f" of at least {_num(self.min)}{unit}"
        return ""


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True, slots=True)
class Interlock:
    """A safety rule: refuse the command while `signal op limit` holds.

    The limit is `limit`, or the platform setting named `setting` when the platform has one
    (the vehicle uses `limit`). A signal the twin (or the car) does not have passes: a car
    with no traction battery has no SoC to be too low.
    """

    reason: str
    signal: str
    op: str  # ">" or "<"
    limit: float
    message: str
    setting: str | None = None

    def refuses(self, values: Mapping[str, object], limits: Mapping[str, float]) -> str | None:
        """The refusal message when the rule holds for `values`, else None."""
        value = values.get(self.signal)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        limit = limits.get(self.setting, self.limit) if self.setting else self.limit
        hit = value > limit if self.op == ">" else value < limit
        return self.message.format(value=value, limit=_num(limit)) if hit else None


@dataclass(frozen=True, slots=True)
class Desired:
    """A twin value a command asks for: fixed, or taken from one of its parameters."""

    path: str
    value: bool | int | float | None = None
    param: str | None = None

    def resolve(self, params: Mapping[str, Any]) -> bool | int | float:
        if self.param is not None:
            resolved: bool | int | float = params[self.param]
            return resolved
        assert self.value is not None
        return self.value


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One row of the command table."""

    name: str
    summary: str
    min_role: Role
    owner_may: bool
    timeout_s: int  # default expiry: the command must have a result within this
    params: tuple[Param, ...] = ()
    interlocks: tuple[Interlock, ...] = ()
    desired: tuple[Desired, ...] = ()
    electric_only: bool = False  # the vehicle answers `failed` without a traction battery
    refusals: tuple[str, ...] = field(default=())  # vehicle-side reasons besides interlocks

    def validate(self, params: Mapping[str, object] | None) -> dict[str, int | float | bool]:
        """Checked parameters with defaults filled in, or InvalidInput."""
        given = dict(params or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(given) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise InvalidInput(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; allowed: {allowed}"
            )
        out: dict[str, int | float | bool] = {}
        for param in self.params:
            if param.name in given:
                out[param.name] = param.check(self.name, given[param.name])
            elif param.default is not None:
                out[param.name] = param.default
            else:
                raise InvalidInput(
                    f"{self.name}: parameter {param.name!r} is required ({param.type.value}"
                    f"{param._range()})"
                )
        return out

    def refusal(
        self, values: Mapping[str, object], limits: Mapping[str, float] | None = None
    ) -> tuple[str, str] | None:
        """(reason, message) of the first interlock that refuses, or None."""
        for rule in self.interlocks:
            message = rule.refuses(values, limits or {})
            if message is not None:
                return rule.reason, message
        return None

    def desired_state(self, params: Mapping[str, Any]) -> dict[str, bool | int | float]:
        return {d.path: d.resolve(params) for d in self.desired}


NOT_MOVING = Interlock(
    "vehicle_moving",
    SPEED,
    ">",
    MOVING_LIMIT_KMH,
    "refused while the vehicle moves: speed {value} km/h is above {limit} km/h",
)
CLIMATE_SOC = Interlock(
    "battery_low",
    SOC,
    "<",
    20.0,
    "refused: battery at {value} % is below the {limit} % needed for remote climate",
    setting="command_min_soc_pct",
)
_OPERATOR, _ADMIN = Role.OPERATOR, Role.ADMIN
_TEMP = Param("target_temp_c", ParamType.NUMBER, "cabin target", 15, 28, "°C", 21.0)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "lock",
        "Lock all doors and the trunk.",
        _OPERATOR,
        True,
        60,
        desired=tuple(Desired(p, True) for p in DOOR_LOCKED),
    ),
    CommandSpec(
        "unlock",
        "Unlock all doors and the trunk.",
        _OPERATOR,
        True,
        60,
        interlocks=(NOT_MOVING,),
        desired=tuple(Desired(p, False) for p in DOOR_LOCKED),
    ),
    CommandSpec(
        "climate_start",
        "Start cabin pre-conditioning to a target temperature.",
        _OPERATOR,
        True,
        120,
        params=(_TEMP,),
        interlocks=(CLIMATE_SOC,),
        desired=(Desired(HVAC_TARGET, param="target_temp_c"),),
    ),
    CommandSpec("climate_stop", "Stop cabin pre-conditioning.", _OPERATOR, True, 120),
    CommandSpec(
        "horn_and_lights",
        "Sound the horn and flash the lights to find the car.",
        _OPERATOR,
        True,
        30,
        params=(Param("lights_only", ParamType.BOOLEAN, "flash without the horn", default=False),),
    ),
    CommandSpec(
        "charge_start",
        "Start charging (the cable must be connected).",
        _OPERATOR,
        True,
        120,
        electric_only=True,
        refusals=("cable_not_connected", "not_supported"),
    ),
    CommandSpec(
        "charge_stop",
        "Stop charging.",
        _OPERATOR,
        True,
        120,
        desired=(Desired(IS_CHARGING, False),),
        electric_only=True,
        refusals=("not_supported",),
    ),
    CommandSpec(
        "charge_limit",
        "Set the charge limit.",
        _OPERATOR,
        True,
        120,
        params=(Param("percent", ParamType.INTEGER, "state of charge to stop at", 50, 100, "%"),),
        desired=(Desired(CHARGE_LIMIT, param="percent"),),
        electric_only=True,
        refusals=("not_supported",),
    ),
    CommandSpec(
        "windows_close",
        "Close all windows.",
        _OPERATOR,
        True,
        60,
        desired=tuple(Desired(p, 0) for p in WINDOW_POSITION),
    ),
    CommandSpec(
        "trunk_open",
        "Open the trunk.",
        _OPERATOR,
        True,
        60,
        interlocks=(NOT_MOVING,),
        desired=(Desired(TRUNK_OPEN, True),),
    ),
    CommandSpec(
        "immobiliser_enable",
        "Prevent the car from starting (theft recovery).",
        _ADMIN,
        False,
        300,
        interlocks=(NOT_MOVING,),
    ),
    CommandSpec(
        "immobiliser_disable",
        "Allow the car to start again.",
        _ADMIN,
        False,
        300,
    ),
    CommandSpec(
        "telemetry_rate",
        "Set how often the parked car reports.",
        _OPERATOR,
        False,
        300,
        params=(
            Param("seconds", ParamType.INTEGER, "reporting interval when parked", 1, 3600, "s"),
        ),
    ),
    CommandSpec(
        "diagnostic_readout",
        "Read active trouble codes, odometer and 12 V voltage.",
        _OPERATOR,
        False,
        120,
    ),
)

SPECS: Mapping[str, CommandSpec] = {spec.name: spec for spec in COMMANDS}


def spec_of(name: str) -> CommandSpec:
    """The row of command `name`, or InvalidInput listing the commands there are."""
    found = SPECS.get(name)
    if found is None:
        raise InvalidInput(f"unknown command {name!r}; use one of: {', '.join(SPECS)}")
    return found


# Reasons a vehicle gives for `rejected` (besides the interlocks' own).
VEHICLE_REASONS = (
    "malformed",
    "unknown_key",
    "bad_signature",
    "wrong_vin",
    "expired",
    "replayed_counter",
    "unknown_command",
    "invalid_params",
)
