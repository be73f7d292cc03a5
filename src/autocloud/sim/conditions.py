"""The slow processes of a simulated car: temperatures, the 12 V battery, tyres, fault onsets.

What: functions that advance one :class:`VehicleState` by ``dt`` seconds — engine warm-up
and Newton cooling, cabin/battery/tyre temperatures, the 12 V battery's charge, voltage and
ageing, slow tyre leaks, and the random onset of leaks and misfire episodes.

Why apart from :mod:`autocloud.sim.model`: these evolve on minutes to months, independent of
the energy bookkeeping of a tick; keeping them here keeps both modules short. Like the model
they are pure: the state and a seeded ``random.Random`` in, the state updated, nothing else.
"""

from __future__ import annotations

import random
from math import exp
from typing import Final

from autocloud.sim.energy import Powertrain, VehicleSpec
from autocloud.sim.vehicle_state import TYRES, Hazards, VehicleState, next_onset_s

__all__ = [
    "advance_low_voltage",
    "advance_temperatures",
    "advance_tyres_and_hazards",
    "rest_voltage",
    "start_dip_v",
]

NATURAL_LEAK_KPA_H: Final = 0.004  # permeation through the rubber: about 3 kPa a month
# 12 V battery, per hour: charge from the alternator/DC-DC, drain asleep, ageing.
LV_CHARGE_PER_H: Final = 0.25
LV_DRAIN_PER_H: Final = 0.0006  # ~30 mA of sleeping control units on a 50 Ah battery
LV_WEAK_DRAIN_PER_H: Final = 0.002  # extra self-discharge of a worn battery (health 0)
LV_AGEING_PER_H: Final = 0.2 / 8760  # calendar ageing: a fifth of its life per year
LV_DEEP_DISCHARGE_AGEING: Final = 3.0  # ageing runs this much faster below half charge
LV_CRANK_WEAR: Final = 5e-5  # health lost per start of a starter motor
LV_CHARGING_V: Final = 14.1
COLD_CRANK_V_PER_K: Final = 0.03  # a starter draws more below 0 °C: extra dip per kelvin

# Engine temperatures: (virtual target °C, regulated °C, warm-up tau s, cool-down tau s).
# Warming towards a virtual target above the thermostat's setting and clamping there gives
# the real shape: a near-linear rise for ~8-10 min, then flat at the regulated temperature.
_COOLANT: Final = (130.0, 90.0, 480.0, 3600.0)
_OIL: Final = (135.0, 100.0, 720.0, 4500.0)
STUCK_OPEN_RISE_C: Final = 50.0  # a stuck-open thermostat: coolant settles at ambient + 50
STUCK_OPEN_SLOWER: Final = 1.5
STANDSTILL_SLOWER: Final = 1.5  # an idling engine warms more slowly than a driven one
# Other temperatures: (tau s while active, tau s at rest).
_CABIN_TAU: Final = (300.0, 1800.0)
_HV_BATTERY: Final = (10.0, 1800.0)  # kelvin above ambient while driven/charged, tau
_TYRE: Final = (5.0, 0.1, 900.0)  # kelvin above ambient moving, plus per km/h, tau


def advance_temperatures(s: VehicleState, dt: float) -> None:
    """Engine warm-up and Newton cooling; cabin, traction battery and tyres follow.

    Each temperature follows :func:`autocloud.sim.energy.newton`, written out here
    (``target + (temp - target) * exp(-dt / tau)``, the same floats) and min/max as
    comparisons: this runs for every car every second of the simulation.
    """
    ambient = s.ambient_c
    if s.engine_running:
        s.engine_hours += dt / 3600.0
        s.engine_run_s_cycle += dt
        slower = 1.0 if s.moving else STANDSTILL_SLOWER
        virtual, regulated, tau, _ = _COOLANT
        stuck = s.thermostat_stuck_open
        if stuck:
            virtual, regulated = ambient + STUCK_OPEN_RISE_C, virtual
            slower *= STUCK_OPEN_SLOWER
        coolant = virtual + (s.coolant_c - virtual) * exp(-dt / (tau * slower))
        coolant = coolant if coolant < regulated else regulated  # min(regulated, coolant)
        s.coolant_c = coolant
        virtual, regulated, tau, _ = _OIL
        oil = virtual + (s.oil_c - virtual) * exp(-dt / (tau * slower))
        oil = oil if oil < regulated else regulated
        if stuck:
            warmest = coolant + 10.0
            oil = warmest if warmest < oil else oil  # min(oil, warmest)
        if oil > s.oil_c:  # max(s.oil_c, oil)
            s.oil_c = oil
    else:
        s.coolant_c = ambient + (s.coolant_c - ambient) * exp(-dt / _COOLANT[3])
        s.oil_c = ambient + (s.oil_c - ambient) * exp(-dt / _OIL[3])
    if s.ignition_on and s.hvac_on:
        target, tau = s.hvac_target_c, _CABIN_TAU[0]
    else:
        target, tau = ambient, _CABIN_TAU[1]
    s.cabin_c = target + (s.cabin_c - target) * exp(-dt / tau)
    rise, tau = _HV_BATTERY
    target = ambient + (rise if s.moving or s.charging else 0.0)
    s.hv_battery_c = target + (s.hv_battery_c - target) * exp(-dt / tau)
    base, per_kmh, tau = _TYRE
    target = ambient + (base + per_kmh * s.speed_kmh if s.moving else 0)
    s.tyre_c = target + (s.tyre_c - target) * exp(-dt / tau)


def rest_voltage(s: VehicleState) -> float:
    """Open-circuit 12 V voltage: 12.7 V full and healthy, lower when flat or worn."""
    return 11.9 + 0.8 * s.lv_soc - 0.3 * (1.0 - s.lv_health)


def start_dip_v(spec: VehicleSpec, s: VehicleState) -> float:
    """Lowest 12 V voltage at a start: deep for a starter motor, deeper when worn or cold."""
    cold = max(0.0, -s.ambient_c) * COLD_CRANK_V_PER_K if spec.has_starter else 0.0
    sag = spec.start_sag_v + spec.weak_sag_v * (1.0 - s.lv_health) + cold
    return max(0.0, rest_voltage(s) - sag)


def advance_low_voltage(spec: VehicleSpec, s: VehicleState, dt: float, show_start: bool) -> None:
    """12 V battery: charged while the car is on, drained asleep, ageing slowly.

    ``show_start`` makes this step's reading the dip of the start that preceded it.
    """
    hours = dt / 3600.0
    # An ICE's alternator charges while its engine runs; an electric car's DC-DC converter
    # whenever the car is on or charging.
    electric = spec.powertrain is not Powertrain.ICE
    source = s.ignition_on or s.charging if electric else s.engine_running
    if source:
        soc = s.lv_soc + LV_CHARGE_PER_H * hours
        s.lv_soc = soc if soc < 1.0 else 1.0
    else:
        drain = LV_DRAIN_PER_H + LV_WEAK_DRAIN_PER_H * (1.0 - s.lv_health)
        soc = s.lv_soc - drain * hours
        s.lv_soc = soc if soc > 0.0 else 0.0
    deep = LV_DEEP_DISCHARGE_AGEING if s.lv_soc < 0.5 else 1.0
    health = s.lv_health - LV_AGEING_PER_H * deep * hours
    s.lv_health = health if health > 0.0 else 0.0  # max(0.0, ·) as a comparison: hot path
    s.start_reading = show_start and s.start_dip_v is not None
    if s.start_reading and s.start_dip_v is not None:
        s.lv_voltage = s.start_dip_v
    elif source:
        s.lv_voltage = LV_CHARGING_V - 0.2 * (1.0 - s.lv_soc)
    else:
        s.lv_voltage = rest_voltage(s)


def advance_tyres_and_hazards(
    s: VehicleState, rng: random.Random, hazards: Hazards, dt: float
) -> None:
    """Slow leaks, and the random onset of new leaks and of misfire episodes.

    Onsets are drawn as waiting times (exponential, so a Poisson process) when the previous
    one happens, not by a coin toss per tick: the result does not depend on the tick length
    and costs no random draw on an ordinary tick.
    """
    hours = dt / 3600.0
    # per tyre: max(0.0, kpa - (leak + NATURAL_LEAK_KPA_H) * hours), written out for the
    # four tyres (same floats; a comprehension over zip costs twice as much, every second)
    (a, b, c, d), (la, lb, lc, ld) = s.tyre_cold_kpa, s.tyre_leak_kpa_h
    a -= (la + NATURAL_LEAK_KPA_H) * hours
    b -= (lb + NATURAL_LEAK_KPA_H) * hours
    c -= (lc + NATURAL_LEAK_KPA_H) * hours
    d -= (ld + NATURAL_LEAK_KPA_H) * hours
    s.tyre_cold_kpa = [
        a if a > 0.0 else 0.0,
        b if b > 0.0 else 0.0,
        c if c > 0.0 else 0.0,
        d if d > 0.0 else 0.0,
    ]
    s.next_leak_s -= dt
    if s.next_leak_s <= 0:
        s.tyre_leak_kpa_h[rng.randrange(len(TYRES))] = rng.uniform(0.3, 3.0)
        s.next_leak_s = next_onset_s(rng, hazards.leak_per_h)
    if s.misfire_left_s > 0:
        s.misfire_left_s -= dt
        if s.misfire_left_s <= 0:
            s.misfire_cylinder = -1
    if s.engine_running:
        s.next_misfire_engine_s -= dt
        if s.next_misfire_engine_s <= 0:
            s.misfire_cylinder = rng.randrange(5)  # 0: random/multiple, else one cylinder
            s.misfire_left_s = rng.uniform(60.0, 600.0)
            s.next_misfire_engine_s = next_onset_s(rng, hazards.misfire_per_engine_h)
