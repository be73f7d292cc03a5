"""The physical model of one simulated car, advanced tick by tick by the simulator.

What: :class:`VehicleModel` integrates a car's energy (traction battery, fuel), odometer,
temperatures (coolant, oil, cabin, tyres, battery), 12 V battery, tyre pressures and wear
from the motion the driver reports each tick, and reads the result out as VSS 6.0 signals.

Why pure: no clock, no I/O, no network — values in, values out, randomness only from the
``random.Random`` it is given — so a seed reproduces a fleet exactly, and tests can drive a
car through a day in milliseconds. Location, speed and heading belong to the driver, which
adds them to :meth:`VehicleModel.signals`.

Conventions the simulator relies on:

* **Odometer = distance driven.** ``step`` takes the driver's ``distance_m`` (the distance it
  advanced along the route) and adds exactly that; without it, ``speed * dt``. So the
  odometer matches the routed distance, not a re-integration of rounded speeds.
* **State of charge never rises while moving.** Regenerative braking is credited to a small
  regeneration account that pays for the next consumption before the battery does; the
  battery itself only falls during a trip, stops at red lights included. Whatever is left
  in the account when the car is parked is put into the battery then. Energy is
  conserved; only the timing of the reading differs from a real car, which would show a
  brief rise on a long descent.
* **Cranking shows once.** A start's 12 V dip is the reading right after ``start_engine``
  and after the step that follows it (a telematics unit reports the minimum cranking
  voltage), whatever the step length.
"""

from __future__ import annotations

import random
from typing import Final

from autocloud.sim.conditions import (
    LV_CRANK_WEAR,
    advance_low_voltage,
    advance_temperatures,
    advance_tyres_and_hazards,
    rest_voltage,
    start_dip_v,
)
from autocloud.sim.energy import (
    AIR_DENSITY,
    CHARGE_EFFICIENCY,
    J_PER_KWH,
    PETROL_J_PER_L,
    G,
    Powertrain,
    VehicleSpec,
    aux_power_w,
    charge_taper,
)
from autocloud.sim.readout import Reading, Readout, signal_paths, vss_signals
from autocloud.sim.vehicle_state import (
    TYRES,
    Hazards,
    VehicleState,
    initial_state,
)

__all__ = ["Hazards", "VehicleModel", "VehicleState"]

ALTERNATOR_EFFICIENCY: Final = 0.55  # engine shaft to 12 V
PARKED_DRAIN_W: Final = 10.0  # an electric car's telematics and battery management asleep
PAD_WEAR_MM_PER_J: Final = 1.6e-9  # ~8 mm of pad per 5,000 MJ of friction braking


class VehicleModel:
    """One car: a spec, a :class:`VehicleState` and the physics that advance it."""

    __slots__ = (
        "_aux_key",
        "_aux_w",
        "_drag_k",
        "_readout",
        "_rolling_n",
        "hazards",
        "rng",
        "spec",
        "state",
    )

    def __init__(
        self,
        spec: VehicleSpec,
        rng: random.Random,
        *,
        ambient_c: float = 15.0,
        hazards: Hazards | None = None,
    ) -> None:
        self.spec = spec
        self.rng = rng
        self.hazards = hazards if hazards is not None else Hazards()
        self.state = initial_state(spec, rng, ambient_c, self.hazards)
        self.state.lv_voltage = rest_voltage(self.state)
        self._readout = Readout(spec)
        # road_load_n's spec terms, as it computes them
        self._rolling_n = spec.mass_kg * G * spec.rolling_resistance
        self._drag_k = 0.5 * AIR_DENSITY * spec.drag_area_m2
        # the inputs of the last aux_power_w (ambient, target, hvac on, lights on), its watts
        self._aux_key: tuple[object, ...] = (None, None, None, None)
        self._aux_w = 0.0

    # --- controls --------------------------------------------------------------------------

    def start_engine(self) -> None:
        """Ignition on (READY for an electric car); a starter motor cranks an ICE's engine."""
        s, spec = self.state, self.spec
        if s.ignition_on:
            return
        s.ignition_on = True
        s.engine_run_s_cycle = 0.0
        s.engine_running = spec.powertrain is Powertrain.ICE
        s.start_dip_v = start_dip_v(spec, s)
        s.lv_voltage = s.start_dip_v
        s.start_reading = s.start_pending = True
        if spec.has_starter:
            s.lv_health = max(0.0, s.lv_health - LV_CRANK_WEAR)

    def stop_engine(self) -> None:
        """Ignition off: the engine stops and the car goes to sleep."""
        self.state.ignition_on = False
        self.state.engine_running = False

    def lock(self) -> None:
        """Lock the doors and the trunk (central locking)."""
        self.state.locked = True

    def unlock(self) -> None:
        """Unlock the doors and the trunk."""
        self.state.locked = False

    def plug_in(self) -> None:
        """Connect a charging cable; charging starts when ``step`` gets ``charging_kw``."""
        if not self.spec.electric:
            raise ValueError(f"a {self.spec.name} has no charging port")
        self.state.plugged_in = True

    def unplug(self) -> None:
        """Disconnect the charging cable."""
        self.state.plugged_in = False
        self.state.charging = False

    def refuel(self) -> None:
        """Fill the tank; now and then the filler cap is left loose (an EVAP leak)."""
        if not self.spec.combustion:
            raise ValueError(f"a {self.spec.name} has no fuel tank")
        self.state.fuel_l = self.spec.tank_l
        self.state.fuel_cap_loose = self.rng.random() < self.hazards.loose_cap_per_refuel

    def start_leak(self, tyre: int, kpa_per_h: float) -> None:
        """Give tyre ``tyre`` (index into ``TYRES``) a slow leak, e.g. a nail: scheduled faults."""
        self.state.tyre_leak_kpa_h[tyre] = kpa_per_h

    def inflate_tyres(self) -> None:
        """Repair leaks and set every tyre to the recommended cold pressure."""
        self.state.tyre_cold_kpa = [self.spec.tyre_kpa] * 4
        self.state.tyre_leak_kpa_h = [0.0] * 4

    # --- physics ---------------------------------------------------------------------------

    def step(
        self,
        dt_s: float,
        speed_kmh: float,
        accel_ms2: float,
        *,
        moving: bool,
        parked: bool,
        charging_kw: float = 0.0,
        hvac_on: bool,
        lights_on: bool,
        distance_m: float | None = None,
    ) -> None:
        """Advance the car by ``dt_s`` seconds of what the driver did.

        ``speed_kmh``/``accel_ms2`` are the speed at the end of the tick and the mean
        acceleration over it; ``distance_m`` the distance covered (default ``speed * dt``).
        A car that moves has its ignition on (``start_engine`` is implied). ``charging_kw``
        is the charger's power; it charges only a parked, plugged-in electric car.
        """
        if dt_s < 0 or speed_kmh < 0 or (distance_m is not None and distance_m < 0):
            raise ValueError("dt_s, speed_kmh and distance_m must not be negative")
        distance = speed_kmh / 3.6 * dt_s if distance_m is None else distance_m
        self.advance(
            dt_s, speed_kmh, accel_ms2, moving, parked, charging_kw, hvac_on, lights_on, distance
        )

    def advance(
        self,
        dt_s: float,
        speed_kmh: float,
        accel_ms2: float,
        moving: bool,
        parked: bool,
        charging_kw: float,
        hvac_on: bool,
        lights_on: bool,
        distance_m: float,
    ) -> None:
        """:meth:`step` with every argument given, in order, and not checked: the simulator's
        tick loop calls this for every car every second (keywords and checks cost there)."""
        s = self.state
        if moving and not s.ignition_on:
            self.start_engine()
        s.speed_kmh, s.moving, s.parked = speed_kmh, moving, parked and not moving
        s.hvac_on, s.lights_on = hvac_on, lights_on
        if dt_s > 0:
            reading_was_start, s.start_pending = s.start_pending, False
            self._drive(dt_s, distance_m if moving else 0.0, accel_ms2)
            if charging_kw > 0:
                self._charge(dt_s, charging_kw)
            else:  # what _charge concludes without a charger, in short
                s.charging, s.charger_kw = False, 0.0
            advance_temperatures(s, dt_s)
            advance_low_voltage(self.spec, s, dt_s, reading_was_start)
            advance_tyres_and_hazards(s, self.rng, self.hazards, dt_s)
        s.odometer_m += distance_m

    def _drive(self, dt: float, distance: float, accel: float) -> None:
        """Energy for motion and auxiliaries, regeneration, fuel, brake wear."""
        s, spec = self.state, self.spec
        # max(0.0, x) and min(a, b) written out as comparisons below (same values: the hot
        # loop of the simulator runs this for every car every second); road_load_n inlined
        # with its spec terms computed once (`_rolling_n`, `_drag_k`: the same floats).
        if s.moving:
            speed = s.speed_kmh / 3.6
            rolling = self._rolling_n if speed > 0 else 0.0
            force = spec.mass_kg * accel + rolling + self._drag_k * speed * speed
            wheel_j = force * distance
        else:
            wheel_j = 0.0
        traction_j = wheel_j if wheel_j > 0.0 else 0.0
        braking_j = -wheel_j if -wheel_j > 0.0 else 0.0
        if braking_j:
            regen_cap = spec.max_regen_kw * 1000.0 * dt
            regen_j = regen_cap if regen_cap < braking_j else braking_j
            pad = s.brake_pad_mm - (braking_j - regen_j) * PAD_WEAR_MM_PER_J
            s.brake_pad_mm = pad if pad > 0.0 else 0.0
            s.regen_credit_kwh += regen_j * spec.regen_efficiency / J_PER_KWH
        if s.ignition_on:
            # aux_power_w of these inputs, computed again only when one of them is another
            # object (the same float objects, the bool singletons: nothing changed)
            ambient, target, hvac_on, lights_on = (
                s.ambient_c,
                s.hvac_target_c,
                s.hvac_on,
                s.lights_on,
            )
            key = self._aux_key
            if (
                ambient is not key[0]
                or target is not key[1]
                or hvac_on is not key[2]
                or lights_on is not key[3]
            ):
                self._aux_key = (ambient, target, hvac_on, lights_on)
                self._aux_w = aux_power_w(
                    spec.powertrain, ambient, target, hvac_on=hvac_on, lights_on=lights_on
                )
            aux_j = self._aux_w * dt
        else:
            aux_j = PARKED_DRAIN_W * dt if spec.electric and not s.plugged_in else 0.0
        if spec.powertrain is Powertrain.HYBRID:
            s.engine_running = (
                s.ignition_on
                and s.moving
                and (
                    s.soc_pct <= spec.hold_soc_pct
                    or s.speed_kmh > spec.ev_max_kmh
                    or traction_j / dt > spec.ev_max_kw * 1000.0
                )
            )
        fuel_j = 0.0
        if spec.electric:
            need_j = traction_j / spec.drive_efficiency + aux_j
            credit_j = s.regen_credit_kwh * J_PER_KWH
            credit_j = need_j if need_j < credit_j else credit_j
            s.regen_credit_kwh -= credit_j / J_PER_KWH
            need_j -= credit_j
            if s.engine_running:
                fuel_j, need_j = need_j * spec.drive_efficiency / spec.engine_efficiency, 0.0
            soc = s.soc_pct - need_j / J_PER_KWH / spec.battery_kwh * 100.0
            s.soc_pct = soc if soc > 0.0 else 0.0
            s.hv_power_w = -need_j / dt
            if s.parked and s.regen_credit_kwh > 0:  # settle the account when parked
                s.soc_pct = min(100.0, s.soc_pct + s.regen_credit_kwh / spec.battery_kwh * 100)
                s.regen_credit_kwh = 0.0
        elif s.engine_running:
            fuel_j = (traction_j + aux_j / ALTERNATOR_EFFICIENCY) / spec.engine_efficiency
        if s.engine_running:
            litres = fuel_j / PETROL_J_PER_L + spec.idle_fuel_lph * dt / 3600.0
            litres = s.fuel_l if s.fuel_l < litres else litres
            s.fuel_l -= litres
            s.fuel_used_l += litres
        s.fuel_distance_m += distance if spec.combustion else 0.0

    def _charge(self, dt: float, charger_kw: float) -> None:
        """Charge a parked, plugged-in car up to its limit, tapering above 80 %."""
        s, spec = self.state, self.spec
        limit = float(s.charge_limit_pct)
        s.charging = (
            spec.electric and s.plugged_in and s.parked and charger_kw > 0 and s.soc_pct < limit
        )
        s.charger_kw = min(charger_kw, spec.max_charge_kw) if s.charging else 0.0
        if not s.charging:
            return
        power_kw = s.charger_kw * charge_taper(s.soc_pct)
        gained_pct = power_kw * dt / 3600.0 * CHARGE_EFFICIENCY / spec.battery_kwh * 100.0
        before = s.soc_pct
        s.soc_pct = min(limit, before + gained_pct)
        s.hv_power_w = (s.soc_pct - before) / 100.0 * spec.battery_kwh * J_PER_KWH / dt

    # --- readout ---------------------------------------------------------------------------

    def signals(self) -> dict[str, Reading]:
        """The car's current VSS 6.0 values (all valid per the platform catalog)."""
        return vss_signals(self.spec, self.state)

    def signal_paths(self) -> tuple[str, ...]:
        """The paths of :meth:`values`, in order (the same for every reading of this car)."""
        return signal_paths(self.spec)

    def values(self) -> list[Reading]:
        """:meth:`signals` as a list in the order of :meth:`signal_paths` (no dict built)."""
        return self._readout.values(self.state)

    def ground_truth(self) -> dict[str, float]:
        """Hidden degradation and faults, for scoring predictive maintenance later."""
        s = self.state
        truth = {
            "lv_battery.health": s.lv_health,
            "lv_battery.state_of_charge": s.lv_soc,
            "brake_pad_mm": s.brake_pad_mm,
            "traction_battery.soh_pct": s.traction_soh_pct,
            "thermostat_stuck_open": float(s.thermostat_stuck_open),
            "catalyst_efficiency": s.catalyst_efficiency,
            "vacuum_leak": float(s.vacuum_leak),
            "fuel_cap_loose": float(s.fuel_cap_loose),
            "misfire_cylinder": float(s.misfire_cylinder),
        }
        for name, leak, cold in zip(TYRES, s.tyre_leak_kpa_h, s.tyre_cold_kpa, strict=True):
            truth[f"tyre.{name}.leak_kpa_per_h"] = leak
            truth[f"tyre.{name}.cold_kpa"] = cold
        return truth
