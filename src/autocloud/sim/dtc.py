"""Diagnostic trouble codes of a simulated car: raised from its physical state, with freeze frames.

What: a table of real generic OBD-II codes (SAE J2012) with the condition of the simulated
car that sets each and the one that clears it, and :class:`DtcMonitor`, the car's on-board
diagnosis, which evaluates the table every tick and reports ``dtc.raised``/``dtc.cleared``
events carrying the code, its description and a freeze frame (VSS values at the moment of
the fault), the way a real ECU stores one.

Why from state, not from dice: the faults themselves (a weak 12 V battery, a stuck-open
thermostat, an aged catalyst, a misfire episode, a loose filler cap) live in the model's
state and evolve physically; the monitor only notices them. So a DTC's freeze frame agrees
with the telemetry around it, and predictive-maintenance work can be scored against the
ground truth. Tyre leaks set no generic OBD code: they show as ``Tire.IsPressureLow``.

Pure except :func:`load_dtc_descriptions`, which reads a code list from a file when asked.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, TypedDict

from autocloud.domain.errors import ConfigurationError
from autocloud.sim.energy import Powertrain, VehicleSpec
from autocloud.sim.model import VehicleModel
from autocloud.sim.readout import Reading
from autocloud.sim.vehicle_state import VehicleState

__all__ = [
    "DTC_RULES",
    "FREEZE_FRAME_PATHS",
    "Dtc",
    "DtcEvent",
    "DtcMonitor",
    "DtcRule",
    "load_dtc_descriptions",
]

Condition = Callable[[VehicleSpec, VehicleState], bool]

_ALL: Final = frozenset(Powertrain)
_ENGINE: Final = frozenset({Powertrain.ICE, Powertrain.HYBRID})
_ELECTRIC: Final = frozenset({Powertrain.BEV, Powertrain.HYBRID})

THERMOSTAT_MONITOR_S: Final = 900.0  # engine running time before P0128 is judged
THERMOSTAT_LOW_C: Final = 71.0  # below this after the monitor time: P0128
THERMOSTAT_OK_C: Final = 80.0
EVAP_MONITOR_S: Final = 600.0
CATALYST_MIN_EFFICIENCY: Final = 0.85
OVERTEMP_C: Final = 110.0
PACK_DETERIORATED_PCT: Final = 75.0
START_VOLTAGE_MARGIN_V: Final = 0.4  # a later start this much above the threshold clears P0562


@dataclass(frozen=True, slots=True)
class DtcRule:
    """One code: which cars can set it, what sets it, what clears it (``trigger`` in words)."""

    code: str
    description: str
    powertrains: frozenset[Powertrain]
    raised: Condition
    cleared: Condition
    trigger: str


def _misfire(cylinder: int) -> tuple[Condition, Condition]:
    return (
        lambda _spec, s: s.engine_running and s.misfire_cylinder == cylinder,
        lambda _spec, s: s.misfire_cylinder != cylinder,
    )


def _warm(s: VehicleState, celsius: float) -> bool:
    return s.engine_running and s.coolant_c >= celsius


_MISFIRES: Final = (  # by misfire_cylinder: 0 several cylinders, else that cylinder
    ("P0300", "Random/Multiple Cylinder Misfire Detected", "several cylinders"),
    *((f"P030{n}", f"Cylinder {n} Misfire Detected", f"cylinder {n}") for n in range(1, 5)),
)

DTC_RULES: Final[tuple[DtcRule, ...]] = (
    DtcRule(
        "P0562",
        "System Voltage Low",
        _ALL,
        lambda spec, s: s.start_reading and (s.start_dip_v or 0.0) < spec.low_start_v,
        lambda spec, s: (
            s.start_reading and (s.start_dip_v or 0.0) >= spec.low_start_v + START_VOLTAGE_MARGIN_V
        ),
        "12 V voltage at a start below the car's threshold (weak, cold or flat battery); "
        "cleared by a good start",
    ),
    DtcRule(
        "P0128",
        "Coolant Thermostat (Coolant Temperature Below Thermostat Regulating Temperature)",
        _ENGINE,
        lambda _spec, s: (
            s.engine_running
            and s.engine_run_s_cycle >= THERMOSTAT_MONITOR_S
            and s.coolant_c < THERMOSTAT_LOW_C
        ),
        lambda _spec, s: s.coolant_c >= THERMOSTAT_OK_C,
        "coolant still below 71 °C after 15 min of engine running (thermostat stuck open)",
    ),
    *(
        DtcRule(code, description, _ENGINE, *_misfire(cylinder), f"misfire episode: {where}")
        for cylinder, (code, description, where) in enumerate(_MISFIRES)
    ),
    DtcRule(
        "P0420",
        "Catalyst System Efficiency Below Threshold (Bank 1)",
        _ENGINE,
        lambda _spec, s: _warm(s, 70.0) and s.catalyst_efficiency < CATALYST_MIN_EFFICIENCY,
        lambda _spec, s: s.catalyst_efficiency >= CATALYST_MIN_EFFICIENCY,
        "aged catalyst, judged once the engine is warm",
    ),
    DtcRule(
        "P0171",
        "System too Lean (Bank 1)",
        _ENGINE,
        lambda _spec, s: _warm(s, 60.0) and s.vacuum_leak,
        lambda _spec, s: not s.vacuum_leak,
        "intake vacuum leak, seen by the fuel trim once warm",
    ),
    DtcRule(
        "P0455",
        "Evaporative Emission Control System Leak Detected (gross leak)",
        _ENGINE,
        lambda _spec, s: s.fuel_cap_loose and s.engine_run_s_cycle >= EVAP_MONITOR_S,
        lambda _spec, s: not s.fuel_cap_loose,
        "filler cap left loose at the last refuel; cleared when the next refuel tightens it",
    ),
    DtcRule(
        "P0217",
        "Engine Overtemp Condition",
        _ENGINE,
        lambda _spec, s: s.coolant_c > OVERTEMP_C,
        lambda _spec, s: s.coolant_c < OVERTEMP_C - 10.0,
        "coolant above 110 °C",
    ),
    DtcRule(
        "P0A7F",
        "Battery Pack Deterioration",
        _ELECTRIC,
        lambda _spec, s: s.traction_soh_pct < PACK_DETERIORATED_PCT,
        lambda _spec, s: s.traction_soh_pct >= PACK_DETERIORATED_PCT,
        "traction battery state of health below 75 %",
    ),
)
"""The codes the simulator sets, in evaluation order. Descriptions as in SAE J2012."""


def could_raise(spec: VehicleSpec, s: VehicleState) -> bool:
    """True if any raising condition of :data:`DTC_RULES` holds, whichever powertrain.

    The conditions of the table written out in one expression (a function call per rule
    costs more than the test): :class:`DtcMonitor` walks the table only when this is True
    or a code is active, so when it is False nothing would have been raised. It may be
    True for a rule the car does not have (the walk then finds nothing), never False
    where a rule would fire; ``tests/sim/test_faults.py`` checks it against the table.
    """
    if s.start_reading and (s.start_dip_v or 0.0) < spec.low_start_v:  # P0562
        return True
    if s.engine_running:
        coolant = s.coolant_c
        if (
            (s.engine_run_s_cycle >= THERMOSTAT_MONITOR_S and coolant < THERMOSTAT_LOW_C)
            or 0 <= s.misfire_cylinder < len(_MISFIRES)  # P0300-P0304
            or (coolant >= 70.0 and s.catalyst_efficiency < CATALYST_MIN_EFFICIENCY)
            or (coolant >= 60.0 and s.vacuum_leak)
        ):
            return True
    return bool(
        (s.fuel_cap_loose and s.engine_run_s_cycle >= EVAP_MONITOR_S)  # P0455
        or s.coolant_c > OVERTEMP_C  # P0217
        or s.traction_soh_pct < PACK_DETERIORATED_PCT  # P0A7F
    )


FREEZE_FRAME_PATHS: Final[tuple[str, ...]] = (
    "Vehicle.Speed",
    "Vehicle.TraveledDistance",
    "Vehicle.LowVoltageSystemState",
    "Vehicle.LowVoltageBattery.CurrentVoltage",
    "Vehicle.Exterior.AirTemperature",
    "Vehicle.Powertrain.CombustionEngine.IsRunning",
    "Vehicle.Powertrain.CombustionEngine.Speed",
    "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
    "Vehicle.Powertrain.CombustionEngine.EngineOil.Temperature",
    "Vehicle.Powertrain.FuelSystem.RelativeLevel",
    "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
    "Vehicle.Powertrain.TractionBattery.Temperature.Average",
)
"""What a freeze frame holds, where the car has it (OBD mode 2 in VSS terms)."""


class DtcData(TypedDict):
    """The ``data`` of a ``dtc.raised``/``dtc.cleared`` event."""

    code: str
    description: str
    freeze_frame: dict[str, Reading]


class DtcEvent(TypedDict):
    """An event for vehicle protocol v1; the driver adds ``v``, ``sid``, ``seq`` and ``ts``."""

    type: str
    data: DtcData


@dataclass(frozen=True, slots=True)
class Dtc:
    """An active trouble code with the freeze frame stored when it was set."""

    code: str
    description: str
    freeze_frame: dict[str, Reading] = field(default_factory=dict)

    def event(self, kind: str) -> DtcEvent:
        """This code as a ``dtc.<kind>`` event."""
        data = DtcData(
            code=self.code, description=self.description, freeze_frame=dict(self.freeze_frame)
        )
        return DtcEvent(type=f"dtc.{kind}", data=data)


class DtcMonitor:
    """The on-board diagnosis of one car: evaluates :data:`DTC_RULES` against its state.

    Call :meth:`step` after each :meth:`VehicleModel.step`; it returns the events of that
    tick and keeps the model's ``Vehicle.Diagnostics.DTCList`` current. ``descriptions``
    (e.g. from :func:`load_dtc_descriptions`) overrides the built-in texts.
    """

    __slots__ = ("_active", "_descriptions", "_guarded", "_rules", "model")

    def __init__(
        self,
        model: VehicleModel,
        *,
        descriptions: Mapping[str, str] | None = None,
        rules: tuple[DtcRule, ...] = DTC_RULES,
    ) -> None:
        self.model = model
        self._rules = tuple(r for r in rules if model.spec.powertrain in r.powertrains)
        self._guarded = rules is DTC_RULES  # `could_raise` covers exactly these
        self._descriptions = descriptions or {}
        self._active: dict[str, Dtc] = {}

    @property
    def active(self) -> tuple[Dtc, ...]:
        """The active codes, oldest first."""
        return tuple(self._active.values())

    def step(self) -> list[DtcEvent]:
        """Raise and clear codes for the model's current state; the tick's events.

        With the built-in rules and no active code, :func:`could_raise` (every raising
        condition in one expression) is asked first: nearly every second it is False, and
        the table is not walked (ten calls for a combustion car).
        """
        spec, state = self.model.spec, self.model.state
        if self._guarded and not self._active and not could_raise(spec, state):
            return []
        events: list[DtcEvent] = []
        for rule in self._rules:
            dtc = self._active.get(rule.code)
            if dtc is None and rule.raised(spec, state):
                description = self._descriptions.get(rule.code, rule.description)
                dtc = Dtc(rule.code, description, self._freeze_frame())
                self._active[rule.code] = dtc
                events.append(dtc.event("raised"))
            elif dtc is not None and rule.cleared(spec, state):
                del self._active[rule.code]
                events.append(dtc.event("cleared"))
        if events:
            state.dtcs = list(self._active)
        return events

    def clear(self, codes: Iterable[str]) -> list[DtcEvent]:
        """Erase these active codes, as a workshop's clear (UDS 0x14) does; their events.

        A fault that persists sets its code again at the next :meth:`step` whose condition
        holds, as a real monitor does after a clear.
        """
        events = [self._active.pop(code).event("cleared") for code in codes if code in self._active]
        if events:
            self.model.state.dtcs = list(self._active)
        return events

    def _freeze_frame(self) -> dict[str, Reading]:
        values = self.model.signals()
        values["Vehicle.Speed"] = round(self.model.state.speed_kmh, 1)
        return {path: values[path] for path in FREEZE_FRAME_PATHS if path in values}


_CODE: Final = re.compile(r"^[PCBU][0-9A-F]{4}")


def load_dtc_descriptions(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read ``[{"Code": "P0301", "Description": "..."}, ...]`` into ``{code: description}``.

    The one impure function of this module. Entries whose code does not start with a valid
    five-character code are skipped; a code listed twice keeps its first description.
    Raises :class:`ConfigurationError` when the file is missing or not such a list.
    """
    file = Path(path)
    try:
        document = json.loads(file.read_bytes())
    except OSError as exc:
        raise ConfigurationError(f"cannot read DTC list {file}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigurationError(f"DTC list {file} is not valid JSON: {exc}") from exc
    if not isinstance(document, list):
        raise ConfigurationError(f"DTC list {file} is not a JSON array of code objects")
    codes: dict[str, str] = {}
    for entry in document:
        if not isinstance(entry, dict):
            continue
        code, text = entry.get("Code"), entry.get("Description")
        match = _CODE.match(code) if isinstance(code, str) else None
        if match and isinstance(text, str) and text.strip():
            codes.setdefault(match.group(0), " ".join(text.split()))
    return codes
