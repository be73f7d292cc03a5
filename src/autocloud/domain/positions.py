"""Vehicle positions and states in a compact form: what the fleet map needs, nothing more.

The map draws every vehicle of a tenant (10,000 and more) and moves them once a second. A
full twin change carries every signal of a message (~370 bytes a car); the map needs the
position, heading, speed, energy level and two state flags. This module says which signals
those are, rounds them to what a map can show (coordinates to 5 decimals, about a metre) and
lays many vehicles out as columns (`{"vin": [...], "lat": [...], ...}`): one list per field,
so a browser parses one small document per second instead of one event per vehicle.

A value that is not known (never reported, or not a number) is `None` (JSON null): for a
live update it means "no news, keep what you have".
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The fields: signals (SIGNALS) and presence (ONLINE).
LAT, LON, HEADING, SPEED = "lat", "lon", "heading", "speed"
SOC, FUEL, ONLINE, CHARGING = "soc", "fuel", "online", "charging"


def _decimals(n: int) -> Callable[[float], float | int]:
    if n == 0:
        return lambda x: round(x)
    return lambda x: round(x, n)


def _flag(x: float) -> int:
    return 1 if x else 0


# field -> (VSS path, how it is rounded: coordinates to ~1 m, heading to a degree)
SIGNALS: dict[str, tuple[str, Callable[[float], float | int]]] = {
    LAT: ("Vehicle.CurrentLocation.Latitude", _decimals(5)),
    LON: ("Vehicle.CurrentLocation.Longitude", _decimals(5)),
    HEADING: ("Vehicle.CurrentLocation.Heading", _decimals(0)),
    SPEED: ("Vehicle.Speed", _decimals(1)),
    SOC: ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", _decimals(1)),
    FUEL: ("Vehicle.Powertrain.FuelSystem.RelativeLevel", _decimals(1)),
    CHARGING: ("Vehicle.Powertrain.TractionBattery.Charging.IsCharging", _flag),
}
BY_PATH: dict[str, tuple[str, Callable[[float], float | int]]] = {
    path: (name, rounding) for name, (path, rounding) in SIGNALS.items()
}
# The columns of a live update (the vehicle's identity is known from the snapshot).
LIVE_FIELDS: tuple[str, ...] = (LAT, LON, HEADING, SPEED, SOC, FUEL, ONLINE, CHARGING)
# The columns of a snapshot: identity first, then the live fields.
SNAPSHOT_FIELDS: tuple[str, ...] = ("vin", "brand", "model", *LIVE_FIELDS)

Compact = float | int | None


def compact(path: str, value: object) -> tuple[str, Compact] | None:
    """The field and rounded value of one signal, or None when the map does not use it.

    Booleans count as numbers (IsCharging is stored as 1.0/0.0); anything else that is not
    a number (a string, a list) is not a position and becomes None."""
    known = BY_PATH.get(path)
    if known is None:
        return None
    name, rounding = known
    if isinstance(value, bool | int | float):
        return name, rounding(float(value))
    return name, None


def fields_of_signals(signals: Mapping[str, Any]) -> dict[str, Compact]:
    """The map's fields in a twin change's `signals` ({path: {"value", "ts"}})."""
    out: dict[str, Compact] = {}
    for path, sample in signals.items():
        found = compact(path, sample.get("value") if isinstance(sample, Mapping) else None)
        if found is not None:
            out[found[0]] = found[1]
    return out


@dataclass(frozen=True, slots=True)
class Position:
    """One vehicle as the map shows it (a snapshot row)."""

    vin: str
    brand: str
    model: str
    fields: Mapping[str, Compact]  # LIVE_FIELDS; a missing field is unknown


def columns(rows: Iterable[Sequence[Any]], names: Sequence[str]) -> dict[str, list[Any]]:
    """Rows (one value per name, in order) laid out as one list per name."""
    out: dict[str, list[Any]] = {name: [] for name in names}
    lists = [out[name] for name in names]
    for row in rows:
        for target, value in zip(lists, row, strict=True):
            target.append(value)
    return out


def snapshot_columns(positions: Sequence[Position]) -> dict[str, list[Any]]:
    """A snapshot in columns (SNAPSHOT_FIELDS)."""
    out: dict[str, list[Any]] = {
        "vin": [p.vin for p in positions],
        "brand": [p.brand for p in positions],
        "model": [p.model for p in positions],
    }
    for name in LIVE_FIELDS:
        out[name] = [p.fields.get(name) for p in positions]
    return out
