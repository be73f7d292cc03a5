"""DTC parsing, J2012 decoding, the severity table and the description catalog."""

import json
from pathlib import Path

import pytest

from autocloud.domain.dtc import (
    SEVERITY_TABLE,
    Severity,
    decode,
    parse_code,
    severity,
    severity_row,
)
from autocloud.domain.dtc_catalog import load_catalog, parse_catalog
from autocloud.domain.errors import ConfigurationError, InvalidInput
from tests.conftest import SHARED_DATA, need

OBD_CODES = SHARED_DATA / "dtc" / "obd_codes.json"


@pytest.mark.parametrize(
    ("given", "code"),
    [
        ("P0301", "P0301"),
        ("p0301", "P0301"),
        ("  c0035\n", "C0035"),
        ("P0A7f", "P0A7F"),
        ("P0301-1F", "P0301"),  # a UDS failure-type byte is dropped
        ("0x0301", "P0301"),  # two-byte form: 00 = P
        ("0x4035", "C0035"),  # 01 = C
        ("0x9001", "B1001"),  # 10 = B, second digit 1
        ("0xC155", "U0155"),  # 11 = U
        ("0xFFFF", "U3FFF"),
    ],
)
def test_parse_normalises(given: str, code: str) -> None:
    assert parse_code(given) == code


@pytest.mark.parametrize(
    "bad",
    ["", "P030", "P03011", "X0301", "P4301", "P03G1", "P0301-1", "0x030", "P 0301", "P0301-XY"],
)
def test_parse_refuses_what_is_not_a_code(bad: str) -> None:
    with pytest.raises(InvalidInput, match="not a DTC"):
        parse_code(bad)


@pytest.mark.parametrize("bad", [None, 301, ["P0301"]])
def test_parse_refuses_non_strings(bad: object) -> None:
    with pytest.raises(InvalidInput, match="is a string"):
        parse_code(bad)


@pytest.mark.parametrize(
    ("code", "system", "generic", "subsystem"),
    [
        ("P0301", "powertrain", True, "ignition system or misfire"),
        ("P0171", "powertrain", True, "fuel and air metering"),
        ("P0420", "powertrain", True, "auxiliary emission controls"),
        ("P0700", "powertrain", True, "transmission"),
        ("P0A7F", "powertrain", True, "hybrid/EV propulsion"),
        ("P1301", "powertrain", False, None),  # manufacturer: J2012 names no subsystem
        ("P2135", "powertrain", True, "fuel and air metering and auxiliary emission controls"),
        ("P3000", "powertrain", False, None),  # P3000-P33FF: manufacturer
        ("P33FF", "powertrain", False, None),
        ("P3400", "powertrain", True, "cylinder deactivation"),  # P3400-P3FFF: SAE
        ("C0035", "chassis", True, None),
        ("C1234", "chassis", False, None),
        ("B0001", "body", True, None),
        ("B2000", "body", False, None),
        ("U0100", "network", True, "lost communication with a module"),
        ("U0001", "network", True, "network electrical"),
        ("U1000", "network", False, None),
    ],
)
def test_decode_by_j2012_structure(
    code: str, system: str, generic: bool, subsystem: str | None
) -> None:
    d = decode(code)
    assert (d.code, d.system_name, d.generic) == (code, system, generic)
    assert d.subsystem_name == subsystem
    assert d.subsystem == code[2]
    assert d.defined_by == ("SAE/ISO (generic)" if generic else "manufacturer")


def test_decode_takes_any_accepted_form() -> None:
    assert decode("0xC155").code == "U0155"
    with pytest.raises(InvalidInput):
        decode("nonsense")


@pytest.mark.parametrize(
    ("code", "level"),
    [
        ("B0001", Severity.CRITICAL),  # airbag
        ("B00FF", Severity.CRITICAL),
        ("B0100", Severity.INFO),  # past the SRS range
        ("C0035", Severity.CRITICAL),  # ABS wheel speed sensor
        ("C0460", Severity.CRITICAL),  # steering
        ("C0700", Severity.INFO),
        ("U0121", Severity.CRITICAL),  # lost communication with ABS
        ("U0151", Severity.CRITICAL),  # ... with the airbag module
        ("U0100", Severity.INFO),
        ("P0AA6", Severity.CRITICAL),  # high-voltage isolation
        ("P0A7F", Severity.WARNING),  # pack deterioration: the exception above P0Axx
        ("P0300", Severity.CRITICAL),
        ("P0304", Severity.CRITICAL),
        ("P0313", Severity.INFO),
        ("P0217", Severity.CRITICAL),
        ("P0524", Severity.CRITICAL),
        ("P0420", Severity.WARNING),  # catalyst
        ("P0455", Severity.WARNING),  # EVAP
        ("P0171", Severity.WARNING),  # lean
        ("P0562", Severity.WARNING),  # 12 V
        ("P0128", Severity.INFO),
        ("P1234", Severity.INFO),
    ],
)
def test_severity_table(code: str, level: Severity) -> None:
    assert severity(code) is level


def test_severity_rows_are_well_formed_and_first_match_wins() -> None:
    for row in SEVERITY_TABLE:
        assert parse_code(row.first) == row.first and parse_code(row.last) == row.last
        assert row.first <= row.last, row
        assert row.why
    row = severity_row("P0A7F")
    assert row is not None and row.severity is Severity.WARNING and "deterioration" in row.why
    assert severity_row("P1234") is None


def test_severity_labels_and_parse() -> None:
    assert max(Severity) is Severity.CRITICAL
    assert Severity.parse(" Critical ") is Severity.CRITICAL
    with pytest.raises(InvalidInput, match="info, warning, critical"):
        Severity.parse("fatal")


# --- catalog ----------------------------------------------------------------------------------


def test_catalog_repairs_the_pdf_scars() -> None:
    catalog = parse_catalog(
        [
            {"Code": "P0005", "Description": "Fuel Shutoff ValveAControl Circuit/Open"},
            {"Code": "P000A", "Description": " ACamshaft Position Slow Response Bank 1"},
            {"Code": "P2765/Turbine", "Description": "Speed SensorBCircuit "},
            {"Code": "P340A,", "Description": "P340B, P340C ISO/SAE Reserved"},
            {"Code": "P0601\nInternal", "Description": "Control Module Memory Check Sum Error"},
            {"Code": "P0005", "Description": "a later duplicate"},
            {"Code": "nonsense", "Description": "x"},
            "not an object",
        ]
    )
    assert catalog.describe("P0005") == "Fuel Shutoff Valve A Control Circuit/Open"
    assert catalog.describe("P000A") == "A Camshaft Position Slow Response Bank 1"
    assert catalog.describe("P2765") == "Turbine Speed Sensor B Circuit"
    assert [catalog.describe(c) for c in ("P340A", "P340B", "P340C")] == ["ISO/SAE Reserved"] * 3
    assert catalog.describe("P0601") == "Internal Control Module Memory Check Sum Error"
    assert catalog.describe("P9999") is None
    assert catalog.skipped == 2
    assert len(catalog) == 7


def test_shared_catalog_file() -> None:
    need(OBD_CODES.exists(), f"DTC catalog missing at {OBD_CODES} (../shared/data)")
    catalog = load_catalog(OBD_CODES)
    assert len(catalog) > 2400
    assert catalog.describe("P0301") == "Cylinder 1 Misfire Detected"
    assert catalog.describe("P0A7F") == "Battery Pack Deterioration"
    assert catalog.describe("P0420") == "Catalyst System Efficiency Below Threshold (Bank 1)"
    assert catalog.source == str(OBD_CODES)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "is not valid JSON"),
        (b"\xff\xfe", "is not valid JSON"),
        (b'{"Code": "P0301"}', "is not a JSON array"),
        (b'[{"Code": "nope", "Description": "x"}]', "none names a valid code"),
    ],
)
def test_bad_catalog_file_is_a_clear_error(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "codes.json"
    bad.write_bytes(content)
    with pytest.raises(ConfigurationError, match=message) as caught:
        load_catalog(bad)
    assert str(bad) in str(caught.value)


def test_missing_catalog_file_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist; point dtc_catalog_path"):
        load_catalog(tmp_path / "nope.json")


def test_empty_catalog_is_allowed(tmp_path: Path) -> None:
    file = tmp_path / "empty.json"
    file.write_text(json.dumps([]))
    assert len(load_catalog(file)) == 0
