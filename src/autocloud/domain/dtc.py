"""Diagnostic trouble codes: parse, decode by their SAE J2012 structure, and grade by severity.

What: a DTC such as ``P0301`` is five characters. The first names the system (P powertrain,
C chassis, B body, U network), the second who defines the code (SAE/ISO "generic" or the
manufacturer; J2012 splits P3 in two), the third the subsystem, the last two the fault.
:func:`parse_code` normalises what vehicles and people send (``p0301``, ``P0301-1F`` with
a UDS failure-type byte, the two-byte hex form ``0x0301``); :func:`decode` explains a code;
:func:`severity` grades it from :data:`SEVERITY_TABLE` (first matching row wins).

Why tables: the rules are data a reviewer can read (docs/diagnostics.md repeats them), and a
new row changes behaviour without a new branch. Descriptions come from a catalog file
(:mod:`autocloud.domain.dtc_catalog`); decoding needs none.
"""

import enum
import re
from dataclasses import dataclass
from typing import Final

from autocloud.domain.errors import InvalidInput

__all__ = [
    "SEVERITY_TABLE",
    "DecodedDtc",
    "Severity",
    "SeverityRow",
    "decode",
    "parse_code",
    "severity",
    "severity_row",
]


class Severity(enum.IntEnum):
    """How urgent a code is; higher is worse (so ``max`` gives the worst)."""

    INFO = 1
    WARNING = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> "Severity":
        try:
            return cls[text.strip().upper()]
        except KeyError:
            allowed = ", ".join(s.label for s in cls)
            raise InvalidInput(f"unknown severity {text!r}; use one of: {allowed}") from None


SYSTEMS: Final[dict[str, str]] = {
    "P": "powertrain",
    "C": "chassis",
    "B": "body",
    "U": "network",
}
_WIRE_SYSTEM: Final = "PCBU"  # bits 15-14 of the two-byte form (ISO 15031-6 / J2012)

# Who defines a code, by its first two characters (J2012 §5.3). P3 splits at P3400: P3000-
# P33FF are the manufacturer's, P3400-P3FFF are SAE's (P34xx: cylinder deactivation).
_GENERIC: Final[dict[str, bool]] = {
    "P0": True,
    "P1": False,
    "P2": True,
    "P3": False,  # split by the third character in decode()
    "C0": True,
    "C1": False,
    "C2": False,
    "C3": True,
    "B0": True,
    "B1": False,
    "B2": False,
    "B3": True,
    "U0": True,
    "U1": False,
    "U2": False,
    "U3": True,
}

# Subsystems named by J2012 for generic powertrain codes (third character). P2 shares the
# P0 groups except where listed; P34 is the only allocated P3 SAE group.
_P0_SUBSYSTEMS: Final[dict[str, str]] = {
    "0": "fuel and air metering and auxiliary emission controls",
    "1": "fuel and air metering",
    "2": "fuel and air metering (injector circuit)",
    "3": "ignition system or misfire",
    "4": "auxiliary emission controls",
    "5": "vehicle speed control, idle control and auxiliary inputs",
    "6": "computer and output circuits",
    "7": "transmission",
    "8": "transmission",
    "9": "transmission",
    "A": "hybrid/EV propulsion",
    "B": "hybrid/EV propulsion",
    "C": "hybrid/EV propulsion",
}
_P2_SUBSYSTEMS: Final[dict[str, str]] = {
    **{d: "fuel and air metering and auxiliary emission controls" for d in "0129A"},
    "3": "ignition system or misfire",
    "4": "auxiliary emission controls",
    "5": "auxiliary inputs",
    "6": "computer and output circuits",
    "7": "transmission",
    "8": "transmission",
}
_SUBSYSTEMS: Final[dict[str, dict[str, str]]] = {
    "P0": _P0_SUBSYSTEMS,
    "P2": _P2_SUBSYSTEMS,
    "P3": {"4": "cylinder deactivation"},
    "U0": {
        "0": "network electrical",
        "1": "lost communication with a module",
        "2": "lost communication with a module",
        "3": "software incompatibility",
        "4": "invalid data received",
    },
}

_TEXT: Final = re.compile(r"^([PCBU])([0-3])([0-9A-F])([0-9A-F]{2})(?:-([0-9A-F]{2}))?$")
_WIRE: Final = re.compile(r"^0X([0-9A-F]{4})$")


@dataclass(frozen=True, slots=True)
class DecodedDtc:
    """A code explained by its structure."""

    code: str
    system: str  # P, C, B, U
    system_name: str
    generic: bool  # defined by SAE/ISO (True) or by the manufacturer
    subsystem: str  # the third character
    subsystem_name: str | None  # None where J2012 names no group (manufacturer codes…)

    @property
    def defined_by(self) -> str:
        return "SAE/ISO (generic)" if self.generic else "manufacturer"


def parse_code(text: object) -> str:
    """The canonical five-character code of `text`, or InvalidInput saying why not.

    Accepts upper or lower case and surrounding blanks, a UDS failure-type byte after a dash
    (``P0301-1F``, dropped: the code is the fault, the byte its flavour), and the two-byte
    hex form of ISO 15031-6 (``0x0301`` → ``P0301``, ``0xC155`` → ``U0155``).
    """
    if not isinstance(text, str):
        raise InvalidInput(f"a DTC is a string such as 'P0301', got {type(text).__name__}")
    raw = text.strip().upper()
    wire = _WIRE.match(raw)
    if wire:
        number = int(wire.group(1), 16)
        return f"{_WIRE_SYSTEM[number >> 14]}{(number >> 12) & 3}{number & 0xFFF:03X}"
    match = _TEXT.match(raw)
    if match is None:
        raise InvalidInput(
            f"{text!r} is not a DTC: expected a letter P, C, B or U, a digit 0-3 and three "
            "hex digits, e.g. P0301 (optionally -XX, the failure type) or 0x0301"
        )
    return "".join(match.group(1, 2, 3, 4))


def decode(code: str) -> DecodedDtc:
    """Explain a code (normalised first, so any form :func:`parse_code` takes is fine)."""
    code = parse_code(code)
    system, group, third = code[0], code[:2], code[2]
    generic = _GENERIC[group]
    if group == "P3":
        generic = third >= "4"  # P3000-P33FF manufacturer, P3400-P3FFF SAE
    names = _SUBSYSTEMS.get(group, {}) if generic else {}
    return DecodedDtc(code, system, SYSTEMS[system], generic, third, names.get(third))


@dataclass(frozen=True, slots=True)
class SeverityRow:
    """Codes ``first``..``last`` (inclusive, canonical form) have ``severity`` because ``why``."""

    first: str
    last: str
    severity: Severity
    why: str

    def covers(self, code: str) -> bool:
        # Canonical codes have equal length and '0'-'9' < 'A'-'F' in ASCII, so string
        # order is code order.
        return self.first <= code <= self.last


_C, _W = Severity.CRITICAL, Severity.WARNING
SEVERITY_TABLE: Final[tuple[SeverityRow, ...]] = (
    # Exceptions first: first match wins.
    SeverityRow("P0A7F", "P0A7F", _W, "traction battery deterioration (capacity, not safety)"),
    # Critical: safety systems and faults that damage the car if driven on.
    SeverityRow("B0000", "B00FF", _C, "airbags / supplemental restraint system (SRS)"),
    SeverityRow("C0000", "C02FF", _C, "brakes: ABS, traction and stability control"),
    SeverityRow("C0400", "C05FF", _C, "steering"),
    SeverityRow("U0121", "U0129", _C, "lost communication with a brake module (ABS/ESC)"),
    SeverityRow("U0131", "U0131", _C, "lost communication with power steering"),
    SeverityRow("U0151", "U0151", _C, "lost communication with the airbag module"),
    SeverityRow("U0111", "U0111", _C, "lost communication with the high-voltage battery module"),
    SeverityRow("U0293", "U0293", _C, "lost communication with the hybrid powertrain module"),
    SeverityRow("P0A00", "P0CFF", _C, "high-voltage hybrid/EV system (battery, inverter, motor)"),
    SeverityRow("P0300", "P0312", _C, "engine misfire (damages the catalyst)"),
    SeverityRow("P0217", "P0218", _C, "engine or transmission overtemperature"),
    SeverityRow("P0524", "P0524", _C, "engine oil pressure too low"),
    # Warnings: emissions and charging.
    SeverityRow("P0130", "P0175", _W, "emissions: oxygen sensors and fuel trim"),
    SeverityRow("P0400", "P04FF", _W, "emissions: EGR, secondary air, catalyst, EVAP"),
    SeverityRow("P2400", "P24FF", _W, "emissions: auxiliary emission controls (EVAP, EGR)"),
    SeverityRow("P2A00", "P2AFF", _W, "emissions: oxygen sensors"),
    SeverityRow("P0560", "P0563", _W, "12 V system voltage"),
)
"""The severity rules, in order; a code no row covers is ``info``."""


def severity_row(code: str) -> SeverityRow | None:
    """The first row of :data:`SEVERITY_TABLE` covering `code` (canonical), if any."""
    for row in SEVERITY_TABLE:
        if row.covers(code):
            return row
    return None


def severity(code: str) -> Severity:
    """The severity of a canonical code: its row's, else ``info``."""
    row = severity_row(code)
    return row.severity if row is not None else Severity.INFO
