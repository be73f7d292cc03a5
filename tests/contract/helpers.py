"""Builders shared by the storage contract tests: VINs, vehicles, points, dead letters."""

from collections.abc import Iterable
from typing import Any, NamedTuple

from sqlalchemy import Table, func, select

from autocloud.adapters.sql.store import SqlStore
from autocloud.domain.records import DeadLetter, Frame, Value, Vehicle, WriteBatch
from autocloud.domain.signal_table import SIGNALS
from autocloud.domain.vin import check_digit, validate_vin

#: 2026-01-01T00:00:00Z: every test timestamp is an offset from here.
T0 = 1_767_225_600_000
MINUTE = 60_000

_KNOWN = {spec.path for spec in SIGNALS}


def path(name: str) -> str:
    """A VSS path of the platform's catalog (fails loudly if the catalog loses it)."""
    assert name in _KNOWN, f"{name} is not in autocloud.domain.signal_table.SIGNALS"
    return name


SPEED = path("Vehicle.Speed")  # float
IS_MOVING = path("Vehicle.IsMoving")  # boolean
ODOMETER = path("Vehicle.TraveledDistance")  # uint32
ACCEL = path("Vehicle.Acceleration.Longitudinal")  # float
SOC = path("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current")  # float
IS_CHARGING = path("Vehicle.Powertrain.TractionBattery.Charging.IsCharging")  # boolean
CHARGE_LIMIT = path("Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit")  # uint8
START_STOP = path("Vehicle.Powertrain.TractionBattery.Charging.StartStopCharging")  # string
LIGHTS = path("Vehicle.Body.Lights.LightSwitch")  # string
FUEL_TYPES = path("Vehicle.Powertrain.FuelSystem.SupportedFuelTypes")  # string[]
LATITUDE = path("Vehicle.CurrentLocation.Latitude")  # double


def make_vin(serial: int, wmi: str = "WVW", vds: str = "ZZZE1", year: str = "R") -> str:
    """A valid VIN with a correct check digit: WMI, VDS, check, year, plant W, serial."""
    body = f"{wmi}{vds}0{year}W{serial:06d}"
    return validate_vin(body[:8] + check_digit(body) + body[9:])


def add_vehicle(
    store: SqlStore,
    serial: int,
    *,
    brand: str = "vw",
    model: str = "ID.4",
    created_ms: int = T0,
    digest: str = "d" * 64,
) -> Vehicle:
    """Register a vehicle whose VIN ends in `serial`."""
    wmi = "VSS" if brand == "seat" else "WVW"
    vehicle = Vehicle(
        id=0,
        vin=make_vin(serial, wmi=wmi),
        brand=brand,
        model=model,
        model_year=2024,
        manufacturer="Volkswagen" if wmi == "WVW" else "SEAT",
        created_ms=created_ms,
    )
    return store.registry.add_vehicle(vehicle, digest)


class Point(NamedTuple):
    """One signal value at one instant of one vehicle: how the tests write samples."""

    vehicle_id: int
    signal_id: int
    ts: int
    value: Value


def frames_of(points: Iterable[Point]) -> list[Frame]:
    """Points grouped into ingest's frames by (vehicle, ts), in first-seen order; of a signal
    given twice for one instant the later value wins."""
    frames: dict[tuple[int, int], Frame] = {}
    for p in points:
        key = (p.vehicle_id, p.ts)
        frame = frames.get(key)
        if frame is None:
            frame = frames[key] = Frame(p.vehicle_id, p.ts, {})
        frame.values[p.signal_id] = p.value
    return list(frames.values())


def point(store: SqlStore, vehicle: Vehicle, signal: str, ts: int, value: Value) -> Point:
    signal_id = store.telemetry.signal_ids([signal])[signal]
    return Point(vehicle.id, signal_id, ts, value)


def reported(store: SqlStore, vehicle: Vehicle) -> dict[str, tuple[Value, int]]:
    """The twin's reported signals as {path: (value, ts)}."""
    return {s.path: (s.value, s.ts) for s in store.telemetry.twin(vehicle).reported}


def record(store: SqlStore, vehicle: Vehicle, samples: list[tuple[str, int, Value]]) -> None:
    """Commit samples as history rows (and nothing else)."""
    points = [point(store, vehicle, p, ts, v) for p, ts, v in samples]
    store.telemetry.commit(WriteBatch(received_ms=T0, history=frames_of(points)))


def set_twin(store: SqlStore, vehicle: Vehicle, values: dict[str, Value], ts: int = T0) -> None:
    points = [point(store, vehicle, p, ts, v) for p, v in values.items()]
    store.telemetry.commit(WriteBatch(received_ms=ts + 50, twin=frames_of(points)))


def dead_letter(
    received_ms: int,
    reason: str,
    *,
    vin: str | None = None,
    brand: str | None = None,
    payload: bytes = b'{"seq":1}',
    **overrides: Any,
) -> DeadLetter:
    fields: dict[str, Any] = {
        "received_ms": received_ms,
        "topic": f"vehicles/{vin or 'UNKNOWN'}/telemetry",
        "reason": reason,
        "detail": f"{reason} at {received_ms}",
        "payload": payload,
        "vin": vin,
        "brand": brand,
    }
    fields.update(overrides)
    return DeadLetter(**fields)


def count(store: SqlStore, table: Table) -> int:
    """Rows in a table, read directly (for state no port exposes, e.g. events)."""
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
