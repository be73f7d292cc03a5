"""The simulator's fast readout gives exactly the values of the plain formulas.

`Readout` (sim/readout.py) rounds faster, computes spec figures once and rounds rarely
changing inputs once; `_reference` below is the straightforward version it replaced. Both
read cars of every powertrain through driving, charging, parking in the cold and heat,
faults and odd states, and must agree value for value: type and sign of zero included
(a reading's JSON must not change by a byte).
"""

import random
from itertools import repeat

import pytest

from autocloud.sim.energy import (
    PRESET_FOR,
    Powertrain,
    VehicleSpec,
    engine_rpm,
    seconds_to_charge,
    tyre_hot_kpa,
)
from autocloud.sim.model import VehicleModel
from autocloud.sim.readout import (
    DISPLAY_BUFFER_PCT,
    FUEL_LOW_PCT,
    TPMS_WARNING_SHARE,
    Reading,
    Readout,
    _body,
    _cold_factor,
    vss_values,
)
from autocloud.sim.vehicle_state import TYRES, VehicleState


def _reference(spec: VehicleSpec, s: VehicleState) -> list[Reading]:
    """The readout as first written: plain `round`, every figure computed every time."""
    km_to_service = spec.service_interval_km - (s.odometer_m - s.last_service_odometer_m) / 1000
    ignition_on, climate = s.ignition_on, s.ignition_on and s.hvac_on
    fan = 0
    if climate:
        f = 20.0 + 8.0 * abs(s.cabin_c - s.hvac_target_c)
        fan = int(max(20.0, min(100.0, f)))
    out: list[Reading] = [
        spec.powertrain.value,
        int(s.odometer_m),
        "START" if s.start_reading else "ON" if ignition_on else "LOCK" if s.locked else "OFF",
        round(s.lv_voltage, 2),
        s.parked,
        round(s.ambient_c, 1),
        round(s.cabin_c, 1),
        climate and s.ambient_c > s.hvac_target_c,
        s.hvac_target_c,
        fan,
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
    electric_m = fuel_m = 0
    if spec.electric:
        energy_kwh = s.soc_pct / 100.0 * spec.battery_kwh
        kwh_per_km = spec.rated_kwh_per_100km / 100.0 * _cold_factor(s.ambient_c)
        electric_m = int(energy_kwh / kwh_per_km * 1000.0)
        low, high = DISPLAY_BUFFER_PCT
        displayed = max(0.0, min(100.0, (s.soc_pct - low) / (high - low) * 100.0))
        out += (
            round(s.soc_pct, 2),
            float(round(displayed)),
            round(energy_kwh, 3),
            electric_m,
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
    if spec.combustion:
        level_pct = round(s.fuel_l / spec.tank_l * 100.0)
        fuel_m = int(s.fuel_l / spec.rated_l_per_100km * 100_000.0)
        average = (
            s.fuel_used_l / s.fuel_distance_m * 100_000.0
            if s.fuel_distance_m >= 1000.0
            else spec.rated_l_per_100km
        )
        out += (
            max(0, min(100, level_pct)),
            round(s.fuel_l, 2),
            fuel_m,
            level_pct < FUEL_LOW_PCT,
            spec.tank_l,
            ["GASOLINE"],
            round(average, 2),
            s.engine_running,
            round(engine_rpm(s.speed_kmh) if s.engine_running else 0.0, 0),
            round(s.coolant_c, 1),
            round(s.oil_c, 1),
            "NORMAL",
            round(s.engine_hours, 3),
        )
    out.append(electric_m + fuel_m)
    return out


def _same(got: list[Reading], want: list[Reading]) -> None:
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        assert type(a) is type(b) and repr(a) == repr(b), (i, a, b)


@pytest.mark.parametrize("powertrain", list(Powertrain))
@pytest.mark.parametrize("ambient_c", [-12.0, 0.0, 15.0, 31.5])
def test_readout_equals_the_plain_formulas(powertrain: Powertrain, ambient_c: float) -> None:
    spec = PRESET_FOR[powertrain]
    rng = random.Random(hash((powertrain.value, ambient_c)) & 0xFFFF)
    model = VehicleModel(spec, rng, ambient_c=ambient_c)
    readout = Readout(spec)  # one per car, kept across readings as the simulator does
    s = model.state
    for second in range(2000):
        phase = (second // 200) % 5
        if phase in (0, 1):  # driving: accelerate, cruise, brake
            speed = [0.0, 20.0, 48.0, 95.0, 130.0, 60.0, 7.5][second % 7]
            model.step(
                1.0,
                speed,
                (second % 5) - 2.0,
                moving=True,
                parked=False,
                hvac_on=True,
                lights_on=second % 3 == 0,
                distance_m=speed / 3.6,
            )
        elif phase == 2 and spec.electric:  # charging, plugged in while parked
            if not s.plugged_in:
                model.stop_engine()
                model.plug_in()
            model.step(
                1.0,
                0.0,
                0.0,
                moving=False,
                parked=True,
                charging_kw=11.0,
                hvac_on=second % 2 == 0,
                lights_on=False,
            )
        else:  # parked, sometimes with the climate on
            if s.plugged_in:
                model.unplug()
            model.stop_engine()
            model.step(
                7.0, 0.0, 0.0, moving=False, parked=True, hvac_on=phase == 4, lights_on=False
            )
        if second % 97 == 0:  # odd states: DTCs, open doors and windows, a flat tyre
            s.dtcs = ["P0301", "P0562"][: second % 3]
            s.doors_open[second % 4] = not s.doors_open[second % 4]
            s.windows_pct[second % 4] = (second * 7) % 130 - 10
            s.trunk_open = not s.trunk_open
        if second == 700:
            s.tyre_cold_kpa[2] = 0.0
        if second == 1100:
            s.soc_pct, s.fuel_l = 0.0, 0.0
            s.hv_power_w = -0.01  # a negative value that rounds to zero: -0.0
        if second == 1500:
            s.ambient_c = -0.0 if ambient_c == 0.0 else ambient_c + 1.0  # a new float object
            s.traction_soh_pct = 74.96
        _same(readout.values(s), _reference(spec, s))
    _same(vss_values(spec, s), _reference(spec, s))
