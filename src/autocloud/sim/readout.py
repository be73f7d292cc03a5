"""What a simulated car reports: its physical state as VSS 6.0 signal values.

What: :func:`vss_signals` turns a :class:`VehicleState` into ``{VSS path: value}`` with only
paths of the platform catalog (:mod:`autocloud.domain.signal_table`) and values of the
catalog's datatype — ``int`` for integer signals (odometer, ranges, tyre pressures, levels),
``float`` for float ones, ``list[str]`` for the DTC list — inside every min/max.

Why separate from the model: the mapping is long but dumb; keeping it apart keeps the
physics readable, and one place to look when the catalog changes. Location, speed and
heading are the driver's, not listed here. Electric-only signals are left out for a
combustion car and engine/fuel signals for a battery-electric one, as a real car would.

Two forms of the same reading: :func:`vss_signals` (a dict) for whoever looks values up,
and :func:`vss_values` (a list in the fixed order of :func:`signal_paths`) for the
simulator's report loop, which compares each reading with the previous one value by value
and so needs no dict per tick.
"""

from __future__ import annotations

from itertools import repeat
from typing import Final

from autocloud.sim.energy import (
    Powertrain,
    VehicleSpec,
    engine_rpm,
    seconds_to_charge,
    tyre_hot_kpa,
)
from autocloud.sim.vehicle_state import TYRES, VehicleState

__all__ = ["Reading", "signal_paths", "vss_signals", "vss_values"]

Reading = bool | int | float | str | list[str]
"""One signal value as the car sends it."""

_CHASSIS: Final = "Vehicle.Chassis.Axle."
_PRESSURE: Final = tuple(f"{_CHASSIS}{t}.Tire.Pressure" for t in TYRES)
_TYRE_TEMP: Final = tuple(f"{_CHASSIS}{t}.Tire.AirTemperature" for t in TYRES)
_PRESSURE_LOW: Final = tuple(f"{_CHASSIS}{t}.Tire.IsPressureLow" for t in TYRES)
_DOORS: Final = tuple(
    f"Vehicle.Cabin.Door.{d}"
    for d in ("Row1.DriverSide", "Row1.PassengerSide", "Row2.DriverSide", "Row2.PassengerSide")
)
_DOOR_OPEN: Final = tuple(f"{door}.IsOpen" for door in _DOORS)
_DOOR_LOCKED: Final = tuple(f"{door}.IsLocked" for door in _DOORS)
_WINDOW_POSITION: Final = tuple(f"{door}.Window.Position" for door in _DOORS)
_WINDOW_OPEN: Final = tuple(f"{door}.Window.IsOpen" for door in _DOORS[:2])  # front only
_BATTERY: Final = "Vehicle.Powertrain.TractionBattery."
_CHARGING: Final = _BATTERY + "Charging."
_PORT: Final = _CHARGING + "ChargingPort.AnyPosition."
_FUEL: Final = "Vehicle.Powertrain.FuelSystem."
_ENGINE: Final = "Vehicle.Powertrain.CombustionEngine."

TPMS_WARNING_SHARE: Final = 0.8  # warn below 80 % of the recommended pressure (EU rule)
FUEL_LOW_PCT: Final = 12
DISPLAY_BUFFER_PCT: Final = (2.5, 97.5)  # the SoC window shown to the driver as 0-100 %
COLD_RANGE_PER_K: Final = 0.012  # range estimate: +1.2 % consumption per kelvin below 15 °C


def vss_signals(spec: VehicleSpec, s: VehicleState) -> dict[str, Reading]:
    """The car's current values; see the module docstring for the rules they follow."""
    return dict(zip(signal_paths(spec), vss_values(spec, s), strict=True))


_COMMON_PATHS: Final = (
    "Vehicle.Powertrain.Type",
    "Vehicle.TraveledDistance",
    "Vehicle.LowVoltageSystemState",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Chassis.ParkingBrake.IsEngaged",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Cabin.HVAC.AmbientAirTemperature",
    "Vehicle.Cabin.HVAC.IsAirConditioningActive",
    "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature",
    "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed",
    "Vehicle.Body.Lights.LightSwitch",
    "Vehicle.Body.Lights.Beam.Low.IsOn",
    "Vehicle.Body.Lights.Beam.High.IsOn",
    "Vehicle.Body.Lights.Hazard.IsSignaling",
    "Vehicle.Body.Trunk.Rear.IsOpen",
    "Vehicle.Body.Trunk.Rear.IsLocked",
    "Vehicle.Body.Hood.IsOpen",
    "Vehicle.Diagnostics.DTCList",
    "Vehicle.Diagnostics.DTCCount",
    "Vehicle.Service.DistanceToService",
    "Vehicle.Service.IsServiceDue",
    *(path for i in range(len(TYRES)) for path in (_PRESSURE[i], _TYRE_TEMP[i], _PRESSURE_LOW[i])),
    *(
        path
        for i in range(len(_DOORS))
        for path in (_DOOR_OPEN[i], _DOOR_LOCKED[i], _WINDOW_POSITION[i])
    ),
    *_WINDOW_OPEN,
)
_BATTERY_PATHS: Final = (
    _BATTERY + "StateOfCharge.Current",
    _BATTERY + "StateOfCharge.Displayed",
    _BATTERY + "StateOfCharge.CurrentEnergy",
    _BATTERY + "Range",
    _BATTERY + "StateOfHealth",
    _BATTERY + "NetCapacity",
    _BATTERY + "CurrentPower",
    _BATTERY + "Temperature.Average",
    _CHARGING + "IsCharging",
    _CHARGING + "ChargeLimit",
    _CHARGING + "ChargeRate",
    _CHARGING + "TimeToComplete",
    _PORT + "IsChargingCableConnected",
    _PORT + "IsFlapOpen",
)
_FUEL_PATHS: Final = (
    _FUEL + "RelativeLevel",
    _FUEL + "AbsoluteLevel",
    _FUEL + "Range",
    _FUEL + "IsFuelLevelLow",
    _FUEL + "TankCapacity",
    _FUEL + "SupportedFuelTypes",
    _FUEL + "AverageConsumption",
    _ENGINE + "IsRunning",
    _ENGINE + "Speed",
    _ENGINE + "EngineCoolant.Temperature",
    _ENGINE + "EngineOil.Temperature",
    _ENGINE + "EngineOil.Level",
    _ENGINE + "EngineHours",
)
_PATHS: dict[tuple[bool, bool], tuple[str, ...]] = {}
_TYPE: Final = {p: p.value for p in Powertrain}  # as plain str (an enum's .value is slow)


def signal_paths(spec: VehicleSpec) -> tuple[str, ...]:
    """The VSS paths a car of ``spec`` reports, in the order of :func:`vss_values`.

    The same for every reading of a car (a BEV has no fuel signals, a petrol car no
    traction battery ones), so it is built once per kind of car.
    """
    kind = (spec.electric, spec.combustion)
    paths = _PATHS.get(kind)
    if paths is None:
        paths = _COMMON_PATHS
        if spec.electric:
            paths += _BATTERY_PATHS
        if spec.combustion:
            paths += _FUEL_PATHS
        paths += ("Vehicle.Powertrain.Range",)
        _PATHS[kind] = paths
    return paths


def vss_values(spec: VehicleSpec, s: VehicleState) -> list[Reading]:
    """The car's current values in the order of :func:`signal_paths` (no dict is built:
    the simulator compares a reading with the previous one value by value)."""
    km_to_service = spec.service_interval_km - (s.odometer_m - s.last_service_odometer_m) / 1000
    ignition_on, climate = s.ignition_on, s.ignition_on and s.hvac_on
    out: list[Reading] = [
        _TYPE[spec.powertrain],
        int(s.odometer_m),
        "START" if s.start_reading else "ON" if ignition_on else "LOCK" if s.locked else "OFF",
        round(s.lv_voltage, 2),
        s.parked,
        round(s.ambient_c, 1),
        round(s.cabin_c, 1),
        climate and s.ambient_c > s.hvac_target_c,
        s.hvac_target_c,
        _fan_pct(s) if climate else 0,
        "AUTO",
        ignition_on and s.lights_on,
        False,
        False,
        s.trunk_open,
        s.locked,
        s.hood_open,
        list(s.dtcs),
        min(255, len(s.dtcs)),
        round(km_to_service, 1),
        km_to_service <= 0,
    ]
    warn_kpa = spec.tyre_kpa * TPMS_WARNING_SHARE
    tyre_c = round(s.tyre_c, 1)
    for kpa in map(round, map(tyre_hot_kpa, s.tyre_cold_kpa, repeat(s.tyre_c, len(TYRES)))):
        out += (kpa, tyre_c, kpa < warn_kpa)
    out += _body(s.locked, tuple(s.doors_open), tuple(s.windows_pct))
    electric_m = _battery(spec, s, out) if spec.electric else 0
    fuel_m = _fuel(spec, s, out) if spec.combustion else 0
    out.append(electric_m + fuel_m)
    return out


_BODY_CACHE: dict[tuple[bool, tuple[bool, ...], tuple[int, ...]], tuple[Reading, ...]] = {}


def _body(locked: bool, doors: tuple[bool, ...], windows: tuple[int, ...]) -> tuple[Reading, ...]:
    """Doors, locks and windows, in readout order; cached per state (they rarely change)."""
    found = _BODY_CACHE.get((locked, doors, windows))
    if found is None:
        values: list[Reading] = []
        for i, position in enumerate(windows):
            values += (doors[i], locked, max(0, min(100, position)))
        values += (windows[i] > 0 for i in range(len(_WINDOW_OPEN)))
        found = tuple(values)
        if len(_BODY_CACHE) < 4096:  # a handful of states in practice; bounded anyway
            _BODY_CACHE[(locked, doors, windows)] = found
    return found


def _fan_pct(s: VehicleState) -> int:
    if not (s.ignition_on and s.hvac_on):
        return 0
    fan = 20.0 + 8.0 * abs(s.cabin_c - s.hvac_target_c)
    fan = fan if fan < 100.0 else 100.0  # max(20.0, min(100.0, fan)), as comparisons
    return int(fan if fan > 20.0 else 20.0)


def _battery(spec: VehicleSpec, s: VehicleState, out: list[Reading]) -> int:
    """Traction battery and charging signals (`_BATTERY_PATHS`); the electric range in m."""
    energy_kwh = s.soc_pct / 100.0 * spec.battery_kwh
    kwh_per_km = spec.rated_kwh_per_100km / 100.0 * _cold_factor(s.ambient_c)
    range_m = int(energy_kwh / kwh_per_km * 1000.0)
    low, high = DISPLAY_BUFFER_PCT
    displayed = (s.soc_pct - low) / (high - low) * 100.0
    displayed = displayed if displayed < 100.0 else 100.0  # max(0.0, min(100.0, displayed))
    displayed = displayed if displayed > 0.0 else 0.0
    out += (
        round(s.soc_pct, 2),
        float(round(displayed)),
        round(energy_kwh, 3),
        range_m,
        round(s.traction_soh_pct, 1),
        round(spec.battery_kwh),
        round(s.hv_power_w, 1),
        round(s.hv_battery_c, 1),
        s.charging,
        s.charge_limit_pct,
        round(s.hv_power_w / 1000.0 / kwh_per_km, 1) if s.charging else 0.0,
        (
            seconds_to_charge(s.soc_pct, s.charge_limit_pct, s.charger_kw, spec.battery_kwh)
            if s.charging
            else 0
        ),
        s.plugged_in,
        s.plugged_in,
    )
    return range_m


def _fuel(spec: VehicleSpec, s: VehicleState, out: list[Reading]) -> int:
    """Fuel and engine signals (`_FUEL_PATHS`); returns the range on fuel in metres."""
    level_pct = round(s.fuel_l / spec.tank_l * 100.0)
    range_m = int(s.fuel_l / spec.rated_l_per_100km * 100_000.0)
    average = (
        s.fuel_used_l / s.fuel_distance_m * 100_000.0
        if s.fuel_distance_m >= 1000.0
        else spec.rated_l_per_100km
    )
    out += (
        (level_pct if level_pct < 100 else 100) if level_pct > 0 else 0,  # max(0, min(100, ·))
        round(s.fuel_l, 2),
        range_m,
        level_pct < FUEL_LOW_PCT,
        spec.tank_l,
        ["GASOLINE"],
        round(average, 2),
        s.engine_running,
        round(_rpm(s), 0),
        round(s.coolant_c, 1),
        round(s.oil_c, 1),
        "NORMAL",
        round(s.engine_hours, 3),
    )
    return range_m


def _rpm(s: VehicleState) -> float:
    return engine_rpm(s.speed_kmh) if s.engine_running else 0.0


def _cold_factor(ambient_c: float) -> float:
    below = 15.0 - ambient_c
    return 1.0 + COLD_RANGE_PER_K * (below if below > 0.0 else 0.0)
