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

import math
from typing import Any, Final

from autocloud.sim.energy import (
    ATMOSPHERE_KPA,
    TYRE_REFERENCE_C,
    Powertrain,
    VehicleSpec,
    engine_rpm,
    seconds_to_charge,
)
from autocloud.sim.rounding import decimal_rounder, round_int
from autocloud.sim.vehicle_state import TYRES, VehicleState

__all__ = ["Reading", "Readout", "signal_paths", "vss_signals", "vss_values"]

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

VOLATILE_PATHS: Final = frozenset(
    (
        "Vehicle.TraveledDistance",
        "Vehicle.LowVoltageBattery.CurrentVoltage",
        "Vehicle.Cabin.HVAC.AmbientAirTemperature",
        "Vehicle.Cabin.HVAC.Station.Row1.Driver.FanSpeed",
        "Vehicle.Service.DistanceToService",
        *_TYRE_TEMP,
        *_BATTERY_PATHS[:4],  # state of charge (current, displayed, energy), range
        _BATTERY + "CurrentPower",
        _BATTERY + "Temperature.Average",
        _CHARGING + "ChargeRate",
        _CHARGING + "TimeToComplete",
        _FUEL + "AbsoluteLevel",
        _FUEL + "Range",
        _FUEL + "AverageConsumption",
        _ENGINE + "Speed",
        _ENGINE + "EngineCoolant.Temperature",
        _ENGINE + "EngineOil.Temperature",
        _ENGINE + "EngineHours",
        "Vehicle.Powertrain.Range",
    )
)
"""Signals that follow quantities changing continuously while a car drives or charges
(distance, energy, temperatures): the ones a report usually has to compare value by value.
The simulator compares the others as one block first (`sim/vehicle.py`)."""
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
    return Readout(spec).values(s)


_round1 = decimal_rounder(1)
_round2 = decimal_rounder(2)
_round3 = decimal_rounder(3)
_round0 = decimal_rounder(0)  # round(x, 0): a float
# Half a unit of the last digit, less a margin far above floating-point error: a value
# closer than this to its previous rounding (not zero) rounds to it again, the same float.
_NEAR_1: Final = 0.4999e-1
_NEAR_2: Final = 0.4999e-2
_NEAR_3: Final = 0.4999e-3
_NEAR_0: Final = 0.4999  # for round_int and round(x, 0)
_KELVIN: Final = 273.15
_TYRE_REFERENCE_K: Final = TYRE_REFERENCE_C + _KELVIN  # as tyre_hot_kpa computes it
_DISPLAY_LOW_PCT, _DISPLAY_HIGH_PCT = DISPLAY_BUFFER_PCT
_DISPLAY_SPAN_PCT: Final = _DISPLAY_HIGH_PCT - _DISPLAY_LOW_PCT


class Readout:
    """:func:`vss_values` for one car, with what depends only on its spec computed once.

    The simulator reads every car every second it reports, so this is its hottest code
    (BENCHMARKS.md, "Simulator"): the spec's figures are looked up once here, rounding goes
    through :mod:`autocloud.sim.rounding` (the same floats as ``round``, faster), and values
    of inputs that rarely change (the ambient temperature, the battery's health, the engine
    hours of a car whose engine is off) are rounded again only when the input changed. The
    values are exactly those of the plain formulas: ``tests/sim/test_readout.py`` compares
    them, type and sign of zero included, with the straightforward version this replaced.
    """

    __slots__ = (
        "_ambient",
        "_ambient_1",
        "_base_kwh_per_km",
        "_battery_kwh",
        "_body",
        "_combustion",
        "_electric",
        "_hours",
        "_hours_3",
        "_kwh_per_km",
        "_last",
        "_net_capacity",
        "_rated_l",
        "_service_km",
        "_soh",
        "_soh_1",
        "_tank_l",
        "_type",
        "_warn_kpa",
    )

    def __init__(self, spec: VehicleSpec) -> None:
        self._type = _TYPE[spec.powertrain]
        self._electric, self._combustion = spec.electric, spec.combustion
        self._service_km = spec.service_interval_km
        self._warn_kpa = spec.tyre_kpa * TPMS_WARNING_SHARE
        self._battery_kwh = spec.battery_kwh
        self._net_capacity = round(spec.battery_kwh)
        self._base_kwh_per_km = spec.rated_kwh_per_100km / 100.0
        self._tank_l, self._rated_l = spec.tank_l, spec.rated_l_per_100km
        # Inputs that rarely change, with their roundings: recomputed when the state holds
        # another float object (the model assigns a new one whenever it changes the value).
        self._ambient, self._ambient_1, self._kwh_per_km = math.nan, 0.0, 0.0
        self._soh, self._soh_1 = math.nan, 0.0
        self._hours, self._hours_3 = math.nan, 0.0
        # (locked, doors, windows) of the last `_body`, copies of the lists, and its values
        self._body: tuple[bool, list[bool], list[int], tuple[Reading, ...]] = (False, [], [], ())
        # The previous reading (NaN before the first), for `_unchanged` roundings.
        self._last: list[Any] = [math.nan] * len(signal_paths(spec))

    def values(self, s: VehicleState) -> list[Reading]:
        """The values of :func:`signal_paths`, in its order."""
        odometer = s.odometer_m
        km_to_service = self._service_km - (odometer - s.last_service_odometer_m) / 1000
        ignition_on = s.ignition_on
        climate = ignition_on and s.hvac_on
        ambient = s.ambient_c
        if ambient is not self._ambient:  # identity: the same float object, unchanged
            self._ambient, self._ambient_1 = ambient, _round1(ambient)
            self._kwh_per_km = self._base_kwh_per_km * _cold_factor(ambient)
        locked = s.locked
        dtcs = s.dtcs
        cabin = s.cabin_c
        target = s.hvac_target_c
        if climate:
            fan = 20.0 + 8.0 * abs(cabin - target)
            fan = fan if fan < 100.0 else 100.0  # max(20.0, min(100.0, fan)), as comparisons
            fan_pct = int(fan if fan > 20.0 else 20.0)
        else:
            fan_pct = 0
        count = len(dtcs)
        # A value within 0.4999 of the last digit of its previous rounding rounds to that
        # again: take it instead of rounding (`_NEAR_1`). Not for a previous zero, whose
        # sign depends on the value's.
        last = self._last
        lv, prev_lv = s.lv_voltage, last[3]
        lv_2 = prev_lv if prev_lv and -_NEAR_2 < lv - prev_lv < _NEAR_2 else _round2(lv)
        prev_cabin = last[6]
        near = prev_cabin and -_NEAR_1 < cabin - prev_cabin < _NEAR_1
        cabin_1 = prev_cabin if near else _round1(cabin)
        prev_km = last[19]
        near = prev_km and -_NEAR_1 < km_to_service - prev_km < _NEAR_1
        km_1 = prev_km if near else _round1(km_to_service)
        out: list[Reading] = [
            self._type,
            int(odometer),
            "START" if s.start_reading else "ON" if ignition_on else "LOCK" if locked else "OFF",
            lv_2,
            s.parked,
            self._ambient_1,
            cabin_1,
            climate and ambient > target,
            target,
            fan_pct,
            "AUTO",
            ignition_on and s.lights_on,
            False,
            False,
            s.trunk_open,
            locked,
            s.hood_open,
            list(dtcs),
            count if count < 255 else 255,
            km_1,
            km_to_service <= 0,
        ]
        # tyre_hot_kpa per tyre, its temperature term computed once (the same floats)
        tyre, prev_tyre = s.tyre_c, last[22]
        near = prev_tyre and -_NEAR_1 < tyre - prev_tyre < _NEAR_1
        tyre_c = prev_tyre if near else _round1(tyre)
        tyre_k = tyre + _KELVIN
        warn_kpa = self._warn_kpa
        for cold, prev_kpa in zip(s.tyre_cold_kpa, last[21:33:3], strict=True):  # and last kPa
            if cold <= 0:
                kpa = 0
            else:
                gauge = (cold + ATMOSPHERE_KPA) * tyre_k / _TYRE_REFERENCE_K - ATMOSPHERE_KPA
                if prev_kpa and -_NEAR_0 < gauge - prev_kpa < _NEAR_0:
                    kpa = prev_kpa  # round_int(gauge) again
                else:
                    kpa = round_int(gauge) if gauge > 0.0 else 0
            out += (kpa, tyre_c, kpa < warn_kpa)
        body_locked, doors, windows, body = self._body  # rarely changes: compared first
        if locked is not body_locked or s.doors_open != doors or s.windows_pct != windows:
            doors, windows = list(s.doors_open), list(s.windows_pct)
            body = _body(locked, tuple(doors), tuple(windows))
            self._body = (locked, doors, windows, body)
        out += body
        electric_m = self._battery(s, out) if self._electric else 0
        fuel_m = self._fuel(s, out) if self._combustion else 0
        out.append(electric_m + fuel_m)
        self._last = out
        return out

    def _battery(self, s: VehicleState, out: list[Reading]) -> int:
        """Traction battery and charging signals (`_BATTERY_PATHS`); the electric range in m."""
        soc = s.soc_pct
        energy_kwh = soc / 100.0 * self._battery_kwh
        kwh_per_km = self._kwh_per_km
        range_m = int(energy_kwh / kwh_per_km * 1000.0)
        displayed = (soc - _DISPLAY_LOW_PCT) / _DISPLAY_SPAN_PCT * 100.0
        displayed = displayed if displayed < 100.0 else 100.0  # max(0.0, min(100.0, displayed))
        displayed = displayed if displayed > 0.0 else 0.0
        soh = s.traction_soh_pct
        if soh is not self._soh:
            self._soh, self._soh_1 = soh, _round1(soh)
        charging = s.charging
        power = s.hv_power_w
        last, at = self._last, len(out)  # as in `values`: reuse a rounding still valid
        prev_soc, prev_power, prev_hv = last[at], last[at + 6], last[at + 7]
        soc_2 = prev_soc if prev_soc and -_NEAR_2 < soc - prev_soc < _NEAR_2 else _round2(soc)
        prev_shown, prev_energy = last[at + 1], last[at + 2]
        if prev_shown and -_NEAR_0 < displayed - prev_shown < _NEAR_0:
            shown = prev_shown  # float(round_int(displayed)) again
        else:
            shown = float(round_int(displayed))
        near = prev_energy and -_NEAR_3 < energy_kwh - prev_energy < _NEAR_3
        energy_3 = prev_energy if near else _round3(energy_kwh)
        near = prev_power and -_NEAR_1 < power - prev_power < _NEAR_1
        power_1 = prev_power if near else _round1(power)
        hv = s.hv_battery_c
        hv_1 = prev_hv if prev_hv and -_NEAR_1 < hv - prev_hv < _NEAR_1 else _round1(hv)
        out += (
            soc_2,
            shown,
            energy_3,
            range_m,
            self._soh_1,
            self._net_capacity,
            power_1,
            hv_1,
            charging,
            s.charge_limit_pct,
            _round1(power / 1000.0 / kwh_per_km) if charging else 0.0,
            (
                seconds_to_charge(soc, s.charge_limit_pct, s.charger_kw, self._battery_kwh)
                if charging
                else 0
            ),
            s.plugged_in,
            s.plugged_in,
        )
        return range_m

    def _fuel(self, s: VehicleState, out: list[Reading]) -> int:
        """Fuel and engine signals (`_FUEL_PATHS`); returns the range on fuel in metres."""
        fuel_l = s.fuel_l
        level_pct = round_int(fuel_l / self._tank_l * 100.0)
        range_m = int(fuel_l / self._rated_l * 100_000.0)
        distance = s.fuel_distance_m
        average = s.fuel_used_l / distance * 100_000.0 if distance >= 1000.0 else self._rated_l
        running = s.engine_running
        hours = s.engine_hours
        if hours is not self._hours:
            self._hours, self._hours_3 = hours, _round3(hours)
        last, at = self._last, len(out)  # as in `values`: reuse a rounding still valid
        prev_fuel = last[at + 1]
        near = prev_fuel and -_NEAR_2 < fuel_l - prev_fuel < _NEAR_2
        fuel_2 = prev_fuel if near else _round2(fuel_l)
        prev_average, prev_rpm = last[at + 6], last[at + 8]
        prev_coolant, prev_oil = last[at + 9], last[at + 10]
        near = prev_average and -_NEAR_2 < average - prev_average < _NEAR_2
        average_2 = prev_average if near else _round2(average)
        if running:
            rpm = engine_rpm(s.speed_kmh)
            rpm_0 = prev_rpm if prev_rpm and -_NEAR_0 < rpm - prev_rpm < _NEAR_0 else _round0(rpm)
        else:
            rpm_0 = 0.0
        coolant, oil = s.coolant_c, s.oil_c
        near = prev_coolant and -_NEAR_1 < coolant - prev_coolant < _NEAR_1
        coolant_1 = prev_coolant if near else _round1(coolant)
        oil_1 = prev_oil if prev_oil and -_NEAR_1 < oil - prev_oil < _NEAR_1 else _round1(oil)
        out += (
            (level_pct if level_pct < 100 else 100) if level_pct > 0 else 0,  # max(0, min(100, ·))
            fuel_2,
            range_m,
            level_pct < FUEL_LOW_PCT,
            self._tank_l,
            ["GASOLINE"],
            average_2,
            running,
            rpm_0,
            coolant_1,
            oil_1,
            "NORMAL",
            self._hours_3,
        )
        return range_m


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


def _cold_factor(ambient_c: float) -> float:
    below = 15.0 - ambient_c
    return 1.0 + COLD_RANGE_PER_K * (below if below > 0.0 else 0.0)
