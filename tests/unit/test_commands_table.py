"""The command table: parameter validation, interlocks, desired state, the lifecycle, docs."""

import re
from pathlib import Path

import pytest

from autocloud.domain.access import Role
from autocloud.domain.catalog import Catalog
from autocloud.domain.commands import (
    COMMANDS,
    SOC,
    SPECS,
    SPEED,
    TERMINAL,
    TRANSITIONS,
    State,
    may_move,
    sources_of,
    spec_of,
)
from autocloud.domain.errors import InvalidInput
from autocloud.sim.command_agent import EFFECTS

DOCS = Path(__file__).resolve().parents[2] / "docs" / "commands.md"
REQUIRED = {
    "lock",
    "unlock",
    "climate_start",
    "climate_stop",
    "horn_and_lights",
    "charge_start",
    "charge_stop",
    "charge_limit",
    "windows_close",
    "trunk_open",
    "immobiliser_enable",
    "immobiliser_disable",
    "telemetry_rate",
    "diagnostic_readout",
}


def test_the_table_has_every_command_the_issue_asks_for_once() -> None:
    names = [s.name for s in COMMANDS]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED


def test_every_command_has_a_vehicle_side_effect() -> None:
    assert set(EFFECTS) == set(SPECS)


def test_unknown_command_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"unknown command 'launch'.*lock, unlock"):
        spec_of("launch")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("charge_limit", {"percent": 20}, r"'percent' is 20, out of range: between 50 and 100 %"),
        ("charge_limit", {"percent": 101}, r"between 50 and 100"),
        ("charge_limit", {}, r"'percent' is required \(integer between 50 and 100 %\)"),
        ("charge_limit", {"percent": 80.5}, r"must be a whole number"),
        ("charge_limit", {"percent": True}, r"must be a integer"),
        ("charge_limit", {"percent": "80"}, r"must be a integer"),
        ("climate_start", {"target_temp_c": 35}, r"'target_temp_c' is 35.*between 15 and 28 °C"),
        ("climate_start", {"target_temp_c": float("nan")}, r"finite"),
        ("telemetry_rate", {"seconds": 0}, r"between 1 and 3600 s"),
        ("horn_and_lights", {"lights_only": "yes"}, r"true or false"),
        ("lock", {"force": True}, r"unknown parameter\(s\) force; allowed: none"),
    ],
)
def test_bad_params_are_refused_naming_param_and_range(
    name: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        SPECS[name].validate(params)


def test_good_params_are_typed_and_defaults_filled() -> None:
    assert SPECS["charge_limit"].validate({"percent": 80.0}) == {"percent": 80}
    assert SPECS["climate_start"].validate({"target_temp_c": 22}) == {"target_temp_c": 22.0}
    assert SPECS["climate_start"].validate(None) == {"target_temp_c": 21.0}
    assert SPECS["horn_and_lights"].validate({}) == {"lights_only": False}
    assert SPECS["lock"].validate({}) == {}


@pytest.mark.parametrize("name", ["unlock", "trunk_open", "immobiliser_enable"])
def test_no_unlock_trunk_or_immobiliser_while_moving(name: str) -> None:
    spec = SPECS[name]
    reason, message = spec.refusal({SPEED: 42.0}) or ("", "")
    assert reason == "vehicle_moving"
    assert "42.0 km/h is above 5 km/h" in message
    assert spec.refusal({SPEED: 5.0}) is None  # at 5 km/h and below: allowed
    assert spec.refusal({}) is None  # no speed known: the vehicle decides


def test_lock_is_allowed_while_moving() -> None:
    assert SPECS["lock"].refusal({SPEED: 120.0}) is None


def test_climate_needs_battery_with_the_setting_overriding_the_default() -> None:
    climate = SPECS["climate_start"]
    assert climate.refusal({SOC: 15.0}) == (
        "battery_low",
        "refused: battery at 15.0 % is below the 20 % needed for remote climate",
    )
    assert climate.refusal({SOC: 25.0}) is None
    assert climate.refusal({SOC: 25.0}, {"command_min_soc_pct": 30.0}) is not None
    assert climate.refusal({SOC: True}) is None  # not a number: not this rule's business


def test_desired_state_paths_and_values_pass_the_signal_catalog() -> None:
    catalog = Catalog.builtin(None)
    for spec in COMMANDS:
        params = spec.validate(
            {p.name: p.min if p.min is not None else True for p in spec.params if p.required}
        )
        for path, value in spec.desired_state(params).items():
            result = catalog.check(path, value)
            assert result.rejection is None, (spec.name, path, result.detail)
    assert SPECS["lock"].desired_state({})["Vehicle.Cabin.Door.Row1.DriverSide.IsLocked"] is True
    limit = SPECS["charge_limit"].desired_state({"percent": 70})
    assert limit == {"Vehicle.Powertrain.TractionBattery.Charging.ChargeLimit": 70}


def test_owners_may_not_immobilise_or_change_telemetry() -> None:
    assert not SPECS["immobiliser_enable"].owner_may
    assert SPECS["immobiliser_enable"].min_role is Role.ADMIN
    assert SPECS["lock"].owner_may and SPECS["lock"].min_role is Role.OPERATOR


def test_lifecycle_allows_only_the_listed_transitions() -> None:
    assert may_move(State.QUEUED, State.SENT)
    assert may_move(State.SENT, State.DELIVERED)
    assert may_move(State.DELIVERED, State.SUCCEEDED)
    assert may_move(State.SENT, State.REJECTED)  # a vehicle may refuse at once
    assert may_move(State.QUEUED, State.EXPIRED)
    assert not may_move(State.QUEUED, State.SUCCEEDED)  # never sent: cannot have run
    assert not may_move(State.DELIVERED, State.SENT)
    for final in TERMINAL:
        assert TRANSITIONS[final] == frozenset()
        assert all(not may_move(final, s) for s in State)
    assert sources_of(State.EXPIRED) == {State.QUEUED, State.SENT, State.DELIVERED}
    assert set(TRANSITIONS) == set(State)


def test_docs_list_every_command_with_its_params() -> None:
    text = DOCS.read_text()
    for spec in COMMANDS:
        assert re.search(rf"^\| `{spec.name}` \|", text, re.M), f"{spec.name} not in {DOCS}"
        for param in spec.params:
            assert f"`{param.name}`" in text, (spec.name, param.name)
    for state in State:
        assert f"`{state.value}`" in text
