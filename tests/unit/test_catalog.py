"""Tests of the signal catalog: the own table against the VSS 6.0 release, and value checks.

The release file lives outside the repository (``../shared/data/vss`` from the repo root).
Tests that need it skip locally when it is absent, but fail in CI (``CI=true``), where a
silent skip would hide a table that drifted from the release.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from autocloud.domain.catalog import (
    Catalog,
    Checked,
    Datatype,
    Rejection,
    SignalSpec,
    Value,
    load_vss_leaves,
)
from autocloud.domain.errors import ConfigurationError
from autocloud.domain.signal_table import SIGNALS

RELEASE = (
    Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "vss" / "vss_release_6.0.json"
).resolve()

ADAS_LEAF = "Vehicle.ADAS.ABS.IsEngaged"  # a real 6.0 leaf the own table does not list


def _release_path() -> Path:
    if not RELEASE.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"VSS 6.0 release file missing in CI: expected it at {RELEASE}")
        pytest.skip(f"VSS 6.0 release file not found; place vss_release_6.0.json at {RELEASE}")
    return RELEASE


@pytest.fixture(scope="module")
def release_path() -> Path:
    return _release_path()


@pytest.fixture(scope="module")
def release_nodes(release_path: Path) -> dict[str, dict[str, Any]]:
    """Every node of the release (branches too) by dotted path, read without the code under test."""
    document = json.loads(release_path.read_text(encoding="utf-8"))
    nodes: dict[str, dict[str, Any]] = {}

    def walk(path: str, node: dict[str, Any]) -> None:
        nodes[path] = node
        for name, child in node.get("children", {}).items():
            walk(f"{path}.{name}", child)

    for name, node in document.items():
        walk(name, node)
    return nodes


@pytest.fixture(scope="module")
def full(release_path: Path) -> Catalog:
    return Catalog.builtin(release_path)


@pytest.fixture(scope="module")
def own_only() -> Catalog:
    return Catalog.builtin(None)


# --- the own table ----------------------------------------------------------------------------


def test_table_has_at_least_70_unique_signals() -> None:
    paths = [spec.path for spec in SIGNALS]
    assert len(paths) >= 70
    assert len(paths) == len(set(paths)), "duplicate paths in SIGNALS"


def test_table_covers_the_platform_areas() -> None:
    paths = {spec.path for spec in SIGNALS}
    for required in (
        "Vehicle.Speed",
        "Vehicle.IsMoving",
        "Vehicle.TraveledDistance",
        "Vehicle.CurrentLocation.Latitude",
        "Vehicle.CurrentLocation.Longitude",
        "Vehicle.CurrentLocation.Heading",
        "Vehicle.CurrentLocation.HorizontalAccuracy",
        "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
        "Vehicle.Powertrain.TractionBattery.Charging.IsCharging",
        "Vehicle.Powertrain.FuelSystem.RelativeLevel",
        "Vehicle.LowVoltageBattery.CurrentVoltage",
        "Vehicle.Chassis.Axle.Row2.Wheel.Right.Tire.Pressure",
        "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked",
        "Vehicle.Body.Trunk.Rear.IsOpen",
        "Vehicle.Cabin.HVAC.AmbientAirTemperature",
        "Vehicle.Body.Lights.Hazard.IsSignaling",
        "Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature",
        "Vehicle.Diagnostics.DTCList",
        "Vehicle.Service.IsServiceDue",
        "Vehicle.LowVoltageSystemState",
    ):
        assert required in paths, required
    assert ADAS_LEAF not in paths  # the VSS-only tests below rely on this


@pytest.mark.parametrize("spec", SIGNALS, ids=lambda spec: spec.path)
def test_table_entry_matches_the_release(
    spec: SignalSpec, release_nodes: dict[str, dict[str, Any]]
) -> None:
    node = release_nodes.get(spec.path)
    assert node is not None, f"{spec.path} is not in the VSS 6.0 release"
    assert node["type"] in {"sensor", "actuator", "attribute"}, f"{spec.path} is not a leaf"
    assert spec.kind == node["type"]
    assert spec.datatype == Datatype(node["datatype"])
    assert spec.unit == node.get("unit")
    assert spec.min == node.get("min")
    assert spec.max == node.get("max")
    expected_allowed = node.get("allowed")
    assert spec.allowed == (tuple(expected_allowed) if expected_allowed is not None else None)
    assert spec.description, f"{spec.path} needs a description"


def test_own_table_agrees_with_the_loaded_release(release_path: Path) -> None:
    leaves = load_vss_leaves(release_path)
    for spec in SIGNALS:
        leaf = leaves[spec.path]
        assert (spec.datatype, spec.unit, spec.min, spec.max, spec.allowed, spec.kind) == (
            leaf.datatype,
            leaf.unit,
            leaf.min,
            leaf.max,
            leaf.allowed,
            leaf.kind,
        )


# --- check(): accepted values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("Vehicle.Speed", 42.5, 42.5),
        ("Vehicle.Speed", 42, 42.0),  # int for a float path becomes a float
        ("Vehicle.Speed", 0, 0.0),
        ("Vehicle.CurrentLocation.Latitude", -90, -90.0),
        ("Vehicle.CurrentLocation.Latitude", 48.137154, 48.137154),
        ("Vehicle.Powertrain.TractionBattery.StateOfCharge.Current", 100.0, 100.0),
        ("Vehicle.IsMoving", True, True),
        ("Vehicle.Cabin.Door.Row1.DriverSide.IsLocked", False, False),
        ("Vehicle.Diagnostics.DTCCount", 3, 3),
        ("Vehicle.Diagnostics.DTCCount", 255, 255),
        ("Vehicle.TraveledDistance", 123_456_789, 123_456_789),
        ("Vehicle.Service.TimeToService", -3600, -3600),  # int32: overdue is negative
        ("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 240, 240),
        ("Vehicle.LowVoltageSystemState", "ON", "ON"),
        ("Vehicle.Diagnostics.DTCList", ["P0300", "U0100"], ("P0300", "U0100")),
        ("Vehicle.Diagnostics.DTCList", [], ()),
        ("Vehicle.Powertrain.FuelSystem.SupportedFuelTypes", ("DIESEL",), ("DIESEL",)),
    ],
)
def test_check_accepts_and_normalises(
    own_only: Catalog, path: str, value: object, expected: Value
) -> None:
    result = own_only.check(path, value)
    assert result == Checked(expected, None, "")
    assert type(result.value) is type(expected)
    assert result.ok


def test_accepted_integers_stay_integers_beyond_the_shared_cache(own_only: Catalog) -> None:
    result = own_only.check("Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure", 60_000)
    assert result.value == 60_000
    assert type(result.value) is int


def test_subclasses_take_the_slow_path_and_are_normalised(own_only: Catalog) -> None:
    class Reading(float):
        pass

    class Count(int):
        pass

    class Code(str):
        __slots__ = ()

    speed = own_only.check("Vehicle.Speed", Reading(12.5))
    assert speed == Checked(12.5, None, "")
    assert type(speed.value) is float
    count = own_only.check("Vehicle.Diagnostics.DTCCount", Count(2))
    assert type(count.value) is int
    state = own_only.check("Vehicle.LowVoltageSystemState", Code("ACC"))
    assert state.value == "ACC"
    assert type(state.value) is str


# --- check(): rejected values -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "rejection", "fragments"),
    [
        # wrong type
        ("Vehicle.Speed", "42", Rejection.WRONG_TYPE, ["Vehicle.Speed", '"42"', "float", "str"]),
        ("Vehicle.Speed", True, Rejection.WRONG_TYPE, ["true", "bool"]),
        ("Vehicle.Speed", None, Rejection.WRONG_TYPE, ["null"]),
        ("Vehicle.IsMoving", 1, Rejection.WRONG_TYPE, ["Vehicle.IsMoving=1", "boolean"]),
        ("Vehicle.IsMoving", 0, Rejection.WRONG_TYPE, ["boolean"]),
        ("Vehicle.IsMoving", "true", Rejection.WRONG_TYPE, ["boolean", "str"]),
        ("Vehicle.Diagnostics.DTCCount", False, Rejection.WRONG_TYPE, ["uint8", "bool"]),
        ("Vehicle.Diagnostics.DTCCount", 3.0, Rejection.WRONG_TYPE, ["integer", "uint8"]),
        ("Vehicle.LowVoltageSystemState", 4, Rejection.WRONG_TYPE, ["string", "int"]),
        ("Vehicle.Diagnostics.DTCList", "P0300", Rejection.WRONG_TYPE, ["string[]", "str"]),
        ("Vehicle.Diagnostics.DTCList", ["P0300", 5], Rejection.WRONG_TYPE, ["DTCList[1]=5"]),
        # out of range: the release's limits and the datatype's natural range
        ("Vehicle.Diagnostics.DTCCount", 300, Rejection.OUT_OF_RANGE, ["=300", "255", "uint8"]),
        ("Vehicle.Diagnostics.DTCCount", -1, Rejection.OUT_OF_RANGE, ["=-1", "uint8"]),
        (
            "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current",
            101,
            Rejection.OUT_OF_RANGE,
            ["StateOfCharge.Current=101 ", "maximum 100 percent"],
        ),
        (
            "Vehicle.CurrentLocation.Latitude",
            91,
            Rejection.OUT_OF_RANGE,
            ["Vehicle.CurrentLocation.Latitude=91 is above the maximum 90 degrees"],
        ),
        (
            "Vehicle.CurrentLocation.Longitude",
            -180.5,
            Rejection.OUT_OF_RANGE,
            ["-180.5", "minimum -180 degrees"],
        ),
        (
            "Vehicle.Powertrain.FuelSystem.AverageConsumption",
            -0.1,
            Rejection.OUT_OF_RANGE,
            ["minimum 0 l/100km"],
        ),
        (
            "Vehicle.Cabin.Door.Row1.DriverSide.Window.Position",
            101,
            Rejection.OUT_OF_RANGE,
            ["maximum 100 percent"],
        ),
        ("Vehicle.Service.TimeToService", 2**31, Rejection.OUT_OF_RANGE, ["int32"]),
        ("Vehicle.Speed", 1e39, Rejection.OUT_OF_RANGE, ["float"]),  # beyond float32
        ("Vehicle.Speed", 10**400, Rejection.OUT_OF_RANGE, ["float"]),
        # non-finite numbers
        ("Vehicle.Speed", math.nan, Rejection.OUT_OF_RANGE, ["NaN", "finite"]),
        ("Vehicle.Speed", math.inf, Rejection.OUT_OF_RANGE, ["Infinity", "finite"]),
        ("Vehicle.CurrentLocation.Altitude", -math.inf, Rejection.OUT_OF_RANGE, ["finite"]),
        # allowed strings
        (
            "Vehicle.LowVoltageSystemState",
            "RUNNING",
            Rejection.NOT_ALLOWED,
            ['"RUNNING"', "UNDEFINED, LOCK, OFF, ACC, ON, START"],
        ),
        ("Vehicle.LowVoltageSystemState", "on", Rejection.NOT_ALLOWED, ['"on"']),
        (
            "Vehicle.Powertrain.FuelSystem.SupportedFuelTypes",
            ["DIESEL", "COAL"],
            Rejection.NOT_ALLOWED,
            ['SupportedFuelTypes[1]="COAL"'],
        ),
    ],
)
def test_check_rejects(
    own_only: Catalog, path: str, value: object, rejection: Rejection, fragments: list[str]
) -> None:
    result = own_only.check(path, value)
    assert result.value is None
    assert result.rejection is rejection
    assert not result.ok
    assert path.rsplit(".", 1)[-1] in result.detail
    for fragment in fragments:
        assert fragment in result.detail, (fragment, result.detail)


def test_rejection_strings_are_stable() -> None:
    assert [r.value for r in Rejection] == [
        "unknown_signal",
        "wrong_type",
        "out_of_range",
        "not_allowed",
    ]


def test_unknown_path(own_only: Catalog) -> None:
    result = own_only.check("Vehicle.NoSuchThing", 1)
    assert result.rejection is Rejection.UNKNOWN_SIGNAL
    assert result.value is None
    assert "Vehicle.NoSuchThing" in result.detail


def test_hostile_values_give_short_details(own_only: Catalog) -> None:
    result = own_only.check("Vehicle.Speed", "x" * 10_000)
    assert result.rejection is Rejection.WRONG_TYPE
    assert len(result.detail) < 300
    result = own_only.check("Vehicle.Diagnostics.DTCList", ["P0300"] * 10_000 + [1])
    assert result.rejection is Rejection.WRONG_TYPE
    assert "DTCList[10000]=1" in result.detail
    result = own_only.check("x" * 10_000, 1)
    assert result.rejection is Rejection.UNKNOWN_SIGNAL
    assert len(result.detail) < 400


# --- check() on every datatype, with a hand-made catalog --------------------------------------


def _catalog(*specs: SignalSpec) -> Catalog:
    return Catalog(specs)


@pytest.mark.parametrize(
    ("datatype", "low", "high"),
    [
        (Datatype.UINT8, 0, 255),
        (Datatype.INT8, -128, 127),
        (Datatype.UINT16, 0, 65_535),
        (Datatype.INT16, -32_768, 32_767),
        (Datatype.UINT32, 0, 2**32 - 1),
        (Datatype.INT32, -(2**31), 2**31 - 1),
        (Datatype.UINT64, 0, 2**64 - 1),
        (Datatype.INT64, -(2**63), 2**63 - 1),
    ],
)
def test_integer_types_use_their_natural_range(datatype: Datatype, low: int, high: int) -> None:
    catalog = _catalog(SignalSpec("X.Y", datatype))
    assert catalog.check("X.Y", low) == Checked(low, None, "")
    assert catalog.check("X.Y", high) == Checked(high, None, "")
    for outside in (low - 1, high + 1):
        result = catalog.check("X.Y", outside)
        assert result.rejection is Rejection.OUT_OF_RANGE
        assert str(datatype) in result.detail


def test_integer_spec_limits_narrow_the_natural_range() -> None:
    catalog = _catalog(SignalSpec("X.Level", Datatype.UINT8, unit="percent", min=10, max=90))
    assert catalog.check("X.Level", 10).value == 10
    assert catalog.check("X.Level", 90).value == 90
    assert "minimum 10 percent" in catalog.check("X.Level", 9).detail
    assert "maximum 90 percent" in catalog.check("X.Level", 91).detail


def test_double_accepts_what_float_refuses() -> None:
    catalog = _catalog(SignalSpec("X.F", Datatype.FLOAT), SignalSpec("X.D", Datatype.DOUBLE))
    assert catalog.check("X.F", 1e39).rejection is Rejection.OUT_OF_RANGE
    assert catalog.check("X.D", 1e39) == Checked(1e39, None, "")
    assert catalog.check("X.D", 10**400).rejection is Rejection.OUT_OF_RANGE
    assert catalog.check("X.D", math.nan).rejection is Rejection.OUT_OF_RANGE


@pytest.mark.parametrize(
    ("datatype", "good", "expected", "bad"),
    [
        (Datatype.BOOLEAN_ARRAY, [True, False], (True, False), [True, 1]),
        (Datatype.UINT8_ARRAY, [0, 255], (0, 255), [1, 256]),
        (Datatype.INT16_ARRAY, (-5, 5), (-5, 5), [1, 2.0]),
        (Datatype.FLOAT_ARRAY, [1, 2.5], (1.0, 2.5), [1.0, math.nan]),
        (Datatype.DOUBLE_ARRAY, [], (), [True]),
        (Datatype.STRING_ARRAY, ["a"], ("a",), ["a", None]),
    ],
)
def test_arrays(datatype: Datatype, good: object, expected: Value, bad: object) -> None:
    catalog = _catalog(SignalSpec("X.A", datatype))
    result = catalog.check("X.A", good)
    assert result == Checked(expected, None, "")
    assert isinstance(result.value, tuple)
    assert isinstance(expected, tuple)
    assert [type(v) for v in result.value] == [type(v) for v in expected]
    rejected = catalog.check("X.A", bad)
    assert rejected.rejection in {Rejection.WRONG_TYPE, Rejection.OUT_OF_RANGE}
    assert "X.A[" in rejected.detail
    assert catalog.check("X.A", {"not": "a list"}).rejection is Rejection.WRONG_TYPE


def test_array_limits_apply_to_each_element() -> None:
    catalog = _catalog(SignalSpec("X.A", Datatype.FLOAT_ARRAY, min=0, max=10))
    assert catalog.check("X.A", [0, 10]).value == (0.0, 10.0)
    result = catalog.check("X.A", [5, 11])
    assert result.rejection is Rejection.OUT_OF_RANGE
    assert "X.A[1]=11" in result.detail


# --- the catalog object -----------------------------------------------------------------------


def test_builtin_without_release_is_the_own_table(own_only: Catalog) -> None:
    assert len(own_only) == len(SIGNALS)
    assert own_only.own() == SIGNALS
    assert "Vehicle.Speed" in own_only
    assert ADAS_LEAF not in own_only
    assert own_only.spec("Vehicle.Speed") == SIGNALS[0]
    assert own_only.spec(ADAS_LEAF) is None
    result = own_only.check(ADAS_LEAF, True)
    assert result.rejection is Rejection.UNKNOWN_SIGNAL
    assert "no VSS release" in result.detail


def test_builtin_with_release_knows_every_leaf(full: Catalog) -> None:
    assert ADAS_LEAF in full
    assert full.check(ADAS_LEAF, True) == Checked(True, None, "")
    assert full.check(ADAS_LEAF, 1).rejection is Rejection.WRONG_TYPE
    spec = full.spec(ADAS_LEAF)
    assert spec is not None
    assert (spec.datatype, spec.kind) == (Datatype.BOOLEAN, "sensor")
    assert len(full) > 1000
    assert full.own() == SIGNALS


def test_builtin_with_release_rejects_unknown_and_branch_paths(full: Catalog) -> None:
    unknown = full.check("Vehicle.NoSuchThing", 1)
    assert unknown.rejection is Rejection.UNKNOWN_SIGNAL
    branch = full.check("Vehicle.Cabin", 1)
    assert branch.rejection is Rejection.UNKNOWN_SIGNAL
    assert "branch" in branch.detail
    assert "Vehicle.Cabin" not in full
    assert full.spec("Vehicle.Cabin") is None


def test_own_table_wins_over_the_release() -> None:
    vss = {"X.Speed": SignalSpec("X.Speed", Datatype.FLOAT, unit="km/h")}
    own = SignalSpec("X.Speed", Datatype.FLOAT, unit="km/h", min=0, max=300)
    catalog = Catalog([own], vss)
    assert catalog.spec("X.Speed") is own
    assert len(catalog) == 1
    assert catalog.check("X.Speed", 301).rejection is Rejection.OUT_OF_RANGE


def test_is_numeric(own_only: Catalog) -> None:
    assert own_only.is_numeric("Vehicle.Speed")
    assert own_only.is_numeric("Vehicle.IsMoving")
    assert own_only.is_numeric("Vehicle.TraveledDistance")
    assert not own_only.is_numeric("Vehicle.LowVoltageSystemState")
    assert not own_only.is_numeric("Vehicle.Diagnostics.DTCList")
    assert not own_only.is_numeric("Vehicle.NoSuchThing")


def test_constructor_refuses_inconsistent_tables() -> None:
    speed = SignalSpec("X.Speed", Datatype.FLOAT)
    with pytest.raises(ConfigurationError, match="twice"):
        Catalog([speed, speed])
    with pytest.raises(ConfigurationError, match="allowed"):
        Catalog([SignalSpec("X.N", Datatype.UINT8, allowed=("1",))])
    with pytest.raises(ConfigurationError, match="min"):
        Catalog([SignalSpec("X.N", Datatype.UINT8, min=5, max=1)])
    with pytest.raises(ConfigurationError, match="min/max"):
        Catalog([SignalSpec("X.S", Datatype.STRING, max=1)])


# --- loading a release ------------------------------------------------------------------------


def test_load_small_release(tmp_path: Path) -> None:
    document = {
        "Vehicle": {
            "type": "branch",
            "description": "root",
            "children": {
                "Speed": {"type": "sensor", "datatype": "float", "unit": "km/h"},
                "Body": {
                    "type": "branch",
                    "children": {
                        "Mode": {
                            "type": "actuator",
                            "datatype": "string",
                            "allowed": ["A", "B"],
                            "description": "a mode",
                        },
                        "Level": {"type": "sensor", "datatype": "uint8", "min": 0, "max": 100},
                        "Shape": {"type": "sensor", "datatype": "Types.Shape"},  # struct: skipped
                    },
                },
            },
        }
    }
    file = tmp_path / "vss.json"
    file.write_text(json.dumps(document), encoding="utf-8")
    leaves = load_vss_leaves(file)
    assert set(leaves) == {"Vehicle.Speed", "Vehicle.Body.Mode", "Vehicle.Body.Level"}
    assert leaves["Vehicle.Speed"] == SignalSpec("Vehicle.Speed", Datatype.FLOAT, unit="km/h")
    assert leaves["Vehicle.Body.Mode"] == SignalSpec(
        "Vehicle.Body.Mode",
        Datatype.STRING,
        allowed=("A", "B"),
        kind="actuator",
        description="a mode",
    )
    assert (leaves["Vehicle.Body.Level"].min, leaves["Vehicle.Body.Level"].max) == (0, 100)
    catalog = Catalog([], leaves)
    assert catalog.check("Vehicle.Body.Mode", "C").rejection is Rejection.NOT_ALLOWED
    assert catalog.check("Vehicle.Body", "A").rejection is Rejection.UNKNOWN_SIGNAL


def test_load_real_release(release_path: Path) -> None:
    leaves = load_vss_leaves(str(release_path))
    assert len(leaves) > 1000
    assert leaves["Vehicle.Speed"].datatype is Datatype.FLOAT
    assert leaves["Vehicle.Diagnostics.DTCList"].datatype is Datatype.STRING_ARRAY
    assert all(path.startswith("Vehicle.") for path in leaves)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        ("[1, 2, 3]", "not a VSS release"),
        ("{}", "not a VSS release"),
        ('{"name": "package.json", "version": "1.0"}', "not a VSS release"),
        ('{"Vehicle": {"type": "branch", "children": {}}}', "no signals"),
        ('{"Vehicle": {"type": "branch", "children": []}}', "children"),
        ('{"Vehicle": {"type": "branch", "children": {"S": {"type": "sensor"}}}}', "datatype"),
        (
            '{"Vehicle": {"type": "branch", "children": '
            '{"S": {"type": "sensor", "datatype": "uint8", "max": "high"}}}}',
            "max",
        ),
    ],
)
def test_load_refuses_non_vss_files(tmp_path: Path, content: str | bytes, message: str) -> None:
    file = tmp_path / "bad.json"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigurationError, match=message):
        load_vss_leaves(file)
    with pytest.raises(ConfigurationError):
        Catalog.builtin(file)


def test_load_refuses_missing_files_and_directories(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "vss_release_6.0.json"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        Catalog.builtin(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(ConfigurationError, match="cannot read"):
        load_vss_leaves(tmp_path)


@pytest.mark.parametrize(
    "path, value",
    [
        ("Vehicle.Body.Lights.LightSwitch", "BEAM\x00"),  # an enum signal
        ("Vehicle.Powertrain.FuelSystem.SupportedFuelTypes", ["GASOLINE", "E\x0085"]),
    ],
)
def test_text_with_a_nul_character_is_refused(own_only: Catalog, path: str, value: Any) -> None:
    """Neither database can hold U+0000 in every column and JSON document; both refuse it."""
    result = own_only.check(path, value)
    assert result.rejection == Rejection.OUT_OF_RANGE
    assert "NUL character" in result.detail


def test_free_text_with_a_nul_character_is_refused_on_the_fast_path(full: Catalog) -> None:
    track = "Vehicle.Cabin.Infotainment.Media.Played.Track"  # a VSS free-text string
    assert full.check(track, "fine").rejection is None
    assert full.check(track, "a\x00b").rejection == Rejection.OUT_OF_RANGE
