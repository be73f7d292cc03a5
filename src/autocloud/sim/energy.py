"""Vehicle specifications and the pure physics behind the simulated fleet's energy use.

What: the three powertrains, a frozen :class:`VehicleSpec` per car (with three realistic
presets), and side-effect-free formulas — road load, auxiliary power, charge taper, Newton
cooling, tyre gas law, engine speed — that :class:`autocloud.sim.model.VehicleModel` combines
each tick.

Why separate: these are small numeric functions that are easiest to reason about (and test)
alone, and keeping them here keeps the stateful model short. Figures are rounded real-world
values (drag areas, rolling resistance, Willans-line engines), chosen so consumption lands
where real cars do: a compact BEV at 13-18 kWh/100 km, a petrol compact at 5-7 l/100 km.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "CHARGE_EFFICIENCY",
    "J_PER_KWH",
    "PETROL_J_PER_L",
    "PRESETS",
    "PRESET_FOR",
    "Powertrain",
    "VehicleSpec",
    "aux_power_w",
    "charge_taper",
    "engine_rpm",
    "newton",
    "road_load_n",
    "seconds_to_charge",
    "tyre_hot_kpa",
]

G: Final = 9.81  # m/s²
AIR_DENSITY: Final = 1.2  # kg/m³ at ~20 °C
J_PER_KWH: Final = 3.6e6
PETROL_J_PER_L: Final = 32.0e6  # lower heating value of petrol per litre
CHARGE_EFFICIENCY: Final = 0.90  # grid to battery (charger and battery losses)
ATMOSPHERE_KPA: Final = 101.325
TYRE_REFERENCE_C: Final = 20.0  # cold pressures are quoted at this temperature

BASE_LOAD_W: Final = 250.0  # control units, infotainment, pumps while the car is on
LIGHTS_W: Final = 100.0  # LED low beams and tail lights
FAN_W: Final = 150.0  # blower alone (an ICE heats the cabin with waste heat)
COOLING_W: Final = (250.0, 90.0, 3000.0)  # compressor: base, per kelvin, cap
TAPER_START_PCT: Final = 80.0  # charging power falls linearly above this state of charge
TAPER_FLOOR: Final = 0.1  # share of full power left at 100 %


class Powertrain(enum.StrEnum):
    """The three kinds of car in the fleet; the value is VSS ``Vehicle.Powertrain.Type``."""

    BEV = "ELECTRIC"
    HYBRID = "HYBRID"
    ICE = "COMBUSTION"


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """What a car is made of: mass, aerodynamics, storage and efficiency figures.

    Energy storage is usable capacity (``battery_kwh`` 0 for a combustion car, ``tank_l`` 0
    for an electric one). ``engine_efficiency`` is the marginal (Willans-line) efficiency of
    the engine; ``idle_fuel_lph`` is what it burns just turning over. The ``rated_*`` figures
    are the consumption the car's own range estimate assumes. A hybrid drives electrically
    until its state of charge falls to ``hold_soc_pct``, above ``ev_max_kmh`` or when asked
    for more than ``ev_max_kw``; then its engine runs.
    """

    name: str
    powertrain: Powertrain
    mass_kg: float
    drag_area_m2: float  # Cd x frontal area
    rolling_resistance: float
    tyre_kpa: float  # recommended cold pressure
    service_interval_km: float
    battery_kwh: float = 0.0
    max_charge_kw: float = 0.0
    drive_efficiency: float = 0.88  # battery to wheels
    regen_efficiency: float = 0.0  # wheels to battery
    max_regen_kw: float = 0.0
    rated_kwh_per_100km: float = 0.0
    tank_l: float = 0.0
    engine_efficiency: float = 0.36
    idle_fuel_lph: float = 0.0
    rated_l_per_100km: float = 0.0
    hold_soc_pct: float = 0.0
    ev_max_kmh: float = 0.0
    ev_max_kw: float = 0.0
    has_starter: bool = False  # a 12 V starter motor cranks the engine
    start_sag_v: float = 0.4  # 12 V dip at start with a healthy battery
    weak_sag_v: float = 0.6  # extra dip with a worn-out battery (health 0)
    low_start_v: float = 11.0  # a start reading below this sets P0562

    # Derived in __post_init__ (read on every tick, so not a property):
    electric: bool = field(init=False, compare=False, repr=False)
    """True when the car has a traction battery (BEV or plug-in hybrid)."""
    combustion: bool = field(init=False, compare=False, repr=False)
    """True when the car has a combustion engine and a fuel tank."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "electric", self.battery_kwh > 0)
        object.__setattr__(self, "combustion", self.tank_l > 0)


PRESETS: Final[Mapping[str, VehicleSpec]] = {
    spec.name: spec
    for spec in (
        # A compact hatchback BEV in the class of an ID.3 Pro / MG4 (58 kWh usable).
        VehicleSpec(
            name="compact-bev",
            powertrain=Powertrain.BEV,
            mass_kg=1800.0,
            drag_area_m2=0.62,
            rolling_resistance=0.0085,
            tyre_kpa=250.0,
            service_interval_km=30_000.0,
            battery_kwh=58.0,
            max_charge_kw=120.0,
            drive_efficiency=0.88,
            regen_efficiency=0.65,
            max_regen_kw=60.0,
            rated_kwh_per_100km=16.0,
        ),
        # A plug-in hybrid compact: ~10 kWh usable for 50-60 km electric, 40 l tank.
        VehicleSpec(
            name="plugin-hybrid",
            powertrain=Powertrain.HYBRID,
            mass_kg=1650.0,
            drag_area_m2=0.64,
            rolling_resistance=0.009,
            tyre_kpa=240.0,
            service_interval_km=15_000.0,
            battery_kwh=10.4,
            max_charge_kw=3.7,
            drive_efficiency=0.86,
            regen_efficiency=0.6,
            max_regen_kw=40.0,
            rated_kwh_per_100km=18.0,
            tank_l=40.0,
            engine_efficiency=0.38,
            idle_fuel_lph=0.5,
            rated_l_per_100km=5.5,
            hold_soc_pct=18.0,
            ev_max_kmh=130.0,
            ev_max_kw=80.0,
            start_sag_v=0.3,
        ),
        # A petrol compact (1.0-1.5 l turbo) with a 45 l tank.
        VehicleSpec(
            name="petrol-compact",
            powertrain=Powertrain.ICE,
            mass_kg=1300.0,
            drag_area_m2=0.66,
            rolling_resistance=0.010,
            tyre_kpa=230.0,
            service_interval_km=15_000.0,
            tank_l=45.0,
            engine_efficiency=0.36,
            idle_fuel_lph=0.7,
            rated_l_per_100km=6.2,
            has_starter=True,
            start_sag_v=2.0,
            weak_sag_v=3.0,
            low_start_v=9.0,
        ),
    )
}
"""The fleet's three cars by name."""

PRESET_FOR: Final[Mapping[Powertrain, VehicleSpec]] = {
    spec.powertrain: spec for spec in PRESETS.values()
}
"""The preset of each powertrain."""

# Heating power per kelvin below the target (W/K) and its cap: a BEV uses a heat pump, a
# plug-in hybrid's electric heater runs when the engine is cold, an ICE uses waste heat.
_HEATING: Final[Mapping[Powertrain, tuple[float, float]]] = {
    Powertrain.BEV: (120.0, 4000.0),
    Powertrain.HYBRID: (150.0, 5000.0),
    Powertrain.ICE: (0.0, 0.0),
}


def road_load_n(spec: VehicleSpec, speed_ms: float, accel_ms2: float) -> float:
    """Force at the wheels (N) to hold ``accel_ms2`` at ``speed_ms`` on level road.

    Inertia plus rolling resistance plus aerodynamic drag (½ρ·CdA·v²). Negative when the car
    decelerates faster than drag and rolling resistance alone would slow it: that energy
    goes to the brakes or, in an electric drive, partly back to the battery.
    """
    rolling = spec.mass_kg * G * spec.rolling_resistance if speed_ms > 0 else 0.0
    drag = 0.5 * AIR_DENSITY * spec.drag_area_m2 * speed_ms * speed_ms
    return spec.mass_kg * accel_ms2 + rolling + drag


def aux_power_w(
    powertrain: Powertrain, ambient_c: float, target_c: float, *, hvac_on: bool, lights_on: bool
) -> float:
    """Electrical load of a switched-on car: base load, climate and lights (W).

    Cooling costs compressor power in every car; heating costs electric power only where
    there is no engine waste heat to use (see ``_HEATING``).
    """
    power = BASE_LOAD_W + (LIGHTS_W if lights_on else 0.0)
    if not hvac_on:
        return power
    delta = target_c - ambient_c
    if delta < 0:
        base, per_kelvin, cap = COOLING_W
        return power + min(cap, base - delta * per_kelvin)
    per_kelvin, cap = _HEATING[powertrain]
    return power + FAN_W + min(cap, delta * per_kelvin)


def charge_taper(soc_pct: float) -> float:
    """Share of the charger's power the battery accepts: 1 up to 80 %, falling to 0.1 at 100 %.

    Real cells are charged at constant current, then constant voltage; a linear taper above
    80 % is the usual simplification and reproduces the familiar slow last fifth.
    """
    if soc_pct <= TAPER_START_PCT:
        return 1.0
    share = (min(soc_pct, 100.0) - TAPER_START_PCT) / (100.0 - TAPER_START_PCT)
    return 1.0 - share * (1.0 - TAPER_FLOOR)


def seconds_to_charge(soc_pct: float, limit_pct: float, power_kw: float, battery_kwh: float) -> int:
    """Time to charge from ``soc_pct`` to ``limit_pct`` at ``power_kw`` with the taper (s).

    Integrated in 1 % steps, which is well inside the accuracy a car shows the driver.
    """
    if power_kw <= 0 or battery_kwh <= 0 or soc_pct >= limit_pct:
        return 0
    seconds = 0.0
    soc = soc_pct
    while soc < limit_pct:
        step = min(1.0, limit_pct - soc)
        kwh = step / 100.0 * battery_kwh
        seconds += kwh / (power_kw * charge_taper(soc) * CHARGE_EFFICIENCY) * 3600.0
        soc += step
    return round(seconds)


def newton(temp_c: float, target_c: float, dt_s: float, tau_s: float) -> float:
    """Newton's law of heating/cooling: move ``temp_c`` towards ``target_c`` over ``dt_s``.

    Exact for a constant target, so the result does not depend on how a period is split
    into steps.
    """
    return target_c + (temp_c - target_c) * math.exp(-dt_s / tau_s)


def tyre_hot_kpa(cold_kpa: float, tyre_c: float) -> float:
    """Gauge pressure of a tyre at ``tyre_c`` whose pressure at 20 °C is ``cold_kpa``.

    Ideal gas at constant volume: absolute pressure is proportional to absolute temperature,
    so a tyre reads about 1 kPa more per 3 K.
    """
    if cold_kpa <= 0:
        return 0.0
    absolute = (cold_kpa + ATMOSPHERE_KPA) * (tyre_c + 273.15) / (TYRE_REFERENCE_C + 273.15)
    gauge = absolute - ATMOSPHERE_KPA
    return gauge if gauge > 0.0 else 0.0  # max(0.0, gauge), as a comparison (hot path)


def engine_rpm(speed_kmh: float) -> float:
    """A plausible engine speed for a road speed: idle, then rising through the gears."""
    rpm = 900.0 + speed_kmh * 18.0
    rpm = rpm if rpm > 800.0 else 800.0  # min(3500.0, max(800.0, rpm)), as comparisons
    return rpm if rpm < 3500.0 else 3500.0
