"""Alert rules: validation (clear errors) and evaluation (duration, hysteresis, guards)."""

from typing import Any

import pytest

from autocloud.domain.alert_eval import (
    FIRING,
    OPEN,
    RESOLVE,
    VALUE,
    Compiled,
    Tracker,
    dtc_matches,
    elapsed,
    step,
)
from autocloud.domain.alerts import (
    AlertRule,
    EventCondition,
    Guard,
    Op,
    SignalCondition,
    condition_spec,
    parse_condition,
    parse_expression,
)
from autocloud.domain.catalog import Catalog
from autocloud.domain.dtc import Severity
from autocloud.domain.errors import InvalidInput

CATALOG = Catalog.builtin(None)
COOLANT = "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"
VOLTS = "Vehicle.LowVoltageBattery.CurrentVoltage"
TYRES = "Vehicle.Chassis.Axle.*.Wheel.*.Tire.Pressure"


def rule(spec: dict[str, Any]) -> Compiled:
    return Compiled.of(
        AlertRule(1, "vw", "r", Severity.WARNING, parse_condition(spec, CATALOG), 0, "t")
    )


def run(
    c: Compiled, samples: list[tuple[int, Any]], guard_ok: bool = True
) -> list[tuple[int, str]]:
    """Feed (ts, value) samples; the transitions with their times."""
    t: Tracker | None = None
    out = []
    for ts, value in samples:
        t, tr = step(c, t, value, ts, guard_ok)
        if tr:
            out.append((ts, tr))
    return out


# --- validation -------------------------------------------------------------------------------


def test_examples_parse_and_round_trip() -> None:
    specs = [
        {"signal": {"path": COOLANT, "op": ">", "threshold": 110, "for_s": 60, "hysteresis": 5}},
        {
            "signal": {
                "path": VOLTS,
                "op": "<",
                "threshold": 11.8,
                "while": {"path": "Vehicle.IsMoving", "op": "==", "value": False},
            }
        },
        {"signal": {"path": TYRES, "op": "<", "threshold": 180}},
        {"event": {"type": "dtc.raised", "severity": "critical"}},
        {"event": {"type": "alarm.tow", "clear_type": "alarm.cleared"}},
    ]
    for spec in specs:
        parsed = parse_condition(spec, CATALOG)
        assert parse_condition(condition_spec(parsed), CATALOG) == parsed
        assert parse_condition(condition_spec(parsed), None) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "exactly one condition"),
        ({"signal": {"path": "Vehicle.Speed"}, "event": {"type": "x"}}, "exactly one"),
        ({"signal": {"path": "Vehicle.Speed", "op": ">"}}, "needs 'threshold'"),
        ({"signal": {"path": "Vehicle.Nope", "op": ">", "threshold": 1}}, "not a known signal"),
        ({"signal": {"path": "speed", "op": ">", "threshold": 1}}, "not a VSS path"),
        ({"signal": {"path": "Vehicle.Speed", "op": "=>", "threshold": 1}}, "operator '=>'"),
        ({"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": "fast"}}, "compares only"),
        ({"signal": {"path": "Vehicle.IsMoving", "op": ">", "threshold": True}}, "== or !="),
        ({"signal": {"path": "Vehicle.IsMoving", "op": "==", "threshold": 1}}, "does not compare"),
        (
            {"signal": {"path": "Vehicle.Speed", "op": "==", "threshold": 1, "hysteresis": 2}},
            "ordering",
        ),
        (
            {"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": 1, "hysteresis": -1}},
            "hysteresis",
        ),
        ({"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": 1, "for_s": -5}}, "for_s"),
        ({"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": 1, "for_s": True}}, "for_s"),
        ({"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": float("nan")}}, "finite"),
        (
            {"signal": {"path": "Vehicle.Speed", "op": ">", "threshold": 1, "extra": 1}},
            "unknown field",
        ),
        ({"signal": {"path": "Vehicle.Diagnostics.DTCList", "op": "==", "threshold": 1}}, "array"),
        ({"signal": {"path": "Vehicle.*.Nope", "op": ">", "threshold": 1}}, "matches no signal"),
        (
            {
                "signal": {
                    "path": VOLTS,
                    "op": "<",
                    "threshold": 1,
                    "while": {"path": "Vehicle.IsMoving"},
                }
            },
            "while needs",
        ),
        (
            {
                "signal": {
                    "path": VOLTS,
                    "op": "<",
                    "threshold": 1,
                    "while": {"path": "Vehicle.*", "op": "==", "value": 1},
                }
            },
            "without \\*",
        ),
        ({"event": {"type": "Not An Event"}}, "must look like"),
        ({"event": {"type": "alarm.tow", "severity": "critical"}}, "dtc.raised events only"),
        ({"event": {"type": "dtc.raised", "clear_type": "dtc.cleared"}}, "drop clear_type"),
        ({"event": {"type": "dtc.raised", "codes": ["X1"]}}, "not the start of a DTC"),
        ({"event": {"type": "dtc.raised", "codes": "P03"}}, "list of code prefixes"),
        ({"event": {"type": "dtc.raised", "severity": "fatal"}}, "unknown severity"),
        ({"event": {"type": "dtc.raised", "severity": 3}}, "info, warning or critical"),
    ],
)
def test_bad_rules_are_refused_with_a_reason(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_condition(spec, CATALOG)


def test_expression_parsing() -> None:
    assert parse_expression("Vehicle.Speed > 120") == ("Vehicle.Speed", ">", 120.0)
    assert parse_expression("Vehicle.IsMoving==false") == ("Vehicle.IsMoving", "==", False)
    assert parse_expression("Vehicle.LowVoltageSystemState = 'ON'")[2] == "ON"
    with pytest.raises(InvalidInput):
        parse_expression("speeding")
    assert Op.parse("=") is Op.EQ


# --- evaluation -------------------------------------------------------------------------------


def test_duration_must_hold_continuously() -> None:
    c = rule({"signal": {"path": COOLANT, "op": ">", "threshold": 110, "for_s": 60}})
    # 59 s above, a dip, then 60 s above: opens only after the second full minute.
    samples = [(0, 111.0), (59_000, 115.0), (60_000, 109.0), (61_000, 112.0), (120_999, 113.0)]
    assert run(c, samples) == []
    assert run(c, [*samples, (121_000, 113.0), (122_000, 114.0)]) == [(121_000, OPEN)]


def test_duration_elapses_between_messages() -> None:
    c = rule({"signal": {"path": COOLANT, "op": ">", "threshold": 110, "for_s": 60}})
    t, tr = step(c, None, 115.0, 0, True)
    assert t is not None and tr is None
    assert elapsed(c, t, 59_999) == (t, None)
    opened, tr = elapsed(c, t, 60_000)
    assert tr == OPEN and opened[FIRING] and opened[VALUE] == 115.0


def test_hysteresis_prevents_flapping() -> None:
    c = rule({"signal": {"path": COOLANT, "op": ">", "threshold": 110, "hysteresis": 5}})
    samples = [(0, 111.0), (1, 109.0), (2, 111.0), (3, 105.5), (4, 105.0), (5, 111.0)]
    assert run(c, samples) == [(0, OPEN), (4, RESOLVE), (5, OPEN)]


@pytest.mark.parametrize(
    ("op", "resolve_at", "stay_at"),
    [("<", 12.3, 12.2), ("<=", 12.31, 12.3), (">=", 11.69, 11.7), ("!=", 12.0, 11.0)],
)
def test_every_operator_resolves_past_its_hysteresis(
    op: str, resolve_at: float, stay_at: float
) -> None:
    h = 0.3 if op != "!=" else 0
    c = rule({"signal": {"path": VOLTS, "op": op, "threshold": 12.0, "hysteresis": h}})
    start = 11.0 if op in ("<", "<=", "!=") else 13.0
    assert run(c, [(0, start), (1, stay_at), (2, resolve_at)]) == [(0, OPEN), (2, RESOLVE)]


def test_guard_must_hold_and_its_end_resolves() -> None:
    c = rule(
        {
            "signal": {
                "path": VOLTS,
                "op": "<",
                "threshold": 11.8,
                "while": {"path": "Vehicle.IsMoving", "op": "==", "value": False},
            }
        }
    )
    assert c.guard_holds(False) and not c.guard_holds(True) and not c.guard_holds(None)
    assert run(c, [(0, 11.5)], guard_ok=False) == []
    t, tr = step(c, None, 11.5, 0, True)
    assert tr == OPEN
    assert step(c, t, 11.5, 1, False) == (None, RESOLVE)


def test_late_samples_are_ignored() -> None:
    c = rule({"signal": {"path": COOLANT, "op": ">", "threshold": 110}})
    t, _ = step(c, None, 120.0, 1_000, True)
    assert step(c, t, 90.0, 500, True) == (t, None)


def test_wildcard_watches_every_tyre() -> None:
    c = rule({"signal": {"path": TYRES, "op": "<", "threshold": 180}})
    assert c.matches("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure")
    assert not c.matches("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.AirTemperature")
    assert not c.matches("Vehicle.Chassis.Axle.Row2.Wheel.Left.Tire.Pressure.X")
    assert c.test(170) and not c.test(180)


def test_dtc_matching() -> None:
    crit = EventCondition("dtc.raised", Severity.CRITICAL)
    assert dtc_matches(crit, "P0301") and not dtc_matches(crit, "P0420")
    misfire = EventCondition("dtc.raised", None, ("P03",))
    assert dtc_matches(misfire, "P0420") is False and dtc_matches(misfire, "P0301")
    assert dtc_matches(EventCondition("dtc.raised"), "U1234")


def test_a_string_value_on_a_numeric_rule_is_a_type_error_not_a_crash() -> None:
    c = Compiled.of(
        AlertRule(1, "vw", "r", Severity.INFO, SignalCondition("Vehicle.X", Op.GT, 1.0), 0, "t")
    )
    with pytest.raises(TypeError):
        step(c, None, "text", 0, True)
    g = Compiled.of(
        AlertRule(
            1, "vw", "r", Severity.INFO,
            SignalCondition("Vehicle.X", Op.GT, 1.0, guard=Guard("Vehicle.Y", Op.GT, 1.0)), 0, "t",
        )
    )  # fmt: skip
    assert g.guard_holds("text") is False
