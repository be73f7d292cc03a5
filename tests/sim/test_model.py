"""The vehicle model's physics: energy, odometer, charging, temperatures, 12 V, tyres, wear."""

import dataclasses
import math
import random
from collections.abc import Iterator
from itertools import pairwise

import pytest

from autocloud.domain.catalog import Catalog
from autocloud.sim.energy import (
    PRESET_FOR,
    PRESETS,
    Powertrain,
    charge_taper,
    newton,
    seconds_to_charge,
    tyre_hot_kpa,
)
from autocloud.sim.model import VehicleModel
from autocloud.sim.readout import Reading
from autocloud.sim.vehicle_state import NO_HAZARDS, Hazards

CATALOG = Catalog.builtin(None)
SOC = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"
FUEL = "Vehicle.Powertrain.FuelSystem.AbsoluteLevel"
ODO = "Vehicle.TraveledDistance"
VOLT = "Vehicle.LowVoltageBattery.CurrentVoltage"
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
OIL = "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature"
BEV_RANGE = "Vehicle.Powertrain.TractionBattery.Range"
CHARGING = "Vehicle.Powertrain.TractionBattery.Charging.IsCharging"
TIME_LEFT = "Vehicle.Powertrain.TractionBattery.Charging.TimeToComplete"
RL_PRESSURE = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure"
RL_LOW = "Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.IsPressureLow"
FL_PRESSURE = "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure"

Tick = tuple[float, float, float]  # speed km/h at the end, mean acceleration, distance m


def drive_profile(seconds: int) -> Iterator[Tick]:
    """Stop-and-go town driving and a stretch of motorway, in 1 s ticks with exact distances.

    Accelerates at 1.5 m/s² to a cruise speed, holds it, brakes at 2.5 m/s² to a stop and
    waits at a light; cruise speeds cycle through town, arterial and motorway.
    """
    legs = ((50, 40), (70, 60), (30, 20), (120, 240), (50, 30))  # (km/h, cruise s)
    elapsed = 0
    leg = 0
    while True:
        target_ms, cruise = legs[leg % len(legs)][0] / 3.6, legs[leg % len(legs)][1]
        leg += 1
        phases = ((1.5, target_ms), (0.0, cruise), (-2.5, 0.0), (0.0, -20))
        v = 0.0
        for accel, goal in phases:
            if accel == 0.0:
                for _ in range(int(abs(goal))):
                    yield v * 3.6, 0.0, v
                    elapsed += 1
                    if elapsed >= seconds:
                        return
                continue
            while (accel > 0 and v < goal) or (accel < 0 and v > goal):
                new = min(goal, v + accel) if accel > 0 else max(goal, v + accel)
                yield new * 3.6, new - v, (v + new) / 2
                v = new
                elapsed += 1
                if elapsed >= seconds:
                    return


def drive(model: VehicleModel, seconds: int, *, hvac_on: bool = True) -> list[dict[str, Reading]]:
    """Drive the profile; the signals after every tick."""
    model.start_engine()
    readings: list[dict[str, Reading]] = []
    for speed, accel, distance in drive_profile(seconds):
        model.step(
            1.0,
            speed,
            accel,
            moving=speed > 0 or distance > 0,
            parked=False,
            hvac_on=hvac_on,
            lights_on=False,
            distance_m=distance,
        )
        readings.append(dict(model.signals()))
    return readings


def park(model: VehicleModel, seconds: float, dt: float = 60.0, charging_kw: float = 0.0) -> None:
    model.stop_engine()
    for _ in range(round(seconds / dt)):
        model.step(
            dt,
            0.0,
            0.0,
            moving=False,
            parked=True,
            charging_kw=charging_kw,
            hvac_on=False,
            lights_on=False,
        )


def fresh(powertrain: Powertrain, seed: int = 3, **state: object) -> VehicleModel:
    model = VehicleModel(PRESET_FOR[powertrain], random.Random(seed), hazards=NO_HAZARDS)
    for name, value in state.items():
        setattr(model.state, name, value)
    return model


def num(signals: dict[str, Reading], path: str) -> float:
    value = signals[path]
    assert isinstance(value, int | float) and not isinstance(value, bool), path
    return float(value)


def invalid(signals: dict[str, Reading]) -> dict[str, str]:
    return {p: CATALOG.check(p, v).detail for p, v in signals.items() if not CATALOG.check(p, v).ok}


def test_presets_are_realistic() -> None:
    assert {s.powertrain for s in PRESETS.values()} == set(Powertrain)
    bev = PRESET_FOR[Powertrain.BEV]
    assert 55 <= bev.battery_kwh <= 60 and bev.tank_l == 0
    assert PRESET_FOR[Powertrain.HYBRID].electric and PRESET_FOR[Powertrain.HYBRID].combustion
    assert not PRESET_FOR[Powertrain.ICE].electric and PRESET_FOR[Powertrain.ICE].tank_l > 30


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_a_drive_uses_energy_monotonically_and_counts_every_metre(powertrain: Powertrain) -> None:
    model = fresh(powertrain, soc_pct=90.0, fuel_l=30.0)
    start = model.signals()
    distances = [d for _s, _a, d in drive_profile(1800)]
    readings = drive(model, 1800)
    for before, after in zip([start, *readings], readings, strict=False):
        for path in (SOC, FUEL):
            if path in after:
                assert num(after, path) <= num(before, path), path
    moved = num(readings[-1], ODO) - num(start, ODO)
    assert abs(moved - sum(distances)) <= 1
    assert sum(distances) > 20_000  # the profile really covers town and motorway
    if model.spec.electric:
        assert num(readings[-1], SOC) < num(start, SOC)
    if powertrain is Powertrain.ICE:
        assert num(readings[-1], FUEL) < num(start, FUEL)


@pytest.mark.parametrize("powertrain", list(Powertrain))
def test_every_signal_is_valid_in_every_state(powertrain: Powertrain) -> None:
    model = fresh(powertrain)
    assert invalid(dict(model.signals())) == {}
    model.start_engine()
    assert invalid(dict(model.signals())) == {}
    for reading in drive(model, 600):
        assert invalid(reading) == {}
    if model.spec.electric:
        model.plug_in()
        park(model, 3600, charging_kw=11.0)
        assert invalid(dict(model.signals())) == {}
    model.state.dtcs = ["P0301", "P0562"]
    model.state.tyre_cold_kpa[0] = 0.0
    park(model, 86_400 * 3, dt=3600)
    assert invalid(dict(model.signals())) == {}


def test_integer_signals_are_ints_and_the_catalog_needs_no_coercion() -> None:
    for powertrain in Powertrain:
        for path, value in fresh(powertrain).signals().items():
            spec = CATALOG.spec(path)
            assert spec is not None, path
            if spec.datatype.startswith(("uint", "int")):
                assert type(value) is int, path
            if spec.datatype in ("float", "double"):
                assert type(value) is float, path


def test_location_speed_and_heading_are_left_to_the_driver() -> None:
    signals = fresh(Powertrain.BEV).signals()
    assert not [p for p in signals if p.startswith("Vehicle.CurrentLocation")]
    assert "Vehicle.Speed" not in signals


@pytest.mark.parametrize(
    ("powertrain", "low", "high"),
    [(Powertrain.BEV, 10.0, 22.0), (Powertrain.ICE, 4.0, 9.0)],
)
def test_consumption_is_that_of_a_real_car(powertrain: Powertrain, low: float, high: float) -> None:
    model = fresh(powertrain, soc_pct=90.0, fuel_l=30.0)
    start = dict(model.signals())
    end = drive(model, 1800)[-1]
    km = (num(end, ODO) - num(start, ODO)) / 1000
    if powertrain is Powertrain.BEV:
        used = (num(start, SOC) - num(end, SOC)) / 100 * model.spec.battery_kwh
    else:
        used = num(start, FUEL) - num(end, FUEL)
    assert low <= used / km * 100 <= high


def test_hvac_costs_range_in_the_cold() -> None:
    warm = fresh(Powertrain.BEV, soc_pct=90.0)
    cold = fresh(Powertrain.BEV, soc_pct=90.0, ambient_c=-5.0)
    drive(warm, 900, hvac_on=False)
    drive(cold, 900, hvac_on=True)
    assert cold.state.soc_pct < warm.state.soc_pct - 0.5


def test_regeneration_saves_energy_but_soc_never_rises_while_moving() -> None:
    with_regen = fresh(Powertrain.BEV, soc_pct=90.0)
    readings = drive(with_regen, 1200)
    moving = [num(r, SOC) for r in readings]
    assert all(b <= a for a, b in pairwise(moving))
    no_regen = dataclasses.replace(PRESET_FOR[Powertrain.BEV], max_regen_kw=0.0)
    without = VehicleModel(no_regen, random.Random(3), hazards=NO_HAZARDS)
    without.state.soc_pct = 90.0
    drive(without, 1200)
    assert with_regen.state.soc_pct > without.state.soc_pct + 0.3


def test_the_hybrid_drives_electrically_then_holds_its_charge_on_fuel() -> None:
    model = fresh(Powertrain.HYBRID, soc_pct=19.0, fuel_l=30.0)
    readings = drive(model, 1800)
    running = [r["Vehicle.Powertrain.CombustionEngine.IsRunning"] for r in readings]
    assert any(running)
    assert model.state.soc_pct >= model.spec.hold_soc_pct - 1.0
    assert num(readings[-1], FUEL) < 30.0
    assert num(readings[-1], COOLANT) > 60.0


def test_bev_range_falls_with_soc() -> None:
    model = fresh(Powertrain.BEV, soc_pct=80.0)
    readings = drive(model, 1800)
    ranges = [num(r, BEV_RANGE) for r in readings]
    assert all(b <= a for a, b in pairwise(ranges))
    first, last = readings[0], readings[-1]
    # the range estimate is proportional to the energy left
    ratio = (num(last, BEV_RANGE) / num(last, SOC)) / (num(first, BEV_RANGE) / num(first, SOC))
    assert ratio == pytest.approx(1.0, abs=0.01)
    assert readings[-1]["Vehicle.Powertrain.Range"] == readings[-1][BEV_RANGE]
    assert 250_000 < num(first, BEV_RANGE) * 100 / num(first, SOC) < 450_000


def test_charging_raises_soc_with_taper_and_stops_at_the_limit() -> None:
    model = fresh(Powertrain.BEV, soc_pct=60.0, charge_limit_pct=90)
    park(model, 120, charging_kw=50.0)
    assert model.state.soc_pct < 60.0  # not plugged in: no charging, a little drain
    model.plug_in()
    socs: list[float] = []
    charging: list[Reading] = []
    left: list[float] = []
    for _ in range(180):
        park(model, 60, charging_kw=50.0)
        signals = model.signals()
        socs.append(num(signals, SOC))
        charging.append(signals[CHARGING])
        left.append(num(signals, TIME_LEFT))
    assert all(b >= a for a, b in pairwise(socs))
    assert socs[-1] == 90.0 and charging[-1] is False
    gains = [b - a for a, b in pairwise(socs)]
    below = [g for g, s in zip(gains, socs, strict=False) if s < 78]
    above = [g for g, s in zip(gains, socs, strict=False) if 85 < s < 89]
    assert below and above and max(above) < 0.8 * min(below)
    charge_left = [t for t, c in zip(left, charging, strict=True) if c]
    assert charge_left[0] > charge_left[-1] >= 0
    stop = charging.index(False)
    assert all(c is False for c in charging[stop:])
    model.unplug()
    assert model.signals()[CHARGING] is False


def test_charging_needs_a_parked_plugged_electric_car() -> None:
    with pytest.raises(ValueError, match="no charging port"):
        fresh(Powertrain.ICE).plug_in()
    model = fresh(Powertrain.BEV, soc_pct=50.0)
    model.plug_in()
    model.step(
        1.0, 30.0, 0.0, moving=True, parked=False, charging_kw=50.0, hvac_on=False, lights_on=False
    )
    assert model.state.charging is False and model.state.soc_pct < 50.0


def test_charge_helpers() -> None:
    assert charge_taper(50) == 1.0 and charge_taper(100) == pytest.approx(0.1)
    assert charge_taper(90) == pytest.approx(0.55)
    assert seconds_to_charge(80, 80, 11, 58) == 0
    assert seconds_to_charge(20, 80, 11, 58) == pytest.approx(60 / 100 * 58 / 11 / 0.9 * 3600, 1)
    assert newton(90.0, 15.0, 1e9, 100.0) == pytest.approx(15.0)
    assert tyre_hot_kpa(230.0, 20.0) == pytest.approx(230.0)
    assert tyre_hot_kpa(230.0, 50.0) > 260.0


def test_engine_temperatures_warm_up_then_cool_down() -> None:
    model = fresh(Powertrain.ICE, ambient_c=10.0)
    readings = drive(model, 1200)
    coolant = [num(r, COOLANT) for r in readings]
    oil = [num(r, OIL) for r in readings]
    assert all(b >= a for a, b in pairwise(coolant))
    assert all(b >= a for a, b in pairwise(oil))
    assert 85.0 <= coolant[-1] <= 90.0 and oil[-1] > 80.0
    assert coolant[300] < 75.0  # five minutes in, still warming up
    cooling: list[float] = []
    model.stop_engine()
    for _ in range(6):
        park(model, 1800)
        cooling.append(num(model.signals(), COOLANT))
    assert all(b < a for a, b in pairwise(cooling))
    assert cooling[-1] < 20.0


def test_a_stuck_thermostat_keeps_the_engine_cold() -> None:
    model = fresh(Powertrain.ICE, ambient_c=10.0, thermostat_stuck_open=True)
    assert num(drive(model, 1800)[-1], COOLANT) < 71.0


def test_12v_sags_on_cranking_by_health_and_charges_while_running() -> None:
    healthy = fresh(Powertrain.ICE, lv_health=1.0, lv_soc=1.0)
    worn = fresh(Powertrain.ICE, lv_health=0.4, lv_soc=1.0)
    rest = num(healthy.signals(), VOLT)
    assert 12.5 <= rest <= 12.8
    dips: list[float] = []
    for model in (healthy, worn):
        model.start_engine()
        assert model.signals()["Vehicle.LowVoltageSystemState"] == "START"
        dip = num(model.signals(), VOLT)
        model.step(1.0, 0.0, 0.0, moving=False, parked=False, hvac_on=False, lights_on=False)
        assert model.signals()[VOLT] == dip  # the reading after the start is the dip
        model.step(1.0, 0.0, 0.0, moving=False, parked=False, hvac_on=False, lights_on=False)
        assert model.signals()[VOLT] == pytest.approx(14.1, abs=0.1)
        assert model.signals()["Vehicle.LowVoltageSystemState"] == "ON"
        dips.append(dip)
    assert 9.5 < dips[0] < rest - 1.5
    assert dips[1] < dips[0] - 1.0 and dips[1] < 9.0
    bev = fresh(Powertrain.BEV, lv_health=1.0, lv_soc=1.0)
    bev.start_engine()
    assert num(bev.signals(), VOLT) > 11.5


def test_12v_ages_slowly_and_drains_while_parked() -> None:
    model = fresh(Powertrain.ICE, lv_health=0.9, lv_soc=1.0)
    park(model, 60)
    before_v, before_h = num(model.signals(), VOLT), model.state.lv_health
    park(model, 30 * 86_400, dt=3600)
    after_h = model.ground_truth()["lv_battery.health"]
    assert before_h - 0.05 < after_h < before_h  # a month takes a little, not a lot
    assert num(model.signals(), VOLT) < before_v
    starts = fresh(Powertrain.ICE, lv_health=0.9)
    for _ in range(100):
        starts.start_engine()
        starts.stop_engine()
    assert starts.state.lv_health < 0.9


def test_a_slow_leak_lowers_one_tyre_over_hours() -> None:
    model = fresh(Powertrain.ICE)
    model.inflate_tyres()
    model.start_leak(2, 2.0)
    park(model, 60)
    start = model.signals()
    assert start[RL_LOW] is False
    park(model, 86_400, dt=600)
    after = model.signals()
    assert num(start, RL_PRESSURE) - num(after, RL_PRESSURE) == pytest.approx(48, abs=2)
    assert num(start, FL_PRESSURE) - num(after, FL_PRESSURE) <= 1
    assert after[RL_LOW] is True
    assert model.ground_truth()["tyre.Row2.Wheel.Left.leak_kpa_per_h"] == 2.0
    model.inflate_tyres()
    assert model.ground_truth()["tyre.Row2.Wheel.Left.leak_kpa_per_h"] == 0.0


def test_tyres_read_higher_when_warm() -> None:
    model = fresh(Powertrain.ICE, ambient_c=20.0)
    model.inflate_tyres()
    cold = num(model.signals(), FL_PRESSURE)
    drive(model, 1200)
    assert num(model.signals(), FL_PRESSURE) > cold


def test_brake_pads_wear_with_braking_and_less_with_regeneration() -> None:
    ice, bev = fresh(Powertrain.ICE), fresh(Powertrain.BEV, soc_pct=90.0)
    ice.state.brake_pad_mm = bev.state.brake_pad_mm = 10.0
    drive(ice, 1800)
    drive(bev, 1800)
    ice_wear = 10.0 - ice.ground_truth()["brake_pad_mm"]
    bev_wear = 10.0 - bev.ground_truth()["brake_pad_mm"]
    assert 0 < bev_wear < ice_wear
    assert ice_wear < 0.05  # half an hour does not eat a pad


def test_moving_implies_the_ignition_and_inputs_are_checked() -> None:
    model = fresh(Powertrain.ICE)
    model.step(1.0, 20.0, 1.0, moving=True, parked=False, hvac_on=False, lights_on=True)
    assert model.state.ignition_on and model.state.engine_running
    assert model.signals()["Vehicle.Body.Lights.Beam.Low.IsOn"] is True
    with pytest.raises(ValueError, match="negative"):
        model.step(-1.0, 0.0, 0.0, moving=False, parked=True, hvac_on=False, lights_on=False)


def test_locks_doors_and_cabin() -> None:
    model = fresh(Powertrain.BEV, ambient_c=30.0)
    model.unlock()
    assert model.signals()["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"] is False
    assert model.signals()["Vehicle.LowVoltageSystemState"] == "OFF"
    model.lock()
    signals = model.signals()
    assert signals["Vehicle.Cabin.Door.Row2.PassengerSide.IsLocked"] is True
    assert signals["Vehicle.Body.Trunk.Rear.IsLocked"] is True
    assert signals["Vehicle.LowVoltageSystemState"] == "LOCK"
    drive(model, 600, hvac_on=True)
    signals = model.signals()
    assert signals["Vehicle.Cabin.HVAC.IsAirConditioningActive"] is True
    assert num(signals, "Vehicle.Cabin.HVAC.AmbientAirTemperature") < 25.0


def test_the_same_seed_gives_the_same_car_and_drive() -> None:
    def run(seed: int) -> tuple[list[dict[str, Reading]], dict[str, float]]:
        model = VehicleModel(
            PRESET_FOR[Powertrain.HYBRID],
            random.Random(seed),
            hazards=Hazards(misfire_per_engine_h=30.0, leak_per_h=5.0),
        )
        readings = drive(model, 900)
        park(model, 3600)
        return readings, model.ground_truth()

    assert run(11) == run(11)
    assert run(11) != run(12)


def test_random_faults_follow_the_hazards() -> None:
    hazards = Hazards(leak_at_start=1.0, misfire_per_engine_h=20.0, thermostat_stuck=1.0)
    model = VehicleModel(PRESET_FOR[Powertrain.ICE], random.Random(5), hazards=hazards)
    assert sum(model.state.tyre_leak_kpa_h) > 0 and model.state.thermostat_stuck_open
    seen = set()
    model.start_engine()
    for _ in range(3600):
        model.step(1.0, 0.0, 0.0, moving=False, parked=False, hvac_on=False, lights_on=False)
        seen.add(model.state.misfire_cylinder)
    assert len(seen - {-1}) >= 1
    calm = fresh(Powertrain.ICE)
    assert calm.ground_truth()["thermostat_stuck_open"] == 0.0
    truth = calm.ground_truth()
    assert all(isinstance(v, float) and math.isfinite(v) for v in truth.values())
    assert {"lv_battery.health", "brake_pad_mm", "tyre.Row1.Wheel.Left.leak_kpa_per_h"} <= set(
        truth
    )
