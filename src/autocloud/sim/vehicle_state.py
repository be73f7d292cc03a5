"""The physical state of one simulated car, and how a fresh car's state is drawn.

What: :class:`VehicleState`, a plain mutable record of everything the model integrates
(odometer, energy, temperatures, 12 V battery, tyres, body, hidden degradation), the rare
physical faults in :class:`Hazards`, and :func:`initial_state`, which draws a used car of a
given spec from a seeded ``random.Random``.

Why a plain record: the model, the DTC monitor, the VSS readout and the simulator driver all
look at the same facts; a dataclass with named fields keeps that cheap and explicit. Fields
marked *hidden* are ground truth the car does not report directly (12 V health, pad
thickness, leak rates, stuck thermostat...), exported by
:meth:`autocloud.sim.model.VehicleModel.ground_truth` for predictive-maintenance scoring.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from autocloud.sim.energy import VehicleSpec

__all__ = ["NO_HAZARDS", "TYRES", "Hazards", "VehicleState", "initial_state", "next_onset_s"]

TYRES: tuple[str, ...] = (
    "Row1.Wheel.Left",
    "Row1.Wheel.Right",
    "Row2.Wheel.Left",
    "Row2.Wheel.Right",
)
"""The four wheels in VSS naming, in the order of the per-tyre lists of the state."""


@dataclass(frozen=True, slots=True)
class Hazards:
    """How often rare physical faults happen: probabilities for a fresh car, rates after.

    Defaults give a 200-car demo a few visible faults per hour: some cars start with a slow
    leak, a stuck-open thermostat, an aged catalyst or a vacuum leak; misfire episodes and new
    leaks appear at random; a refuel now and then leaves the filler cap loose.
    """

    leak_at_start: float = 0.02
    leak_per_h: float = 1 / 5000
    misfire_per_engine_h: float = 0.02
    thermostat_stuck: float = 0.01
    aged_catalyst: float = 0.02
    vacuum_leak: float = 0.01
    loose_cap_per_refuel: float = 0.03


NO_HAZARDS = Hazards(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
"""No random physical faults: for tests that want plain physics."""


@dataclass(slots=True)
class VehicleState:
    """Everything the model integrates; units in the field names, SI otherwise."""

    ambient_c: float
    odometer_m: float = 0.0
    soc_pct: float = 0.0  # traction battery, physical
    regen_credit_kwh: float = 0.0  # recovered while moving, spent before the battery
    hv_power_w: float = 0.0  # traction battery power, positive when charging
    hv_battery_c: float = 15.0
    traction_soh_pct: float = 100.0
    fuel_l: float = 0.0
    fuel_used_l: float = 0.0
    fuel_distance_m: float = 0.0
    # 12 V system
    lv_soc: float = 1.0  # 0..1
    lv_health: float = 1.0  # hidden: 1 new, ~0.3 worn out
    lv_voltage: float = 12.6
    start_reading: bool = False  # the current reading is the dip of a start (crank)
    start_pending: bool = False  # the next step still reports that dip
    start_dip_v: float | None = None  # hidden: lowest voltage of the last start
    # tyres (order of TYRES)
    tyre_cold_kpa: list[float] = field(default_factory=lambda: [0.0] * 4)
    tyre_leak_kpa_h: list[float] = field(default_factory=lambda: [0.0] * 4)  # hidden
    tyre_c: float = 15.0
    # engine
    coolant_c: float = 15.0
    oil_c: float = 15.0
    engine_hours: float = 0.0
    engine_run_s_cycle: float = 0.0  # engine running time since the ignition went on
    ignition_on: bool = False
    engine_running: bool = False
    thermostat_stuck_open: bool = False  # hidden
    catalyst_efficiency: float = 0.98  # hidden
    vacuum_leak: bool = False  # hidden
    fuel_cap_loose: bool = False  # hidden
    misfire_cylinder: int = -1  # hidden: -1 none, 0 random/multiple, 1-4 one cylinder
    misfire_left_s: float = 0.0
    next_misfire_engine_s: float = math.inf  # engine time until the next misfire episode
    next_leak_s: float = math.inf  # time until the next slow leak starts
    # body and cabin
    cabin_c: float = 15.0
    hvac_on: bool = False
    hvac_target_c: float = 21.0
    lights_on: bool = False
    locked: bool = True
    doors_open: list[bool] = field(default_factory=lambda: [False] * 4)
    windows_pct: list[int] = field(default_factory=lambda: [0] * 4)
    trunk_open: bool = False
    hood_open: bool = False
    # motion, charging, service
    speed_kmh: float = 0.0
    moving: bool = False
    parked: bool = True
    plugged_in: bool = False
    charging: bool = False
    charger_kw: float = 0.0  # power the car draws from the charger before the taper
    charge_limit_pct: int = 80
    brake_pad_mm: float = 11.0  # hidden: front pad friction material left
    last_service_odometer_m: float = 0.0
    dtcs: list[str] = field(default_factory=list)  # active codes, set by the DTC monitor


def next_onset_s(rng: random.Random, rate_per_h: float) -> float:
    """Seconds until the next event of a Poisson process with ``rate_per_h``; inf if 0."""
    return rng.expovariate(rate_per_h / 3600.0) if rate_per_h > 0 else math.inf


def initial_state(
    spec: VehicleSpec, rng: random.Random, ambient_c: float, hazards: Hazards
) -> VehicleState:
    """A used car of ``spec``, parked, locked and cold, drawn from ``rng``.

    Mileage, energy levels, pad wear and tyre pressures vary between cars; most 12 V
    batteries are healthy, a few are weak (health skewed towards 1 by a cube). The draws
    happen in a fixed order, so the same seed gives the same car.
    """
    odometer_m = rng.uniform(5_000.0, 120_000.0) * 1000.0
    state = VehicleState(
        ambient_c=ambient_c,
        odometer_m=odometer_m,
        soc_pct=rng.uniform(30.0, 95.0) if spec.electric else 0.0,
        traction_soh_pct=rng.uniform(88.0, 100.0) if spec.electric else 100.0,
        fuel_l=spec.tank_l * rng.uniform(0.2, 0.95),
        lv_soc=rng.uniform(0.75, 1.0),
        lv_health=1.0 - 0.6 * rng.random() ** 3,
        tyre_cold_kpa=[spec.tyre_kpa + rng.uniform(-15.0, 5.0) for _ in range(4)],
        brake_pad_mm=rng.uniform(3.5, 11.0),
        hvac_target_c=rng.choice((20.0, 21.0, 21.5, 22.0)),
        charge_limit_pct=rng.choice((80, 80, 90, 100)),
        last_service_odometer_m=odometer_m - rng.uniform(0.0, spec.service_interval_km) * 1000,
        hv_battery_c=ambient_c,
        tyre_c=ambient_c,
        coolant_c=ambient_c,
        oil_c=ambient_c,
        cabin_c=ambient_c,
    )
    if rng.random() < hazards.leak_at_start:
        state.tyre_leak_kpa_h[rng.randrange(4)] = rng.uniform(0.3, 3.0)
    if spec.combustion:
        state.thermostat_stuck_open = rng.random() < hazards.thermostat_stuck
        if rng.random() < hazards.aged_catalyst:
            state.catalyst_efficiency = rng.uniform(0.6, 0.84)
        state.vacuum_leak = rng.random() < hazards.vacuum_leak
        state.next_misfire_engine_s = next_onset_s(rng, hazards.misfire_per_engine_h)
    state.next_leak_s = next_onset_s(rng, hazards.leak_per_h)
    return state
