"""ISO 14229 (UDS) requests and responses of remote diagnostic sessions, built with udsoncan.

What: the named ECUs a vehicle may have (with their physical CAN request addresses), the
data identifiers the platform reads, the *reads* an operator can ask for (each one UDS
request to one ECU), how each request is encoded, and how each response is decoded into a
plain, JSON-ready result — including negative responses (0x7F, with the NRC's name from
udsoncan) and answers that are not valid UDS at all.

Why here: encoding and decoding are pure functions of bytes, testable without a vehicle,
a broker or a database. The service sends the bytes; the simulated ECUs (sim/ecus.py)
answer them; this module is the one place that knows the byte layout.
See docs/diagnostics-remote.md for the tables in prose.
"""

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from udsoncan.common.DidCodec import DidCodec
from udsoncan.common.dtc import Dtc
from udsoncan.exceptions import ConfigError, InvalidResponseException
from udsoncan.Response import Response
from udsoncan.services.ClearDiagnosticInformation import ClearDiagnosticInformation
from udsoncan.services.ReadDataByIdentifier import ReadDataByIdentifier
from udsoncan.services.ReadDTCInformation import ReadDTCInformation
from udsoncan.typing import DIDConfig

from autocloud.domain.errors import InvalidInput
from autocloud.domain.protocol import PROTOCOL_VERSION, EcuName, HexBytes, Millis, RequestId

# --- ECUs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ecu:
    """A control unit: name, physical request / response CAN ids (11-bit), and what it is."""

    name: str
    address: int
    response_address: int
    description: str
    powertrains: frozenset[str]  # VSS Vehicle.Powertrain.Type values of cars that have it


_ALL = frozenset({"COMBUSTION", "HYBRID", "ELECTRIC"})
_ENGINE = frozenset({"COMBUSTION", "HYBRID"})
_BATTERY = frozenset({"HYBRID", "ELECTRIC"})

# The OBD-II convention (ISO 15765-4) puts the engine at 0x7E0 and the transmission at 0x7E1,
# each answering at request + 8; the others are this platform's vehicle profile.
ECUS: Final[dict[str, Ecu]] = {
    e.name: e
    for e in (
        Ecu("ECM", 0x7E0, 0x7E8, "engine control module", _ENGINE),
        Ecu("TCM", 0x7E1, 0x7E9, "transmission control module", _ENGINE),
        Ecu("ABS", 0x7E3, 0x7EB, "anti-lock brakes / stability control", _ALL),
        Ecu("BMS", 0x7E4, 0x7EC, "high-voltage battery management", _BATTERY),
        Ecu("BCM", 0x726, 0x72E, "body control module (doors, lights, 12 V)", _ALL),
    )
}


def ecu(name: str) -> Ecu:
    """The ECU of that name (case-insensitive) or InvalidInput naming the known ones."""
    found = ECUS.get(name.strip().upper())
    if found is None:
        raise InvalidInput(f"unknown ECU {name!r}; known ECUs: {', '.join(ECUS)}")
    return found


def default_ecus(powertrain: str | None) -> list[str]:
    """The ECUs a car of this VSS powertrain type has; every ECU when it is unknown."""
    return [e.name for e in ECUS.values() if powertrain is None or powertrain in e.powertrains]


# --- data identifiers ----------------------------------------------------------------------


class PaddedAscii(DidCodec):
    """Fixed-length ASCII, padded with spaces (or NULs) on the right, as ECUs store texts."""

    def __init__(self, length: int) -> None:
        self.length = length

    def encode(self, *did_value: Any) -> bytes:
        text = str(did_value[0]).encode("ascii")
        if len(text) > self.length:
            raise ValueError(f"{text!r} is longer than {self.length} bytes")
        return text.ljust(self.length, b" ")

    def decode(self, did_payload: bytes) -> Any:
        return did_payload.rstrip(b" \x00").decode("ascii", errors="replace")

    def __len__(self) -> int:
        return self.length


class Odometer(DidCodec):
    """SAE J1979 PID 0xA6 (odometer): unsigned 32 bits, 0.1 km per bit; decoded in km."""

    def encode(self, *did_value: Any) -> bytes:
        return struct.pack(">I", round(float(did_value[0]) * 10))

    def decode(self, did_payload: bytes) -> Any:
        return struct.unpack(">I", did_payload)[0] / 10

    def __len__(self) -> int:
        return 4


DID_VIN: Final = 0xF190  # VINDataIdentifier (ISO 14229-1 Annex C)
DID_SW_VERSION: Final = 0xF189  # vehicleManufacturerECUSoftwareVersionNumber
DID_SUPPLIER_SW: Final = 0xF195  # systemSupplierECUSoftwareVersionNumber
DID_ODOMETER: Final = 0xF4A6  # OBD PID 0xA6 in the 0xF4xx OBD range (ISO 14229-1 Annex C)

DIDS: Final[DIDConfig] = {
    DID_VIN: PaddedAscii(17),
    DID_SW_VERSION: PaddedAscii(12),
    DID_SUPPLIER_SW: PaddedAscii(12),
    DID_ODOMETER: Odometer(),
}
DID_NAMES: Final[dict[int, str]] = {
    DID_VIN: "vin",
    DID_SW_VERSION: "software_version",
    DID_SUPPLIER_SW: "supplier_software_version",
    DID_ODOMETER: "odometer_km",
}

# --- DTC status ----------------------------------------------------------------------------

DTC_STATUS_MASK: Final = 0x09  # testFailed | confirmedDTC: failing now, or confirmed
ALL_DTC_GROUPS: Final = 0xFFFFFF  # ClearDiagnosticInformation: every group

STATUS_BITS: Final[tuple[tuple[int, str], ...]] = (
    (0x01, "test_failed"),
    (0x02, "test_failed_this_operation_cycle"),
    (0x04, "pending"),
    (0x08, "confirmed"),
    (0x10, "test_not_completed_since_last_clear"),
    (0x20, "test_failed_since_last_clear"),
    (0x40, "test_not_completed_this_operation_cycle"),
    (0x80, "warning_indicator_requested"),
)


def status_flags(byte: int) -> list[str]:
    """The names of the DTC status bits set in `byte` (ISO 14229-1 D.2)."""
    return [name for bit, name in STATUS_BITS if byte & bit]


def dtc_number(code: str, failure_type: int = 0) -> int:
    """A J2012 code such as P0301 as the 3-byte UDS DTC number (2 bytes code + failure type)."""
    letter, digits = code[0].upper(), code[1:]
    if letter not in "PCBU" or len(digits) != 4:
        raise ValueError(f"{code!r} is not a five-character SAE J2012 code")
    first = int(digits[0], 16)
    if first > 3:
        raise ValueError(f"{code!r}: the second character must be 0-3")
    high = ("PCBU".index(letter) << 14) | (first << 12) | int(digits[1:], 16)
    return (high << 8) | failure_type


def dtc_code(number: int) -> str:
    """The J2012 code of a 3-byte UDS DTC number (failure-type byte dropped): P0301."""
    return Dtc(number).id_iso().split("-", 1)[0]


# --- reads: one UDS request each ------------------------------------------------------------

Decoded = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Read:
    """One thing an operator can ask an ECU for, as one UDS request."""

    name: str
    service: str
    request: Callable[[], bytes]
    decode: Callable[[Response], Decoded]


def _rdbi(*dids: int) -> Callable[[], bytes]:
    def build() -> bytes:
        req = ReadDataByIdentifier.make_request(list(dids), DIDS)
        return bytes(req.get_payload())

    return build


def _decode_rdbi(*dids: int) -> Callable[[Response], Decoded]:
    def decode(response: Response) -> Decoded:
        done = ReadDataByIdentifier.interpret_response(response, list(dids), DIDS)
        return {DID_NAMES[did]: value for did, value in done.service_data.values.items()}

    return decode


def _dtc_request() -> bytes:
    req = ReadDTCInformation.make_request(
        ReadDTCInformation.Subfunction.reportDTCByStatusMask, status_mask=DTC_STATUS_MASK
    )
    return bytes(req.get_payload())


def _decode_dtcs(response: Response) -> Decoded:
    done = ReadDTCInformation.interpret_response(
        response, ReadDTCInformation.Subfunction.reportDTCByStatusMask
    )
    dtcs = []
    for found in done.service_data.dtcs:
        status = found.status.get_byte_as_int()
        dtcs.append(
            {
                "code": dtc_code(found.id),
                "dtc": f"{found.id:06X}",
                "failure_type": found.id & 0xFF,
                "status": status,
                "flags": status_flags(status),
                "active": bool(status & 0x01),
            }
        )
    availability = done.service_data.status_availability
    mask = availability.get_byte_as_int() if availability is not None else None
    return {"dtcs": dtcs, "status_availability": mask}


def _clear_request() -> bytes:
    return bytes(ClearDiagnosticInformation.make_request(ALL_DTC_GROUPS).get_payload())


def _decode_clear(response: Response) -> Decoded:
    ClearDiagnosticInformation.interpret_response(response)
    return {"cleared": True}


READS: Final[dict[str, Read]] = {
    r.name: r
    for r in (
        Read("dtcs", "ReadDTCInformation", _dtc_request, _decode_dtcs),
        Read("vin", "ReadDataByIdentifier", _rdbi(DID_VIN), _decode_rdbi(DID_VIN)),
        Read(
            "software",
            "ReadDataByIdentifier",
            _rdbi(DID_SW_VERSION, DID_SUPPLIER_SW),
            _decode_rdbi(DID_SW_VERSION, DID_SUPPLIER_SW),
        ),
        Read("odometer", "ReadDataByIdentifier", _rdbi(DID_ODOMETER), _decode_rdbi(DID_ODOMETER)),
        Read("clear_dtcs", "ClearDiagnosticInformation", _clear_request, _decode_clear),
    )
}
READOUT: Final = ("dtcs", "vin", "software", "odometer")  # the default readout, in order
CLEAR: Final = "clear_dtcs"


def read(name: str) -> Read:
    """The read of that name, or InvalidInput naming the known ones."""
    found = READS.get(name.strip().lower())
    if found is None or found.name == CLEAR:
        known = ", ".join(n for n in READS if n != CLEAR)
        raise InvalidInput(f"unknown read {name!r}; use: {known} (clearing is a separate flag)")
    return found


RESPONSE_PENDING: Final = 0x78  # NRC: the ECU will answer later; not a final answer


def decode(read_name: str, response: bytes) -> Decoded:
    """One ECU answer to read `read_name`, decoded; never raises on bad bytes.

    `status` is ``positive`` (with the decoded data), ``negative`` (with ``nrc`` and
    ``nrc_name``) or ``invalid`` (with ``error``: not UDS, a different service, or bytes
    that do not match the request).
    """
    spec = READS[read_name]
    parsed = Response.from_payload(response)
    if not parsed.valid or parsed.service is None:
        return {"status": "invalid", "error": parsed.invalid_reason or "not a UDS response"}
    if parsed.service.__name__ != spec.service:
        return {
            "status": "invalid",
            "error": f"answer of {parsed.service.__name__}, expected {spec.service}",
        }
    if not parsed.positive:
        code = int(parsed.code or 0)
        return {"status": "negative", "nrc": code, "nrc_name": parsed.code_name}
    try:
        return {"status": "positive", **spec.decode(parsed)}
    except (InvalidResponseException, ConfigError, ValueError, LookupError, struct.error) as exc:
        return {"status": "invalid", "error": str(exc)}


def is_final(response: bytes) -> bool:
    """False for 0x7F xx 0x78 (responsePending): the real answer comes in a later message."""
    return not (len(response) >= 3 and response[0] == 0x7F and response[2] == RESPONSE_PENDING)


# --- the cloud-to-vehicle message ------------------------------------------------------------


class DiagRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`vehicles/{vin}/diag/request`: one UDS request for the ECU at CAN id `addr`.

    The vehicle's gateway routes by `addr`, echoes `id` and `ecu` in its
    `diag/response`, and ignores a request whose `expires` (ms) has passed.
    """

    id: RequestId
    ecu: EcuName
    addr: int
    request: HexBytes
    issued: Millis
    expires: Millis
    v: int = PROTOCOL_VERSION


_REQUEST_DECODER = msgspec.json.Decoder(DiagRequest)


def encode_request(message: DiagRequest) -> bytes:
    return msgspec.json.encode(message)


def decode_request(payload: bytes) -> DiagRequest:
    """Parse a request payload; raises ValueError when it is not one."""
    try:
        return _REQUEST_DECODER.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"not a diag/request v1 message: {exc}") from None
