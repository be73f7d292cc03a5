"""What a simulated car reports: its physical state as VSS 6.0 signal values.

What: :func:`vss_signals` turns a :class:`VehicleState` into ``{VSS path: value}`` with only
paths of the platform catalog (:mod:`autocloud.domain.signal_table`) and values of the
catalog's datatype — ``int`` for integer signals (odometer, ranges, tyre pressures, levels),
``float`` for float ones, ``list[str]`` for the DTC list — inside every min/max.

Why separate from the model: the mapping is long but dumb; keeping it apart keeps the
physics readable, and one place to look when the catalog changes. Location, speed and
heading are the driver's, not listed here. Electric-only signals are left out for a
combustion car and engine/fuel signals for a battery-electric one, as a real car would.
"""

from __future__ import annotations

from typing import Final

from autocloud.sim.energy import VehicleSpec, engine_rpm, seconds_to_charge, tyre_hot_kpa
from autocloud.sim.vehicle_state import TYRES, VehicleState

__all__ = ["Reading", "vss_signals"]

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
    km_to_service = spec.service_interval_km - (s.odometer_m - s.last_service_odometer_m) / 1000
    out: dict[str, Reading] = {
        "Vehicle.Powertrain.Type": spec.powertrain.value,
        "Vehicle.TraveledDistance": int(s.odometer_m),
        "Vehicle.LowVoltageSystemState": _power_state(s),
        "Vehicle.LowVoltageBattery.CurrentVoltage": round(s.lv_voltage, 2),
        "Vehicle.Chassis.ParkingBrake.IsEngaged": s.parked,
        "Vehicle.Exterior.AirTemperature": round(s.ambient_c, 1),
        "Vehicle.Cabin.HVAC.AmbientAirTemperature": round(s.cabin_c, 1),
        "Vehicle.Cabin.HVAC.IsAirConditioningActive": (
            s.ignition_on and s.hvac_on and s.ambient_c > s.hvac_target_c
        ),
        "Vehicle.Cabin.HVAC.Station.Row1.Driver.Temperature": s.hvac_target_c,
        "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed": _fan_pct(s),
        "Vehicle.Body.Lights.LightSwitch": "AUTO",
        "Vehicle.Body.Lights.Beam.Low.IsOn": s.ignition_on and s.lights_on,
        "Vehicle.Body.Lights.Beam.High.IsOn": False,
        "Vehicle.Body.Lights.Hazard.IsSignaling": False,
        "Vehicle.Body.Trunk.Rear.IsOpen": s.trunk_open,
        "Vehicle.Body.Trunk.Rear.IsLocked": s.locked,
        "Vehicle.Body.Hood.IsOpen": s.hood_open,
        "Vehicle.Diagnostics.DTCList": list(s.dtcs),
        "Vehicle.Diagnostics.DTCCount": min(255, len(s.dtcs)),
        "Vehicle.Service.DistanceToService": round(km_to_service, 1),
        "Vehicle.Service.IsServiceDue": km_to_service <= 0,
    }
    warn_kpa = spec.tyre_kpa * TPMS_WARNING_SHARE
    tyre_c = round(s.tyre_c, 1)
    for i, cold in enumerate(s.tyre_cold_kpa):
        kpa = round(tyre_hot_kpa(cold, s.tyre_c))
        out[_PRESSURE[i]] = kpa
        out[_TYRE_TEMP[i]] = tyre_c
        out[_PRESSURE_LOW[i]] = kpa < warn_kpa
    out.update(_body(s.locked, tuple(s.doors_open), tuple(s.windows_pct)))
    electric_m = _battery(spec, s, out) if spec.electric else 0
    fuel_m = _fuel(spec, s, out) if spec.combustion else 0
    out["Vehicle.Powertrain.Range"] = electric_m + fuel_m
    return out


_BODY_CACHE: dict[tuple[bool, tuple[bool, ...], tuple[int, ...]], dict[str, Reading]] = {}


def _body(locked: bool, doors: tuple[bool, ...], windows: tuple[int, ...]) -> dict[str, Reading]:
    """Doors, locks and windows, in readout order; cached per state (they rarely change)."""
    found = _BODY_CACHE.get((locked, doors, windows))
    if found is None:
        found = {}
        for i, position in enumerate(windows):
            found[_DOOR_OPEN[i]] = doors[i]
            found[_DOOR_LOCKED[i]] = locked
            found[_WINDOW_POSITION[i]] = max(0, min(100, position))
        for i, path in enumerate(_WINDOW_OPEN):
            found[path] = windows[i] > 0
        if len(_BODY_CACHE) < 4096:  # a handful of states in practice; bounded anyway
            _BODY_CACHE[(locked, doors, windows)] = found
    return found


def _power_state(s: VehicleState) -> str:
    if s.start_reading:
        return "START"
    if s.ignition_on:
        return "ON"
    return "LOCK" if s.locked else "OFF"


def _fan_pct(s: VehicleState) -> int:
    if not (s.ignition_on and s.hvac_on):
        return 0
    return int(max(20.0, min(100.0, 20.0 + 8.0 * abs(s.cabin_c - s.hvac_target_c))))


def _battery(spec: VehicleSpec, s: VehicleState, out: dict[str, Reading]) -> int:
    """Traction battery and charging signals; returns the electric range in metres."""
    energy_kwh = s.soc_pct / 100.0 * spec.battery_kwh
    kwh_per_km = spec.rated_kwh_per_100km / 100.0 * _cold_factor(s.ambient_c)
    range_m = int(energy_kwh / kwh_per_km * 1000.0)
    low, high = DISPLAY_BUFFER_PCT
    displayed = (s.soc_pct - low) / (high - low) * 100.0
    out.update(
        {
            _BATTERY + "StateOfCharge.Current": round(s.soc_pct, 2),
            _BATTERY + "StateOfCharge.Displayed": float(round(max(0.0, min(100.0, displayed)))),
            _BATTERY + "StateOfCharge.CurrentEnergy": round(energy_kwh, 3),
            _BATTERY + "Range": range_m,
            _BATTERY + "StateOfHealth": round(s.traction_soh_pct, 1),
            _BATTERY + "NetCapacity": round(spec.battery_kwh),
            _BATTERY + "CurrentPower": round(s.hv_power_w, 1),
            _BATTERY + "Temperature.Average": round(s.hv_battery_c, 1),
            _CHARGING + "IsCharging": s.charging,
            _CHARGING + "ChargeLimit": s.charge_limit_pct,
            _CHARGING + "ChargeRate": (
                round(s.hv_power_w / 1000.0 / kwh_per_km, 1) if s.charging else 0.0
            ),
            _CHARGING + "TimeToComplete": (
                seconds_to_charge(s.soc_pct, s.charge_limit_pct, s.charger_kw, spec.battery_kwh)
                if s.charging
                else 0
            ),
            _PORT + "IsChargingCableConnected": s.plugged_in,
            _PORT + "IsFlapOpen": s.plugged_in,
        }
    )
    return range_m


def _fuel(spec: VehicleSpec, s: VehicleState, out: dict[str, Reading]) -> int:
    """Fuel and engine signals; returns the range on fuel in metres."""
    level_pct = round(s.fuel_l / spec.tank_l * 100.0)
    range_m = int(s.fuel_l / spec.rated_l_per_100km * 100_000.0)
    average = (
        s.fuel_used_l / s.fuel_distance_m * 100_000.0
        if s.fuel_distance_m >= 1000.0
        else spec.rated_l_per_100km
    )
    out.update(
        {
            _FUEL + "RelativeLevel": max(0, min(100, level_pct)),
            _FUEL + "AbsoluteLevel": round(s.fuel_l, 2),
            _FUEL + "Range": range_m,
            _FUEL + "IsFuelLevelLow": level_pct < FUEL_LOW_PCT,
            _FUEL + "TankCapacity": spec.tank_l,
            _FUEL + "SupportedFuelTypes": ["GASOLINE"],
            _FUEL + "AverageConsumption": round(average, 2),
            _ENGINE + "IsRunning": s.engine_running,
            _ENGINE + "Speed": round(_rpm(s), 0),
            _ENGINE + "EngineCoolant.Temperature": round(s.coolant_c, 1),
            _ENGINE + "EngineOil.Temperature": round(s.oil_c, 1),
            _ENGINE + "EngineOil.Level": "NORMAL",
            _ENGINE + "EngineHours": round(s.engine_hours, 3),
        }
    )
    return range_m


def _rpm(s: VehicleState) -> float:
    return engine_rpm(s.speed_kmh) if s.engine_running else 0.0


def _cold_factor(ambient_c: float) -> float:
    return 1.0 + COLD_RANGE_PER_K * max(0.0, 15.0 - ambient_c)
